//! Argo CD Applications as the operator follows them: the slim shape read from the watch
//! (only the fields used; everything else is skipped while parsing), the compact record kept
//! per Application, the summary both status surfaces show, and the drift and failure
//! transitions that become events. Pure.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::NamespaceResourceScope;
use kube9_api::argocd::ApplicationsSummary;
use kube9_store::{EventRow, EventType, Severity};
use serde::{Deserialize, Deserializer};

use crate::history::event::{Object, own};

/// Resources kept per Application: only the out-of-sync or unhealthy ones, to name them in
/// events (the tree reads the Application itself).
pub const MAX_PROBLEMS: usize = 20;
/// Resources named in one event's description.
const NAMED_IN_EVENT: usize = 10;

/// An Application as the watch reads it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WatchedApp {
    #[serde(deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Spec,
    #[serde(default)]
    pub status: Status,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Spec {
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub destination: Destination,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Destination {
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default)]
    pub sync: SyncStatus,
    #[serde(default)]
    pub health: HealthStatus,
    #[serde(default)]
    pub operation_state: Option<OperationState>,
    #[serde(default)]
    pub resources: Vec<ResourceStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SyncStatus {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct HealthStatus {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// One managed resource in the Application's status.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ResourceStatus {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub health: Option<HealthStatus>,
}

/// Only name, namespace, uid and resourceVersion: annotations (a last-applied copy of the
/// whole object, often) and managed fields are skipped while parsing.
fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Slim {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
    }
    let s = Slim::deserialize(d)?;
    Ok(ObjectMeta {
        name: s.name,
        namespace: s.namespace,
        uid: s.uid,
        resource_version: s.resource_version,
        ..Default::default()
    })
}

impl kube::Resource for WatchedApp {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Application".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "argoproj.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "applications".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

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
    /// The compact record of a watched Application.
    pub fn from_app(app: WatchedApp) -> Record {
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
                r.health =
                    r.health.map(|h| HealthStatus { message: h.message.map(|m| crate::base::truncate(&m, 200)), ..h });
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
            health_message: status.health.message.map(|m| crate::base::truncate(&m, 500)),
            operation: status.operation_state,
            problems,
            problem_count,
        }
    }

    fn object(&self) -> Object {
        Object {
            kind: Some("Application".into()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
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

/// The events one change of an Application makes (`before` is None when the operator has no
/// earlier state of it: first sight, or its start). Drift and health changes are recorded only
/// when seen happening (`at_ms` makes each one its own row); a failed sync operation is keyed
/// by the operation's start, so it is one row however often it is seen, restarts included.
pub fn transitions(before: Option<&Record>, after: &Record, at_ms: i64) -> Vec<EventRow> {
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
            events.push(own(
                EventType::Cluster,
                Severity::Warning,
                "ApplicationOutOfSync",
                &format!("Argo CD Application {app} is OutOfSync"),
                &description,
                after.object(),
                &key("OutOfSync"),
                at_ms,
            ));
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
            let severity = if after.health == "Degraded" { Severity::Error } else { Severity::Warning };
            events.push(own(
                EventType::Cluster,
                severity,
                &format!("Application{}", after.health),
                &format!("Argo CD Application {app} is {}", after.health),
                &description,
                after.object(),
                &key(&after.health),
                at_ms,
            ));
        }
    }
    if let Some(op) = &after.operation
        && matches!(op.phase.as_deref(), Some("Failed" | "Error"))
        && before.and_then(|b| b.operation.as_ref()) != Some(op)
    {
        let started = op.started_at.clone().unwrap_or_else(|| at_ms.to_string());
        let at = op.finished_at.as_deref().and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok());
        let at = at.map_or(at_ms, |t| t.as_millisecond());
        events.push(own(
            EventType::Cluster,
            Severity::Error,
            "ApplicationSyncFailed",
            &format!("Argo CD Application {app}: sync {}", op.phase.as_deref().unwrap_or("Failed").to_lowercase()),
            op.message.as_deref().unwrap_or("the sync operation failed"),
            after.object(),
            &format!("{}:SyncFailed:{started}", after.uid),
            at,
        ));
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
        let bare: WatchedApp = serde_json::from_value(json!({"metadata": {"name": "x", "namespace": "y"}})).unwrap();
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
        let reasons: Vec<_> = events.iter().map(|e| e.reason.clone().unwrap()).collect();
        assert_eq!(reasons, ["ApplicationOutOfSync", "ApplicationDegraded"]);
        assert!(events[0].description.contains("Deployment shop/web"), "{}", events[0].description);
        assert!(events[0].description.contains("abc123"));
        assert!(events[1].description.contains("exceeded its progress deadline"), "{}", events[1].description);
        assert_eq!((events[0].severity.as_str(), events[1].severity.as_str()), ("warning", "error"));
        assert_eq!(events[0].object_kind.as_deref(), Some("Application"));
        assert!(transitions(Some(&drifted), &drifted, 2_000).is_empty(), "no change, no event");
        assert!(transitions(None, &drifted, 2_000).is_empty(), "no earlier state: nothing is known to have changed");
        let missing = app("Synced", "Missing", json!({}));
        assert_eq!(transitions(Some(&synced), &missing, 3_000)[0].reason.as_deref(), Some("ApplicationMissing"));
    }

    #[test]
    fn a_failed_sync_is_one_row_however_often_it_is_seen() {
        let op = json!({"operationState": {"phase": "Failed", "message": "one or more objects failed to apply",
            "startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:00:05Z"}});
        let failed = app("OutOfSync", "Healthy", op);
        let first = transitions(None, &failed, 1_000);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].reason.as_deref(), Some("ApplicationSyncFailed"));
        assert_eq!(first[0].description, "one or more objects failed to apply");
        let finished: k8s_openapi::jiff::Timestamp = "2026-12-01T10:00:05Z".parse().unwrap();
        assert_eq!(first[0].first_seen, finished.as_millisecond(), "at the operation's finish");
        let restarted = transitions(None, &failed, 9_000);
        assert_eq!(restarted[0].uid, first[0].uid, "a restart finds the same row");
        assert!(transitions(Some(&failed), &failed, 9_000).is_empty());
        let running = app(
            "OutOfSync",
            "Healthy",
            json!({"operationState": {"phase": "Running", "startedAt": "2026-12-01T11:00:00Z"}}),
        );
        assert!(transitions(None, &running, 1_000).is_empty());
    }
}
