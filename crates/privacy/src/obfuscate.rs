//! Deterministic, reversible mock names: `my-app` (a Deployment) → `deployment-a7f3b9`.
//!
//! A mock name is the kind and the first hex digits of HMAC-SHA256(key, kind, real name), so
//! the same key always gives the same name (stable across restarts and upgrades while the key
//! Secret is kept) and nobody without the key can go from a mock name back to the real one.
//! Reversing is a lookup in the mapping built from the names the operator knows.
//!
//! Collisions: six hex digits are 24 bits, so among thousands of names two may share a mock.
//! The mapping is built from the whole set in a fixed order (sorted by kind and name), and a
//! name whose mock is already taken gets the next round's digest, two hex digits longer. The
//! result depends only on the key and the set of names, never on the order they arrive in.

use std::collections::{BTreeSet, HashMap};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the per-cluster secret key.
pub const KEY_LEN: usize = 32;

/// Hex digits of a mock name in the first round; each further round adds two.
const FIRST_ROUND_HEX: usize = 6;

/// The per-cluster secret key. Its bytes never appear in Debug output.
#[derive(Clone)]
pub struct Key([u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// A stored key that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the obfuscation key must be {KEY_LEN} bytes, found {0}; delete the Secret to have a new key made")]
    Length(usize),
    #[error("the obfuscation key is all zeros; delete the Secret to have a new key made")]
    Zero,
}

impl Key {
    /// Reads a stored key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, KeyError> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| KeyError::Length(bytes.len()))?;
        if key.iter().all(|b| *b == 0) {
            return Err(KeyError::Zero);
        }
        Ok(Key(key))
    }

    /// The bytes to store (in a Secret).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// `kind-<hex>` for one round of the digest.
    fn mock(&self, kind: &str, real: &str, round: usize) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        // Lengths first, so ("ab", "c") and ("a", "bc") cannot give the same input.
        mac.update(&(kind.len() as u64).to_be_bytes());
        mac.update(kind.as_bytes());
        mac.update(&(real.len() as u64).to_be_bytes());
        mac.update(real.as_bytes());
        mac.update(&(round as u64).to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let digits = (FIRST_ROUND_HEX + 2 * round).min(2 * digest.len());
        let hex: String = digest.iter().flat_map(|b| [b >> 4, b & 0xf]).take(digits).map(hex_digit).collect();
        format!("{}-{hex}", kind.to_ascii_lowercase())
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).expect("a nibble is a hex digit")
}

/// Real names and their mock names, both ways, for one set of names.
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    forward: HashMap<(String, String), String>,
    reverse: HashMap<String, (String, String)>,
}

impl Mapping {
    /// Maps every `(kind, real name)` in `names` (duplicates are fine).
    pub fn build<'a>(key: &Key, names: impl IntoIterator<Item = (&'a str, &'a str)>) -> Mapping {
        let sorted: BTreeSet<(&str, &str)> = names.into_iter().collect();
        let mut mapping = Mapping::default();
        for (kind, real) in sorted {
            let mut round = 0;
            let mock = loop {
                let mock = key.mock(kind, real, round);
                if !mapping.reverse.contains_key(&mock) {
                    break mock;
                }
                round += 1;
            };
            mapping.reverse.insert(mock.clone(), (kind.to_owned(), real.to_owned()));
            mapping.forward.insert((kind.to_owned(), real.to_owned()), mock);
        }
        mapping
    }

    /// The mock name of a real name, when it is in the mapping.
    pub fn mock(&self, kind: &str, real: &str) -> Option<&str> {
        self.forward.get(&(kind.to_owned(), real.to_owned())).map(String::as_str)
    }

    /// The kind and real name behind a mock name, when it is one of ours.
    pub fn real(&self, mock: &str) -> Option<(&str, &str)> {
        self.reverse.get(mock).map(|(kind, real)| (kind.as_str(), real.as_str()))
    }

    pub fn len(&self) -> usize {
        self.forward.len()
    }

    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }

    /// Every `(kind, real name, mock name)`, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.forward.iter().map(|((kind, real), mock)| (kind.as_str(), real.as_str(), mock.as_str()))
    }

    /// Every real name mapped, for the validator.
    pub fn real_names(&self) -> impl Iterator<Item = &str> {
        self.forward.keys().map(|(_, real)| real.as_str())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(seed: u8) -> Key {
        Key::from_bytes(&[seed; KEY_LEN]).unwrap()
    }

    #[test]
    fn a_mock_name_is_the_kind_and_six_hex_digits() {
        let mapping = Mapping::build(&key(7), [("Deployment", "my-app")]);
        let mock = mapping.mock("Deployment", "my-app").unwrap();
        let (kind, hex) = mock.split_once('-').unwrap();
        assert_eq!(kind, "deployment");
        assert!(hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{mock}");
        assert_eq!(mapping.real(mock), Some(("Deployment", "my-app")));
        assert_eq!(mapping.real("deployment-000000"), None);
    }

    #[test]
    fn the_key_decides_the_names_and_is_never_printed() {
        let a = Mapping::build(&key(1), [("Deployment", "my-app")]);
        let b = Mapping::build(&key(2), [("Deployment", "my-app")]);
        assert_ne!(a.mock("Deployment", "my-app"), b.mock("Deployment", "my-app"));
        assert_eq!(format!("{:?}", key(1)), "Key(<redacted>)");
    }

    #[test]
    fn unusable_stored_keys_are_refused_with_what_to_do() {
        assert_eq!(Key::from_bytes(&[1; 16]).unwrap_err(), KeyError::Length(16));
        assert_eq!(Key::from_bytes(&[0; KEY_LEN]).unwrap_err(), KeyError::Zero);
        assert!(KeyError::Zero.to_string().contains("delete the Secret"));
        assert_eq!(key(9).as_bytes(), &[9; KEY_LEN]);
    }

    #[test]
    fn colliding_names_get_distinct_longer_mocks() {
        // Among 20,000 names, 24-bit prefixes collide with near certainty (birthday bound).
        let names: Vec<String> = (0..20_000).map(|i| format!("app-{i}")).collect();
        let mapping = Mapping::build(&key(3), names.iter().map(|n| ("Deployment", n.as_str())));
        assert_eq!(mapping.len(), names.len());
        let longer = names.iter().filter(|n| mapping.mock("Deployment", n).unwrap().len() > "deployment-".len() + 6);
        assert!(longer.count() >= 1, "expected at least one collision to be resolved");
        for name in &names {
            assert_eq!(mapping.real(mapping.mock("Deployment", name).unwrap()), Some(("Deployment", name.as_str())));
        }
    }

    fn dns_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,20}[a-z0-9]"
    }

    proptest! {
        #[test]
        fn every_name_maps_to_a_distinct_mock_and_back(
            names in prop::collection::btree_set(dns_name(), 1..200),
            seed in 1u8..,
        ) {
            let key = key(seed);
            let mapping = Mapping::build(&key, names.iter().map(|n| ("Service", n.as_str())));
            let mocks: BTreeSet<&str> = names.iter().map(|n| mapping.mock("Service", n).unwrap()).collect();
            prop_assert_eq!(mocks.len(), names.len());
            for name in &names {
                let mock = mapping.mock("Service", name).unwrap();
                prop_assert_eq!(mapping.real(mock), Some(("Service", name.as_str())));
                prop_assert_ne!(mock, name.as_str());
            }
        }

        #[test]
        fn the_mapping_depends_on_the_set_not_the_order(
            names in prop::collection::vec(dns_name(), 1..100),
            seed in 1u8..,
        ) {
            let key = key(seed);
            let forward = Mapping::build(&key, names.iter().map(|n| ("Pod", n.as_str())));
            let backward = Mapping::build(&key, names.iter().rev().map(|n| ("Pod", n.as_str())));
            for name in &names {
                prop_assert_eq!(forward.mock("Pod", name), backward.mock("Pod", name));
            }
        }
    }
}
