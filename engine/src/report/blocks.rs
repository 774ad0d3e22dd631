//! Report sections as blocks (headings, tables, paragraphs, lists) written once and rendered
//! as Markdown or HTML, so `summary.md` and `index.html` show the same content.

use super::format::{html_escape, markdown_cell};
use super::table::Table;

/// One piece of a report section.
pub enum Block {
    /// A heading of level 2 or 3.
    Heading(u8, String),
    /// A table.
    Table(Table),
    /// A paragraph (one sentence per line in Markdown).
    Para(String),
    /// A bulleted list.
    List(Vec<String>),
}

/// The blocks as Markdown.
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                if !out.is_empty() && !out.ends_with("\n\n") {
                    out.push('\n');
                }
                out.push_str(&format!("{} {}\n\n", "#".repeat(*level as usize), text));
            }
            Block::Table(t) => {
                out.push_str(&t.to_markdown());
                out.push('\n');
            }
            Block::Para(text) => {
                let lines: Vec<String> = text.lines().map(markdown_cell).collect();
                out.push_str(&lines.join("\n"));
                out.push_str("\n\n");
            }
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {}\n", markdown_cell(i)));
                }
                out.push('\n');
            }
        }
    }
    out
}

/// The blocks as HTML.
pub fn html(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                let id = anchor(text);
                let text = html_escape(text);
                out.push_str(&format!("<h{level} id=\"{id}\">{text}</h{level}>\n"));
            }
            // Wide tables scroll inside their box, not the page.
            Block::Table(t) => {
                out.push_str(&format!("<div class=\"wide\">\n{}</div>\n", t.to_html()));
            }
            Block::Para(text) => {
                let text = html_escape(text).replace('\n', "<br>\n");
                out.push_str(&format!("<p class=\"note\">{text}</p>\n"));
            }
            Block::List(items) => {
                out.push_str("<ul class=\"note\">\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", html_escape(i)));
                }
                out.push_str("</ul>\n");
            }
        }
    }
    out
}

/// A heading's anchor: lower case, runs of anything but letters and digits as one `-`.
pub fn anchor(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}
