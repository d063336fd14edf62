"""The container image, without a container engine.

The Dockerfile is read with the official parser; its build command is run exactly as written
(only the output directory differs), and the resulting root filesystem, which is everything the
final `FROM scratch` stage holds, runs the operator the way a kubelet would: read-only, as UID
65532, with the ServiceAccount token, CA and namespace mounted and in-cluster configuration.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import dockerfile
import helm_python as helm
import pytest

from conftest import (
    CHART,
    ROOT,
    Kubectl,
    Process,
    ServerSim,
    cluster_endpoint,
    free_port,
    service_account_token,
    wait_for,
    wait_for_status,
)

KEY = "k9-image-key-0123456789"
USER = "65532:65532"


def stages() -> list[list[dockerfile.Command]]:
    """The Dockerfile's instructions, split into stages."""
    split: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(ROOT / "Dockerfile")):
        if command.cmd == "FROM":
            split.append([])
        assert split, f"{command.original!r} comes before the first FROM"
        split[-1].append(command)
    return split


def test_the_dockerfile_builds_a_minimal_non_root_image() -> None:
    build, final = stages()
    assert build[0].value[0].startswith("docker.io/library/rust:") and build[0].value[-1] == "build"
    assert final[0].value == ("scratch",), "the final stage starts from nothing"
    instructions = {c.cmd: c for c in final}
    assert set(instructions) == {"FROM", "COPY", "USER", "ENV", "EXPOSE", "ENTRYPOINT"}, "no RUN, no SHELL in the final stage"
    assert instructions["ENV"].value == ("PATH", "/"), "kube9-operator is found by name (kubectl exec … -- kube9-operator query)"
    assert instructions["COPY"].flags == ("--from=build",) and instructions["COPY"].value == ("/rootfs/", "/")
    assert instructions["USER"].value == (USER,)
    assert instructions["ENTRYPOINT"].json and instructions["ENTRYPOINT"].value == ("/kube9-operator",)
    assert instructions["EXPOSE"].value == ("8080",), "the chart's default healthPort"
    (run,) = [c for c in build if c.cmd == "RUN"]
    assert run.value == ("image/build-rootfs.sh /rootfs",)


def test_the_dockerignore_keeps_the_build_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target/" in ignored and ".git/" in ignored


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The final stage's filesystem, built by the Dockerfile's own RUN command."""
    (run,) = [c for c in stages()[0] if c.cmd == "RUN"]
    dest = tmp_path_factory.mktemp("image") / "rootfs"
    argv = [str(dest) if arg == "/rootfs" else arg for arg in shlex.split(run.value[0])]
    subprocess.run(argv, cwd=ROOT, check=True)
    return dest


def files_under(root: pathlib.Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o7777 for p in root.rglob("*") if not p.is_dir()}


def program_headers(path: pathlib.Path) -> list[int]:
    """The p_type of every ELF program header (64-bit little-endian)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "a 64-bit little-endian ELF file"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]


def test_the_images_path_finds_the_binary_by_name(rootfs: pathlib.Path) -> None:
    (_, final) = stages()
    (env,) = [c for c in final if c.cmd == "ENV"]
    path = dict(zip(env.value[::2], env.value[1::2]))["PATH"]
    found = [d for d in path.split(":") if (rootfs / d.lstrip("/") / "kube9-operator").is_file()]
    assert found == ["/"], path
    image = (ROOT / "xtask/src/image.rs").read_text()
    assert f'"PATH={path}"' in image, "the image xtask builds sets the same PATH"


def test_the_root_filesystem_holds_only_the_binary_the_ca_bundle_and_the_user(rootfs: pathlib.Path) -> None:
    assert files_under(rootfs) == {
        "kube9-operator": 0o555,
        "etc/ssl/certs/ca-certificates.crt": 0o444,
        "etc/passwd": 0o444,
        "etc/group": 0o444,
    }
    pt_interp = 3
    assert pt_interp not in program_headers(rootfs / "kube9-operator"), "statically linked: no loader needed"
    assert "nonroot:x:65532:65532:" in (rootfs / "etc/passwd").read_text()
    assert (rootfs / "etc/ssl/certs/ca-certificates.crt").read_text().count("BEGIN CERTIFICATE") > 50


class Container(Process):
    """The root filesystem run as a kubelet runs a container: read-only, as 65532, with /proc
    and the default devices, the ServiceAccount volume and the API key Secret mounted,
    /etc/hosts provided, and in-cluster environment variables. A private mount namespace keeps every mount out of the host's."""

    def __init__(self, rootfs: pathlib.Path, work: pathlib.Path, mounts: dict[str, pathlib.Path], env: dict[str, str]):
        root = work / "container"
        subprocess.run(["cp", "-a", f"{rootfs}/.", str(root)], check=True)
        script = ['set -eu', f'mount --bind "{root}" "{root}"', f'mount -o remount,bind,ro "{root}"']
        # What every OCI runtime provides: /proc and the default devices (no others).
        (root / "proc").mkdir()
        (root / "dev").mkdir()
        script.append(f'mount -t proc proc "{root}/proc"')
        for device in ("null", "zero", "full", "random", "urandom", "tty"):
            (root / "dev" / device).touch()
            script.append(f'mount --bind /dev/{device} "{root}/dev/{device}"')
        for target, source in mounts.items():
            # A runtime creates the mount point in the container's own layer; so does this copy.
            inside = root / target.lstrip("/")
            if source.is_dir():
                inside.mkdir(parents=True, exist_ok=True)
            else:
                inside.parent.mkdir(parents=True, exist_ok=True)
                inside.touch()
        for target, source in mounts.items():
            inside = root / target.lstrip("/")
            script += [f'mount --bind "{source}" "{inside}"', f'mount -o remount,bind,ro "{inside}"']
        script.append(f'exec chroot --userspec={USER} "{root}" /kube9-operator')
        super().__init__(["unshare", "--mount", "--fork", "sh", "-c", "\n".join(script)], env, "container")

    def operator_pid(self) -> int | None:
        children = pathlib.Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            pids = children.read_text().split()
        except FileNotFoundError:
            return None
        for pid in pids:
            try:
                if os.readlink(f"/proc/{pid}/exe").endswith("/kube9-operator"):
                    return int(pid)
            except OSError:
                continue
        return None

    def stop(self, timeout: float = 10) -> int:
        pid = self.operator_pid()
        if pid is not None:
            os.kill(pid, 15)
        return super().stop(timeout)


@pytest.fixture
def as_root() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.fail("running the image's filesystem needs root (chroot and a private mount namespace)")
    yield


def test_the_image_runs_in_cluster_read_only_as_non_root(
    rootfs: pathlib.Path,
    as_root: None,
    helm_config: helm.Config,
    kubectl: Kubectl,
    namespace: str,
    release: str,
    uninstall_after: list[str],
    singleton: None,
    tmp_path: pathlib.Path,
) -> None:
    uninstall_after.append(release)
    helm_config.install(CHART, release, {}, namespace=namespace, timeout=60)

    server, ca = cluster_endpoint(kubectl)
    host, port = server.removeprefix("https://").rsplit(":", 1)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(service_account_token(kubectl, namespace, f"{release}-kube9-operator"))
    (account / "ca.crt").write_bytes(ca)
    (account / "namespace").write_text(namespace)
    secret = tmp_path / "api-key"
    secret.mkdir()
    (secret / "api-key").write_text(KEY)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    for path in [tmp_path, account, secret, *account.iterdir(), *secret.iterdir(), hosts]:
        path.chmod(0o755 if path.is_dir() else 0o444)

    health = free_port()
    with ServerSim(KEY) as sim:
        sim_ca = tmp_path / "server-ca"
        sim_ca.mkdir(mode=0o755)
        (sim_ca / "ca.crt").write_bytes(sim.ca_path.read_bytes())
        sim_port = sim.url.rsplit(":", 1)[1].rstrip("/")
        env = {
            # What the kubelet sets for every container, and what the chart sets.
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "POD_NAMESPACE": namespace,
            "KUBE9_HEALTH_ADDR": f"127.0.0.1:{health}",
            "KUBE9_LOG_FORMAT": "json",
            # The Lease the chart's Role grants (the chart sets it so in its Deployment).
            "KUBE9_LEADER_ELECTION_LEASE": f"{release}-kube9-operator-leader",
            "KUBE9_API_KEY_FILE": "/var/run/secrets/kube9/api-key/api-key",
            # By name: resolving it proves the static binary reads the mounted /etc/hosts.
            "KUBE9_SERVER_URL": f"https://localhost:{sim_port}",
            "KUBE9_SERVER_CA_FILE": "/var/run/secrets/kube9/server-ca/ca.crt",
        }
        mounts = {
            "/var/run/secrets/kubernetes.io/serviceaccount": account,
            "/var/run/secrets/kube9/api-key": secret,
            "/var/run/secrets/kube9/server-ca": sim_ca,
            "/etc/hosts": hosts,
        }
        with Container(rootfs, tmp_path, mounts, env) as container:
            status = wait_for_status(kubectl, "pro from the image's filesystem", 60, container, tier="pro", health="healthy")
            assert status["registered"] is True
            pid = wait_for("the operator process", 10, container.operator_pid)
            uids = [line for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")]
            assert uids == ["Uid:\t65532\t65532\t65532\t65532"]
            assert urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=5).status == 200
            logs = container.logs()
            started = time.monotonic()
            code = container.stop()
            assert code == 0 and time.monotonic() - started < 5, container.logs()[-4000:]
        refusals = [line for line in logs.splitlines() if "forbidden" in line.lower()]
        assert refusals == []
