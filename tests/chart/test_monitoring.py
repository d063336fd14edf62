"""The chart's monitoring objects and policy-report permissions, offline: each optional object
renders only when enabled; the PrometheusRule passes the real `promtool check rules` and its
unit tests (promtool/alerts_test.yaml) fire each alert on its condition and not otherwise; the
dashboard passes the grafana-foundation-sdk's strict types. promtool and the validator are built
from their Go modules by `cargo xtask` (KUBE9_PROMTOOL, KUBE9_DASHBOARD_VALIDATOR)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
from typing import Any

import helm_python as helm
import pytest
import yaml

from conftest import CHART, ROOT, find, manifests, one

HERE = pathlib.Path(__file__).parent
OPTIONAL = {
    ("serviceMonitor",): {"ServiceMonitor", "Service"},
    ("podMonitor",): {"PodMonitor"},
    ("prometheusRule",): {"PrometheusRule"},
    ("dashboard",): {"ConfigMap"},
}
REPORT_KINDS = {("openreports.io", "reports"), ("openreports.io", "clusterreports"),
                ("wgpolicyk8s.io", "policyreports"), ("wgpolicyk8s.io", "clusterpolicyreports")}


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return manifests(chart.render(values or {}, name="kube9", namespace="kube9-system"))


def tool(env: str) -> pathlib.Path:
    path = os.environ.get(env)
    if not path:
        pytest.fail(f"{env} is not set: run the chart tests with `cargo xtask chart-test`, which builds it")
    return pathlib.Path(path)


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def test_each_monitoring_object_renders_only_when_enabled(chart: helm.Chart) -> None:
    base = kinds(render(chart))
    assert not {"ServiceMonitor", "PodMonitor", "PrometheusRule", "Service"} & set(base)
    assert not [c for c in find(render(chart), "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    for (key,), added in OPTIONAL.items():
        objects = render(chart, {"metrics": {key: {"enabled": True}}})
        extra = list(kinds(objects))
        for kind in base:
            extra.remove(kind)
        assert set(extra) == added, (key, extra)


def test_the_service_monitor_and_pod_monitor_scrape_the_operators_metrics(chart: helm.Chart) -> None:
    objects = render(chart, {"metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}}})
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [{"port": "http-metrics", "path": "/metrics", "interval": "15s"}]
    assert service["spec"]["ports"][0]["targetPort"] == "health"
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert all(service["metadata"]["labels"][k] == v for k, v in selected.items())
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in service["spec"]["selector"].items())
    pods = one(render(chart, {"metrics": {"podMonitor": {"enabled": True}}}), "PodMonitor")
    assert pods["spec"]["podMetricsEndpoints"] == [{"port": "health", "path": "/metrics", "interval": "30s"}]
    assert all(pod_labels[k] == v for k, v in pods["spec"]["selector"]["matchLabels"].items())


def rules_file(chart: helm.Chart, directory: pathlib.Path, values: dict[str, Any] | None = None) -> pathlib.Path:
    rule = one(render(chart, {"metrics": {"prometheusRule": {"enabled": True, **(values or {})}}}), "PrometheusRule")
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


def test_promtool_accepts_the_rules_and_each_alert_has_a_runbook_section(chart: helm.Chart, tmp_path: pathlib.Path) -> None:
    path = rules_file(chart, tmp_path)
    result = subprocess.run([str(tool("KUBE9_PROMTOOL")), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = [r["alert"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    assert len(alerts) == 9 and f"SUCCESS: {len(alerts)} rules found" in result.stdout, result.stdout
    operations = (ROOT / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", operations, re.M)}
    for alert in alerts:
        assert alert.lower() in anchors, f"docs/operations.md has no section for {alert}"


def test_promtool_unit_tests_fire_each_alert_on_its_condition_only(chart: helm.Chart, tmp_path: pathlib.Path) -> None:
    rules_file(chart, tmp_path)
    shutil.copy(HERE / "promtool" / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    result = subprocess.run([str(tool("KUBE9_PROMTOOL")), "test", "rules", "alerts_test.yaml"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (HERE / "promtool" / "alerts_test.yaml").read_text()))
    alerts = {r["alert"] for g in yaml.safe_load((tmp_path / "rules.yaml").read_text())["groups"] for r in g["rules"]}
    assert tested == alerts, "every alert has a unit test"


def test_the_score_threshold_reaches_the_rule(chart: helm.Chart, tmp_path: pathlib.Path) -> None:
    rules = yaml.safe_load(rules_file(chart, tmp_path, {"scoreDropThreshold": 25}).read_text())
    (drop,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "Kube9AssessmentScoreDropped"]
    assert drop["expr"].endswith(">= 25"), drop["expr"]
    with pytest.raises(Exception):
        chart.validate_schema({**chart.values, "metrics": {"prometheusRule": {"scoreDropThreshold": 0}}})


def test_the_dashboard_is_a_valid_grafana_dashboard_for_the_sidecar(chart: helm.Chart, tmp_path: pathlib.Path) -> None:
    (configmap,) = [c for c in find(render(chart, {"metrics": {"dashboard": {"enabled": True}}}), "ConfigMap")
                    if c["metadata"]["name"].endswith("-dashboard")]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = configmap["data"].values()
    path = tmp_path / "dashboard.json"
    path.write_text(text)
    result = subprocess.run([str(tool("KUBE9_DASHBOARD_VALIDATOR")), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    dashboard = json.loads(text)
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Tier", "Health", "Score per pillar", "Findings by severity", "Assessment runs",
            "Uploads to kube9-server", "Memory"} <= titles
    # Every kube9 metric a panel queries is one the operator exports.
    exported = (ROOT / "crates" / "operator" / "src" / "base" / "metrics.rs").read_text()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for metric in re.findall(r"kube9_(\w+?)(?:_total|_bucket)?\{", target["expr"]):
                assert re.search(rf"^\s+{metric}: ", exported, re.M), (panel["title"], metric)
    # A broken dashboard is refused: the validator is not a rubber stamp.
    dashboard["panels"][0]["gridPos"] = "top left"
    path.write_text(json.dumps(dashboard))
    assert subprocess.run([str(tool("KUBE9_DASHBOARD_VALIDATOR")), str(path)], capture_output=True).returncode != 0


def report_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in one(objects, "ClusterRole")["rules"] if set(r["apiGroups"]) & {"openreports.io", "wgpolicyk8s.io"}]


def test_policy_reports_are_on_by_default_with_exactly_their_kinds_and_verbs(chart: helm.Chart) -> None:
    objects = render(chart)
    rules = report_rules(objects)
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == REPORT_KINDS
    assert all(sorted(rule["verbs"]) == ["create", "delete", "list", "patch"] for rule in rules), rules
    assert all("resourceNames" not in rule for rule in rules)
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "KUBE9_POLICY_REPORTS", "value": "true"} in container["env"]
    off = render(chart, {"policyReports": {"enabled": False}})
    assert report_rules(off) == []
    container = one(off, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "KUBE9_POLICY_REPORTS", "value": "false"} in container["env"]
