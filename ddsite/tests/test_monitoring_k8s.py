"""k8s/monitoring: the alert rules pass promtool (syntax, and a unit test per alert), the
dashboard and the rules only name metrics the app exports, and the component renders on
top of the base without exposing the metrics port to the ingress.

promtool is Debian's ``prometheus`` package (apt-get install -y prometheus); without it
these tests fail, they do not skip.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from ddsite import metrics_export

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "k8s" / "monitoring"
RULE = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "dashboards" / "dds.json"
# Names a query may use besides the app's families: Prometheus's own, PromQL functions.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {
    "sum", "rate", "increase", "max", "min", "by", "without", "histogram_quantile", "topk",
    "clamp_min", "time", "absent", "and", "or", "unless", "bool", "le", "avg", "count",
}


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, ("promtool is missing: apt-get install -y prometheus (Debian ships "
                   "promtool in it); the alert rules cannot be checked")
    return found


def _spec() -> dict:
    rule = yaml.safe_load(RULE.read_text())
    assert rule["kind"] == "PrometheusRule"
    return rule["spec"]


def _rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_spec()))
    shutil.copy(MONITORING / "tests" / "rules-test.yaml", tmp_path / "rules-test.yaml")
    return tmp_path


def _alerts() -> dict[str, dict]:
    return {r["alert"]: r for g in _spec()["groups"] for r in g["rules"] if "alert" in r}


def _records() -> set[str]:
    return {r["record"] for g in _spec()["groups"] for r in g["rules"] if "record" in r}


def test_promtool_checks_the_rules(tmp_path):
    out = subprocess.run([_promtool(), "check", "rules", str(_rules_dir(tmp_path) / "rules.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_promtool_unit_tests_every_alert(tmp_path):
    directory = _rules_dir(tmp_path)
    out = subprocess.run([_promtool(), "test", "rules", "rules-test.yaml"], cwd=directory,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    # Each alert is tested both firing and quiet.
    cases = yaml.safe_load((MONITORING / "tests" / "rules-test.yaml").read_text())["tests"]
    fired, quiet = set(), set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == set(_alerts()), set(_alerts()) ^ fired
    assert quiet == set(_alerts()), set(_alerts()) ^ quiet


def test_the_required_alerts_exist_with_a_runbook():
    alerts = _alerts()
    assert {"DDSHigh5xxRatio", "DDSHighLatencyP95", "DDSScheduledJobStale",
            "DDSScheduledJobFailed", "DDSAuditVerificationFailed", "DDSUnitOverQuotaWarning",
            "DDSLoginLockoutSpike", "DDSKeyRotationStuck", "DDSBrokerDown"} <= set(alerts)
    docs = (ROOT / "docs" / "operations.md").read_text()
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == name.lower(), name
        assert f"### {name}" in docs, f"docs/operations.md does not explain {name}"


def _names_in(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\"[^\"]*\"", "", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"e\d*", w)
            and w not in {"command", "unit", "route", "status", "task", "direction", "reason",
                          "outcome", "job"}}


def _base_family(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_total", "_created"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@cache
def _exported() -> frozenset[str]:
    return frozenset(metrics_export.exported_families())


@pytest.mark.django_db
def test_every_dashboard_query_names_an_exported_metric():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"]
    titles = {p["title"] for p in dashboard["panels"]}
    for needed in ("Requests per second by route", "Server errors (5xx ratio)",
                   "Bytes transferred", "Storage used per unit (share of quota)",
                   "Scheduled jobs: time since last success"):
        assert needed in titles
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = _names_in(target["expr"])
            assert names, (panel["title"], target["expr"])
            for name in names:
                assert name in PROMETHEUS_SERIES or _base_family(name) in _exported(), (
                    panel["title"], name)


@pytest.mark.django_db
def test_every_rule_names_an_exported_metric():
    for group in _spec()["groups"]:
        for rule in group["rules"]:
            for name in _names_in(rule["expr"]):
                assert (name in PROMETHEUS_SERIES or name in _records()
                        or _base_family(name) in _exported()), (rule.get("alert"), name)


@cache
def _rendered(tmp: str) -> tuple:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing (apt-get install kubectl)"
    overlay = Path(tmp)
    rel = Path("../" * len(overlay.resolve().parts[1:])) / ROOT.relative_to("/")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(rel / "k8s" / "base")],
        "components": [str(rel / "k8s" / "monitoring")]}))
    out = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def _one(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def test_the_component_renders_on_the_base_and_keeps_metrics_off_the_ingress(tmp_path):
    docs = _rendered(str(tmp_path))
    for deployment, container in (("dds-web", "web"), ("dds-worker", "worker")):
        spec = _one(docs, "Deployment", deployment)["spec"]["template"]["spec"]
        c = next(c for c in spec["containers"] if c["name"] == container)
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        assert env["DDS_METRICS_PORT"] == "9100" and env["PROMETHEUS_MULTIPROC_DIR"]
        assert {"containerPort": 9100, "name": "metrics"} in c["ports"]
    # The ingress's backend Service and the Ingress know nothing of the metrics port.
    ingress_services = {p["backend"]["service"]["name"]
                        for i in docs if i["kind"] == "Ingress"
                        for r in i["spec"]["rules"] for p in r["http"]["paths"]}
    assert ingress_services and not any("metrics" in s for s in ingress_services)
    for name in ingress_services:
        ports = _one(docs, "Service", name)["spec"]["ports"]
        assert all(p.get("targetPort") not in (9100, "metrics") for p in ports), ports
    # Each ServiceMonitor selects a Service that has a "metrics" port.
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {"dds-web", "dds-worker"}
    for monitor in monitors:
        wanted = monitor["spec"]["selector"]["matchLabels"]
        services = [s for s in docs if s["kind"] == "Service"
                    and wanted.items() <= s["metadata"].get("labels", {}).items()]
        assert len(services) == 1, monitor["metadata"]["name"]
        assert {p["name"] for p in services[0]["spec"]["ports"]} >= {
            e["port"] for e in monitor["spec"]["endpoints"]}
    # Only Prometheus may reach port 9100.
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    opening = [p for p in policies for rule in p["spec"].get("ingress", [])
               for port in rule.get("ports", []) if port.get("port") == 9100]
    assert [p["metadata"]["name"] for p in opening] == ["dds-metrics-from-prometheus"]
    rule = opening[0]["spec"]["ingress"][0]["from"][0]
    assert rule["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"}
    # The dashboard ConfigMap is picked up by Grafana's sidecar and holds the file.
    board = _one(docs, "ConfigMap", "dds-grafana-dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["dds.json"]) == json.loads(DASHBOARD.read_text())
    assert _one(docs, "PrometheusRule", "dds")["spec"] == _spec()


def test_log_shipping_parses_the_lines_the_app_writes():
    import logging

    from core.logging_json import JsonFormatter

    config = yaml.safe_load((MONITORING / "fluent-bit.yaml").read_text())["data"]
    parser = config["dds-parsers.conf"]
    assert re.search(r"Format\s+json", parser) and re.search(r"Time_Key\s+time", parser)
    fmt = re.search(r"Time_Format\s+(\S+)", parser).group(1).replace("%L", "%f")
    record = logging.LogRecord("dds.x", logging.INFO, __file__, 1, "hello", None, None)
    line = json.loads(JsonFormatter().format(record))
    parsed = dt.datetime.strptime(line["time"], fmt)  # noqa: DTZ007 - fmt carries %z (asserted)
    assert parsed.tzinfo is not None
    assert re.search(r"Name\s+opensearch", config["dds-output.conf"])
    assert "Logstash_Prefix    dds-logs" in config["dds-output.conf"]
    template = json.loads((MONITORING / "opensearch" / "index-template.json").read_text())
    assert template["index_patterns"] == ["dds-logs-*"]
    fields = template["template"]["mappings"]["properties"]
    for field in ("time", "level", "logger", "message", "request_id", "user_id",
                  "project_id", "client_ip", "duration_ms", "status", "route"):
        assert field in fields, field
    monitor = json.loads((MONITORING / "opensearch" / "monitor-error-burst.json").read_text())
    assert monitor["inputs"][0]["search"]["indices"] == ["dds-logs-*"]
    assert "ERROR" in json.dumps(monitor["inputs"][0]["search"]["query"])
