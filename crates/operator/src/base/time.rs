//! Times as the reports write them, and when a report is due again.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
pub use kube9_api::time::{later, rfc3339};

/// When `wait` from `now` will be, as the reports write it (for "retrying at ...").
pub fn at(now: Timestamp, wait: Duration) -> String {
    rfc3339(later(now, wait))
}

/// The time from `now` until `then`; zero when it has passed.
pub fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(now.duration_until(then)).unwrap_or(Duration::ZERO)
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

    #[test]
    fn later_and_until_saturate() {
        let now = t("2026-11-22T10:00:00Z");
        assert_eq!(at(now, Duration::from_secs(90)), "2026-11-22T10:01:30Z");
        assert_eq!(until(now, t("2026-11-22T10:00:05Z")), Duration::from_secs(5));
        assert_eq!(until(now, t("2026-11-22T09:00:00Z")), Duration::ZERO);
        assert_eq!(later(now, Duration::MAX), now);
    }
}
