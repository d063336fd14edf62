//! Faults an operations team tries before production, each with the figure it must meet:
//! two replicas at once, the leader killed or stopped, kube9-server answering without end,
//! twenty Assessments due at once, the API server gone for 30 s, and bad input.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, Selection};
use kube9_api::legacy::CONFIGMAP_NAME;
use kube9_api::operator_status::{Health, OperatorStatus, SINGLETON_NAME};
use kube9_server_sim::Behavior;
use kube9_tests::operator::{Operator, Peak, operator_status, singleton_lock, status_kib, wait_for_both};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};
use serde_json::json;

use crate::operator::{simulator, start_with_key};

const WAIT: Duration = Duration::from_secs(30);

/// Starts one replica named `pod` in `ns` (its identity in the Lease is the Pod name).
fn replica(ns: &str, pod: &str, interval: &str) -> anyhow::Result<Operator> {
    Operator::start(ns, &["--status-interval", interval], &[("POD_NAME", pod)])
}

/// Waits until the OperatorStatus names `leader` and the ConfigMap was written after `after`.
async fn wait_for_leader(ctx: &Ctx, ns: &str, leader: &str, timeout: Duration) -> anyhow::Result<()> {
    wait_for_both(&ctx.client, ns, timeout, |s, _| s.leader.as_deref() == Some(leader)).await.map(|_| ())
}

/// Whether this replica says it leads (its `kube9_leader` gauge).
async fn leads(op: &Operator) -> anyhow::Result<bool> {
    let (_, metrics) = op.get("/metrics").await?;
    Ok(metrics.lines().any(|l| l == "kube9_leader 1"))
}

/// The ConfigMap and OperatorStatus writes this replica counted itself (its metrics).
async fn own_writes(op: &Operator) -> anyhow::Result<(usize, usize)> {
    let (_, metrics) = op.get("/metrics").await?;
    let count = |target: &str| {
        let prefix = format!("kube9_status_writes_total{{target=\"{target}\",result=\"ok\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|n| n.trim().parse::<usize>().ok()).unwrap_or(0)
    };
    Ok((count("configmap"), count("operatorstatus")))
}

/// Counts the writes the API server sees to the ConfigMap and the OperatorStatus.
fn count_writes(ctx: &Ctx, ns: &str) -> (Arc<AtomicUsize>, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let (cm, status) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let statuses: Api<OperatorStatus> = Api::all(ctx.client.clone());
    let cm_config = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));
    let status_config = watcher::Config::default().fields(&format!("metadata.name={SINGLETON_NAME}"));
    let (cm_count, status_count) = (cm.clone(), status.clone());
    let task = tokio::spawn(async move {
        // Only changes after the initial list: the watch's own start is not a write.
        let cm_stream =
            watcher(cms, cm_config).skip_while(|e| std::future::ready(!matches!(e, Ok(watcher::Event::InitDone))));
        let status_stream = watcher(statuses, status_config)
            .skip_while(|e| std::future::ready(!matches!(e, Ok(watcher::Event::InitDone))));
        let cm_stream = cm_stream.applied_objects().for_each(|_| {
            cm_count.fetch_add(1, Ordering::Relaxed);
            std::future::ready(())
        });
        let status_stream = status_stream.applied_objects().for_each(|_| {
            status_count.fetch_add(1, Ordering::Relaxed);
            std::future::ready(())
        });
        futures::join!(cm_stream, status_stream);
    });
    (cm, status, task)
}

#[tokio::test]
async fn two_replicas_write_no_more_than_one() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("ha").await?;
        let a = replica(&ns, "replica-a", "5s")?;
        wait_for_leader(&ctx, &ns, "replica-a", WAIT).await?;
        // The window: a minute of one process, then a minute of two.
        let window = Duration::from_secs(60);
        let (cm, status, counting) = count_writes(&ctx, &ns);
        tokio::time::sleep(window).await;
        counting.abort();
        let one = (cm.load(Ordering::Relaxed), status.load(Ordering::Relaxed));

        let b = replica(&ns, "replica-b", "5s")?;
        wait_for(WAIT, || async { Ok(b.get("/readyz").await?.0 == 200) }).await?;
        assert!(leads(&a).await? && !leads(&b).await?, "replica-a leads, replica-b stands by");
        let before = own_writes(&a).await?;
        let (cm, status, counting) = count_writes(&ctx, &ns);
        tokio::time::sleep(window).await;
        counting.abort();
        let two = (cm.load(Ordering::Relaxed), status.load(Ordering::Relaxed));
        let after = own_writes(&a).await?;
        let leader = (after.0 - before.0, after.1 - before.1);
        eprintln!(
            "writes in {window:?} (ConfigMap, OperatorStatus): one process {one:?}; two replicas {two:?}, of which the leader counted {leader:?}"
        );
        // Every write the API server saw is one the leader made (one of slack for where the
        // windows fall): the standby adds none. Two processes without an election wrote
        // hundreds (each write woke the other); with it the count stays near one process's,
        // which still varies with what changes in the window (a collector's first result).
        assert!(two.0 <= leader.0 + 1, "ConfigMap writes seen {two:?}, by the leader {leader:?}");
        assert!(two.1 <= leader.1 + 1, "OperatorStatus writes seen {two:?}, by the leader {leader:?}");
        assert!(two.0 <= one.0 + 3 && two.1 <= one.1 + 3, "one process {one:?}, two replicas {two:?}");
        let (_, standby) = b.get("/metrics").await?;
        assert!(!standby.contains("kube9_status_writes_total{"), "the standby wrote status:\n{standby}");
        let status = operator_status(&ctx.client).await?.unwrap_or_default();
        assert_eq!(status.leader.as_deref(), Some("replica-a"));
        Ok(())
    })
    .await;
}

/// Starts a leader and a standby, stops the leader with `stop`, and returns how long the
/// standby took to write the status naming itself.
async fn handover(ctx: &Ctx, stop: fn(&mut Operator) -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let ns = ctx.namespace("handover").await?;
    let mut a = replica(&ns, "replica-a", "60s")?;
    wait_for_leader(ctx, &ns, "replica-a", WAIT).await?;
    let b = replica(&ns, "replica-b", "60s")?;
    wait_for(WAIT, || async { Ok(b.get("/readyz").await?.0 == 200) }).await?;
    assert!(!leads(&b).await?, "replica-b stands by while replica-a leads");
    let started = Instant::now();
    stop(&mut a)?;
    wait_for_leader(ctx, &ns, "replica-b", Duration::from_secs(30)).await?;
    let took = started.elapsed();
    assert!(leads(&b).await?);
    assert!(b.logs().contains("leading: this replica now writes status"), "{}", b.logs());
    Ok(took)
}

#[tokio::test]
async fn a_killed_leader_is_replaced_within_the_lease_duration() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let took = handover(&ctx, |op| {
            std::process::Command::new("kill").args(["-KILL", &op.pid().to_string()]).status()?;
            Ok(())
        })
        .await?;
        eprintln!("leader SIGKILLed: the standby wrote status after {took:?}");
        assert!(took < Duration::from_secs(15), "the standby took {took:?} to take over");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_stopped_leader_hands_over_within_two_seconds() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let took = handover(&ctx, |op| {
            let (code, _) = op.terminate()?;
            assert_eq!(code, Some(0));
            Ok(())
        })
        .await?;
        eprintln!("leader SIGTERMed: the standby wrote status after {took:?}");
        assert!(took < Duration::from_secs(2), "the standby took {took:?} to take over");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_cap_and_reported() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("endless").await?;
        let (sim, ca) = simulator(Behavior::Endless, 24.0).await?;
        let op = start_with_key(&ns, &sim.url(), &ca, crate::operator::KEY, &[])?;
        // The memory the process allocates (RssAnon), sampled every 20 ms from its start: the
        // resident set of the debug build the tests run also counts the pages of its 57 MB of
        // code it has touched, which the release build's 21.7 MiB peak does not have (README).
        let sampler = Peak::sample(op.pid(), "RssAnon:");
        // The status and the ConfigMap are written one after the other: wait for both.
        let cut = |error: Option<&str>| error.is_some_and(|e| e.contains("answer larger than 65536 bytes"));
        let (status, legacy) =
            wait_for_both(&ctx.client, &ns, WAIT, |s, l| cut(s.error.as_deref()) && cut(l.error.as_deref())).await?;
        assert_eq!(status.health, Some(Health::Degraded));
        assert!(legacy.error.as_deref().is_some_and(|e| e.contains("answer larger than 65536 bytes")), "{legacy:?}");
        // Let it try again (retry-initial 1 s) under the endless answer, then measure: an
        // unbounded read grew the process by 0.65 GiB in 2 s; here every retry is cut at the cap.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (allocated, resident) = (sampler.stop()?, status_kib(op.pid(), "VmHWM:"));
        eprintln!(
            "endless kube9-server answer: operator peak allocated (RssAnon) {:.1} MiB, peak resident with code {:.1} MiB",
            allocated as f64 / 1024.0,
            resident as f64 / 1024.0
        );
        assert!(allocated > 0, "RssAnon was never read");
        assert!(allocated < 40 * 1024, "peak allocated {allocated} KiB");
        // Not bounded: the resident set also counts the pages of the debug build's code the
        // process has touched (45 MiB alone, above 64 MiB once beside the whole suite).
        let (_, metrics) = op.get("/metrics").await?;
        let cut: f64 = metrics
            .lines()
            .find(|l| l.starts_with("kube9_answers_too_large_total{endpoint=\"register\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        assert!(cut >= 2.0, "the endless answer was cut {cut} times: {metrics}");
        assert!(op.logs().contains("larger than the cap"), "{}", op.logs());
        Ok(())
    })
    .await;
}

/// `count` Deployments in `ns`, made quickly with one request each.
async fn deployments(ctx: &Ctx, ns: &str, count: usize) -> anyhow::Result<()> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let made = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("app-{i}");
                let deployment: Deployment = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"app": name}},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": name}},
                        "template": {
                            "metadata": {"labels": {"app": name, "tier": "web"}},
                            "spec": {"containers": [{"name": "app", "image": "shop/web:latest",
                                "env": [{"name": "PADDING", "value": "x".repeat(2000)}]}]}
                        }
                    }
                }))?;
                api.create(&PostParams::default(), &deployment).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    made.into_iter().collect()
}

async fn assessments(ctx: &Ctx, ns: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let mut names = Vec::new();
    for _ in 0..count {
        let name = unique_name("many");
        ctx.cleanup::<Assessment>(None, &name);
        let spec = AssessmentSpec {
            namespaces: Some(Selection { include: vec![ns.to_owned()], exclude: vec![] }),
            ..AssessmentSpec::default()
        };
        api.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
        names.push(name);
    }
    Ok(names)
}

/// Runs `count` Assessments at once in a fresh operator; returns the rise of its resident
/// memory (sampled every 20 ms) over its idle level once the collectors have each run (KiB),
/// and whether any Assessment was seen `Queued`.
async fn peak_rise(ctx: &Ctx, ns: &str, count: usize) -> anyhow::Result<(u64, bool)> {
    let op = Operator::start(ns, &["--status-interval", "60s"], &[])?;
    wait_for_both(&ctx.client, ns, WAIT, |s, _| s.health.is_some()).await?;
    // The five collectors each run once at start-up: their peaks are not the Assessments'.
    wait_for(Duration::from_secs(90), || async {
        let (_, metrics) = op.get("/metrics").await?;
        Ok(metrics.lines().filter(|l| l.starts_with("kube9_collections_total{")).count() >= 5)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = status_kib(op.pid(), "VmRSS:");
    let sampler = Peak::sample(op.pid(), "VmRSS:");
    let names = assessments(ctx, ns, count).await?;
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let mut queued = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut done = 0;
        for name in &names {
            let phase = api.get(name).await?.status.and_then(|s| s.phase);
            queued |= phase == Some(Phase::Queued);
            done += usize::from(phase == Some(Phase::Completed));
        }
        if done == names.len() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{done} of {count} Assessments completed in 180 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = sampler.stop()?;
    for name in names {
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
    Ok((peak.saturating_sub(idle), queued))
}

#[tokio::test]
async fn twenty_assessments_at_once_peak_like_one() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("many").await?;
        deployments(&ctx, &ns, 600).await?;
        let (one, _) = peak_rise(&ctx, &ns, 1).await?;
        kube9_tests::operator::delete_singleton(&ctx.client).await;
        let (twenty, queued) = peak_rise(&ctx, &ns, 20).await?;
        eprintln!(
            "peak resident rise: one Assessment {:.1} MiB, twenty at once {:.1} MiB ({:.2}x)",
            one as f64 / 1024.0,
            twenty as f64 / 1024.0,
            twenty as f64 / one.max(1) as f64
        );
        assert!(queued, "no Assessment was seen Queued while another ran");
        assert!(twenty as f64 <= 1.5 * one as f64 + 2048.0, "one: {one} KiB, twenty: {twenty} KiB");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_assessment_killed_mid_run_is_run_again_on_restart_and_completes() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("midrun").await?;
        deployments(&ctx, &ns, 600).await?;
        let op = Operator::start(&ns, &["--status-interval", "60s"], &[])?;
        wait_for_both(&ctx.client, &ns, WAIT, |s, _| s.leader.is_some()).await?;
        let name = assessments(&ctx, &ns, 1).await?.remove(0);
        let api: Api<Assessment> = Api::all(ctx.client.clone());
        // SIGKILL as soon as the run is under way (an OOM kill or a lost node look the same).
        let deadline = Instant::now() + WAIT;
        loop {
            let status = api.get(&name).await?.status.unwrap_or_default();
            anyhow::ensure!(
                status.phase != Some(Phase::Completed),
                "the run completed before it could be killed: {status:?}"
            );
            if status.phase == Some(Phase::Running) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the run did not start: {status:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(op); // SIGKILL (`Child::kill`), and reaped
        let killed = api.get(&name).await?.status.unwrap_or_default();
        assert_eq!(killed.phase, Some(Phase::Running), "the killed run is left Running: {killed:?}");
        // A new operator finds the run interrupted and runs it again (a new run id); it completes.
        let _op = Operator::start(&ns, &["--status-interval", "60s"], &[])?;
        let done = crate::findings::finished(&ctx, &name, killed.run_id.as_deref()).await?;
        assert!(done.totals.as_ref().is_some_and(|t| t.passed + t.failed > 0), "{done:?}");
        Ok(())
    })
    .await;
}

/// Runs an Assessment with this spec and returns the message of its failed run.
async fn refused(ctx: &Ctx, spec: AssessmentSpec) -> anyhow::Result<String> {
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let name = unique_name("bad");
    ctx.cleanup::<Assessment>(None, &name);
    api.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
    wait_for(WAIT, || {
        let api = api.clone();
        let name = name.clone();
        async move { Ok(api.get(&name).await?.status.unwrap_or_default().phase == Some(Phase::Failed)) }
    })
    .await?;
    let status = api.get(&name).await?.status.unwrap_or_default();
    assert_eq!(status.next_run_at, None, "a bad selection is not retried until the spec changes");
    Ok(status.conditions.iter().map(|c| c.message.clone()).collect::<Vec<_>>().join("\n"))
}

#[tokio::test]
async fn bad_input_is_refused_with_a_message_that_names_it() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("badinput").await?;
        let _op = Operator::start(&ns, &["--status-interval", "60s"], &[])?;
        wait_for_both(&ctx.client, &ns, WAIT, |s, _| s.health.is_some()).await?;

        // An id that is not even `pillar.name` is refused at admission (CEL, 1.25 and later);
        // the operator refuses it on older servers.
        let minor = crate::versions::server_minor(&ctx).await?;
        let bogus = AssessmentSpec {
            checks: Some(Selection { include: vec!["no.such-check".into()], exclude: vec![] }),
            ..AssessmentSpec::default()
        };
        if minor >= 25 {
            let created = Api::<Assessment>::all(ctx.client.clone())
                .create(&PostParams::default(), &Assessment::new(&unique_name("bad"), bogus))
                .await;
            let error = created.expect_err("the schema refuses no.such-check");
            assert!(error.to_string().contains("checks.include: each entry is a check id"), "{error}");
        } else {
            let message = refused(&ctx, bogus).await?;
            assert!(message.contains("checks.include \"no.such-check\""), "{message}");
        }
        // Ids of the right shape that name no check: the run fails, naming them.
        let typo = AssessmentSpec {
            checks: Some(Selection {
                include: vec!["security.privilegd".into(), "security.no-such-check".into()],
                exclude: vec![],
            }),
            ..AssessmentSpec::default()
        };
        let message = refused(&ctx, typo).await?;
        assert!(message.contains("unknown check ids"), "{message}");
        assert!(message.contains("\"security.privilegd\" (nearest known: security.privileged"), "{message}");
        assert!(message.contains("\"security.no-such-check\""), "{message}");

        let nothing = AssessmentSpec {
            checks: Some(Selection { include: vec!["security".into()], exclude: vec!["security".into()] }),
            ..AssessmentSpec::default()
        };
        let message = refused(&ctx, nothing).await?;
        assert!(message.contains("the selection leaves no check to run"), "{message}");

        // 1,001 acknowledgements in one patch: refused by the schema, with the bound named.
        let statuses: Api<OperatorStatus> = Api::all(ctx.client.clone());
        let many: serde_json::Map<String, serde_json::Value> =
            (0..1001).map(|i| (format!("ins_{i}"), json!({"state": "acknowledged"}))).collect();
        let patch = json!({"spec": {"acknowledgements": many}});
        let error = statuses.patch(SINGLETON_NAME, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_err();
        assert!(error.to_string().contains("must have at most 1000"), "{error}");
        if minor >= 25 {
            let patch = json!({"spec": {"acknowledgements": {"not an id!": {"state": "acknowledged"}}}});
            let error =
                statuses.patch(SINGLETON_NAME, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_err();
            assert!(error.to_string().contains("each key is an insight id"), "{error}");
        }
        Ok(())
    })
    .await;
}

/// Deletes the ConfigMap as soon as the API server is ready again (no event reaches a watch
/// that is not up yet) and waits until the operator has written it again; returns how long
/// after readiness that was.
async fn delete_and_restore(ctx: &Ctx, ns: &str, ready: Instant, fault: &str) -> anyhow::Result<Duration> {
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    wait_for(Duration::from_secs(10), || {
        let cms = cms.clone();
        async move {
            Ok(match cms.delete(CONFIGMAP_NAME, &DeleteParams::default()).await {
                Ok(_) => true,
                Err(kube::Error::Api(e)) if e.code == 404 => true,
                Err(e) => return Err(e.into()),
            })
        }
    })
    .await?;
    let deleted = ready.elapsed();
    wait_for(Duration::from_secs(30), || {
        let cms = cms.clone();
        async move { Ok(cms.get_opt(CONFIGMAP_NAME).await?.is_some()) }
    })
    .await?;
    let restored = ready.elapsed();
    eprintln!("{fault}: ConfigMap deleted {deleted:?} after readiness, restored {restored:?} after readiness");
    Ok(restored)
}

#[tokio::test]
#[ignore = "pauses the local etcd for 30 s: run alone (`cargo xtask ci` does, after the others)"]
async fn after_etcd_is_paused_the_configmap_is_restored() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("etcdpause").await?;
        let _op = Operator::start(&ns, &["--status-interval", "60s"], &[])?;
        wait_for_both(&ctx.client, &ns, WAIT, |s, _| s.health == Some(Health::Healthy)).await?;
        let ready = kube9_tests::apiserver::etcd_pause(Duration::from_secs(30)).await?;
        let restored = delete_and_restore(&ctx, &ns, ready, "etcd paused 30 s").await?;
        // The same bound as after an API server outage (0.3 s was measured before this round).
        assert!(restored < Duration::from_secs(10), "restored {restored:?} after the API server was ready");
        // The status is written again, healthy.
        wait_for_both(&ctx.client, &ns, WAIT, |s, _| s.health == Some(Health::Healthy)).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "stops the local API server for 30 s: run alone (`cargo xtask ci` does, after the others)"]
async fn after_an_api_server_outage_the_configmap_is_restored_within_three_seconds() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("outage").await?;
        let op = Operator::start(
            &ns,
            &["--status-interval", "60s"],
            &[(
                "KUBE9_LOG_LEVEL",
                &std::env::var("KUBE9_TEST_OPERATOR_LOG").unwrap_or_else(|_| "kube9_operator=debug,info".into()),
            )],
        )?;
        wait_for_both(&ctx.client, &ns, WAIT, |s, _| s.health == Some(Health::Healthy)).await?;
        let ready = kube9_tests::apiserver::outage(Duration::from_secs(30)).await?;
        let restored = delete_and_restore(&ctx, &ns, ready, "API server down 30 s").await?;
        // The figure is the benchmark's (`cargo xtask bench`, faults: 0.92 s, release); here a
        // bound a loaded machine keeps, and far below the 20.5 s the grown backoff took before.
        assert!(restored < Duration::from_secs(10), "restored {restored:?} after the API server was ready");
        // One outage, counted once, about as long as the server was down.
        let counted = wait_for(Duration::from_secs(30), || async {
            let (_, metrics) = op.get("/metrics").await?;
            Ok(!metrics.contains("kube9_api_outages_total 0\n"))
        })
        .await;
        if let Err(err) = counted {
            anyhow::bail!("the outage was not counted ({err}); the operator's log:\n{}", op.logs());
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let (_, metrics) = op.get("/metrics").await?;
        assert!(metrics.contains("kube9_api_outages_total 1\n"), "{metrics}");
        let cut_off: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("kube9_api_outage_seconds_sum "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_default();
        assert!((29.0..120.0).contains(&cut_off), "cut off {cut_off} s: {metrics}");
        eprintln!("counted one outage of {cut_off:.1} s");
        let logs = op.logs();
        assert_eq!(logs.matches("the API server answers again after an outage").count(), 1, "{logs}");
        assert!(logs.contains("cut_off_seconds"), "{logs}");
        Ok(())
    })
    .await;
}

/// Creates `make` again and again until the API server takes it (it may still refuse for a
/// moment after `/readyz`); returns how long after `ready` it was taken.
async fn as_soon_as_ready<F, Fut, T>(ready: Instant, mut make: F) -> anyhow::Result<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    loop {
        match make().await {
            Ok(made) => return Ok((made, ready.elapsed())),
            Err(e) if ready.elapsed() > Duration::from_secs(10) => return Err(e.context("10 s after readiness")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
#[ignore = "stops the local API server for 30 s: run alone (`cargo xtask ci` does, after the others)"]
async fn after_an_api_server_outage_a_new_assessment_completes_within_ten_seconds() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("outage-assess").await?;
        crate::findings::careless_deployments(&ctx, &ns, 3).await?;
        let data = crate::events::DataDir::new();
        let dir = data.0.to_string_lossy().into_owned();
        let op = Operator::start(&ns, &["--status-interval", "60s", "--data-dir", &dir], &[])?;
        wait_for_both(&ctx.client, &ns, WAIT, |s, _| s.health == Some(Health::Healthy)).await?;
        let ready = kube9_tests::apiserver::outage(Duration::from_secs(30)).await?;
        let (name, created) = as_soon_as_ready(ready, || crate::findings::assessment(&ctx, &ns, None)).await?;
        assert!(created < Duration::from_secs(1), "the Assessment was taken {created:?} after readiness");
        let done = wait_for(Duration::from_secs(10), || {
            let api: Api<Assessment> = Api::all(ctx.client.clone());
            let name = name.clone();
            async move { Ok(api.get(&name).await?.status.and_then(|s| s.phase) == Some(Phase::Completed)) }
        })
        .await;
        let completed = ready.elapsed();
        if let Err(e) = done {
            anyhow::bail!("not Completed within 10 s of readiness ({e}); the operator's log:\n{}", op.logs());
        }
        eprintln!(
            "API server down 30 s: an Assessment created {created:?} after readiness Completed {completed:?} after"
        );
        let findings = crate::events::query(&data.0, &["findings", "--assessment", &name, "--format=json"])?;
        assert!(findings["findings"].as_array().is_some_and(|f| !f.is_empty()), "{findings:#}");
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "stops the local API server for 30 s: run alone (`cargo xtask ci` does, after the others)"]
async fn after_an_api_server_outage_an_acknowledgement_reaches_the_server_within_ten_seconds() {
    use crate::pro::{FAST, acknowledge, distinctive_deployment, insight, wait_status};
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("outage-ack").await?;
        distinctive_deployment(&ctx, &ns, "checkout").await?;
        let (sim, ca) = simulator(Behavior::Accept, 24.0).await?;
        let op = start_with_key(&ns, &sim.url(), &ca, crate::operator::KEY, FAST)?;
        let status =
            wait_status(&ctx, crate::pro::WAIT, |s| insight(s, &ns, "checkout", "missing-resource-limits").is_some())
                .await?;
        let id = insight(&status, &ns, "checkout", "missing-resource-limits").map(|i| i.id.clone()).unwrap_or_default();
        let ready = kube9_tests::apiserver::outage(Duration::from_secs(30)).await?;
        let ((), patched) =
            as_soon_as_ready(ready, || acknowledge(&ctx, &id, json!({"state": "acknowledged"}))).await?;
        let delivered =
            wait_for(Duration::from_secs(10), || async { Ok(sim.acknowledgements().iter().any(|a| a.id == id)) }).await;
        let at = ready.elapsed();
        if let Err(e) = delivered {
            anyhow::bail!("not delivered within 10 s of readiness ({e}); the operator's log:\n{}", op.logs());
        }
        eprintln!(
            "API server down 30 s: an acknowledgement patched {patched:?} after readiness delivered {at:?} after"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "stops the local API server for 30 s: run alone (`cargo xtask ci` does, after the others)"]
async fn after_an_api_server_outage_the_argocd_and_event_watches_record_a_change_within_five_seconds() {
    use crate::argocd::{create_app, ok_query, reasons, set_status};
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        kube9_tests::argocd::ensure_argo_crds(&ctx.client).await?;
        let argo = ctx.namespace("outage-argocd").await?;
        let op_ns = ctx.namespace("outage-kube9").await?;
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &argo);
        deployments.create(&PostParams::default(), &kube9_tests::argocd::argocd_server(&argo)).await?;
        let data = crate::events::DataDir::new();
        let dir = data.0.to_string_lossy().into_owned();
        let op = Operator::start(&op_ns, &["--argocd-namespace", &argo, "--data-dir", &dir], &[])?;
        let apps = create_app(&ctx, &argo, "shop", &argo).await?;
        set_status(&apps, "shop", json!({"sync": {"status": "Synced"}, "health": {"status": "Healthy"}})).await?;
        let list = ["events", "list", "--object-kind=Application", "--limit=50", "--format=json"];
        // The Application is followed before the outage.
        wait_for(Duration::from_secs(30), || async {
            let (json, _) = kube9_tests::operator::legacy_status(&ctx.client, &op_ns).await?.unzip();
            Ok(json.is_some_and(|j| j["argocd"]["applications"]["storedCount"] == 1))
        })
        .await?;

        let ready = kube9_tests::apiserver::outage(Duration::from_secs(30)).await?;
        let ((), changed) = as_soon_as_ready(ready, || {
            set_status(&apps, "shop", json!({"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"}}))
        })
        .await?;
        let event_name = unique_name("after-outage");
        let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(ctx.client.clone(), &argo);
        let event: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
            "metadata": {"name": event_name, "namespace": argo},
            "involvedObject": {"kind": "ConfigMap", "namespace": argo, "name": "after-outage"},
            "reason": "AfterOutage", "message": "made right after the API server came back", "type": "Normal",
            "count": 1, "lastTimestamp": k8s_openapi::jiff::Timestamp::now().to_string()
        }))?;
        events.create(&PostParams::default(), &event).await?;
        let created = ready.elapsed();
        let recorded = wait_for(Duration::from_secs(5), || async {
            let drift = reasons(&ok_query(Some(&data.0), &list)?, "shop").iter().any(|r| r == "ApplicationOutOfSync");
            let own = ok_query(Some(&data.0), &["events", "list", "--object-kind=ConfigMap", "--limit=50", "--format=json"])?;
            let event = own["events"].as_array().into_iter().flatten().any(|e| e["object_name"] == "after-outage");
            Ok(drift && event)
        })
        .await;
        if let Err(e) = recorded {
            anyhow::bail!(
                "the drift and the Event were not both recorded within 5 s ({e}); the operator's log:\n{}",
                op.logs()
            );
        }
        eprintln!(
            "API server down 30 s: an Application changed {changed:?} and an Event made {created:?} after readiness, both recorded {:?} after",
            ready.elapsed()
        );
        Ok(())
    })
    .await;
}
