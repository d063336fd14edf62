//! The pages, as HTML. maud escapes every value it writes, so a name or message from the
//! cluster or kube9-server is text, never markup. Each page takes plain values (already read)
//! and returns markup; `layout` wraps it with the navigation.

pub mod argocd;
pub mod assessments;
pub mod checks;
pub mod conformance;
pub mod events;
pub mod findings;
pub mod fleet;
pub mod insights;
pub mod overview;

use maud::{DOCTYPE, Markup, html};

/// The pages of one cluster, in the navigation's order: (path under the cluster, name).
pub const NAV: [(&str, &str); 8] = [
    ("", "Overview"),
    ("assessments", "Assessments"),
    ("findings", "Findings"),
    ("checks", "Checks"),
    ("insights", "Insights"),
    ("events", "Events"),
    ("argocd", "Argo CD"),
    ("conformance", "AI Conformance"),
];

/// What every page's frame needs.
pub struct Frame<'a> {
    /// The cluster's name (its kubeconfig context).
    pub cluster: &'a str,
    /// Where its pages are, such as `/c/0`.
    pub base: &'a str,
    /// The page's path under the cluster (one of [`NAV`]'s), or `None` for the fleet.
    pub active: Option<&'a str>,
    /// Whether there is a fleet page to go back to.
    pub fleet: bool,
}

/// A whole document: the navigation, the page in `<main>`, and the live-update script.
pub fn layout(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let heading = match frame.active.and_then(|a| NAV.iter().find(|(p, _)| *p == a)) {
        Some((_, name)) => (*name).to_owned(),
        None => title.to_owned(),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (heading) " · " (frame.cluster) " · kube9" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "kube9" }
                    span.cluster { "cluster: " strong data-field="cluster" { (frame.cluster) } }
                    nav aria-label="Pages" {
                        ul {
                            @if frame.fleet {
                                li { a href="/" aria-current=[frame.active.is_none().then_some("page")] { "Fleet" } }
                            }
                            @if frame.active.is_some() || !frame.fleet {
                                @for (path, name) in NAV {
                                    li {
                                        a href=(format!("{}/{}", frame.base, path))
                                            aria-current=[(frame.active == Some(path)).then_some("page")] { (name) }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main data-live=[frame.active.map(|_| format!("{}/live", frame.base))] {
                    h1 { (heading) }
                    (body)
                }
            }
        }
    }
}

/// A request that failed or was refused, with the API server's (or the operator's) message.
pub fn refusal(what: &str, message: &str) -> Markup {
    html! {
        div.refusal role="alert" {
            strong { (what) } " " span.message { (message) }
        }
    }
}

/// A `<dl>` of fields, each `<dd>` tagged with its key (`data-field`) so tests and scripts can
/// find it.
pub fn fields(rows: &[(&str, &str, String)]) -> Markup {
    html! {
        dl.fields {
            @for (key, label, value) in rows {
                div {
                    dt { (label) }
                    dd data-field=(key) { (value) }
                }
            }
        }
    }
}

/// A form that POSTs `action` with the token (and the given hidden fields).
pub fn post_form(action: &str, token: &str, hidden: &[(&str, &str)], body: Markup) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="token" value=(token);
            @for (k, v) in hidden {
                input type="hidden" name=(k) value=(v);
            }
            (body)
        }
    }
}

/// A small badge with a state's class (`s-healthy`, `s-failing`, …).
pub fn badge(value: &str) -> Markup {
    let class: String = value.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    html! { span class=(format!("badge s-{}", class.to_ascii_lowercase())) { (value) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_text_is_escaped_everywhere() {
        let evil = "<script>alert(1)</script>\"'&";
        let frame = Frame { cluster: evil, base: "/c/0", active: Some(""), fleet: false };
        let page = layout(
            &frame,
            "x",
            html! { (refusal(evil, evil)) (fields(&[("k", evil, evil.to_owned())])) (badge(evil)) },
        )
        .into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"), "{page}");
        // The only script is the embedded file.
        assert_eq!(page.matches("<script").count(), 1, "{page}");
    }

    #[test]
    fn the_navigation_names_every_page_and_marks_the_current_one() {
        let frame = Frame { cluster: "c", base: "/c/0", active: Some("findings"), fleet: true };
        let page = layout(&frame, "x", html! {}).into_string();
        for (_, name) in NAV {
            assert!(page.contains(&format!(">{name}</a>")), "{name} missing");
        }
        assert!(page.contains(r#"<a href="/c/0/findings" aria-current="page">Findings</a>"#), "{page}");
        assert!(page.contains(r#"<a href="/">Fleet</a>"#), "{page}");
        assert!(page.contains(r#"data-live="/c/0/live""#), "{page}");
    }
}
