//! What the operator reports, decided from plain values, and the code that writes it.

pub mod conditions;
pub mod tier;
pub mod writer;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// A time as the reports write it: RFC 3339, UTC, whole seconds.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// When `wait` from `now` will be, as the reports write it (for "retrying at ...").
pub fn at(now: Timestamp, wait: Duration) -> String {
    let wait = k8s_openapi::jiff::SignedDuration::try_from(wait).unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
    rfc3339(now.checked_add(wait).unwrap_or(now))
}

/// When a report must be written again: `None` means now (it differs from what is there, or
/// it is as old as the refresh interval), `Some(d)` means it is current for `d` more.
pub fn refresh_in(
    same_content: bool,
    last_update: Option<Timestamp>,
    now: Timestamp,
    interval: Duration,
) -> Option<Duration> {
    if !same_content {
        return None;
    }
    let age = now.duration_since(last_update?);
    let age = Duration::try_from(age).ok()?; // a last update in the future is rewritten
    // Refresh a little early so a reader polling at the interval never sees it late.
    let budget = interval.saturating_sub(Duration::from_millis(500));
    budget.checked_sub(age).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_changed_or_missing_report_is_written_now() {
        let now = t("2026-11-22T10:00:30Z");
        assert_eq!(refresh_in(false, Some(now), now, Duration::from_secs(60)), None);
        assert_eq!(refresh_in(true, None, now, Duration::from_secs(60)), None);
    }

    #[test]
    fn an_unchanged_report_is_refreshed_once_per_interval() {
        let now = t("2026-11-22T10:00:30Z");
        assert_eq!(
            refresh_in(true, Some(t("2026-11-22T10:00:00Z")), now, Duration::from_secs(60)),
            Some(Duration::from_millis(29_500))
        );
        assert_eq!(refresh_in(true, Some(t("2026-11-22T09:59:00Z")), now, Duration::from_secs(60)), None);
        assert_eq!(refresh_in(true, Some(t("2026-11-22T10:05:00Z")), now, Duration::from_secs(60)), None);
    }
}
