//! Number formatting shared by every table and plot, fixed so output is byte-identical.
//!
//! Rust's float formatting with an explicit precision is exact and platform independent, so
//! `{:.3}` gives the same text everywhere. Non-finite values print as `-` rather than `NaN`,
//! because a reader of a table cares that the number is missing, not why.

/// What we print instead of a number that is missing, NaN or infinite.
pub const MISSING: &str = "-";

/// A latency in milliseconds with about three significant digits after the point.
pub fn ms(value: f64) -> String {
    if !value.is_finite() {
        return MISSING.to_string();
    }
    let magnitude = value.abs();
    let decimals = if magnitude >= 100.0 {
        1
    } else if magnitude >= 10.0 {
        2
    } else {
        3
    };
    fixed(value, decimals)
}

/// A fraction in 0..1 as a percentage with `decimals` digits, e.g. `99.950%`.
pub fn percent(fraction: f64, decimals: usize) -> String {
    if !fraction.is_finite() {
        return MISSING.to_string();
    }
    format!("{}%", fixed(fraction * 100.0, decimals))
}

/// A finite value with a fixed number of decimals; `-` otherwise. Never prints `-0.000`.
pub fn fixed(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return MISSING.to_string();
    }
    let text = format!("{value:.decimals$}");
    // A tiny negative value rounds to "-0.00"; a reader would take the sign for a real one.
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        return text[1..].to_string();
    }
    text
}

/// A count with thousands separators, e.g. `1,234,567`, so large numbers read at a glance.
pub fn count(value: u64) -> String {
    group_thousands(&value.to_string())
}

/// `fixed`, with thousands separators in the integer part: `12,345.6`.
pub fn grouped(value: f64, decimals: usize) -> String {
    let text = fixed(value, decimals);
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (integer, fraction) = match unsigned.find('.') {
        Some(dot) => unsigned.split_at(dot),
        None => (unsigned, ""),
    };
    if !integer.bytes().all(|b| b.is_ascii_digit()) {
        return text; // `-` for a missing value.
    }
    format!("{sign}{}{fraction}", group_thousands(integer))
}

/// Inserts `,` every three digits from the right of a string of digits.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in seconds, without trailing zeros: `60 s`, `0.5 s`, `1.25 s`.
pub fn seconds(value: f64) -> String {
    if !value.is_finite() {
        return MISSING.to_string();
    }
    let text = fixed(value, 3);
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    format!("{trimmed} s")
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Escapes text for a Markdown table cell: a `|` would end the cell, a newline the row.
pub fn markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\\' | '*' | '_' | '`' | '<' | '>' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_keeps_about_three_significant_digits() {
        assert_eq!(ms(0.41234), "0.412");
        assert_eq!(ms(12.3456), "12.35");
        assert_eq!(ms(245.06), "245.1");
        assert_eq!(ms(f64::NAN), "-");
        assert_eq!(ms(f64::INFINITY), "-");
    }

    #[test]
    fn percentages_and_negative_zero() {
        assert_eq!(percent(0.9995, 3), "99.950%");
        assert_eq!(percent(f64::NAN, 2), "-");
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(-1.5, 1), "-1.5");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(grouped(7979.26, 1), "7,979.3");
        assert_eq!(grouped(-1234567.0, 0), "-1,234,567");
        assert_eq!(grouped(12.5, 2), "12.50");
        assert_eq!(grouped(f64::NAN, 1), "-");
    }

    #[test]
    fn seconds_drop_trailing_zeros() {
        assert_eq!(seconds(60.0), "60 s");
        assert_eq!(seconds(0.5), "0.5 s");
        assert_eq!(seconds(1.25), "1.25 s");
    }

    #[test]
    fn escaping() {
        assert_eq!(html_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(markdown_cell("a|b_c"), "a\\|b\\_c");
    }
}
