"""Shared fixtures for the chart and image tests.

Cluster tests run against the API server KUBECONFIG points at (`cargo xtask ci` starts one and
sets it). Each test works in its own namespace under a unique release name and removes both;
tests that run an operator hold the same file lock as the Rust cluster tests, because every
operator writes the one cluster-wide `kube9` OperatorStatus.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import helm_python as helm
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kube9-operator"
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
SINGLETON = "kube9"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-node",
        action="store_true",
        help="fail, rather than skip, the end-to-end tests when the cluster has no Ready node",
    )


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every object in a `Chart.render` result."""
    objects = []
    for path, text in rendered.items():
        if not path.endswith(".yaml"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def find(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = find(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def wait_for(what: str, timeout: float, check: Callable[[], Any], interval: float = 0.2) -> Any:
    """Polls `check` until it returns something truthy; fails naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Kubectl:
    """kubectl as a person would run it, against one kubeconfig."""

    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig

    def run(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def json(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def get(self, *args: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        proc = self.run("get", *args, "-o", "json", "--ignore-not-found", check=False)
        if proc.returncode != 0:
            pytest.fail(f"kubectl get {' '.join(args)} failed: {proc.stderr.strip()}")
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def apply(self, obj: dict[str, Any]) -> None:
        self.run("apply", "-f", "-", input=json.dumps(obj))


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    path = pathlib.Path(os.environ.get("KUBECONFIG") or TARGET / "testenv" / "kubeconfig").resolve()
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `cargo xtask testenv up` (or set KUBECONFIG)")
    probe = subprocess.run(
        ["kubectl", "--kubeconfig", str(path), "get", "--raw", "/readyz"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.fail(f"the API server in {path} does not answer: {probe.stderr.strip()}")
    return str(path)


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Kubectl:
    return Kubectl(kubeconfig)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace, deleted (with everything in it) after the test."""
    name = f"kube9-chart-{uuid.uuid4().hex[:8]}"
    kubectl.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kube9.io/test": "chart"}}}
    )
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def release(namespace: str) -> str:
    """A release name no other test uses, so cluster-scoped objects do not collide."""
    return f"k9-{namespace.rsplit('-', 1)[1]}"


@pytest.fixture
def helm_config(kubeconfig: str, namespace: str) -> Iterator[helm.Config]:
    with helm.Config(kubeconfig_path=kubeconfig, namespace=namespace) as config:
        yield config


@pytest.fixture
def uninstall_after(helm_config: helm.Config, kubectl: Kubectl) -> Iterator[list[str]]:
    """Release names appended here are uninstalled after the test, with their cluster-scoped objects."""
    names: list[str] = []
    yield names
    for name in names:
        helm_config.uninstall(name, ignore_not_found=True)


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture
def singleton(kubectl: Kubectl) -> Iterator[None]:
    """Serialises the tests that run an operator (with the Rust cluster tests too) and removes
    the OperatorStatus they share before and after."""
    TARGET.mkdir(parents=True, exist_ok=True)
    with open(TARGET / "kube9-operator-singleton.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        delete_singleton(kubectl)
        try:
            yield
        finally:
            delete_singleton(kubectl)


def delete_singleton(kubectl: Kubectl) -> None:
    kubectl.run("delete", "operatorstatus", SINGLETON, "--ignore-not-found", "--wait=true", "--timeout=20s")


def binary(name: str, env: str) -> pathlib.Path:
    path = pathlib.Path(os.environ.get(env) or TARGET / "debug" / name)
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build -p {name}` first (`cargo xtask ci` does)")
    return path


class Process:
    """A child process whose output goes to a file, stopped with SIGTERM."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str, **popen: Any) -> None:
        self.log_path = pathlib.Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, **popen)

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerSim(Process):
    """The kube9-server simulator over HTTPS, accepting one API key."""

    def __init__(self, api_key: str) -> None:
        self.ca_path = pathlib.Path(tempfile.mkstemp(prefix="kube9-sim-ca-", suffix=".pem")[1])
        super().__init__(
            [
                str(binary("kube9-server-sim", "KUBE9_SERVER_SIM_BIN")),
                "--tls",
                "--ca-out",
                str(self.ca_path),
                "--api-key",
                api_key,
            ],
            dict(os.environ),
            "kube9-server-sim",
        )
        found = wait_for("the simulator to listen", 20, lambda: re.search(r"listening on (\S+)", self.logs()))
        self.url = found.group(1)

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.ca_path.unlink(missing_ok=True)


def operator_status(kubectl: Kubectl) -> dict[str, Any]:
    """The `kube9` OperatorStatus's status, or {} when it has none yet."""
    obj = kubectl.get("operatorstatus", SINGLETON)
    return (obj or {}).get("status") or {}


def wait_for_status(
    kubectl: Kubectl, what: str, timeout: float, process: Process, **expected: Any
) -> dict[str, Any]:
    """Waits for the OperatorStatus to show `expected`; on a timeout, shows the operator's logs."""

    def check() -> dict[str, Any] | None:
        if process.proc.poll() is not None:
            pytest.fail(f"the operator exited with {process.proc.returncode}:\n{process.logs()[-4000:]}")
        status = operator_status(kubectl)
        return status if all(status.get(k) == v for k, v in expected.items()) else None

    try:
        return wait_for(f"OperatorStatus {what} ({expected})", timeout, check)
    except pytest.fail.Exception as e:
        raise AssertionError(f"{e}\noperator logs:\n{process.logs()[-4000:]}") from None


def service_account_token(kubectl: Kubectl, namespace: str, name: str) -> str:
    """A token for the ServiceAccount, minted by the TokenRequest API as the kubelet does."""
    return kubectl.run("create", "token", name, "-n", namespace, "--duration=3600s").stdout.strip()


def cluster_endpoint(kubectl: Kubectl) -> tuple[str, bytes]:
    """The API server URL and its CA certificate (PEM), from the admin kubeconfig."""
    config = kubectl.json("config", "view", "--raw", "--minify")
    cluster = config["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = pathlib.Path(cluster["certificate-authority"]).read_bytes()
    return cluster["server"], ca


def token_kubeconfig(kubectl: Kubectl, token: str, directory: pathlib.Path) -> str:
    """A kubeconfig that authenticates with `token` and nothing else."""
    server, ca = cluster_endpoint(kubectl)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca).decode()}}
        ],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path = directory / "kubeconfig"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return str(path)


def go_module_dir(module: str, version: str) -> pathlib.Path:
    """A published Go module's directory in Go's module cache (`go mod download`, through the Go
    module proxy; `cargo xtask` fetches the ones the tests use beforehand)."""
    go = "/usr/local/go/bin/go" if pathlib.Path("/usr/local/go/bin/go").is_file() else "go"
    out = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True,
                         env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"})
    info = json.loads(out.stdout or "{}")
    assert out.returncode == 0 and "Dir" in info, (module, version, out.stdout, out.stderr)
    return pathlib.Path(info["Dir"])


def serve_report_kinds(kubectl: Kubectl) -> None:
    """The policy report CRDs from their modules (tests/src/gomodules.rs names the same
    versions): openreports.io's Report and ClusterReport, and wgpolicyk8s.io's PolicyReport and
    ClusterPolicyReport as Kyverno ships them; left in place as the cluster tests leave them."""
    openreports = go_module_dir("github.com/openreports/reports-api", "v0.2.1") / "config" / "crd"
    kyverno = go_module_dir("github.com/kyverno/kyverno", "v1.19.1") / "config" / "crds" / "policyreport"
    for directory, group, names in ((openreports, "openreports.io", ("reports", "clusterreports")),
                                    (kyverno, "wgpolicyk8s.io", ("policyreports", "clusterpolicyreports"))):
        for name in names:
            kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager=kube9-tests",
                        "-f", str(directory / f"{group}_{name}.yaml"))
            kubectl.run("wait", "--for=condition=Established", f"crd/{name}.{group}", "--timeout=30s")


def serve_trivy_kinds(kubectl: Kubectl) -> None:
    """Trivy Operator's VulnerabilityReport CRD, from its module (tests/src/gomodules.rs names
    the same version)."""
    crd = go_module_dir("github.com/aquasecurity/trivy-operator", "v0.29.0") / "deploy" / "helm" / "crds"
    kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager=kube9-tests",
                "-f", str(crd / "aquasecurity.github.io_vulnerabilityreports.yaml"))
    kubectl.run("wait", "--for=condition=Established", "crd/vulnerabilityreports.aquasecurity.github.io",
                "--timeout=30s")
