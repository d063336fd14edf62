//! The real ecosystem components `cargo xtask testenv up --with …` adds (built from their own
//! Go modules), and what the operator makes of them. `cargo xtask ci` starts them with the
//! node; without them these tests are skipped, unless `KUBE9_REQUIRE_ADDONS` is set.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube9_tests::operator::{Operator, singleton_lock};
use kube9_tests::{scenario, wait_for};
use serde_json::{Value, json};

use crate::events::DataDir;

/// Whether the add-on that serves `group`/`version` is installed; a skip (or, when
/// `KUBE9_REQUIRE_ADDONS` is set, an error) when it is not.
async fn served(client: &kube::Client, group: &str, version: &str, addon: &str) -> anyhow::Result<bool> {
    let groups = client.list_api_groups().await?;
    let found = groups.groups.iter().any(|g| g.name == group && g.versions.iter().any(|v| v.version == version));
    if !found {
        let why = format!("{group}/{version} is not served (`cargo xtask testenv up --with {addon}`)");
        if std::env::var_os("KUBE9_REQUIRE_ADDONS").is_some() {
            anyhow::bail!(why);
        }
        eprintln!("skipped: {why}");
    }
    Ok(found)
}

/// The real node's name (the kubelet `up --node` starts), if one is Ready.
async fn real_node(client: &kube::Client) -> anyhow::Result<Option<String>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    Ok(nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|n| !n.labels().contains_key("type"))
        .find(ready)
        .and_then(|n| n.metadata.name))
}

#[tokio::test]
async fn the_performance_collector_reads_pod_metrics_from_a_real_metrics_server() {
    scenario(|ctx| async move {
        if !served(&ctx.client, "metrics.k8s.io", "v1beta1", "metrics-server").await? {
            return Ok(());
        }
        let Some(node) = real_node(&ctx.client).await? else {
            let why = "metrics need a real kubelet (`cargo xtask testenv up --node`)";
            if std::env::var_os("KUBE9_REQUIRE_ADDONS").is_some() {
                anyhow::bail!(why);
            }
            eprintln!("skipped: {why}");
            return Ok(());
        };
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("metrics").await?;
        // A Pod on the real node, so the kubelet has a container to report.
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "sleeper"},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "pause", "image": "localhost/kube9/pause:3.4", "imagePullPolicy": "Never"}],
            },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        let data = DataDir::new();
        let operator = Operator::start(
            &ns,
            &[
                "--data-dir",
                data.0.to_str().unwrap_or_default(),
                "--collection-intervals",
                "clusterMetadata=7d,resourceInventory=7d,configurationPatterns=7d,performanceMetrics=5s,securityPosture=7d",
            ],
            &[],
        )?;
        // metrics-server reports a Pod once it has scraped the kubelet twice (15 s apart).
        let last = std::sync::Mutex::new(Value::Null);
        wait_for(Duration::from_secs(150), || async {
            let Ok(reader) = kube9_store::Reader::open(&data.0) else { return Ok(false) };
            let latest = reader.latest_collections()?;
            let Some(row) = latest.iter().find(|r| r.collector == "performanceMetrics") else { return Ok(false) };
            let value: Value = serde_json::from_str(&row.data)?;
            let mine = &value["byNamespace"][&ns];
            let done = value["available"] == true && mine["pods"] == 1 && mine["memoryBytes"].as_f64() > Some(0.0);
            *last.lock().unwrap() = value;
            Ok(done)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; last performanceMetrics: {}\n{}", last.lock().unwrap(), operator.logs()))?;
        Ok(())
    })
    .await;
}

/// A ResourceFlavor and a ClusterQueue (deleted when the scenario ends), once the real Kueue
/// controller made the queue Active: only the controller writes that condition.
async fn active_cluster_queue(ctx: &kube9_tests::Ctx) -> anyhow::Result<String> {
    let name = kube9_tests::unique_name("kube9-cq");
    let flavor_ar = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("kueue.x-k8s.io", "v1beta2", "ResourceFlavor"),
        "resourceflavors",
    );
    let queue_ar = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("kueue.x-k8s.io", "v1beta2", "ClusterQueue"),
        "clusterqueues",
    );
    let flavors: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &flavor_ar);
    let queues: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &queue_ar);
    ctx.cleanup_dynamic(&flavor_ar, None, &name);
    ctx.cleanup_dynamic(&queue_ar, None, &name);
    let flavor: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": name},
    }))?;
    flavors.create(&PostParams::default(), &flavor).await?;
    let queue: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": name},
        "spec": {"namespaceSelector": {}, "resourceGroups": [{"coveredResources": ["cpu", "nvidia.com/gpu"],
            "flavors": [{"name": name, "resources": [
                {"name": "cpu", "nominalQuota": "8"}, {"name": "nvidia.com/gpu", "nominalQuota": "8"}]}]}]},
    }))?;
    queues.create(&PostParams::default(), &queue).await?;
    wait_for(Duration::from_secs(60), || async {
        let q = queues.get(&name).await?;
        Ok(q.data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Active" && c["status"] == "True")))
    })
    .await?;
    Ok(name)
}

#[tokio::test]
async fn the_real_kueue_controller_activates_a_cluster_queue() {
    scenario(|ctx| async move {
        if !served(&ctx.client, "kueue.x-k8s.io", "v1beta2", "kueue").await? {
            return Ok(());
        }
        active_cluster_queue(&ctx).await.map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn the_ai_conformance_self_check_sees_the_real_kueue_and_gateway_api() {
    scenario(|ctx| async move {
        if !served(&ctx.client, "kueue.x-k8s.io", "v1beta2", "kueue").await?
            || !served(&ctx.client, "gateway.networking.k8s.io", "v1", "gateway-api").await?
        {
            return Ok(());
        }
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("ai-real").await?;
        // Kueue runs beside the cluster (a process, not a Deployment): its work is the evidence.
        let queue = active_cluster_queue(&ctx).await?;
        // The real Gateway API CRDs validate the class; no Gateway implementation runs here, so
        // the test reports Accepted as one would.
        let class_name = kube9_tests::unique_name("kube9-gc");
        let classes =
            crate::ai_conformance::dynamic(&ctx, "gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses");
        ctx.cleanup_dynamic(
            &ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "GatewayClass"),
                "gatewayclasses",
            ),
            None,
            &class_name,
        );
        let class: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": class_name},
            "spec": {"controllerName": "example.com/gateway-controller"},
        }))?;
        classes.create(&PostParams::default(), &class).await?;
        let accepted = json!({"status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
            "message": "", "lastTransitionTime": "2026-12-02T08:00:00Z", "observedGeneration": 1}]}});
        classes
            .patch_status(&class_name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&accepted))
            .await?;

        let data = DataDir::new();
        let operator = Operator::start(&ns, &["--data-dir", data.0.to_str().unwrap_or_default()], &[])?;
        let summary = crate::ai_conformance::self_check(&ctx, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n{}", operator.logs()))?;
        let gang = crate::ai_conformance::row(&summary, "gang_scheduling")?;
        assert_eq!(gang.status, kube9_api::ai_conformance::RequirementStatus::Passed, "{gang:#?}");
        assert!(gang.rationale.contains(&format!("ClusterQueue {queue} Active")), "{}", gang.rationale);
        let inference = crate::ai_conformance::row(&summary, "ai_inference")?;
        assert_eq!(inference.status, kube9_api::ai_conformance::RequirementStatus::Passed, "{inference:#?}");
        assert!(inference.rationale.contains(&class_name), "{}", inference.rationale);
        let status = kube9_tests::contract::assert_configmap(&ctx.client, &ns).await?;
        let rows = status["aiConformance"]["requirements"].as_array().cloned().unwrap_or_default();
        assert!(rows.iter().any(|r| r["id"] == "gang_scheduling" && r["status"] == "passed"), "{rows:?}");
        Ok(())
    })
    .await;
}
