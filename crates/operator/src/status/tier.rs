//! Mode, tier, health and error, decided from the registration state: the table in docs/architecture.md.

use kube9_api::operator_status::{Health, Mode, Tier};

use crate::base::truncate;
use crate::registration::state::Registration;

/// The longest `error` the status contract allows.
pub const MAX_ERROR_CHARS: usize = 500;

/// What the status says about the operator's standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    pub mode: Mode,
    pub tier: Tier,
    pub registered: bool,
    pub health: Health,
    pub cluster_id: Option<String>,
    pub error: Option<String>,
}

/// Decides the standing. `publish_failure` is set when the operator could not write status
/// lately (RBAC, API server down): that makes it unhealthy whatever else holds.
pub fn decide(registration: &Registration, publish_failure: Option<&str>) -> Standing {
    let mut standing = match registration {
        Registration::NoKey => standing(Mode::Operated, Tier::Free, None, None),
        Registration::Pending => standing(Mode::Enabled, Tier::Free, None, None),
        Registration::Registered { cluster_id, failure, .. } => Standing {
            mode: Mode::Enabled,
            tier: Tier::Pro,
            registered: true,
            health: if failure.is_some() { Health::Degraded } else { Health::Healthy },
            cluster_id: Some(cluster_id.clone()),
            error: failure.clone(),
        },
        Registration::KeyRejected { reason } => standing(Mode::Operated, Tier::Free, None, Some(reason)),
        Registration::Failing { reason } => standing(Mode::Enabled, Tier::Free, None, Some(reason)),
    };
    if let Some(failure) = publish_failure {
        standing.health = Health::Unhealthy;
        standing.error = Some(match standing.error {
            Some(error) => format!("status cannot be written: {failure}; {error}"),
            None => format!("status cannot be written: {failure}"),
        });
    }
    standing.error = standing.error.map(|e| truncate(&e, MAX_ERROR_CHARS));
    standing
}

/// A failing pro-tier pipeline (uploads, acknowledgements) degrades a registered operator.
pub fn with_pro_failure(standing: Standing, failure: Option<&str>) -> Standing {
    match failure {
        Some(failure) if standing.registered => degrade(standing, failure),
        _ => standing,
    }
}

/// A store that cannot be used (no event history) degrades the operator, whatever its tier;
/// everything else it does goes on.
pub fn with_store_failure(standing: Standing, failure: Option<&str>) -> Standing {
    match failure {
        Some(failure) => degrade(standing, failure),
        None => standing,
    }
}

/// Healthy becomes degraded (never better than it was), and `failure` joins the error.
fn degrade(mut standing: Standing, failure: &str) -> Standing {
    if standing.health == Health::Healthy {
        standing.health = Health::Degraded;
    }
    let error = match standing.error.take() {
        Some(error) => format!("{error}; {failure}"),
        None => failure.to_owned(),
    };
    standing.error = Some(truncate(&error, MAX_ERROR_CHARS));
    standing
}

fn standing(mode: Mode, tier: Tier, cluster_id: Option<String>, error: Option<&String>) -> Standing {
    Standing {
        mode,
        tier,
        registered: false,
        health: if error.is_some() { Health::Degraded } else { Health::Healthy },
        cluster_id,
        error: error.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::state::ServerSettings;

    fn row(r: &Registration) -> (Mode, Tier, bool, Health, bool) {
        let s = decide(r, None);
        (s.mode, s.tier, s.registered, s.health, s.error.is_some())
    }

    #[test]
    fn every_row_of_the_design_table() {
        let registered = |failure: Option<&str>| Registration::Registered {
            cluster_id: "cls_abcdefghijkl".into(),
            settings: ServerSettings::default(),
            failure: failure.map(str::to_owned),
        };
        assert_eq!(row(&Registration::NoKey), (Mode::Operated, Tier::Free, false, Health::Healthy, false));
        assert_eq!(row(&Registration::Pending), (Mode::Enabled, Tier::Free, false, Health::Healthy, false));
        assert_eq!(row(&registered(None)), (Mode::Enabled, Tier::Pro, true, Health::Healthy, false));
        assert_eq!(
            row(&Registration::KeyRejected { reason: "rejected".into() }),
            (Mode::Operated, Tier::Free, false, Health::Degraded, true)
        );
        assert_eq!(
            row(&Registration::Failing { reason: "503".into() }),
            (Mode::Enabled, Tier::Free, false, Health::Degraded, true)
        );
        assert_eq!(
            row(&registered(Some("re-registration failed"))),
            (Mode::Enabled, Tier::Pro, true, Health::Degraded, true)
        );
    }

    #[test]
    fn a_status_that_cannot_be_written_is_unhealthy_and_keeps_the_other_reason() {
        let s = decide(&Registration::Failing { reason: "503".into() }, Some("forbidden"));
        assert_eq!(s.health, Health::Unhealthy);
        assert_eq!(s.error.as_deref(), Some("status cannot be written: forbidden; 503"));
    }

    #[test]
    fn a_failing_upload_degrades_only_a_registered_operator() {
        let registered = Registration::Registered {
            cluster_id: "cls_abcdefghijkl".into(),
            settings: ServerSettings::default(),
            failure: None,
        };
        let s = with_pro_failure(decide(&registered, None), Some("upload failed"));
        assert_eq!((s.health, s.error.as_deref()), (Health::Degraded, Some("upload failed")));
        let s = with_pro_failure(decide(&registered, Some("forbidden")), Some("upload failed"));
        assert_eq!(s.health, Health::Unhealthy, "never better than it was");
        let s = with_pro_failure(decide(&Registration::Pending, None), Some("upload failed"));
        assert_eq!((s.health, s.error), (Health::Healthy, None));
    }

    #[test]
    fn a_store_that_cannot_be_used_degrades_any_tier() {
        let s = with_store_failure(decide(&Registration::NoKey, None), Some("event history unavailable: gone"));
        assert_eq!((s.health, s.error.as_deref()), (Health::Degraded, Some("event history unavailable: gone")));
        let s = with_store_failure(decide(&Registration::NoKey, Some("forbidden")), Some("store"));
        assert_eq!(s.health, Health::Unhealthy, "never better than it was");
        assert_eq!(with_store_failure(decide(&Registration::NoKey, None), None), decide(&Registration::NoKey, None));
    }

    #[test]
    fn the_cluster_id_is_shown_only_when_registered() {
        assert_eq!(decide(&Registration::Pending, None).cluster_id, None);
        let r = Registration::Registered {
            cluster_id: "cls_abcdefghijkl".into(),
            settings: ServerSettings::default(),
            failure: None,
        };
        assert_eq!(decide(&r, None).cluster_id.as_deref(), Some("cls_abcdefghijkl"));
    }

    #[test]
    fn errors_never_exceed_500_characters() {
        let s = decide(&Registration::Failing { reason: "é".repeat(2000) }, Some(&"x".repeat(800)));
        assert_eq!(s.error.unwrap().chars().count(), MAX_ERROR_CHARS);
    }
}
