//! Kinds served under different API versions across the supported range (DESIGN.md,
//! "Kubernetes versions"): the assessment reads CronJob, PodDisruptionBudget and
//! HorizontalPodAutoscaler through whichever version the server serves. On a current server
//! that is batch/v1, policy/v1 and autoscaling/v2 (the beta versions are gone); on 1.20 it is
//! batch/v1beta1, policy/v1beta1 and autoscaling/v2beta2. `cargo xtask ci` runs this module
//! on both.

use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Discovery;
use kube9_api::assessment::{Assessment, AssessmentSpec, AssessmentStatus, CheckState, Phase, Selection};
use kube9_tests::operator::{Operator, singleton_lock};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::{Value, json};

/// The server's minor version (`20`, `35`).
pub(crate) async fn server_minor(ctx: &Ctx) -> anyhow::Result<u32> {
    let info = ctx.client.apiserver_version().await?;
    let minor: String = info.minor.chars().take_while(char::is_ascii_digit).collect();
    Ok(minor.parse()?)
}

/// The versions of `group` that serve `kind`.
fn serving(discovery: &Discovery, group: &str, kind: &str) -> Vec<String> {
    let Some(g) = discovery.get(group) else { return vec![] };
    g.versions().filter(|v| g.versioned_resources(v).iter().any(|(r, _)| r.kind == kind)).map(str::to_owned).collect()
}

/// The first of `versions` in which the server serves `kind` of `group`.
async fn served(
    discovery: &Discovery,
    group: &str,
    kind: &str,
    versions: &[&'static str],
) -> anyhow::Result<&'static str> {
    let served = serving(discovery, group, kind);
    versions
        .iter()
        .find(|v| served.iter().any(|s| s == *v))
        .copied()
        .ok_or_else(|| anyhow::anyhow!("{group} serves {kind} in none of {versions:?} (only in {served:?})"))
}

async fn create(
    ctx: &Ctx,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    body: Value,
) -> anyhow::Result<()> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, plural));
    let mut object = body;
    object["apiVersion"] = json!(if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") });
    object["kind"] = json!(kind);
    api.create(&PostParams::default(), &serde_json::from_value(object)?).await?;
    Ok(())
}

#[tokio::test]
async fn cronjobs_pdbs_and_hpas_are_read_through_the_version_the_server_serves() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let minor = server_minor(&ctx).await?;
        let discovery = Discovery::new(ctx.client.clone()).run().await?;
        let cronjob = served(&discovery, "batch", "CronJob", &["v1", "v1beta1"]).await?;
        let pdb = served(&discovery, "policy", "PodDisruptionBudget", &["v1", "v1beta1"]).await?;
        let hpa = served(&discovery, "autoscaling", "HorizontalPodAutoscaler", &["v2", "v2beta2"]).await?;
        // Which side of each fallback this server exercises.
        if minor >= 25 {
            assert_eq!((cronjob, pdb, hpa), ("v1", "v1", "v2"), "1.{minor}");
            for (group, kind, gone) in [
                ("batch", "CronJob", "v1beta1"),
                ("policy", "PodDisruptionBudget", "v1beta1"),
                ("autoscaling", "HorizontalPodAutoscaler", "v2beta2"),
            ] {
                let versions = serving(&discovery, group, kind);
                assert!(!versions.iter().any(|v| v == gone), "1.{minor} still serves {kind} in {group}/{gone}");
            }
        } else if minor == 20 {
            assert_eq!((cronjob, pdb, hpa), ("v1beta1", "v1beta1", "v2beta2"), "1.20 serves only the beta versions");
        }
        eprintln!("Kubernetes 1.{minor}: batch/{cronjob} CronJob, policy/{pdb} PDB, autoscaling/{hpa} HPA");

        let ns = ctx.namespace("versions").await?;
        let labels = json!({"app": "web"});
        let pod = json!({"containers": [{"name": "app", "image": "shop/web:1.0", "securityContext": {"privileged": true}}]});
        create(&ctx, &ns, "apps", "v1", "Deployment", "deployments", json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": pod}},
        }))
        .await?;
        // Allows no disruption: reliability.disruption-budget-blocks names it.
        create(&ctx, &ns, "policy", pdb, "PodDisruptionBudget", "poddisruptionbudgets", json!({
            "metadata": {"name": "web-pdb"},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": labels}},
        }))
        .await?;
        // Cannot scale (min = max): performance-efficiency.hpa-range names it.
        create(&ctx, &ns, "autoscaling", hpa, "HorizontalPodAutoscaler", "horizontalpodautoscalers", json!({
            "metadata": {"name": "web-hpa"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 3, "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
            },
        }))
        .await?;
        // Runs privileged: security.privileged names the CronJob.
        create(&ctx, &ns, "batch", cronjob, "CronJob", "cronjobs", json!({
            "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "job", "image": "shop/batch:1.0", "securityContext": {"privileged": true}}],
            }}}}},
        }))
        .await?;

        let _op = Operator::start(&ns, &["--status-interval", "3s"], &[])?;
        let status = assess_namespace(&ctx, &ns, "versions").await?;

        let failed_on = |check: &str| -> Vec<(String, String)> {
            status
                .findings
                .iter()
                .filter(|f| f.check_id == check && !f.exempted)
                .map(|f| (f.object.kind.clone(), f.object.name.clone()))
                .collect()
        };
        for (check, kind, object) in [
            ("reliability.disruption-budget-blocks", "PodDisruptionBudget", "web-pdb"),
            ("performance-efficiency.hpa-range", "HorizontalPodAutoscaler", "web-hpa"),
        ] {
            let outcome = status.checks.iter().find(|c| c.check_id == check).expect("the check ran");
            // Failed, or Warning for a low-severity check: either way one object failed it.
            assert!(
                matches!(outcome.state, CheckState::Failing | CheckState::Warning) && outcome.failed == 1,
                "{check} on 1.{minor}: {outcome:#?}"
            );
            assert_eq!(failed_on(check), vec![(kind.to_owned(), object.to_owned())], "{check} on 1.{minor}");
        }
        let privileged = failed_on("security.privileged");
        assert!(privileged.contains(&("CronJob".to_owned(), "nightly".to_owned())), "{privileged:?}");
        assert!(privileged.contains(&("Deployment".to_owned(), "web".to_owned())), "{privileged:?}");
        // The PDB is read, so the workload it covers is not called uncovered.
        let disruption = status.checks.iter().find(|c| c.check_id == "reliability.disruption-budget").expect("ran");
        assert_eq!(disruption.state, CheckState::Passing, "{disruption:#?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_native_sidecar_is_checked_as_a_running_container() {
    scenario(|ctx| async move {
        let minor = server_minor(&ctx).await?;
        if minor < 29 {
            eprintln!("skipped: native sidecars (init containers with restartPolicy: Always) need 1.29; this server is 1.{minor}");
            return Ok(());
        }
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("sidecar").await?;
        let probe = json!({"httpGet": {"path": "/healthz", "port": 8080}});
        let resources = json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}});
        let labels = json!({"app": "web"});
        create(&ctx, &ns, "apps", "v1", "Deployment", "deployments", json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "initContainers": [
                    {"name": "proxy", "image": "shop/proxy:1.0", "restartPolicy": "Always"},
                    {"name": "migrate", "image": "shop/migrate:1.0", "resources": resources},
                ],
                "containers": [{"name": "app", "image": "shop/web:1.0", "resources": resources,
                                "livenessProbe": probe, "readinessProbe": probe}],
            }}},
        }))
        .await?;
        // The server keeps the field (a 1.20 server would have dropped it).
        let kept = kube9_tests::kubectl(&["get", "deployment", "web", "-n", &ns, "-o",
            "jsonpath={.spec.template.spec.initContainers[0].restartPolicy}"])?;
        assert_eq!(kept, "Always");

        let _op = Operator::start(&ns, &["--status-interval", "3s"], &[])?;
        let status = assess_namespace(&ctx, &ns, "sidecar").await?;
        let containers = |check: &str| -> Vec<Option<String>> {
            status.findings.iter().filter(|f| f.check_id == check).map(|f| f.object.container.clone()).collect()
        };
        let proxy = vec![Some("proxy".to_owned())];
        // Without resources, flagged like any container.
        assert_eq!(containers("performance-efficiency.cpu-requests"), proxy);
        assert_eq!(containers("performance-efficiency.memory-limits"), proxy);
        // Running for the Pod's life, it needs a liveness probe; the classic init container does not.
        assert_eq!(containers("reliability.liveness-probe"), proxy);
        // It does not serve the Pod: no readiness finding for it (nor for the init container).
        assert_eq!(containers("reliability.readiness-probe"), Vec::<Option<String>>::new());
        Ok(())
    })
    .await;
}

/// Runs a one-off Assessment of `ns` with the operator already running there, and returns its
/// status once it has completed.
async fn assess_namespace(ctx: &kube9_tests::Ctx, ns: &str, prefix: &str) -> anyhow::Result<AssessmentStatus> {
    let name = unique_name(prefix);
    ctx.cleanup::<Assessment>(None, &name);
    let spec = AssessmentSpec {
        namespaces: Some(Selection { include: vec![ns.to_owned()], exclude: vec![] }),
        ..AssessmentSpec::default()
    };
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    api.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
    wait_for(Duration::from_secs(60), || {
        let (api, name) = (api.clone(), name.clone());
        async move {
            let status = api.get(&name).await?.status.unwrap_or_default();
            Ok(matches!(status.phase, Some(Phase::Completed | Phase::Failed)))
        }
    })
    .await?;
    let status: AssessmentStatus = api.get(&name).await?.status.unwrap_or_default();
    assert_eq!(status.phase, Some(Phase::Completed), "{status:#?}");
    Ok(status)
}
