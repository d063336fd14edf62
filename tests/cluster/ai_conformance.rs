//! The Kubernetes AI Conformance readiness self-check against a real API server: the checklist
//! of the server's minor (or, on a server older than every checklist — 1.20 in CI's oldest leg —
//! a failed run naming the versions covered), a run requested by annotation, Kueue and Gateway
//! API installed from CRDs this test writes, and (with kwok GPU Nodes) the accelerator rows.
//! Every ConfigMap is checked against the extension's contract.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube9_api::ai_conformance::{AiConformanceSummary, RUN_REQUESTED_ANNOTATION, RequirementStatus};
use kube9_api::operator_status::{OperatorStatus, SINGLETON_NAME};
use kube9_tests::contract::assert_configmap;
use kube9_tests::operator::{Operator, operator_status, singleton_lock};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::{Value, json};

use crate::events::{DataDir, query};
use crate::versions::server_minor;

/// Waits until the OperatorStatus shows a self-check other than `previous` (by run id).
pub(crate) async fn self_check(ctx: &Ctx, previous: Option<&str>) -> Result<AiConformanceSummary> {
    let last = std::sync::Arc::new(std::sync::Mutex::new(None));
    let found = wait_for(Duration::from_secs(60), || {
        let client = ctx.client.clone();
        let last = last.clone();
        async move {
            let summary = operator_status(&client).await?.and_then(|s| s.ai_conformance);
            let done = summary.as_ref().is_some_and(|s| s.run_id.is_some() && s.run_id.as_deref() != previous);
            if let Ok(mut last) = last.lock() {
                *last = summary;
            }
            Ok(done)
        }
    })
    .await;
    let last = last.lock().ok().and_then(|mut l| l.take());
    match (found, last) {
        (Ok(()), Some(summary)) => Ok(summary),
        (result, last) => bail!("no new self-check ({result:?}); last seen: {last:#?}"),
    }
}

/// `query ai-conformance <args>` once the store has the run `run_id` (the store's writer
/// commits a moment after the status shows it).
async fn stored(dir: &std::path::Path, args: &[&str], run_id: Option<&str>) -> Result<Value> {
    let found = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    wait_for(Duration::from_secs(10), || {
        let found = found.clone();
        async move {
            let doc = query(dir, args)?;
            let done = doc["run"]["runId"].as_str() == run_id;
            if let Ok(mut found) = found.lock() {
                *found = doc;
            }
            Ok(done)
        }
    })
    .await?;
    Ok(found.lock().map(|f| f.clone()).unwrap_or_default())
}

pub(crate) fn row<'a>(
    summary: &'a AiConformanceSummary,
    id: &str,
) -> Result<&'a kube9_api::ai_conformance::RequirementRow> {
    summary.requirements.iter().find(|r| r.id == id).with_context(|| format!("no row {id}: {summary:#?}"))
}

/// Requests a self-check now, as a person would.
async fn request(ctx: &Ctx, value: &str) -> Result<()> {
    let api: Api<OperatorStatus> = Api::all(ctx.client.clone());
    let patch = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: value}}});
    api.patch(SINGLETON_NAME, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

#[tokio::test]
async fn any_server_gets_its_checklist_or_a_failed_run_naming_the_versions_covered() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let minor = server_minor(&ctx).await?;
        let ns = ctx.namespace("aiconf").await?;
        let data = DataDir::new();
        let _op = Operator::start(&ns, &["--data-dir", data.0.to_str().unwrap_or_default()], &[])?;
        // The first runs at start, with the default daily schedule.
        let first = self_check(&ctx, None).await?;
        assert_eq!(first.kubernetes_minor, Some(format!("1.{minor}")));
        assert_eq!((first.scheduling_enabled, first.schedule_interval_seconds), (true, Some(86400)));
        assert!(first.notice.as_deref().unwrap_or_default().contains("not a certification"));
        if minor < 33 {
            assert_eq!(first.last_outcome, kube9_api::assessment::ScheduledOutcome::Failed, "{first:#?}");
            assert_eq!(first.checklist_version, None);
            let error = first.error.clone().unwrap_or_default();
            assert!(
                error.contains(&format!("Kubernetes 1.{minor} is older")) && error.contains("1.33 to 1.36"),
                "{error}"
            );
            assert!(first.requirements.is_empty());
        } else {
            assert_eq!(first.last_outcome, kube9_api::assessment::ScheduledOutcome::Success, "{first:#?}");
            let expected = format!("1.{}", minor.min(36));
            assert_eq!(first.checklist_version.as_deref(), Some(expected.as_str()));
            assert_eq!(first.totals.total_requirements as usize, first.requirements.len());
            assert!(first.requirements.iter().all(|r| !r.rationale.is_empty()));
        }
        configmap_showing(&ctx, &ns, first.run_id.as_deref()).await?;

        // On request, by annotation: a new run that records the request it answered.
        let asked = std::time::Instant::now();
        request(&ctx, "first-request").await?;
        let second = self_check(&ctx, first.run_id.as_deref()).await?;
        let answered = asked.elapsed();
        assert_eq!(second.last_run_request.as_deref(), Some("first-request"));
        assert_configmap(&ctx.client, &ns).await?;
        let latest = stored(&data.0, &["ai-conformance", "latest"], second.run_id.as_deref()).await?;
        assert_eq!(latest["run"]["runId"], json!(second.run_id));
        assert_eq!(latest["run"]["trigger"], "requested");
        eprintln!("the requested self-check took {} ms", latest["run"]["durationMs"]);
        let rows = stored(&data.0, &["ai-conformance", "requirements"], second.run_id.as_deref()).await?;
        assert_eq!(rows["requirements"].as_array().map(Vec::len), Some(second.requirements.len()));
        eprintln!(
            "Kubernetes 1.{minor}: checklist {:?}, {} requirements, error {:?}; annotation → new run in the status {answered:.0?}",
            second.checklist_version,
            second.requirements.len(),
            second.error
        );
        Ok(())
    })
    .await;
}

/// The ConfigMap's status once its `aiConformance` block shows the run `run_id` (it is written
/// just after the OperatorStatus), checked against the extension's contract.
async fn configmap_showing(ctx: &Ctx, ns: &str, run_id: Option<&str>) -> Result<Value> {
    let run_id = json!(run_id);
    let shown = wait_for(Duration::from_secs(30), || {
        let (client, ns, run_id) = (ctx.client.clone(), ns.to_owned(), run_id.clone());
        async move { Ok(assert_configmap(&client, &ns).await?["aiConformance"]["runId"] == run_id) }
    })
    .await;
    let status = assert_configmap(&ctx.client, ns).await?;
    if shown.is_err() {
        bail!("the ConfigMap does not show the run {run_id}: {:#}", status["aiConformance"]);
    }
    Ok(status)
}

/// A minimal CRD: any content, with a status subresource.
fn crd(group: &str, version: &str, kind: &str, plural: &str, scope: &str) -> Result<CustomResourceDefinition> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        // Groups under k8s.io are protected: a CRD there says where its API was approved.
        "metadata": {"name": format!("{plural}.{group}"),
                     "annotations": {"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/3328"}},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "versions": [{"name": version, "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    }))?)
}

/// Installs CRDs (deleted when the test ends) and waits until the server serves them.
async fn install_crds(ctx: &Ctx, crds: Vec<CustomResourceDefinition>) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        // The real Kueue and Gateway API CRDs (`testenv up --with`) are used as they are (the
        // Gateway API's own admission policy refuses an older definition), and stay for the
        // tests that use them: only a CRD this test made is deleted at the end.
        if api.get_opt(&name).await?.is_some() {
            continue;
        }
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => ctx.cleanup::<CustomResourceDefinition>(None, &name),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        wait_for(Duration::from_secs(30), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                let conditions = api.get(&name).await?.status.and_then(|s| s.conditions).unwrap_or_default();
                Ok(conditions.iter().any(|c| c.type_ == "Established" && c.status == "True"))
            }
        })
        .await
        .with_context(|| format!("{name} never Established"))?;
    }
    Ok(())
}

/// Makes the one Pod of a Deployment that no scheduler or kubelet takes (its node selector
/// matches no Node) Running and Ready, as a kubelet would report it, so the real controllers
/// make the Deployment Available.
async fn run_its_pod(ctx: &Ctx, ns: &str, app: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!("app={app}");
    wait_for(Duration::from_secs(30), || {
        let (pods, selector) = (pods.clone(), selector.clone());
        async move { Ok(!pods.list(&ListParams::default().labels(&selector)).await?.items.is_empty()) }
    })
    .await?;
    let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    for pod in pods.list(&ListParams::default().labels(&selector)).await?.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let containers: Vec<Value> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| {
                json!({"name": c.name, "image": c.image, "imageID": "", "ready": true, "restartCount": 0,
                    "started": true, "state": {"running": {"startedAt": now}}})
            })
            .collect();
        let status = json!({"status": {"phase": "Running", "startTime": now,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                           {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}],
            "containerStatuses": containers}});
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await?;
    }
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    wait_for(Duration::from_secs(30), || {
        let deployments = deployments.clone();
        let app = app.to_owned();
        async move {
            let status = deployments.get(&app).await?.status.unwrap_or_default();
            Ok(status.available_replicas == Some(1))
        }
    })
    .await
    .with_context(|| format!("Deployment {ns}/{app} never became Available"))
}

pub(crate) fn dynamic(ctx: &Ctx, group: &str, version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::all_with(ctx.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, plural))
}

#[tokio::test]
async fn kueue_and_an_accepted_gateway_class_pass_their_requirements() {
    scenario(|ctx| async move {
        let minor = server_minor(&ctx).await?;
        if minor < 33 {
            eprintln!("skipped: Kubernetes 1.{minor} is older than every checklist (the other test covers it)");
            return Ok(());
        }
        let _lock = singleton_lock(&ctx.client).await;
        install_crds(
            &ctx,
            vec![
                crd("kueue.x-k8s.io", "v1beta1", "ClusterQueue", "clusterqueues", "Cluster")?,
                crd("kueue.x-k8s.io", "v1beta1", "LocalQueue", "localqueues", "Namespaced")?,
                crd("kueue.x-k8s.io", "v1beta1", "Workload", "workloads", "Namespaced")?,
                crd("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", "Cluster")?,
                crd("gateway.networking.k8s.io", "v1", "Gateway", "gateways", "Namespaced")?,
                crd("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", "Namespaced")?,
            ],
        )
        .await?;
        let ns = ctx.namespace("kueue").await?;
        // The controller: its Pod runs nowhere, and is reported Ready by the test.
        let app = "kueue-controller-manager";
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": app},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}}, "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"nodeSelector": {"kube9.io/test": "no-such-node"},
                         "containers": [{"name": "manager", "image": "registry.k8s.io/kueue/kueue:v0.13.0"}]},
            }},
        }))?;
        Api::<Deployment>::namespaced(ctx.client.clone(), &ns).create(&PostParams::default(), &deployment).await?;
        run_its_pod(&ctx, &ns, app).await?;
        // Its webhook, served from its namespace (failurePolicy Ignore: it never blocks a request).
        let webhook_name = unique_name("kueue-validating");
        ctx.cleanup::<ValidatingWebhookConfiguration>(None, &webhook_name);
        let webhook: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": webhook_name},
            "webhooks": [{"name": "vclusterqueue.kueue.x-k8s.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": "Ignore",
                "clientConfig": {"service": {"namespace": ns, "name": "kueue-webhook-service", "path": "/validate"},
                                 "caBundle": "Y2EtYnVuZGxl"},
                "rules": [{"apiGroups": ["kueue.x-k8s.io"], "apiVersions": ["v1beta1"], "operations": ["CREATE"],
                           "resources": ["clusterqueues"]}]}],
        }))?;
        Api::<ValidatingWebhookConfiguration>::all(ctx.client.clone()).create(&PostParams::default(), &webhook).await?;
        // A GatewayClass its (imagined) controller accepted.
        let class_name = unique_name("eg");
        let classes = dynamic(&ctx, "gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses");
        let class: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": class_name},
            "spec": {"controllerName": "example.com/gateway-controller"},
        }))?;
        classes.create(&PostParams::default(), &class).await?;
        let accepted = json!({"status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
            "message": "", "lastTransitionTime": "2026-12-02T08:00:00Z", "observedGeneration": 1}]}});
        classes.patch_status(&class_name, &PatchParams::default(), &Patch::Merge(&accepted)).await?;

        let data = DataDir::new();
        let _op = Operator::start(&ns, &["--data-dir", data.0.to_str().unwrap_or_default()], &[])?;
        let summary = self_check(&ctx, None).await?;
        for r in &summary.requirements {
            eprintln!("{} ({:?}): {:?} — {}", r.id, r.level, r.status, r.rationale);
        }
        let gang = row(&summary, "gang_scheduling")?;
        assert_eq!(gang.status, RequirementStatus::Passed, "{gang:#?}");
        assert!(gang.rationale.contains(&format!("Deployment {ns}/{app} (1/1 ready)")), "{}", gang.rationale);
        let inference = row(&summary, "ai_inference")?;
        assert_eq!(inference.status, RequirementStatus::Passed, "{inference:#?}");
        assert!(inference.rationale.contains(&format!("GatewayClass {class_name} (example.com/gateway-controller)")));
        let controller = row(&summary, "robust_controller")?;
        assert_eq!(controller.status, RequirementStatus::Passed, "{controller:#?}");
        // Three CRDs written by this test, or the real Kueue's when `testenv up --with kueue` ran.
        assert!(
            controller.rationale.contains("Kueue: ") && controller.rationale.contains(" CRDs Established"),
            "{}",
            controller.rationale
        );
        if minor <= 35 {
            let dra = row(&summary, "dra_support")?;
            assert_eq!(dra.status, RequirementStatus::Passed, "1.{minor} serves resource.k8s.io: {dra:#?}");
        }
        // Nothing installed for these.
        assert_eq!(row(&summary, "pod_autoscaling")?.status, RequirementStatus::Failed);
        assert_eq!(row(&summary, "cluster_autoscaling")?.status, RequirementStatus::NeedsEvidence);
        let gpus = Api::<Node>::all(ctx.client.clone())
            .list_metadata(&ListParams::default().labels("nvidia.com/gpu.present=true"))
            .await?
            .items
            .len();
        if gpus == 0 {
            assert_eq!(row(&summary, "accelerator_metrics")?.status, RequirementStatus::NotApplicable);
        }
        // The ConfigMap block follows the contract and shows the same rows.
        let status = configmap_showing(&ctx, &ns, summary.run_id.as_deref()).await?;
        let rows = status["aiConformance"]["requirements"].as_array().cloned().unwrap_or_default();
        let gang_row = rows.iter().find(|r| r["id"] == "gang_scheduling").context("gang_scheduling in the ConfigMap")?;
        assert_eq!(gang_row["status"], "passed");
        // The store keeps each row with the objects it named.
        let rows = stored(&data.0, &["ai-conformance", "requirements"], summary.run_id.as_deref()).await?;
        let evidence = rows["requirements"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["id"] == "gang_scheduling"))
            .map(|r| r["evidence"].clone())
            .context("gang_scheduling in the store")?;
        // First the controller; then any ClusterQueue a real Kueue made Active.
        assert_eq!(evidence[0], json!(format!("Deployment {ns}/{app} (1/1 ready)")), "{evidence}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn kwok_gpu_nodes_make_the_accelerator_requirements_apply() {
    scenario(|ctx| async move {
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        let gpus = nodes.list_metadata(&ListParams::default().labels("type=kwok,nvidia.com/gpu.present=true")).await?;
        let gpu_nodes: Vec<String> = gpus.items.iter().filter_map(|n| n.metadata.name.clone()).collect();
        if gpu_nodes.is_empty() || server_minor(&ctx).await? < 33 {
            let why = "needs kwok Nodes with GPUs (`cargo xtask testenv up --kwok 4 --kwok-gpu-nodes 2`) on 1.33 or later";
            if std::env::var_os("KUBE9_REQUIRE_KWOK").is_some() {
                bail!(why);
            }
            eprintln!("skipped: {why}");
            return Ok(());
        }
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("gpus").await?;
        let toleration = json!([{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]);
        let exporter: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "nvidia-dcgm-exporter"},
            "spec": {"selector": {"matchLabels": {"app": "dcgm-exporter"}}, "template": {
                "metadata": {"labels": {"app": "dcgm-exporter"}},
                "spec": {"nodeSelector": {"nvidia.com/gpu.present": "true", "type": "kwok"}, "tolerations": toleration,
                         "containers": [{"name": "exporter", "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"}]},
            }},
        }))?;
        let daemonsets: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
        daemonsets.create(&PostParams::default(), &exporter).await?;
        let want = gpu_nodes.len() as i32;
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let ready = wait_for(Duration::from_secs(120), || {
            let daemonsets = daemonsets.clone();
            async move {
                let status = daemonsets.get("nvidia-dcgm-exporter").await?.status.unwrap_or_default();
                Ok(status.desired_number_scheduled == want && status.number_ready == want)
            }
        })
        .await;
        if let Err(err) = ready {
            // What was missing: the DaemonSet's counts, and where each of its Pods stood.
            let status = daemonsets.get("nvidia-dcgm-exporter").await?.status;
            let stood: Vec<String> = pods
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .map(|p| {
                    let status = p.status.clone().unwrap_or_default();
                    let conditions: Vec<String> = status
                        .conditions
                        .unwrap_or_default()
                        .iter()
                        .map(|c| format!("{}={} {}", c.type_, c.status, c.message.clone().unwrap_or_default()))
                        .collect();
                    format!(
                        "{} on {:?}: {:?} {conditions:?}",
                        p.metadata.name.clone().unwrap_or_default(),
                        p.spec.as_ref().and_then(|s| s.node_name.clone()),
                        status.phase
                    )
                })
                .collect();
            // And what the controllers said (a Pod the DaemonSet controller could not create
            // leaves only a FailedCreate Event).
            let said: Vec<String> = Api::<Event>::namespaced(ctx.client.clone(), &ns)
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .map(|e| {
                    format!(
                        "{} {}: {}",
                        e.involved_object.name.clone().unwrap_or_default(),
                        e.reason.clone().unwrap_or_default(),
                        e.message.clone().unwrap_or_default()
                    )
                })
                .collect();
            bail!(
                "the exporter DaemonSet was not ready on {gpu_nodes:?} ({err}): {status:#?}; its Pods: {stood:#?}; \
                 the namespace's Events: {said:#?}"
            );
        }
        // A Pod that reaches the GPUs of a node without asking the device plugin for one.
        let sneaky: Pod = serde_json::from_value(json!({
            "metadata": {"name": "sneaky"},
            "spec": {"nodeName": gpu_nodes[0], "tolerations": toleration,
                     "containers": [{"name": "app", "image": "shop/trainer:1.0", "securityContext": {"privileged": true}}]},
        }))?;
        pods.create(&PostParams::default(), &sneaky).await?;

        let _op = Operator::start(&ns, &[], &[])?;
        let summary = self_check(&ctx, None).await?;
        let metrics = row(&summary, "accelerator_metrics")?;
        assert_eq!(metrics.status, RequirementStatus::Passed, "{metrics:#?}");
        assert!(metrics.rationale.contains(&format!("DaemonSet {ns}/nvidia-dcgm-exporter ({want}/{want} ready)")));
        let access = row(&summary, "secure_accelerator_access")?;
        assert_eq!(access.status, RequirementStatus::Failed, "{access:#?}");
        assert!(access.rationale.contains(&format!("Pod {ns}/sneaky (privileged on an accelerator node")), "{}", access.rationale);
        if summary.checklist_version.as_deref() != Some("1.33") && summary.checklist_version.as_deref() != Some("1.34") {
            assert_eq!(row(&summary, "gpu_sharing")?.status, RequirementStatus::NeedsEvidence);
            assert_eq!(row(&summary, "driver_runtime_management")?.status, RequirementStatus::NeedsEvidence);
        }
        assert_configmap(&ctx.client, &ns).await?;

        // Without it, and asked again: the device plugin is the only way in.
        pods.delete("sneaky", &Default::default()).await?;
        wait_for(Duration::from_secs(60), || {
            let pods = pods.clone();
            async move { Ok(pods.get_opt("sneaky").await?.is_none()) }
        })
        .await?;
        request(&ctx, "after-sneaky").await?;
        let again = self_check(&ctx, summary.run_id.as_deref()).await?;
        let access = row(&again, "secure_accelerator_access")?;
        assert_eq!(access.status, RequirementStatus::Passed, "{access:#?}");
        Ok(())
    })
    .await;
}
