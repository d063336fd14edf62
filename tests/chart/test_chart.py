"""The chart, offline: lint, rendering for the free and pro tiers, the values schema, RBAC shape."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest
import yaml

from conftest import CHART, find, manifests, one

KEY = "k9-test-key-0123456789"


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return manifests(chart.render(values or {}, name="kube9", namespace="kube9-system"))


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return only


def env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objects)["env"]}


@pytest.mark.parametrize("kube_version", ["v1.20.2", "v1.31.0", "v1.37.2"])
def test_lint_has_no_errors_or_warnings(kube_version: str) -> None:
    for values in ({}, {"apiKey": KEY}, {"existingSecret": "mine"}):
        report = helm.lint(CHART, values, strict=True, kube_version=kube_version)
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert report["errors"] == [] and problems == [], (values, report)


def test_the_free_render_has_no_secret_and_no_key(chart: helm.Chart) -> None:
    objects = render(chart)
    # The only Secret is the replicas' own token (two replicas by default): no API key.
    assert [s["metadata"]["name"] for s in find(objects, "Secret")] == ["kube9-kube9-operator-replication"]
    assert list(one(objects, "Secret")["data"]) == ["token"]
    assert "KUBE9_API_KEY_FILE" not in env(objects)
    assert [v["name"] for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]] == ["replication", "data"]
    assert KEY not in yaml.safe_dump_all(objects)


def test_the_pro_render_mounts_the_key_from_a_secret_the_chart_creates(chart: helm.Chart) -> None:
    objects = render(chart, {"apiKey": KEY})
    (secret,) = [s for s in find(objects, "Secret") if s["metadata"]["name"] != "kube9-kube9-operator-replication"]
    assert secret["metadata"]["name"] == "kube9-kube9-operator-api-key"
    assert secret["data"] == {"api-key": __import__("base64").b64encode(KEY.encode()).decode()}
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {
            "name": "api-key",
            "secret": {
                "secretName": secret["metadata"]["name"],
                "defaultMode": 0o440,
                "items": [{"key": "api-key", "path": "api-key"}],
            },
        },
        {"name": "replication", "secret": {"secretName": "kube9-kube9-operator-replication", "defaultMode": 0o440}},
        {"name": "data", "emptyDir": {"sizeLimit": "256Mi"}},
    ]
    assert {"name": "api-key", "mountPath": "/var/run/secrets/kube9/api-key", "readOnly": True} in container(
        objects
    )["volumeMounts"]
    assert env(objects)["KUBE9_API_KEY_FILE"] == "/var/run/secrets/kube9/api-key/api-key"
    # The key itself is only in the Secret: not in an environment variable or an annotation.
    others = [o for o in objects if o["kind"] != "Secret"]
    assert KEY not in yaml.safe_dump_all(others)


def test_a_new_key_changes_the_pod_template(chart: helm.Chart) -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        return one(render(chart, values), "Deployment")["spec"]["template"]["metadata"]["annotations"]

    free, pro, rotated = annotations({}), annotations({"apiKey": KEY}), annotations({"apiKey": KEY + "x"})
    assert free["checksum/api-key"] != pro["checksum/api-key"] != rotated["checksum/api-key"]
    assert annotations({"apiKey": KEY}) == pro, "rendering is deterministic"


def test_an_existing_secret_is_used_and_none_is_created(chart: helm.Chart) -> None:
    objects = render(chart, {"existingSecret": "kube9-key", "existingSecretKey": "token"})
    assert [s["metadata"]["name"] for s in find(objects, "Secret")] == ["kube9-kube9-operator-replication"]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"][0]["secret"]["secretName"] == "kube9-key"
    assert pod["volumes"][0]["secret"]["items"] == [{"key": "token", "path": "token"}]
    assert env(objects)["KUBE9_API_KEY_FILE"] == "/var/run/secrets/kube9/api-key/token"


def test_the_store_is_on_an_empty_dir_with_a_size_limit_by_default(chart: helm.Chart) -> None:
    objects = render(chart)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert [v for v in pod["volumes"] if v["name"] == "data"] == [{"name": "data", "emptyDir": {"sizeLimit": "256Mi"}}]
    assert {"name": "data", "mountPath": "/var/lib/kube9"} in container(objects)["volumeMounts"]
    assert container(objects)["securityContext"]["readOnlyRootFilesystem"] is True, "only the volume is written"
    assert env(objects)["KUBE9_DATA_DIR"] == "/var/lib/kube9"
    # The root filesystem is read-only: SQLite's temporary files go beside the store.
    assert env(objects)["SQLITE_TMPDIR"] == "/var/lib/kube9"
    assert env(objects)["KUBE9_STORE_MAX_SIZE"] == "192Mi"
    assert env(objects)["KUBE9_EVENTS_RETENTION"] == "7d"
    assert env(objects)["KUBE9_EVENTS_MAX_ROWS"] == "200000"
    assert env(objects)["KUBE9_ASSESSMENT_HISTORY_RETENTION"] == "90d"
    assert find(objects, "PersistentVolumeClaim") == []
    objects = render(chart, {"store": {"maxSize": "1Gi", "eventsRetention": "30d", "eventsMaxRows": 1000000, "emptyDirSizeLimit": "2Gi", "assessmentHistoryRetention": "365d"}})
    assert env(objects)["KUBE9_EVENTS_MAX_ROWS"] == "1000000"
    assert env(objects)["KUBE9_ASSESSMENT_HISTORY_RETENTION"] == "365d"
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert [v for v in volumes if v["name"] == "data"] == [{"name": "data", "emptyDir": {"sizeLimit": "2Gi"}}]


def test_persistence_puts_the_store_on_a_claim(chart: helm.Chart) -> None:
    objects = render(chart, {"replicaCount": 1, "persistence": {"enabled": True, "size": "5Gi", "storageClassName": "fast"}})
    claim = one(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "kube9-kube9-operator-data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "kube9-kube9-operator-data"}}]
    objects = render(chart, {"replicaCount": 1, "persistence": {"enabled": True, "size": "1Gi", "existingClaim": "mine"}})
    assert find(objects, "PersistentVolumeClaim") == []
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "mine"}


@pytest.mark.parametrize(
    "values",
    [
        {"store": {"maxSize": "lots", "eventsRetention": "7d", "eventsMaxRows": 1000, "emptyDirSizeLimit": "1Gi"}},
        {"store": {"maxSize": "1Gi", "eventsRetention": "7d", "eventsMaxRows": 10, "emptyDirSizeLimit": "1Gi"}},
        {"store": {"assessmentHistoryRetention": "three months"}},
        {"persistence": {"enabled": "yes"}},
    ],
)
def test_bad_store_values_are_refused_by_the_schema(chart: helm.Chart, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        render(chart, values)


def test_a_key_and_an_existing_secret_together_are_refused(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmError, match="set apiKey or existingSecret, not both"):
        render(chart, {"apiKey": KEY, "existingSecret": "kube9-key"})


def test_a_server_ca_bundle_is_mounted_and_trusted(chart: helm.Chart) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    objects = render(chart, {"server": {"url": "https://kube9.example", "caBundle": pem}})
    (cm,) = [o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-server-ca")]
    assert cm["data"]["ca.crt"].strip() == pem
    assert env(objects)["KUBE9_SERVER_CA_FILE"] == "/var/run/secrets/kube9/server-ca/ca.crt"
    assert env(objects)["KUBE9_SERVER_URL"] == "https://kube9.example"


def test_the_deployment_is_hardened(chart: helm.Chart) -> None:
    objects = render(chart, {"apiKey": KEY})
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod.get("hostNetwork") in (None, False) and pod.get("hostPID") in (None, False)
    c = container(objects)
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert env(objects)["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    # The health port, and the replicas' replication port (token required on every request).
    assert c["ports"] == [
        {"name": "health", "containerPort": 8080, "protocol": "TCP"},
        {"name": "replication", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert env(objects)["KUBE9_HEALTH_ADDR"] == "0.0.0.0:8080"
    assert c["resources"] == {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "128Mi"}}
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_two_replicas_elect_a_leader_with_a_budget_and_spread(chart: helm.Chart) -> None:
    objects = render(chart)
    assert env(objects)["KUBE9_LEADER_ELECTION_LEASE"] == "kube9-kube9-operator-leader"
    role = next(r for r in find(objects, "Role") if r["metadata"]["namespace"] == "kube9-system")
    leases = [r for r in role["rules"] if r["resources"] == ["leases"]]
    assert leases == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": ["kube9-kube9-operator-leader"], "verbs": ["get", "list", "watch", "update", "patch"]},
    ]
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": {
        "app.kubernetes.io/name": "kube9-operator", "app.kubernetes.io/instance": "kube9"}}}
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == pdb["spec"]["selector"]["matchLabels"]
    # On the host network the replicas would share the health port: never on one node.
    host = one(render(chart, {"hostNetwork": True}), "Deployment")["spec"]
    (required,) = host["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required["topologyKey"] == "kubernetes.io/hostname"
    # ... so a surge Pod could never start beside the old one: the update replaces in place.
    assert host["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    # One replica: no budget (it would block every drain); an own affinity replaces the default.
    single = render(chart, {"replicaCount": 1, "affinity": {"nodeAffinity": {}}})
    assert find(single, "PodDisruptionBudget") == []
    assert one(single, "Deployment")["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": {}}


def test_persistence_with_two_replicas_gives_each_replica_a_claim_of_its_own(chart: helm.Chart) -> None:
    objects = render(chart, {"persistence": {"enabled": True, "size": "5Gi", "storageClassName": "fast"}})
    assert find(objects, "Deployment") == [] and find(objects, "PersistentVolumeClaim") == []
    sts = one(objects, "StatefulSet")["spec"]
    assert sts["replicas"] == 2
    assert sts["podManagementPolicy"] == "Parallel" and sts["updateStrategy"] == {"type": "RollingUpdate"}
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                             "resources": {"requests": {"storage": "5Gi"}}}
    pod = sts["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["replication"], "data comes from the claim template"
    (only,) = pod["containers"]
    assert {"name": "data", "mountPath": "/var/lib/kube9"} in only["volumeMounts"]
    assert {e["name"] for e in only["env"]} >= {"KUBE9_REPLICATION_ADDR", "KUBE9_REPLICATION_TOKEN_FILE", "POD_IP"}
    # One existing claim cannot hold two stores: refused, saying what to do.
    with pytest.raises(helm.HelmError, match="each replica gets a claim of its own"):
        render(chart, {"persistence": {"enabled": True, "existingClaim": "mine"}})


def test_two_replicas_share_a_replication_token_and_one_replica_has_none(chart: helm.Chart) -> None:
    objects = render(chart)
    secret = one(objects, "Secret")
    token = __import__("base64").b64decode(secret["data"]["token"]).decode()
    assert len(token) == 48 and token.isalnum(), "a random token the chart makes"
    assert env(objects)["KUBE9_REPLICATION_ADDR"] == "0.0.0.0:8081"
    assert env(objects)["KUBE9_REPLICATION_TOKEN_FILE"] == "/var/run/secrets/kube9/replication/token"
    assert env(objects)["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert {"name": "replication", "containerPort": 8081, "protocol": "TCP"} in container(objects)["ports"]
    assert {"name": "replication", "mountPath": "/var/run/secrets/kube9/replication", "readOnly": True} in container(
        objects
    )["volumeMounts"]
    assert token not in yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"]), "only in the Secret"
    # The new Pod is surged beside the old ones, never one removed first: it copies the store.
    assert one(objects, "Deployment")["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert env(render(chart, {"replicationPort": 9443}))["KUBE9_REPLICATION_ADDR"] == "0.0.0.0:9443"
    single = render(chart, {"replicaCount": 1})
    assert find(single, "Secret") == []
    assert not {"KUBE9_REPLICATION_ADDR", "KUBE9_REPLICATION_TOKEN_FILE"} & set(env(single))


def test_every_object_has_the_standard_labels(chart: helm.Chart) -> None:
    for obj in render(chart, {"apiKey": KEY}):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "kube9-operator", obj["kind"]
        assert labels["app.kubernetes.io/instance"] == "kube9", obj["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["kind"]
        assert labels["app.kubernetes.io/version"] == "0.1.0", obj["kind"]


def test_rbac_has_no_wildcards_and_writes_only_the_operators_own_objects(chart: helm.Chart) -> None:
    objects = render(chart)
    read = {"get", "list", "watch"}
    for role in find(objects, "ClusterRole") + find(objects, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), (role["kind"], rule)
            writes = set(rule["verbs"]) - read
            if not writes:
                continue
            resources = set(rule["resources"])
            if resources == {"assessments/status"}:
                # Any Assessment a person creates gets its result written; never its spec.
                assert writes == {"patch"}, rule
            elif set(rule["apiGroups"]) <= {"openreports.io", "wgpolicyk8s.io"}:
                # The policy reports of each run (policyReports.enabled): their kinds only.
                assert resources <= {"reports", "clusterreports", "policyreports", "clusterpolicyreports"}, rule
                assert writes == {"create", "patch", "delete"}, rule
            elif resources == {"events"}:
                assert role["kind"] == "Role" and role["metadata"]["namespace"] == "default", role
                assert (rule["apiGroups"], rule["verbs"]) == ([""], ["create"]), rule
            else:
                # A create (which RBAC cannot limit by name) of the operator's own kinds, or a
                # write limited by name to the operator's own objects.
                assert resources <= {"operatorstatuses", "operatorstatuses/status", "configmaps", "leases"}, rule
                assert writes == {"create"} or rule.get("resourceNames"), (role["kind"], rule)
    cluster_rules = one(objects, "ClusterRole")["rules"]
    everything = [r for rule in cluster_rules for r in rule["resources"]]
    assert "nodes" in everything and "pods" in everything and "deployments" in everything
    assert not {"secrets", "configmaps"} & set(everything)
    for rule in cluster_rules:
        if rule["resources"] == ["events"]:
            # The event history: a watch of the cluster's Events, read-only.
            assert rule["apiGroups"] in ([""], ["events.k8s.io"]) and rule["verbs"] == ["list", "watch"], rule
        elif rule["apiGroups"] != ["kube9.io"] and "watch" in rule["verbs"]:
            # Argo CD awareness follows its Application CRD (by name), the argocd-server
            # Deployments and the Applications (docs/argocd.md); nothing else is watched.
            watched = {("apiextensions.k8s.io", "customresourcedefinitions"), ("apps", "deployments"), ("argoproj.io", "applications")}
            assert {(g, r) for g in rule["apiGroups"] for r in rule["resources"]} <= watched, rule
            assert set(rule["verbs"]) <= {"list", "watch"}, rule
            if rule["resources"] == ["customresourcedefinitions"]:
                assert rule["resourceNames"] == ["applications.argoproj.io"], rule
        elif set(rule["apiGroups"]) <= {"openreports.io", "wgpolicyk8s.io"}:
            pass  # the policy reports, above (test_monitoring.py checks them exactly)
        elif rule["apiGroups"] != ["kube9.io"]:
            assert rule["verbs"] == ["list"], rule
    event_groups = {g for rule in cluster_rules if rule["resources"] == ["events"] for g in rule["apiGroups"]}
    assert event_groups == {"", "events.k8s.io"}, "both groups: events.k8s.io, and core on servers without it"


def test_a_scheduled_assessment_is_created_by_default_and_can_be_turned_off(chart: helm.Chart) -> None:
    scheduled = one(render(chart), "Assessment")
    assert scheduled["metadata"]["name"] == "kube9-kube9-operator-scheduled"
    assert scheduled["spec"] == {"schedule": {"intervalSeconds": 3600}}
    tuned = {"intervalSeconds": 600, "pillars": ["security"], "excludeChecks": ["security.privileged"],
             "excludeNamespaces": ["kube-system"]}
    spec = one(render(chart, {"assessment": tuned}), "Assessment")["spec"]
    assert spec == {"schedule": {"intervalSeconds": 600}, "pillars": ["security"],
                    "checks": {"exclude": ["security.privileged"]}, "namespaces": {"exclude": ["kube-system"]}}
    assert not find(render(chart, {"assessment": {"enabled": False}}), "Assessment")


def test_the_object_bound_reaches_the_operator_as_an_integer(chart: helm.Chart) -> None:
    assert env(render(chart))["KUBE9_ASSESSMENT_MAX_OBJECTS"] == "200000"
    # Helm reads numbers as floats: a large bound must not become 1e+06.
    assert env(render(chart, {"assessment": {"maxObjects": 1000000}}))["KUBE9_ASSESSMENT_MAX_OBJECTS"] == "1000000"


def test_the_ai_conformance_schedule_reaches_the_operator_and_bad_intervals_are_refused(chart: helm.Chart) -> None:
    assert env(render(chart))["KUBE9_AI_CONFORMANCE_INTERVAL"] == "86400s"
    assert env(render(chart, {"aiConformance": {"intervalSeconds": 0}}))["KUBE9_AI_CONFORMANCE_INTERVAL"] == "0s"
    assert env(render(chart, {"aiConformance": {"intervalSeconds": 2592000}}))["KUBE9_AI_CONFORMANCE_INTERVAL"] == "2592000s"
    for bad in (30, 2592001, -1, "1d"):
        with pytest.raises(helm.HelmError) as refused:
            chart.render({"aiConformance": {"intervalSeconds": bad}}, name="kube9", namespace="kube9-system")
        assert "/aiConformance/intervalSeconds" in str(refused.value), bad


def test_host_network_and_extra_env_are_passed_through(chart: helm.Chart) -> None:
    extra = [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}]
    objects = render(chart, {"hostNetwork": True, "extraEnv": extra, "healthPort": 18080})
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert (pod["hostNetwork"], pod["dnsPolicy"]) == (True, "ClusterFirstWithHostNet")
    assert env(objects)["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env(objects)["KUBE9_HEALTH_ADDR"] == "0.0.0.0:18080"
    assert container(objects)["ports"][0]["containerPort"] == 18080


def test_rbac_can_be_left_to_the_administrator(chart: helm.Chart) -> None:
    objects = render(chart, {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"}})
    assert not find(objects, "ClusterRole") and not find(objects, "Role") and not find(objects, "ServiceAccount")
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bogus": 1}, "additional properties 'bogus' not allowed"),
        ({"apiKey": 123}, "at '/apiKey': got number, want string"),
        ({"logFormat": "xml"}, "at '/logFormat': value must be one of"),
        ({"statusIntervalSeconds": 0}, "at '/statusIntervalSeconds': minimum: got 0, want 1"),
        ({"statusIntervalSeconds": 600}, "at '/statusIntervalSeconds': maximum: got 600, want 240"),
        ({"statusIntervalSeconds": "60s"}, "at '/statusIntervalSeconds': got string, want integer"),
        ({"healthPort": 80}, "at '/healthPort': minimum: got 80, want 1,024"),
        ({"server": {"url": "http://kube9.example"}}, "at '/server/url': 'http://kube9.example' does not match"),
        ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
        ({"resources": {"limits": {"memory": "lots"}}}, "at '/resources/limits/memory': 'lots' does not match"),
        ({"existingSecret": "Not_A_Name"}, "at '/existingSecret': 'Not_A_Name' does not match"),
        ({"rbac": {"create": "yes"}}, "at '/rbac/create': got string, want boolean"),
        ({"assessment": {"intervalSeconds": 5}}, "at '/assessment/intervalSeconds': minimum: got 5, want 60"),
        ({"assessment": {"maxObjects": -1}}, "at '/assessment/maxObjects': minimum: got -1, want 0"),
        ({"assessment": {"pillars": ["speed"]}}, "at '/assessment/pillars/0': value must be one of"),
        ({"assessment": {"excludeChecks": ["privileged"]}}, "at '/assessment/excludeChecks/0': 'privileged' does not match"),
    ],
)
def test_the_schema_refuses_bad_values_with_a_readable_message(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError) as refused:
        chart.render(values, name="kube9", namespace="kube9-system")
    assert message in str(refused.value)


def test_the_default_values_pass_the_schema(chart: helm.Chart) -> None:
    chart.validate_schema(chart.values)


def leaf_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("resources",):
            paths.extend(leaf_paths(value, path + "."))
        else:
            paths.append(path)
    return paths


def test_every_value_is_documented_in_the_chart_readme(chart: helm.Chart) -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE))
    assert sorted(set(leaf_paths(chart.values)) - documented) == []
    assert sorted(documented - set(leaf_paths(chart.values))) == [], "the README names values the chart lacks"


def test_notes_name_the_tier_to_expect(chart: helm.Chart) -> None:
    free = chart.render({}, name="kube9", namespace="kube9-system")["kube9-operator/templates/NOTES.txt"]
    pro = chart.render({"apiKey": KEY}, name="kube9", namespace="kube9-system")["kube9-operator/templates/NOTES.txt"]
    assert "Expected tier: free" in free and "kubectl get operatorstatus kube9" in free
    assert "Expected tier: pro" in pro and KEY not in pro
