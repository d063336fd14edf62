//! Trivy Operator's vulnerabilities in the assessment, with its CRD from its own Go module
//! (`github.com/aquasecurity/trivy-operator`) and VulnerabilityReports shaped as it writes them:
//! the workload running an image with critical and high CVEs is flagged (its Deployment, not
//! the ReplicaSet Trivy scanned), the clean one passes; without the CRD the check is skipped
//! and says why.

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube9_api::assessment::{Assessment, AssessmentSpec, CheckState, RUN_REQUESTED_ANNOTATION, Selection};
use kube9_tests::gomodules::{self, TRIVY_OPERATOR};
use kube9_tests::operator::{Operator, singleton_lock};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::{Value, json};

use crate::findings::finished;

const CHECK: &str = "security.image-vulnerabilities";

fn vulnerability_reports() -> ApiResource {
    let gvk = GroupVersionKind::gvk("aquasecurity.github.io", "v1alpha1", "VulnerabilityReport");
    ApiResource::from_gvk_with_plural(&gvk, "vulnerabilityreports")
}

async fn deployment(ctx: &Ctx, ns: &str, name: &str, image: &str) -> Result<()> {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}}}
    }))?;
    Api::<Deployment>::namespaced(ctx.client.clone(), ns).create(&PostParams::default(), &d).await?;
    Ok(())
}

/// The ReplicaSet the Deployment controller made for `deployment` (what Trivy Operator scans).
async fn replica_set(ctx: &Ctx, ns: &str, deployment: &str) -> Result<ReplicaSet> {
    let api = Api::<ReplicaSet>::namespaced(ctx.client.clone(), ns);
    let selector = format!("app={deployment}");
    wait_for(std::time::Duration::from_secs(60), || {
        let (api, selector) = (api.clone(), selector.clone());
        async move { Ok(!api.list(&ListParams::default().labels(&selector)).await?.items.is_empty()) }
    })
    .await?;
    api.list(&ListParams::default().labels(&selector)).await?.items.into_iter().next().context("a ReplicaSet")
}

fn cve(id: &str, severity: &str, package: &str, installed: &str, fixed: &str) -> Value {
    json!({
        "vulnerabilityID": id, "severity": severity, "resource": package, "installedVersion": installed,
        "fixedVersion": fixed, "title": format!("{package}: {id}"), "primaryLink": format!("https://avd.aquasec.com/nvd/{}", id.to_lowercase()),
        "score": 9.8, "target": "", "publishedDate": "2024-01-10T15:15:00Z", "lastModifiedDate": "2024-02-01T10:00:00Z",
    })
}

/// A VulnerabilityReport as Trivy Operator writes it for one container of a ReplicaSet.
fn report(ns: &str, rs: &ReplicaSet, image: (&str, &str), vulnerabilities: Vec<Value>) -> Value {
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let count = |s: &str| vulnerabilities.iter().filter(|v| v["severity"] == s).count();
    json!({
        "apiVersion": "aquasecurity.github.io/v1alpha1",
        "kind": "VulnerabilityReport",
        "metadata": {
            "name": format!("replicaset-{rs_name}-app"),
            "namespace": ns,
            "labels": {
                "trivy-operator.resource.kind": "ReplicaSet",
                "trivy-operator.resource.name": rs_name,
                "trivy-operator.resource.namespace": ns,
                "trivy-operator.container.name": "app",
                "app.kubernetes.io/managed-by": "trivy-operator",
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                "uid": rs.metadata.uid, "controller": true, "blockOwnerDeletion": false}],
        },
        "report": {
            "updateTimestamp": "2026-12-07T08:00:00Z",
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "0.61.0"},
            "registry": {"server": "index.docker.io"},
            "artifact": {"repository": image.0, "tag": image.1},
            "os": {"family": "debian", "name": "11.6"},
            "summary": {"criticalCount": count("CRITICAL"), "highCount": count("HIGH"), "mediumCount": count("MEDIUM"),
                "lowCount": count("LOW"), "unknownCount": 0, "noneCount": 0},
            "vulnerabilities": vulnerabilities,
        }
    })
}

#[tokio::test]
async fn trivy_operators_reports_flag_the_workloads_with_critical_and_high_cves_and_the_check_is_skipped_without_them()
{
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        gomodules::install(&ctx.client, &TRIVY_OPERATOR).await?;
        let ns = ctx.namespace("trivy").await?;
        deployment(&ctx, &ns, "web", "nginx:1.21.0").await?;
        deployment(&ctx, &ns, "api", "shop/api:2.4.1").await?;
        let reports = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &ns, &vulnerability_reports());
        let web = replica_set(&ctx, &ns, "web").await?;
        let vulnerable = report(
            &ns,
            &web,
            ("library/nginx", "1.21.0"),
            vec![
                cve("CVE-2022-37434", "CRITICAL", "zlib1g", "1:1.2.11.dfsg-2+deb11u1", "1:1.2.11.dfsg-2+deb11u2"),
                cve("CVE-2023-0286", "HIGH", "libssl1.1", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4"),
                cve("CVE-2023-4911", "HIGH", "libc6", "2.31-13+deb11u5", ""),
                cve("CVE-2022-4415", "MEDIUM", "libsystemd0", "247.3-7+deb11u1", ""),
            ],
        );
        let api_rs = replica_set(&ctx, &ns, "api").await?;
        let clean =
            report(&ns, &api_rs, ("shop/api", "2.4.1"), vec![cve("CVE-2023-1234", "LOW", "tzdata", "2021a-1", "")]);
        for object in [vulnerable, clean] {
            let object: DynamicObject = serde_json::from_value(object)?;
            reports.create(&PostParams::default(), &object).await.context("the CRD accepts a realistic report")?;
        }

        let _op = Operator::start(&ns, &["--status-interval", "3s"], &[])?;
        let name = unique_name("trivy");
        ctx.cleanup::<Assessment>(None, &name);
        let spec = AssessmentSpec {
            namespaces: Some(Selection { include: vec![ns.clone()], exclude: vec![] }),
            checks: Some(Selection { include: vec![CHECK.to_owned()], exclude: vec![] }),
            ..AssessmentSpec::default()
        };
        let api: Api<Assessment> = Api::all(ctx.client.clone());
        api.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
        let status = finished(&ctx, &name, None).await?;
        let outcome = status.checks.iter().find(|c| c.check_id == CHECK).context("the check ran")?;
        assert_eq!((outcome.state, outcome.passed, outcome.failed), (CheckState::Failing, 1, 1), "{outcome:?}");
        let findings: Vec<_> = status.findings.iter().filter(|f| f.check_id == CHECK).collect();
        let [finding] = &findings[..] else { panic!("{findings:#?}") };
        assert_eq!(
            (finding.object.kind.as_str(), finding.object.name.as_str(), finding.object.container.as_deref()),
            ("Deployment", "web", Some("app")),
            "the Deployment, not the ReplicaSet Trivy scanned"
        );
        assert_eq!(finding.object.namespace.as_deref(), Some(ns.as_str()));
        for part in [
            "index.docker.io/library/nginx:1.21.0",
            "1 critical and 2 high",
            "CVE-2022-37434 (critical zlib1g 1:1.2.11.dfsg-2+deb11u1, fixed in 1:1.2.11.dfsg-2+deb11u2)",
            "CVE-2023-0286",
            "CVE-2023-4911 (high libc6 2.31-13+deb11u5, no fix yet)",
        ] {
            assert!(finding.message.contains(part), "{part} in {}", finding.message);
        }
        assert!(!finding.message.contains("CVE-2022-4415"), "medium CVEs are not named");

        // Without Trivy Operator's CRD the check is skipped, with the reason.
        gomodules::uninstall(&ctx.client, &TRIVY_OPERATOR).await?;
        let patch = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: "again"}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let again = finished(&ctx, &name, status.run_id.as_deref()).await?;
        let outcome = again.checks.iter().find(|c| c.check_id == CHECK).context("the check is listed")?;
        assert_eq!(outcome.state, CheckState::Skipped, "{outcome:?}");
        let why = outcome.message.clone().unwrap_or_default();
        assert_eq!(why, "the cluster does not serve VulnerabilityReport", "{outcome:?}");
        Ok(())
    })
    .await;
}
