//! Store rows from Kubernetes Events (`events.k8s.io/v1` and `core/v1`) and for the operator's
//! own events. Pure.

use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use kube9_store::{EventRow, EventType, Severity};

use super::severity::severity;
use crate::base::truncate;

/// The longest title and description kept.
const MAX_TITLE: usize = 300;
const MAX_DESCRIPTION: usize = 2000;

/// The object an event is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Object {
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// A Kubernetes Event the operator saw, in the shape both API groups share.
struct Seen<'a> {
    uid: &'a str,
    type_: &'a str,
    reason: &'a str,
    note: &'a str,
    object: Object,
    count: i64,
    first: Option<i64>,
    last: Option<i64>,
    created: Option<i64>,
}

/// An `events.k8s.io/v1` Event; None without a uid.
pub fn from_events_v1(event: &Event) -> Option<EventRow> {
    let regarding = event.regarding.as_ref();
    let series = event.series.as_ref();
    Some(row(Seen {
        uid: event.metadata.uid.as_deref()?,
        type_: event.type_.as_deref().unwrap_or_default(),
        reason: event.reason.as_deref().unwrap_or_default(),
        note: event.note.as_deref().unwrap_or_default(),
        object: Object {
            kind: regarding.and_then(|r| r.kind.clone()),
            namespace: regarding.and_then(|r| r.namespace.clone()),
            name: regarding.and_then(|r| r.name.clone()),
        },
        count: series.map(|s| i64::from(s.count)).or(event.deprecated_count.map(i64::from)).unwrap_or(1),
        first: event
            .deprecated_first_timestamp
            .as_ref()
            .map(|t| t.0.as_millisecond())
            .or(event.event_time.as_ref().map(|t| t.0.as_millisecond())),
        last: series
            .map(|s| s.last_observed_time.0.as_millisecond())
            .or(event.deprecated_last_timestamp.as_ref().map(|t| t.0.as_millisecond()))
            .or(event.event_time.as_ref().map(|t| t.0.as_millisecond())),
        created: event.metadata.creation_timestamp.as_ref().map(|t| t.0.as_millisecond()),
    }))
}

/// A `core/v1` Event (servers without `events.k8s.io/v1`); None without a uid.
pub fn from_core_v1(event: &CoreEvent) -> Option<EventRow> {
    let object = &event.involved_object;
    let series = event.series.as_ref();
    Some(row(Seen {
        uid: event.metadata.uid.as_deref()?,
        type_: event.type_.as_deref().unwrap_or_default(),
        reason: event.reason.as_deref().unwrap_or_default(),
        note: event.message.as_deref().unwrap_or_default(),
        object: Object { kind: object.kind.clone(), namespace: object.namespace.clone(), name: object.name.clone() },
        count: series.and_then(|s| s.count).or(event.count).map(i64::from).unwrap_or(1),
        first: event
            .first_timestamp
            .as_ref()
            .map(|t| t.0.as_millisecond())
            .or(event.event_time.as_ref().map(|t| t.0.as_millisecond())),
        last: series
            .and_then(|s| s.last_observed_time.as_ref())
            .map(|t| t.0.as_millisecond())
            .or(event.last_timestamp.as_ref().map(|t| t.0.as_millisecond()))
            .or(event.event_time.as_ref().map(|t| t.0.as_millisecond())),
        created: event.metadata.creation_timestamp.as_ref().map(|t| t.0.as_millisecond()),
    }))
}

fn row(seen: Seen<'_>) -> EventRow {
    let object = seen.object;
    let severity =
        severity(seen.type_, seen.reason, object.kind.as_deref(), object.namespace.as_deref(), object.name.as_deref());
    let first = seen.first.or(seen.created).or(seen.last).unwrap_or_default();
    let last = seen.last.or(seen.created).unwrap_or(first).max(first);
    let reason = if seen.reason.is_empty() { "Event" } else { seen.reason };
    EventRow {
        id: 0,
        uid: seen.uid.to_owned(),
        event_type: EventType::Cluster.as_str().into(),
        severity: severity.as_str().into(),
        title: truncate(&format!("{reason}: {}", describe(&object)), MAX_TITLE),
        description: truncate(seen.note, MAX_DESCRIPTION),
        object_kind: object.kind,
        object_namespace: object.namespace.filter(|ns| !ns.is_empty()),
        object_name: object.name,
        reason: Some(reason.to_owned()),
        count: seen.count.max(1),
        first_seen: first,
        last_seen: last,
    }
}

fn describe(object: &Object) -> String {
    let name = match (&object.namespace, &object.name) {
        (Some(ns), Some(name)) if !ns.is_empty() => format!("{ns}/{name}"),
        (_, Some(name)) => name.clone(),
        _ => "-".into(),
    };
    format!("{} {name}", object.kind.as_deref().unwrap_or("object"))
}

/// One of the operator's own events, happening once at `at_ms`. `key` makes its uid unique
/// (a run id, a time): the same key again updates the same row.
#[allow(clippy::too_many_arguments)] // every field of the row, named at the call
pub fn own(
    event_type: EventType,
    severity: Severity,
    reason: &str,
    title: &str,
    description: &str,
    object: Object,
    key: &str,
    at_ms: i64,
) -> EventRow {
    EventRow {
        id: 0,
        uid: format!("kube9:{}:{reason}:{key}", event_type.as_str()),
        event_type: event_type.as_str().into(),
        severity: severity.as_str().into(),
        title: truncate(title, MAX_TITLE),
        description: truncate(description, MAX_DESCRIPTION),
        object_kind: object.kind,
        object_namespace: object.namespace,
        object_name: object.name,
        reason: Some(reason.to_owned()),
        count: 1,
        first_seen: at_ms,
        last_seen: at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::events::v1::EventSeries;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap()
    }

    #[test]
    fn an_events_v1_series_gives_its_count_and_last_observation() {
        let event = Event {
            metadata: ObjectMeta {
                uid: Some("u-1".into()),
                creation_timestamp: Some(Time(at(1_000))),
                ..Default::default()
            },
            type_: Some("Warning".into()),
            reason: Some("BackOff".into()),
            note: Some("Back-off restarting failed container".into()),
            regarding: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some("web".into()),
                name: Some("web-1".into()),
                ..Default::default()
            }),
            event_time: MicroTime(at(2_000)).into(),
            series: Some(EventSeries { count: 7, last_observed_time: MicroTime(at(9_000)) }),
            ..Default::default()
        };
        let row = from_events_v1(&event).unwrap();
        assert_eq!((row.uid.as_str(), row.severity.as_str(), row.count), ("u-1", "error", 7));
        assert_eq!((row.first_seen, row.last_seen), (2_000, 9_000));
        assert_eq!(row.title, "BackOff: Pod web/web-1");
        assert_eq!(row.object_namespace.as_deref(), Some("web"));
        assert_eq!(row.event_type, "cluster");
    }

    #[test]
    fn a_core_event_gives_its_count_and_timestamps() {
        let event = CoreEvent {
            metadata: ObjectMeta { uid: Some("u-2".into()), ..Default::default() },
            type_: Some("Normal".into()),
            reason: Some("Scheduled".into()),
            message: Some("assigned".into()),
            involved_object: ObjectReference {
                kind: Some("Node".into()),
                name: Some("n1".into()),
                ..Default::default()
            },
            count: Some(3),
            first_timestamp: Some(Time(at(1_000))),
            last_timestamp: Some(Time(at(5_000))),
            ..Default::default()
        };
        let row = from_core_v1(&event).unwrap();
        assert_eq!((row.count, row.first_seen, row.last_seen, row.severity.as_str()), (3, 1_000, 5_000, "info"));
        assert_eq!((row.title.as_str(), row.object_namespace), ("Scheduled: Node n1", None));
        assert!(from_core_v1(&CoreEvent::default()).is_none(), "no uid, no row");
    }

    #[test]
    fn an_own_event_is_keyed_by_its_type_reason_and_key() {
        let row =
            own(EventType::Assessment, Severity::Error, "AssessmentFailed", "t", "d", Object::default(), "run-1", 5);
        assert_eq!(row.uid, "kube9:assessment:AssessmentFailed:run-1");
        assert_eq!((row.count, row.first_seen, row.last_seen), (1, 5, 5));
    }
}
