//! Gathers the snapshot the checks read from the cluster.
//!
//! Every kind is listed page by page (bounded memory: a page is folded into the snapshot, which
//! keeps only what the checks read, before the next is fetched), in the first version the
//! cluster serves. A kind that is not served, or that the operator may not list, is recorded
//! as unavailable; the checks that need it say so and the others still run.

use std::collections::HashSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::Resource;
use kube::api::{DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind, Request};
use kube9_checks::Snapshot;

/// A kind the checks read: its name in `Check::reads`, plural, and the versions to try.
struct Kind {
    name: &'static str,
    group: &'static str,
    versions: &'static [&'static str],
    plural: &'static str,
}

const KINDS: &[Kind] = &[
    Kind { name: "Namespace", group: "", versions: &["v1"], plural: "namespaces" },
    Kind { name: "Node", group: "", versions: &["v1"], plural: "nodes" },
    Kind { name: "Pod", group: "", versions: &["v1"], plural: "pods" },
    Kind { name: "Service", group: "", versions: &["v1"], plural: "services" },
    Kind { name: "ResourceQuota", group: "", versions: &["v1"], plural: "resourcequotas" },
    Kind { name: "LimitRange", group: "", versions: &["v1"], plural: "limitranges" },
    Kind { name: "PersistentVolumeClaim", group: "", versions: &["v1"], plural: "persistentvolumeclaims" },
    Kind { name: "Deployment", group: "apps", versions: &["v1"], plural: "deployments" },
    Kind { name: "StatefulSet", group: "apps", versions: &["v1"], plural: "statefulsets" },
    Kind { name: "DaemonSet", group: "apps", versions: &["v1"], plural: "daemonsets" },
    Kind { name: "ReplicaSet", group: "apps", versions: &["v1"], plural: "replicasets" },
    Kind { name: "Job", group: "batch", versions: &["v1"], plural: "jobs" },
    Kind { name: "CronJob", group: "batch", versions: &["v1", "v1beta1"], plural: "cronjobs" },
    Kind { name: "Ingress", group: "networking.k8s.io", versions: &["v1", "v1beta1"], plural: "ingresses" },
    Kind { name: "NetworkPolicy", group: "networking.k8s.io", versions: &["v1"], plural: "networkpolicies" },
    Kind { name: "PodDisruptionBudget", group: "policy", versions: &["v1", "v1beta1"], plural: "poddisruptionbudgets" },
    Kind {
        name: "HorizontalPodAutoscaler",
        group: "autoscaling",
        versions: &["v2", "v2beta2"],
        plural: "horizontalpodautoscalers",
    },
    Kind { name: "Role", group: "rbac.authorization.k8s.io", versions: &["v1"], plural: "roles" },
    Kind { name: "ClusterRole", group: "rbac.authorization.k8s.io", versions: &["v1"], plural: "clusterroles" },
    Kind { name: "RoleBinding", group: "rbac.authorization.k8s.io", versions: &["v1"], plural: "rolebindings" },
    Kind {
        name: "ClusterRoleBinding",
        group: "rbac.authorization.k8s.io",
        versions: &["v1"],
        plural: "clusterrolebindings",
    },
];

/// Objects per list page.
const PAGE: u32 = 500;

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

/// Whether a label value could identify something: `true`, `12`, `v2` or a version such as
/// `1.4.0` cannot (and the payload's own versions must stay sendable).
pub fn identifying(value: &str) -> bool {
    let version = value.strip_prefix('v').unwrap_or(value);
    let version_like = version.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    value.len() >= 3 && !version_like && !matches!(value, "true" | "false")
}

/// Well-known labels whose values (`amd64`, `linux`) the collectors report as fixed words:
/// they name no one's object.
const REPORTED_LABELS: &[&str] =
    &["kubernetes.io/arch", "beta.kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/os"];

/// Adds an object's name, namespace and identifying label values to `words`.
pub(crate) fn note_words(object: &serde_json::Value, words: &mut HashSet<String>) {
    let metadata = &object["metadata"];
    for field in ["name", "namespace"] {
        if let Some(text) = metadata[field].as_str() {
            words.insert(text.to_owned());
        }
    }
    if let Some(labels) = metadata["labels"].as_object() {
        let reported = |key: &str| REPORTED_LABELS.contains(&key);
        words.extend(
            labels
                .iter()
                .filter(|(key, _)| !reported(key))
                .filter_map(|(_, v)| v.as_str())
                .filter(|v| identifying(v))
                .map(str::to_owned),
        );
    }
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
    for kind in KINDS.iter().filter(|k| needed.contains(&k.name)) {
        if !list_kind(client, kind, &mut gathered, max_objects, purpose).await? {
            gathered.snapshot.unavailable.push(kind.name.to_owned());
        }
    }
    Ok(gathered)
}

/// One page of a list, as the API server sends it (items are parsed once, straight into JSON
/// values the snapshot takes over, rather than into typed objects and back).
#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<serde_json::Value>,
    #[serde(default)]
    metadata: ListMeta,
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
        let request = Request::new(DynamicObject::url_path(&resource, None));
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let list = request.list(&params).map_err(kube::Error::BuildRequest)?;
            let page: Page = match client.request(list).await {
                Ok(page) => page,
                // Not served in this version: try the next one.
                Err(kube::Error::Api(e)) if e.code == 404 => break,
                Err(kube::Error::Api(e)) if e.code == 403 => {
                    tracing::warn!(kind = kind.name, error = %e.message, "may not list; checks that need it are skipped");
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            };
            for mut object in page.items {
                gathered.objects += 1;
                if let Some(words) = &mut gathered.words {
                    note_words(&object, words);
                }
                if purpose == Purpose::Count {
                    let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
                    *gathered.counts.entry((kind.name.to_owned(), namespace)).or_default() += 1;
                    continue;
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
            }
            if max_objects > 0 && gathered.snapshot.len() > max_objects {
                return Err(GatherError::TooLarge { limit: max_objects, kind: kind.name });
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(true),
            }
        }
    }
    Ok(false)
}

/// Every kind any check reads, for callers that run all checks.
pub fn all_kinds() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_namespaces_and_identifying_label_values_are_words() {
        let mut words = HashSet::new();
        let object = serde_json::json!({"metadata": {"name": "checkout", "namespace": "shop",
            "labels": {"team": "payments", "enabled": "true", "rev": "12", "v": "v2", "version": "0.1.0",
            "release": "v1.20.2", "build": "1.2-eu", "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"}}});
        note_words(&object, &mut words);
        let mut sorted: Vec<_> = words.into_iter().collect();
        sorted.sort();
        assert_eq!(sorted, ["1.2-eu", "checkout", "payments", "shop"]);
    }

    #[test]
    fn every_kind_a_check_reads_is_gathered() {
        let gathered = all_kinds();
        for check in kube9_checks::registry() {
            for kind in check.reads {
                assert!(gathered.contains(kind), "{} reads {kind}, which is never listed", check.id);
            }
        }
    }

    #[test]
    fn the_charts_cluster_role_lists_exactly_these_kinds() {
        let template = include_str!("../../../../charts/kube9-operator/templates/clusterrole.yaml");
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
        let listed: std::collections::BTreeSet<_> =
            KINDS.iter().map(|k| (k.group.to_owned(), k.plural.to_owned())).collect();
        assert_eq!(granted, listed);
    }
}
