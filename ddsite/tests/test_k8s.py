"""The Kubernetes manifests as they render (``kubectl kustomize``, Debian's kubectl carries
kustomize): one scheduler that agrees with jobs.schedule, images that overlays really
set, hardened pods, migrations as a hook, and the staging host patched."""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from jobs.schedule import JOBS, SCHEDULE_TIME_ZONE, beat_schedule

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("staging", "production")


def _docs(path: Path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@cache
def rendered(overlay: str) -> tuple:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing (apt-get install kubectl): the manifests cannot be checked"
    out = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def _kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def _pod_specs(docs):
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d, d["spec"]["template"]["spec"]
        elif d["kind"] == "CronJob":
            yield d, d["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_every_kustomization_resolves():
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = _docs(kustomization)[0]
        for resource in spec.get("resources", []) + spec.get("components", []):
            target = (kustomization.parent / resource).resolve()
            assert target.exists(), f"{kustomization}: missing {resource}"


def test_cronjobs_file_is_generated_from_the_schedule():
    result = subprocess.run([sys.executable, "scripts/render_cronjobs.py", "--check"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_scheduler_and_it_agrees_with_the_schedule(overlay):
    docs = rendered(overlay)
    commands = get_commands()
    jobs = {d["metadata"]["name"]: d for d in _kind(docs, "CronJob")}
    assert set(jobs) == {f"dds-{job.name}" for job in JOBS}
    for job in JOBS:
        spec = jobs[f"dds-{job.name}"]["spec"]
        [container] = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["manage", job.command]
        assert job.command in commands
        assert spec["schedule"] == job.cron and spec["timeZone"] == SCHEDULE_TIME_ZONE
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] > 0
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
        assert spec["jobTemplate"]["spec"]["ttlSecondsAfterFinished"] > 0
    # No Celery beat in the cluster: the CronJobs are the only scheduler.
    for _, pod in _pod_specs(docs):
        for container in pod["containers"]:
            assert container.get("args", [None])[0] != "beat"
    # Beat (outside Kubernetes only) runs the same commands at the same times.
    beat = beat_schedule()
    assert {e["args"][0] for e in beat.values()} == {job.command for job in JOBS}
    for job in JOBS:
        minute, hour, *_ = job.cron.split()
        entry = beat[job.name]["schedule"]
        assert entry._orig_minute == minute and entry._orig_hour == hour


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_versioned_and_really_set(overlay):
    docs = rendered(overlay)
    images = {c["image"] for _, pod in _pod_specs(docs) for c in pod["containers"]}
    assert len(images) == 1, images
    [image] = images
    name, _, tag = image.rpartition(":")
    assert name and name != "dds" and tag and tag != "latest", image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_host_is_the_served_host(overlay):
    docs = rendered(overlay)
    [config] = [d for d in _kind(docs, "ConfigMap") if d["metadata"]["name"].startswith(
        "dds-config-")]  # a content hash: a change rolls the pods
    [ingress] = _kind(docs, "Ingress")
    hosts = config["data"]["ALLOWED_HOSTS"].split(",")
    assert ingress["spec"]["rules"][0]["host"] in hosts
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    assert config["data"]["DEBUG"] == "0"
    for _, pod in _pod_specs(docs):
        for container in pod["containers"]:
            refs = [e["configMapRef"]["name"] for e in container["envFrom"]
                    if "configMapRef" in e]
            assert refs == [config["metadata"]["name"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened(overlay):
    docs = rendered(overlay)
    for owner, pod in _pod_specs(docs):
        name = owner["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod.get("initContainers", []) + pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, name
            if owner["kind"] == "Deployment":
                assert "livenessProbe" in container and "readinessProbe" in container, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_once_as_a_hook_before_the_pods(overlay):
    docs = rendered(overlay)
    [web] = [d for d in _kind(docs, "Deployment") if d["metadata"]["name"] == "dds-web"]
    assert "initContainers" not in web["spec"]["template"]["spec"]
    [job] = _kind(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    # After the (hashed) ConfigMap and the Secret it reads, before the pods (wave 0).
    assert int(annotations["argocd.argoproj.io/sync-wave"]) == -1
    [config] = [d for d in _kind(docs, "ConfigMap") if d["metadata"]["name"].startswith(
        "dds-config-")]
    [secret] = _kind(docs, "ExternalSecret")
    for early in (config, secret):
        assert int(early["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < -1
    assert "replicas" not in web["spec"]  # the HPA owns it
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    kinds = {d["kind"] for d in docs}
    assert {"PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy",
            "ExternalSecret", "ServiceAccount"} <= kinds


def test_argocd_applications_sync_both_environments():
    docs = _docs(K8S / "argocd" / "applications.yaml")
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    assert set(apps) == {"dds-staging", "dds-production"}
    for env, app in (("staging", apps["dds-staging"]), ("production", apps["dds-production"])):
        assert app["spec"]["source"]["path"] == f"k8s/overlays/{env}"
        assert "example.org" not in app["spec"]["source"]["repoURL"]
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}
        assert policy["retry"]["limit"] > 0 and policy["retry"]["backoff"]["factor"] > 1
