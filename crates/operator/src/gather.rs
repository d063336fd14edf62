//! Reads the cluster for the checks ([`assess`]: a streamed run) and the collectors
//! ([`gather`]: a snapshot).
//!
//! Every kind is listed page by page, in the first version the cluster serves. A kind that is
//! not served, or that the operator may not list, is recorded as unavailable; the checks that
//! need it say so and the others still run. An Assessment keeps only the kinds the checks look
//! things up in; each page of the others (workloads, Pods, Services, ConfigMaps) is checked and
//! dropped before the next is fetched, so its memory does not grow with the cluster.

use std::collections::HashSet;

use kube::Resource;
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube9_checks::kinds::{KINDS, Kind};
use kube9_checks::{Options, Sink, Snapshot, Stream, Summary};
use kube9_privacy::names::note_words;

use crate::base::list::{self, ListError};

/// Why gathering stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(
        "the run would hold more than {limit} objects (stopped while listing {kind}); raise \
         {setting} together with the memory limit (docs/operations.md says how much each takes)"
    )]
    TooLarge { limit: usize, kind: &'static str, setting: &'static str },
    #[error("the check engine failed: {0}")]
    Engine(String),
}

/// The settings that bound what is held, as the user names them.
const ASSESSMENT_SETTING: &str = "--assessment-max-objects (chart value assessment.maxObjects)";
const COLLECTION_SETTING: &str = "--collection-max-objects (chart value collection.maxObjects)";

/// What a streamed run saw.
#[derive(Debug)]
pub struct Assessed {
    pub summary: Summary,
    /// Objects listed, over every kind.
    pub objects: usize,
    /// Objects the checks could not read (malformed).
    pub skipped: usize,
    /// The most objects held at once besides the page in hand: the kept kinds and the facts.
    pub held: usize,
}

/// Runs the checks `options` selects over the cluster as it reads it: the kept kinds
/// ([`kube9_checks::kinds::kept`]) whole first, then every other kind page by page, each page
/// checked (on a blocking thread) and dropped before the next is fetched. `sink` gets every
/// finding as it is made; the summary keeps the first `max_findings`. Stops once more than
/// `max_held` objects would be held (0: no bound).
pub async fn assess<S: Sink + Send + 'static>(
    client: &kube::Client,
    options: Options,
    max_held: usize,
    max_findings: usize,
    sink: S,
) -> Result<Assessed, GatherError> {
    let needed = options.kinds_needed();
    let kept_kinds: Vec<&str> = needed.iter().copied().filter(|k| kube9_checks::kinds::kept(k)).collect();
    let mut gathered = gather(client, &kept_kinds, max_held, Purpose::Checks).await?;
    // Which version of each streamed kind is served, and whether it may be listed, is asked
    // before any page: a check that reads a kind that cannot be read is skipped, not half run.
    let mut streamed = Vec::new();
    for kind in KINDS.iter().filter(|k| needed.contains(&k.name) && !kube9_checks::kinds::kept(k.name)) {
        let readable =
            !kube9_checks::kinds::NOT_GRANTED_BY_THE_CHART.contains(&kind.name) || may_list(client, kind).await;
        match if readable { served(client, kind).await? } else { Served::Refused } {
            Served::In(resource) => streamed.push((kind, resource)),
            Served::Refused => gathered.snapshot.unavailable.push(kind.name.to_owned()),
            Served::Not => {
                gathered.snapshot.unavailable.push(kind.name.to_owned());
                gathered.snapshot.not_served.push(kind.name.to_owned());
            }
        }
    }
    let mut assessed = Assessed {
        summary: Summary { checks: Vec::new(), findings: Vec::new(), truncated: 0 },
        objects: gathered.objects,
        skipped: gathered.skipped.len(),
        held: gathered.snapshot.len(),
    };
    let kept = gathered.snapshot;
    let mut stream = blocking(move || Stream::new(options, kept, max_findings, sink)).await?;
    for (kind, resource) in streamed {
        let mut pages = list::Pages::new(&DynamicObject::url_path(&resource, None), list::PAGE);
        while let Some(mut items) = pages.next(client).await? {
            assessed.objects += items.len();
            for object in items.iter_mut().filter_map(|o| o.as_object_mut()) {
                // The list does not repeat apiVersion and kind on each item.
                object.insert("apiVersion".into(), resource.api_version.clone().into());
                object.insert("kind".into(), kind.name.into());
            }
            let skipped;
            (stream, skipped) = blocking(move || {
                let skipped = stream.page(items).len();
                (stream, skipped)
            })
            .await?;
            assessed.skipped += skipped;
            assessed.held = assessed.held.max(stream.held());
            if max_held > 0 && stream.held() > max_held {
                return Err(GatherError::TooLarge { limit: max_held, kind: kind.name, setting: ASSESSMENT_SETTING });
            }
        }
    }
    assessed.summary = blocking(move || stream.finish()).await?;
    Ok(assessed)
}

/// Runs `work` on a blocking thread; a panic (a check's) fails the run, not the operator.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, GatherError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        GatherError::Engine(match e.try_into_panic() {
            Ok(payload) => payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a check panicked".to_owned()),
            Err(e) => e.to_string(),
        })
    })
}

/// The first version of `kind` the cluster serves and lets the operator list (one object
/// asked for); None when none is, or listing is forbidden.
async fn served(client: &kube::Client, kind: &'static Kind) -> Result<Served, GatherError> {
    for version in kind.versions {
        let gvk = GroupVersionKind::gvk(kind.group, version, kind.name);
        let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural);
        match list::Pages::new(&DynamicObject::url_path(&resource, None), 1).next(client).await {
            Ok(_) => return Ok(Served::In(resource)),
            Err(e) if list::status_code(&e) == Some(404) => {}
            Err(e) if list::status_code(&e) == Some(403) => {
                tracing::warn!(kind = kind.name, error = %e, "may not list; checks that need it are skipped");
                return Ok(Served::Refused);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Served::Not)
}

/// Whether and how a streamed kind can be listed.
enum Served {
    /// In this version.
    In(ApiResource),
    /// Served, but this identity may not list it.
    Refused,
    /// In no version the checks read.
    Not,
}

/// What gathering saw, besides the snapshot.
#[derive(Debug, Default)]
pub struct Gathered {
    pub snapshot: Snapshot,
    /// Objects listed, over every kind.
    pub objects: usize,
    /// Objects the snapshot could not read (malformed), with why.
    pub skipped: Vec<String>,
    /// When asked for: every name, namespace and identifying label value seen, the words an
    /// upload must not contain.
    pub words: Option<HashSet<String>>,
    /// With `Purpose::Count`: every object listed, by kind and namespace.
    pub counts: kube9_collect::Counts,
}

/// What a gathering is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The kinds an Assessment keeps whole ([`assess`] streams the others).
    Checks,
    /// A collector: the snapshot, and the words an upload built from it must not contain.
    Collect,
    /// The inventory: counts and words only; no object is kept, so there is no bound.
    Count,
}

/// Lists the kinds in `needed` (names as in `Check::reads`), stopping once the snapshot holds
/// more than `max_objects` objects (0: no bound).
pub async fn gather(
    client: &kube::Client,
    needed: &[&str],
    max_objects: usize,
    purpose: Purpose,
) -> Result<Gathered, GatherError> {
    let mut gathered = Gathered { words: (purpose != Purpose::Checks).then(HashSet::new), ..Default::default() };
    if purpose == Purpose::Checks {
        // Deprecated and removed API versions are judged against the server's own version.
        match client.apiserver_version().await {
            Ok(info) => {
                gathered.snapshot.kubernetes_version =
                    kube9_checks::deprecations::parse_version(&format!("{}.{}", info.major, info.minor));
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the server's version; API versions are judged against the newest release")
            }
        }
    }
    gathered.snapshot.taken_at = Some(k8s_openapi::jiff::Timestamp::now());
    for kind in KINDS.iter().filter(|k| needed.contains(&k.name)) {
        // A kind the chart does not grant is asked about first, so that a refusal the chart
        // intends is not a failed request in the API server's audit log and the client's.
        if kube9_checks::kinds::NOT_GRANTED_BY_THE_CHART.contains(&kind.name) && !may_list(client, kind).await {
            gathered.snapshot.unavailable.push(kind.name.to_owned());
            continue;
        }
        if !list_kind(client, kind, &mut gathered, max_objects, purpose).await? {
            gathered.snapshot.unavailable.push(kind.name.to_owned());
        }
    }
    Ok(gathered)
}

/// Whether the operator may list `kind` in every namespace (a SelfSubjectAccessReview, which
/// every authenticated identity may create).
async fn may_list(client: &kube::Client, kind: &Kind) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(kind.group.to_owned()),
                resource: Some(kind.plural.to_owned()),
                verb: Some("list".to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: kube::Api<SelfSubjectAccessReview> = kube::Api::all(client.clone());
    match api.create(&kube::api::PostParams::default(), &review).await {
        Ok(answer) => answer.status.is_some_and(|s| s.allowed),
        Err(e) => {
            tracing::debug!(kind = kind.name, error = %e, "could not ask whether it may list; not listing");
            false
        }
    }
}

/// Lists one kind into the snapshot; false when no version is served or listing is forbidden.
async fn list_kind(
    client: &kube::Client,
    kind: &'static Kind,
    gathered: &mut Gathered,
    max_objects: usize,
    purpose: Purpose,
) -> Result<bool, GatherError> {
    for version in kind.versions {
        let gvk = GroupVersionKind::gvk(kind.group, version, kind.name);
        let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural);
        let listed = list::each_item(client, &DynamicObject::url_path(&resource, None), |mut object| {
            gathered.objects += 1;
            if let Some(words) = &mut gathered.words {
                note_words(&object, words);
            }
            if purpose == Purpose::Count {
                let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
                *gathered.counts.entry((kind.name.to_owned(), namespace)).or_default() += 1;
                return Ok(());
            }
            // The list does not repeat apiVersion and kind on each item. (The snapshot
            // drops status and managedFields: no check reads them.)
            if let Some(map) = object.as_object_mut() {
                map.insert("apiVersion".into(), resource.api_version.clone().into());
                map.insert("kind".into(), kind.name.into());
            }
            for skip in gathered.snapshot.add(object) {
                gathered.skipped.push(skip.to_string());
            }
            if max_objects > 0 && gathered.snapshot.len() > max_objects {
                let setting = if purpose == Purpose::Checks { ASSESSMENT_SETTING } else { COLLECTION_SETTING };
                return Err(GatherError::TooLarge { limit: max_objects, kind: kind.name, setting });
            }
            Ok(())
        })
        .await;
        match listed {
            Ok(()) => return Ok(true),
            // Not served in this version: try the next one.
            Err(ListError::Kube(e)) if list::status_code(&e) == Some(404) => {}
            Err(ListError::Kube(e)) if list::status_code(&e) == Some(403) => {
                tracing::warn!(kind = kind.name, error = %e, "may not list; checks that need it are skipped");
                return Ok(false);
            }
            Err(ListError::Kube(e)) => return Err(e.into()),
            Err(ListError::Stopped(e)) => return Err(e),
        }
    }
    // Served in no version: an add-on's kind is simply absent; another's checks say the
    // cluster does not serve it.
    if kube9_checks::kinds::OPTIONAL.contains(&kind.name) {
        return Ok(true);
    }
    gathered.snapshot.not_served.push(kind.name.to_owned());
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_cluster_role_lists_exactly_these_kinds() {
        let template = include_str!("../../../charts/kube9-operator/templates/clusterrole.yaml");
        let block = template
            .split_once("# checks-read: begin")
            .and_then(|(_, rest)| rest.split_once("# checks-read: end"))
            .expect("the ClusterRole marks the checks' rules")
            .0;
        let rules: Vec<serde_yaml::Value> = serde_yaml::from_str(block).unwrap();
        let mut granted = std::collections::BTreeSet::new();
        for rule in rules {
            assert_eq!(rule["verbs"], serde_yaml::to_value(["list"]).unwrap(), "only list: {rule:?}");
            let group = rule["apiGroups"][0].as_str().unwrap().to_owned();
            for resource in rule["resources"].as_sequence().unwrap() {
                granted.insert((group.clone(), resource.as_str().unwrap().to_owned()));
            }
        }
        let listed: std::collections::BTreeSet<_> = KINDS
            .iter()
            .filter(|k| !kube9_checks::kinds::NOT_GRANTED_BY_THE_CHART.contains(&k.name))
            .map(|k| (k.group.to_owned(), k.plural.to_owned()))
            .collect();
        assert_eq!(granted, listed);
    }
}
