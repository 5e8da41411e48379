"""The Kubernetes manifests parse, reference files that exist, and run real commands."""

from pathlib import Path

import yaml
from django.core.management import get_commands

K8S = Path(__file__).resolve().parents[2] / "k8s"


def _docs(path: Path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_every_manifest_parses_and_kustomizations_resolve():
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = _docs(kustomization)[0]
        for resource in spec.get("resources", []):
            target = (kustomization.parent / resource).resolve()
            assert target.exists(), f"{kustomization}: missing {resource}"
            if target.is_file():
                assert _docs(target)


def test_cronjobs_run_existing_management_commands():
    commands = get_commands()
    jobs = [d for d in _docs(K8S / "base" / "cronjobs.yaml") if d["kind"] == "CronJob"]
    assert len(jobs) >= 5
    for job in jobs:
        [container] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        role, command = container["args"][:2]
        assert role == "manage"
        assert command in commands, f"{job['metadata']['name']}: no command {command}"
        assert job["spec"]["concurrencyPolicy"] == "Forbid"


def test_web_probes_use_the_health_endpoints():
    [web, _service] = _docs(K8S / "base" / "web.yaml")
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
