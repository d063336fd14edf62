//! The last gate before an upload: a payload that contains a real name, namespace or label
//! value the operator knows, or anything that looks like a secret, is not sent.
//!
//! Every string in the payload is checked, object keys included (collections are often keyed
//! by name). A string is split into tokens on the characters a Kubernetes name cannot hold,
//! and a token equal to a forbidden word is a leak; matching whole tokens, not substrings,
//! keeps a short real name such as `db` from condemning every mock name whose hex digits
//! happen to contain it. A leak is reported by where it is (a JSON pointer) and what it is,
//! never by the offending value, so the report itself can be logged.

use std::collections::HashSet;

use serde_json::Value;

/// Words that must not leave the cluster.
#[derive(Clone, Debug, Default)]
pub struct Forbidden {
    words: HashSet<String>,
}

impl Forbidden {
    pub fn new<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Forbidden {
        Forbidden { words: words.into_iter().map(Into::into).filter(|w| !w.is_empty()).collect() }
    }

    pub fn extend<S: Into<String>>(&mut self, words: impl IntoIterator<Item = S>) {
        self.words.extend(words.into_iter().map(Into::into).filter(|w| !w.is_empty()));
    }
}

/// What a leak is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakKind {
    /// A real object name, namespace or label value.
    RealName,
    /// A private key, a token or another secret-looking value.
    SecretLike,
}

/// Where the first leak was found; the value itself is deliberately absent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the payload was not sent: {} at {pointer}", match .kind {
    LeakKind::RealName => "a real name",
    LeakKind::SecretLike => "a secret-like value",
})]
pub struct Leak {
    /// JSON pointer to the string (for a key, the pointer of its object and the key's position).
    pub pointer: String,
    pub kind: LeakKind,
}

/// Checks every string in `payload`; the first leak found is returned.
pub fn check(payload: &Value, forbidden: &Forbidden) -> Result<(), Leak> {
    walk(payload, &mut String::new(), forbidden)
}

fn walk(value: &Value, pointer: &mut String, forbidden: &Forbidden) -> Result<(), Leak> {
    match value {
        Value::String(text) => inspect(text, pointer, forbidden),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            let len = pointer.len();
            pointer.push_str(&format!("/{i}"));
            let result = walk(item, pointer, forbidden);
            pointer.truncate(len);
            result
        }),
        Value::Object(map) => map.iter().enumerate().try_for_each(|(i, (key, item))| {
            // The key's own position, not its text: the text may be what leaks.
            inspect(key, &mut format!("{pointer} (key #{i})"), forbidden)?;
            let len = pointer.len();
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            let result = walk(item, pointer, forbidden);
            pointer.truncate(len);
            result
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn inspect(text: &str, pointer: &str, forbidden: &Forbidden) -> Result<(), Leak> {
    let leak = |kind| Err(Leak { pointer: pointer.to_owned(), kind });
    if secret_like(text) {
        return leak(LeakKind::SecretLike);
    }
    if forbidden.words.contains(text) || words(text).any(|w| forbidden.words.contains(w)) {
        return leak(LeakKind::RealName);
    }
    Ok(())
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
}

/// Runs of the characters a Kubernetes name or label value may hold, without the punctuation
/// neither may start or end with: `checkout.` at the end of a sentence is the word `checkout`.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !name_char(c)).map(|t| t.trim_matches(['-', '.', '_'])).filter(|w| !w.is_empty())
}

/// `text` with every word (as the validator splits them) that `replace` maps swapped for its
/// replacement; everything else is kept as it is.
pub fn replace_words<R: AsRef<str>>(text: &str, mut replace: impl FnMut(&str) -> Option<R>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(name_char) {
        let (before, run) = rest.split_at(start);
        out.push_str(before);
        let end = run.find(|c: char| !name_char(c)).unwrap_or(run.len());
        let (token, after) = run.split_at(end);
        let word = token.trim_start_matches(['-', '.', '_']);
        let lead = &token[..token.len() - word.len()];
        let word = word.trim_end_matches(['-', '.', '_']);
        let trail = &token[lead.len() + word.len()..];
        out.push_str(lead);
        match replace(word) {
            Some(new) if !word.is_empty() => out.push_str(new.as_ref()),
            _ => out.push_str(word),
        }
        out.push_str(trail);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Private keys, JWTs (service-account tokens), cloud access keys, and long random-looking
/// strings.
fn secret_like(text: &str) -> bool {
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY") {
        return true;
    }
    text.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '=' | ':'))
        .any(|word| jwt(word) || aws_key(word) || random_looking(word))
}

fn jwt(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| p.len() >= 8 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

fn aws_key(word: &str) -> bool {
    word.len() == 20
        && (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// At least 32 characters of base64/hex alphabet, with upper, lower and digits mixed and a
/// high character entropy: what generated passwords and tokens look like and names do not.
fn random_looking(word: &str) -> bool {
    if word.len() < 32 || !word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_')) {
        return false;
    }
    let classes = [char::is_ascii_uppercase, char::is_ascii_lowercase, char::is_ascii_digit]
        .iter()
        .filter(|class| word.chars().any(|c| class(&c)))
        .count();
    if classes < 3 {
        return false;
    }
    let mut counts = [0u32; 128];
    for b in word.bytes() {
        counts[usize::from(b & 0x7f)] += 1;
    }
    let n = word.len() as f64;
    let entropy: f64 =
        counts.iter().filter(|&&c| c > 0).map(|&c| -(f64::from(c) / n) * (f64::from(c) / n).log2()).sum();
    entropy > 4.0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::obfuscate::{KEY_LEN, Key, Mapping};

    #[test]
    fn a_real_name_anywhere_is_refused_by_position_not_value() {
        let forbidden = Forbidden::new(["payments-api", "team-blue"]);
        assert_eq!(check(&json!({"kind": "Deployment", "name": "deployment-a7f3b9"}), &forbidden), Ok(()));
        let nested = json!({"items": [{"labels": {"team": "x"}}, {"note": "scaled payments-api to 3"}]});
        let leak = check(&nested, &forbidden).unwrap_err();
        assert_eq!((leak.pointer.as_str(), leak.kind), ("/items/1/note", LeakKind::RealName));
        assert!(!leak.to_string().contains("payments-api"), "{leak}");
        let keyed = json!({"countsByNamespace": {"team-blue": 4}});
        let leak = check(&keyed, &forbidden).unwrap_err();
        assert_eq!(leak.pointer, "/countsByNamespace (key #0)");
        assert!(!leak.to_string().contains("team-blue"));
    }

    #[test]
    fn whole_tokens_match_so_short_names_do_not_condemn_mock_names() {
        let forbidden = Forbidden::new(["db", "a7"]);
        assert_eq!(check(&json!(["statefulset-a7f3db", "database"]), &forbidden), Ok(()));
        assert!(check(&json!(["svc db:5432"]), &forbidden).is_err());
    }

    #[test]
    fn a_name_at_the_end_of_a_sentence_is_still_a_name() {
        let forbidden = Forbidden::new(["web"]);
        assert!(check(&json!("blame web."), &forbidden).is_err());
        assert!(check(&json!("(web)"), &forbidden).is_err());
        assert!(check(&json!("web.example"), &forbidden).is_ok(), "a longer name is another name");
    }

    #[test]
    fn words_are_replaced_and_everything_else_kept() {
        let swap = |w: &str| (w == "web").then_some("deployment-abc123");
        assert_eq!(
            replace_words("web: fix web. Not webby, (web)!", swap),
            "deployment-abc123: fix deployment-abc123. Not webby, (deployment-abc123)!"
        );
        assert_eq!(replace_words("", swap), "");
        assert_eq!(replace_words("..--", swap), "..--");
    }

    #[test]
    fn secret_like_values_are_refused() {
        let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlc2lnbmF0dXJl";
        for secret in [
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----",
            jwt,
            "token: AKIAIOSFODNN7EXAMPLE",
            "password=Zx9vQ2mL7pR4tK8wN3bF6hJ1cY5dG0sA",
        ] {
            let leak = check(&json!({"env": [{"value": secret}]}), &Forbidden::default()).unwrap_err();
            assert_eq!(leak.kind, LeakKind::SecretLike, "{secret}");
        }
        for fine in [
            "deployment-a7f3b9",
            "registry.example/app:1.4.2",
            "sha256:0123456789abcdef0123456789abcdef01234567",
            "Pods without a readinessProbe are sent traffic before they can serve it",
        ] {
            assert_eq!(check(&json!(fine), &Forbidden::default()), Ok(()), "{fine}");
        }
    }

    fn dns_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{3,20}[a-z0-9]"
    }

    proptest! {
        /// The privacy guarantee on generated clusters: a payload built from mock names
        /// passes, and the same payload with any one real name left in is refused.
        #[test]
        fn obfuscated_payloads_pass_and_any_real_name_left_in_is_caught(
            objects in prop::collection::btree_map((dns_name(), dns_name()), dns_name(), 1..60),
            seed in 1u8..,
            leak_at in any::<prop::sample::Index>(),
        ) {
            // (namespace, name) -> label value
            let key = Key::from_bytes(&[seed; KEY_LEN]).unwrap();
            let names = objects.iter().flat_map(|((ns, name), label)| {
                [("Namespace", ns.as_str()), ("Deployment", name.as_str()), ("Label", label.as_str())]
            });
            let mapping = Mapping::build(&key, names);
            let forbidden = Forbidden::new(mapping.real_names().map(str::to_owned));
            let payload = |reveal: Option<usize>| {
                let items: Vec<Value> = objects.iter().enumerate().map(|(i, ((ns, name), label))| {
                    let show = |kind: &str, real: &str| if reveal == Some(i) { real.to_owned() } else {
                        mapping.mock(kind, real).unwrap().to_owned()
                    };
                    json!({
                        "kind": "Deployment",
                        "namespace": show("Namespace", ns),
                        "name": show("Deployment", name),
                        "labels": {"app": show("Label", label)},
                        "replicas": 1,
                    })
                }).collect();
                let by_namespace: serde_json::Map<String, Value> = objects.keys()
                    .map(|(ns, _)| (mapping.mock("Namespace", ns).unwrap().to_owned(), json!(1)))
                    .collect();
                json!({"inventory": items, "countsByNamespace": by_namespace})
            };
            prop_assert_eq!(check(&payload(None), &forbidden), Ok(()));
            let revealed = leak_at.index(objects.len());
            let leak = check(&payload(Some(revealed)), &forbidden);
            prop_assert!(matches!(&leak, Err(Leak { kind: LeakKind::RealName, .. })), "{:?}", leak);
        }
    }
}
