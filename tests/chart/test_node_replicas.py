"""Two replicas, one truth, on a real node with the chart's defaults (two replicas on the Pod
network): after an Assessment, every `query` the VS Code extension runs (and every other)
answers the same in each Pod; the leader deleted, the new leader lists every finding and keeps
the history and the events; the same after `helm upgrade` rolls both Pods; and persistence
with two replicas gives each its own claim. Needs the node, like test_node.py.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import tempfile
import time
from typing import Any

import pytest

from conftest import CHART, Kubectl, operator_status, wait_for
from test_node import Release, installed, node, node_values  # noqa: F401  (fixtures)

APP = "shop"


def ready_pods(release: Release) -> list[str]:
    return sorted(
        p["metadata"]["name"] for p in release.pods()
        if p["metadata"].get("deletionTimestamp") is None
        and any(c.get("ready") for c in p["status"].get("containerStatuses", []))
    )


def query(kubectl: Kubectl, release: Release, pod: str, *args: str) -> tuple[int, Any, str]:
    """`kube9-operator query ARGS` in POD as the extension execs it: exit code, stdout document,
    the first stderr line (kubectl adds its own after it)."""
    proc = kubectl.run(
        "exec", "-n", release.namespace, "-c", "operator", pod, "--", "kube9-operator", "query", *args, check=False
    )
    document = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, document, (proc.stderr.splitlines() or [""])[0]


def questions(namespace: str, assessment: str, run: str) -> list[list[str]]:
    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    events = ["events", "list", "--limit=25", "--format=json"]
    return [
        # What the extension 1.38 runs.
        events,
        [*events, f"--since={since}"],
        [*events, f"--object-namespace={namespace}"],
        [*events, "--object-kind=Assessment"],
        ["argocd", "resource-tree", "get", APP, f"--namespace={namespace}", "--format=json"],
        # Every other query.
        ["findings", "--assessment", assessment, "--limit", "1000000"],
        ["assessments", "list"],
        ["assessments", "get", run],
        ["assessments", "history", assessment],
        ["collections"],
        ["status"],
        ["ai-conformance", "latest"],
        ["ai-conformance", "requirements"],
    ]


def same_everywhere(kubectl: Kubectl, release: Release, pods: list[str], args: list[str]) -> Any:
    """The answer, once every Pod gives the same (a write may land between two execs)."""
    answers: list[Any] = []

    def equal() -> bool:
        answers[:] = [query(kubectl, release, pod, *args) for pod in pods]
        return all(a == answers[0] for a in answers)

    try:
        wait_for(f"the same answer to {args} in {pods}", 10, equal, interval=0.5)
    except Exception as e:  # the differing answers, not just a timeout
        raise AssertionError(f"{args}: {json.dumps(answers, indent=1)[:4000]}") from e
    return answers[0]


def careless_workloads(kubectl: Kubectl, namespace: str) -> None:
    """Deployments that fail many checks (Pod Security refuses their Pods: the checks read the
    Deployments)."""
    for i in range(3):
        kubectl.apply({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"careless-{i}", "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": f"careless-{i}"}},
                     "template": {"metadata": {"labels": {"app": f"careless-{i}"}},
                                  "spec": {"containers": [{"name": "app", "image": "shop/web:latest"}]}}},
        })


def assess(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    kubectl.apply({"apiVersion": "kube9.io/v1alpha1", "kind": "Assessment", "metadata": {"name": name},
                   "spec": {"namespaces": {"include": [namespace]}}})

    def completed() -> Any:
        status = (kubectl.get("assessment", name) or {}).get("status", {})
        return status if status.get("phase") == "Completed" else None

    return wait_for(f"the Assessment {name} to complete", 120, completed, interval=0.5)


def kept(kubectl: Kubectl, release: Release, pod: str, name: str) -> dict[str, Any]:
    """What a failover or an upgrade must keep, as the leader POD answers it."""
    _, findings, _ = query(kubectl, release, pod, "findings", "--assessment", name, "--limit", "1000000")
    _, history, _ = query(kubectl, release, pod, "assessments", "history", name)
    _, events, _ = query(kubectl, release, pod, "events", "list", "--limit=1000", "--object-kind=Assessment",
                         "--format=json")
    return {"findings": findings, "history": history,
            "own events": sorted(e["id"] for e in events["events"] if e["event_type"] != "cluster")}


def leader_of(kubectl: Kubectl, pods: list[str]) -> str:
    wait_for("a leader among the ready Pods", 60, lambda: operator_status(kubectl).get("leader") in pods)
    return operator_status(kubectl)["leader"]


def test_every_pod_answers_as_the_leader_and_a_failover_or_an_upgrade_keeps_everything(
    installed: Release, kubectl: Kubectl  # noqa: F811
) -> None:
    values = node_values(kubectl)
    values.pop("replicaCount")  # the chart's default: two
    installed.config.install(CHART, installed.name, values, namespace=installed.namespace, timeout=120)
    wait_for("two ready replicas", 180, lambda: len(ready_pods(installed)) == 2, interval=0.5)
    pods = ready_pods(installed)
    leader = leader_of(kubectl, pods)
    careless_workloads(kubectl, installed.namespace)
    name = f"replicas-{int(time.time())}"
    status = assess(kubectl, installed.namespace, name)
    _, runs, _ = query(kubectl, installed, leader, "assessments", "list")
    run = str(runs["runs"][0]["id"]) if runs and runs.get("runs") else "1"
    for args in questions(installed.namespace, name, run):
        code, document, error = same_everywhere(kubectl, installed, pods, args)
        assert code == 0 or json.loads(error).get("ok") is False, (args, code, error)
    _, findings, _ = query(kubectl, installed, leader, "findings", "--assessment", name, "--limit", "1000000")
    assert findings["runId"] == status["runId"] and findings["findings"], findings
    before = kept(kubectl, installed, leader, name)

    # The leader deleted: whoever leads next lists every finding, the history and the events.
    time.sleep(3)
    kubectl.run("delete", "pod", leader, "-n", installed.namespace, "--wait=false")
    wait_for("another leader", 60, lambda: operator_status(kubectl).get("leader") not in (None, leader))
    wait_for("two ready replicas again", 180, lambda: len(ready_pods(installed)) == 2, interval=0.5)
    new_leader = leader_of(kubectl, ready_pods(installed))
    after = kept(kubectl, installed, new_leader, name)
    assert after["findings"] == before["findings"], "every finding of the last run after a failover"
    assert after["history"] == before["history"]
    assert set(before["own events"]) <= set(after["own events"])

    # `helm upgrade` with a changed value rolls both Pods: the same again.
    time.sleep(3)
    values["statusIntervalSeconds"] = values["statusIntervalSeconds"] + 1
    installed.config.upgrade(CHART, installed.name, values, namespace=installed.namespace, timeout=180)
    installed.kubectl.run(
        "rollout", "status", f"deployment/{installed.deployment}", "-n", installed.namespace, "--timeout=180s"
    )
    wait_for("two ready replicas of the new revision", 180,
             lambda: len(ready_pods(installed)) == 2 and not set(ready_pods(installed)) & set(pods + [new_leader]),
             interval=0.5)
    upgraded = leader_of(kubectl, ready_pods(installed))
    after = kept(kubectl, installed, upgraded, name)
    assert after["findings"] == before["findings"], "every finding of the last run after an upgrade"
    assert after["history"] == before["history"]
    assert set(before["own events"]) <= set(after["own events"])
    same_everywhere(kubectl, installed, ready_pods(installed), ["findings", "--assessment", name, "--limit", "1000000"])


def test_persistence_with_two_replicas_gives_each_a_volume_and_both_become_ready(
    installed: Release, kubectl: Kubectl  # noqa: F811
) -> None:
    # The bare node has no provisioner: a local volume per replica, as one would provide.
    storage_class = f"kube9-local-{installed.namespace}"
    base = pathlib.Path(tempfile.mkdtemp(prefix="kube9-pv-"))
    volumes = []
    for i in range(2):
        path = base / str(i)
        path.mkdir()
        path.chmod(0o777)
        volume = f"{installed.namespace}-{i}"
        kubectl.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
                       "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                "storageClassName": storage_class, "persistentVolumeReclaimPolicy": "Delete",
                                "hostPath": {"path": str(path), "type": "Directory"}}})
        volumes.append(volume)
    try:
        values = node_values(kubectl, replicaCount=2,
                             persistence={"enabled": True, "size": "1Gi", "storageClassName": storage_class})
        installed.config.install(CHART, installed.name, values, namespace=installed.namespace, timeout=120)
        proc = kubectl.run("rollout", "status", f"statefulset/{installed.deployment}", "-n", installed.namespace,
                           "--timeout=180s", check=False)
        assert proc.returncode == 0, proc.stderr
        wait_for("two ready replicas", 180, lambda: len(ready_pods(installed)) == 2, interval=0.5)
        claims = kubectl.json("get", "pvc", "-n", installed.namespace)["items"]
        assert sorted(c["spec"]["volumeName"] for c in claims) == sorted(volumes), "a volume per replica"
        assert all(c["status"]["phase"] == "Bound" for c in claims)
    finally:
        installed.uninstall()
        kubectl.run("delete", "pvc", "--all", "-n", installed.namespace, "--wait=false", check=False)
        for volume in volumes:
            kubectl.run("delete", "pv", volume, "--wait=false", check=False)
