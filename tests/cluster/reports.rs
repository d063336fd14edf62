//! Findings as policy reports, with the real operator and the report CRDs from their own Go
//! modules: every finding of a run with thousands is in the reports (counted per namespace,
//! severity and result against `kube9-operator query findings`), a second run replaces them,
//! deleting the Assessment removes them, wgpolicyk8s.io is used where openreports.io is not
//! served, and where neither is nothing is written and the status says why.
//!
//! The tests install and remove cluster-wide CRDs, so they hold the operator lock throughout.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube9_api::assessment::{Assessment, AssessmentSpec, ReportsPublished, Selection};
use kube9_tests::gomodules::{self, OPENREPORTS, POLICY_REPORTS};
use kube9_tests::operator::{DataDir, Operator, singleton_lock};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::{Value, json};

use crate::events::query;
use crate::findings::{careless_deployments, finished};

/// (namespace, or "" for cluster-scoped; severity; result) → results.
type Counts = BTreeMap<(String, String, String), u64>;

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The two report resources of an API: (namespaced, cluster-scoped).
fn report_resources(api_version: &str) -> (ApiResource, ApiResource) {
    match api_version {
        "openreports.io/v1alpha1" => (
            resource("openreports.io", "v1alpha1", "Report", "reports"),
            resource("openreports.io", "v1alpha1", "ClusterReport", "clusterreports"),
        ),
        _ => (
            resource("wgpolicyk8s.io", "v1alpha2", "PolicyReport", "policyreports"),
            resource("wgpolicyk8s.io", "v1alpha2", "ClusterPolicyReport", "clusterpolicyreports"),
        ),
    }
}

/// The result word a finding gets (docs/checks.md): exempted → skip, low and info → warn.
fn result_of(finding: &Value) -> &'static str {
    if finding["exempted"] == true {
        "skip"
    } else if matches!(finding["severity"].as_str(), Some("low" | "info")) {
        "warn"
    } else {
        "fail"
    }
}

/// Every finding `query findings` lists, counted.
fn query_counts(data: &DataDir, name: &str) -> Result<Counts> {
    let doc = query(&data.0, &["findings", "--assessment", name, "--limit", "1000000"])?;
    let mut counts = Counts::new();
    for f in doc["findings"].as_array().context("findings")? {
        let ns = f["object"]["namespace"].as_str().unwrap_or_default().to_owned();
        let key = (ns, f["severity"].as_str().unwrap_or_default().to_owned(), result_of(f).to_owned());
        *counts.entry(key).or_default() += 1;
    }
    Ok(counts)
}

/// What the reports of one Assessment hold, read as a policy tool reads them.
#[derive(Debug, Default)]
struct Read {
    /// Results about an object.
    findings: Counts,
    /// Results without an object (a check that passed or could not run), by result.
    checks: BTreeMap<String, u64>,
    /// (namespace, name, run id) of each report.
    reports: Vec<(Option<String>, String, String)>,
}

async fn read_reports(ctx: &Ctx, api_version: &str, uid: &str) -> Result<Read> {
    let (namespaced, cluster) = report_resources(api_version);
    let selector = format!("kube9.io/assessment-uid={uid}");
    let mut read = Read::default();
    for resource in [namespaced, cluster] {
        let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource);
        for report in api.list(&ListParams::default().labels(&selector)).await? {
            let ns = report.metadata.namespace.clone();
            let run = report.metadata.annotations.as_ref().and_then(|a| a.get("kube9.io/run-id")).cloned();
            read.reports.push((ns.clone(), report.metadata.name.clone().unwrap_or_default(), run.unwrap_or_default()));
            let results = report.data["results"].as_array().cloned().unwrap_or_default();
            // The summary counts its own results.
            for word in ["pass", "fail", "warn", "error", "skip"] {
                let n = results.iter().filter(|r| r["result"] == word).count() as u64;
                ensure!(
                    report.data["summary"][word].as_u64() == Some(n),
                    "summary.{word} of {:?}",
                    report.metadata.name
                );
            }
            for r in results {
                ensure!(r["source"] == "kube9", "source: {r}");
                ensure!(r["policy"].as_str().is_some_and(|p| p.starts_with(r["category"].as_str().unwrap_or("?"))));
                let word = r["result"].as_str().unwrap_or_default().to_owned();
                match r["resources"].as_array().and_then(|a| a.first()) {
                    Some(object) => {
                        let object_ns = object["namespace"].as_str().map(str::to_owned);
                        ensure!(object_ns == ns, "a result about {object} in the report of {ns:?}");
                        let key = (
                            object_ns.unwrap_or_default(),
                            r["severity"].as_str().unwrap_or_default().to_owned(),
                            word,
                        );
                        *read.findings.entry(key).or_default() += 1;
                    }
                    None => *read.checks.entry(word).or_default() += 1,
                }
            }
        }
    }
    read.reports.sort();
    Ok(read)
}

async fn create_assessment(ctx: &Ctx, namespaces: &[&str]) -> Result<(String, String)> {
    let name = unique_name("reports");
    ctx.cleanup::<Assessment>(None, &name);
    let spec = AssessmentSpec {
        namespaces: Some(Selection { include: namespaces.iter().map(|n| (*n).to_owned()).collect(), exclude: vec![] }),
        ..AssessmentSpec::default()
    };
    let created = Api::<Assessment>::all(ctx.client.clone())
        .create(&PostParams::default(), &Assessment::new(&name, spec))
        .await?;
    Ok((name, created.metadata.uid.context("a uid")?))
}

/// Waits until the run `run_id` of `name` has published its reports (after it is Completed)
/// and returns what its status says about them.
async fn reports_of(ctx: &Ctx, name: &str, run_id: &str) -> Result<ReportsPublished> {
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    wait_for(Duration::from_secs(120), || {
        let (api, seen) = (api.clone(), seen.clone());
        async move {
            let status = api.get(name).await?.status.unwrap_or_default();
            let done = status.run_id.as_deref() == Some(run_id) && status.reports.is_some();
            *seen.lock().expect("not poisoned") = status.reports;
            Ok(done)
        }
    })
    .await?;
    let reports = seen.lock().expect("not poisoned").take();
    reports.context("status.reports")
}

/// Waits until the store holds the run `run_id` (it is written beside the status).
async fn stored(data: &DataDir, name: &str, run_id: &str) -> Result<()> {
    wait_for(Duration::from_secs(30), || {
        let doc = query(&data.0, &["findings", "--assessment", name, "--limit", "1"]);
        let run_id = run_id.to_owned();
        async move { Ok(doc?["runId"] == run_id.as_str()) }
    })
    .await
}

#[tokio::test]
async fn every_finding_is_published_as_openreports_replaced_by_the_next_run_and_removed_with_the_assessment() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        // Both APIs served: openreports.io is preferred.
        gomodules::install(&ctx.client, &OPENREPORTS).await?;
        gomodules::install(&ctx.client, &POLICY_REPORTS).await?;
        let big = ctx.namespace("reports-big").await?;
        let small = ctx.namespace("reports-small").await?;
        careless_deployments(&ctx, &big, 220).await?;
        careless_deployments(&ctx, &small, 30).await?;
        let data = DataDir::new();
        let dir = data.0.to_str().context("a UTF-8 path")?.to_owned();
        let op = Operator::start(&big, &["--status-interval", "3s", "--data-dir", &dir], &[])?;
        let (name, uid) = create_assessment(&ctx, &[&big, &small]).await?;
        let status = finished(&ctx, &name, None).await?;
        let run_id = status.run_id.clone().context("a run id")?;
        let published = reports_of(&ctx, &name, &run_id).await?;
        assert_eq!(published.api_version.as_deref(), Some("openreports.io/v1alpha1"), "{published:?}");
        assert_eq!(published.reason, None, "{published:?}\n{}", op.logs());
        stored(&data, &name, &run_id).await?;

        let expected = query_counts(&data, &name)?;
        let total: u64 = expected.values().sum();
        assert!(total >= 2000, "a run with thousands of findings: {total}");
        let read = read_reports(&ctx, "openreports.io/v1alpha1", &uid).await?;
        assert_eq!(read.findings, expected, "the reports hold every finding, per namespace, severity and result");
        let passing = status.checks.iter().filter(|c| c.failed == 0 && c.exempted == 0).count() as u64;
        let passed_in_reports =
            read.checks.get("pass").copied().unwrap_or(0) + read.checks.get("skip").copied().unwrap_or(0);
        assert_eq!(passed_in_reports, passing, "one result per check without findings: {:?}", read.checks);
        assert_eq!(published.results, total + passed_in_reports);
        assert_eq!(published.reports as usize, read.reports.len());
        assert!(read.reports.iter().all(|(_, _, run)| *run == run_id), "{:?}", read.reports);
        let in_big = read.reports.iter().filter(|(ns, _, _)| ns.as_deref() == Some(big.as_str())).count();
        assert!(in_big >= 2, "the big namespace's findings pass one report's safe size: split: {:?}", read.reports);
        assert!(read.reports.iter().any(|(ns, _, _)| ns.as_deref() == Some(small.as_str())));
        // Nothing was left by the policy working group's kinds.
        let other = read_reports(&ctx, "wgpolicyk8s.io/v1alpha2", &uid).await?;
        assert!(other.reports.is_empty(), "{:?}", other.reports);

        // A second run, of the big namespace only: its reports replace the first run's.
        let api: Api<Assessment> = Api::all(ctx.client.clone());
        let patch = json!({"spec": {"namespaces": {"include": [big]}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let second = finished(&ctx, &name, Some(&run_id)).await?;
        let second_id = second.run_id.clone().context("a run id")?;
        let second_published = reports_of(&ctx, &name, &second_id).await?;
        assert_eq!(second_published.reason, None, "{second_published:?}");
        stored(&data, &name, &second_id).await?;
        let expected = query_counts(&data, &name)?;
        let read = read_reports(&ctx, "openreports.io/v1alpha1", &uid).await?;
        assert_eq!(read.findings, expected, "the second run's findings, and no other");
        assert!(read.reports.iter().all(|(_, _, run)| *run == second_id), "replaced: {:?}", read.reports);
        assert!(
            !read.reports.iter().any(|(ns, _, _)| ns.as_deref() == Some(small.as_str())),
            "the namespace no longer assessed has no report: {:?}",
            read.reports
        );

        // Deleting the Assessment removes its reports (they are owned by it).
        api.delete(&name, &DeleteParams::background()).await?;
        wait_for(Duration::from_secs(60), || {
            let ctx = ctx.clone();
            let uid = uid.clone();
            async move { Ok(read_reports(&ctx, "openreports.io/v1alpha1", &uid).await?.reports.is_empty()) }
        })
        .await
        .context("the reports outlived their Assessment")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn policy_reports_where_openreports_is_not_served_and_nothing_where_neither_is() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        gomodules::uninstall(&ctx.client, &OPENREPORTS).await?;
        gomodules::install(&ctx.client, &POLICY_REPORTS).await?;
        let ns = ctx.namespace("reports-wg").await?;
        careless_deployments(&ctx, &ns, 5).await?;
        let data = DataDir::new();
        let dir = data.0.to_str().context("a UTF-8 path")?.to_owned();
        let op = Operator::start(&ns, &["--status-interval", "3s", "--data-dir", &dir], &[])?;
        let (name, uid) = create_assessment(&ctx, &[&ns]).await?;
        let status = finished(&ctx, &name, None).await?;
        let published = reports_of(&ctx, &name, status.run_id.as_deref().unwrap_or_default()).await?;
        assert_eq!(published.api_version.as_deref(), Some("wgpolicyk8s.io/v1alpha2"), "{published:?}");
        assert_eq!(published.reason, None, "{published:?}\n{}", op.logs());
        stored(&data, &name, status.run_id.as_deref().unwrap_or_default()).await?;
        let read = read_reports(&ctx, "wgpolicyk8s.io/v1alpha2", &uid).await?;
        assert_eq!(read.findings, query_counts(&data, &name)?);
        assert!(!read.findings.is_empty());

        // Neither API: nothing is written and the status says why.
        gomodules::uninstall(&ctx.client, &POLICY_REPORTS).await?;
        let api: Api<Assessment> = Api::all(ctx.client.clone());
        let patch = json!({"metadata": {"annotations": {kube9_api::assessment::RUN_REQUESTED_ANNOTATION: "again"}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let again = finished(&ctx, &name, status.run_id.as_deref()).await?;
        let published = reports_of(&ctx, &name, again.run_id.as_deref().unwrap_or_default()).await?;
        assert_eq!((published.api_version.as_deref(), published.reports, published.results), (None, 0, 0));
        let reason = published.reason.unwrap_or_default();
        assert!(reason.contains("serves neither openreports.io/v1alpha1"), "{reason}");
        // The CRDs come back for the other tests.
        gomodules::install(&ctx.client, &OPENREPORTS).await?;
        gomodules::install(&ctx.client, &POLICY_REPORTS).await?;
        drop(op);
        Ok(())
    })
    .await;
}

/// The openreports CRD (from its module) validates: a report in the shape the operator writes is
/// read back unchanged (nothing pruned by the schema), and one whose result is outside the
/// schema's words is refused, so the reports the other tests read passed the real schema.
#[tokio::test]
async fn the_report_crds_accept_our_reports_and_refuse_a_malformed_one() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        gomodules::install(&ctx.client, &OPENREPORTS).await?;
        let ns = ctx.namespace("reports-schema").await?;
        let (namespaced, _) = report_resources("openreports.io/v1alpha1");
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &namespaced);
        let good: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "openreports.io/v1alpha1", "kind": "Report",
            "metadata": {"name": "kube9-sample"},
            "source": "kube9",
            "summary": {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0},
            "results": [{"source": "kube9", "policy": "security.privileged", "rule": "Privileged containers",
                "category": "security", "severity": "high", "result": "fail", "scored": true,
                "message": "runs privileged", "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns, "name": "web"}],
                "properties": {"remediation": "drop privileged", "assessment": "a", "runId": "a-1"},
                "timestamp": {"seconds": 1_700_000_000, "nanos": 0}}]
        }))?;
        ctx.cleanup_dynamic(&namespaced, Some(&ns), "kube9-sample");
        let created = api.create(&PostParams::default(), &good).await?;
        assert_eq!(created.data["results"], good.data["results"], "nothing pruned");
        let mut bad = good.clone();
        bad.metadata.name = Some("kube9-bad".into());
        bad.data["results"][0]["result"] = json!("failing");
        match api.create(&PostParams::default(), &bad).await {
            Err(kube::Error::Api(status)) if status.code == 422 => Ok(()),
            other => bail!("a result outside the schema's enum was accepted: {other:?}"),
        }
    })
    .await;
}
