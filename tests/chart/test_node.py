"""End to end on a real node: the chart's operator runs as a Pod on a kubelet.

Needs `cargo xtask testenv up --node` and `cargo xtask image` (`cargo xtask ci` does both).
There is no kube-proxy, so the Pod is told the API server's address: with the node, the API
server listens on the Pod bridge's gateway too, and the Pod runs on the Pod network in a
namespace with Pod Security `enforce: restricted`, as production clusters run it. The test
that talks to the kube9-server simulator on loopback uses the host network instead.
Everything else (the image, the ServiceAccount token and CA the
kubelet mounts, the security context, the probes) is what a production cluster does.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import pytest

from conftest import (
    CHART,
    TARGET,
    Kubectl,
    ServerSim,
    cluster_endpoint,
    free_port,
    operator_status,
    wait_for,
)

KEY = "k9-node-key-0123456789"
IMAGE = ("localhost/kube9-operator", "dev")
INTERVAL = 5
NODE_SOCKET = TARGET / "testenv" / "node" / "containerd.sock"
NODE_CNI = TARGET / "testenv" / "node" / "cni" / "10-kube9.conflist"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
}


def ctr(*args: str) -> str:
    return subprocess.run(
        ["ctr", "--address", str(NODE_SOCKET), "--namespace", "k8s.io", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def node(kubectl: Kubectl, request: pytest.FixtureRequest) -> str:
    nodes = kubectl.json("get", "nodes")["items"]
    ready = [
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
    ]
    missing = "no Ready node: run `cargo xtask testenv up --node` and `cargo xtask image`"
    if not ready or not NODE_SOCKET.exists():
        if request.config.getoption("--require-node"):
            pytest.fail(missing)
        pytest.skip(missing)
    images = ctr("images", "ls", "-q").split()
    if f"{IMAGE[0]}:{IMAGE[1]}" not in images:
        pytest.fail(f"the node has no {IMAGE[0]}:{IMAGE[1]} image: run `cargo xtask image` ({images})")
    return ready[0]


def pod_gateway() -> str:
    """The Pod bridge's own address (the `.1` of the node's Pod subnet), where Pods reach the host."""
    subnet = json.loads(NODE_CNI.read_text())["plugins"][0]["ipam"]["ranges"][0][0]["subnet"]
    return subnet.split("/")[0].rsplit(".", 1)[0] + ".1"


def restrict(kubectl: Kubectl, namespace: str) -> None:
    """Pod Security admission `restricted` on the namespace, as a hardened cluster sets it."""
    labels = [f"{k}={v}" for k, v in RESTRICTED.items()]
    kubectl.run("label", "namespace", namespace, "--overwrite", *labels)


def node_values(kubectl: Kubectl, host_network: bool = False, **extra: Any) -> dict[str, Any]:
    """Values for the node: on the Pod network (the default), the API server at the bridge's
    gateway; on the host network, at its loopback address."""
    server, _ = cluster_endpoint(kubectl)
    host, port = server.removeprefix("https://").rsplit(":", 1)
    if not host_network:
        host = pod_gateway()
    values: dict[str, Any] = {
        "image": {"repository": IMAGE[0], "tag": IMAGE[1], "pullPolicy": "Never"},
        "hostNetwork": host_network,
        # One Pod unless a test asks for more: the tests below follow that Pod.
        "replicaCount": 1,
        "healthPort": free_port(),
        "statusIntervalSeconds": INTERVAL,
        "extraEnv": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": host},
            {"name": "KUBERNETES_SERVICE_PORT", "value": port},
        ],
    }
    values.update(extra)
    return values


class Release:
    """One installed release on the node; uninstalled, and its Pods gone, afterwards."""

    def __init__(self, config: helm.Config, kubectl: Kubectl, namespace: str, name: str) -> None:
        self.config, self.kubectl, self.namespace, self.name = config, kubectl, namespace, name
        self.deployment = f"{name}-kube9-operator"

    def pods(self) -> list[dict[str, Any]]:
        """The operator's Pods (not the UI's, when ui.enabled adds one)."""
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=kube9-operator"
        return self.kubectl.json("get", "pods", "-n", self.namespace, "-l", selector)["items"]

    def all_pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.name}"
        return self.kubectl.json("get", "pods", "-n", self.namespace, "-l", selector)["items"]

    def wait_available(self, timeout: int = 120) -> dict[str, Any]:
        proc = self.kubectl.run(
            "rollout", "status", f"deployment/{self.deployment}", "-n", self.namespace, f"--timeout={timeout}s",
            check=False,
        )
        if proc.returncode != 0:
            pods = json.dumps([p.get("status") for p in self.pods()], indent=1)[-3000:]
            pytest.fail(f"the Deployment did not become available: {proc.stderr.strip()}\n{pods}")
        self.kubectl.run(
            "wait", "--for=condition=Available", f"deployment/{self.deployment}", "-n", self.namespace, "--timeout=60s"
        )
        running = [p for p in self.pods() if p["metadata"].get("deletionTimestamp") is None]
        assert len(running) == 1, [p["metadata"]["name"] for p in running]
        return running[0]

    def uninstall(self) -> None:
        self.config.uninstall(self.name, ignore_not_found=True)
        wait_for("the release's Pods to be gone", 60, lambda: self.all_pods() == [], interval=0.5)


@pytest.fixture
def installed(
    node: str, singleton: None, helm_config: helm.Config, kubectl: Kubectl, namespace: str, release: str
) -> Iterator[Release]:
    """A release to install in a fresh namespace that enforces Pod Security `restricted`."""
    restrict(kubectl, namespace)
    handle = Release(helm_config, kubectl, namespace, release)
    yield handle
    handle.uninstall()


def container_pid(pod: dict[str, Any]) -> int:
    """The host pid of the pod's operator container, from containerd."""
    (status,) = pod["status"]["containerStatuses"]
    container_id = status["containerID"].removeprefix("containerd://")
    for line in ctr("tasks", "ls").splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == container_id:
            return int(fields[1])
    raise AssertionError(f"containerd has no task {container_id}")


def process_facts(pid: int) -> dict[str, Any]:
    proc = pathlib.Path(f"/proc/{pid}")
    uid = [line.split()[1:] for line in (proc / "status").read_text().splitlines() if line.startswith("Uid:")][0]
    root_mount = [line.split() for line in (proc / "mountinfo").read_text().splitlines() if line.split()[4] == "/"]
    environ = dict(
        entry.split("=", 1) for entry in (proc / "environ").read_bytes().decode().split("\0") if "=" in entry
    )
    return {
        "uid": set(uid),
        "root_options": root_mount[-1][5].split(","),
        "environ": environ,
        "root": proc / "root",
    }


def server_minor(kubectl: Kubectl) -> int:
    return int("".join(c for c in kubectl.json("version", "-o", "json")["serverVersion"]["minor"] if c.isdigit()))


def test_the_chart_runs_the_operator_as_a_pod(installed: Release, kubectl: Kubectl) -> None:
    installed.config.install(CHART, installed.name, node_values(kubectl), namespace=installed.namespace, timeout=60)
    pod = installed.wait_available()
    # Admitted under Pod Security `restricted`, on the Pod network.
    labels = kubectl.json("get", "namespace", installed.namespace)["metadata"]["labels"]
    assert {k: labels.get(k) for k in RESTRICTED} == RESTRICTED
    assert not pod["spec"].get("hostNetwork"), "on the Pod network"
    assert pod["status"]["podIP"] != pod["status"]["hostIP"]

    status = wait_for("the Pod's status", 60, lambda: operator_status(kubectl).get("health") == "healthy")
    status = operator_status(kubectl)
    assert (status["mode"], status["tier"], status["namespace"]) == ("operated", "free", installed.namespace)
    configmap = kubectl.get("configmap", "kube9-operator-status", "-n", installed.namespace)
    assert configmap is not None and json.loads(configmap["data"]["status"])["tier"] == "free"

    facts = process_facts(container_pid(pod))
    assert facts["uid"] == {"65532"}, "runs as the non-root user"
    assert "ro" in facts["root_options"], "the root filesystem is read-only"
    # In-cluster configuration: the kubelet's token and CA, no kubeconfig.
    assert "KUBECONFIG" not in facts["environ"]
    account = facts["root"] / "var/run/secrets/kubernetes.io/serviceaccount"
    assert {p.name for p in account.iterdir()} >= {"token", "ca.crt", "namespace"}
    assert not (facts["root"] / "bin/sh").exists(), "no shell in the image"
    assert pod["spec"]["containers"][0]["image"] == ":".join(IMAGE)

    # The extension's exec, exactly as it runs it: the binary by name, one JSON document out.
    # The operator has recorded its own Pod's Events (scheduled, started) in its history.
    name = pod["metadata"]["name"]

    def events_about_the_pod() -> list[dict[str, Any]]:
        proc = kubectl.run(
            "exec", "-n", installed.namespace, "-c", "operator", name, "--",
            "kube9-operator", "query", "events", "list", "--limit=25", "--format=json",
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        document = json.loads(proc.stdout)
        return [e for e in document["events"] if e["object_name"] == name]

    wait_for("the operator's history to hold its own Pod's Events", 60, lambda: events_about_the_pod() != [])
    (first, *_) = events_about_the_pod()
    assert first["severity"] in ("info", "warning", "error", "critical") and first["object_kind"] == "Pod"
    failing = kubectl.run(
        "exec", "-n", installed.namespace, "-c", "operator", name, "--", "kube9-operator", "query", "events", "get",
        "no-such-id", check=False,
    )
    # kubectl adds its own line ("command terminated with exit code 1") after the operator's.
    assert failing.returncode != 0 and json.loads(failing.stderr.splitlines()[0])["ok"] is False
    logs = kubectl.run("logs", "-n", installed.namespace, "-c", "operator", name).stdout
    assert any(json.loads(line).get("message") == "health and metrics server listening" for line in logs.splitlines())


def test_a_deleted_pod_is_replaced_and_stops_on_sigterm(installed: Release, kubectl: Kubectl) -> None:
    installed.config.install(CHART, installed.name, node_values(kubectl), namespace=installed.namespace, timeout=60)
    old = installed.wait_available()
    wait_for("the first status", 60, lambda: operator_status(kubectl).get("health") == "healthy")

    # Watch the old Pod's own reports while it is deleted: its container must end by itself on
    # SIGTERM (exit 0), well inside the 30 s grace period, never killed.
    name = old["metadata"]["name"]
    watch = subprocess.Popen(
        ["kubectl", "--kubeconfig", kubectl.kubeconfig, "get", "pod", name, "-n", installed.namespace,
         "--watch", "--output-watch-events", "-o", "json"],
        stdout=subprocess.PIPE, text=True,
    )
    updates: list[float] = []
    seen = operator_status(kubectl).get("lastUpdate")
    deleted_at = time.monotonic()
    kubectl.run("delete", "pod", name, "-n", installed.namespace, "--wait=true", "--timeout=60s")
    deletion = time.monotonic() - deleted_at
    watch.terminate()
    events, _ = watch.communicate(timeout=10)

    # Status keeps flowing: the new Pod writes within the interval plus its start-up.
    def new_write() -> bool:
        nonlocal seen
        current = operator_status(kubectl).get("lastUpdate")
        if current != seen:
            seen = current
            updates.append(time.monotonic() - deleted_at)
        return len(updates) >= 1 and installed.pods() != [] and all(
            p["metadata"]["name"] != name for p in installed.pods()
        )

    wait_for("a status write by the new Pod", 90, new_write, interval=0.25)
    new = installed.wait_available()
    assert new["metadata"]["name"] != name

    decoder, text, terminated = json.JSONDecoder(), events.strip(), []
    while text:
        try:
            event, end = decoder.raw_decode(text)
        except json.JSONDecodeError:
            break  # the last event, cut off when the watch was stopped
        text = text[end:].lstrip()
        for s in event["object"]["status"].get("containerStatuses", []):
            if "terminated" in s.get("state", {}):
                terminated.append(s["state"]["terminated"])
    print(f"pod deletion took {deletion:.1f}s; first status after it at {updates[0]:.1f}s; exits: {terminated}")
    assert deletion < 20, f"deleting the Pod took {deletion:.1f}s: the operator did not stop on SIGTERM"
    assert terminated and terminated[-1]["exitCode"] == 0, terminated
    assert updates[0] < INTERVAL + 30, f"no status for {updates[0]:.1f}s after the Pod was deleted"


def test_two_replicas_elect_one_leader_and_deleting_it_hands_over(installed: Release, kubectl: Kubectl) -> None:
    values = node_values(kubectl, replicaCount=2)
    installed.config.install(CHART, installed.name, values, namespace=installed.namespace, timeout=60)
    installed.kubectl.run(
        "rollout", "status", f"deployment/{installed.deployment}", "-n", installed.namespace, "--timeout=120s"
    )

    def ready_pods() -> list[str]:
        return sorted(
            p["metadata"]["name"] for p in installed.pods()
            if p["metadata"].get("deletionTimestamp") is None
            and any(c.get("ready") for c in p["status"].get("containerStatuses", []))
        )

    wait_for("two ready replicas", 120, lambda: len(ready_pods()) == 2, interval=0.5)
    pods = ready_pods()
    wait_for("a leader in the status", 60, lambda: operator_status(kubectl).get("leader") in pods, interval=0.25)
    leader = operator_status(kubectl)["leader"]
    (standby,) = [p for p in pods if p != leader]
    lease = kubectl.json("get", "lease", f"{installed.deployment}-leader", "-n", installed.namespace)
    assert lease["spec"]["holderIdentity"] == leader
    assert installed.kubectl.json("get", "pdb", installed.deployment, "-n", installed.namespace)["spec"]["minAvailable"] == 1

    deleted_at = time.monotonic()
    kubectl.run("delete", "pod", leader, "-n", installed.namespace, "--wait=false")
    # The ReplicaSet starts a replacement as soon as the Pod is marked for deletion, often
    # before the kubelet has sent SIGTERM: then two standbys race for the released Lease, and
    # either may win. What matters is that a live replica leads, at once.
    wait_for("another replica to lead", 30, lambda: operator_status(kubectl).get("leader") not in (None, leader), interval=0.1)
    took = time.monotonic() - deleted_at
    new_leader = operator_status(kubectl)["leader"]
    print(f"leader Pod deleted: {new_leader} ({'the standby' if new_leader == standby else 'its replacement'}) "
          f"wrote the status as leader after {took:.2f}s")
    # The deleted leader releases the Lease on SIGTERM; a standby takes it at once (without the
    # release it would wait for the Lease to expire, 12 s).
    assert took < 5, f"a standby took {took:.1f}s to take over"
    wait_for("a replacement replica", 120, lambda: len(ready_pods()) == 2, interval=0.5)
    assert new_leader in ready_pods()
    lease = kubectl.json("get", "lease", f"{installed.deployment}-leader", "-n", installed.namespace)
    assert lease["spec"]["holderIdentity"] == new_leader
    assert operator_status(kubectl).get("leader") == new_leader, "one leader: the other replica stands by"


def test_an_upgrade_with_a_key_rolls_the_pod_and_reaches_pro(installed: Release, kubectl: Kubectl) -> None:
    # The simulator listens on loopback, which only the host network reaches; Pod Security
    # `restricted` (like `baseline`) refuses host networking, so this namespace is privileged.
    labels = [f"{k}-" for k in RESTRICTED]
    kubectl.run("label", "namespace", installed.namespace, *labels)
    values = node_values(kubectl, host_network=True)
    installed.config.install(CHART, installed.name, values, namespace=installed.namespace, timeout=60)
    free = installed.wait_available()
    wait_for("free and healthy", 60, lambda: operator_status(kubectl).get("health") == "healthy")
    assert operator_status(kubectl)["tier"] == "free"

    with ServerSim(KEY) as sim:
        pro_values = {**values, "apiKey": KEY, "server": {"url": sim.url, "caBundle": sim.ca_path.read_text()}}
        upgraded = installed.config.upgrade(CHART, installed.name, pro_values, namespace=installed.namespace, timeout=60)
        assert upgraded["revision"] == 2
        pro = installed.wait_available()
        assert pro["metadata"]["name"] != free["metadata"]["name"], "the new key rolled the Pod"
        status = wait_for(
            "pro from the mounted key",
            60,
            lambda: (s := operator_status(kubectl)).get("tier") == "pro" and s.get("health") == "healthy" and s,
        )
        assert status["registered"] is True
        facts = process_facts(container_pid(pro))
        assert (facts["root"] / "var/run/secrets/kube9/api-key/api-key").read_text() == KEY
        assert facts["environ"]["KUBE9_API_KEY_FILE"] == "/var/run/secrets/kube9/api-key/api-key"
        assert "KUBE9_API_KEY" not in facts["environ"]
        assert KEY not in json.dumps(kubectl.json("get", "operatorstatus", "kube9"))


def memory_working_set(pid: int) -> tuple[int, int]:
    """(working set, usage) in bytes of the pid's memory cgroup, as the kubelet computes it."""
    lines = pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    path = next(line.split(":", 2)[2] for line in lines if line.split(":")[1] in ("memory", ""))
    base = pathlib.Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    if not base.exists():  # cgroup v2
        base = pathlib.Path("/sys/fs/cgroup") / path.lstrip("/")
        usage = int((base / "memory.current").read_text())
        stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
        return usage - int(stat.get("inactive_file", 0)), usage
    usage = int((base / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
    return usage - int(stat.get("total_inactive_file", 0)), usage


def test_the_containers_memory_stays_within_the_charts_limit(installed: Release, kubectl: Kubectl) -> None:
    installed.config.install(CHART, installed.name, node_values(kubectl), namespace=installed.namespace, timeout=60)
    pod = installed.wait_available()
    wait_for("healthy", 60, lambda: operator_status(kubectl).get("health") == "healthy")
    pid = container_pid(pod)
    samples = []
    for _ in range(12):  # two minutes of steady state
        time.sleep(10)
        samples.append(memory_working_set(pid))
    working_set, usage = samples[-1]
    peak = max(ws for ws, _ in samples)
    rss = {
        k: v.strip()
        for k, v in (line.split(":", 1) for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines())
        if k in ("VmRSS", "RssAnon", "RssFile")
    }
    resources = pod["spec"]["containers"][0]["resources"]
    print(
        f"operator container memory after 120 s: working set {working_set / 2**20:.1f} MiB "
        f"(peak {peak / 2**20:.1f} MiB, cgroup usage {usage / 2**20:.1f} MiB); process {rss}; "
        f"chart resources {resources}"
    )
    assert peak < 16 * 2**20, "the chart requests 16Mi: the request must cover the steady state"


def test_pod_security_restricted_is_enforced_where_the_chart_runs(node: str, kubectl: Kubectl, namespace: str) -> None:
    """The namespace label the node tests rely on is enforced: what `restricted` forbids is
    refused, so the chart's Pod being admitted there means it meets the profile."""
    minor = server_minor(kubectl)
    if minor < 25:
        pytest.skip(f"Pod Security admission is GA from 1.25; this server is 1.{minor}")
    restrict(kubectl, namespace)
    for name, spec in [
        ("host-network", {"hostNetwork": True}),
        ("privileged", {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]}),
        ("root", {"containers": [{"name": "c", "image": "x"}]}),
    ]:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "x"}], **spec},
        }
        proc = kubectl.run("create", "-f", "-", input=json.dumps(pod), check=False)
        assert proc.returncode != 0, f"a {name} Pod was admitted in a restricted namespace"
        assert 'violates PodSecurity "restricted:latest"' in proc.stderr, proc.stderr


def test_the_charts_ui_is_reached_through_its_service_and_reads_the_operators_store(
    installed: Release, kubectl: Kubectl
) -> None:
    """ui.enabled: the UI runs as a Pod under its own ServiceAccount, answers through its
    ClusterIP Service (here by the API server's service proxy: the testenv has no kube-proxy),
    shows the OperatorStatus, and reads every finding from the operator's store by exec'ing
    `kube9-operator query` into the operator's Pod, as the VS Code extension does."""
    values = node_values(kubectl)
    values["ui"] = {"enabled": True, "extraEnv": values["extraEnv"]}
    installed.config.install(CHART, installed.name, values, namespace=installed.namespace, timeout=60)
    pod = installed.wait_available()
    ui = f"{installed.deployment}-ui"
    proc = kubectl.run("rollout", "status", f"deployment/{ui}", "-n", installed.namespace, "--timeout=120s", check=False)
    assert proc.returncode == 0, proc.stderr
    # The UI's Pod is not one of the operator's: the extension and the UI pick those by label.
    operators = kubectl.json("get", "pods", "-n", installed.namespace, "-l", "app.kubernetes.io/name=kube9-operator")
    assert [p["metadata"]["name"] for p in operators["items"]] == [pod["metadata"]["name"]]
    account = kubectl.json("get", "deployment", ui, "-n", installed.namespace)["spec"]["template"]["spec"]
    assert account["serviceAccountName"] == ui

    def page(path: str) -> str:
        return kubectl.run(
            "get", "--raw", f"/api/v1/namespaces/{installed.namespace}/services/{ui}:http/proxy{path}"
        ).stdout

    status = wait_for("the operator's status", 60, lambda: operator_status(kubectl).get("health") == "healthy")
    status = operator_status(kubectl)
    overview = page("/c/0/")
    assert f'data-field="tier">{status["tier"]}<' in overview, overview[-2000:]
    assert f'data-field="namespace">{installed.namespace}<' in overview
    # Read-only unless ui.writes: no button that writes.
    assessments = page("/c/0/assessments")
    assert "Run now" not in assessments

    scheduled = f"{installed.deployment}-scheduled"
    wait_for(
        "the scheduled Assessment to complete",
        120,
        lambda: (kubectl.get("assessment", scheduled) or {}).get("status", {}).get("phase") == "Completed",
    )
    answer = kubectl.run(
        "exec", "-n", installed.namespace, "-c", "operator", pod["metadata"]["name"], "--",
        "kube9-operator", "query", "findings", f"--assessment={scheduled}", "--limit=50", "--format=json",
    )
    stored = json.loads(answer.stdout)
    findings = page(f"/c/0/findings?assessment={scheduled}")
    assert f'data-field="matching">{stored["matching"]}<' in findings, findings[-3000:]
    assert f'data-field="total">{stored["total"]}<' in findings
    for finding in stored["findings"][:5]:
        assert f'data-check="{finding["checkId"]}"' in findings
