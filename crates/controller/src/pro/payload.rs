//! The upload body: the newest collections with every real name replaced by its mock name,
//! checked by the validator before anyone may send it.
//!
//! Collected data names objects in two ways only (docs/pro-tier.md): reference objects
//! `{kind, namespace, name}` and the keys of `byNamespace` maps. This module finds those
//! names, builds the mapping for exactly that set, rewrites them, and then validates the whole
//! body against every name, namespace and identifying label value the collectors saw, so a
//! name that slipped out anywhere else is caught.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube9_privacy::{Forbidden, Key, Leak, Mapping};
use serde_json::{Map, Value};

use crate::collect::Collection;
use crate::status::rfc3339;

/// The kind namespaces are obfuscated as.
pub const NAMESPACE: &str = "Namespace";

/// A body ready to send, and the mapping that reads the answer.
#[derive(Debug)]
pub struct Payload {
    pub body: Vec<u8>,
    pub mapping: Mapping,
    pub forbidden: Forbidden,
}

/// Every `(kind, real name)` the data refers to; namespaces as kind `Namespace`.
pub fn references(data: &Value, out: &mut BTreeSet<(String, String)>) {
    match data {
        Value::Object(map) => {
            if let Some((kind, name)) = reference(map) {
                out.insert((kind.to_owned(), name.to_owned()));
            }
            if let Some(ns) = map.get("namespace").and_then(Value::as_str) {
                out.insert((NAMESPACE.to_owned(), ns.to_owned()));
            }
            for (key, value) in map {
                if key == "byNamespace" {
                    for ns in value.as_object().into_iter().flat_map(|m| m.keys()) {
                        out.insert((NAMESPACE.to_owned(), ns.clone()));
                    }
                }
                references(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

fn reference(map: &Map<String, Value>) -> Option<(&str, &str)> {
    Some((map.get("kind")?.as_str()?, map.get("name")?.as_str()?))
}

/// The data with each reference's name and namespace and each `byNamespace` key replaced by
/// its mock name. A name missing from the mapping (it cannot be: the mapping is built from the
/// same walk) becomes `unmapped`, never itself.
pub fn obfuscate(data: &Value, mapping: &Mapping) -> Value {
    let mock = |kind: &str, real: &str| Value::from(mapping.mock(kind, real).unwrap_or("unmapped"));
    match data {
        Value::Object(map) => {
            let named = reference(map);
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                let value = match (key.as_str(), value, &named) {
                    ("name", Value::String(real), Some((kind, _))) => mock(kind, real),
                    ("namespace", Value::String(real), _) => mock(NAMESPACE, real),
                    ("byNamespace", Value::Object(by), _) => Value::Object(
                        by.iter()
                            .map(|(ns, v)| {
                                let key = mapping.mock(NAMESPACE, ns).unwrap_or("unmapped").to_owned();
                                (key, obfuscate(v, mapping))
                            })
                            .collect(),
                    ),
                    _ => obfuscate(value, mapping),
                };
                out.insert(key.clone(), value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|item| obfuscate(item, mapping)).collect()),
        other => other.clone(),
    }
}

/// The mapping for the names these collections refer to, and every word they must not show.
pub fn guard(key: &Key, collections: &[Arc<Collection>]) -> (Mapping, Forbidden) {
    let mut names = BTreeSet::new();
    for collection in collections {
        references(&collection.data, &mut names);
    }
    let mapping = Mapping::build(key, names.iter().map(|(k, n)| (k.as_str(), n.as_str())));
    let mut forbidden = Forbidden::new(names.into_iter().map(|(_, name)| name));
    for collection in collections {
        forbidden.extend(collection.words.iter().cloned());
    }
    (mapping, forbidden)
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

/// A person's note with every real name the mapping knows replaced by its mock name; None
/// when what is left still holds a forbidden word or a secret-like value.
pub fn obfuscate_note(note: &str, mapping: &Mapping, forbidden: &Forbidden) -> Option<String> {
    let mocks: HashMap<&str, &str> = mapping.entries().map(|(_, real, mock)| (real, mock)).collect();
    let out = kube9_privacy::replace_words(note, |word| mocks.get(word).copied());
    kube9_privacy::check(&Value::from(out.as_str()), forbidden).ok().map(|()| out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::collect::Collector;

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

    #[test]
    fn a_note_gets_mock_names_or_is_withheld() {
        let mapping = Mapping::build(&key(), [("Deployment", "checkout")]);
        let mock = mapping.mock("Deployment", "checkout").unwrap().to_owned();
        let forbidden = Forbidden::new(["checkout", "billing-db"]);
        assert_eq!(
            obfuscate_note("checkout: fixed in 2.1, see ticket", &mapping, &forbidden).as_deref(),
            Some(format!("{mock}: fixed in 2.1, see ticket").as_str())
        );
        assert_eq!(
            obfuscate_note("blame checkout.", &mapping, &forbidden).as_deref(),
            Some(format!("blame {mock}.").as_str()),
            "a name ending a sentence"
        );
        assert_eq!(obfuscate_note("blame billing-db", &mapping, &forbidden), None, "a name it cannot map");
        assert_eq!(obfuscate_note("blame billing-db.", &mapping, &forbidden), None, "nor one ending a sentence");
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
