//! Checks: the catalogue of Well-Architected checks with why each matters and how to fix it.

use maud::{Markup, html};

use super::badge;

pub fn page() -> Markup {
    let checks = kube9_checks::registry::registry();
    html! {
        p { (checks.len()) " checks in six pillars. An Assessment selects them by pillar or id." }
        table.checks {
            thead { tr { th scope="col" { "Check" } th scope="col" { "Pillar" } th scope="col" { "Severity" } th scope="col" { "Why it matters" } th scope="col" { "How to fix it" } } }
            tbody {
                @for c in checks {
                    tr id=(c.id) data-check=(c.id) {
                        th scope="row" { code { (c.id) } br; (c.title) }
                        td { (c.pillar.as_str()) }
                        td { (badge(c.severity.as_str())) }
                        td { (c.rationale) }
                        td { (c.remediation) }
                    }
                }
            }
        }
    }
}
