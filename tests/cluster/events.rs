//! The event history against a real kube-apiserver: the real operator binary watches the
//! cluster's Events into its store, and the real `kube9-operator query events list` reads
//! them beside it, as the VS Code extension does.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use kube9_tests::operator::{Operator, binary, singleton_lock};
use kube9_tests::{scenario, wait_for};
use serde_json::Value;

/// Runs `kube9-operator query <args>` against `dir`: its parsed stdout, or why it failed.
pub(crate) fn query(dir: &Path, args: &[&str]) -> Result<Value> {
    let output = std::process::Command::new(binary()?)
        .arg("query")
        .args(args)
        .env("KUBE9_DATA_DIR", dir)
        .output()
        .context("running kube9-operator query")?;
    if !output.status.success() {
        bail!("query {args:?} exited {:?}: {}", output.status.code(), String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).with_context(|| format!("stdout of {args:?} is one JSON document"))
}

pub(crate) use kube9_tests::operator::DataDir;

fn event(ns: &str, name: &str, kind: &str, object: &str, count: i32, last: Timestamp) -> Event {
    Event {
        metadata: ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() },
        involved_object: ObjectReference {
            kind: Some(kind.into()),
            namespace: Some(ns.into()),
            name: Some(object.into()),
            api_version: Some("v1".into()),
            ..Default::default()
        },
        type_: Some("Warning".into()),
        reason: Some("BackOff".into()),
        message: Some(format!("Back-off restarting failed container in {object}")),
        count: Some(count),
        first_timestamp: Some(Time(last - SignedDuration::from_secs(i64::from(count)))),
        last_timestamp: Some(Time(last)),
        source: Some(Default::default()),
        ..Default::default()
    }
}

fn names(doc: &Value, key: &str) -> Vec<String> {
    doc["events"]
        .as_array()
        .map_or_else(Vec::new, |events| events.iter().map(|e| e[key].as_str().unwrap_or_default().to_owned()).collect())
}

/// Rows about `ns` in the store, counted by a reader in this process.
fn stored(dir: &Path, ns: &str, kind: Option<&str>, since: Option<i64>) -> Result<usize> {
    let reader = kube9_store::Reader::open(dir)?;
    let filter = kube9_store::Filter {
        object_namespace: Some(ns.into()),
        object_kind: kind.map(str::to_owned),
        since,
        limit: 1_000_000,
        ..Default::default()
    };
    Ok(reader.events(&filter)?.len())
}

#[tokio::test]
async fn a_burst_of_ten_thousand_events_is_stored_once_each_and_queryable() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let (a, b) = (ctx.namespace("events-a").await?, ctx.namespace("events-b").await?);
        let data = DataDir::new();
        let mut operator = Operator::start(&a, &["--data-dir", data.0.to_str().unwrap_or_default()], &[])?;
        wait_for(Duration::from_secs(30), || async { Ok(query(&data.0, &["events", "list", "--limit=1"]).is_ok()) })
            .await
            .with_context(|| operator.logs())?;

        // 8,000 in `a` (6,000 about Pods, 2,000 about Deployments; the first 5,000 two hours
        // old), 2,000 about Pods in `b`.
        let now = Timestamp::now();
        let old = now - SignedDuration::from_hours(2);
        let specs: Vec<(String, Event)> = (0..10_000)
            .map(|i| {
                let (ns, kind) = match i {
                    0..6_000 => (&a, "Pod"),
                    6_000..8_000 => (&a, "Deployment"),
                    _ => (&b, "Pod"),
                };
                let last = if i < 5_000 { old } else { now };
                (ns.clone(), event(ns, &format!("burst-{i}"), kind, &format!("obj-{i}"), 1 + i % 3, last))
            })
            .collect();
        let client = ctx.client.clone();
        let created: Vec<Result<Event, kube::Error>> = futures::stream::iter(specs)
            .map(|(ns, e)| {
                let api: Api<Event> = Api::namespaced(client.clone(), &ns);
                async move { api.create(&PostParams::default(), &e).await }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let failed: Vec<String> = created.iter().filter_map(|r| r.as_ref().err().map(ToString::to_string)).collect();
        assert!(failed.is_empty(), "{} creates failed, e.g. {:?}", failed.len(), failed.first());

        wait_for(Duration::from_secs(120), || async {
            Ok(stored(&data.0, &a, None, None)? == 8_000 && stored(&data.0, &b, None, None)? == 2_000)
        })
        .await
        .with_context(|| {
            format!("stored: a {:?}, b {:?}", stored(&data.0, &a, None, None), stored(&data.0, &b, None, None))
        })?;
        // Nothing more arrives later: one row per Event, not one per watch update.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(stored(&data.0, &a, None, None)?, 8_000);
        assert_eq!(stored(&data.0, &a, Some("Deployment"), None)?, 2_000);
        let hour_ago = (now - SignedDuration::from_hours(1)).as_millisecond();
        assert_eq!(stored(&data.0, &a, None, Some(hour_ago))?, 3_000, "5,000 of a's 8,000 are two hours old");

        // The extension's own command line, through the real binary.
        let ns_a = format!("--object-namespace={a}");
        let doc =
            query(&data.0, &["events", "list", &ns_a, "--object-kind=Deployment", "--limit=25", "--format=json"])?;
        assert_eq!(names(&doc, "object_kind"), vec!["Deployment"; 25]);
        assert_eq!(names(&doc, "object_namespace"), vec![a.clone(); 25]);
        let times = names(&doc, "created_at");
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
        let first = &doc["events"][0];
        assert_eq!((first["event_type"].as_str(), first["severity"].as_str()), (Some("cluster"), Some("error")));
        assert_eq!(first["metadata"]["reason"], "BackOff");

        let since = format!("--since={}", Timestamp::from_millisecond(hour_ago)?);
        let doc = query(&data.0, &["events", "list", &ns_a, &since, "--limit=1000"])?;
        assert_eq!(names(&doc, "object_namespace").len(), 1000);
        let cutoff = Timestamp::from_millisecond(hour_ago)?;
        for t in names(&doc, "created_at") {
            assert!(t.parse::<Timestamp>()? >= cutoff, "{t} is before --since");
        }
        let doc = query(&data.0, &["events", "list", &format!("--object-namespace={b}"), "--limit=1000"])?;
        assert_eq!(names(&doc, "object_namespace"), vec![b.clone(); 1000]);
        let id = doc["events"][0]["id"].as_str().unwrap_or_default().to_owned();
        let one = query(&data.0, &["events", "get", &id])?;
        assert_eq!(one, doc["events"][0]);

        let (code, _) = operator.terminate()?;
        assert_eq!(code, Some(0), "{}", operator.logs());
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn one_event_updated_again_and_again_is_one_row_with_the_rising_count() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("events-repeat").await?;
        let data = DataDir::new();
        let mut operator = Operator::start(&ns, &["--data-dir", data.0.to_str().unwrap_or_default()], &[])?;
        let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ns);
        // Whole seconds: a core Event's timestamps have no fraction.
        let start = Timestamp::from_second(Timestamp::now().as_second() - 600)?;
        let mut current = api.create(&PostParams::default(), &event(&ns, "repeat", "Pod", "web-1", 1, start)).await?;
        let ns_flag = format!("--object-namespace={ns}");
        for count in 2..=6 {
            // Wait for each count so every one is a separate watch update.
            wait_for(Duration::from_secs(30), || async {
                let doc = query(&data.0, &["events", "list", &ns_flag])?;
                Ok(doc["events"][0]["metadata"]["count"] == count - 1)
            })
            .await
            .with_context(|| operator.logs())?;
            current.count = Some(count);
            current.last_timestamp = Some(Time(start + SignedDuration::from_secs(i64::from(count) * 30)));
            current = api.replace("repeat", &PostParams::default(), &current).await?;
        }
        wait_for(Duration::from_secs(30), || async {
            let doc = query(&data.0, &["events", "list", &ns_flag])?;
            Ok(doc["events"][0]["metadata"]["count"] == 6)
        })
        .await?;
        let doc = query(&data.0, &["events", "list", &ns_flag, "--limit=100"])?;
        let events = doc["events"].as_array().cloned().unwrap_or_default();
        assert_eq!(events.len(), 1, "one row, not one per update: {doc:#}");
        let meta = &events[0]["metadata"];
        assert_eq!(meta["last_timestamp"], (start + SignedDuration::from_secs(180)).to_string());
        assert_eq!(meta["first_timestamp"], (start - SignedDuration::from_secs(1)).to_string());
        let (code, _) = operator.terminate()?;
        assert_eq!(code, Some(0), "{}", operator.logs());
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_collections_are_kept_in_the_store_and_outlive_the_operator() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("collections").await?;
        let data = DataDir::new();
        let dir = data.0.to_str().unwrap_or_default();
        let fast =
            "clusterMetadata=2s,resourceInventory=2s,configurationPatterns=2s,performanceMetrics=2s,securityPosture=2s";
        let mut operator = Operator::start(
            &ns,
            &["--data-dir", dir, "--collection-intervals", fast, "--collection-retention", "2"],
            &[],
        )?;
        let collectors = |listed: &Value| -> Vec<String> {
            let mut names: Vec<String> = listed["collections"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["collector"].as_str().map(str::to_owned))
                .collect();
            names.sort_unstable();
            names
        };
        wait_for(Duration::from_secs(60), || async {
            let listed = query(&data.0, &["collections"]);
            Ok(listed.is_ok_and(|l| collectors(&l).len() == 10))
        })
        .await
        .with_context(|| operator.logs())?;
        let (code, _) = operator.terminate()?;
        assert_eq!(code, Some(0));

        // The operator is gone; the store still holds two of each collector's results.
        let listed = query(&data.0, &["collections"])?;
        let mut expected: Vec<String> = ["clusterMetadata", "configurationPatterns", "performanceMetrics"]
            .into_iter()
            .chain(["resourceInventory", "securityPosture"])
            .flat_map(|c| [c.to_owned(), c.to_owned()])
            .collect();
        expected.sort_unstable();
        assert_eq!(collectors(&listed), expected);
        assert!(listed["collections"][0]["dataBytes"].as_u64().unwrap_or(0) > 0);

        // A new operator counts them from its start, before any collector of its own has run.
        let slow =
            "clusterMetadata=7d,resourceInventory=7d,configurationPatterns=7d,performanceMetrics=7d,securityPosture=7d";
        let restarted = Operator::start(&ns, &["--data-dir", dir, "--collection-intervals", slow], &[])?;
        let (status, _) = kube9_tests::operator::wait_for_both(&ctx.client, &ns, Duration::from_secs(30), |s, _| {
            s.collection_stats.as_ref().is_some_and(|c| c.collections_stored_count >= 10)
        })
        .await
        .with_context(|| restarted.logs())?;
        assert!(status.collection_stats.and_then(|c| c.last_success_time).is_some());
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_store_that_becomes_unwritable_degrades_the_operator_until_it_is_writable_again() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("store-fault").await?;
        let data = DataDir::new();
        let operator = Operator::start(&ns, &["--data-dir", data.0.to_str().unwrap_or_default()], &[])?;
        let store_condition = |s: &kube9_api::OperatorStatusStatus| {
            s.conditions.iter().find(|c| c.type_ == "Store").map(|c| (c.status.clone(), c.reason.clone()))
        };
        kube9_tests::operator::wait_for_both(&ctx.client, &ns, Duration::from_secs(30), |s, _| {
            store_condition(s) == Some(("True".into(), "Available".into()))
        })
        .await
        .with_context(|| operator.logs())?;

        // Immutable (even root cannot write it): the writer's next check says so.
        let chattr = |flag: &str| {
            let path = data.0.join("kube9.db");
            let ok = std::process::Command::new("chattr").arg(flag).arg(&path).status().is_ok_and(|s| s.success());
            let dir_ok =
                std::process::Command::new("chattr").arg(flag).arg(&data.0).status().is_ok_and(|s| s.success());
            anyhow::ensure!(ok && dir_ok, "chattr {flag} failed");
            Ok(())
        };
        chattr("+i")?;
        let degraded = kube9_tests::operator::wait_for_both(&ctx.client, &ns, Duration::from_secs(90), |s, l| {
            store_condition(s).is_some_and(|(status, _)| status == "False")
                && l.health == kube9_api::operator_status::Health::Degraded
        })
        .await;
        chattr("-i")?;
        let (status, legacy) = degraded.with_context(|| operator.logs())?;
        assert!(legacy.error.is_some_and(|e| !e.is_empty()), "the reason is in the ConfigMap");
        assert_eq!(store_condition(&status).map(|c| c.1), Some("Unavailable".into()));

        // Writable again: available and healthy again.
        kube9_tests::operator::wait_for_both(&ctx.client, &ns, Duration::from_secs(90), |s, l| {
            store_condition(s) == Some(("True".into(), "Available".into()))
                && l.health == kube9_api::operator_status::Health::Healthy
        })
        .await
        .with_context(|| operator.logs())?;
        Ok(())
    })
    .await;
}
