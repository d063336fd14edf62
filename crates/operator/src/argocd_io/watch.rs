//! Follows Argo CD with watches (no polling): the `applications.argoproj.io` CRD and the
//! argocd-server Deployments decide detection; while the CRD is served, the Applications are
//! watched into compact records (at most `max_applications`), their drift and failures go to
//! the event history, and the summary is published (at most once a second) for the status
//! reconciler to write into both status surfaces.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use kube9_api::argocd::{ApplicationsSummary, ArgoCdError, ArgoCdStatus};
use kube9_argocd::detect::{self, APPLICATIONS_CRD, SERVER_SELECTOR, Server};
use kube9_argocd::record::{self, Level, Record, Transition};
use kube9_argocd::tree::TREE_KINDS;
use kube9_store::{EventType, Severity, Write};
use tokio::sync::watch;
use tokio::time::Instant;

use super::listed::ListedApp;
use crate::base::backoff::{Outage, WatchBackoff};
use crate::base::list;
use crate::base::time::rfc3339;
use crate::history::event::{Object, own};
use crate::history::writer::Recorder;

/// Fewest time between two published summaries: a burst of status changes is one write.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// How long a first publication waits for the Applications' first list, so detection and the
/// summary usually arrive in one write.
const LIST_GRACE: Duration = Duration::from_secs(5);

/// What the task needs.
pub struct Settings {
    /// Where argocd-server is looked for (None: every namespace).
    pub namespace: Option<String>,
    /// Most Applications followed.
    pub max_applications: usize,
}

type Events<K> = BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>;

/// The Applications known, and the ones past the cap.
#[derive(Default)]
struct Index {
    records: HashMap<String, Record>,
    omitted: HashSet<String>,
    /// While a (re)list is under way: what it has seen so far.
    relist: Option<(HashMap<String, Record>, HashSet<String>)>,
    /// When the Applications were last listed in full, or a change altered the counts.
    collected_at: Option<Timestamp>,
}

fn key(app: &ListedApp) -> String {
    format!(
        "{}/{}",
        app.metadata.namespace.as_deref().unwrap_or_default(),
        app.metadata.name.as_deref().unwrap_or_default()
    )
}

impl Index {
    /// Folds one watch event in; returns the history rows it makes.
    fn apply(&mut self, event: watcher::Event<ListedApp>, cap: usize, now: Timestamp) -> Vec<Write> {
        let at = now.as_millisecond();
        let mut rows = Vec::new();
        match event {
            watcher::Event::Init => self.relist = Some((HashMap::new(), HashSet::new())),
            watcher::Event::InitApply(obj) => {
                let k = key(&obj);
                let record = Record::from_app(obj.into());
                rows.extend(events(self.records.get(&k), &record, at));
                let (records, omitted) = self.relist.get_or_insert_with(Default::default);
                if records.len() < cap {
                    records.insert(k, record);
                } else {
                    omitted.insert(k);
                }
            }
            watcher::Event::InitDone => {
                if let Some((records, omitted)) = self.relist.take() {
                    self.records = records;
                    self.omitted = omitted;
                }
                self.collected_at = Some(now);
            }
            watcher::Event::Apply(obj) => {
                let k = key(&obj);
                let record = Record::from_app(obj.into());
                rows.extend(events(self.records.get(&k), &record, at));
                if self.records.contains_key(&k) || self.records.len() < cap {
                    self.omitted.remove(&k);
                    self.records.insert(k, record);
                } else {
                    self.omitted.insert(k);
                }
            }
            watcher::Event::Delete(obj) => {
                let k = key(&obj);
                self.records.remove(&k);
                self.omitted.remove(&k);
            }
        }
        rows
    }

    fn summary(&self, at: &str) -> ApplicationsSummary {
        record::summary(self.records.values(), self.omitted.len() as u64, at)
    }
}

/// The history rows of one change of an Application.
fn events(before: Option<&Record>, after: &Record, at_ms: i64) -> impl Iterator<Item = Write> {
    let object = Object {
        kind: Some("Application".into()),
        namespace: Some(after.namespace.clone()),
        name: Some(after.name.clone()),
    };
    record::transitions(before, after, at_ms).into_iter().map(move |t| Write::Event(row(&object, t)))
}

fn row(object: &Object, t: Transition) -> kube9_store::EventRow {
    let severity = match t.level {
        Level::Warning => Severity::Warning,
        Level::Error => Severity::Error,
    };
    own(EventType::Cluster, severity, &t.reason, &t.title, &t.description, object.clone(), &t.key, t.at_ms)
}

/// Runs until `shutdown` completes, publishing on `tx`.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    history: Recorder,
    outage: Outage,
    tx: watch::Sender<Option<ArgoCdStatus>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd_events: Events<CustomResourceDefinition> =
        watcher(crds, watcher::Config::default().fields(&format!("metadata.name={APPLICATIONS_CRD}")))
            .backoff(WatchBackoff::new(&outage))
            .boxed();
    let deployments: Api<Deployment> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut server_events: Events<Deployment> =
        watcher(deployments, watcher::Config::default().labels(SERVER_SELECTOR))
            .backoff(WatchBackoff::new(&outage))
            .boxed();
    let mut app_events: Option<Events<ListedApp>> = None;

    // What the watches have said so far (None: not yet listed).
    let mut crd: Option<bool> = None;
    let mut crd_relist: Option<bool> = None;
    let mut servers: Option<BTreeMap<String, Server>> = None;
    let mut servers_relist: Option<BTreeMap<String, Server>> = None;
    let mut index = Index::default();
    let mut tree: Option<Result<(), ArgoCdError>> = None;
    let mut detection = detect::Detection::default();
    // Whether detection has been decided once (both watches listed).
    let mut decided = false;
    let mut last_checked = Timestamp::now();
    let mut dirty = false;
    // Not before `throttle_until` (one publication a second); the loop wakes at `wake_at`.
    let mut throttle_until = Instant::now();
    let mut wake_at = Instant::now();
    let mut apps_started: Option<Instant> = None;

    let shutdown = shutdown;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            Some(event) = crd_events.next() => match event {
                Ok(watcher::Event::Init) => crd_relist = Some(false),
                Ok(watcher::Event::InitApply(c)) => crd_relist = Some(detect::crd_served(&c)),
                Ok(watcher::Event::InitDone) => crd = crd_relist.take().or(Some(false)),
                Ok(watcher::Event::Apply(c)) => crd = Some(detect::crd_served(&c)),
                Ok(watcher::Event::Delete(_)) => crd = Some(false),
                Err(e) => tracing::warn!(error = %e, "watching the Argo CD Application CRD; retrying"),
            },
            Some(event) = server_events.next() => {
                let name = |d: &Deployment| format!("{}/{}", d.metadata.namespace.as_deref().unwrap_or_default(), d.metadata.name.as_deref().unwrap_or_default());
                match event {
                    Ok(watcher::Event::Init) => servers_relist = Some(BTreeMap::new()),
                    Ok(watcher::Event::InitApply(d)) => {
                        servers_relist.get_or_insert_with(BTreeMap::new).insert(name(&d), Server::of(&d));
                    }
                    Ok(watcher::Event::InitDone) => servers = Some(servers_relist.take().unwrap_or_default()),
                    Ok(watcher::Event::Apply(d)) => {
                        servers.get_or_insert_with(BTreeMap::new).insert(name(&d), Server::of(&d));
                    }
                    Ok(watcher::Event::Delete(d)) => {
                        servers.get_or_insert_with(BTreeMap::new).remove(&name(&d));
                    }
                    Err(e) => tracing::warn!(error = %e, "watching argocd-server Deployments; retrying"),
                }
            }
            Some(event) = next(&mut app_events) => match event {
                Ok(event) => {
                    let listed = matches!(event, watcher::Event::InitDone);
                    // Counted only for changes outside a (re)list: a list is counted once, at its end.
                    let live = index.relist.is_none() && matches!(event, watcher::Event::Apply(_) | watcher::Event::Delete(_));
                    let before = live.then(|| index.summary(""));
                    let now = Timestamp::now();
                    for row in index.apply(event, settings.max_applications, now) {
                        history.record(row);
                    }
                    let changed = before.is_some_and(|b| !record::same_counts(&b, &index.summary("")));
                    if listed || changed {
                        index.collected_at = Some(now);
                        dirty = true;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watching Argo CD Applications; retrying"),
            },
            _ = tokio::time::sleep_until(wake_at), if dirty => {}
        }

        // Detection needs both watches to have listed once.
        let (Some(crd_served), Some(known)) = (crd, &servers) else { continue };
        let list: Vec<Server> = known.values().cloned().collect();
        let now = detect::decide(crd_served, &list, settings.namespace.as_deref());
        if now != detection || !decided {
            if now.detected != detection.detected || !decided {
                tracing::info!(detected = now.detected, namespace = ?now.namespace, version = ?now.version, "Argo CD detection");
            }
            tree = if now.detected { Some(probe_tree(&client).await) } else { None };
            detection = now;
            decided = true;
            last_checked = Timestamp::now();
            dirty = true;
        }
        // Applications are watched while their CRD is served.
        match (crd_served, app_events.is_some()) {
            (true, false) => {
                let api: Api<ListedApp> = Api::all(client.clone());
                app_events = Some(watcher(api, watcher::Config::default()).backoff(WatchBackoff::new(&outage)).boxed());
                apps_started = Some(Instant::now());
            }
            (false, true) => {
                app_events = None;
                apps_started = None;
                index = Index::default();
                dirty = true;
            }
            _ => {}
        }
        let listing = match apps_started {
            Some(at) if detection.detected && index.collected_at.is_none() => Some(at + LIST_GRACE),
            _ => None,
        };
        let ready_at = throttle_until.max(listing.unwrap_or(throttle_until));
        if dirty && Instant::now() >= ready_at {
            let status = render(&detection, &tree, &index, last_checked);
            tx.send_replace(Some(status));
            dirty = false;
            throttle_until = Instant::now() + PUBLISH_EVERY;
        } else {
            wake_at = ready_at;
        }
    }
}

async fn next<K>(events: &mut Option<Events<K>>) -> Option<Result<watcher::Event<K>, watcher::Error>> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

/// What both status surfaces say.
fn render(
    detection: &detect::Detection,
    tree: &Option<Result<(), ArgoCdError>>,
    index: &Index,
    last_checked: Timestamp,
) -> ArgoCdStatus {
    let detected = detection.detected;
    ArgoCdStatus {
        detected,
        namespace: detection.namespace.clone(),
        version: detection.version.clone(),
        last_checked: rfc3339(last_checked),
        resource_tree_capable: detected.then_some(matches!(tree, Some(Ok(())))),
        resource_tree_last_error: match tree {
            Some(Err(e)) if detected => Some(e.clone()),
            _ => None,
        },
        applications: index.collected_at.filter(|_| detected).map(|at| index.summary(&rfc3339(at))),
    }
}

/// Whether the operator may list everything the resource tree reads (one small list of each;
/// a kind the server does not serve is left out of trees, not a failure).
pub async fn probe_tree(client: &kube::Client) -> Result<(), ArgoCdError> {
    for kind in TREE_KINDS {
        let gvk = GroupVersionKind::gvk(kind.group, kind.version, kind.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        if let Err(e) = api.list_metadata(&kube::api::ListParams::default().limit(1)).await {
            let code = match list::status_code(&e) {
                Some(403) => "forbidden",
                // Not served in this version on this server: the tree goes without that kind.
                Some(404) => continue,
                _ => "unavailable",
            };
            return Err(ArgoCdError {
                code: code.into(),
                message: crate::base::truncate(&format!("cannot list {}: {e}", kind.plural), 500),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn app(name: &str, sync: &str) -> ListedApp {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "argocd", "uid": name},
            "spec": {"project": "default"}, "status": {"sync": {"status": sync}, "health": {"status": "Healthy"}}}))
        .unwrap()
    }

    #[test]
    fn the_index_keeps_at_most_the_cap_and_counts_the_rest() {
        let now = Timestamp::UNIX_EPOCH;
        let mut index = Index::default();
        index.apply(watcher::Event::Init, 2, now);
        for name in ["a", "b", "c"] {
            index.apply(watcher::Event::InitApply(app(name, "Synced")), 2, now);
        }
        assert!(index.records.is_empty(), "nothing replaces the records before the list is complete");
        index.apply(watcher::Event::InitDone, 2, now);
        let s = index.summary("t");
        assert_eq!((s.stored_count, s.omitted_count), (2, Some(1)));
        index.apply(watcher::Event::Delete(app("a", "Synced")), 2, now);
        index.apply(watcher::Event::Apply(app("d", "OutOfSync")), 2, now);
        let s = index.summary("t");
        assert_eq!((s.stored_count, s.sync_status_counts.get("OutOfSync")), (2, Some(&1)));
    }

    #[test]
    fn a_relist_compares_with_what_was_known() {
        let now = Timestamp::UNIX_EPOCH;
        let mut index = Index::default();
        index.apply(watcher::Event::Apply(app("a", "Synced")), 10, now);
        index.apply(watcher::Event::Init, 10, now);
        let rows = index.apply(watcher::Event::InitApply(app("a", "OutOfSync")), 10, now);
        assert_eq!(rows.len(), 1, "the drift that happened while the watch was down");
        index.apply(watcher::Event::InitDone, 10, now);
        assert_eq!(index.records["argocd/a"].sync, "OutOfSync");
    }

    #[test]
    fn a_transition_is_a_row_about_the_application() {
        let at = Timestamp::UNIX_EPOCH + k8s_openapi::jiff::SignedDuration::from_millis(1_000);
        let mut index = Index::default();
        index.apply(watcher::Event::Apply(app("a", "Synced")), 10, at);
        let rows = index.apply(watcher::Event::Apply(app("a", "OutOfSync")), 10, at);
        let [Write::Event(row)] = rows.as_slice() else { panic!("one event row: {rows:?}") };
        assert_eq!(row.object_kind.as_deref(), Some("Application"));
        assert_eq!((row.object_namespace.as_deref(), row.object_name.as_deref()), (Some("argocd"), Some("a")));
        assert_eq!((row.severity.as_str(), row.event_type.as_str()), ("warning", "cluster"));
        assert_eq!(row.uid, "kube9:cluster:ApplicationOutOfSync:a:OutOfSync:1000", "the transition's key");
        assert_eq!(row.first_seen, 1_000);
    }
}
