//! What keeps the UI safe to open: a per-process token in every form, the Origin check on
//! every POST, and the headers on every answer (a strict Content-Security-Policy: no inline
//! script or style, nothing from another origin).

/// The Content-Security-Policy of every page: only this origin's script, style and fetches, no
/// inline code, no frames, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A fresh random token for this process (32 bytes, hex): a page's forms carry it, and a POST
/// without it is refused.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a POST may proceed: the token matches (compared in constant time) and the Origin
/// header, when the browser sends one, names the host the request was sent to. A browser sends
/// Origin on every cross-site POST, so another site's form fails here even before the token.
pub fn post_allowed(
    token: &str,
    sent_token: &str,
    origin: Option<&str>,
    host: Option<&str>,
) -> Result<(), &'static str> {
    if !same_bytes(token.as_bytes(), sent_token.as_bytes()) {
        return Err("the form's token is missing or stale: reload the page and try again");
    }
    match (origin, host) {
        (None, _) => Ok(()),
        (Some(origin), Some(host)) if origin_host(origin) == Some(host) => Ok(()),
        _ => Err("refused: the request came from another site (its Origin is not this UI)"),
    }
}

/// `host[:port]` of an Origin such as `http://127.0.0.1:8484`.
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request's `Host` header names this UI: localhost (or a name under `.localhost`),
/// an IP address, or one of the `--allowed-host` names. A page of another site that points a
/// name of its own at this address (DNS rebinding) is then its own origin to the browser, and
/// could read every page and post with a matching Origin and the token it read; its requests
/// carry its own name as Host, and are refused here. No Host (HTTP/1.0) is refused too.
pub fn host_allowed(host: Option<&str>, allowed: &[String]) -> bool {
    let Some(host) = host else { return false };
    let name = match host.strip_prefix('[') {
        // [IPv6]:port
        Some(rest) => return rest.split_once(']').is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || allowed.iter().any(|a| a.trim().trim_end_matches('.').eq_ignore_ascii_case(&name))
}

/// Whether listening on `address` needs `--allow-remote`.
pub fn needs_allow_remote(address: &std::net::SocketAddr) -> bool {
    !address.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_localhost_ip_addresses_and_allowed_names_reach_the_ui() {
        let none: Vec<String> = Vec::new();
        for host in
            ["127.0.0.1:8484", "localhost:8484", "LOCALHOST", "ui.localhost:80", "10.1.2.3", "[::1]:8484", "localhost."]
        {
            assert!(host_allowed(Some(host), &none), "{host}");
        }
        for host in [
            "evil.example:8484",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "[nonsense]:1",
            "",
        ] {
            assert!(!host_allowed(Some(host), &none), "{host}");
        }
        assert!(!host_allowed(None, &none), "no Host at all");
        let allowed = vec!["kube9.example.org".to_owned()];
        assert!(host_allowed(Some("kube9.example.org"), &allowed));
        assert!(host_allowed(Some("Kube9.Example.org:443"), &allowed));
        assert!(!host_allowed(Some("other.example.org"), &allowed));
    }

    #[test]
    fn a_post_needs_the_token_and_a_matching_origin() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, new_token());
        assert!(post_allowed(&token, &token, Some("http://127.0.0.1:8484"), Some("127.0.0.1:8484")).is_ok());
        assert!(post_allowed(&token, &token, None, Some("127.0.0.1:8484")).is_ok());
        assert!(post_allowed(&token, "", None, None).is_err());
        assert!(post_allowed(&token, &token[1..], None, None).is_err());
        let other = post_allowed(&token, &token, Some("https://evil.example"), Some("127.0.0.1:8484"));
        assert!(other.unwrap_err().contains("another site"));
        assert!(post_allowed(&token, &token, Some("null"), Some("127.0.0.1:8484")).is_err());
        assert!(post_allowed(&token, &token, Some("http://127.0.0.1:8484/x"), Some("127.0.0.1:8484")).is_err());
    }

    #[test]
    fn only_loopback_listens_without_the_flag() {
        assert!(!needs_allow_remote(&"127.0.0.1:8484".parse().unwrap()));
        assert!(!needs_allow_remote(&"[::1]:8484".parse().unwrap()));
        assert!(needs_allow_remote(&"0.0.0.0:8484".parse().unwrap()));
        assert!(needs_allow_remote(&"10.1.2.3:80".parse().unwrap()));
    }

    #[test]
    fn the_policy_allows_no_inline_code_and_no_other_origin() {
        assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval") && !CSP.contains("http"));
        assert!(CSP.starts_with("default-src 'none'"));
    }
}
