//! The Assessment controller in the real operator binary against the local control plane:
//! a run over real workloads, its status, its Event, the scheduled-run summary in the
//! OperatorStatus and the ConfigMap, a schedule that runs again on its own, exemptions, and
//! a run requested by annotation, and a cluster over the operator's object bound.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube9_api::assessment::{
    Assessment, AssessmentSpec, AssessmentStatus, CheckState, Phase, RUN_REQUESTED_ANNOTATION, Schedule,
    ScheduledOutcome, Selection,
};
use kube9_tests::operator::{Operator, singleton_lock, wait_for_both};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// A Deployment that runs privileged, from a `latest` image, with no resources set.
async fn careless_deployment(ctx: &Ctx, ns: &str, name: &str, annotations: serde_json::Value) -> anyhow::Result<()> {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "shop/web:latest", "securityContext": {"privileged": true}}]}
            }
        }
    }))?;
    Api::<Deployment>::namespaced(ctx.client.clone(), ns).create(&PostParams::default(), &deployment).await?;
    Ok(())
}

async fn create_assessment(ctx: &Ctx, ns: &str, schedule: Option<u32>) -> anyhow::Result<String> {
    let name = unique_name("assess");
    ctx.cleanup::<Assessment>(None, &name);
    let spec = AssessmentSpec {
        namespaces: Some(Selection { include: vec![ns.to_owned()], exclude: vec![] }),
        schedule: schedule.map(|interval_seconds| Schedule { interval_seconds }),
        ..AssessmentSpec::default()
    };
    Api::<Assessment>::all(ctx.client.clone()).create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
    Ok(name)
}

/// Waits for a finished run whose id is not `previous`, and returns its status.
async fn next_run(
    ctx: &Ctx,
    name: &str,
    previous: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<AssessmentStatus> {
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let found = std::sync::Arc::new(std::sync::Mutex::new(None));
    wait_for(timeout, || {
        let (api, found) = (api.clone(), found.clone());
        async move {
            let status = api.get(name).await?.status.unwrap_or_default();
            let finished = matches!(status.phase, Some(Phase::Completed | Phase::Failed));
            let new = status.run_id.is_some() && status.run_id.as_deref() != previous;
            *found.lock().expect("not poisoned") = Some(status);
            Ok(finished && new)
        }
    })
    .await
    .map_err(|e| e.context(format!("last seen: {:#?}", found.lock().ok().and_then(|f| f.clone()))))?;
    Ok(found.lock().expect("not poisoned").take().expect("seen"))
}

/// Waits for an Event about the Assessment `name` (recorded in `default`: Assessments are
/// cluster-scoped) that satisfies `wanted`.
async fn wait_for_event(ctx: &Ctx, name: &str, wanted: fn(&Event) -> bool) -> anyhow::Result<()> {
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), "default");
    let selector = format!("involvedObject.name={name}");
    wait_for(Duration::from_secs(10), || {
        let (events, selector) = (events.clone(), selector.clone());
        async move {
            let list = events.list(&ListParams::default().fields(&selector)).await?;
            Ok(list.items.iter().any(wanted))
        }
    })
    .await
}

#[tokio::test]
async fn a_scheduled_assessment_reports_findings_an_event_and_the_summary_and_runs_again() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("assess").await?;
        careless_deployment(&ctx, &ns, "careless", json!({})).await?;
        careless_deployment(&ctx, &ns, "accepted", json!({"kube9.io/exempt": "security.privileged"})).await?;
        let _op = Operator::start(&ns, &["--status-interval", "3s"], &[])?;
        let name = create_assessment(&ctx, &ns, Some(10)).await?;

        let first = next_run(&ctx, &name, None, WAIT).await?;
        assert_eq!(first.phase, Some(Phase::Completed), "{first:#?}");
        assert_eq!(first.observed_generation, Some(1));
        let privileged: Vec<_> = first.findings.iter().filter(|f| f.check_id == "security.privileged").collect();
        let failed: Vec<_> = privileged.iter().filter(|f| !f.exempted).map(|f| f.object.name.as_str()).collect();
        let exempted: Vec<_> = privileged.iter().filter(|f| f.exempted).map(|f| f.object.name.as_str()).collect();
        assert_eq!((failed, exempted), (vec!["careless"], vec!["accepted"]));
        let finding = privileged.iter().find(|f| !f.exempted).expect("a failed finding");
        assert_eq!((finding.object.kind.as_str(), finding.object.container.as_deref()), ("Deployment", Some("app")));
        assert_eq!(finding.object.namespace.as_deref(), Some(ns.as_str()));
        let outcome = first.checks.iter().find(|c| c.check_id == "security.privileged").expect("the check ran");
        assert_eq!((outcome.state, outcome.failed, outcome.exempted), (CheckState::Failing, 1, 1));
        assert!(first.totals.expect("totals").exempted >= 1);
        assert!(first.score.is_some() && first.next_run_at.is_some() && !first.pillars.is_empty());
        // Nothing skipped with full access, but the image-vulnerability check where Trivy
        // Operator's CRD is not served (tests/cluster/trivy.rs installs and removes it).
        let skipped = first.checks.iter().filter(|c| c.state == CheckState::Skipped);
        assert!(
            skipped.clone().all(|c| c.check_id == "security.image-vulnerabilities"),
            "{:?}",
            skipped.collect::<Vec<_>>()
        );

        // The Event, in `default` (Assessments are cluster-scoped).
        wait_for_event(&ctx, &name, |e| e.reason.as_deref() == Some("AssessmentCompleted")).await?;

        // The summary, in the shape the extension reads, in both places.
        let run_id = first.run_id.clone();
        let (status, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |s, l| {
            let done = |a: &Option<kube9_api::assessment::ScheduledSummary>| {
                a.as_ref().is_some_and(|a| a.last_scheduled_run_id.is_some() && a.last_scheduled_completed_at.is_some())
            };
            // The two are written one after the other, and the 10 s schedule may complete a
            // second run between them: wait until both show the same one.
            done(&s.assessment)
                && l.assessment.last_scheduled_run_id.is_some()
                && l.assessment.last_scheduled_completed_at.is_some()
                && s.assessment.as_ref().map(|a| &a.last_scheduled_run_id) == Some(&l.assessment.last_scheduled_run_id)
        })
        .await?;
        let summary = status.assessment.expect("a summary");
        assert_eq!(legacy.assessment.last_scheduled_run_id, summary.last_scheduled_run_id);
        let json = kube9_tests::contract::assert_configmap(&ctx.client, &ns).await?;
        assert_eq!(json["assessment"]["lastScheduledOutcome"], "success");
        assert_eq!(json["assessment"]["scheduledAssessmentMode"], "full");
        assert!(summary.scheduling_enabled);
        assert_eq!(summary.schedule_interval_seconds, Some(10));
        assert_eq!(summary.last_scheduled_outcome, ScheduledOutcome::Success);
        let totals = summary.last_scheduled_totals.expect("totals");
        assert_eq!(totals.total_checks as usize, first.checks.len());
        assert!(totals.failed_checks >= 1 && totals.passed_checks >= 1);
        let check = summary.last_scheduled_checks.iter().find(|c| c.check_id == "security.privileged").expect("listed");
        assert_eq!(check.status, CheckState::Failing);
        assert!(check.message.as_deref().unwrap_or_default().contains("careless"));

        // A 10 s schedule runs again on its own, and the summary follows.
        let second = next_run(&ctx, &name, run_id.as_deref(), WAIT).await?;
        assert_eq!(second.phase, Some(Phase::Completed));
        let second_id = second.run_id.clone();
        wait_for_both(&ctx.client, &ns, WAIT, |s, l| {
            s.assessment.as_ref().map(|a| &a.last_scheduled_run_id) == Some(&second_id)
                && l.assessment.last_scheduled_run_id == second_id
        })
        .await?;

        // With the schedule gone, scheduling shows as off.
        Api::<Assessment>::all(ctx.client.clone()).delete(&name, &Default::default()).await?;
        wait_for_both(&ctx.client, &ns, WAIT, |s, l| {
            s.assessment.as_ref().is_some_and(|a| !a.scheduling_enabled) && !l.assessment.scheduling_enabled
        })
        .await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_one_off_assessment_runs_once_and_again_when_requested() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("assess1").await?;
        careless_deployment(&ctx, &ns, "careless", json!({})).await?;
        let _op = Operator::start(&ns, &["--status-interval", "3s"], &[])?;
        let name = create_assessment(&ctx, &ns, None).await?;
        let api: Api<Assessment> = Api::all(ctx.client.clone());

        let first = next_run(&ctx, &name, None, WAIT).await?;
        assert_eq!(first.phase, Some(Phase::Completed), "{first:#?}");
        assert!(first.next_run_at.is_none());

        // Nothing runs again by itself (a one-off has no schedule).
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(api.get(&name).await?.status.and_then(|s| s.run_id), first.run_id);

        // Exempting the namespace turns its findings into exempted ones on the requested run.
        let patch = json!({"metadata": {"annotations": {"kube9.io/exempt": "security.privileged"}}});
        kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(ctx.client.clone())
            .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let request = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: "1"}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&request)).await?;
        let second = next_run(&ctx, &name, first.run_id.as_deref(), WAIT).await?;
        assert_eq!(second.last_run_request.as_deref(), Some("1"));
        let outcome = second.checks.iter().find(|c| c.check_id == "security.privileged").expect("the check ran");
        assert_eq!((outcome.state, outcome.failed, outcome.exempted), (CheckState::Passing, 0, 1));

        // A spec change is a new run too.
        let narrow = json!({"spec": {"pillars": ["reliability"]}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&narrow)).await?;
        let third = next_run(&ctx, &name, second.run_id.as_deref(), WAIT).await?;
        assert_eq!(third.observed_generation, Some(2));
        assert!(third.checks.iter().all(|c| c.check_id.starts_with("reliability.")), "{:?}", third.checks);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_cluster_over_the_object_bound_fails_the_run_with_an_event_and_the_summary_says_so() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("assessbig").await?;
        // Every cluster has more than two Namespaces, which every run reads.
        let _op = Operator::start(&ns, &["--status-interval", "3s", "--assessment-max-objects", "2"], &[])?;
        let name = create_assessment(&ctx, &ns, Some(600)).await?;

        let run = next_run(&ctx, &name, None, WAIT).await?;
        assert_eq!(run.phase, Some(Phase::Failed), "{run:#?}");
        let complete = run.conditions.iter().find(|c| c.type_ == "Complete").expect("a Complete condition");
        assert_eq!((complete.status.as_str(), complete.reason.as_str()), ("False", "Failed"));
        assert!(complete.message.contains("more than 2 objects"), "{}", complete.message);
        assert!(complete.message.contains("assessment.maxObjects"), "{}", complete.message);
        // Tried again on the schedule, not every minute: the cluster will not shrink by then.
        let (done, next) =
            (run.completed_at.clone().expect("completed").0, run.next_run_at.clone().expect("a next run").0);
        assert!(next.duration_since(done).as_secs() >= 590, "next run {next} after {done}");
        assert!(run.findings.is_empty() && run.totals.is_none(), "no partial result: {run:#?}");

        wait_for_event(&ctx, &name, |e| {
            e.reason.as_deref() == Some("AssessmentFailed")
                && e.type_.as_deref() == Some("Warning")
                && e.message.as_deref().is_some_and(|m| m.contains("more than 2 objects"))
        })
        .await?;

        let (status, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |s, l| {
            let failed = |a: &Option<kube9_api::assessment::ScheduledSummary>| {
                a.as_ref().is_some_and(|a| a.last_scheduled_outcome == ScheduledOutcome::Failed)
            };
            failed(&s.assessment) && l.assessment.last_scheduled_outcome == ScheduledOutcome::Failed
        })
        .await?;
        let json = kube9_tests::contract::assert_configmap(&ctx.client, &ns).await?;
        assert_eq!(json["assessment"]["lastScheduledOutcome"], "failed");
        let summary = status.assessment.expect("a summary");
        for (run_id, error) in [
            (summary.last_scheduled_run_id, summary.last_scheduled_error),
            (legacy.assessment.last_scheduled_run_id, legacy.assessment.last_scheduled_error),
        ] {
            assert_eq!(run_id, run.run_id);
            let error = error.unwrap_or_default();
            assert!(error.contains("more than 2 objects"), "{error}");
        }
        Ok(())
    })
    .await;
}

/// Creates a paused Deployment `name` with `revisions` ReplicaSets it owns (the newest with
/// its template, the others older revisions), scaled to zero: the controller manager leaves a
/// paused Deployment's history alone (cleanup keeps up to revisionHistoryLimit, 10) and
/// creates no Pods.
async fn deployment_with_history(client: &kube::Client, ns: &str, name: &str, revisions: usize) -> anyhow::Result<()> {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    let labels = json!({"app": name, "app.kubernetes.io/name": name});
    let container = |revision: usize| {
        json!({"name": "app", "image": format!("shop/{name}:1.{revision}"),
               "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}})
    };
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "annotations": {"deployment.kubernetes.io/revision": revisions.to_string()}},
        "spec": {"replicas": 0, "paused": true, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container(revisions)]}}}
    }))?;
    let created = Api::<Deployment>::namespaced(client.clone(), ns).create(&PostParams::default(), &deployment).await?;
    let uid = created.metadata.uid.unwrap_or_default();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    for revision in 1..=revisions {
        let hash = format!("{revision:x}{:08x}", name.len() * 7919 + revision);
        let pod_labels = json!({"app": name, "app.kubernetes.io/name": name, "pod-template-hash": hash});
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-{hash}"), "namespace": ns, "labels": pod_labels,
                         "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                                              "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name, "pod-template-hash": hash}},
                     "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [container(revision)]}}}
        }))?;
        replica_sets.create(&PostParams::default(), &rs).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_cluster_of_1000_deployments_with_6_revisions_each_is_assessed_with_the_defaults() {
    use futures::{StreamExt, TryStreamExt};
    const DEPLOYMENTS: usize = 1000;
    const REVISIONS: usize = 6;
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("history").await?;
        futures::stream::iter(0..DEPLOYMENTS)
            .map(|i| {
                let (client, ns) = (ctx.client.clone(), ns.clone());
                async move { deployment_with_history(&client, &ns, &format!("app-{i}"), REVISIONS).await }
            })
            .buffer_unordered(24)
            .try_collect::<Vec<()>>()
            .await?;
        // The chart's defaults: no flag about objects.
        let _op = Operator::start(&ns, &["--status-interval", "5s"], &[])?;
        let name = create_assessment(&ctx, &ns, None).await?;
        let run = next_run(&ctx, &name, None, Duration::from_secs(300)).await?;
        assert_eq!(run.phase, Some(Phase::Completed), "{:#?}", run.conditions);
        // Every Deployment is judged once; the 6,000 ReplicaSets it owns are read and dropped
        // (they are judged through it), never held or reported.
        let check = |id: &str| run.checks.iter().find(|c| c.check_id == id).cloned().expect("the check ran");
        let history = check("sustainability.revision-history");
        assert_eq!((history.failed, history.passed), (DEPLOYMENTS as u32, 0), "{history:#?}");
        let labels = check("operational-excellence.recommended-labels");
        assert_eq!(labels.passed + labels.failed + labels.exempted, DEPLOYMENTS as u32, "{labels:#?}");
        assert!(run.findings.iter().all(|f| f.object.kind != "ReplicaSet"), "{:#?}", run.findings);
        assert_eq!(run.findings.len(), 100, "the status keeps the top findings");
        assert!(run.truncated.unwrap_or_default() >= DEPLOYMENTS as u32, "{:?}", run.truncated);
        Ok(())
    })
    .await;
}
