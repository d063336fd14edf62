//! Acknowledgement delivery, decided from plain values: which entries of the spec need
//! sending, when a failed one is retried, and what each answer does to its record.
//!
//! The spec is the durable record of what people decided; the status records what was
//! delivered. Comparing the two after any restart finds everything still to send, so an
//! acknowledgement is never lost.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube9_api::operator_status::{Acknowledgement, AcknowledgementSync, Insight, InsightState, SyncState};

use crate::base::backoff::Backoff;
use crate::base::truncate;

/// How one delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// kube9-server has it; its view of the insight now.
    Synced { status: Option<InsightState>, acknowledged_at: Option<Time> },
    /// 404: kube9-server knows no insight with this id.
    Unknown,
    /// Anything else; retried.
    Failed(String),
}

/// Brings the records in line with the spec: a new or changed entry starts over as pending,
/// a removed one is forgotten.
pub fn follow_spec(spec: &BTreeMap<String, Acknowledgement>, records: &mut BTreeMap<String, AcknowledgementSync>) {
    records.retain(|id, _| spec.contains_key(id));
    for (id, ack) in spec {
        let current = records.get(id).is_some_and(|r| r.state == ack.state && r.note == ack.note);
        if !current {
            records.insert(
                id.clone(),
                AcknowledgementSync {
                    state: ack.state,
                    note: ack.note.clone(),
                    sync: SyncState::Pending,
                    attempts: 0,
                    last_error: None,
                    last_attempt_time: None,
                    synced_time: None,
                },
            );
        }
    }
}

/// The wait before retrying after `attempts` failed attempts: initial × 2^(attempts-1), capped.
pub fn retry_wait(attempts: u32, initial: Duration, max: Duration) -> Duration {
    Backoff { initial, max }.wait(attempts.saturating_sub(1))
}

/// When a record should be sent next; None when it should not be sent again.
pub fn due_at(record: &AcknowledgementSync, initial: Duration, max: Duration) -> Option<Timestamp> {
    match record.sync {
        SyncState::Pending => Some(Timestamp::UNIX_EPOCH),
        SyncState::Failed => {
            let last = record.last_attempt_time.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0);
            let wait =
                SignedDuration::try_from(retry_wait(record.attempts, initial, max)).unwrap_or(SignedDuration::MAX);
            Some(last.checked_add(wait).unwrap_or(last))
        }
        SyncState::Synced | SyncState::UnknownInsight => None,
    }
}

/// Folds a delivery into the record, and into the insight it is about.
pub fn record(
    record: &mut AcknowledgementSync,
    insights: &mut [Insight],
    id: &str,
    delivery: Delivery,
    now: Timestamp,
) {
    record.attempts = record.attempts.saturating_add(1);
    record.last_attempt_time = Some(Time(now));
    match delivery {
        Delivery::Synced { status, acknowledged_at } => {
            record.sync = SyncState::Synced;
            record.last_error = None;
            record.synced_time = Some(Time(now));
            if let Some(insight) = insights.iter_mut().find(|i| i.id == id) {
                insight.status = status.unwrap_or(match record.state {
                    kube9_api::operator_status::AcknowledgementState::Acknowledged => InsightState::Acknowledged,
                    kube9_api::operator_status::AcknowledgementState::Dismissed => InsightState::Dismissed,
                });
                insight.acknowledged_at = acknowledged_at.or(Some(Time(now)));
            }
        }
        Delivery::Unknown => {
            record.sync = SyncState::UnknownInsight;
            record.last_error =
                Some("kube9-server knows no insight with this id; change or remove the acknowledgement".into());
        }
        Delivery::Failed(why) => {
            record.sync = SyncState::Failed;
            record.last_error = Some(truncate(&why, 300));
        }
    }
}

#[cfg(test)]
mod tests {
    use kube9_api::operator_status::AcknowledgementState;

    use super::*;

    fn spec(entries: &[(&str, AcknowledgementState, Option<&str>)]) -> BTreeMap<String, Acknowledgement> {
        entries
            .iter()
            .map(|(id, state, note)| (id.to_string(), Acknowledgement { state: *state, note: note.map(str::to_owned) }))
            .collect()
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn new_and_changed_entries_are_pending_and_removed_ones_forgotten() {
        let mut records = BTreeMap::new();
        follow_spec(&spec(&[("a", AcknowledgementState::Acknowledged, None)]), &mut records);
        assert_eq!(records["a"].sync, SyncState::Pending);
        let now = Timestamp::UNIX_EPOCH;
        record(
            records.get_mut("a").unwrap(),
            &mut [],
            "a",
            Delivery::Synced { status: None, acknowledged_at: None },
            now,
        );
        follow_spec(&spec(&[("a", AcknowledgementState::Acknowledged, None)]), &mut records);
        assert_eq!(records["a"].sync, SyncState::Synced, "unchanged: not sent again");
        follow_spec(
            &spec(&[("a", AcknowledgementState::Dismissed, Some("n/a")), ("b", AcknowledgementState::Dismissed, None)]),
            &mut records,
        );
        assert_eq!((records["a"].sync, records["a"].attempts), (SyncState::Pending, 0), "changed: sent again");
        follow_spec(&spec(&[("b", AcknowledgementState::Dismissed, None)]), &mut records);
        assert!(!records.contains_key("a"));
    }

    #[test]
    fn failures_back_off_and_unknown_ids_are_not_retried() {
        let mut records = BTreeMap::new();
        follow_spec(&spec(&[("a", AcknowledgementState::Acknowledged, None)]), &mut records);
        let r = records.get_mut("a").unwrap();
        let t0: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        assert!(due_at(r, S, 8 * S).unwrap() <= t0);
        let mut waits = Vec::new();
        for n in 0..5 {
            record(r, &mut [], "a", Delivery::Failed("connection refused".into()), t0);
            waits.push(due_at(r, S, 8 * S).unwrap().duration_since(t0).as_secs());
            assert_eq!(r.attempts, n + 1);
        }
        assert_eq!(waits, [1, 2, 4, 8, 8]);
        assert_eq!(r.last_error.as_deref(), Some("connection refused"));
        record(r, &mut [], "a", Delivery::Unknown, t0);
        assert_eq!((r.sync, due_at(r, S, 8 * S)), (SyncState::UnknownInsight, None));
    }

    #[test]
    fn a_delivery_updates_the_insight() {
        let mut insight: Insight = serde_json::from_value(serde_json::json!({
            "id": "ins_1", "object": {"kind": "Deployment", "name": "web"}, "mapped": true, "type": "t",
            "severity": "high", "title": "t", "text": "t", "recommendation": "r", "status": "active"
        }))
        .unwrap();
        let mut records = BTreeMap::new();
        follow_spec(&spec(&[("ins_1", AcknowledgementState::Dismissed, None)]), &mut records);
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        record(
            records.get_mut("ins_1").unwrap(),
            std::slice::from_mut(&mut insight),
            "ins_1",
            Delivery::Synced { status: None, acknowledged_at: None },
            now,
        );
        assert_eq!((insight.status, insight.acknowledged_at), (InsightState::Dismissed, Some(Time(now))));
        assert_eq!(records["ins_1"].synced_time, Some(Time(now)));
    }
}
