"""Prometheus, built from its Go module by `cargo xtask` (KUBE9_PROMETHEUS), scrapes the chart's
operator running as a Pod on the real node, finding it by Kubernetes service discovery and
labelling its series with `namespace` and `pod` as the Prometheus Operator does; a PromQL query
returns the per-pillar scores of the scheduled Assessment's completed run, equal to its status,
and the chart's PrometheusRule loads and evaluates without error.

Needs `cargo xtask testenv up --node` and `cargo xtask image` (`cargo xtask ci` does both).
"""

from __future__ import annotations

import json
import os
import pathlib
import urllib.parse
import urllib.request
from typing import Any

import helm_python as helm
import yaml

from conftest import CHART, Kubectl, Process, free_port, manifests, one, wait_for
from test_node import Release, installed, node, node_values  # noqa: F401 (fixtures)


def prometheus_binary() -> str:
    path = os.environ.get("KUBE9_PROMETHEUS")
    assert path, "KUBE9_PROMETHEUS is not set: run the chart tests with `cargo xtask chart-test`, which builds it"
    return path


def get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.load(response)


def query(port: int, promql: str) -> list[dict[str, Any]]:
    answer = get(port, "/api/v1/query?query=" + urllib.parse.quote(promql))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_scrapes_the_operator_on_the_node_and_reads_the_pillar_scores(
    installed: Release, kubectl: Kubectl, tmp_path: pathlib.Path  # noqa: F811
) -> None:
    values = node_values(kubectl)
    installed.config.install(CHART, installed.name, values, namespace=installed.namespace, timeout=60)
    pod = installed.wait_available()
    scheduled = f"{installed.deployment}-scheduled"
    done = wait_for(
        "the scheduled Assessment to complete",
        120,
        lambda: (a := kubectl.get("assessment", scheduled)) and a.get("status", {}).get("phase") == "Completed" and a,
    )
    status = done["status"]

    # The chart's own rules, as its PrometheusRule would load them.
    with helm.Chart.load(CHART) as chart:
        objects = manifests(chart.render({**values, "metrics": {"prometheusRule": {"enabled": True}}},
                                         name=installed.name, namespace=installed.namespace))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(one(objects, "PrometheusRule")["spec"]))
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(tmp_path / "rules.yaml")],
        "scrape_configs": [{
            "job_name": "kube9-operator",
            "kubernetes_sd_configs": [{
                "role": "pod",
                "kubeconfig_file": kubectl.kubeconfig,
                "namespaces": {"names": [installed.namespace]},
            }],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "regex": "kube9-operator",
                 "action": "keep"},
                {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "health", "action": "keep"},
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ],
        }],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [prometheus_binary(), f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"]
    with Process(argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "prometheus") as prometheus:
        wait_for("Prometheus to answer", 60, lambda: _ready(port))
        target = wait_for(
            "the operator's Pod to be scraped up",
            60,
            lambda: [r for r in query(port, f'up{{namespace="{installed.namespace}"}}') if r["value"][1] == "1"],
        )
        assert target[0]["metric"]["pod"] == pod["metadata"]["name"], target

        promql = f'kube9_assessment_score{{assessment="{scheduled}", namespace="{installed.namespace}"}}'
        expected = {p["pillar"]: p["score"] for p in status["pillars"]} | {"overall": status["score"]}
        result = wait_for(
            "the per-pillar scores in Prometheus",
            60,
            lambda: (r := query(port, promql)) and len(r) == len(expected) and r,
        )
        scores = {r["metric"]["pillar"]: int(float(r["value"][1])) for r in result}
        assert scores == expected, (scores, expected, prometheus.logs()[-2000:])
        assert {r["metric"]["pod"] for r in result} == {pod["metadata"]["name"]}
        # Findings by severity add up to the run's failed findings by severity.
        findings = query(port, f'sum by (severity) (kube9_assessment_findings{{assessment="{scheduled}"}})')
        by_severity = {r["metric"]["severity"]: int(float(r["value"][1])) for r in findings}
        expected_severity = {k: v for k, v in (status.get("bySeverity") or {}).items() if v}
        assert {k: v for k, v in by_severity.items() if v} == expected_severity, (by_severity, status.get("bySeverity"))
        assert query(port, f'kube9_assessment_last_run_success{{assessment="{scheduled}"}}')[0]["value"][1] == "1"

        # The chart's alerts load and evaluate against the real series; none fires for a
        # healthy operator (kube-state-metrics is not here, so the readiness half of
        # Kube9OperatorNotReady has no series: it evaluates to nothing).
        def evaluated() -> list[dict[str, Any]] | None:
            groups = get(port, "/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None

        rules = wait_for("the alert rules to be evaluated", 60, evaluated)
        assert len(rules) == 9 and all(r["health"] == "ok" for r in rules), rules
        firing = [a for a in get(port, "/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
        assert firing == [], firing


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
