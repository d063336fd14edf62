//! `cargo xtask layers`: no import circle between the modules of any crate under `crates/`, and
//! the operator crate's layering (docs/architecture.md), checked.
//!
//! Circles: the crates are found on disk (every folder of `crates/` with a Cargo.toml), so a new
//! crate is covered the day it appears. A module imports another when its code (tests left out)
//! names it through `crate::`, `super::` or `self::`, or, in a module with children, names a
//! child; a name an index re-exports (`pub use child::Name`) leads to the module that defines it.
//!
//! Layers: every module of `crates/operator/src` is in one layer: `base` (configuration and small
//! helpers) → `rules` (pure decisions) → `tasks` (adapters and tasks that do I/O) → `wiring`.
//! A module may import only from its own layer or one below; a `rules` module does no I/O
//! (no `async`, no `.await`); the flows (the top-level folders) import each other without a
//! cycle; and a new module must be given a layer here before it builds into CI.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

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
    ("reports::build", Layer::Rules),
    ("collections::store", Layer::Rules),
    ("pro::report", Layer::Rules),
    ("pro::acks", Layer::Rules),
    ("pro::insights", Layer::Rules),
    ("pro::payload", Layer::Rules),
    ("history::severity", Layer::Rules),
    ("history::event", Layer::Rules),
    ("argocd_io::listed", Layer::Tasks),
    ("argocd_io::watch", Layer::Tasks),
    ("argocd_io::query", Layer::Tasks),
    ("registration::client", Layer::Tasks),
    ("registration::identity", Layer::Tasks),
    ("registration::task", Layer::Tasks),
    ("status::reconcile", Layer::Tasks),
    ("assessment::reconcile", Layer::Tasks),
    ("reports::publish", Layer::Tasks),
    ("collections::held", Layer::Tasks),
    ("collections::task", Layer::Tasks),
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
    let crates = crate_trees(root)?;
    let mut found = Vec::new();
    for (name, sources) in &crates {
        found.extend(circles(&imports(sources)).iter().map(|c| format!("{name}: {c}")));
    }
    if !found.is_empty() {
        bail!(
            "modules import each other in a circle; move what both need into a module below them:\n  {}",
            found.join("\n  ")
        );
    }
    let modules: usize = crates.iter().map(|(_, sources)| sources.len()).sum();
    println!("layers: {} crates, {modules} modules; no import circle", crates.len());

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

/// Every crate under `crates/` (a folder with a Cargo.toml and a `src`), by its folder, with its
/// modules (the crate root is `""`). Where a library and a binary share `src`, the binary
/// (`main.rs`, `bin/`) is a crate of its own that reaches the library by its name, never through
/// `crate::`, so it is left out.
fn crate_trees(root: &Path) -> Result<Vec<(String, BTreeMap<String, String>)>> {
    let dir = root.join("crates");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    folders.retain(|f| f.join("Cargo.toml").is_file() && f.join("src").is_dir());
    folders.sort();
    let mut crates = Vec::new();
    for folder in folders {
        let src = folder.join("src");
        let mut sources = BTreeMap::new();
        read_tree(&src, &src, &mut sources)?;
        if sources.contains_key("") {
            sources.retain(|m, _| m != "main" && m != "bin" && !m.starts_with("bin::"));
        } else if let Some(main) = sources.remove("main") {
            sources.insert(String::new(), main);
        }
        crates.push((folder.strip_prefix(root)?.display().to_string(), sources));
    }
    Ok(crates)
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
    let code = uncommented(source);
    let (code, tests) = code.split_once("#[cfg(test)]").unwrap_or((&code, ""));
    let mut out = Vec::new();
    for (text, keyword, base) in [
        (code, "crate::", String::new()),
        (code, "super::", parent(module).to_owned()),
        (tests, "crate::", String::new()),
        (tests, "super::", module.to_owned()),
    ] {
        scan(text, keyword, &base, &mut out);
    }
    out
}

/// The source without its comment lines.
fn uncommented(source: &str) -> String {
    source.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The source without its comment lines and its `#[cfg(test)]` part.
fn code_of(source: &str) -> String {
    let code = uncommented(source);
    code.split_once("#[cfg(test)]").map_or(code.clone(), |(code, _)| code.to_owned())
}

fn parent(module: &str) -> &str {
    module.rsplit_once("::").map_or("", |(parent, _)| parent)
}

/// Every path in `text` that starts with `keyword` (`crate::`, or a module's name and `::`),
/// joined to `base` and with `use` groups expanded.
fn scan(text: &str, keyword: &str, base: &str, out: &mut Vec<String>) {
    let mut rest = text;
    while let Some(at) = rest.find(keyword) {
        let before = rest[..at].chars().last();
        rest = &rest[at + keyword.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `kube::runtime::...::super::`, `my_crate::`
        }
        expand(base, rest, out);
    }
}

/// The module's direct children.
fn children<'m>(module: &str, modules: &'m BTreeSet<String>) -> impl Iterator<Item = &'m str> {
    modules.iter().filter(move |m| !m.is_empty() && parent(m) == module).map(String::as_str)
}

/// The paths a module's code names: through `crate::`, `super::` and `self::`, and by the bare
/// name of a module in scope: a child (`child::item`, which a module may write without
/// `self::`), or a module it imported whole (`use crate::rules;` and then `rules::cost::CHECKS`).
fn code_paths(module: &str, code: &str, modules: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    scan(code, "crate::", "", &mut out);
    scan(code, "super::", parent(module), &mut out);
    scan(code, "self::", module, &mut out);
    let imported: Vec<String> = out.iter().filter(|p| modules.contains(*p)).cloned().collect();
    let in_scope: BTreeSet<String> = children(module, modules).map(str::to_owned).chain(imported).collect();
    for whole in &in_scope {
        let name = whole.rsplit("::").next().unwrap_or(whole);
        scan(code, &format!("{name}::"), whole, &mut out);
        // `use child;` and `pub use child;` name the child alone.
        if code.contains(&format!("use {name};")) {
            out.push(whole.clone());
        }
    }
    out
}

/// Which modules each module's code (its tests left out) imports. A path into an index module
/// (a module with children, or the crate root) that names what the index re-exports
/// (`pub use child::Name`) leads to the module that defines it, not to the index.
pub fn imports(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let code: BTreeMap<&str, String> = sources.iter().map(|(m, s)| (m.as_str(), code_of(s))).collect();
    let mut exports: BTreeMap<(String, String), String> = BTreeMap::new();
    for (module, text) in &code {
        for statement in text.split(';').filter_map(|s| {
            let s = s.trim_start();
            s.strip_prefix("pub use ").or_else(|| s.strip_prefix("pub(crate) use "))
        }) {
            let mut paths = Vec::new();
            match statement.strip_prefix("crate::") {
                Some(rest) => expand("", rest, &mut paths),
                None => expand(module, statement.trim_start_matches("self::"), &mut paths),
            }
            for path in paths {
                let name = path.rsplit("::").next().unwrap_or(&path).to_owned();
                exports.insert((module.to_string(), name), path);
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &code {
        for path in code_paths(module, text, &modules) {
            let Some(target) = resolve_export(&path, &modules, &exports) else { continue };
            if target != *module {
                graph.entry(module.to_string()).or_default().insert(target);
            }
        }
    }
    graph
}

/// The module `path` leads to, following re-exports (a few at most; a path that re-exports
/// itself stops there).
fn resolve_export(
    path: &str,
    modules: &BTreeSet<String>,
    exports: &BTreeMap<(String, String), String>,
) -> Option<String> {
    let mut path = path.to_owned();
    for _ in 0..8 {
        let target = resolve(&path, modules).or_else(|| modules.contains("").then(String::new))?;
        let rest = path.strip_prefix(target.as_str()).unwrap_or(&path).trim_start_matches("::");
        let name = rest.split("::").next().unwrap_or_default();
        match exports.get(&(target.clone(), name.to_owned())) {
            Some(next) if !name.is_empty() && *next != path => path = next.clone(),
            _ => return Some(target),
        }
    }
    None
}

/// Every circle in the graph: one per group of modules that reach each other, named by a
/// shortest loop through the group's first module, with the group's size.
pub fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(node) = todo.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&str, BTreeSet<String>> = graph.keys().map(|n| (n.as_str(), reach(n))).collect();
    let mut placed = BTreeSet::new();
    let mut out = Vec::new();
    for (start, from_start) in &reached {
        if placed.contains(*start) || !from_start.contains(*start) {
            continue;
        }
        let group: BTreeSet<&str> = from_start
            .iter()
            .map(String::as_str)
            .filter(|n| reached.get(n).is_some_and(|r| r.contains(*start)))
            .collect();
        placed.extend(group.iter().map(|n| n.to_string()));
        let shown: Vec<&str> = shortest_loop(start, &group, graph).into_iter().map(display).collect();
        out.push(format!("{} modules: {}", group.len(), shown.join(" → ")));
    }
    out
}

/// A shortest loop from `start` back to it, through `group` only (breadth first).
fn shortest_loop<'g>(
    start: &'g str,
    group: &BTreeSet<&'g str>,
    graph: &'g BTreeMap<String, BTreeSet<String>>,
) -> Vec<&'g str> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut todo = VecDeque::from([start]);
    while let Some(node) = todo.pop_front() {
        for next in graph.get(node).into_iter().flatten().map(String::as_str) {
            if next == start {
                let mut path = vec![start];
                let mut at = node;
                while at != start {
                    path.push(at);
                    at = came_from[at];
                }
                path.push(start);
                path.reverse();
                return path;
            }
            if group.contains(next) && !came_from.contains_key(next) && next != start {
                came_from.insert(next, node);
                todo.push_back(next);
            }
        }
    }
    vec![start]
}

fn display(module: &str) -> &str {
    if module.is_empty() { "(crate root)" } else { module }
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

    fn graph(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph.entry(from.to_string()).or_default().insert(to.to_string());
        }
        graph
    }

    #[test]
    fn a_circle_is_refused_and_named_and_a_tree_passes() {
        let tree = graph(&[("engine", "registry"), ("registry", "rules::cost"), ("rules::cost", "check")]);
        assert_eq!(circles(&tree), Vec::<String>::new());
        let circled = graph(&[
            ("engine", "registry"),
            ("registry", "rules::cost"),
            ("rules::cost", "engine"),
            ("rules::cost", "check"),
            ("stream", "engine"),
        ]);
        assert_eq!(circles(&circled), ["3 modules: engine → registry → rules::cost → engine"]);
        let two = graph(&[("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("", "c")]);
        assert_eq!(circles(&two), ["2 modules: a → b → a", "2 modules: c → d → c"]);
    }

    #[test]
    fn imports_follow_re_exports_bare_children_and_modules_imported_whole() {
        let sources = tree(&[
            ("", "pub mod engine; pub mod rules; pub mod subject;\npub use engine::run;\npub use subject::Subject;"),
            ("engine", "use crate::rules;\nfn go() { rules::cost::CHECKS; }"),
            ("rules", "pub mod cost;"),
            ("rules::cost", "use crate::Subject;\n#[cfg(test)]\nmod tests { use crate::run; }"),
            ("subject", "pub struct Subject;"),
        ]);
        let imports = imports(&sources);
        let of = |m: &str| imports.get(m).map(|s| s.iter().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(of(""), ["engine", "subject"], "the root re-exports from them");
        assert_eq!(of("engine"), ["rules", "rules::cost"], "a module imported whole, then named by its path");
        assert_eq!(of("rules::cost"), ["subject"], "through the root's re-export; tests left out");
        assert_eq!(circles(&imports), Vec::<String>::new());
    }

    #[test]
    fn a_root_that_lends_its_items_to_a_child_it_uses_is_a_circle() {
        let sources = tree(&[
            ("", "mod workloads;\npub use workloads::patterns;\nfn analysed() {}"),
            ("workloads", "use crate::analysed;\npub fn patterns() { analysed() }"),
        ]);
        assert_eq!(circles(&imports(&sources)), ["2 modules: (crate root) → workloads → (crate root)"]);
    }

    #[test]
    fn no_crate_has_a_circle() {
        let crates = crate_trees(&crate::root()).unwrap();
        assert!(crates.iter().any(|(name, _)| name == "crates/checks"), "{:?}", crates.iter().map(|c| &c.0));
        for (name, sources) in &crates {
            assert_eq!(circles(&imports(sources)), Vec::<String>::new(), "{name}");
        }
    }
}
