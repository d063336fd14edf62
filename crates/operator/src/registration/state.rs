//! The registration state machine: pure, so every answer kube9-server can give is tested
//! without a network.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::base::backoff::Backoff;
use crate::base::printable;

/// What kube9-server configured at registration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerSettings {
    pub status_update_interval: Option<Duration>,
    pub reregistration_interval: Option<Duration>,
    /// False when kube9-server wants no uploads.
    pub metrics_enabled: Option<bool>,
    pub metrics_interval: Option<Duration>,
}

/// Where registration stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Registration {
    /// No API key configured: free tier, nothing leaves the cluster.
    NoKey,
    /// A key is configured and the first attempt has not finished.
    Pending,
    /// kube9-server accepted the cluster; `failure` says why the latest re-registration failed.
    Registered { cluster_id: String, settings: ServerSettings, failure: Option<String> },
    /// kube9-server rejected the key (401).
    KeyRejected { reason: String },
    /// Never registered yet, and the latest attempt failed.
    Failing { reason: String },
}

/// How one registration attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Registered {
        cluster_id: String,
        settings: ServerSettings,
    },
    /// 401, with the server's error code (INVALID_API_KEY, API_KEY_EXPIRED).
    KeyRejected {
        code: String,
    },
    /// 429, with the parsed Retry-After.
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// 400: the request itself was refused; retrying the same request is pointless.
    BadRequest {
        message: String,
    },
    /// 5xx or another status that may pass.
    ServerError {
        status: u16,
    },
    /// No answer: DNS, connection, TLS or timeout.
    Unreachable {
        reason: String,
    },
    /// An answer that could not be understood.
    Malformed {
        reason: String,
    },
}

impl Outcome {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Registered { .. } => "registered",
            Outcome::KeyRejected { .. } => "key_rejected",
            Outcome::RateLimited { .. } => "rate_limited",
            Outcome::BadRequest { .. } => "bad_request",
            Outcome::ServerError { .. } => "server_error",
            Outcome::Unreachable { .. } => "unreachable",
            Outcome::Malformed { .. } => "malformed",
        }
    }
}

/// Timings that decide when the next attempt happens.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Used until the server configures its own.
    pub reregistration_interval: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Policy {
    pub fn from_config(config: &crate::base::config::Config) -> Policy {
        Policy {
            reregistration_interval: config.reregistration_interval,
            retry_initial: config.retry_initial,
            retry_max: config.retry_max,
        }
    }
}

/// The result of one step: the new state, how long to wait before the next attempt, and
/// the number of consecutive transient failures so far (for backoff).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub state: Registration,
    pub wait: Duration,
    pub failures: u32,
}

/// Longest wait a Retry-After can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Folds one outcome into the state. `jitter` is a number in [0, 1) that spreads retries of
/// many clusters apart; `now` only dates the messages.
pub fn step(
    prev: &Registration,
    failures: u32,
    outcome: Outcome,
    policy: &Policy,
    jitter: f64,
    now: Timestamp,
) -> Step {
    let reregister = match prev {
        Registration::Registered { settings, .. } => settings.reregistration_interval,
        _ => None,
    }
    .unwrap_or(policy.reregistration_interval);
    let at = |wait: Duration| crate::base::time::at(now, wait);
    let (reason, wait, failures) = match outcome {
        Outcome::Registered { cluster_id, settings } => {
            let wait = settings.reregistration_interval.unwrap_or(policy.reregistration_interval);
            return Step { state: Registration::Registered { cluster_id, settings, failure: None }, wait, failures: 0 };
        }
        Outcome::KeyRejected { code } => {
            let reason = format!(
                "kube9-server rejected the API key ({}); running in free tier. Check the key in the operator's Secret; next attempt at {}",
                printable(&code, 40),
                at(reregister)
            );
            return Step { state: Registration::KeyRejected { reason }, wait: reregister, failures: 0 };
        }
        Outcome::BadRequest { message } => {
            let reason = format!(
                "kube9-server refused the registration request as invalid (400: {}); not retrying before {}",
                printable(&message, 200),
                at(reregister)
            );
            (reason, reregister, failures)
        }
        Outcome::RateLimited { retry_after } => {
            let wait = match retry_after {
                Some(wait) => wait.clamp(Duration::from_secs(1), MAX_RETRY_AFTER),
                None => backoff(policy, failures, jitter),
            };
            (format!("kube9-server is rate limiting registration (429); retrying at {}", at(wait)), wait, failures + 1)
        }
        Outcome::ServerError { status } => {
            let wait = backoff(policy, failures, jitter);
            (format!("kube9-server answered {status} to registration; retrying at {}", at(wait)), wait, failures + 1)
        }
        Outcome::Unreachable { reason } => {
            let wait = backoff(policy, failures, jitter);
            let reason =
                format!("kube9-server could not be reached ({}); retrying at {}", printable(&reason, 200), at(wait));
            (reason, wait, failures + 1)
        }
        Outcome::Malformed { reason } => {
            let wait = backoff(policy, failures, jitter);
            let reason = format!(
                "kube9-server's answer could not be read ({}); retrying at {}",
                printable(&reason, 200),
                at(wait)
            );
            (reason, wait, failures + 1)
        }
    };
    let state = match prev {
        Registration::Registered { cluster_id, settings, .. } => Registration::Registered {
            cluster_id: cluster_id.clone(),
            settings: settings.clone(),
            failure: Some(format!("re-registration failed: {reason}")),
        },
        _ => Registration::Failing { reason },
    };
    Step { state, wait, failures }
}

/// Exponential backoff with ±20 % jitter: initial × 2^failures, capped.
pub fn backoff(policy: &Policy, failures: u32, jitter: f64) -> Duration {
    Backoff { initial: policy.retry_initial, max: policy.retry_max }.jittered(failures, jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            reregistration_interval: Duration::from_secs(24 * 3600),
            retry_initial: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
        }
    }

    fn now() -> Timestamp {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn registered() -> Registration {
        Registration::Registered {
            cluster_id: "cls_abcdefghijkl".into(),
            settings: ServerSettings {
                status_update_interval: Some(Duration::from_secs(30)),
                reregistration_interval: Some(Duration::from_secs(7200)),
                ..Default::default()
            },
            failure: None,
        }
    }

    #[test]
    fn success_registers_and_waits_for_the_servers_reregistration_interval() {
        let settings =
            ServerSettings { reregistration_interval: Some(Duration::from_secs(3600)), ..Default::default() };
        let step = step(
            &Registration::Pending,
            3,
            Outcome::Registered { cluster_id: "cls_abcdefghijkl".into(), settings: settings.clone() },
            &policy(),
            0.5,
            now(),
        );
        assert_eq!(
            step.state,
            Registration::Registered { cluster_id: "cls_abcdefghijkl".into(), settings, failure: None }
        );
        assert_eq!(step.wait, Duration::from_secs(3600));
        assert_eq!(step.failures, 0);
    }

    #[test]
    fn success_without_server_settings_uses_the_configured_interval() {
        let step = step(
            &Registration::Pending,
            0,
            Outcome::Registered { cluster_id: "cls_abcdefghijkl".into(), settings: ServerSettings::default() },
            &policy(),
            0.5,
            now(),
        );
        assert_eq!(step.wait, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn a_rejected_key_does_not_retry_before_the_next_window() {
        let step = step(
            &Registration::Pending,
            2,
            Outcome::KeyRejected { code: "API_KEY_EXPIRED".into() },
            &policy(),
            0.5,
            now(),
        );
        let Registration::KeyRejected { reason } = &step.state else { panic!("{step:?}") };
        assert!(reason.contains("rejected the API key (API_KEY_EXPIRED)"), "{reason}");
        assert!(reason.contains("2026-11-23T10:00:00Z"), "{reason}");
        assert_eq!(step.wait, Duration::from_secs(24 * 3600));
        assert_eq!(step.failures, 0);
    }

    #[test]
    fn a_rejected_key_after_registration_falls_back_to_free() {
        let step =
            step(&registered(), 0, Outcome::KeyRejected { code: "INVALID_API_KEY".into() }, &policy(), 0.5, now());
        assert!(matches!(step.state, Registration::KeyRejected { .. }));
        assert_eq!(step.wait, Duration::from_secs(7200), "the server's interval still applies");
    }

    #[test]
    fn server_errors_back_off_exponentially_with_jitter_up_to_the_cap() {
        let waits: Vec<u64> = (0..8)
            .map(|n| {
                step(&Registration::Pending, n, Outcome::ServerError { status: 503 }, &policy(), 0.5, now())
                    .wait
                    .as_secs()
            })
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let low = step(&Registration::Pending, 0, Outcome::ServerError { status: 503 }, &policy(), 0.0, now()).wait;
        let high = step(&Registration::Pending, 0, Outcome::ServerError { status: 503 }, &policy(), 0.999, now()).wait;
        assert_eq!(low, Duration::from_secs(48));
        assert!(high > Duration::from_secs(71) && high <= Duration::from_secs(72), "{high:?}");
        let capped =
            step(&Registration::Pending, 30, Outcome::ServerError { status: 500 }, &policy(), 0.999, now()).wait;
        assert_eq!(capped, Duration::from_secs(3600));
    }

    #[test]
    fn transient_failures_before_registration_say_why_and_when() {
        let cases = [
            (Outcome::ServerError { status: 502 }, "answered 502"),
            (Outcome::Unreachable { reason: "connection refused".into() }, "could not be reached (connection refused)"),
            (Outcome::Malformed { reason: "expected value".into() }, "could not be read (expected value)"),
            (Outcome::RateLimited { retry_after: Some(Duration::from_secs(90)) }, "rate limiting"),
        ];
        for (outcome, expected) in cases {
            let step = step(&Registration::Pending, 0, outcome, &policy(), 0.5, now());
            let Registration::Failing { reason } = &step.state else { panic!("{step:?}") };
            assert!(reason.contains(expected), "{reason}");
            assert!(reason.contains("retrying at 2026-11-22T10:"), "{reason}");
            assert_eq!(step.failures, 1);
        }
    }

    #[test]
    fn retry_after_is_honoured_exactly() {
        let step = step(
            &Registration::Pending,
            4,
            Outcome::RateLimited { retry_after: Some(Duration::from_secs(90)) },
            &policy(),
            0.9,
            now(),
        );
        assert_eq!(step.wait, Duration::from_secs(90));
        let Registration::Failing { reason } = step.state else { panic!() };
        assert!(reason.contains("2026-11-22T10:01:30Z"), "{reason}");
    }

    #[test]
    fn rate_limiting_without_retry_after_backs_off() {
        let step = step(&Registration::Pending, 1, Outcome::RateLimited { retry_after: None }, &policy(), 0.5, now());
        assert_eq!(step.wait, Duration::from_secs(120));
    }

    #[test]
    fn a_bad_request_is_not_retried_blindly() {
        let step = step(
            &Registration::Pending,
            0,
            Outcome::BadRequest { message: "clusterIdentifier missing".into() },
            &policy(),
            0.5,
            now(),
        );
        assert_eq!(step.wait, Duration::from_secs(24 * 3600));
        let Registration::Failing { reason } = step.state else { panic!() };
        assert!(reason.contains("400: clusterIdentifier missing"), "{reason}");
    }

    #[test]
    fn a_failed_reregistration_keeps_the_registration_and_records_why() {
        let step = step(&registered(), 0, Outcome::Unreachable { reason: "timed out".into() }, &policy(), 0.5, now());
        let Registration::Registered { cluster_id, failure, .. } = &step.state else { panic!("{step:?}") };
        assert_eq!(cluster_id, "cls_abcdefghijkl");
        assert!(failure.as_deref().unwrap_or_default().contains("re-registration failed"), "{failure:?}");
        let recovered = super::step(
            &step.state,
            step.failures,
            Outcome::Registered { cluster_id: "cls_abcdefghijkl".into(), settings: ServerSettings::default() },
            &policy(),
            0.5,
            now(),
        );
        assert!(matches!(recovered.state, Registration::Registered { failure: None, .. }));
    }

    #[test]
    fn server_text_is_cut_and_cleaned() {
        let step = step(
            &Registration::Pending,
            0,
            Outcome::BadRequest { message: format!("bad\n{}", "x".repeat(1000)) },
            &policy(),
            0.5,
            now(),
        );
        let Registration::Failing { reason } = step.state else { panic!() };
        assert!(!reason.contains('\n'));
        assert!(reason.chars().count() < 400, "{}", reason.len());
    }
}
