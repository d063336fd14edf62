//! The list of every check, gathered from the rules, pillar by pillar and topic by topic.

use std::sync::LazyLock;

use crate::check::Check;
use crate::rules;

static REGISTRY: LazyLock<Vec<Check>> = LazyLock::new(|| {
    [
        rules::security::CHECKS,
        rules::rbac::CHECKS,
        rules::secrets::CHECKS,
        rules::hardening::CHECKS,
        rules::network::CHECKS,
        rules::upgrade::CHECKS,
        rules::reliability::CHECKS,
        rules::performance::CHECKS,
        rules::cost::CHECKS,
        rules::operations::CHECKS,
        rules::sustainability::CHECKS,
        rules::gitops::CHECKS,
        rules::operators::CHECKS,
        rules::vulnerabilities::CHECKS,
    ]
    .concat()
});

/// Every check, grouped by pillar.
pub fn registry() -> &'static [Check] {
    &REGISTRY
}

impl Check {
    /// Whether it judges live state (status conditions, ready endpoints, restarts, the time
    /// left on a certificate) that manifests do not carry: every check of the cluster's other
    /// operators (rules/operators.rs), and the image vulnerabilities Trivy Operator found
    /// (rules/vulnerabilities.rs). Offline such a check is reported as skipped.
    pub fn needs_cluster(&self) -> bool {
        rules::operators::CHECKS.iter().chain(rules::vulnerabilities::CHECKS).any(|c| c.id == self.id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use kube9_api::common::Pillar;

    use super::*;

    #[test]
    fn the_registry_covers_every_pillar_with_unique_ids() {
        let all = registry();
        assert!(all.len() >= 50, "{} checks", all.len());
        let ids: HashSet<&str> = all.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), all.len(), "duplicate check ids");
        for pillar in Pillar::ALL {
            let n = all.iter().filter(|c| c.pillar == pillar).count();
            assert!(n >= 3, "{pillar:?} has {n} checks");
        }
        assert!(all.iter().filter(|c| c.pillar == Pillar::Security).count() >= 15);
        for check in all {
            assert_eq!(check.id.split('.').next().unwrap(), check.pillar.as_str(), "{}", check.id);
            assert!(!check.title.is_empty() && !check.rationale.is_empty() && !check.remediation.is_empty());
            assert!(!check.reads.is_empty(), "{} reads nothing", check.id);
        }
    }
}
