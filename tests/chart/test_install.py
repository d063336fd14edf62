"""The chart's lifecycle on a real API server with the real Helm SDK.

No kubelet runs here, so Pods never start: these tests prove what Helm and the API server do
with the chart's objects. test_rbac.py runs the operator with the chart's identity.
"""

from __future__ import annotations

import base64
from typing import Any

import helm_python as helm

from conftest import CHART, Kubectl

KEY = "k9-install-key-0123456789"


def volume(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A Pod template's volume by name (an upgrade appends new volumes after the old ones)."""
    return next(v for v in template["spec"]["volumes"] if v["name"] == name)


def pod_template(kubectl: Kubectl, namespace: str, release: str) -> dict[str, Any]:
    deployment = kubectl.get("deployment", f"{release}-kube9-operator", "-n", namespace)
    assert deployment is not None, "the Deployment is missing"
    return deployment["spec"]["template"]


def key_env(template: dict[str, Any]) -> list[str]:
    (container,) = template["spec"]["containers"]
    return [e["value"] for e in container["env"] if e["name"] == "KUBE9_API_KEY_FILE"]


def test_install_upgrade_rollback_and_uninstall(
    singleton: None,
    helm_config: helm.Config, kubectl: Kubectl, namespace: str, release: str, uninstall_after: list[str]
) -> None:
    uninstall_after.append(release)
    name = f"{release}-kube9-operator"

    installed = helm_config.install(CHART, release, {}, namespace=namespace, timeout=60)
    assert installed["status"] == "deployed"
    assert kubectl.get("serviceaccount", name, "-n", namespace)
    assert kubectl.get("role", name, "-n", namespace)
    assert kubectl.get("rolebinding", name, "-n", namespace)
    assert kubectl.get("clusterrole", name)
    assert kubectl.get("clusterrolebinding", name)
    assert kubectl.get("crd", "operatorstatuses.kube9.io")
    assert kubectl.get("role", f"{name}-events", "-n", "default")
    scheduled = kubectl.get("assessment", f"{name}-scheduled")
    assert scheduled is not None and scheduled["spec"]["schedule"] == {"intervalSeconds": 3600}
    assert kubectl.get("secret", f"{name}-api-key", "-n", namespace) is None
    free = pod_template(kubectl, namespace, release)
    assert key_env(free) == []
    token = kubectl.get("secret", f"{name}-replication", "-n", namespace)["data"]["token"]

    # Adding a key creates the Secret and changes the Pod template, so the Pod is replaced.
    upgraded = helm_config.upgrade(CHART, release, {"apiKey": KEY}, namespace=namespace, timeout=60)
    assert upgraded["revision"] == 2
    secret = kubectl.get("secret", f"{name}-api-key", "-n", namespace)
    assert secret is not None and base64.b64decode(secret["data"]["api-key"]).decode() == KEY
    pro = pod_template(kubectl, namespace, release)
    assert key_env(pro) == ["/var/run/secrets/kube9/api-key/api-key"]
    assert pro["metadata"]["annotations"]["checksum/api-key"] != free["metadata"]["annotations"]["checksum/api-key"]
    assert volume(pro, "api-key")["secret"]["secretName"] == f"{name}-api-key"
    # The replicas' token is kept across the upgrade: old and new Pods agree mid-rollout.
    assert kubectl.get("secret", f"{name}-replication", "-n", namespace)["data"]["token"] == token

    # Rolling back to the free revision removes the Secret and restores the template.
    helm_config.rollback(release, version=1, timeout=60)
    assert [r["revision"] for r in helm_config.history(release)] == [1, 2, 3]
    assert kubectl.get("secret", f"{name}-api-key", "-n", namespace) is None
    assert pod_template(kubectl, namespace, release) == free

    helm_config.uninstall(release, timeout=60)
    for kind, extra in [
        ("deployment", ["-n", namespace]),
        ("serviceaccount", ["-n", namespace]),
        ("role", ["-n", namespace]),
        ("rolebinding", ["-n", namespace]),
        ("clusterrole", []),
        ("clusterrolebinding", []),
        ("role", ["-n", "default"]),
        ("assessment", []),
    ]:
        left = {"assessment": f"{name}-scheduled"}.get(kind, f"{name}-events" if extra == ["-n", "default"] else name)
        assert kubectl.get(kind, left, *extra) is None, f"{kind} {left} survived the uninstall"
    assert helm_config.list() == []
    # CRDs from crds/ are never deleted by Helm; the README says how to remove them.
    assert kubectl.get("crd", "operatorstatuses.kube9.io")


def test_install_with_an_existing_secret(
    singleton: None,
    helm_config: helm.Config, kubectl: Kubectl, namespace: str, release: str, uninstall_after: list[str]
) -> None:
    uninstall_after.append(release)
    kubectl.run("create", "secret", "generic", "team-kube9-key", "-n", namespace, f"--from-literal=token={KEY}")
    helm_config.install(
        CHART,
        release,
        {"existingSecret": "team-kube9-key", "existingSecretKey": "token"},
        namespace=namespace,
        timeout=60,
    )
    template = pod_template(kubectl, namespace, release)
    assert volume(template, "api-key")["secret"]["secretName"] == "team-kube9-key"
    assert key_env(template) == ["/var/run/secrets/kube9/api-key/token"]
    secrets = kubectl.json("get", "secrets", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}")
    # Only the replicas' own token: no API-key Secret when one is given.
    assert [s["metadata"]["name"] for s in secrets["items"]] == [f"{release}-kube9-operator-replication"], (
        "the chart must not create a Secret when one is given"
    )
    helm_config.uninstall(release, timeout=60)
    assert kubectl.get("secret", "team-kube9-key", "-n", namespace), "the administrator's Secret is left alone"


def test_install_refuses_bad_values_before_touching_the_cluster(
    helm_config: helm.Config, kubectl: Kubectl, namespace: str, release: str
) -> None:
    try:
        helm_config.install(CHART, release, {"statusIntervalSeconds": 3600}, namespace=namespace, timeout=60)
    except helm.HelmError as e:
        assert "statusIntervalSeconds" in str(e)
    else:
        raise AssertionError("an impossible value was installed")
    assert helm_config.list(all_states=True) == []
    assert kubectl.get("deployment", f"{release}-kube9-operator", "-n", namespace) is None
