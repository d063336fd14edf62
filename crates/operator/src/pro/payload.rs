//! The upload body: the newest collections with every real name replaced by its mock name
//! (the rule and the masking are `kube9_privacy::names`), checked by the validator against
//! every name, namespace and identifying label value the collectors saw before anyone may send
//! it, so a name that slipped out anywhere else is caught. Pure.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube9_privacy::names::{self, obfuscate};
use kube9_privacy::{Forbidden, Key, Leak, Mapping};

use crate::base::time::rfc3339;
use crate::collections::store::Collection;

/// A body ready to send, and the mapping that reads the answer.
#[derive(Debug)]
pub struct Payload {
    pub body: Vec<u8>,
    pub mapping: Mapping,
    pub forbidden: Forbidden,
}

/// The mapping for the names these collections refer to, and every word they must not show.
pub fn guard(key: &Key, collections: &[Arc<Collection>]) -> (Mapping, Forbidden) {
    names::guard(key, collections.iter().map(|c| (&c.data, &c.words)))
}

/// Builds and validates the body for these collections. A `Leak` means nothing may be sent.
pub fn build(key: &Key, cluster_id: &str, collections: &[Arc<Collection>], now: Timestamp) -> Result<Payload, Leak> {
    let (mapping, forbidden) = guard(key, collections);
    let body = serde_json::json!({
        "clusterId": cluster_id,
        "operatorVersion": env!("CARGO_PKG_VERSION"),
        "sentAt": rfc3339(now),
        "collections": collections.iter().map(|c| serde_json::json!({
            "type": c.collector.name(),
            "collectedAt": rfc3339(c.collected_at),
            "data": obfuscate(&c.data, &mapping),
        })).collect::<Vec<_>>(),
    });
    kube9_privacy::check(&body, &forbidden)?;
    let body = serde_json::to_vec(&body).unwrap_or_default();
    Ok(Payload { body, mapping, forbidden })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use kube9_collect::Collector;
    use kube9_privacy::names::NAMESPACE;
    use serde_json::{Map, Value};

    use super::*;

    fn key() -> Key {
        Key::from_bytes(&[7; 32]).unwrap()
    }

    fn collection(collector: Collector, data: Value, words: &[&str]) -> Arc<Collection> {
        Arc::new(Collection {
            collector,
            collected_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            data,
            words: words.iter().map(|w| w.to_string()).collect(),
        })
    }

    #[test]
    fn references_and_namespace_maps_are_rewritten_and_nothing_else() {
        let data = serde_json::json!({
            "workloads": [{"kind": "Deployment", "namespace": "shop", "name": "checkout", "replicas": 1}],
            "byNamespace": {"shop": {"Deployment": 1}},
            "provider": "aws",
        });
        let payload = build(
            &key(),
            "cls_0123456789ab",
            &[collection(Collector::ConfigurationPatterns, data, &["checkout", "shop", "payments-team"])],
            "2026-11-23T10:01:00Z".parse().unwrap(),
        )
        .unwrap();
        let body: Value = serde_json::from_slice(&payload.body).unwrap();
        let data = &body["collections"][0]["data"];
        let name = data["workloads"][0]["name"].as_str().unwrap();
        let ns = data["workloads"][0]["namespace"].as_str().unwrap();
        assert!(name.starts_with("deployment-") && ns.starts_with("namespace-"), "{name} {ns}");
        assert_eq!(payload.mapping.real(name), Some(("Deployment", "checkout")));
        assert_eq!(data["byNamespace"][ns]["Deployment"], 1);
        assert_eq!((data["provider"].as_str(), data["workloads"][0]["replicas"].as_i64()), (Some("aws"), Some(1)));
        assert_eq!(body["collections"][0]["type"], "configurationPatterns");
        assert_eq!(body["sentAt"], "2026-11-23T10:01:00Z");
    }

    #[test]
    fn a_name_outside_a_reference_stops_the_upload_without_saying_it() {
        // A collector bug: a container name in a free-text field.
        let data = serde_json::json!({"workloads": [{"kind": "Deployment", "name": "web", "note": "sidecar-zq"}]});
        let leak = build(
            &key(),
            "cls_0123456789ab",
            &[collection(Collector::ConfigurationPatterns, data, &["sidecar-zq"])],
            Timestamp::UNIX_EPOCH,
        )
        .unwrap_err();
        assert_eq!(leak.pointer, "/collections/0/data/workloads/0/note");
        assert!(!leak.to_string().contains("sidecar-zq"));
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{2,20}[a-z0-9]".prop_filter("not a fixed word of the payload", |n| {
            !["aws", "rules", "deployment", "namespace"].contains(&n.as_str()) && !n.starts_with("deployment-")
        })
    }

    proptest! {
        /// Whatever the names, no real one is in the body and every mock maps back.
        #[test]
        fn no_generated_name_survives_obfuscation(
            objects in prop::collection::vec((name(), name(), name()), 1..40),
        ) {
            let workloads: Vec<Value> = objects.iter().map(|(ns, n, _)| {
                serde_json::json!({"kind": "Deployment", "namespace": ns, "name": n, "replicas": 2})
            }).collect();
            let by_ns: Map<String, Value> = objects.iter().map(|(ns, _, _)| (ns.clone(), serde_json::json!({"Pod": 3}))).collect();
            let labels: Vec<&str> = objects.iter().map(|(_, _, l)| l.as_str()).collect();
            let mut words: HashSet<&str> = labels.iter().copied().collect();
            words.extend(objects.iter().flat_map(|(ns, n, _)| [ns.as_str(), n.as_str()]));
            let words: Vec<&str> = words.into_iter().collect();
            let collections = [
                collection(Collector::ConfigurationPatterns, serde_json::json!({"workloads": workloads}), &words),
                collection(Collector::ResourceInventory, serde_json::json!({"byNamespace": by_ns}), &words),
            ];
            let payload = build(&key(), "cls_0123456789ab", &collections, Timestamp::UNIX_EPOCH).unwrap();
            let text = String::from_utf8(payload.body.clone()).unwrap();
            let tokens: HashSet<&str> = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
                .collect();
            for word in &words {
                prop_assert!(!tokens.contains(word), "{} leaked", word);
            }
            for (ns, n, _) in &objects {
                let mock = payload.mapping.mock("Deployment", n).unwrap();
                prop_assert_eq!(payload.mapping.real(mock), Some(("Deployment", n.as_str())));
                prop_assert!(payload.mapping.mock(NAMESPACE, ns).is_some());
            }
        }
    }
}
