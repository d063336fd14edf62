//! What the operator keeps of each Application it follows: the compact record, the summary
//! both status surfaces show, and the drift and failure transitions that become events.

use kube9_api::argocd::ApplicationsSummary;
use kube9_api::text::truncate;

use crate::app::{Application, Destination, HealthStatus, OperationState, ResourceStatus};

/// Resources kept per Application: only the out-of-sync or unhealthy ones, to name them in
/// events (the tree reads the Application itself).
pub const MAX_PROBLEMS: usize = 20;
/// Resources named in one event's description.
const NAMED_IN_EVENT: usize = 10;

/// What is kept of one Application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub project: String,
    pub destination: Destination,
    /// `Synced`, `OutOfSync` or `Unknown` (Argo CD's words; `Unknown` when not yet compared).
    pub sync: String,
    pub revision: Option<String>,
    pub health: String,
    pub health_message: Option<String>,
    pub operation: Option<OperationState>,
    /// Out-of-sync or unhealthy resources, at most [`MAX_PROBLEMS`].
    pub problems: Vec<ResourceStatus>,
    /// Out-of-sync or unhealthy resources in all (`problems` may hold fewer).
    pub problem_count: usize,
}

impl Record {
    /// The compact record of an Application.
    pub fn from_app(app: Application) -> Record {
        let meta = app.metadata;
        let status = app.status;
        let problem = |r: &ResourceStatus| {
            r.status.as_deref() == Some("OutOfSync")
                || r.health.as_ref().and_then(|h| h.status.as_deref()).is_some_and(|h| h != "Healthy")
        };
        let problem_count = status.resources.iter().filter(|r| problem(r)).count();
        let problems = status
            .resources
            .into_iter()
            .filter(problem)
            .take(MAX_PROBLEMS)
            .map(|mut r| {
                r.health = r.health.map(|h| HealthStatus { message: h.message.map(|m| truncate(&m, 200)), ..h });
                r
            })
            .collect();
        Record {
            namespace: meta.namespace.unwrap_or_default(),
            name: meta.name.unwrap_or_default(),
            uid: meta.uid.unwrap_or_default(),
            project: app.spec.project,
            destination: app.spec.destination,
            sync: status.sync.status.unwrap_or_else(|| "Unknown".into()),
            revision: status.sync.revision,
            health: status.health.status.unwrap_or_else(|| "Unknown".into()),
            health_message: status.health.message.map(|m| truncate(&m, 500)),
            operation: status.operation_state,
            problems,
            problem_count,
        }
    }

    /// The resources this Application reports with a problem, as `Kind ns/name (why)`.
    fn named(&self, drifted: bool) -> String {
        let chosen: Vec<&ResourceStatus> = self
            .problems
            .iter()
            .filter(|r| {
                if drifted {
                    r.status.as_deref() == Some("OutOfSync")
                } else {
                    r.health.as_ref().and_then(|h| h.status.as_deref()).is_some_and(|h| h != "Healthy")
                }
            })
            .collect();
        if chosen.is_empty() {
            return String::new();
        }
        let mut names: Vec<String> = chosen
            .iter()
            .take(NAMED_IN_EVENT)
            .map(|r| {
                let at = match &r.namespace {
                    Some(ns) if !ns.is_empty() => format!("{ns}/{}", r.name),
                    _ => r.name.clone(),
                };
                let why = match (&r.health, drifted) {
                    (Some(h), false) => match (&h.status, &h.message) {
                        (Some(s), Some(m)) if !m.is_empty() => format!(" ({s}: {m})"),
                        (Some(s), _) => format!(" ({s})"),
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                format!("{} {at}{why}", r.kind)
            })
            .collect();
        // Resources not kept (past the cap) may be among them too.
        let more = chosen.len().saturating_sub(NAMED_IN_EVENT) + (self.problem_count - self.problems.len());
        if more > 0 {
            names.push(format!("and up to {more} more"));
        }
        names.join(", ")
    }
}

/// The summary of the records kept, collected at `at` (RFC 3339); `omitted` Applications
/// exceeded the cap.
pub fn summary<'a>(records: impl Iterator<Item = &'a Record>, omitted: u64, at: &str) -> ApplicationsSummary {
    let mut s = ApplicationsSummary {
        last_collected_at: at.to_owned(),
        omitted_count: (omitted > 0).then_some(omitted),
        ..Default::default()
    };
    for r in records {
        s.stored_count += 1;
        *s.sync_status_counts.entry(r.sync.clone()).or_default() += 1;
        *s.health_status_counts.entry(r.health.clone()).or_default() += 1;
    }
    s
}

/// Whether two summaries say the same, apart from when they were collected.
pub fn same_counts(a: &ApplicationsSummary, b: &ApplicationsSummary) -> bool {
    (a.stored_count, &a.sync_status_counts, &a.health_status_counts, a.omitted_count)
        == (b.stored_count, &b.sync_status_counts, &b.health_status_counts, b.omitted_count)
}

/// How serious a transition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warning,
    Error,
}

/// One change of an Application worth an event; the event is about the Application itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub level: Level,
    /// `ApplicationOutOfSync`, `ApplicationDegraded`, `ApplicationMissing` or
    /// `ApplicationSyncFailed`.
    pub reason: String,
    pub title: String,
    pub description: String,
    /// What makes the event one row: the same key is the same event.
    pub key: String,
    /// When it happened (ms since the epoch).
    pub at_ms: i64,
}

/// The events one change of an Application makes (`before` is None when the operator has no
/// earlier state of it: first sight, or its start). Drift and health changes are recorded only
/// when seen happening (`at_ms` makes each one its own row); a failed sync operation is keyed
/// by the operation's start, so it is one row however often it is seen, restarts included.
pub fn transitions(before: Option<&Record>, after: &Record, at_ms: i64) -> Vec<Transition> {
    let mut events = Vec::new();
    let app = format!("{}/{}", after.namespace, after.name);
    let key = |what: &str| format!("{}:{what}:{at_ms}", after.uid);
    if let Some(before) = before {
        if before.sync == "Synced" && after.sync == "OutOfSync" {
            let named = after.named(true);
            let revision = after.revision.as_deref().map(|r| format!(" at revision {r}")).unwrap_or_default();
            let description = if named.is_empty() {
                format!("The live state no longer matches Git{revision}.")
            } else {
                format!("Drifted from Git{revision}: {named}.")
            };
            events.push(Transition {
                level: Level::Warning,
                reason: "ApplicationOutOfSync".into(),
                title: format!("Argo CD Application {app} is OutOfSync"),
                description,
                key: key("OutOfSync"),
                at_ms,
            });
        }
        let unhealthy = matches!(after.health.as_str(), "Degraded" | "Missing");
        if before.health == "Healthy" && unhealthy {
            let named = after.named(false);
            let mut description = after.health_message.clone().unwrap_or_default();
            if !named.is_empty() {
                if !description.is_empty() {
                    description.push_str("; ");
                }
                description.push_str(&format!("resources: {named}"));
            }
            events.push(Transition {
                level: if after.health == "Degraded" { Level::Error } else { Level::Warning },
                reason: format!("Application{}", after.health),
                title: format!("Argo CD Application {app} is {}", after.health),
                description,
                key: key(&after.health),
                at_ms,
            });
        }
    }
    if let Some(op) = &after.operation
        && matches!(op.phase.as_deref(), Some("Failed" | "Error"))
        && before.and_then(|b| b.operation.as_ref()) != Some(op)
    {
        let started = op.started_at.clone().unwrap_or_else(|| at_ms.to_string());
        events.push(Transition {
            level: Level::Error,
            reason: "ApplicationSyncFailed".into(),
            title: format!(
                "Argo CD Application {app}: sync {}",
                op.phase.as_deref().unwrap_or("Failed").to_lowercase()
            ),
            description: op.message.clone().unwrap_or_else(|| "the sync operation failed".into()),
            key: format!("{}:SyncFailed:{started}", after.uid),
            at_ms: op.finished_at.map_or(at_ms, |t| t.as_millisecond()),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn app(sync: &str, health: &str, extra: serde_json::Value) -> Record {
        let mut value = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "shop", "namespace": "argocd", "uid": "u1",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
            "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"}},
            "status": {"sync": {"status": sync, "revision": "abc123"}, "health": {"status": health},
                "resources": [
                    {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web",
                     "status": "OutOfSync", "health": {"status": "Degraded", "message": "exceeded its progress deadline"}},
                    {"version": "v1", "kind": "Service", "namespace": "shop", "name": "web", "status": "Synced",
                     "health": {"status": "Healthy"}}
                ]}
        });
        if let Some(status) = extra.as_object() {
            for (k, v) in status {
                value["status"][k] = v.clone();
            }
        }
        Record::from_app(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn the_record_keeps_only_what_is_needed() {
        let r = app("OutOfSync", "Degraded", json!({}));
        assert_eq!((r.sync.as_str(), r.health.as_str(), r.project.as_str()), ("OutOfSync", "Degraded", "default"));
        assert_eq!(r.problems.len(), 1, "only the resource with a problem");
        assert_eq!(r.destination.namespace.as_deref(), Some("shop"));
        let bare: Application = serde_json::from_value(json!({"metadata": {"name": "x", "namespace": "y"}})).unwrap();
        let bare = Record::from_app(bare);
        assert_eq!((bare.sync.as_str(), bare.health.as_str()), ("Unknown", "Unknown"), "not yet reconciled");
    }

    #[test]
    fn the_summary_counts_sync_and_health() {
        let records = [
            app("Synced", "Healthy", json!({})),
            app("OutOfSync", "Degraded", json!({})),
            app("Synced", "Healthy", json!({})),
        ];
        let s = summary(records.iter(), 2, "2026-12-01T10:00:00Z");
        assert_eq!(s.stored_count, 3);
        assert_eq!(s.sync_status_counts, BTreeMap::from([("OutOfSync".into(), 1), ("Synced".into(), 2)]));
        assert_eq!(s.health_status_counts, BTreeMap::from([("Degraded".into(), 1), ("Healthy".into(), 2)]));
        assert_eq!(s.omitted_count, Some(2));
        let later = summary(records.iter(), 2, "2026-12-01T11:00:00Z");
        assert!(same_counts(&s, &later));
    }

    #[test]
    fn drift_and_degradation_are_recorded_once_with_the_resources_named() {
        let synced = app("Synced", "Healthy", json!({}));
        let drifted = app("OutOfSync", "Degraded", json!({}));
        let events = transitions(Some(&synced), &drifted, 1_000);
        let reasons: Vec<_> = events.iter().map(|e| e.reason.clone()).collect();
        assert_eq!(reasons, ["ApplicationOutOfSync", "ApplicationDegraded"]);
        assert!(events[0].description.contains("Deployment shop/web"), "{}", events[0].description);
        assert!(events[0].description.contains("abc123"));
        assert!(events[1].description.contains("exceeded its progress deadline"), "{}", events[1].description);
        assert_eq!((events[0].level, events[1].level), (Level::Warning, Level::Error));
        assert_eq!(events[0].title, "Argo CD Application argocd/shop is OutOfSync");
        assert!(transitions(Some(&drifted), &drifted, 2_000).is_empty(), "no change, no event");
        assert!(transitions(None, &drifted, 2_000).is_empty(), "no earlier state: nothing is known to have changed");
        let missing = app("Synced", "Missing", json!({}));
        assert_eq!(transitions(Some(&synced), &missing, 3_000)[0].reason, "ApplicationMissing");
    }

    #[test]
    fn a_failed_sync_is_one_row_however_often_it_is_seen() {
        let op = json!({"operationState": {"phase": "Failed", "message": "one or more objects failed to apply",
            "startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:00:05Z"}});
        let failed = app("OutOfSync", "Healthy", op);
        let first = transitions(None, &failed, 1_000);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].reason, "ApplicationSyncFailed");
        assert_eq!(first[0].description, "one or more objects failed to apply");
        let finished: k8s_openapi::jiff::Timestamp = "2026-12-01T10:00:05Z".parse().unwrap();
        assert_eq!(first[0].at_ms, finished.as_millisecond(), "at the operation's finish");
        let restarted = transitions(None, &failed, 9_000);
        assert_eq!(restarted[0].key, first[0].key, "a restart finds the same row");
        assert!(transitions(Some(&failed), &failed, 9_000).is_empty());
        let running = app(
            "OutOfSync",
            "Healthy",
            json!({"operationState": {"phase": "Running", "startedAt": "2026-12-01T11:00:00Z"}}),
        );
        assert!(transitions(None, &running, 1_000).is_empty());
    }
}
