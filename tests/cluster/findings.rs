//! Every finding kept, and the history, with the real operator binary: a run with thousands
//! of findings is listed whole by `kube9-operator query findings` (counted against the
//! status's totals), and an Assessment run 32 times keeps 30 runs in `status.history` while
//! the store keeps them all (`query assessments history`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube9_api::assessment::{
    Assessment, AssessmentSpec, AssessmentStatus, MAX_HISTORY, Phase, RUN_REQUESTED_ANNOTATION, Selection,
};
use kube9_tests::operator::{Operator, binary, singleton_lock};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::{Value, json};

use crate::events::{DataDir, query};

/// Deployments that fail many checks each: privileged, a `latest` image, no resources, no
/// probes, one replica.
pub(crate) async fn careless_deployments(ctx: &Ctx, ns: &str, n: usize) -> Result<()> {
    let api = Api::<Deployment>::namespaced(ctx.client.clone(), ns);
    let create = |i: usize| {
        let api = api.clone();
        async move {
            let name = format!("careless-{i:04}");
            let deployment: Deployment = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [
                            {"name": "app", "image": "shop/web:latest", "securityContext": {"privileged": true}},
                            {"name": "sidecar", "image": "shop/proxy", "securityContext": {"allowPrivilegeEscalation": true}}
                        ]}
                    }
                }
            }))?;
            api.create(&PostParams::default(), &deployment).await?;
            anyhow::Ok(())
        }
    };
    let results: Vec<Result<()>> = futures::StreamExt::collect(futures::StreamExt::buffer_unordered(
        futures::stream::iter((0..n).map(create)),
        16,
    ))
    .await;
    results.into_iter().collect()
}

pub(crate) async fn assessment(ctx: &Ctx, ns: &str, checks: Option<Selection>) -> Result<String> {
    let name = unique_name("findings");
    ctx.cleanup::<Assessment>(None, &name);
    let spec = AssessmentSpec {
        namespaces: Some(Selection { include: vec![ns.to_owned()], exclude: vec![] }),
        checks,
        ..AssessmentSpec::default()
    };
    Api::<Assessment>::all(ctx.client.clone()).create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
    Ok(name)
}

/// Waits for a finished run whose id is not `previous`.
pub(crate) async fn finished(ctx: &Ctx, name: &str, previous: Option<&str>) -> Result<AssessmentStatus> {
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    wait_for(Duration::from_secs(120), || {
        let (api, seen) = (api.clone(), seen.clone());
        async move {
            let status = api.get(name).await?.status.unwrap_or_default();
            let done = matches!(status.phase, Some(Phase::Completed | Phase::Failed))
                && status.run_id.is_some()
                && status.run_id.as_deref() != previous;
            *seen.lock().expect("not poisoned") = Some(status);
            Ok(done)
        }
    })
    .await
    .map_err(|e| e.context(format!("last seen: {:#?}", seen.lock().ok().and_then(|s| s.clone()))))?;
    let status = seen.lock().expect("not poisoned").take().context("seen")?;
    if status.phase != Some(Phase::Completed) {
        bail!("the run failed: {status:#?}");
    }
    Ok(status)
}

/// `query` that is expected to fail: its exit code and error document.
pub(crate) fn query_error(dir: &std::path::Path, args: &[&str]) -> Result<(Option<i32>, Value)> {
    let output = std::process::Command::new(binary()?).arg("query").args(args).env("KUBE9_DATA_DIR", dir).output()?;
    if output.status.success() || !output.stdout.is_empty() {
        bail!("query {args:?} succeeded: {}", String::from_utf8_lossy(&output.stdout));
    }
    Ok((output.status.code(), serde_json::from_slice(&output.stderr)?))
}

#[tokio::test]
async fn query_findings_lists_every_finding_of_a_run_with_thousands() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("findings").await?;
        careless_deployments(&ctx, &ns, 300).await?;
        let data = DataDir::new();
        let dir = data.0.to_str().context("a UTF-8 path")?.to_owned();
        let _op = Operator::start(&ns, &["--status-interval", "3s", "--data-dir", &dir], &[])?;
        let name = assessment(&ctx, &ns, None).await?;
        let status = finished(&ctx, &name, None).await?;
        let totals = status.totals.context("totals")?;
        let total = u64::from(totals.failed + totals.exempted);
        assert!(total >= 3000, "a run with thousands of findings: {totals:?}");
        assert_eq!(status.findings.len(), 100, "the status keeps its bounded top findings");
        assert_eq!(u64::from(status.truncated.unwrap_or(0)) + 100, total);
        let more = status.more_findings.clone().unwrap_or_default();
        assert!(more.contains(&format!("kube9-operator query findings --assessment {name}")), "{more}");

        // The store is written beside the status: wait until it has this run.
        let run_id = status.run_id.clone().context("a run id")?;
        let all = ["findings", "--assessment", name.as_str(), "--limit", "100000"];
        wait_for(Duration::from_secs(30), || {
            let doc = query(&data.0, &all);
            let run_id = run_id.clone();
            async move { Ok(doc?["runId"] == run_id.as_str()) }
        })
        .await?;
        let doc = query(&data.0, &all)?;
        let findings = doc["findings"].as_array().context("findings")?;
        assert_eq!((doc["total"].as_u64(), doc["matching"].as_u64()), (Some(total), Some(total)));
        assert_eq!(findings.len() as u64, total, "every finding of the run");

        // Per check, as many as the status's check outcomes count; each object once per check.
        let mut per_check: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for f in findings {
            let entry = per_check.entry(f["checkId"].as_str().unwrap_or_default().to_owned()).or_default();
            if f["exempted"] == true {
                entry.1 += 1
            } else {
                entry.0 += 1
            }
            seen.insert(f.to_string());
        }
        assert_eq!(seen.len(), findings.len(), "no finding listed twice");
        for check in &status.checks {
            let (failed, exempted) = per_check.remove(&check.check_id).unwrap_or_default();
            assert_eq!((failed, exempted), (check.failed, check.exempted), "{}", check.check_id);
        }
        assert!(per_check.is_empty(), "findings of checks the run did not report: {per_check:?}");
        // The status's top findings are the first the query lists.
        let top: Vec<Value> = status.findings.iter().map(|f| serde_json::to_value(f).expect("serializes")).collect();
        for (ours, listed) in top.iter().zip(findings) {
            assert_eq!(ours["checkId"], listed["checkId"]);
            assert_eq!(ours["severity"], listed["severity"]);
        }

        // Filters, against the status's own counts.
        let security = status.pillars.iter().find(|p| p.pillar.as_str() == "security").context("security ran")?;
        let doc = query(&data.0, &["findings", "--assessment", &name, "--pillar", "security", "--limit", "1"])?;
        assert_eq!(doc["matching"].as_u64(), Some(u64::from(security.totals.failed + security.totals.exempted)));
        let privileged = status.checks.iter().find(|c| c.check_id == "security.privileged").context("ran")?;
        let doc =
            query(&data.0, &["findings", "--assessment", &name, "--check", "security.privileged", "--limit", "1000"])?;
        assert_eq!(doc["findings"].as_array().map(Vec::len), Some(privileged.failed as usize));
        let critical = status.by_severity.context("by severity")?.critical;
        let doc = query(&data.0, &["findings", "--assessment", &name, "--severity", "critical", "--limit", "1"])?;
        // Nothing is exempted here: the critical findings are the failed ones.
        assert_eq!(doc["matching"].as_u64(), Some(u64::from(critical)));
        let doc = query(&data.0, &["findings", "--assessment", &name, "--namespace", "elsewhere"])?;
        assert_eq!(doc["matching"].as_u64(), Some(0));

        // Clear errors, on stderr with a non-zero exit.
        let (code, error) = query_error(&data.0, &["findings", "--assessment", "no-such-assessment"])?;
        assert_eq!((code, error["code"].as_str()), (Some(1), Some("not-found")), "{error}");
        assert!(error["message"].as_str().unwrap_or_default().contains(&name), "names the known ones: {error}");
        let (code, error) = query_error(&data.0, &["findings", "--assessment", &name, "--pillar", "safety"])?;
        assert_eq!((code, error["code"].as_str()), (Some(2), Some("bad-flag")), "{error}");
        assert!(error["message"].as_str().unwrap_or_default().contains("unknown pillar"), "{error}");
        let (code, error) = query_error(&data.0, &["findings", "--assessment", &name, "--severity", "severe"])?;
        assert_eq!((code, error["code"].as_str()), (Some(2), Some("bad-flag")), "{error}");

        // A deleted Assessment's findings leave the store; its run stays in the history.
        Api::<Assessment>::all(ctx.client.clone()).delete(&name, &Default::default()).await?;
        wait_for(Duration::from_secs(30), || {
            let gone = query_error(&data.0, &["findings", "--assessment", &name]);
            async move { Ok(gone?.1["code"] == "not-found") }
        })
        .await?;
        let history = query(&data.0, &["assessments", "history", &name])?;
        assert_eq!(history["runs"][0]["runId"].as_str(), Some(run_id.as_str()));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_history_grows_to_thirty_runs_and_stops() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("history").await?;
        careless_deployments(&ctx, &ns, 2).await?;
        let data = DataDir::new();
        let dir = data.0.to_str().context("a UTF-8 path")?.to_owned();
        let _op = Operator::start(&ns, &["--status-interval", "3s", "--data-dir", &dir], &[])?;
        // One check keeps each run short.
        let only = Selection { include: vec!["security.privileged".into()], exclude: vec![] };
        let name = assessment(&ctx, &ns, Some(only)).await?;
        let api: Api<Assessment> = Api::all(ctx.client.clone());
        let mut status = finished(&ctx, &name, None).await?;
        let mut runs = vec![status.run_id.clone().context("a run id")?];
        for request in 1..=MAX_HISTORY + 1 {
            let patch = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: request.to_string()}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            status = finished(&ctx, &name, runs.last().map(String::as_str)).await?;
            runs.push(status.run_id.clone().context("a run id")?);
            assert_eq!(status.history.len(), runs.len().min(MAX_HISTORY), "after {} runs", runs.len());
        }
        assert_eq!(runs.len(), MAX_HISTORY + 2);
        let listed: Vec<&str> = status.history.iter().map(|r| r.run_id.as_str()).collect();
        let newest: Vec<&str> = runs.iter().rev().take(MAX_HISTORY).map(String::as_str).collect();
        assert_eq!(listed, newest, "the last 30 runs, newest first");
        let latest = &status.history[0];
        assert_eq!((Some(latest.score), Some(latest.totals)), (status.score, status.totals));
        assert_eq!(latest.pillars, status.pillars);

        // The store keeps every run, with each check's outcome.
        let last = runs.last().cloned().context("a run")?;
        wait_for(Duration::from_secs(30), || {
            let doc = query(&data.0, &["assessments", "history", &name, "--limit", "100"]);
            let last = last.clone();
            async move { Ok(doc?["runs"][0]["runId"] == last.as_str()) }
        })
        .await?;
        let doc = query(&data.0, &["assessments", "history", &name, "--limit", "100"])?;
        let stored: Vec<&str> =
            doc["runs"].as_array().context("runs")?.iter().filter_map(|r| r["runId"].as_str()).collect();
        let all: Vec<&str> = runs.iter().rev().map(String::as_str).collect();
        assert_eq!(stored, all, "every run, newest first");
        let check = &doc["runs"][0]["checks"][0];
        assert_eq!(
            (check["checkId"].as_str(), check["state"].as_str()),
            (Some("security.privileged"), Some("failing"))
        );
        assert_eq!(check["failed"].as_u64(), Some(2));
        let default = query(&data.0, &["assessments", "history", &name])?;
        assert_eq!(default["runs"].as_array().map(Vec::len), Some(MAX_HISTORY));
        Ok(())
    })
    .await;
}
