//! `cargo xtask layers`: the operator crate's layering (docs/architecture.md), checked.
//!
//! Every module of `crates/operator/src` is in one layer: `base` (configuration and small
//! helpers) → `rules` (pure decisions) → `tasks` (adapters and tasks that do I/O) → `wiring`.
//! A module may import only from its own layer or one below; a `rules` module does no I/O
//! (no `async`, no `.await`); the flows (the top-level folders) import each other without a
//! cycle; and a new module must be given a layer here before it builds into CI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Base,
    Rules,
    Tasks,
    Wiring,
}

/// Each module's layer; a folder's entry covers every module under it unless a deeper entry
/// says otherwise.
pub const LAYERS: &[(&str, Layer)] = &[
    ("base", Layer::Base),
    ("registration::state", Layer::Rules),
    ("status::tier", Layer::Rules),
    ("status::conditions", Layer::Rules),
    ("status::configmap", Layer::Rules),
    ("status::plan", Layer::Rules),
    ("assessment::schedule", Layer::Rules),
    ("assessment::result", Layer::Rules),
    ("assessment::stored", Layer::Rules),
    ("collect::store", Layer::Rules),
    ("pro::report", Layer::Rules),
    ("pro::acks", Layer::Rules),
    ("pro::insights", Layer::Rules),
    ("pro::payload", Layer::Rules),
    ("history::severity", Layer::Rules),
    ("history::event", Layer::Rules),
    ("conformance::checklist", Layer::Rules),
    ("conformance::evidence", Layer::Rules),
    ("conformance::evaluate", Layer::Rules),
    ("conformance::report", Layer::Rules),
    ("argocd::health", Layer::Rules),
    ("argocd::app", Layer::Rules),
    ("argocd::detect", Layer::Rules),
    ("argocd::tree", Layer::Rules),
    ("argocd::watch", Layer::Tasks),
    ("argocd::query", Layer::Tasks),
    ("registration::client", Layer::Tasks),
    ("registration::identity", Layer::Tasks),
    ("registration::task", Layer::Tasks),
    ("status::reconcile", Layer::Tasks),
    ("assessment::reconcile", Layer::Tasks),
    ("collect::held", Layer::Tasks),
    ("collect::task", Layer::Tasks),
    ("pro::key", Layer::Tasks),
    ("pro::task", Layer::Tasks),
    ("gather", Layer::Tasks),
    ("health", Layer::Tasks),
    ("history::writer", Layer::Tasks),
    ("history::watch", Layer::Tasks),
    ("conformance::observe", Layer::Tasks),
    ("conformance::task", Layer::Tasks),
    ("leader", Layer::Tasks),
    ("replica", Layer::Tasks),
    ("operator", Layer::Wiring),
    ("main", Layer::Wiring),
];

/// Modules that only declare their children (a folder's `mod.rs`, `lib.rs`): nothing imports
/// through them, except `base`, whose index re-exports its text helpers.
fn is_index(module: &str, modules: &BTreeSet<String>) -> bool {
    module.is_empty() || modules.iter().any(|m| m.starts_with(&format!("{module}::")))
}

fn layer(module: &str) -> Option<Layer> {
    LAYERS
        .iter()
        .filter(|(prefix, _)| module == *prefix || module.starts_with(&format!("{prefix}::")))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, layer)| *layer)
}

pub fn run(root: &Path) -> Result<()> {
    let src = root.join("crates/operator/src");
    let mut sources = BTreeMap::new();
    read_tree(&src, &src, &mut sources)?;
    let problems = check(&sources);
    if !problems.is_empty() {
        bail!("the operator crate's layering is broken (docs/architecture.md):\n  {}", problems.join("\n  "));
    }
    println!("layers: {} modules; no import goes up a layer, no rule does I/O, no cycle between flows", sources.len());
    Ok(())
}

fn read_tree(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            read_tree(&path, src, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(src)?.with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            out.insert(parts.join("::"), text);
        }
    }
    Ok(())
}

/// Every problem in a tree of modules (`status::plan` → its source).
pub fn check(sources: &BTreeMap<String, String>) -> Vec<String> {
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut problems = Vec::new();
    let mut flows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in sources {
        let index = is_index(module, &modules);
        let Some(own) = layer(module).or(index.then_some(Layer::Wiring)) else {
            problems.push(format!("{module}: no layer; add it to LAYERS in xtask/src/layers.rs"));
            continue;
        };
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        if own == Layer::Rules && (code.contains("async ") || code.contains(".await")) {
            problems.push(format!("{module}: a rules module does I/O (async); move it to a task"));
        }
        for path in references(module, source) {
            let Some(target) = resolve(&path, &modules) else { continue };
            if target == *module {
                continue;
            }
            if is_index(&target, &modules) && target != "base" {
                problems.push(format!("{module}: imports `{path}` through {target}'s index; name the module"));
                continue;
            }
            match layer(&target) {
                Some(theirs) if theirs > own => problems.push(format!(
                    "{module} ({own:?}) imports {target} ({theirs:?}): a lower layer may not import a higher one"
                )),
                _ => {}
            }
            let (from, to) = (flow(module), flow(&target));
            if own != Layer::Wiring && from != to && to != "base" && from != "base" {
                flows.entry(from.to_owned()).or_default().insert(to.to_owned());
            }
        }
    }
    if let Some(cycle) = find_cycle(&flows) {
        problems.push(format!("the flows import each other in a cycle: {}", cycle.join(" → ")));
    }
    problems
}

fn flow(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// The longest module that `path` starts with.
fn resolve(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m))
}

/// The crate-relative paths `source` (the module `module`) names through `crate::` and
/// `super::`, with `use` groups (`{a, b::c}`) expanded. In its `#[cfg(test)] mod tests`,
/// `super` is the module itself.
pub fn references(module: &str, source: &str) -> Vec<String> {
    let code: String = source.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let (code, tests) = code.split_once("#[cfg(test)]").unwrap_or((&code, ""));
    let parent = match module.rsplit_once("::") {
        Some((parent, _)) => parent.to_owned(),
        None => String::new(),
    };
    let mut out = Vec::new();
    for (text, keyword, base) in [
        (code, "crate::", String::new()),
        (code, "super::", parent),
        (tests, "crate::", String::new()),
        (tests, "super::", module.to_owned()),
    ] {
        let mut rest = text;
        while let Some(at) = rest.find(keyword) {
            let before = rest[..at].chars().last();
            rest = &rest[at + keyword.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // `kube::runtime::...::super::`, `my_crate::`
            }
            expand(&base, rest, &mut out);
        }
    }
    out
}

fn expand(prefix: &str, text: &str, out: &mut Vec<String>) {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(text.len());
    let path = text[..end].trim_end_matches(':');
    let joined = match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}::{path}"),
    };
    if text[end..].starts_with('{') {
        let group = &text[end + 1..];
        let mut depth = 0;
        let mut item_start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&joined, group[item_start..i].trim(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&joined, group[item_start..i].trim(), out);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
    } else if !joined.is_empty() {
        out.push(joined.replace("::self", ""));
    }
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files.iter().map(|(m, s)| (m.to_string(), s.to_string())).collect()
    }

    #[test]
    fn the_operator_crate_is_layered() {
        let src = crate::root().join("crates/operator/src");
        let mut sources = BTreeMap::new();
        read_tree(&src, &src, &mut sources).unwrap();
        assert!(sources.len() > 20, "{sources:?}");
        assert_eq!(check(&sources), Vec::<String>::new());
    }

    #[test]
    fn paths_and_use_groups_are_resolved() {
        let source = "use crate::base::{apply::{self, FIELD_MANAGER}, truncate};\nuse super::tier::Standing;\n\
                      // use crate::commented::Out;\nfn f() { crate::gather::gather(); kube::api::super::x(); }";
        assert_eq!(
            references("status::plan", source),
            ["base::apply", "base::apply::FIELD_MANAGER", "base::truncate", "gather::gather", "status::tier::Standing"]
        );
    }

    #[test]
    fn a_rule_importing_a_task_is_refused() {
        let problems = check(&tree(&[
            ("status::plan", "use crate::status::reconcile::Context;"),
            ("status::reconcile", "use super::plan::plan;"),
            ("status", "pub mod plan; pub mod reconcile;"),
        ]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("status::plan (Rules) imports status::reconcile (Tasks)"), "{problems:?}");
    }

    #[test]
    fn a_cycle_between_flows_and_io_in_a_rule_are_refused() {
        let problems = check(&tree(&[
            ("pro::task", "use crate::status::reconcile::Context;"),
            ("status::reconcile", "use crate::pro::task::run;"),
            ("pro::acks", "pub async fn send() { x().await }"),
            ("brand_new", ""),
        ]));
        let text = problems.join("\n");
        assert!(text.contains("cycle: pro → status → pro"), "{text}");
        assert!(text.contains("pro::acks: a rules module does I/O"), "{text}");
        assert!(text.contains("brand_new: no layer"), "{text}");
    }
}
