//! Two replicas, one truth, with two real operator processes (leader election, a data
//! directory each, replication on loopback with a shared token): after an Assessment, `query`
//! answers the same in both, the standby asking the leader; with the leader killed, the
//! standby's `query` says so with a coded error naming it, and once it leads it answers from
//! its copy of the leader's store with every finding, the history and the events.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kube9_tests::operator::{Operator, free_port, singleton_lock};
use kube9_tests::{scenario, unique_name, wait_for};
use serde_json::Value;

use crate::events::{DataDir, query};
use crate::findings::{assessment, careless_deployments, finished, query_error};

/// One replica named `pod` (its identity in the Lease), with its own store and replication port.
fn replica(ns: &str, pod: &str, data: &DataDir, token: &Path) -> Result<Operator> {
    let dir = data.0.to_str().context("a UTF-8 path")?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    Operator::start(
        ns,
        &["--status-interval", "3s", "--data-dir", dir],
        &[
            ("POD_NAME", pod),
            ("KUBE9_REPLICATION_ADDR", &addr),
            ("KUBE9_REPLICATION_TOKEN_FILE", token.to_str().context("a UTF-8 path")?),
        ],
    )
}

async fn leads(op: &Operator) -> bool {
    op.get("/metrics").await.is_ok_and(|(_, m)| m.lines().any(|l| l == "kube9_leader 1"))
}

/// Every `query` the extension and an administrator run, as (name, arguments).
fn questions(assessment: &str) -> Vec<Vec<String>> {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        words(&["events", "list", "--limit=25", "--format=json"]),
        words(&["events", "list", "--limit=25", "--format=json", "--since=2020-01-01T00:00:00.000Z"]),
        words(&["events", "list", "--limit=25", "--format=json", "--object-kind=Assessment"]),
        words(&["findings", "--assessment", assessment, "--limit", "1000000"]),
        words(&["assessments", "list"]),
        words(&["assessments", "history", assessment]),
        words(&["status"]),
        words(&["collections"]),
        words(&["ai-conformance", "latest"]),
    ]
}

/// The answer in `dir`: the document, or the error document for a query that fails alike in
/// both (no AI Conformance run yet, say).
fn answer(dir: &Path, args: &[String]) -> Value {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    match query(dir, &refs) {
        Ok(doc) => doc,
        Err(_) => query_error(dir, &refs)
            .map(|(code, doc)| serde_json::json!({"exit": code, "error": doc}))
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn both_replicas_answer_every_query_alike_and_a_new_leader_keeps_everything() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("replicas").await?;
        careless_deployments(&ctx, &ns, 5).await?;
        let token = std::env::temp_dir().join(unique_name("replication-token"));
        std::fs::write(&token, format!("{}\n", unique_name("a-long-shared-token")))?;
        let (data_a, data_b) = (DataDir::new(), DataDir::new());
        let a = replica(&ns, "replica-a", &data_a, &token)?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let b = replica(&ns, "replica-b", &data_b, &token)?;
        wait_for(Duration::from_secs(30), || async { Ok(leads(&a).await || leads(&b).await) }).await?;
        let (leader, standby, leader_dir, standby_dir) =
            if leads(&a).await { (a, b, &data_a, &data_b) } else { (b, a, &data_b, &data_a) };
        // The standby is ready only once it holds the leader's store.
        wait_for(Duration::from_secs(30), || async { Ok(standby.get("/readyz").await?.0 == 200) }).await?;

        let name = assessment(&ctx, &ns, None).await?;
        let status = finished(&ctx, &name, None).await?;
        let run_id = status.run_id.clone().context("a run id")?;
        let all = ["findings", "--assessment", name.as_str(), "--limit", "1000000"];
        wait_for(Duration::from_secs(10), || async { Ok(query(&leader_dir.0, &all)?["runId"] == run_id.as_str()) })
            .await?;
        // The standby's own copy (read directly, not through the leader) follows within seconds.
        let written = Instant::now();
        let copied = |dir: &Path| {
            let filter = kube9_store::FindingFilter { assessment: name.clone(), limit: 1, ..Default::default() };
            kube9_store::Reader::open(dir).and_then(|r| r.findings(&filter)).is_ok_and(|p| p.run.run_id == run_id)
        };
        wait_for(Duration::from_secs(5), || async { Ok(copied(&standby_dir.0)) }).await?;
        eprintln!(
            "figure: the run's findings reached the standby's copy {:?} after the leader's store",
            written.elapsed()
        );

        // Every question, asked in each Pod, within a second of the leader having the answer.
        // The leader keeps working meanwhile (a collection may be stored between two asks), so
        // the standby's answer is compared with the leader's when the leader answered the same
        // just before and just after it.
        for args in questions(&name) {
            let mut tries = 0;
            loop {
                tries += 1;
                let asked = Instant::now();
                let (from_leader, from_standby) = (answer(&leader_dir.0, &args), answer(&standby_dir.0, &args));
                let took = asked.elapsed();
                if tries < 3 && answer(&leader_dir.0, &args) != from_leader {
                    continue;
                }
                assert_eq!(from_standby, from_leader, "query {args:?}");
                assert!(took < Duration::from_secs(3), "query {args:?} took {took:?} in both");
                break;
            }
        }
        let before = query(&leader_dir.0, &all)?;
        let total = before["findings"].as_array().map_or(0, Vec::len);
        assert!(total > 0 && before["matching"].as_u64() == Some(total as u64), "{before:#}");
        let history = query(&leader_dir.0, &["assessments", "history", &name])?;
        let events = query(&leader_dir.0, &["events", "list", "--limit=1000", "--format=json"])?;
        let own = |doc: &Value| -> Vec<Value> {
            doc["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["object_kind"] == "Assessment")
                .cloned()
                .collect()
        };
        assert!(!own(&events).is_empty(), "the operator's own event about the run: {events:#}");
        // The standby's copy follows the leader's writes (pulled about every second).
        tokio::time::sleep(Duration::from_secs(3)).await;

        // The leader killed: the standby says who it cannot reach rather than answering alone.
        let leader_name = if std::ptr::eq(leader_dir, &data_a) { "replica-a" } else { "replica-b" };
        drop(leader);
        let (code, error) = query_error(&standby_dir.0, &all)?;
        assert_eq!(code, Some(1));
        assert_eq!(error["code"], "leader-unreachable", "{error:#}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains(leader_name)), "{error:#}");

        // The standby takes over and answers from its copy: every finding, the history, the events.
        wait_for(Duration::from_secs(30), || async { Ok(leads(&standby).await) }).await?;
        let after = query(&standby_dir.0, &all)?;
        assert_eq!(after, before, "the new leader lists every finding of the last run");
        assert_eq!(query(&standby_dir.0, &["assessments", "history", &name])?, history);
        let kept = query(&standby_dir.0, &["events", "list", "--limit=1000", "--format=json"])?;
        for event in own(&events) {
            assert!(own(&kept).contains(&event), "kept {event:#}");
        }
        let _ = std::fs::remove_file(&token);
        Ok(())
    })
    .await;
}
