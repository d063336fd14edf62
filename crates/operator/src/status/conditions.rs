//! The `Ready` and `Registered` conditions, keeping each transition time until it changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube9_api::operator_status::Health;

use super::tier::{self, Standing};
use crate::registration::state::Registration;

/// The embedded store as the `Store` condition sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreState<'a> {
    /// No data directory: no condition.
    NotConfigured,
    Available,
    Failing(&'a str),
}

/// Conditions for this standing; a condition whose status, reason and message are unchanged
/// keeps its `lastTransitionTime`.
pub fn conditions(
    previous: &[Condition],
    standing: &Standing,
    registration: &Registration,
    store: StoreState<'_>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let (ready, ready_reason) = match standing.health {
        Health::Healthy => ("True", "Healthy"),
        Health::Degraded => ("True", "Degraded"),
        Health::Unhealthy => ("False", "StatusWriteFailed"),
    };
    let (registered, registered_reason, registered_message) = match registration {
        Registration::NoKey => {
            ("False", "NoApiKey", "No API key is configured; running in operated mode (free tier)".to_owned())
        }
        Registration::Pending => ("False", "Pending", "Registering with kube9-server".to_owned()),
        Registration::Registered { cluster_id, failure: None, .. } => {
            ("True", "Registered", format!("Registered with kube9-server as {cluster_id}"))
        }
        Registration::Registered { failure: Some(why), .. } => ("True", "ReregistrationFailing", why.clone()),
        Registration::KeyRejected { reason } => ("False", "KeyRejected", reason.clone()),
        Registration::Failing { reason } => ("False", "RegistrationFailing", reason.clone()),
    };
    // Messages are never empty: a 1.20 API server turns an applied "" into null and refuses it.
    let ready_message = standing.error.clone().unwrap_or_else(|| "Status is published".to_owned());
    let mut conditions = vec![
        condition(previous, "Ready", ready, ready_reason, &ready_message, generation, now),
        condition(
            previous,
            "Registered",
            registered,
            registered_reason,
            &crate::base::truncate(&registered_message, tier::MAX_ERROR_CHARS),
            generation,
            now,
        ),
    ];
    let store = match store {
        StoreState::NotConfigured => None,
        StoreState::Available => Some(("True", "Available", "The event history and collections are kept".to_owned())),
        StoreState::Failing(why) => Some(("False", "Unavailable", crate::base::truncate(why, tier::MAX_ERROR_CHARS))),
    };
    if let Some((status, reason, message)) = store {
        conditions.push(condition(previous, "Store", status, reason, &message, generation, now));
    }
    conditions
}

fn condition(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let old = previous.iter().find(|c| c.type_ == type_);
    let unchanged = old.is_some_and(|c| c.status == status && c.reason == reason && c.message == message);
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time: match old {
            Some(c) if unchanged => c.last_transition_time.clone(),
            _ => Time(now),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::tier::decide;

    #[test]
    fn the_store_condition_says_whether_the_history_is_kept() {
        let reg = Registration::NoKey;
        let standing = decide(&reg, None);
        let at = Timestamp::UNIX_EPOCH;
        assert_eq!(conditions(&[], &standing, &reg, StoreState::NotConfigured, None, at).len(), 2);
        let ok = conditions(&[], &standing, &reg, StoreState::Available, None, at);
        assert_eq!((ok[2].type_.as_str(), ok[2].status.as_str()), ("Store", "True"));
        let failing = conditions(&ok, &standing, &reg, StoreState::Failing("read-only file system"), None, at);
        assert_eq!((failing[2].status.as_str(), failing[2].reason.as_str()), ("False", "Unavailable"));
        assert_eq!(failing[2].message, "read-only file system");
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let t0: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-11-22T10:05:00Z".parse().unwrap();
        let reg = Registration::NoKey;
        let first = conditions(&[], &decide(&reg, None), &reg, StoreState::NotConfigured, Some(1), t0);
        let second = conditions(&first, &decide(&reg, None), &reg, StoreState::NotConfigured, Some(1), t1);
        assert_eq!(first, second);
        assert_eq!(second[1].reason, "NoApiKey");
        assert!(second.iter().all(|c| !c.message.is_empty()));

        let failing = Registration::Failing { reason: "503".into() };
        let third = conditions(&second, &decide(&failing, None), &failing, StoreState::NotConfigured, Some(1), t1);
        assert_eq!(third[0].last_transition_time, Time(t1), "Ready's reason changed to Degraded");
        assert_eq!(third[1].reason, "RegistrationFailing");
    }

    #[test]
    fn a_status_write_failure_makes_ready_false() {
        let reg = Registration::NoKey;
        let c = conditions(
            &[],
            &decide(&reg, Some("forbidden")),
            &reg,
            StoreState::NotConfigured,
            None,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!((c[0].status.as_str(), c[0].reason.as_str()), ("False", "StatusWriteFailed"));
    }
}
