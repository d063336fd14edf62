//! Where real names may appear in what the operator sends, and the words that must never
//! leave: the rule the collectors follow (docs/pro-tier.md) — names only in reference objects
//! `{kind, namespace, name}` and as keys of `byNamespace` maps — and the masking (real → mock)
//! and unmasking (mock → real) built on it.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

use crate::obfuscate::{Key, Mapping};
use crate::validate::Forbidden;

/// The kind namespaces are obfuscated as.
pub const NAMESPACE: &str = "Namespace";

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

/// The mapping for the names this data refers to, and every word it must not show: those
/// names and the `words` the collectors saw.
pub fn guard<'a>(
    key: &Key,
    items: impl IntoIterator<Item = (&'a Value, &'a HashSet<String>)> + Clone,
) -> (Mapping, Forbidden) {
    let mut names = BTreeSet::new();
    for (data, _) in items.clone() {
        references(data, &mut names);
    }
    let mapping = Mapping::build(key, names.iter().map(|(k, n)| (k.as_str(), n.as_str())));
    let mut forbidden = Forbidden::new(names.into_iter().map(|(_, name)| name));
    for (_, words) in items {
        forbidden.extend(words.iter().cloned());
    }
    (mapping, forbidden)
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
pub fn note_words(object: &Value, words: &mut HashSet<String>) {
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

/// A person's note with every real name the mapping knows replaced by its mock name; None
/// when what is left still holds a forbidden word or a secret-like value.
pub fn obfuscate_note(note: &str, mapping: &Mapping, forbidden: &Forbidden) -> Option<String> {
    let mocks: HashMap<&str, &str> = mapping.entries().map(|(_, real, mock)| (real, mock)).collect();
    let out = crate::replace_words(note, |word| mocks.get(word).copied());
    crate::check(&Value::from(out.as_str()), forbidden).ok().map(|()| out)
}

/// Text with each mock name the mapping knows replaced by the real name.
pub fn unmask(text: &str, mapping: &Mapping) -> String {
    crate::replace_words(text, |word| mapping.real(word).map(|(_, real)| real))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::from_bytes(&[7; 32]).unwrap()
    }

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
}
