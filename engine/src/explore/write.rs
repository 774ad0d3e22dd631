//! What `archsim explore` writes: the shrunk schedule as a `faults:` block, a runnable scenario
//! (the explored file with its faults, name, description and variants replaced), and
//! explore.md, the short report of what broke and how small the schedule got.

use super::shrink::Shrunk;
use super::{Found, Kind, Measured, Pick, Space};
use crate::scenario::Variant;
use crate::scenario::locate::{end_of_content, take_field};

/// One fault as the scenario format writes it.
pub fn pick_ron(p: &Pick) -> String {
    let node = format!("{:?}", p.targets.first().map_or("", String::as_str));
    let until = crate::sim::time::SimDuration(p.at.0 + p.duration.0);
    let when = format!("at: \"{}\", until: \"{until}\"", p.at);
    match p.kind {
        Kind::Crash => format!("Crash(node: {node}, {when})"),
        Kind::Pause => format!("Pause(node: {node}, {when})"),
        Kind::Isolate => format!("Isolate(node: {node}, {when})"),
        Kind::Partition => {
            let side: Vec<String> = p.targets.iter().map(|t| format!("{t:?}")).collect();
            format!("Partition(groups: [[{}]], {when})", side.join(", "))
        }
        Kind::Slowdown => format!(
            "Slowdown(node: {node}, factor: {:?}, {when})",
            super::SLOWDOWN_FACTOR
        ),
        Kind::Loss => format!(
            "PacketLoss(node: {node}, loss: {:?}, {when})",
            super::LOSS_FRACTION
        ),
    }
}

/// The value of a `faults:` field holding `picks`, indented for the top level of a scenario.
pub fn faults_value(picks: &[Pick]) -> String {
    if picks.is_empty() {
        return "[]".to_string();
    }
    let lines: String = picks
        .iter()
        .map(|p| format!("        {},\n", pick_ron(p)))
        .collect();
    format!("[\n{lines}    ]")
}

/// `src` with the top-level `field` set to `value` (RON text): replaced where the file has it,
/// added before the closing parenthesis where it does not.
fn set_field(src: &str, field: &str, value: &str) -> String {
    if let Some(taken) = take_field(src, &[field]) {
        let (s, e) = (taken.value.start, taken.value.end);
        return format!("{}{value}{}", &src[..s], &src[e..]);
    }
    let close = end_of_content(src).saturating_sub(1);
    let before = src[..close].trim_end();
    let comma = if before.ends_with([',', '(']) {
        ""
    } else {
        ","
    };
    format!("{before}{comma}\n    {field}: {value},\n{}", &src[close..])
}

/// Leading comment lines and blank lines of `src` removed: they describe the explored file,
/// not what was found.
fn without_header(src: &str) -> &str {
    let mut rest = src;
    loop {
        let line_end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let line = rest[..line_end].trim();
        if line.is_empty() && line_end < rest.len() || line.starts_with("//") {
            rest = &rest[line_end..];
        } else {
            return rest;
        }
    }
}

/// What the written scenario says about itself.
pub struct Story<'a> {
    /// Scenario name.
    pub name: &'a str,
    /// The command that reproduces the search and the shrink.
    pub command: &'a str,
    /// The objective, in words.
    pub objective: &'a str,
    /// What it measured under the shrunk schedule.
    pub measured: &'a Measured,
}

/// The explored scenario with only `variant` and the `picks` as its faults, runnable as is.
pub fn found_scenario(src: &str, variant: &Variant, picks: &[Pick], story: &Story<'_>) -> String {
    let faults: Vec<String> = picks.iter().map(Pick::describe).collect();
    let description = format!(
        "Found by `archsim explore`: variant \"{}\" breaks `{}` under {} ({}).",
        variant.name,
        story.objective,
        if faults.is_empty() {
            "no fault at all".to_string()
        } else {
            faults.join("; ")
        },
        story.measured.text
    );
    let mut text = without_header(src).to_string();
    text = set_field(
        &text,
        "name",
        &format!("{:?}", format!("{}: found by explore", story.name)),
    );
    text = set_field(&text, "description", &format!("{description:?}"));
    text = set_field(&text, "faults", &faults_value(picks));
    if take_field(&text, &["variants"]).is_some() {
        let overrides: Vec<String> = variant
            .overrides
            .iter()
            .map(|(path, value)| format!("{path:?}: {value}"))
            .collect();
        let one = format!(
            "{{\n        {:?}: {{ {} }},\n    }}",
            variant.name,
            overrides.join(", ")
        );
        text = set_field(&text, "variants", &one);
    }
    format!(
        "// Found by archsim explore: the smallest fault schedule it found that breaks\n\
         // `{}` in variant \"{}\". Reproduce the search and the shrink with:\n\
         //   {}\n\
         // Run it with:  archsim run <this file>\n{text}",
        story.objective, variant.name, story.command
    )
}

/// Everything explore.md reports.
pub struct Summary<'a> {
    /// Scenario name and file.
    pub scenario: &'a str,
    /// The variant explored.
    pub variant: &'a str,
    /// The objective, in words.
    pub objective: &'a str,
    /// The search seed.
    pub seed: u64,
    /// The search bounds.
    pub space: &'a Space,
    /// Schedules allowed and run.
    pub budget: u64,
    /// Schedules run.
    pub ran: u64,
    /// The objective without any fault.
    pub baseline: &'a Measured,
    /// The first failing schedule, if any.
    pub found: Option<&'a Found>,
    /// Its shrink.
    pub shrunk: Option<&'a Shrunk>,
    /// The shrunk schedule's measurement (from the written scenario's run).
    pub final_measured: Option<&'a Measured>,
    /// The command that reproduces it.
    pub command: &'a str,
}

fn list(picks: &[Pick]) -> String {
    picks
        .iter()
        .map(|p| format!("- {}\n", p.describe()))
        .collect()
}

/// explore.md.
pub fn markdown(s: &Summary<'_>) -> String {
    let sp = s.space;
    let kinds: Vec<&str> = sp.kinds.iter().map(|k| k.name()).collect();
    let mut out = format!(
        "# Fault-schedule search: {}, variant \"{}\"\n\n\
         Objective: `{}`.\n\
         Without faults: {} ({}).\n\n\
         Search: seed {}, schedules of 1 to {} faults ({}) on {}, starting in [{}, {}), lasting {} to {}.\n\
         Ran {} of a budget of {} schedules.\n\n",
        s.scenario,
        s.variant,
        s.objective,
        s.baseline.text,
        if s.baseline.broken {
            "already broken"
        } else {
            "holds"
        },
        s.seed,
        sp.max_faults,
        kinds.join(", "),
        sp.targets.join(", "),
        sp.start,
        sp.stop,
        sp.min_duration,
        sp.max_duration,
        s.ran,
        s.budget,
    );
    match (s.found, s.shrunk) {
        (Some(f), Some(sh)) => {
            out += &format!(
                "## Broken\n\nSchedule #{} breaks it ({}):\n\n{}\n",
                f.index,
                f.measured.text,
                list(&f.picks)
            );
            out += &format!(
                "Shrunk in {} runs from {} fault{} to {}{}:\n\n{}\n",
                sh.runs,
                f.picks.len(),
                if f.picks.len() == 1 { "" } else { "s" },
                sh.picks.len(),
                if sh.exhausted {
                    " (the shrink budget ran out: smaller may exist)"
                } else {
                    " (no single simpler step still fails)"
                },
                list(&sh.picks)
            );
            if let Some(m) = s.final_measured {
                out += &format!("Under the shrunk schedule: {}.\n\n", m.text);
            }
            let steps: String = sh.steps.iter().map(|x| format!("- {x}\n")).collect();
            if !steps.is_empty() {
                out += &format!("Steps:\n\n{steps}\n");
            }
            out += &format!(
                "Paste into the scenario:\n\n```ron\n    faults: {},\n```\n\n",
                faults_value(&sh.picks)
            );
        }
        _ => {
            out += &format!(
                "## Not broken\n\nNo schedule of the {} run broke the objective.\n\
                 That is evidence, not proof: a larger budget, more fault kinds or wider bounds may still find one.\n\n",
                s.ran
            );
        }
    }
    out += &format!("Reproduce:\n\n```sh\n{}\n```\n", s.command);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::time::SimDuration;

    #[test]
    fn a_field_is_replaced_or_added_and_the_header_goes() {
        let src = "// old story\n\n// more\nScenario(\n    name: \"x\",\n    faults: [Crash(node: \"a\", at: \"1s\")],\n    duration: \"2s\"\n)\n";
        let body = without_header(src);
        assert!(body.starts_with("Scenario("));
        let replaced = set_field(body, "faults", "[]");
        assert!(
            replaced.contains("    faults: [],\n    duration"),
            "{replaced}"
        );
        let added = set_field(body, "seed", "9");
        assert!(
            added.ends_with("duration: \"2s\",\n    seed: 9,\n)\n"),
            "{added}"
        );
    }

    #[test]
    fn picks_print_as_the_faults_they_run_as() {
        let p = Pick {
            kind: Kind::Partition,
            targets: vec!["shard-2".into(), "shard-3".into()],
            at: SimDuration::from_millis(20_500),
            duration: SimDuration::from_millis(250),
        };
        assert_eq!(
            pick_ron(&p),
            "Partition(groups: [[\"shard-2\", \"shard-3\"]], at: \"20.5s\", until: \"20.75s\")"
        );
        let text = format!(
            "Scenario(faults: {})",
            faults_value(std::slice::from_ref(&p))
        );
        let parsed = take_field(&text, &["faults"]).expect("a faults field");
        assert!(text[parsed.value.start..parsed.value.end].contains("20.75s"));
    }
}
