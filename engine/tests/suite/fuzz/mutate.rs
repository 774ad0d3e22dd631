//! The mutation engine: seeded, deterministic edits of a scenario's text that a hostile or
//! careless user might make. The same (text, seed) always gives the same mutant, so every
//! crash the fuzzer reports can be replayed from its seed alone.
//!
//! ```text
//!  text ──tokens (strings, numbers, identifiers, brackets)──▶ pick a class by the seed
//!       ──▶ token edit | extreme number | extreme duration | duplicated entry |
//!           swapped name | truncation ──▶ mutant (1 to 3 edits stacked)
//! ```

use archsim::sim::rng::{RandomSource, SimRng};

/// The kinds of edit, each a way real files go wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Delete, duplicate or swap tokens, or insert punctuation.
    Token,
    /// A number becomes 0, -1, 1, 1e308, NaN, inf, a huge integer...
    Number,
    /// A duration becomes "0s", "1ns", "100000h", "-5s", 400 digits...
    Duration,
    /// A map entry or list element written twice.
    Duplicate,
    /// One quoted name replaced by another from the same file.
    SwapName,
    /// The file cut short.
    Truncate,
}

/// Every class, in the order the seed picks from.
pub const CLASSES: [Class; 6] = [
    Class::Token,
    Class::Number,
    Class::Duration,
    Class::Duplicate,
    Class::SwapName,
    Class::Truncate,
];

const NUMBERS: [&str; 16] = [
    "0",
    "-1",
    "1",
    "2",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "0.0",
    "1e-300",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "1000000000",
    "65",
    "0.5",
];

const DURATIONS: [&str; 14] = [
    "\"0s\"",
    "\"0\"",
    "\"1ns\"",
    "\"100000h\"",
    "\"-5s\"",
    "\"1e3s\"",
    "\"5124095h\"",
    "\"5124096h\"",
    "\"0.0000000001s\"",
    "\"16h\"",
    "\"1000000h\"",
    "\"\"",
    "\"1 s\"",
    "\"10min\"",
];

const INSERTS: [&str; 14] = [
    "(", ")", "{", "}", "[", "]", ",", ":", "\"", "'", "//", "/*", "Some(", "é",
];

/// A token of the source, by byte range, with what kind of text it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Number,
    Ident,
    Punct,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// A light tokenizer: enough to find values and keys, tolerant of anything (mutants of
/// mutants are tokenized too).
fn tokens(src: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                Kind::Str
            }
            b'0'..=b'9' | b'-' | b'.' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || b"._-+".contains(&bytes[i]))
                {
                    i += 1;
                }
                Kind::Number
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                Kind::Ident
            }
            _ => {
                i += 1;
                while i < bytes.len() && !src.is_char_boundary(i) {
                    i += 1;
                }
                Kind::Punct
            }
        };
        out.push(Token {
            kind,
            start,
            end: i.min(bytes.len()),
        });
    }
    out
}

/// One mutant of `src` from `seed`: one to three edits, and the classes used.
pub fn mutant(src: &str, seed: u64) -> (String, Vec<Class>) {
    let mut rng = SimRng::derive(seed, "fuzz-mutant");
    let edits = 1 + rng.below(3) as usize;
    let mut text = src.to_string();
    let mut used = Vec::new();
    for _ in 0..edits {
        let class = CLASSES[rng.below(CLASSES.len() as u64) as usize];
        text = apply(&text, class, &mut rng);
        used.push(class);
    }
    (text, used)
}

/// `src` with one edit of `class`.
pub fn apply(src: &str, class: Class, rng: &mut SimRng) -> String {
    let toks = tokens(src);
    if toks.is_empty() {
        return src.to_string();
    }
    let pick = |rng: &mut SimRng, kind: Option<Kind>, pred: &dyn Fn(&str) -> bool| {
        let fits: Vec<&Token> = toks
            .iter()
            .filter(|t| kind.is_none_or(|k| t.kind == k) && pred(&src[t.start..t.end]))
            .collect();
        (!fits.is_empty()).then(|| *fits[rng.below(fits.len() as u64) as usize])
    };
    let replace = |t: Token, with: &str| format!("{}{with}{}", &src[..t.start], &src[t.end..]);
    match class {
        Class::Token => token_edit(src, &toks, rng),
        Class::Number => match pick(rng, Some(Kind::Number), &|_| true) {
            Some(t) => replace(t, NUMBERS[rng.below(NUMBERS.len() as u64) as usize]),
            None => src.to_string(),
        },
        Class::Duration => match pick(rng, Some(Kind::Str), &is_duration) {
            Some(t) => {
                let huge = format!("\"{}s\"", "9".repeat(400));
                let d = rng.below(DURATIONS.len() as u64 + 1) as usize;
                replace(t, DURATIONS.get(d).copied().unwrap_or(&huge))
            }
            None => src.to_string(),
        },
        Class::Duplicate => duplicate(src, &toks, rng),
        Class::SwapName => {
            let is_name = |s: &str| s.len() > 2 && !is_duration(s) && !s.contains(' ');
            match (
                pick(rng, Some(Kind::Str), &is_name),
                pick(rng, Some(Kind::Str), &is_name),
            ) {
                (Some(a), Some(b)) => replace(a, &src[b.start..b.end]),
                _ => src.to_string(),
            }
        }
        Class::Truncate => {
            let t = toks[rng.below(toks.len() as u64) as usize];
            src[..t.start].to_string()
        }
    }
}

fn is_duration(quoted: &str) -> bool {
    let s = quoted.trim_matches('"');
    s.starts_with(|c: char| c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_alphabetic())
        && s.len() < 16
}

fn token_edit(src: &str, toks: &[Token], rng: &mut SimRng) -> String {
    let t = toks[rng.below(toks.len() as u64) as usize];
    let text = &src[t.start..t.end];
    match rng.below(4) {
        0 => format!("{}{}", &src[..t.start], &src[t.end..]),
        1 => format!("{}{text}{}", &src[..t.end], &src[t.end..]),
        2 => {
            let ins = INSERTS[rng.below(INSERTS.len() as u64) as usize];
            format!("{}{ins}{}", &src[..t.start], &src[t.start..])
        }
        _ => {
            let u = toks[rng.below(toks.len() as u64) as usize];
            let (a, b) = if t.start <= u.start { (t, u) } else { (u, t) };
            if a.end > b.start {
                return src.to_string();
            }
            format!(
                "{}{}{}{}{}",
                &src[..a.start],
                &src[b.start..b.end],
                &src[a.end..b.start],
                &src[a.start..a.end],
                &src[b.end..]
            )
        }
    }
}

/// Writes an entry (from a key or field to the comma after its value) a second time, right
/// after itself: a duplicated map key, struct field or list element.
fn duplicate(src: &str, toks: &[Token], rng: &mut SimRng) -> String {
    let keys: Vec<usize> = (0..toks.len().saturating_sub(1))
        .filter(|&i| {
            matches!(toks[i].kind, Kind::Str | Kind::Ident)
                && &src[toks[i + 1].start..toks[i + 1].end] == ":"
        })
        .collect();
    if keys.is_empty() {
        return src.to_string();
    }
    let k = keys[rng.below(keys.len() as u64) as usize];
    let mut depth = 0i32;
    let mut end = None;
    for t in &toks[k + 2..] {
        match &src[t.start..t.end] {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 0 => break,
            ")" | "]" | "}" => depth -= 1,
            "," if depth == 0 => {
                end = Some(t.end);
                break;
            }
            _ => {}
        }
    }
    let Some(end) = end else {
        return src.to_string();
    };
    let entry = &src[toks[k].start..end];
    format!("{}{entry} {entry}{}", &src[..toks[k].start], &src[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 10.0)),
  "app": Server(service_time: Constant("1ms")),
})"#;

    #[test]
    fn mutants_are_deterministic_and_differ() {
        let a: Vec<String> = (0..200).map(|s| mutant(SRC, s).0).collect();
        let b: Vec<String> = (0..200).map(|s| mutant(SRC, s).0).collect();
        assert_eq!(a, b);
        let changed = a.iter().filter(|m| m.as_str() != SRC).count();
        assert!(changed > 180, "{changed} of 200 mutants changed the text");
    }

    #[test]
    fn every_class_edits_the_text() {
        for class in CLASSES {
            let mut rng = SimRng::derive(5, "class");
            let edited = (0..20)
                .filter(|_| apply(SRC, class, &mut rng) != SRC)
                .count();
            assert!(edited >= 10, "{class:?} edited {edited} of 20");
        }
    }

    #[test]
    fn duplicating_an_entry_writes_it_twice() {
        let mut rng = SimRng::derive(1, "dup");
        let toks = tokens(SRC);
        let out = duplicate(SRC, &toks, &mut rng);
        // One more `key: value`, so one more colon (or more, if the value holds fields).
        assert!(out.matches(':').count() > SRC.matches(':').count(), "{out}");
    }
}
