//! Times as status and reports write them.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// A time as the reports write it: RFC 3339, UTC, whole seconds.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `now` + `wait`, saturating.
pub fn later(now: Timestamp, wait: Duration) -> Timestamp {
    let wait = SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX);
    now.checked_add(wait).unwrap_or(now)
}
