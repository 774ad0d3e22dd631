//! Layers run one way (tidy as a test): every `crate::` path in `engine/src` points down.
//!
//! ```text
//!   cli ─▶ list, sweep command (merge, cli) ─▶ explore ─▶ report ─▶ sweep (plan, runs, aggregates)
//!     ─▶ runner ─▶ build, recovery, warnings ─▶ analysis ─▶ scenario ─▶ registry ─▶ components ─▶ check
//!     ─▶ contract ─▶ sim (the kernel) ─▶ results, output (plain data, files)
//! ```
//! A file may use its own unit and any unit below it, never one above. The rules the
//! architecture rests on get their own message: the kernel imports nothing outside `sim/`, a
//! component never imports assembly, the runner, the command line, the report or a sweep, and a
//! checker never imports a component. Paths are read from `use` statements (braces and all)
//! and from paths written inline in code, with `super::` resolved, so an import cannot hide.

use std::path::Path;

/// The units, bottom first; a unit's rank is its position.
const UNITS: &[&str] = &[
    "results",
    "output",
    "sim",
    "contract",
    "check",
    "components",
    "registry",
    "scenario",
    "analysis",
    "build",
    "recovery",
    "warnings",
    "runner",
    "sweep",
    "report",
    "explore",
    "sweep command",
    "list",
    "cli",
];

/// Units that may use each other: same rank.
const SAME_RANK: &[&[&str]] = &[
    &["results", "output"],
    &["build", "recovery", "warnings"],
    &["sweep command", "list"],
];

fn rank(unit: &str) -> usize {
    let i = UNITS.iter().position(|u| *u == unit).unwrap_or_else(|| {
        panic!("unit `{unit}` has no rank: add it to UNITS in tests/suite/layers.rs")
    });
    let first_peer = SAME_RANK
        .iter()
        .find(|g| g.contains(&unit))
        .map(|g| UNITS.iter().position(|u| *u == g[0]).expect("listed"));
    first_peer.unwrap_or(i)
}

/// The unit of a module path (`crate::components::traffic::client` → `components`).
fn unit_of(module: &[String]) -> Option<&'static str> {
    let top = module.first()?.as_str();
    let unit = match top {
        "sweep" if matches!(module.get(1).map(String::as_str), Some("merge" | "cli")) => {
            "sweep command"
        }
        other => UNITS.iter().find(|u| **u == other)?,
    };
    Some(unit)
}

/// The module path of a source file (`components/traffic/client.rs` → `components::traffic::client`).
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every module path a file's code names: `use` trees flattened, and `crate::a::b` written
/// inline; `super::` resolved against the file's module. Comments are skipped.
fn imports(rel: &str, src: &str) -> Vec<Vec<String>> {
    let me = module_of(rel);
    let code: String = src
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with('$') || code[..at].ends_with(|c: char| c.is_alphanumeric()) {
            continue;
        }
        found.extend(expand(&code[at + "crate::".len()..], Vec::new()));
    }
    for (at, _) in code.match_indices("super::") {
        let before = &code[..at];
        if before.ends_with("super::") || before.ends_with(|c: char| c.is_alphanumeric()) {
            continue;
        }
        // Each `super` climbs one module; inside an inline module (an indented `mod tests`),
        // the first one only climbs back to the file's own module.
        let nested = before
            .rfind('\n')
            .is_some_and(|nl| before[nl + 1..].starts_with(' '));
        let mut base = me.clone();
        let mut rest = &code[at..];
        let mut climbs = usize::from(!nested);
        while let Some(r) = rest.strip_prefix("super::") {
            (0..climbs).for_each(|_| _ = base.pop());
            climbs = 1;
            rest = r;
        }
        found.extend(expand(rest, base));
    }
    found
}

/// Every path starting at `text` (after `crate::` or the last `super::`) below `base`, with
/// brace groups expanded.
fn expand(text: &str, mut base: Vec<String>) -> Vec<Vec<String>> {
    let ident_end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let ident = &text[..ident_end];
    let rest = &text[ident_end..];
    if ident.is_empty() {
        if let Some(inner) = rest.strip_prefix('{') {
            return split_braces(inner)
                .into_iter()
                .flat_map(|item| expand(item.trim(), base.clone()))
                .collect();
        }
        return vec![base];
    }
    if ident != "self" {
        base.push(ident.to_string());
    }
    match rest.strip_prefix("::") {
        Some(more) => expand(more, base),
        None => vec![base],
    }
}

/// The comma-separated items of a brace group (nested braces kept whole).
fn split_braces(inner: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&inner[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// What is wrong with `rel` importing `target`, if anything.
fn violation(rel: &str, target: &[String]) -> Option<String> {
    let from = unit_of(&module_of(rel))?;
    let to = unit_of(target)?;
    let path = format!("crate::{}", target.join("::"));
    let special = match (from, to) {
        ("sim", to) if to != "sim" => Some("the kernel imports nothing outside sim/"),
        ("components", "build" | "runner" | "cli" | "report" | "sweep" | "sweep command") => {
            Some("a component never imports assembly, the runner, the CLI, the report or a sweep")
        }
        ("check", "components") => {
            Some("a checker takes histories as data and never imports a component")
        }
        _ => None,
    };
    if let Some(rule) = special {
        return Some(format!("{rel} imports `{path}`: {rule}"));
    }
    (from != to && rank(to) >= rank(from)).then(|| {
        format!(
            "{rel} ({from}) imports `{path}` ({to}), a unit above or beside it; layers run one way"
        )
    })
}

fn violations_in(rel: &str, src: &str) -> Vec<String> {
    imports(rel, src)
        .iter()
        .filter_map(|target| violation(rel, target))
        .collect()
}

fn source_files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("engine/src is readable")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            source_files(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(root).expect("under root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).expect("readable")));
        }
    }
}

#[test]
fn every_import_points_down_a_layer() {
    let root = crate::repo_root().join("engine/src");
    let mut files = Vec::new();
    source_files(&root, &root, &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut problems = Vec::new();
    for (rel, src) in &files {
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        assert!(
            unit_of(&module_of(rel)).is_some(),
            "{rel} is in no layer: add its top-level module to UNITS in tests/suite/layers.rs"
        );
        problems.extend(violations_in(rel, src));
    }
    problems.dedup();
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The checker itself catches each kind of upward import, however it is written.
#[test]
fn the_layer_check_catches_upward_imports() {
    let cases = [
        (
            "sim/queue.rs",
            "use crate::components::message::Message;",
            "the kernel imports nothing outside sim/",
        ),
        (
            "sim/mod.rs",
            "use crate::{contract::metrics::NodeStats, sim::time::SimTime};",
            "the kernel",
        ),
        (
            "components/traffic/client.rs",
            "use crate::build::BuildCtx;",
            "a component never imports",
        ),
        (
            "components/txn/coordinator.rs",
            "    let r = crate::runner::run_variant(v, r, 1);",
            "a component never imports",
        ),
        (
            "check/history.rs",
            "use crate::components::replication::leader_store::term_at;",
            "a checker",
        ),
        (
            "contract/build.rs",
            "use crate::scenario::validate::Model;",
            "a unit above or beside it",
        ),
        (
            "report/charts.rs",
            "use super::super::cli::main_with;",
            "a unit above or beside it",
        ),
        (
            "components/data/cache.rs",
            "use crate::components::{traffic::calls::CallTable, message::Ctx};\nuse crate::registry::Registry;",
            "a unit above or beside it",
        ),
    ];
    for (rel, src, expected) in cases {
        let found = violations_in(rel, src);
        assert!(
            found.iter().any(|v| v.contains(expected)),
            "{rel}: `{src}` should be caught ({expected}), found {found:?}"
        );
    }
    // Downward and sideways-within-a-unit imports pass; so does a test module's `super::*`.
    let fine = [
        (
            "components/data/cache.rs",
            "use crate::contract::build::BuildCtx;\nuse super::queue::Queue;",
        ),
        (
            "report/sweep.rs",
            "use crate::sweep::results::SweepResults;",
        ),
        ("sweep/merge.rs", "use crate::report::{self, ReportError};"),
        (
            "sim/network.rs",
            "use super::dist::Dist;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}",
        ),
    ];
    for (rel, src) in fine {
        assert_eq!(
            violations_in(rel, src),
            Vec::<String>::new(),
            "{rel}: `{src}`"
        );
    }
}
