//! Gathers the snapshot the checks and the collectors read from the cluster.
//!
//! Every kind is listed page by page (bounded memory: a page is folded into the snapshot, which
//! keeps only what the checks read, before the next is fetched), in the first version the
//! cluster serves. A kind that is not served, or that the operator may not list, is recorded
//! as unavailable; the checks that need it say so and the others still run.

use std::collections::HashSet;

use kube::Resource;
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube9_checks::Snapshot;
use kube9_checks::kinds::{KINDS, Kind};
use kube9_privacy::names::note_words;

use crate::base::list::{self, ListError};

/// Why gathering stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(
        "the checks would hold more than {limit} objects (stopped while listing {kind}); raise \
         --assessment-max-objects (chart value assessment.maxObjects) together with the memory limit, \
         about 16 KiB per object"
    )]
    TooLarge { limit: usize, kind: &'static str },
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
    /// The checks: the snapshot.
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
                return Err(GatherError::TooLarge { limit: max_objects, kind: kind.name });
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
    // Served in no version: an add-on's kind is simply absent.
    Ok(kube9_checks::kinds::OPTIONAL.contains(&kind.name))
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
