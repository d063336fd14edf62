//! Registration with kube9-server: the API key, the HTTP client, what the cluster sends, and
//! the pure state machine that turns each answer into the next state and the next attempt.

pub mod client;
pub mod identity;
pub mod state;
pub mod task;

pub use state::{Outcome, Policy, Registration, ServerSettings};

/// The kube9 API key. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Accepts a key with surrounding whitespace trimmed; refuses one that cannot be a key.
    /// The reason never contains the value.
    pub fn parse(text: &str) -> Result<ApiKey, &'static str> {
        let key = text.trim();
        if key.is_empty() {
            return Err("the API key is empty");
        }
        if key.len() > 4096 {
            return Err("the API key is longer than 4096 characters");
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the API key contains whitespace or non-printable characters");
        }
        Ok(ApiKey(key.to_owned()))
    }

    /// The value, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = ApiKey::parse("k9_live_abcdef").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert!(!format!("{:?}", Some(key)).contains("abcdef"));
    }

    #[test]
    fn keys_are_trimmed_and_checked() {
        assert_eq!(ApiKey::parse(" k9_x \n").unwrap().expose(), "k9_x");
        assert!(ApiKey::parse("   ").is_err());
        assert!(ApiKey::parse("two words").is_err());
        assert!(ApiKey::parse(&"x".repeat(5000)).is_err());
    }
}
