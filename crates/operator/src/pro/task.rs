//! The pro tier's task: uploads on the server's interval, insights mapped back, and
//! acknowledgements delivered. It reads the OperatorStatus singleton (its spec, and on start
//! what the status held) from the store the status reconciler's watch fills, and publishes
//! its report for the status; it never writes the status itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{ObjectRef, Store};
use kube9_api::operator_status::{Acknowledgement, AcknowledgementState, OperatorStatus, SINGLETON_NAME, SyncState};
use kube9_privacy::names::obfuscate_note;
use kube9_privacy::{Forbidden, Key, Mapping};
use tokio::sync::watch;
use tokio::time::Instant;

use super::report::Report;
use super::{acks, insights, key, payload};
use crate::base::config::Config;
use crate::base::memory;
use crate::base::metrics::Metrics;
use crate::base::truncate;
use crate::collections::held::Collections;
use crate::collections::store::Collection;
use crate::history::event::{Object, own};
use crate::history::writer::Recorder;
use crate::registration::client::{Call, PostError, ServerClient};
use crate::registration::state::{self, Policy, Registration};
use kube9_store::{EventType, Severity, Write};

/// Everything the task needs.
pub struct Pro {
    pub client: kube::Client,
    pub server: ServerClient,
    pub config: Config,
    pub collections: Arc<Collections>,
    pub registration: watch::Receiver<Registration>,
    /// The OperatorStatus singleton, as the status reconciler's watch keeps it.
    pub status: Store<OperatorStatus>,
    pub report: watch::Sender<Option<Report>>,
    pub metrics: Metrics,
    /// The event history: insights received, acknowledgements synced.
    pub history: Recorder,
}

/// The state between rounds.
struct Round {
    report: Report,
    key: Option<Key>,
    /// From the latest payload: reads the answers, and guards notes.
    mapping: Mapping,
    forbidden: Option<Forbidden>,
    next_upload: Instant,
    upload_failures: u32,
    upload_error: Option<String>,
}

/// Runs until `shutdown` completes; `status_changes` wakes it when the singleton's spec changes (or it is recreated).
pub async fn run(
    mut pro: Pro,
    mut status_changes: BoxStream<'static, Arc<OperatorStatus>>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    // What the status held before this process: insights and delivery records survive restarts.
    // (The first event of the shared watch, not `Store::wait_until_ready`: kube-runtime 5 wakes
    // only one of several tasks waiting for the same store, and the status controller waits too.)
    let first = tokio::select! {
        first = status_changes.next() => first,
        _ = &mut shutdown => return,
    };
    let Some(first) = first else { return };
    tracing::debug!("pro tier: started from the OperatorStatus as it is");
    let mut round = Round {
        report: Report::from_status(&first.status.clone().unwrap_or_default()),
        key: None,
        mapping: Mapping::default(),
        forbidden: None,
        next_upload: Instant::now(),
        upload_failures: 0,
        upload_error: None,
    };
    let mut collections = pro.collections.changed.subscribe();
    loop {
        let registered = match &*pro.registration.borrow() {
            Registration::Registered { cluster_id, settings, .. } => Some((cluster_id.clone(), settings.clone())),
            _ => None,
        };
        let mut wake: Option<Instant> = None;
        if let Some((cluster_id, settings)) = registered {
            if settings.metrics_enabled != Some(false) {
                let interval = settings.metrics_interval.unwrap_or(pro.config.metrics_interval);
                let latest = pro.collections.latest();
                if !latest.is_empty() && Instant::now() >= round.next_upload {
                    upload(&pro, &mut round, &cluster_id, &latest, interval).await;
                    // The payload and the answer were the largest things held; give them back.
                    memory::release();
                }
                if !latest.is_empty() {
                    wake = Some(round.next_upload);
                }
            }
            if let Some(spec) = acknowledgements(&pro.status) {
                acks::follow_spec(&spec, &mut round.report.acknowledgements);
                if let Some(at) = deliver_due(&pro, &mut round).await {
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                }
            }
        }
        round.report.failure = failure(&round);
        let report = round.report.clone();
        pro.report.send_if_modified(|old| {
            let changed = old.as_ref() != Some(&report);
            *old = Some(report);
            changed
        });
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = pro.registration.changed() => {}
            _ = status_changes.next() => {}
            _ = collections.changed() => {}
            _ = &mut shutdown => return,
        }
    }
}

fn singleton(status: &Store<OperatorStatus>) -> Option<Arc<OperatorStatus>> {
    status.get(&ObjectRef::new(SINGLETON_NAME))
}

/// `spec.acknowledgements` as the singleton holds it now; None while it does not exist.
fn acknowledgements(status: &Store<OperatorStatus>) -> Option<BTreeMap<String, Acknowledgement>> {
    singleton(status).map(|o| o.spec.acknowledgements.clone())
}

fn failure(round: &Round) -> Option<String> {
    let failed = round.report.acknowledgements.values().filter(|r| r.sync == SyncState::Failed).count();
    let acks = (failed > 0).then(|| format!("{failed} acknowledgement(s) could not be delivered yet; retrying"));
    match (&round.upload_error, acks) {
        (Some(upload), Some(acks)) => Some(format!("{upload}; {acks}")),
        (Some(upload), None) => Some(upload.clone()),
        (None, acks) => acks,
    }
}

async fn key(pro: &Pro, round: &mut Round) -> Result<Key, String> {
    if let Some(key) = &round.key {
        return Ok(key.clone());
    }
    let key = key::load_or_create(&pro.client, &pro.config.namespace, &pro.config.obfuscation_key_secret).await?;
    round.key = Some(key.clone());
    Ok(key)
}

fn at(wait: Duration) -> String {
    crate::base::time::at(Timestamp::now(), wait)
}

/// One upload: build, validate, send, read the insights.
async fn upload(pro: &Pro, round: &mut Round, cluster_id: &str, latest: &[Arc<Collection>], interval: Duration) {
    let now = Timestamp::now();
    let upload = round.report.upload.get_or_insert_with(Default::default);
    upload.last_attempt_time = Some(Time(now));
    let backoff = |failures: u32| state::backoff(&Policy::from_config(&pro.config), failures, rand::random());
    let key = match key(pro, round).await {
        Ok(key) => key,
        Err(e) => {
            let wait = backoff(round.upload_failures);
            round.upload_failures += 1;
            round.next_upload = Instant::now() + wait;
            fail(pro, round, "key", format!("cannot upload: {e}; retrying at {}", at(wait)));
            return;
        }
    };
    let mut payload = match payload::build(&key, cluster_id, latest, now) {
        Ok(payload) => payload,
        Err(leak) => {
            pro.metrics.payload_refused();
            tracing::error!(pointer = %leak.pointer, kind = ?leak.kind, "the validator refused the upload; nothing was sent");
            round.next_upload = Instant::now() + interval;
            fail(pro, round, "refused", format!("{leak}; next attempt at {}", at(interval)));
            return;
        }
    };
    let bytes = payload.body.len() as u64;
    let answer = pro.server.post(Call::Metrics, "api/metrics", std::mem::take(&mut payload.body)).await;
    let (label, why, fixed) = match answer {
        Ok(answer) if answer.status == 200 => match serde_json::from_slice::<insights::MetricsAnswer>(&answer.body) {
            Ok(parsed) => {
                accept(pro, round, parsed, payload, bytes, now, interval);
                return;
            }
            Err(e) => ("malformed", format!("kube9-server's answer to the upload could not be read ({e})"), None),
        },
        Ok(answer) if answer.status == 401 => {
            ("key_rejected", "kube9-server rejected the API key for the upload (401)".to_owned(), None)
        }
        Ok(answer) if answer.status == 429 => {
            ("rate_limited", "kube9-server is rate limiting uploads (429)".to_owned(), answer.retry_after)
        }
        Ok(answer) => ("server_error", format!("kube9-server answered {} to the upload", answer.status), None),
        Err(too_large @ PostError::TooLarge { .. }) => {
            ("too_large", format!("kube9-server's answer to the upload could not be read ({too_large})"), None)
        }
        Err(why) => ("unreachable", format!("kube9-server could not be reached for the upload ({why})"), None),
    };
    let wait = fixed.unwrap_or_else(|| backoff(round.upload_failures));
    round.next_upload = Instant::now() + wait;
    round.upload_failures += 1;
    fail(pro, round, label, format!("{why}; keeping the last insights, retrying at {}", at(wait)));
}

/// A successful upload: the insights it brought replace the previous ones.
fn accept(
    pro: &Pro,
    round: &mut Round,
    parsed: insights::MetricsAnswer,
    payload: payload::Payload,
    bytes: u64,
    now: Timestamp,
    interval: Duration,
) {
    let mut mapped = Vec::with_capacity(parsed.insights.len());
    for insight in parsed.insights {
        if insights::valid_id(&insight.id) {
            mapped.push(insights::map_back(insight, &payload.mapping));
        } else {
            tracing::warn!("kube9-server sent an insight whose id is not URL-safe; it is left out");
        }
    }
    let (kept, omitted) = insights::order(mapped, pro.config.max_insights);
    for insight in &kept {
        record_insight(&pro.history, insight, now);
    }
    let unmapped = kept.iter().filter(|i| !i.mapped).count();
    tracing::info!(bytes, insights = kept.len(), omitted, unmapped, "uploaded to kube9-server");
    round.report.insights = kept;
    round.report.insights_omitted = (omitted > 0).then_some(omitted);
    let upload = round.report.upload.get_or_insert_with(Default::default);
    upload.last_success_time = Some(Time(now));
    upload.payload_bytes = Some(bytes);
    upload.last_error = None;
    round.mapping = payload.mapping;
    round.forbidden = Some(payload.forbidden);
    round.upload_failures = 0;
    round.upload_error = None;
    round.next_upload = Instant::now() + interval;
    pro.metrics.upload("ok");
}

fn fail(pro: &Pro, round: &mut Round, label: &'static str, why: String) {
    tracing::warn!(error = %why, "upload failed");
    pro.metrics.upload(label);
    round.report.upload.get_or_insert_with(Default::default).last_error = Some(truncate(&why, 500));
    round.upload_error = Some(why);
}

/// An insight received from kube9-server, in the event history: one row per insight id.
fn record_insight(history: &Recorder, insight: &kube9_api::operator_status::Insight, now: Timestamp) {
    use kube9_api::common::Severity as Level;
    let severity = match insight.severity {
        Level::Critical => Severity::Critical,
        Level::High => Severity::Error,
        Level::Medium | Level::Low => Severity::Warning,
        _ => Severity::Info,
    };
    let object = Object {
        kind: Some(insight.object.kind.clone()),
        namespace: insight.object.namespace.clone(),
        name: Some(insight.object.name.clone()),
    };
    let at = insight.created_at.as_ref().map_or(now, |t| t.0).as_millisecond();
    let description = format!("{} {}", insight.text, insight.recommendation);
    let row = own(
        EventType::Insight,
        severity,
        "InsightReceived",
        &insight.title,
        description.trim(),
        object,
        &insight.id,
        at,
    );
    history.record(Write::Event(row));
}

/// Sends every record that is due; returns when the next one will be.
async fn deliver_due(pro: &Pro, round: &mut Round) -> Option<Instant> {
    let (initial, max) = (pro.config.retry_initial, pro.config.retry_max);
    let now = Timestamp::now();
    let due: Vec<String> = round
        .report
        .acknowledgements
        .iter()
        .filter(|(_, r)| acks::due_at(r, initial, max).is_some_and(|at| at <= now))
        .map(|(id, _)| id.clone())
        .collect();
    for id in due {
        let Some(record) = round.report.acknowledgements.get(&id).cloned() else { continue };
        let note = match &record.note {
            None => None,
            Some(note) => {
                if round.forbidden.is_none() {
                    // No upload yet in this process: build the guard from the collections.
                    let latest = pro.collections.latest();
                    if latest.is_empty() {
                        continue; // a note waits until the operator knows which names to hide
                    }
                    match key(pro, round).await {
                        Ok(key) => {
                            let (mapping, forbidden) = payload::guard(&key, &latest);
                            round.mapping = mapping;
                            round.forbidden = Some(forbidden);
                        }
                        Err(_) => continue,
                    }
                }
                let Some(forbidden) = round.forbidden.as_ref() else { continue };
                Some(obfuscate_note(note, &round.mapping, forbidden))
            }
        };
        let withheld = matches!(note, Some(None));
        let delivery = deliver(pro, &id, record.state, note.flatten()).await;
        let label = match &delivery {
            acks::Delivery::Synced { .. } => "synced",
            acks::Delivery::Unknown => "unknown_insight",
            acks::Delivery::Failed(_) => "failed",
        };
        pro.metrics.acknowledgement_sync(label);
        tracing::info!(insight = %id, outcome = label, "acknowledgement delivery");
        let synced = matches!(delivery, acks::Delivery::Synced { .. });
        if synced {
            let at = Timestamp::now().as_millisecond();
            let title = format!("Acknowledgement of insight {id} synced");
            let row = own(
                EventType::Insight,
                Severity::Info,
                "AcknowledgementSynced",
                &title,
                &title,
                Object::default(),
                &format!("{id}:{at}"),
                at,
            );
            pro.history.record(Write::Event(row));
        }
        if let Some(record) = round.report.acknowledgements.get_mut(&id) {
            acks::record(record, &mut round.report.insights, &id, delivery, Timestamp::now());
            if synced && withheld {
                record.last_error = Some(
                    "the note was not sent: it names an object the operator cannot obfuscate or holds a \
                     secret-like value"
                        .into(),
                );
            }
        }
    }
    let now_instant = Instant::now();
    let now = Timestamp::now();
    round
        .report
        .acknowledgements
        .values()
        .filter_map(|r| acks::due_at(r, initial, max))
        .map(|at| {
            let wait = crate::base::time::until(now, at);
            // Pending notes wait for collections; poll them now and then rather than spin.
            now_instant + wait.max(Duration::from_secs(1))
        })
        .min()
}

async fn deliver(pro: &Pro, id: &str, state: AcknowledgementState, note: Option<String>) -> acks::Delivery {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        status: Option<String>,
        acknowledged_at: Option<String>,
    }
    let mut body = serde_json::json!({"state": state});
    if let Some(note) = note {
        body["note"] = note.into();
    }
    match pro
        .server
        .post(Call::Acknowledge, &format!("api/insights/{id}/acknowledge"), body.to_string().into_bytes())
        .await
    {
        Ok(answer) if answer.status == 200 => {
            let parsed = serde_json::from_slice::<Answer>(&answer.body).ok();
            let status = parsed.as_ref().and_then(|a| a.status.as_deref()).and_then(insights::state);
            let acknowledged_at = parsed.and_then(|a| a.acknowledged_at).and_then(|t| t.parse().ok()).map(Time);
            acks::Delivery::Synced { status, acknowledged_at }
        }
        Ok(answer) if answer.status == 404 => acks::Delivery::Unknown,
        Ok(answer) => acks::Delivery::Failed(format!("kube9-server answered {}", answer.status)),
        Err(too_large @ PostError::TooLarge { .. }) => {
            acks::Delivery::Failed(format!("kube9-server's answer could not be read ({too_large})"))
        }
        Err(why) => acks::Delivery::Failed(format!("kube9-server could not be reached ({why})")),
    }
}
