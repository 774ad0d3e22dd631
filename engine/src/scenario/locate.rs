//! Finds where a validation path such as `nodes."lb".backends[1]` sits in a scenario's RON text.
//!
//! serde forgets source positions, so validation reports problems by path instead. This module
//! reads the source a second time with a small tokenizer and tree builder of its own, so that a
//! path can be turned back into the byte span that `diag` underlines. It is deliberately
//! tolerant: the file may already have failed to parse, and a diagnostic that points at the
//! nearest value still beats none, so it never fails and never panics.
//!
//! ```text
//!   source --tokenize--> [Token] --Parser--> Value tree --walk(path)--> Span
//! ```

use crate::contract::validate::PathSeg;
use core::fmt;
use core::ops::Range;

/// A byte range `start..end` into the scenario source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// Returns this span made safe to slice `src` with: inside it, on char boundaries, and
    /// `start <= end`. Spans from [`locate`] already are; this guards hand-made ones.
    #[must_use]
    pub fn clamp_to(self, src: &str) -> Span {
        let end = floor_char_boundary(src, self.end);
        let start = floor_char_boundary(src, self.start.min(end));
        Span { start, end }
    }
}

impl From<Span> for Range<usize> {
    fn from(span: Span) -> Range<usize> {
        span.start..span.end
    }
}

/// Displays a path the way diagnostics print it: `nodes."users".target`, `faults[1].groups[0]`.
///
/// Map keys are quoted (with Rust escapes) so a key containing a dot, such as
/// `variants."p2c"."lb.strategy"`, stays unambiguous. The empty path prints as nothing.
#[derive(Clone, Copy, Debug)]
pub struct DisplayPath<'a>(pub &'a [PathSeg]);

impl fmt::Display for DisplayPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            let dot = if i > 0 { "." } else { "" };
            match seg {
                PathSeg::Field(name) => write!(f, "{dot}{name}")?,
                PathSeg::Key(key) => write!(f, "{dot}{key:?}")?,
                PathSeg::Index(idx) => write!(f, "[{idx}]")?,
            }
        }
        Ok(())
    }
}

/// Formats a path as diagnostics print it, e.g. `nodes."users".target`; see [`DisplayPath`].
#[must_use]
pub fn path_to_string(path: &[PathSeg]) -> String {
    DisplayPath(path).to_string()
}

/// Returns the byte span of the value at `path` in the RON text `src`.
///
/// For a field that is the value after `field:`, for a map key the value after `"key":`, for an
/// index the element itself. An empty path gives the whole top-level value. When the path does
/// not fully exist (an omitted field whose default applies, or a file that does not parse), the
/// span of the deepest value that does exist is returned, and `0..0` if there is no value at all.
///
/// A `Field` or `Key` step also matches a map key or field of that name, and looks through a
/// single-element wrapper such as `Some(..)` or a newtype variant, because serde's typed view
/// (which produced the path) does not see those distinctions.
#[must_use]
pub fn locate(src: &str, path: &[PathSeg]) -> Span {
    let mut parser = Parser::new(src);
    let Some(root) = parser.document() else {
        return Span::default();
    };
    let mut value = &root;
    for seg in path {
        match child(value, seg) {
            Some(next) => value = next,
            None => break,
        }
    }
    value.span
}

/// A field taken out of a struct's text by [`take_field`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenField {
    /// Which of the names asked for it was written as.
    pub name: String,
    /// Where its value is in the text.
    pub value: Span,
    /// The text with the field (name, colon, value and a comma after it) blanked out with
    /// spaces, so everything else keeps its offset.
    pub rest: String,
}

/// Takes the first field called one of `names` out of the struct `Kind(..)` that `src` holds
/// (a field every node may have, such as `zone`, before the node's own type reads the rest).
/// `None` if `src` is not such a struct or has no such field.
#[must_use]
pub fn take_field(src: &str, names: &[&str]) -> Option<TakenField> {
    let root = Parser::new(src).document()?;
    if root.kind != Kind::Parens {
        return None;
    }
    let entry = root
        .entries
        .iter()
        .find(|e| matches!(&e.key, Key::Field(f) if names.contains(&f.as_str())))?;
    let Key::Field(name) = &entry.key else {
        return None;
    };
    let start = entry.key_span.start;
    let mut end = entry.value.span.end;
    let after = &src[end..];
    let gap = after.len() - after.trim_start().len();
    if after[gap..].starts_with(',') {
        end += gap + 1;
    }
    let mut rest = String::with_capacity(src.len());
    for (i, c) in src.char_indices() {
        if (start..end).contains(&i) && c != '\n' {
            // As many spaces as the char has bytes: the offsets of what follows stay.
            rest.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            rest.push(c);
        }
    }
    Some(TakenField {
        name: name.clone(),
        value: entry.value.span,
        rest,
    })
}

/// Returns the 1-based line and column of byte `offset` in `src`, the column counted in chars.
///
/// An offset past the end or inside a multi-byte char is moved back to the nearest char start.
#[must_use]
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..floor_char_boundary(src, offset)];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// A map key written twice in one map: serde keeps the last silently, so it is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The path of the map, e.g. `nodes` or `variants."p2c"`.
    pub map: Vec<PathSeg>,
    /// The key as the map sees it (unquoted).
    pub key: String,
    /// Where it is written first.
    pub first: Span,
    /// Where it is written again.
    pub again: Span,
}

/// Every key written more than once in a `{ .. }` map of `src`, in source order.
#[must_use]
pub fn duplicate_keys(src: &str) -> Vec<DuplicateKey> {
    let mut out = Vec::new();
    if let Some(root) = Parser::new(src).document() {
        duplicates_in(&root, &mut Vec::new(), &mut out);
    }
    out
}

fn duplicates_in(value: &Value, path: &mut Vec<PathSeg>, out: &mut Vec<DuplicateKey>) {
    if value.kind == Kind::Map {
        for (i, entry) in value.entries.iter().enumerate() {
            let Key::Map(key) = &entry.key else { continue };
            let first = value.entries[..i].iter().find(|e| e.key == entry.key);
            if let Some(first) = first {
                out.push(DuplicateKey {
                    map: path.clone(),
                    key: key.clone(),
                    first: first.key_span,
                    again: entry.key_span,
                });
            }
        }
    }
    for entry in &value.entries {
        path.push(match &entry.key {
            Key::Field(f) => PathSeg::Field(f.clone()),
            Key::Map(k) => PathSeg::Key(k.clone()),
            Key::Pos(i) => PathSeg::Index(*i),
        });
        duplicates_in(&entry.value, path, out);
        path.pop();
    }
}

/// The innermost bracket still open where `src` ends, and the one that would close it:
/// what to say when the file ends too soon.
#[must_use]
pub fn unclosed_at_end(src: &str) -> Option<(Span, char)> {
    let mut open: Vec<(Span, Delim)> = Vec::new();
    for tok in tokenize(src) {
        match tok.kind {
            Tok::Open(d) => open.push((tok.span, d)),
            Tok::Close(d) => {
                if let Some(i) = open.iter().rposition(|(_, o)| *o == d) {
                    open.truncate(i);
                }
            }
            _ => {}
        }
    }
    open.pop().map(|(span, d)| {
        let close = match d {
            Delim::Paren => ')',
            Delim::Bracket => ']',
            Delim::Brace => '}',
        };
        (span, close)
    })
}

/// Where the text ends once trailing whitespace and comments are left out.
#[must_use]
pub fn end_of_content(src: &str) -> usize {
    tokenize(src).last().map_or(0, |t| t.span.end)
}

/// The largest char boundary of `src` at or below `offset` (std's version needs Rust 1.91).
fn floor_char_boundary(src: &str, offset: usize) -> usize {
    let mut idx = offset.min(src.len());
    // Index 0 is always a boundary, so this stops.
    while !src.is_char_boundary(idx) {
        idx -= 1;
    }
    idx
}

/// Finds the value one path step below `value`, if it exists.
fn child<'v>(value: &'v Value, seg: &PathSeg) -> Option<&'v Value> {
    // Last match wins, as it does when serde fills a map from duplicate keys.
    if let Some(entry) = value.entries.iter().rev().find(|e| e.key.matches(seg)) {
        return Some(&entry.value);
    }
    // serde sees through `Some(..)` and newtype variants, so the path skips them; we must too.
    match (seg, value.kind, value.entries.as_slice()) {
        (PathSeg::Field(_) | PathSeg::Key(_), Kind::Parens, [only]) if only.key == Key::Pos(0) => {
            child(&only.value, seg)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

/// Which bracket pair a delimiter token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delim {
    Paren,
    Bracket,
    Brace,
}

/// Token kinds; the text stays in the source and is sliced out through the span when needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Ident,
    Str,
    Char,
    Number,
    Open(Delim),
    Close(Delim),
    Colon,
    Comma,
    /// Anything else, one char at a time, such as the `#` and `!` of `#![enable(..)]`.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Tok,
    span: Span,
}

/// A cursor over the source; `pos` only ever moves by whole chars, so it stays on a boundary.
struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

/// Splits `src` into tokens, skipping whitespace and comments. Unterminated strings and comments
/// run to the end of the input rather than being errors.
fn tokenize(src: &str) -> Vec<Token> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_trivia();
        let start = lexer.pos;
        let Some(kind) = lexer.token() else {
            return tokens;
        };
        let span = Span {
            start,
            end: lexer.pos,
        };
        tokens.push(Token { kind, span });
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.peek_second()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => self.bump_while(|c| c != '\n'),
                (Some('/'), Some('*')) => self.block_comment(),
                _ => return,
            }
        }
    }

    /// Skips a block comment. They nest in RON, so commenting out a block that itself holds a
    /// comment keeps all of it commented out.
    fn block_comment(&mut self) {
        let mut depth = 0usize;
        loop {
            match (self.peek(), self.peek_second()) {
                (None, _) => return,
                (Some('/'), Some('*')) => {
                    self.pos += 2;
                    depth += 1;
                }
                (Some('*'), Some('/')) => {
                    self.pos += 2;
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// Reads one token starting at a non-trivia char; `None` at the end of input.
    fn token(&mut self) -> Option<Tok> {
        let c = self.peek()?;
        let second = self.peek_second();
        let kind = match c {
            '"' => self.quoted('"', Tok::Str),
            '\'' => self.quoted('\'', Tok::Char),
            'b' if second == Some('"') => {
                self.bump();
                self.quoted('"', Tok::Str)
            }
            'r' | 'b' if self.raw_string() => Tok::Str,
            '-' | '+' if second.is_some_and(|s| s == '.' || s.is_alphanumeric()) => self.number(),
            '.' if second.is_some_and(|s| s.is_ascii_digit()) => self.number(),
            c if c.is_ascii_digit() => self.number(),
            c if is_ident_start(c) => self.ident(),
            _ => self.punct(c),
        };
        Some(kind)
    }

    fn punct(&mut self, c: char) -> Tok {
        self.bump();
        match c {
            '(' => Tok::Open(Delim::Paren),
            ')' => Tok::Close(Delim::Paren),
            '[' => Tok::Open(Delim::Bracket),
            ']' => Tok::Close(Delim::Bracket),
            '{' => Tok::Open(Delim::Brace),
            '}' => Tok::Close(Delim::Brace),
            ':' => Tok::Colon,
            ',' => Tok::Comma,
            _ => Tok::Other,
        }
    }

    /// Reads a `"string"` or `'c'` from its opening quote, honouring backslash escapes.
    fn quoted(&mut self, quote: char, kind: Tok) -> Tok {
        self.bump();
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                // A stray `'` must not swallow the rest of the file; strings may span lines.
                '\n' if quote == '\'' => break,
                c if c == quote => break,
                _ => {}
            }
        }
        kind
    }

    /// Reads `r"..."`, `r#"..."#` or `br#"..."#` if that is what comes next; returns whether it did.
    fn raw_string(&mut self) -> bool {
        let rest = self.rest();
        let Some(after_prefix) = rest.strip_prefix("br").or_else(|| rest.strip_prefix('r')) else {
            return false;
        };
        let body = after_prefix.trim_start_matches('#');
        let Some(body) = body.strip_prefix('"') else {
            return false;
        };
        let n_hashes = after_prefix.len() - body.len() - 1;
        let closing = format!("\"{}", "#".repeat(n_hashes));
        let body_start = rest.len() - body.len();
        let len = body
            .find(&closing)
            .map_or(rest.len(), |idx| body_start + idx + closing.len());
        self.pos += len;
        true
    }

    /// Reads a number: `7`, `-1.5e-3`, `0x1F`, `1_000u32`, `-inf`, `+NaN`, `.5`.
    fn number(&mut self) -> Tok {
        if matches!(self.peek(), Some('-' | '+')) {
            self.bump();
        }
        let hex = self.rest().starts_with("0x") || self.rest().starts_with("0X");
        while let Some(c) = self.peek() {
            if !(is_ident_continue(c) || c == '.') {
                break;
            }
            self.bump();
            // In `1e-3` the sign belongs to the exponent; in hex `e` is just a digit.
            if !hex && matches!(c, 'e' | 'E') && matches!(self.peek(), Some('-' | '+')) {
                self.bump();
            }
        }
        Tok::Number
    }

    /// Reads an identifier, including a raw one such as `r#type`.
    fn ident(&mut self) -> Tok {
        let start = self.pos;
        self.bump_while(is_ident_continue);
        let is_raw_prefix = &self.src[start..self.pos] == "r" && self.peek() == Some('#');
        if is_raw_prefix && self.peek_second().is_some_and(is_ident_start) {
            self.bump();
            self.bump_while(is_ident_continue);
        }
        Tok::Ident
    }
}

// ---------------------------------------------------------------------------------------------
// Value tree

/// The shape of a value, as far as path lookup cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A string literal; as a map key it is matched by its unescaped text.
    Str,
    /// Any other scalar: number, char, unit variant, `true`.
    Scalar,
    /// `(..)` or `Name(..)`: a struct, tuple, or enum variant with contents.
    Parens,
    List,
    Map,
}

/// How an entry is addressed inside its container.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Field(String),
    Map(String),
    Pos(usize),
}

impl Key {
    fn matches(&self, seg: &PathSeg) -> bool {
        match (self, seg) {
            (Key::Field(a) | Key::Map(a), PathSeg::Field(b) | PathSeg::Key(b)) => a == b,
            (Key::Pos(a), PathSeg::Index(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Entry {
    key: Key,
    /// Where the key is written (for a positional element, its value).
    key_span: Span,
    value: Value,
}

#[derive(Debug)]
struct Value {
    span: Span,
    kind: Kind,
    /// Empty for scalars.
    entries: Vec<Entry>,
}

/// Nesting beyond this is skipped over rather than parsed, so hostile input cannot overflow the
/// stack; real scenarios nest a handful of levels.
const MAX_DEPTH: usize = 128;

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    /// End of the last token consumed: where an unterminated value stops.
    last_end: usize,
    /// Delimiters of the containers being parsed, innermost last.
    open: Vec<Delim>,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str) -> Parser<'s> {
        Parser {
            src,
            tokens: tokenize(src),
            pos: 0,
            last_end: 0,
            open: Vec::new(),
        }
    }

    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn peek_kind_at(&self, ahead: usize) -> Option<Tok> {
        self.tokens.get(self.pos + ahead).map(|t| t.kind)
    }

    fn bump(&mut self) -> Option<Token> {
        let tok = self.peek()?;
        self.pos += 1;
        self.last_end = tok.span.end;
        Some(tok)
    }

    fn text(&self, span: Span) -> &'s str {
        &self.src[span.start..span.end]
    }

    /// Parses the top-level value, after any `#![enable(..)]` attributes.
    fn document(&mut self) -> Option<Value> {
        self.skip_attributes();
        self.value(0)
    }

    fn skip_attributes(&mut self) {
        while let (Some(hash), Some(Tok::Other), Some(Tok::Open(Delim::Bracket))) =
            (self.peek(), self.peek_kind_at(1), self.peek_kind_at(2))
        {
            if self.text(hash.span) != "#" {
                return;
            }
            self.pos += 2;
            self.skip_group();
        }
    }

    /// Consumes a balanced group from its opening token without building anything.
    fn skip_group(&mut self) {
        let mut depth = 0usize;
        while let Some(tok) = self.bump() {
            match tok.kind {
                Tok::Open(_) => depth += 1,
                Tok::Close(_) => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth == 0 {
                return;
            }
        }
    }

    /// Parses the value starting at the next token, or returns `None` without consuming
    /// anything if that token cannot start a value.
    fn value(&mut self, depth: usize) -> Option<Value> {
        let tok = self.peek()?;
        let kind = match tok.kind {
            Tok::Open(delim) => return Some(self.container(tok.span.start, delim, depth)),
            Tok::Ident if self.peek_kind_at(1) == Some(Tok::Open(Delim::Paren)) => {
                self.bump();
                return Some(self.container(tok.span.start, Delim::Paren, depth));
            }
            Tok::Str => Kind::Str,
            Tok::Ident | Tok::Char | Tok::Number => Kind::Scalar,
            Tok::Close(_) | Tok::Colon | Tok::Comma | Tok::Other => return None,
        };
        self.bump();
        Some(Value {
            span: tok.span,
            kind,
            entries: Vec::new(),
        })
    }

    /// Parses a container from its opening delimiter up to the matching close, or up to a
    /// close that belongs to an enclosing container, or the end of input.
    fn container(&mut self, start: usize, delim: Delim, depth: usize) -> Value {
        let kind = match delim {
            Delim::Paren => Kind::Parens,
            Delim::Bracket => Kind::List,
            Delim::Brace => Kind::Map,
        };
        let mut entries = Vec::new();
        if depth >= MAX_DEPTH {
            self.skip_group();
        } else {
            self.bump();
            self.open.push(delim);
            self.entries(delim, depth + 1, &mut entries);
            self.open.pop();
        }
        let span = Span {
            start,
            end: self.last_end,
        };
        Value {
            span,
            kind,
            entries,
        }
    }

    /// Parses the entries of the innermost open container, consuming its closing delimiter.
    fn entries(&mut self, delim: Delim, depth: usize, entries: &mut Vec<Entry>) {
        let mut n_positional = 0;
        while let Some(tok) = self.peek() {
            match tok.kind {
                Tok::Close(close) if close == delim => {
                    self.bump();
                    return;
                }
                // Leave it for the enclosing container it closes, so one typo does not
                // swallow the rest of the file; a close nobody opened is just skipped.
                Tok::Close(close) if self.open.contains(&close) => return,
                Tok::Close(_) | Tok::Comma | Tok::Colon | Tok::Other => {
                    self.bump();
                }
                _ => {
                    let entry = match delim {
                        Delim::Paren => self.paren_entry(depth, &mut n_positional),
                        Delim::Bracket => self.positional(depth, &mut n_positional),
                        Delim::Brace => self.map_entry(depth),
                    };
                    entries.extend(entry);
                }
            }
        }
    }

    /// A `name: value` field or a positional element inside parentheses.
    fn paren_entry(&mut self, depth: usize, n_positional: &mut usize) -> Option<Entry> {
        let name_tok = self.peek()?;
        let is_field = name_tok.kind == Tok::Ident && self.peek_kind_at(1) == Some(Tok::Colon);
        if !is_field {
            return self.positional(depth, n_positional);
        }
        self.pos += 2;
        let name = self.text(name_tok.span);
        let name = name.strip_prefix("r#").unwrap_or(name).to_owned();
        let value = self.value(depth)?;
        Some(Entry {
            key: Key::Field(name),
            key_span: name_tok.span,
            value,
        })
    }

    fn positional(&mut self, depth: usize, n_positional: &mut usize) -> Option<Entry> {
        let Some(value) = self.value(depth) else {
            // Not a value start; skip it so the caller's loop always makes progress.
            self.bump();
            return None;
        };
        let key = Key::Pos(*n_positional);
        *n_positional += 1;
        Some(Entry {
            key,
            key_span: value.span,
            value,
        })
    }

    /// A `key: value` pair inside braces.
    fn map_entry(&mut self, depth: usize) -> Option<Entry> {
        let Some(key) = self.value(depth) else {
            self.bump();
            return None;
        };
        if self.peek_kind_at(0) != Some(Tok::Colon) {
            return None;
        }
        self.bump();
        let value = self.value(depth)?;
        let text = self.text(key.span);
        let key_span = key.span;
        let key = match key.kind {
            Kind::Str => string_content(text),
            Kind::Scalar | Kind::Parens | Kind::List | Kind::Map => text.to_owned(),
        };
        Some(Entry {
            key: Key::Map(key),
            key_span,
            value,
        })
    }
}

/// The text a string literal stands for: quotes and raw-string hashes removed, escapes applied.
fn string_content(literal: &str) -> String {
    let literal = literal.strip_prefix('b').unwrap_or(literal);
    if let Some(after_r) = literal.strip_prefix('r') {
        let body = after_r.trim_start_matches('#');
        let n_hashes = after_r.len() - body.len();
        let body = body.strip_prefix('"').unwrap_or(body);
        let closing = format!("\"{}", "#".repeat(n_hashes));
        return body.strip_suffix(&closing).unwrap_or(body).to_owned();
    }
    unescape(literal.strip_prefix('"').unwrap_or(literal))
}

/// Applies RON string escapes up to the closing quote. Unknown escapes keep the escaped char.
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some('u') => out.extend(unicode_escape(&mut chars)),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

/// Decodes the `{1F600}` part of a `\u{1F600}` escape.
fn unicode_escape(chars: &mut core::str::Chars<'_>) -> Option<char> {
    let rest = chars.as_str().strip_prefix('{')?;
    let close = rest.find('}')?;
    let code = u32::from_str_radix(&rest[..close], 16).ok();
    *chars = rest[close + 1..].chars();
    char::from_u32(code?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"// A comment
Scenario(
    name: "Load balancer strategies",
    seed: 7,
    duration: "60s",
    network: (latency: LogNormal(median: "400us", p99: "3ms")),
    nodes: {
        "users": Client(target: "lb", arrival: Poisson(rate: 8000.0), timeout: "500ms"),
        "lb":    LoadBalancer(strategy: LeastConnections, backends: ["app", "db"]),
        "app":   Server(replicas: 4, workers: 8, queue_limit: Some(256), service_time: Exponential(mean: "1ms")),
    },
    faults: [
        Slowdown(node: "app-2", factor: 10.0, at: "20s", until: "35s"),
        Partition(groups: [["lb"], ["app-1"]], at: "50s", until: "53s"),
    ],
    variants: {
        "p2c": { "lb.strategy": PowerOfTwoChoices },
    },
)
"#;

    fn f(name: &str) -> PathSeg {
        PathSeg::Field(name.to_owned())
    }

    fn k(key: &str) -> PathSeg {
        PathSeg::Key(key.to_owned())
    }

    fn i(idx: usize) -> PathSeg {
        PathSeg::Index(idx)
    }

    /// Locates `path` and returns where it starts and the text it covers.
    fn at(src: &str, path: &[PathSeg]) -> (usize, usize, String) {
        let span = locate(src, path);
        let (line, col) = line_col(src, span.start);
        (line, col, src[Range::from(span)].to_owned())
    }

    fn check(src: &str, path: &[PathSeg], line: usize, col: usize, text: &str) {
        assert_eq!(
            at(src, path),
            (line, col, text.to_owned()),
            "{}",
            path_to_string(path)
        );
    }

    #[test]
    fn paths_display_like_diagnostics() {
        let path = [f("nodes"), k("users"), f("target")];
        assert_eq!(path_to_string(&path), r#"nodes."users".target"#);
        let path = [f("faults"), i(1), f("groups"), i(0)];
        assert_eq!(path_to_string(&path), "faults[1].groups[0]");
        let path = [f("variants"), k("p2c"), k("lb.strategy")];
        assert_eq!(path_to_string(&path), r#"variants."p2c"."lb.strategy""#);
        assert_eq!(path_to_string(&[k("a\"b")]), r#""a\"b""#);
        assert_eq!(path_to_string(&[]), "");
    }

    #[test]
    fn finds_values_in_the_example() {
        let target = [f("nodes"), k("users"), f("target")];
        check(EXAMPLE, &target, 8, 33, r#""lb""#);
        let backend = [f("nodes"), k("lb"), f("backends"), i(1)];
        check(EXAMPLE, &backend, 9, 77, r#""db""#);
        check(
            EXAMPLE,
            &[f("faults"), i(1), f("groups"), i(0)],
            14,
            28,
            r#"["lb"]"#,
        );
        let strategy = [f("variants"), k("p2c"), k("lb.strategy")];
        check(EXAMPLE, &strategy, 17, 33, "PowerOfTwoChoices");
        let limit = [f("nodes"), k("app"), f("queue_limit")];
        check(EXAMPLE, &limit, 10, 63, "Some(256)");
        check(EXAMPLE, &[f("seed")], 4, 11, "7");
    }

    #[test]
    fn whole_values_span_to_their_closing_delimiter() {
        let (line, col, text) = at(EXAMPLE, &[f("network")]);
        assert_eq!((line, col), (6, 14));
        assert_eq!(text, r#"(latency: LogNormal(median: "400us", p99: "3ms"))"#);
        let (line, col, text) = at(EXAMPLE, &[]);
        assert_eq!((line, col), (2, 1));
        assert!(text.starts_with("Scenario(") && text.ends_with(')'));
    }

    #[test]
    fn missing_steps_fall_back_to_the_deepest_existing_value() {
        let (line, col, text) = at(EXAMPLE, &[f("nodes"), k("app"), f("timeout")]);
        assert_eq!((line, col), (10, 18));
        assert!(text.starts_with("Server(") && text.ends_with("))"));
        let (line, col, text) = at(EXAMPLE, &[f("nodes"), k("nope"), f("target")]);
        assert_eq!((line, col), (7, 12));
        assert!(text.starts_with('{') && text.ends_with('}'));
        check(EXAMPLE, &[f("seed"), f("x"), i(3)], 4, 11, "7");
        check(
            EXAMPLE,
            &[f("faults"), i(9)],
            12,
            13,
            &at(EXAMPLE, &[f("faults")]).2,
        );
    }

    #[test]
    fn some_is_one_value_unless_indexed_or_looked_through() {
        let src = "(limit: Some(256), inner: Some((a: 1)), opt: Some(5))";
        check(src, &[f("limit")], 1, 9, "Some(256)");
        check(src, &[f("limit"), i(0)], 1, 14, "256");
        check(src, &[f("inner"), f("a")], 1, 36, "1");
        check(src, &[f("opt"), f("a")], 1, 46, "Some(5)");
    }

    #[test]
    fn comments_and_strings_do_not_confuse_it() {
        let src = r##"Scenario(
    /* a block ) with " and /* nested } */ still a comment { */
    name: "a // not a comment ) }",
    // nodes: { "fake": Client(target: "wrong") },
    raw: r#"has "quotes" and ) "#,
    ch: ')',
    nodes: { "users": Client(target: "lb") }, // trailing ) comment
)"##;
        check(src, &[f("name")], 3, 11, r#""a // not a comment ) }""#);
        check(src, &[f("raw")], 5, 10, r##"r#"has "quotes" and ) "#"##);
        check(src, &[f("ch")], 6, 9, "')'");
        check(
            src,
            &[f("nodes"), k("users"), f("target")],
            7,
            38,
            r#""lb""#,
        );
    }

    #[test]
    fn scalars_tuples_and_odd_keys() {
        let src = r##"#![enable(implicit_some)]
(
    nums: (-1.5e-3, 0x1F, inf, -inf, NaN, 1_000u32, .5),
    keys: { 1: "one", Foo: "foo", "q\"x": "quoted", r"raw": "raw", "\u{e9}": "e" },
    r#type: 'x',
)"##;
        check(src, &[f("nums"), i(0)], 3, 12, "-1.5e-3");
        check(src, &[f("nums"), i(1)], 3, 21, "0x1F");
        check(src, &[f("nums"), i(3)], 3, 32, "-inf");
        check(src, &[f("nums"), i(6)], 3, 53, ".5");
        check(src, &[f("keys"), k("1")], 4, 16, r#""one""#);
        check(src, &[f("keys"), k("Foo")], 4, 28, r#""foo""#);
        check(src, &[f("keys"), k("q\"x")], 4, 43, r#""quoted""#);
        check(src, &[f("keys"), k("raw")], 4, 61, r#""raw""#);
        check(src, &[f("keys"), k("é")], 4, 78, r#""e""#);
        check(src, &[f("type")], 5, 13, "'x'");
        check(src, &[], 2, 1, &src[src.find("(\n").unwrap_or(0)..]);
    }

    #[test]
    fn line_col_counts_chars_and_clamps() {
        let src = "ab\né😀x\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 3), (2, 1));
        assert_eq!(line_col(src, src.find('x').unwrap_or(0)), (2, 3));
        assert_eq!(line_col(src, 5), (2, 2)); // inside 😀: moved back to its start
        assert_eq!(line_col(src, 999), (3, 1));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn broken_input_gives_the_deepest_value_reached() {
        let src = "Scenario(nodes: { \"users\": Client(target: \"lb\"";
        check(src, &[f("nodes"), k("users"), f("target")], 1, 43, "\"lb\"");
        let src = "Scenario(nodes: { \"users\": Client(target: ] ) }, seed: 3)";
        check(src, &[f("seed")], 1, 56, "3");
        assert_eq!(locate("", &[f("x")]), Span::default());
        assert_eq!(locate("   // only a comment", &[]), Span::default());
        assert_eq!(locate(")))", &[]), Span::default());
    }

    fn assert_sane(src: &str, span: Span) {
        assert!(span.start <= span.end && span.end <= src.len(), "{span:?}");
        assert!(src.is_char_boundary(span.start) && src.is_char_boundary(span.end));
    }

    #[test]
    fn every_prefix_of_the_example_is_handled() {
        let paths: [&[PathSeg]; 6] = [
            &[],
            &[f("nodes"), k("users"), f("target")],
            &[f("nodes"), k("lb"), f("backends"), i(1)],
            &[f("faults"), i(1), f("groups"), i(0)],
            &[f("variants"), k("p2c"), k("lb.strategy")],
            &[f("nodes"), k("app"), f("queue_limit"), i(0)],
        ];
        let cuts = EXAMPLE.char_indices().map(|(idx, _)| idx);
        for cut in cuts.chain([EXAMPLE.len()]) {
            for src in [&EXAMPLE[..cut], &EXAMPLE[cut..]] {
                for path in paths {
                    assert_sane(src, locate(src, path));
                }
            }
        }
    }

    #[test]
    fn garbage_and_deep_nesting_do_not_panic() {
        let deep = "[".repeat(100_000);
        assert_sane(&deep, locate(&deep, &[i(0), i(0)]));
        let deep = format!("{}{}", "(a: ".repeat(10_000), ")".repeat(10_000));
        assert_sane(&deep, locate(&deep, &[f("a"), f("a")]));
        // A fixed pseudo-random walk over RON's awkward characters.
        let alphabet: Vec<char> = "()[]{}:,\"'\\/*#!r b-+.0x1eé😀\n_a".chars().collect();
        let mut state = 0x2545_f491_u64;
        for len in 0..400 {
            let src: String = (0..len % 60)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
                .collect();
            assert_sane(&src, locate(&src, &[f("a"), i(0), k("b")]));
        }
    }
}
