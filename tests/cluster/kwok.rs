//! At scale: an assessment over a cluster of 200 Nodes and 5,000 Running Pods, the Nodes and
//! Pods run by kwok (`cargo xtask testenv up --kwok 200`, which `cargo xtask ci` starts for
//! this test). Without kwok Nodes the test is skipped, unless `KUBE9_REQUIRE_KWOK` is set.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube9_api::assessment::{Assessment, AssessmentSpec, AssessmentStatus, Phase, Selection};
use kube9_tests::operator::{Operator, singleton_lock};
use kube9_tests::{scenario, unique_name, wait_for};
use serde_json::json;

const NODES: usize = 200;
const DEPLOYMENTS: usize = 50;
const REPLICAS: usize = 100;

#[tokio::test]
async fn an_assessment_covers_200_kwok_nodes_and_5000_running_pods() {
    scenario(|ctx| async move {
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        let fake = nodes.list_metadata(&ListParams::default().labels("type=kwok")).await?.items.len();
        if fake < NODES {
            let why = format!("needs {NODES} kwok Nodes (`cargo xtask testenv up --kwok {NODES}`); found {fake}");
            if std::env::var_os("KUBE9_REQUIRE_KWOK").is_some() {
                anyhow::bail!(why);
            }
            eprintln!("skipped: {why}");
            return Ok(());
        }
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("kwok").await?;
        let started = Instant::now();
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(ctx.client.clone(), &ns);
        for i in 0..DEPLOYMENTS {
            let name = format!("svc-{i}");
            let labels = json!({"app": name});
            let object = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
                "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels}, "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": {"type": "kwok"},
                        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [{"name": "app", "image": format!("shop/svc-{i}:1.0"),
                                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                    },
                }},
            }))?;
            deployments.create(&PostParams::default(), &object).await?;
        }
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let wanted = DEPLOYMENTS * REPLICAS;
        wait_for(Duration::from_secs(900), || {
            let pods = pods.clone();
            async move {
                let running =
                    pods.list_metadata(&ListParams::default().fields("status.phase=Running")).await?.items.len();
                Ok(running >= wanted)
            }
        })
        .await?;
        let running_after = started.elapsed();
        let on_nodes: std::collections::HashSet<String> = pods
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|p| p.spec.and_then(|s| s.node_name))
            .collect();
        assert!(on_nodes.len() >= NODES / 2, "Pods spread over only {} Nodes", on_nodes.len());

        let _op = Operator::start(&ns, &["--status-interval", "5s", "--assessment-max-objects", "50000"], &[])?;
        let name = unique_name("kwok");
        ctx.cleanup::<Assessment>(None, &name);
        let spec = AssessmentSpec {
            namespaces: Some(Selection { include: vec![ns.clone()], exclude: vec![] }),
            ..AssessmentSpec::default()
        };
        let api: Api<Assessment> = Api::all(ctx.client.clone());
        let assess_started = Instant::now();
        api.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
        wait_for(Duration::from_secs(300), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                let status = api.get(&name).await?.status.unwrap_or_default();
                Ok(matches!(status.phase, Some(Phase::Completed | Phase::Failed)))
            }
        })
        .await?;
        let assessed_in = assess_started.elapsed();
        let status: AssessmentStatus = api.get(&name).await?.status.unwrap_or_default();
        assert_eq!(status.phase, Some(Phase::Completed), "{:#?}", status.conditions);
        // Each Deployment is one subject of the per-workload checks: 50 of them, not 5,000 Pods.
        let memory_limits =
            status.checks.iter().find(|c| c.check_id == "performance-efficiency.memory-limits").expect("ran");
        assert_eq!(memory_limits.failed as usize, DEPLOYMENTS, "{memory_limits:#?}");
        eprintln!(
            "kwok: {wanted} Pods Running on {} of {fake} Nodes {running_after:.0?} after the Deployments were created; \
             assessment Completed in {assessed_in:.1?} (score {:?})",
            on_nodes.len(),
            status.score
        );
        // The 5,000 Pods go before the lock is released: while kwok finalises their deletion the
        // next test on the kwok Nodes waited over two minutes for a DaemonSet's 4 Pods.
        let emptied = Instant::now();
        deployments.delete_collection(&DeleteParams::background(), &ListParams::default()).await?;
        wait_for(Duration::from_secs(600), || {
            let pods = pods.clone();
            async move { Ok(pods.list_metadata(&ListParams::default().limit(1)).await?.items.is_empty()) }
        })
        .await?;
        eprintln!("kwok: {wanted} Pods deleted in {:.1?}", emptied.elapsed());
        Ok(())
    })
    .await;
}
