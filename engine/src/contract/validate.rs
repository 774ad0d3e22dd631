//! What a component's `validate` works with: paths into the scenario file, the problems found
//! there, and the node names a config may refer to.
//!
//! Every problem is collected (not just the first) with the path of the value it is about;
//! the scenario layer above turns the path back into a line and column for the message.

use crate::sim::NodeId;
use crate::sim::dist::Dist;
use std::collections::BTreeMap;

/// One step of a path from the top-level value down to the value a diagnostic is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSeg {
    /// A struct field by name, e.g. `target` in `Client(target: "lb")`.
    Field(String),
    /// A map key by its unquoted text, e.g. `users` in `{ "users": ... }`.
    Key(String),
    /// A list element, or a positional element inside parentheses, counted from 0.
    Index(usize),
}

/// A path from the top of the scenario file to one value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(pub Vec<PathSeg>);

impl Path {
    /// The whole file.
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// A struct field below this path.
    pub fn field(&self, name: &str) -> Path {
        self.with(PathSeg::Field(name.to_string()))
    }

    /// A map entry below this path.
    pub fn key(&self, key: &str) -> Path {
        self.with(PathSeg::Key(key.to_string()))
    }

    /// A list element below this path.
    pub fn index(&self, i: usize) -> Path {
        self.with(PathSeg::Index(i))
    }

    fn with(&self, seg: PathSeg) -> Path {
        let mut p = self.0.clone();
        if !matches!(&seg, PathSeg::Field(f) if f.is_empty()) {
            p.push(seg);
        }
        Path(p)
    }
}

/// One thing wrong with a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file.
    pub path: Path,
    /// What is wrong.
    pub message: String,
    /// What was expected instead.
    pub expected: String,
}

/// Node names and groups: a group (`app` with `replicas: 4`) names several nodes, a plain
/// node names itself.
#[derive(Clone, Debug, Default)]
pub struct NameTable {
    /// Per node id: (node name, the group it was declared as).
    pub nodes: Vec<(String, String)>,
    /// Every name a scenario may use, to the nodes it stands for.
    pub by_name: BTreeMap<String, Vec<NodeId>>,
    /// Request classes, in priority order (the scenario's `classes`; empty: one class).
    pub classes: Vec<String>,
}

impl NameTable {
    /// The nodes `name` stands for (empty if it is not declared).
    pub fn resolve(&self, name: &str) -> &[NodeId] {
        self.by_name.get(name).map_or(&[], |v| v.as_slice())
    }

    fn declared(&self) -> String {
        let names: Vec<String> = self
            .by_name
            .keys()
            .take(12)
            .map(|n| format!("\"{n}\""))
            .collect();
        let more = if self.by_name.len() > 12 { ", ..." } else { "" };
        format!(
            "expected a declared node or group: {}{more}",
            names.join(", ")
        )
    }
}

/// Collects problems while checking a scenario.
pub struct Validator<'a> {
    names: &'a NameTable,
    problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    /// A validator that resolves names in `names`.
    pub fn new(names: &'a NameTable) -> Self {
        Validator {
            names,
            problems: Vec::new(),
        }
    }

    /// Record a problem at `at`.
    pub fn error(&mut self, at: &Path, message: impl Into<String>, expected: impl Into<String>) {
        self.problems.push(Problem {
            path: at.clone(),
            message: message.into(),
            expected: expected.into(),
        });
    }

    /// The nodes `name` stands for, or a problem at `at` if it is not declared.
    pub fn resolve(&mut self, at: &Path, name: &str) -> Option<&'a [NodeId]> {
        let ids = self.names.resolve(name);
        if ids.is_empty() && self.names.by_name.contains_key(name) {
            // A pool of zero replicas: its own `replicas` says what is wrong.
            None
        } else if ids.is_empty() {
            let expected = self.names.declared();
            self.error(at, format!("unknown node \"{name}\""), expected);
            None
        } else {
            Some(ids)
        }
    }

    /// The index of request class `name`, or a problem at `at` if it is not declared.
    pub fn resolve_class(&mut self, at: &Path, name: &str) -> Option<u8> {
        if let Some(i) = self.names.classes.iter().position(|c| c == name) {
            return Some(i as u8);
        }
        let expected = if self.names.classes.is_empty() {
            "expected a class declared in the scenario's `classes: [...]` (it declares none)"
                .to_string()
        } else {
            format!(
                "expected one of the scenario's classes: {}",
                self.names.classes.join(", ")
            )
        };
        self.error(at, format!("unknown class \"{name}\""), expected);
        None
    }

    /// The scenario's request classes, in priority order.
    pub fn classes(&self) -> &'a [String] {
        &self.names.classes
    }

    /// A problem unless `value` is finite and positive.
    pub fn check_positive(&mut self, at: &Path, value: f64, unit: &str) {
        if !(value.is_finite() && value > 0.0) {
            self.error(
                at,
                format!("{value} is not a positive number"),
                format!("expected a positive, finite number ({unit})"),
            );
        }
    }

    /// Problems with a distribution's parameters.
    pub fn check_dist(&mut self, at: &Path, d: &Dist) {
        for (field, expected) in d.problems() {
            self.error(
                &at.field(field),
                "invalid distribution parameters",
                expected,
            );
        }
    }

    /// Record a problem found elsewhere (e.g. while building the name table).
    pub fn add(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// The problems found so far.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}
