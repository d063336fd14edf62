//! Security, secrets written where anyone who reads the manifest reads them: in environment
//! variables and in ConfigMaps. A value is judged on its own (known key formats, private
//! keys, credentials in URLs) and, under a name that says "secret", as a literal; a name that
//! only names a secret (`DB_SECRET_NAME`, `TOKEN_FILE`) is not one.

use kube9_api::common::{Pillar, Severity};

use crate::check::Check;
use crate::check::Run::Each;
use crate::subject::Subject;

const S: Pillar = Pillar::Security;

/// Words that make a variable or key name a secret's.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "PRIVATEKEY",
    "CREDENTIAL",
    "ACCESS_KEY",
    "ACCESSKEY",
    "AUTH_KEY",
    "CLIENT_KEY",
    "SIGNING_KEY",
    "ENCRYPTION_KEY",
];

/// Endings that make a name refer to a secret rather than hold one.
const REFERENCE_ENDINGS: &[&str] = &[
    "_NAME",
    "_NAMES",
    "_FILE",
    "_FILES",
    "_FILENAME",
    "_PATH",
    "_PATHS",
    "_ID",
    "_DIR",
    "_REF",
    "_NAMESPACE",
    "_ENABLED",
    "_TTL",
    "_LENGTH",
    "_EXPIRY",
    "_EXPIRATION",
    "_TIMEOUT",
    "_HEADER",
    "_TYPE",
    "_URL",
    "_URI",
    "_AUDIENCE",
    "_ISSUER",
    "_SCOPE",
    "_SCOPES",
    "_ALGORITHM",
    "_MODE",
    "_PROVIDER",
    "_ENDPOINT",
    "_HOST",
    "_PORT",
    "_USER",
    "_USERNAME",
    "_KIND",
    "_FORMAT",
    "_VERSION",
    "_SIZE",
    "_LIMIT",
    "_INTERVAL",
    "_DURATION",
    "_REQUIRED",
    "_POLICY",
    "_MOUNT",
    "_LOCATION",
    "_KEYS",
    "_FIELD",
    "_PREFIX",
    "_SUFFIX",
];

/// Beginnings that make a name a switch or a reference to a secret rather than one.
const REFERENCE_BEGINNINGS: &[&str] = &["EXISTING_", "USE_", "ENABLE_", "DISABLE_", "SKIP_", "REQUIRE_", "NO_"];

/// Whether `name` (an env var or data key, any case and separator) says it holds a secret.
pub(crate) fn secret_name(name: &str) -> bool {
    // UPPER_SNAKE, kebab-case, dotted and camelCase all become UPPER_SNAKE.
    let mut upper = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            upper.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        upper.push(if matches!(c, '-' | '.' | ' ') { '_' } else { c.to_ascii_uppercase() });
    }
    SECRET_WORDS.iter().any(|w| upper.contains(w))
        && !REFERENCE_ENDINGS.iter().any(|e| upper.ends_with(e))
        && !REFERENCE_BEGINNINGS.iter().any(|b| upper.starts_with(b))
}

/// Values that are not literals: references, templates, paths, flags and numbers.
fn placeholder(value: &str) -> bool {
    let v = value.trim().trim_matches(['"', '\'']);
    v.is_empty()
        || v.contains("$(")
        || v.contains("${")
        || v.contains("{{")
        || v.starts_with('/')
        || v.starts_with("file:")
        || v.starts_with("vault:")
        || v.starts_with('<')
        || matches!(v.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no" | "none" | "null" | "~")
        || v.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b.is_ascii_whitespace())
        || v.bytes().all(|b| b == b'*' || b == b'x' || b == b'X')
}

/// The kind of well-known credential `value` holds, if any.
pub(crate) fn known_format(value: &str) -> Option<&'static str> {
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    for token in value.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '=')) {
        if let Some((scheme, rest)) = token.split_once("://")
            && !scheme.is_empty()
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+')
            && let Some((userinfo, _)) = rest.split_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && !password.contains('/')
            && !placeholder(password)
        {
            return Some("a password in a URL");
        }
    }
    for token in value.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '=' | ':' | '(' | ')'))
    {
        let alnum = |t: &str| t.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let body = |t: &str, n: usize, extra: &[u8]| {
            t.len() >= n && t.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        };
        if token.len() == 20
            && ["AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"].iter().any(|p| token.starts_with(p))
            && alnum(token)
        {
            return Some("an AWS access key");
        }
        if ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]
            .iter()
            .any(|p| token.strip_prefix(p).is_some_and(|b| body(b, 36, b"")))
            || token.strip_prefix("github_pat_").is_some_and(|b| body(b, 40, b"_"))
        {
            return Some("a GitHub token");
        }
        if ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"]
            .iter()
            .any(|p| token.strip_prefix(p).is_some_and(|b| body(b, 10, b"-")))
        {
            return Some("a Slack token");
        }
        if token.len() == 39 && token.strip_prefix("AIza").is_some_and(|b| body(b, 35, b"-_")) {
            return Some("a Google API key");
        }
        if ["sk_live_", "rk_live_"].iter().any(|p| token.strip_prefix(p).is_some_and(|b| body(b, 16, b""))) {
            return Some("a Stripe key");
        }
        if token.starts_with("eyJ") && token.len() > 40 && token.matches('.').count() == 2 && body(token, 40, b"-_.=") {
            return Some("a JSON Web Token");
        }
    }
    None
}

/// Whether `value` looks like a generated key or token: one word of 20 or more characters
/// mixing letters and digits with the spread of random text (Shannon entropy of at least
/// 3.5 bits a character).
pub(crate) fn random_looking(value: &str) -> bool {
    let v = value.trim();
    if v.len() < 20 || v.len() > 512 || v.contains(char::is_whitespace) || !v.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    if !v.bytes().any(|b| b.is_ascii_alphabetic()) || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    let mut counts = [0u32; 256];
    for b in v.bytes() {
        counts[b as usize] += 1;
    }
    let n = v.len() as f64;
    let entropy: f64 =
        counts.iter().filter(|&&c| c > 0).map(|&c| -(f64::from(c) / n) * (f64::from(c) / n).log2()).sum();
    entropy >= 3.5
}

/// `tlsSecret: web-tls`, `credentialsSecret: jaeger-creds`: a name ending in "secret" whose
/// value is a Kubernetes object name refers to a Secret object.
fn names_a_secret_object(name: &str, value: &str) -> bool {
    let v = value.trim().trim_matches(['"', '\'']);
    name.to_ascii_uppercase().ends_with("SECRET")
        && v.contains('-')
        && v.len() <= 253
        && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Why a literal `value` under `name` is a secret, or None.
pub fn judge(name: &str, value: &str) -> Option<&'static str> {
    if let Some(format) = known_format(value) {
        return Some(format);
    }
    if !secret_name(name) || placeholder(value) || names_a_secret_object(name, value) {
        return None;
    }
    Some(if random_looking(value) { "a random-looking token" } else { "a literal under a secret's name" })
}

/// A secret in a ConfigMap value: a known format anywhere, a literal under a secret's key, or
/// a `password = literal` line in an embedded configuration file.
fn in_config(key: &str, value: &str) -> Option<&'static str> {
    if let Some(format) = known_format(value) {
        return Some(format);
    }
    if !value.contains('\n') {
        return judge(key, value);
    }
    value.lines().find_map(|line| {
        let line = line.trim().trim_start_matches("- ");
        if line.starts_with('#') || line.starts_with("//") {
            return None;
        }
        let (k, v) = line.split_once([':', '='])?;
        let k = k.trim().trim_matches(['"', '\'']);
        (!k.contains(' ')
            && secret_name(k)
            && !placeholder(v)
            && !names_a_secret_object(k, v)
            && !v.trim().starts_with(['{', '[', '|', '>', '&', '*']))
        .then_some("a literal under a secret's name in an embedded file")
    })
}

pub static CHECKS: &[Check] = &[Check {
    id: "security.secret-in-configmap",
    pillar: S,
    title: "Secrets written into ConfigMaps",
    severity: Severity::High,
    rationale: "ConfigMaps are not treated as secret: they are readable with far broader permissions than Secrets, shown by dashboards and kept in Git. A key format, a private key or a literal under a secret's name does not belong there.",
    remediation: "Move the value into a Secret (or an external secret store) and mount or reference it from there.",
    reads: &["ConfigMap"],
    run: Each(|s, e| {
        for cm in &s.config_maps {
            let found: Vec<String> = cm
                .data
                .iter()
                .flatten()
                .filter_map(|(k, v)| in_config(k, v).map(|why| format!("{k} ({why})")))
                .collect();
            e.expect(
                found.is_empty(),
                Subject::new("v1", "ConfigMap", &cm.metadata),
                None,
                format!("holds secrets: {}", found.join(", ")),
            );
        }
    }),
}];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::*;

    #[test]
    fn names_that_name_a_secret_are_not_secrets_and_values_are_judged() {
        assert_eq!(judge("DB_SECRET_NAME", "db-credentials"), None);
        assert_eq!(judge("TOKEN_FILE", "/var/run/token"), None);
        assert_eq!(judge("CLIENT_SECRET_ID", "abc"), None);
        assert_eq!(judge("API_KEY_PATH", "/etc/key"), None);
        assert_eq!(judge("ACCESS_KEY", "AKIAZ7Q4TNH2WXKE6QNB"), Some("an AWS access key"));
        assert_eq!(judge("CONFIG", "-----BEGIN RSA PRIVATE KEY-----\nMIIE"), Some("a private key"));
        assert_eq!(judge("DATABASE_URL", "postgres://app:s3cr3t@db:5432/app"), Some("a password in a URL"));
        assert_eq!(judge("DATABASE_URL", "postgres://app:$(DB_PASSWORD)@db:5432/app"), None);
        assert_eq!(judge("DB_PASSWORD", "hunter2"), Some("a literal under a secret's name"));
        assert_eq!(judge("DB_PASSWORD", "$(FROM_SECRET)"), None);
        assert_eq!(judge("SESSION_TOKEN", "q8Zr2LmP0xVb7TnW4yKd"), Some("a random-looking token"));
        assert_eq!(judge("TOKEN_TTL", "3600"), None);
        assert_eq!(judge("secretName", "tls-cert"), None, "camelCase names are split too");
        assert_eq!(judge("existingSecret", "db"), None);
        assert_eq!(judge("credentialsSecret", "jaeger-creds"), None, "names a Secret object");
        assert_eq!(judge("clientSecret", "s3cr3t"), Some("a literal under a secret's name"));
        assert_eq!(judge("GIT_COMMIT", "4f9c2d1a8b7e6f5a4d3c2b1a0f9e8d7c6b5a4f3e"), None, "a hash under a plain name");
        assert_eq!(judge("GITHUB", "ghp_0123456789abcdefghijABCDEFGHIJ012345"), Some("a GitHub token"));
    }

    #[test]
    fn config_maps_with_keys_or_embedded_passwords_are_flagged() {
        let cm = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": data});
        flags_and_passes(
            "security.secret-in-configmap",
            &[
                cm(json!({"aws": "AKIAZ7Q4TNH2WXKE6QNB"})),
                cm(json!({"app.ini": "[db]\nhost = db\npassword = hunter2\n"})),
                cm(json!({"client_secret": "s3cr3t-value"})),
            ],
            &[cm(json!({"log_level": "info", "app.ini": "[db]\npassword = ${DB_PASSWORD}\n", "secret_name": "db"}))],
        );
    }
}
