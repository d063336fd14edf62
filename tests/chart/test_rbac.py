"""The chart's RBAC, proven with the ServiceAccount's own token on a real API server.

The operator binary runs as the chart's ServiceAccount (a token minted by the TokenRequest
API, as the kubelet mounts one) and must reach pro and healthy with no request refused; then
the same identity is shown to be refused everything outside its own objects.
"""

from __future__ import annotations

import os
import pathlib
import urllib.request

import helm_python as helm

from conftest import (
    CHART,
    ROOT,
    Kubectl,
    Process,
    ServerSim,
    binary,
    free_port,
    service_account_token,
    serve_report_kinds,
    serve_trivy_kinds,
    token_kubeconfig,
    wait_for,
    wait_for_status,
)

KEY = "k9-rbac-key-0123456789"
ARGO_CD = ROOT.parent / "shared" / "fixtures" / "argocd"


def serve_argo_cd_kinds(kubectl: Kubectl) -> None:
    """Argo CD's own CRDs, applied as the cluster tests apply them (and, like them, left in
    place for the tests that share them): `can-i` only answers for a kind the server serves."""
    for crd in ("application-crd.yaml", "appproject-crd.yaml"):
        kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager=kube9-tests",
                    "-f", str(ARGO_CD / crd))
    for name in ("applications.argoproj.io", "appprojects.argoproj.io"):
        kubectl.run("wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s")


def refused(as_operator: Kubectl, *args: str) -> str:
    """Runs kubectl as the operator and returns the refusal; fails if the request was allowed."""
    proc = as_operator.run(*args, check=False)
    assert proc.returncode != 0 and "forbidden" in proc.stderr.lower(), (args, proc.stdout, proc.stderr)
    return proc.stderr


def test_the_operator_runs_with_exactly_the_charts_permissions(
    helm_config: helm.Config,
    kubectl: Kubectl,
    namespace: str,
    release: str,
    uninstall_after: list[str],
    singleton: None,
    tmp_path: pathlib.Path,
) -> None:
    uninstall_after.append(release)
    serve_argo_cd_kinds(kubectl)
    # The policy reports are published with the chart's access (the store holds the findings).
    serve_report_kinds(kubectl)
    # Trivy Operator's reports are listed with the chart's access (the image-vulnerability check).
    serve_trivy_kinds(kubectl)
    # With an API key (a Secret the Pod would mount): the pro tier's Secret rule is granted.
    helm_config.install(CHART, release, {"existingSecret": "kube9-api-key"}, namespace=namespace, timeout=60)
    account = f"{release}-kube9-operator"
    as_operator = Kubectl(token_kubeconfig(kubectl, service_account_token(kubectl, namespace, account), tmp_path))
    whoami = as_operator.run("auth", "can-i", "list", "nodes").stdout.strip()
    assert whoami == "yes"

    key_file = tmp_path / "api-key"
    key_file.write_text(KEY)
    port = free_port()
    with ServerSim(KEY) as sim:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "KUBECONFIG": as_operator.kubeconfig,
            "POD_NAMESPACE": namespace,
            # As the chart sets it: the Role grants this one Lease.
            "KUBE9_LEADER_ELECTION_LEASE": f"{account}-leader",
            "KUBE9_API_KEY_FILE": str(key_file),
            "KUBE9_SERVER_URL": sim.url,
            "KUBE9_SERVER_CA_FILE": str(sim.ca_path),
            "KUBE9_HEALTH_ADDR": f"127.0.0.1:{port}",
            "KUBE9_DATA_DIR": str(tmp_path / "data"),
            "KUBE9_LOG_FORMAT": "json",
            "KUBE9_LOG_LEVEL": "debug",
            "KUBE9_COLLECTION_INTERVALS": ",".join(
                f"{c}=2s"
                for c in ("clusterMetadata", "resourceInventory", "configurationPatterns", "performanceMetrics", "securityPosture")
            ),
        }
        with Process([str(binary("kube9-operator", "KUBE9_OPERATOR_BIN"))], env, "kube9-operator") as operator:
            status = wait_for_status(kubectl, "pro and healthy as the ServiceAccount", 60, operator, tier="pro", health="healthy")
            assert status["registered"] is True and status.get("error") is None
            configmap = wait_for(
                "the status ConfigMap",
                30,
                lambda: kubectl.get("configmap", "kube9-operator-status", "-n", namespace),
            )
            assert '"tier":"pro"' in configmap["data"]["status"].replace(" ", "")
            ready = urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert ready.status == 200
            # The chart's scheduled Assessment runs with list-only access, its Event is recorded in
            # `default`, and its summary reaches the OperatorStatus.
            scheduled = f"{account}-scheduled"
            done = wait_for(
                "the scheduled Assessment to complete",
                60,
                lambda: (a := kubectl.get("assessment", scheduled)) and a.get("status", {}).get("phase") in ("Completed", "Failed") and a,
            )
            assert done["status"]["phase"] == "Completed", done["status"]
            skipped = [c["checkId"] for c in done["status"]["checks"] if c["state"] == "skipped"]
            # Only the check of ConfigMaps, which the chart deliberately does not let it list.
            assert skipped == ["security.secret-in-configmap"], "checks skipped for want of access"
            configmaps = next(c for c in done["status"]["checks"] if c["checkId"] == "security.secret-in-configmap")
            assert "ConfigMap" in (configmaps.get("message") or ""), configmaps
            events = kubectl.json("get", "events", "-n", "default", "--field-selector", f"involvedObject.name={scheduled}")
            assert [e["reason"] for e in events["items"]] == ["AssessmentCompleted"]
            # Its findings as openreports.io reports, written, listed and replaced with the
            # chart's verbs on those kinds.
            reports = wait_for(
                "the scheduled run's reports to be published",
                60,
                lambda: kubectl.get("assessment", scheduled)["status"].get("reports"),
            )
            assert reports.get("reason") is None and reports["apiVersion"] == "openreports.io/v1alpha1", reports
            assert reports["reports"] >= 1 and reports["results"] >= 1, reports
            uid = kubectl.get("assessment", scheduled)["metadata"]["uid"]
            listed = kubectl.json("get", "clusterreports.openreports.io", "-l", f"kube9.io/assessment-uid={uid}")
            assert listed["items"], "the cluster report of the scheduled Assessment"
            summary = wait_for(
                "the assessment summary in OperatorStatus",
                30,
                lambda: kubectl.json("get", "operatorstatus", "kube9")["status"].get("assessment", {}).get("lastScheduledRunId"),
            )
            assert summary == done["status"]["runId"]
            # The AI Conformance self-check reads all its evidence with the chart's access: no
            # requirement is left not-evaluated for want of it.
            conformance = wait_for(
                "the AI Conformance self-check in OperatorStatus",
                60,
                lambda: kubectl.json("get", "operatorstatus", "kube9")["status"].get("aiConformance", {}).get("runState") and
                kubectl.json("get", "operatorstatus", "kube9")["status"]["aiConformance"],
            )
            assert conformance["runState"] == "completed", conformance
            assert conformance["totals"]["notEvaluated"] == 0, conformance
            # Every collector runs with the chart's access, and the pro upload (which creates the
            # obfuscation key Secret) succeeds.
            uploaded = wait_for(
                "an upload to kube9-server",
                60,
                lambda: (s := kubectl.json("get", "operatorstatus", "kube9")["status"]).get("upload", {}).get("lastSuccessTime") and s,
            )
            stats = uploaded["collectionStats"]
            assert stats["totalFailureCount"] == 0 and stats["totalSuccessCount"] >= 5, stats
            assert kubectl.get("secret", "kube9-operator-obfuscation-key", "-n", namespace)
            # Deleting the ConfigMap is restored with the Role's create.
            kubectl.run("delete", "configmap", "kube9-operator-status", "-n", namespace)
            wait_for(
                "the ConfigMap to come back",
                30,
                lambda: kubectl.get("configmap", "kube9-operator-status", "-n", namespace),
            )
            logs = operator.logs()
            assert operator.proc.poll() is None, logs[-4000:]
        refusals = [line for line in logs.splitlines() if "forbidden" in line.lower() or " 403" in line]
        assert refusals == []

    # Nothing beyond its own objects.
    kubectl.run("create", "configmap", "someone-elses", "-n", namespace, "--from-literal=a=b")
    refused(as_operator, "get", "secrets", "-n", namespace)
    kubectl.run("create", "secret", "generic", "someone-elses-secret", "-n", namespace, "--from-literal=a=b")
    refused(as_operator, "get", "secret", "someone-elses-secret", "-n", namespace)
    refused(as_operator, "delete", "secret", "kube9-operator-obfuscation-key", "-n", namespace)
    refused(as_operator, "get", "secrets", "-n", "default")
    refused(as_operator, "get", "secrets", "--all-namespaces")
    refused(as_operator, "create", "configmap", "elsewhere", "-n", "default", "--from-literal=a=b")
    refused(as_operator, "patch", "configmap", "someone-elses", "-n", namespace, "-p", '{"data":{"a":"c"}}')
    refused(as_operator, "delete", "configmap", "kube9-operator-status", "-n", namespace)
    refused(as_operator, "get", "configmap", "someone-elses", "-n", namespace)
    refused(as_operator, "scale", "deployment", account, "-n", namespace, "--replicas=2")
    refused(as_operator, "delete", "deployment", account, "-n", namespace)
    refused(as_operator, "create", "deployment", "miner", "-n", namespace, "--image=busybox")
    refused(as_operator, "get", "pod", "anything", "-n", "kube-system")
    refused(as_operator, "get", "configmaps", "--all-namespaces")
    # The kinds the checks read beside workloads (the cluster's other operators among them):
    # listed, never read one by one, never watched.
    for kind in ("replicationcontrollers", "podtemplates", "validatingwebhookconfigurations.admissionregistration.k8s.io",
                 "mutatingwebhookconfigurations.admissionregistration.k8s.io", "apiservices.apiregistration.k8s.io",
                 "customresourcedefinitions.apiextensions.k8s.io", "endpointslices.discovery.k8s.io"):
        can = as_operator.run("auth", "can-i", "list", kind, "--all-namespaces", check=False)
        assert can.stdout.strip() == "yes", (kind, can.stdout)
        for verb in ("get", "watch"):
            can = as_operator.run("auth", "can-i", verb, kind, "--all-namespaces", check=False)
            assert can.stdout.strip() == "no", (verb, kind, can.stdout)
    # Its own Lease only, and never deleted.
    refused(as_operator, "get", "lease", "kube-controller-manager", "-n", "kube-system")
    refused(as_operator, "get", "leases", "-n", namespace)
    refused(as_operator, "delete", "lease", f"{account}-leader", "-n", namespace)
    refused(as_operator, "get", "deployment", account, "-n", namespace)
    refused(as_operator, "patch", "assessment", f"{account}-scheduled", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    refused(as_operator, "delete", "assessment", f"{account}-scheduled")
    for where in (namespace, "kube-system"):
        can = as_operator.run("auth", "can-i", "create", "events", "-n", where, check=False)
        assert can.stdout.strip() == "no", (where, can.stdout)
    # The policy reports: exactly create, patch, list and delete on their four kinds.
    for resource in ("reports.openreports.io", "clusterreports.openreports.io",
                     "policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"):
        for verb in ("create", "patch", "list", "delete"):
            can = as_operator.run("auth", "can-i", verb, resource, "--all-namespaces", check=False)
            assert can.stdout.strip() == "yes", (verb, resource, can.stdout)
        for verb in ("get", "update", "watch", "deletecollection"):
            can = as_operator.run("auth", "can-i", verb, resource, "--all-namespaces", check=False)
            assert can.stdout.strip() == "no", (verb, resource, can.stdout)
    can = as_operator.run("auth", "can-i", "watch", "pods", "--all-namespaces", check=False)
    assert can.stdout.strip() == "no", can.stdout
    # Argo CD awareness reads, and never writes, Argo CD's objects.
    for verb, resource in (
        ("list", "applications.argoproj.io"),
        ("watch", "applications.argoproj.io"),
        ("list", "appprojects.argoproj.io"),
        ("watch", "deployments.apps"),
        ("list", "endpointslices.discovery.k8s.io"),
    ):
        can = as_operator.run("auth", "can-i", verb, resource, "--all-namespaces", check=False)
        assert can.stdout.strip() == "yes", (verb, resource, can.stdout, can.stderr)
    for verb in ("get", "create", "patch", "update", "delete"):
        can = as_operator.run("auth", "can-i", verb, "applications.argoproj.io", "--all-namespaces", check=False)
        assert can.stdout.strip() == "no", (verb, can.stdout)
    can = as_operator.run("auth", "can-i", "watch", "customresourcedefinitions.apiextensions.k8s.io", check=False)
    assert can.stdout.strip() == "no", "only the Application CRD, by name"
    refused(as_operator, "delete", "operatorstatus", "kube9")
    refused(as_operator, "patch", "rolebinding", account, "-n", namespace, "-p", '{"metadata":{"labels":{"a":"b"}}}')
    refused(as_operator, "create", "clusterrolebinding", "escalate", "--clusterrole=cluster-admin", "--user=x")
