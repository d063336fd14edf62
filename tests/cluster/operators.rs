//! The checks of the cluster's other operators against the real API server: broken and healthy
//! admission webhooks (with a CA made by `openssl` that expires in ten days), an aggregated
//! APIService whose Service is missing, CRDs with an unserved stored version and with a
//! conversion webhook, and controller Deployments that are unavailable or crash-looping, judged
//! by an Assessment run by the operator binary.
//!
//! Nothing here can disturb the tests beside it: the webhooks match only a resource of a made-up
//! API group in namespaces labelled with a label nothing carries (and the broken one is
//! fail-open), the APIService and CRDs are of made-up groups, and every cluster-scoped object is
//! deleted when the test ends, however it ends.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube9_api::assessment::{Assessment, AssessmentSpec, AssessmentStatus, CheckState, Phase, Selection};
use kube9_tests::operator::{Operator, singleton_lock};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

/// The checks this test proves, and the ones the Assessment runs.
const CHECKS: &[&str] = &[
    "reliability.webhook-fail-closed-unreachable",
    "reliability.webhook-fail-open-unreachable",
    "reliability.ca-bundle-expired",
    "reliability.ca-bundle-expiring",
    "reliability.apiservice-unavailable",
    "operational-excellence.crd-stored-version-unserved",
    "reliability.crd-conversion-unreachable",
    "reliability.operator-crash-loop",
    "reliability.operator-unavailable",
];

/// A self-signed CA made by `openssl`, valid for `days`, base64 as a caBundle holds it.
fn openssl_ca(name: &str, days: u32) -> anyhow::Result<Value> {
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-keyout", "/dev/null", "-subj", &format!("/CN={name}"), "-days", &days.to_string()])
        .output()?;
    anyhow::ensure!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(out.stdout.starts_with(b"-----BEGIN CERTIFICATE-----"), "openssl printed no certificate");
    Ok(serde_json::to_value(k8s_openapi::ByteString(out.stdout))?)
}

async fn create<K: kube::Resource<DynamicType = ()>>(
    ctx: &Ctx,
    namespace: Option<&str>,
    object: Value,
) -> anyhow::Result<()> {
    let resource = ApiResource::erase::<K>(&());
    let object: DynamicObject = serde_json::from_value(object)?;
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &resource),
        None => {
            // Cluster-scoped: deleted when the scenario ends, even if it fails before then.
            ctx.cleanup::<K>(None, object.metadata.name.as_deref().unwrap_or_default());
            Api::all_with(ctx.client.clone(), &resource)
        }
    };
    api.create(&PostParams::default(), &object).await?;
    Ok(())
}

/// A webhook configuration whose one webhook matches only `nothings` of a made-up group, in
/// namespaces with a label that nothing carries: the API server never calls it.
fn webhook_configuration(name: &str, ns: &str, service: &str, policy: &str, ca: Value) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": format!("{name}.kube9-tests.example.com"),
            "failurePolicy": policy,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 1,
            "clientConfig": {"service": {"name": service, "namespace": ns, "path": "/validate"}, "caBundle": ca},
            "namespaceSelector": {"matchLabels": {"kube9-tests.example.com/never": "true"}},
            "rules": [{"apiGroups": ["kube9-tests.example.com"], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["nothings"], "scope": "*"}]
        }]
    })
}

fn service(name: &str, selector: Option<Value>) -> Value {
    let mut spec = json!({"ports": [{"port": 443, "targetPort": 9443}]});
    if let Some(selector) = selector {
        spec["selector"] = selector;
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

/// A Deployment whose Pods can never be scheduled (or, with 0 replicas, Available with none).
fn deployment(name: &str, labels: Value, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"nodeSelector": {"kube9-tests.example.com/never": "true"},
                     "containers": [{"name": "manager", "image": "kube9-tests/manager:1"}]}}}
    })
}

fn crd(group: &str, versions: &[(&str, bool, bool)], conversion: Option<(&str, &str)>) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|(name, served, storage)| {
            json!({"name": name, "served": served, "storage": storage,
                   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
        })
        .collect();
    let mut object = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced", "versions": versions,
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"}}
    });
    if let Some((ns, service)) = conversion {
        object["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": ns, "name": service, "path": "/convert"}}}});
    }
    object
}

/// Waits for the Assessment's first finished run.
async fn finished(ctx: &Ctx, name: &str) -> anyhow::Result<AssessmentStatus> {
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    wait_for(WAIT, || {
        let (api, seen) = (api.clone(), seen.clone());
        async move {
            let status = api.get(name).await?.status.unwrap_or_default();
            let done = matches!(status.phase, Some(Phase::Completed | Phase::Failed));
            *seen.lock().expect("not poisoned") = Some(status);
            Ok(done)
        }
    })
    .await
    .map_err(|e| e.context(format!("last seen: {:#?}", seen.lock().ok().and_then(|s| s.clone()))))?;
    Ok(seen.lock().expect("not poisoned").take().expect("seen"))
}

#[tokio::test]
async fn the_cluster_s_other_operators_are_judged_broken_or_healthy() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("operators").await?;
        let id = unique_name("k9op");
        let group = |what: &str| format!("{what}.{id}.kube9-tests.example.com");

        // Services: one whose Pods never become ready, one (without selector) with a ready
        // endpoint of its own (a documentation address: the API server never calls it).
        create::<Service>(&ctx, Some(&ns), service("gate-broken", Some(json!({"app": "gate"})))).await?;
        create::<Service>(&ctx, Some(&ns), service("gate-healthy", None)).await?;
        create::<EndpointSlice>(
            &ctx,
            Some(&ns),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": "gate-healthy-1", "labels": {"kubernetes.io/service-name": "gate-healthy",
                                "endpointslice.kubernetes.io/managed-by": "kube9-tests"}},
                   "addressType": "IPv4", "ports": [{"port": 9443, "protocol": "TCP"}],
                   "endpoints": [{"addresses": ["192.0.2.10"], "conditions": {"ready": true}}]}),
        )
        .await?;

        // Controllers: one behind the broken webhook's Service that never becomes available,
        // one named as a controller whose Pod crash-loops, one Available with no replicas.
        create::<Deployment>(&ctx, Some(&ns), deployment("gate", json!({"app": "gate"}), 1)).await?;
        create::<Deployment>(&ctx, Some(&ns), deployment("crashy-controller", json!({"app": "crashy"}), 1)).await?;
        create::<Deployment>(&ctx, Some(&ns), deployment("calm-operator", json!({"app": "calm"}), 0)).await?;

        // Webhooks: fail-open at the Service with no ready endpoint, with a CA that expires in
        // ten days; fail-closed at the healthy one, with a CA good for a year.
        let broken = format!("{id}-broken");
        let healthy = format!("{id}-healthy");
        let expiring = openssl_ca(&format!("{id}-expiring"), 10)?;
        let lasting = openssl_ca(&format!("{id}-lasting"), 365)?;
        create::<ValidatingWebhookConfiguration>(&ctx, None, webhook_configuration(&broken, &ns, "gate-broken", "Ignore", expiring))
            .await?;
        create::<ValidatingWebhookConfiguration>(&ctx, None, webhook_configuration(&healthy, &ns, "gate-healthy", "Fail", lasting))
            .await?;

        // An aggregated API whose Service does not exist.
        let api_service = format!("v1alpha1.{}", group("metrics"));
        create::<APIService>(
            &ctx,
            None,
            json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": api_service},
                   "spec": {"group": group("metrics"), "version": "v1alpha1", "insecureSkipTLSVerify": true,
                            "groupPriorityMinimum": 10, "versionPriority": 10,
                            "service": {"namespace": ns, "name": "missing", "port": 443}}}),
        )
        .await?;

        // CRDs: one whose v1 objects stay recorded as stored after v2 took over and v1 stopped
        // being served, one that still serves what it stored; conversion webhooks at a missing
        // Service and at the healthy one (single-version CRDs: never actually called).
        let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
        let moved = format!("widgets.{}", group("moved"));
        create::<CustomResourceDefinition>(&ctx, None, crd(&group("moved"), &[("v1", true, true)], None)).await?;
        create::<CustomResourceDefinition>(&ctx, None, crd(&group("steady"), &[("v1", true, true)], None)).await?;
        let conversion_broken = format!("widgets.{}", group("convert-broken"));
        create::<CustomResourceDefinition>(
            &ctx,
            None,
            crd(&group("convert-broken"), &[("v1", true, true)], Some((&ns, "missing"))),
        )
        .await?;
        create::<CustomResourceDefinition>(
            &ctx,
            None,
            crd(&group("convert-healthy"), &[("v1", true, true)], Some((&ns, "gate-healthy"))),
        )
        .await?;
        let versions = crd(&group("moved"), &[("v1", false, false), ("v2", true, true)], None)["spec"]["versions"].clone();
        crds.patch(&moved, &PatchParams::default(), &Patch::Merge(json!({"spec": {"versions": versions}}))).await?;
        wait_for(Duration::from_secs(20), || {
            let (crds, moved) = (crds.clone(), moved.clone());
            async move {
                let stored = crds.get(&moved).await?.status.and_then(|s| s.stored_versions).unwrap_or_default();
                Ok(stored == ["v1", "v2"])
            }
        })
        .await?;

        // The crash loop, as the kubelet would report it (this control plane has no kubelet to
        // run the Pod): on the Pod the Deployment's ReplicaSet created.
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let crashy = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        wait_for(Duration::from_secs(30), || {
            let (pods, crashy) = (pods.clone(), crashy.clone());
            async move {
                let list = pods.list(&ListParams::default().labels("app=crashy")).await?;
                let name = list.items.first().and_then(|p| p.metadata.name.clone());
                *crashy.lock().expect("not poisoned") = name.clone().unwrap_or_default();
                Ok(name.is_some())
            }
        })
        .await?;
        let crashy = crashy.lock().expect("not poisoned").clone();
        let finished_at = k8s_openapi::jiff::Timestamp::now().to_string();
        pods.patch_status(
            &crashy,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"containerStatuses": [{
                "name": "manager", "image": "kube9-tests/manager:1", "imageID": "", "ready": false, "restartCount": 6,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "startedAt": finished_at, "finishedAt": finished_at}}
            }]}})),
        )
        .await?;
        // The Deployments have reported on their availability.
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
        wait_for(Duration::from_secs(30), || {
            let deployments = deployments.clone();
            async move {
                let list = deployments.list(&ListParams::default()).await?;
                Ok(list.items.iter().all(|d| {
                    d.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Available"))
                }))
            }
        })
        .await?;

        // The Assessment: only these checks, only this namespace (and every cluster-scoped object).
        let _op = Operator::start(&ns, &["--status-interval", "3s"], &[])?;
        let name = unique_name("operators");
        ctx.cleanup::<Assessment>(None, &name);
        let spec = AssessmentSpec {
            namespaces: Some(Selection { include: vec![ns.clone()], exclude: vec![] }),
            checks: Some(Selection { include: CHECKS.iter().map(|c| (*c).to_owned()).collect(), exclude: vec![] }),
            ..AssessmentSpec::default()
        };
        Api::<Assessment>::all(ctx.client.clone()).create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
        let status = finished(&ctx, &name).await?;
        assert_eq!(status.phase, Some(Phase::Completed), "{status:#?}");

        // Each check: what it found among this test's objects, and that it judged the healthy ones.
        let ours = |f: &&kube9_api::assessment::Finding| {
            f.object.name.contains(&id) || f.object.namespace.as_deref() == Some(ns.as_str())
        };
        let found = |check: &str| -> Vec<String> {
            status
                .findings
                .iter()
                .filter(|f| f.check_id == check)
                .filter(ours)
                .map(|f| format!("{} {}: {}", f.object.kind, f.object.name, f.message))
                .collect()
        };
        let outcome = |check: &str| status.checks.iter().find(|c| c.check_id == check).expect("the check ran").clone();
        for check in CHECKS {
            let o = outcome(check);
            assert_ne!(o.state, CheckState::Skipped, "{check}: {:?}", o.message);
        }
        let one = |check: &str, wanted: &str| {
            let hits = found(check);
            assert!(hits.len() == 1 && hits[0].contains(wanted), "{check}: {hits:?}, wanted {wanted:?}");
        };
        let none = |check: &str, at_least: u32| {
            let hits = found(check);
            assert!(hits.is_empty(), "{check} flagged a healthy object: {hits:?}");
            assert!(outcome(check).passed >= at_least, "{check} judged nothing: {:?}", outcome(check));
        };

        one(
            "reliability.webhook-fail-open-unreachable",
            &format!("ValidatingWebhookConfiguration {broken}: webhook {broken}.kube9-tests.example.com: its Service {ns}/gate-broken has no"),
        );
        none("reliability.webhook-fail-closed-unreachable", 1);
        one("reliability.ca-bundle-expiring", "CA bundle expires in 10 days");
        assert!(found("reliability.ca-bundle-expiring")[0].contains(&format!("({id}-expiring, ")));
        assert!(found("reliability.ca-bundle-expiring")[0].starts_with(&format!("ValidatingWebhookConfiguration {broken}")));
        none("reliability.ca-bundle-expired", 2);
        one("reliability.apiservice-unavailable", &format!("APIService {api_service}: its Service {ns}/missing does not exist"));
        one(
            "operational-excellence.crd-stored-version-unserved",
            &format!("CustomResourceDefinition {moved}: objects may be stored in v1 (not served); served: v2"),
        );
        one(
            "reliability.crd-conversion-unreachable",
            &format!("CustomResourceDefinition {conversion_broken}: conversion webhook: its Service {ns}/missing does not exist"),
        );
        let crd_outcome = outcome("reliability.crd-conversion-unreachable");
        assert!(crd_outcome.passed >= 1, "the healthy conversion webhook is judged: {crd_outcome:?}");
        assert!(outcome("operational-excellence.crd-stored-version-unserved").passed >= 1, "the steady CRD");
        let mut unavailable = found("reliability.operator-unavailable");
        unavailable.sort();
        assert_eq!(unavailable.len(), 2, "{unavailable:?}");
        assert!(
            unavailable[0].starts_with("Deployment crashy-controller: not Available (MinimumReplicasUnavailable: ")
                && unavailable[0].ends_with("0 of 1 replicas available; it is named as a controller"),
            "{unavailable:?}"
        );
        let gate = format!(
            "Deployment gate: not Available (MinimumReplicasUnavailable: Deployment does not have minimum availability), \
             0 of 1 replicas available; it serves the admission webhook {broken}.kube9-tests.example.com"
        );
        assert_eq!(unavailable[1], gate);
        assert!(outcome("reliability.operator-unavailable").passed >= 1, "calm-operator is Available");
        one(
            "reliability.operator-crash-loop",
            &format!("Deployment crashy-controller: crash-looping (it is named as a controller): Pod {crashy} container manager: 6 restarts, in CrashLoopBackOff, last exit 2 (Error)"),
        );
        assert!(outcome("reliability.operator-crash-loop").passed >= 2, "gate and calm-operator do not crash");

        // A real aggregated API, where the test environment has one (`--with metrics-server`).
        let apis: Api<APIService> = Api::all(ctx.client.clone());
        if let Some(metrics) = apis.get_opt("v1beta1.metrics.k8s.io").await? {
            let available = metrics.status.and_then(|s| s.conditions).unwrap_or_default().iter().any(|c| c.type_ == "Available" && c.status == "True");
            let flagged = status.findings.iter().any(|f| f.check_id == "reliability.apiservice-unavailable" && f.object.name == "v1beta1.metrics.k8s.io");
            assert_eq!(flagged, !available, "metrics-server's APIService");
        }
        Ok(())
    })
    .await;
}
