//! Plain values the pages show: names of API enums as the API writes them, times, counts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

/// An API enum as its JSON spelling (`healthy`, `Completed`, `performance-efficiency`).
pub fn name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// An optional API enum, "—" when absent.
pub fn opt_name<T: Serialize>(value: Option<&T>) -> String {
    value.map(name).unwrap_or_else(|| "—".to_owned())
}

/// A time as RFC 3339 (whole seconds, UTC), "—" when absent.
pub fn time(t: Option<&Time>) -> String {
    t.map(|t| kube9_api::time::rfc3339(t.0)).unwrap_or_else(|| "—".to_owned())
}

/// An optional text, "—" when absent or empty.
pub fn text(t: Option<&str>) -> String {
    t.filter(|t| !t.is_empty()).unwrap_or("—").to_owned()
}

/// The pages' query strings: each filter the person set, encoded.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", encode(v))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

/// Percent-encoding of a query value (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube9_api::common::Pillar;

    #[test]
    fn enums_read_as_the_api_writes_them() {
        assert_eq!(name(&Pillar::PerformanceEfficiency), "performance-efficiency");
        assert_eq!(opt_name::<Pillar>(None), "—");
        assert_eq!(text(Some("")), "—");
    }

    #[test]
    fn filters_are_encoded_and_empty_ones_dropped() {
        assert_eq!(query_string(&[("a", "x y&z"), ("b", ""), ("c", "<é>")]), "?a=x%20y%26z&c=%3C%C3%A9%3E");
        assert_eq!(query_string(&[("a", "")]), "");
    }
}
