//! The pro tier end to end: collectors, the obfuscated upload, insights mapped back into the
//! OperatorStatus, and acknowledgements delivered through a server outage and an operator
//! restart. The simulator records every byte it receives.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube9_api::operator_status::{Health, Insight, OperatorStatus, OperatorStatusStatus, SINGLETON_NAME, SyncState};
use kube9_server_sim::{Behavior, Options, Simulator};
use kube9_tests::operator::{legacy_status, operator_status, singleton_lock};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::json;

use crate::operator::{KEY, start_with_key};

pub(crate) const WAIT: Duration = Duration::from_secs(60);
pub(crate) const FAST: &[&str] = &[
    "--collection-intervals",
    "clusterMetadata=2s,resourceInventory=2s,configurationPatterns=2s,performanceMetrics=2s,securityPosture=2s",
];

async fn simulator() -> anyhow::Result<(Simulator, std::path::PathBuf)> {
    let sim = Simulator::start(Options {
        tls: true,
        api_keys: vec![KEY.into()],
        metrics_interval_seconds: 2,
        ..Default::default()
    })
    .await?;
    let ca = std::env::temp_dir().join(unique_name("sim-ca"));
    std::fs::write(&ca, sim.ca_pem().unwrap_or_default())?;
    Ok((sim, ca))
}

/// A Deployment with one replica and no limits (the simulator has two insights about it),
/// named, labelled and built so that every user-chosen string is distinctive.
pub(crate) async fn distinctive_deployment(ctx: &Ctx, ns: &str, name: &str) -> anyhow::Result<()> {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"team": "ultraviolet-squad"},
            "annotations": {"owner": "marmalade-owner@example.com"}},
        "spec": {
            "replicas": 1,
            "paused": true,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "ultraviolet-backend"}},
                "spec": {"containers": [{"name": "marmalade-sidecar", "image": "registry.example/zq-private-image:1.0",
                    "env": [{"name": "DATABASE_PASSWORD", "value": "hunter2-zq-password"}]}]}
            }
        }
    }))?;
    Api::<Deployment>::namespaced(ctx.client.clone(), ns).create(&PostParams::default(), &deployment).await?;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "quixotic-settings", "namespace": ns}, "data": {"url": "https://zq-internal.example"}
    }))?;
    Api::<ConfigMap>::namespaced(ctx.client.clone(), ns).create(&PostParams::default(), &cm).await?;
    Ok(())
}

/// Waits until the OperatorStatus satisfies `check`; returns it.
pub(crate) async fn wait_status<F>(ctx: &Ctx, timeout: Duration, check: F) -> anyhow::Result<OperatorStatusStatus>
where
    F: Fn(&OperatorStatusStatus) -> bool,
{
    let last = std::sync::Mutex::new(None);
    let result = wait_for(timeout, || async {
        let status = operator_status(&ctx.client).await?;
        let ok = status.as_ref().is_some_and(&check);
        *last.lock().unwrap() = status;
        Ok(ok)
    })
    .await;
    let last = last.lock().unwrap().take();
    match (result, last) {
        (Ok(()), Some(status)) => Ok(status),
        (e, last) => Err(anyhow::anyhow!("{e:?}; last status: {last:#?}")),
    }
}

pub(crate) fn insight<'a>(status: &'a OperatorStatusStatus, ns: &str, name: &str, kind: &str) -> Option<&'a Insight> {
    status.insights.iter().find(|i| {
        i.mapped && i.insight_type == kind && i.object.name == name && i.object.namespace.as_deref() == Some(ns)
    })
}

pub(crate) async fn acknowledge(ctx: &Ctx, id: &str, ack: serde_json::Value) -> anyhow::Result<()> {
    let api: Api<OperatorStatus> = Api::all(ctx.client.clone());
    let patch = json!({"spec": {"acknowledgements": {id: ack}}});
    api.patch(SINGLETON_NAME, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

#[tokio::test]
async fn a_pro_run_maps_insights_back_and_no_real_name_leaves_the_cluster() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("zanzibar-ledger").await?;
        distinctive_deployment(&ctx, &ns, "quixotic-payroll").await?;
        let (sim, ca) = simulator().await?;
        let _op = start_with_key(&ns, &sim.url(), &ca, KEY, FAST)?;

        // The insight comes back about the real Deployment, by its real name, text included.
        let status =
            wait_status(&ctx, WAIT, |s| insight(s, &ns, "quixotic-payroll", "missing-resource-limits").is_some())
                .await?;
        let found = insight(&status, &ns, "quixotic-payroll", "missing-resource-limits").unwrap();
        assert!(found.text.contains("quixotic-payroll") && found.text.contains(&ns), "{}", found.text);
        assert_eq!(found.generation_method.as_deref(), Some("rules"));
        assert!(found.created_at.is_some() && found.expires_at.is_some());
        assert_eq!(status.health, Some(Health::Healthy), "{:?}", status.error);
        let upload = status.upload.clone().unwrap_or_default();
        assert!(upload.payload_bytes.unwrap_or(0) > 0 && upload.last_success_time.is_some(), "{upload:?}");

        // Collection stats, in both reports.
        let stats = status.collection_stats.clone().unwrap_or_default();
        assert!(stats.total_success_count >= 5 && stats.collections_stored_count >= 5, "{stats:?}");
        assert!(stats.last_success_time.is_some());
        let (_, legacy) = legacy_status(&ctx.client, &ns).await?.expect("the ConfigMap");
        assert!(legacy.collection_stats.total_success_count >= 5);
        assert!(legacy.collection_stats.last_success_time.is_some());

        // The key Secret was made on first use.
        let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns).get("kube9-operator-obfuscation-key").await?;
        assert_eq!(secret.data.unwrap_or_default().get("key").map(|k| k.0.len()), Some(32));

        // An insight the operator cannot map back is kept and marked.
        sim.set_unmappable(true);
        let status = wait_status(&ctx, WAIT, |s| s.insights.iter().any(|i| !i.mapped)).await?;
        let unmapped = status.insights.iter().find(|i| !i.mapped).unwrap();
        assert_eq!(unmapped.object.name, "deployment-000000");

        // kube9-server goes down: the insights stay, the operator is degraded; it comes back at
        // the same address and the next retry uploads again.
        let (addr, identity, mut requests) = (sim.addr(), sim.tls_identity(), sim.requests());
        sim.shutdown().await;
        let status = wait_status(&ctx, WAIT, |s| {
            s.health == Some(Health::Degraded) && s.error.as_deref().is_some_and(|e| e.contains("could not be reached"))
        })
        .await?;
        assert!(insight(&status, &ns, "quixotic-payroll", "missing-resource-limits").is_some(), "insights kept");
        let back = Simulator::start(Options {
            listen: addr,
            tls: true,
            tls_identity: identity,
            api_keys: vec![KEY.into()],
            metrics_interval_seconds: 2,
            ..Default::default()
        })
        .await?;
        wait_status(&ctx, WAIT, |s| s.health == Some(Health::Healthy) && !s.insights.is_empty()).await?;
        assert!(back.metrics_uploads() >= 1);

        // Every byte either simulator received: uploads happened, and no distinctive string is in them.
        requests.extend(back.requests());
        let uploads = requests.iter().filter(|r| r.path == "/api/metrics").count();
        assert!(uploads >= 2, "{uploads} uploads");
        let mut all = Vec::new();
        for r in &requests {
            all.extend_from_slice(r.path.as_bytes());
            for (k, v) in &r.headers {
                all.extend_from_slice(k.as_bytes());
                all.extend_from_slice(v.as_bytes());
            }
            all.extend_from_slice(&r.body);
        }
        let all = String::from_utf8_lossy(&all).into_owned();
        for secret in ["zanzibar", "quixotic", "ultraviolet", "marmalade", "zq-", "hunter2", "DATABASE_PASSWORD", &ns] {
            assert!(!all.contains(secret), "{secret:?} reached kube9-server");
        }
        // The inventory counted the Deployment in its (obfuscated) namespace.
        let body: serde_json::Value = serde_json::from_slice(
            &requests.iter().rev().find(|r| r.path == "/api/metrics").map(|r| r.body.clone()).unwrap_or_default(),
        )?;
        let inventory = body["collections"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "resourceInventory"))
            .map(|c| c["data"].clone())
            .unwrap_or_default();
        let counted = inventory["byNamespace"].as_object().is_some_and(|by| {
            by.iter().any(|(ns, kinds)| {
                ns.starts_with("namespace-") && kinds["Deployment"] == 1 && kinds.get("Pod").is_none()
            })
        });
        assert!(counted, "{inventory}");
        // The upload did describe the Deployment, under its mock name.
        assert!(all.contains("\"kind\":\"Deployment\"") && all.contains("deployment-"), "no workload was uploaded");
        Ok(())
    })
    .await;
}

#[tokio::test]
pub(crate) async fn acknowledgements_survive_a_server_outage_and_an_operator_restart() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("ack").await?;
        distinctive_deployment(&ctx, &ns, "checkout").await?;
        let (sim, ca) = simulator().await?;
        let mut op = start_with_key(&ns, &sim.url(), &ca, KEY, FAST)?;
        let status = wait_status(&ctx, WAIT, |s| {
            insight(s, &ns, "checkout", "missing-resource-limits").is_some()
                && insight(s, &ns, "checkout", "single-replica").is_some()
        })
        .await?;
        let limits = insight(&status, &ns, "checkout", "missing-resource-limits").unwrap().id.clone();
        let replicas = insight(&status, &ns, "checkout", "single-replica").unwrap().id.clone();
        let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &ns);
        let key_before = secrets.get("kube9-operator-obfuscation-key").await?.data;

        // The server fails: the acknowledgement is recorded as failed, the insights stay, degraded.
        sim.set_behavior(Behavior::ServerError { status: 503 });
        acknowledge(&ctx, &limits, json!({"state": "acknowledged", "note": "checkout gets limits in 2.4"})).await?;
        let status = wait_status(&ctx, WAIT, |s| {
            s.acknowledgements.get(&limits).is_some_and(|a| a.sync == SyncState::Failed && a.attempts >= 2)
                && s.health == Some(Health::Degraded)
        })
        .await?;
        assert!(status.acknowledgements[&limits].last_error.as_deref().unwrap_or("").contains("503"));
        assert!(insight(&status, &ns, "checkout", "missing-resource-limits").is_some(), "insights kept");
        assert!(sim.acknowledgements().is_empty());

        // The server is back: delivered, with the real name in the note replaced by its mock name.
        sim.set_behavior(Behavior::Accept);
        let status = wait_status(&ctx, WAIT, |s| {
            s.acknowledgements.get(&limits).is_some_and(|a| a.sync == SyncState::Synced)
                && s.health == Some(Health::Healthy)
        })
        .await?;
        let acked = insight(&status, &ns, "checkout", "missing-resource-limits").unwrap();
        assert_eq!(serde_json::to_value(acked.status)?, "acknowledged");
        assert!(acked.acknowledged_at.is_some());
        let delivered = sim.acknowledgements();
        assert_eq!(delivered.len(), 1, "{delivered:?}");
        let note = delivered[0].note.clone().unwrap_or_default();
        assert!(note.starts_with("deployment-") && note.ends_with(" gets limits in 2.4"), "{note}");

        // The operator stops; acknowledgements made meanwhile are delivered by the next one.
        op.terminate()?;
        acknowledge(&ctx, &replicas, json!({"state": "dismissed"})).await?;
        acknowledge(&ctx, "ins_0000000000000000", json!({"state": "acknowledged"})).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _op = start_with_key(&ns, &sim.url(), &ca, KEY, FAST)?;
        let status = wait_status(&ctx, WAIT, |s| {
            s.acknowledgements.get(&replicas).is_some_and(|a| a.sync == SyncState::Synced)
                && s.acknowledgements.get("ins_0000000000000000").is_some_and(|a| a.sync == SyncState::UnknownInsight)
        })
        .await?;
        assert_eq!(status.acknowledgements[&limits].sync, SyncState::Synced, "not sent again");
        // Unknown ids are not retried: a few retry periods later, still one attempt.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let unknown_attempts =
            sim.acknowledgements().iter().filter(|a| a.id == "ins_0000000000000000" && !a.found).count();
        assert_eq!(unknown_attempts, 1);
        let status = operator_status(&ctx.client).await?.unwrap_or_default();
        assert_eq!(status.acknowledgements["ins_0000000000000000"].attempts, 1);
        assert_eq!(sim.acknowledgements().iter().filter(|a| a.id == limits).count(), 1);
        // The same key after the restart, so the same mock names.
        assert_eq!(secrets.get("kube9-operator-obfuscation-key").await?.data, key_before);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_payload_the_validator_refuses_is_not_sent_and_degrades() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("refused").await?;
        // A label value equal to a word the payload itself contains (a collection type): the
        // validator cannot tell it from a leak, so nothing may be sent.
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": ns, "labels": {"purpose": "configurationPatterns"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "paused": true, "template": {
                "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}
        }))?;
        let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), &ns);
        deployments.create(&PostParams::default(), &deployment).await?;
        let (sim, ca) = simulator().await?;
        let op = start_with_key(&ns, &sim.url(), &ca, KEY, FAST)?;
        let status = wait_status(&ctx, WAIT, |s| {
            s.error.as_deref().is_some_and(|e| e.contains("the payload was not sent: a real name at /collections/"))
        })
        .await?;
        assert_eq!(status.health, Some(Health::Degraded));
        assert!(status.registered == Some(true));
        let (_, metrics) = op.get("/metrics").await?;
        let refused = metrics.lines().find_map(|l| l.strip_prefix("kube9_payloads_refused_total "));
        assert!(refused.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= 1), "{metrics}");
        assert_eq!(sim.requests().iter().filter(|r| r.path == "/api/metrics").count(), 0, "nothing was sent");
        let refusal =
            op.logs().lines().find(|l| l.contains("validator refused")).map(str::to_owned).unwrap_or_default();
        assert!(refusal.contains("\"pointer\":\"/collections/"), "{refusal}");
        assert!(!refusal.contains("configurationPatterns"), "the log line names the value: {refusal}");
        // Leave no such label behind for the next test's operator.
        deployments.delete("web", &Default::default()).await?;
        wait_for(WAIT, || async { Ok(deployments.get_opt("web").await?.is_none()) }).await?;
        Ok(())
    })
    .await;
}
