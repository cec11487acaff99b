//! A strict JSON reader that allocates nothing for ordinary documents: it checks the whole
//! grammar (RFC 8259), refuses a member repeated in any object at any depth, decodes every
//! string escape (no lone surrogates; the text is already UTF-8), refuses numbers that do
//! not fit a finite `f64` (as serde_json does), and limits nesting. It hands the top-level
//! members of an object to the caller as slices of the text, so a token's header and
//! registered claims are read in place.

use std::{borrow::Cow, collections::HashSet};

use super::JsonError;

/// Deepest nesting accepted (serde_json's own limit is 127).
const MAX_DEPTH: usize = 64;
/// Members per object compared pairwise before a hash set takes over.
const INLINE_KEYS: usize = 16;

/// What a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    Object,
    Array,
    Bool,
    Null,
}

/// A JSON string as written between its quotes, known to be valid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Str<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> Str<'a> {
    /// The string's value (borrowed unless it has escapes).
    #[inline]
    pub(crate) fn decode(self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(unescape(self.raw))
        } else {
            Cow::Borrowed(self.raw)
        }
    }

    /// The string as written, escapes and all.
    pub(crate) fn raw(self) -> &'a str {
        self.raw
    }

    /// Whether the string has escapes (its value differs from how it is written).
    pub(crate) fn is_escaped(self) -> bool {
        self.escaped
    }

    /// Whether the string's value is empty.
    pub(crate) fn is_empty(self) -> bool {
        // An escape always stands for at least one character.
        self.raw.is_empty()
    }

    /// Whether two strings have the same value.
    fn same(self, other: Str<'_>) -> bool {
        if self.raw == other.raw {
            return true;
        }
        (self.escaped || other.escaped) && self.decode() == other.decode()
    }
}

/// A valid JSON value as written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw<'a> {
    kind: Kind,
    text: &'a str,
    escaped: bool,
}

impl<'a> Raw<'a> {
    /// What the value is.
    pub(crate) fn kind(self) -> Kind {
        self.kind
    }

    /// The value's JSON text.
    pub(crate) fn text(self) -> &'a str {
        self.text
    }

    /// The value if it is a string.
    pub(crate) fn as_str(self) -> Option<Str<'a>> {
        let raw = self.text.get(1..self.text.len().saturating_sub(1))?;
        (self.kind == Kind::String).then_some(Str {
            raw,
            escaped: self.escaped,
        })
    }

    /// The elements of an array (none for any other value).
    pub(crate) fn items(self) -> impl Iterator<Item = Raw<'a>> {
        let mut scanner = Scanner::new(self.text);
        let mut open = self.kind == Kind::Array;
        scanner.pos = 1;
        std::iter::from_fn(move || {
            if !open {
                return None;
            }
            scanner.ws();
            if scanner.eat(b']') {
                open = false;
                return None;
            }
            scanner.eat(b',');
            // The text was validated: an error here cannot happen, and ends the items.
            let item = scanner.value(1).ok();
            open = item.is_some();
            item
        })
    }
}

/// Checks that `text` is one strict JSON value.
pub(crate) fn validate(text: &str) -> Result<(), JsonError> {
    let mut scanner = Scanner::new(text);
    scanner.value(0)?;
    scanner.end()
}

/// Checks that `text` is one strict JSON object and calls `member` with each of its
/// members, in order.
pub(crate) fn object<'a>(
    text: &'a str,
    mut member: impl FnMut(Str<'a>, Raw<'a>),
) -> Result<(), JsonError> {
    let mut scanner = Scanner::new(text);
    scanner.ws();
    if scanner.peek() != Some(b'{') {
        scanner.value(0)?;
        scanner.end()?;
        return Err(JsonError::NotAnObject);
    }
    scanner.object(1, &mut member)?;
    scanner.end()
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        if found {
            self.pos += 1;
        }
        found
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn end(&mut self) -> Result<(), JsonError> {
        self.ws();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(JsonError::Invalid)
        }
    }

    fn slice(&self, start: usize) -> Result<&'a str, JsonError> {
        self.text.get(start..self.pos).ok_or(JsonError::Invalid)
    }

    #[inline]
    fn value(&mut self, depth: usize) -> Result<Raw<'a>, JsonError> {
        self.ws();
        let start = self.pos;
        // The work returns two bytes, not the view: a view returned through memory
        // costs a store-forwarding stall per value.
        let (kind, escaped) = self.value_at(depth)?;
        Ok(Raw {
            kind,
            text: self.slice(start)?,
            escaped,
        })
    }

    /// Reads the value at the cursor: its kind and whether it is a string with escapes.
    fn value_at(&mut self, depth: usize) -> Result<(Kind, bool), JsonError> {
        let mut escaped = false;
        let kind = match self.peek() {
            Some(b'{') => {
                self.object(depth + 1, &mut |_, _| {})?;
                Kind::Object
            }
            Some(b'[') => {
                self.array(depth + 1)?;
                Kind::Array
            }
            Some(b'"') => {
                escaped = self.string_end()?;
                Kind::String
            }
            Some(b't') => self.literal("true", Kind::Bool)?,
            Some(b'f') => self.literal("false", Kind::Bool)?,
            Some(b'n') => self.literal("null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Kind::Number
            }
            _ => return Err(JsonError::Invalid),
        };
        Ok((kind, escaped))
    }

    fn literal(&mut self, word: &str, kind: Kind) -> Result<Kind, JsonError> {
        let end = self.pos + word.len();
        if self.text.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(kind)
        } else {
            Err(JsonError::Invalid)
        }
    }

    /// Reads the object at the cursor, calling `member` with each of its members (one
    /// copy of this loop per caller's function, so a caller's is inlined into it).
    fn object(
        &mut self,
        depth: usize,
        member: &mut impl FnMut(Str<'a>, Raw<'a>),
    ) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::Invalid);
        }
        self.pos += 1;
        self.ws();
        if self.eat(b'}') {
            return Ok(());
        }
        let mut keys = Keys::default();
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(JsonError::Invalid);
            }
            let key = self.string()?;
            keys.insert(key)?;
            self.ws();
            if !self.eat(b':') {
                return Err(JsonError::Invalid);
            }
            let value = self.value(depth)?;
            member(key, value);
            self.ws();
            match self.next() {
                Some(b',') => {}
                Some(b'}') => return Ok(()),
                _ => return Err(JsonError::Invalid),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::Invalid);
        }
        self.pos += 1;
        self.ws();
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.ws();
            match self.next() {
                Some(b',') => {}
                Some(b']') => return Ok(()),
                _ => return Err(JsonError::Invalid),
            }
        }
    }

    #[inline]
    fn string(&mut self) -> Result<Str<'a>, JsonError> {
        let start = self.pos + 1;
        let escaped = self.string_end()?;
        let raw = self
            .text
            .get(start..self.pos - 1)
            .ok_or(JsonError::Invalid)?;
        Ok(Str { raw, escaped })
    }

    /// Moves past the string at the cursor; whether it has escapes.
    #[inline]
    fn string_end(&mut self) -> Result<bool, JsonError> {
        // Runs of plain characters are skipped in one pass; most strings are one run.
        self.pos = plain_end(self.text.as_bytes(), self.pos + 1).ok_or(JsonError::Invalid)?;
        if self.eat(b'"') {
            return Ok(false);
        }
        self.escaped_string_end()
    }

    /// [`string_end`](Self::string_end) from the first character that is not plain.
    fn escaped_string_end(&mut self) -> Result<bool, JsonError> {
        loop {
            match self.next() {
                Some(b'\\') => self.escape()?,
                _ => return Err(JsonError::Invalid),
            }
            self.pos = plain_end(self.text.as_bytes(), self.pos).ok_or(JsonError::Invalid)?;
            if self.eat(b'"') {
                return Ok(true);
            }
        }
    }

    fn escape(&mut self) -> Result<(), JsonError> {
        match self.next() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(()),
            Some(b'u') => match self.hex4()? {
                0xD800..=0xDBFF => {
                    if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                        return Err(JsonError::Invalid);
                    }
                    match self.hex4()? {
                        0xDC00..=0xDFFF => Ok(()),
                        _ => Err(JsonError::Invalid),
                    }
                }
                0xDC00..=0xDFFF => Err(JsonError::Invalid),
                _ => Ok(()),
            },
            _ => Err(JsonError::Invalid),
        }
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(JsonError::Invalid)?;
        self.pos += 4;
        u16::from_str_radix(digits, 16).map_err(|_| JsonError::Invalid)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.eat(b'-');
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(JsonError::Invalid),
        }
        let mut integer = true;
        if self.eat(b'.') {
            integer = false;
            if self.digits() == 0 {
                return Err(JsonError::Invalid);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(JsonError::Invalid);
            }
        }
        // Like serde_json: an integer too large for 64 bits is read as a float, and a
        // float that overflows is an error.
        let text = self.slice(start)?;
        if (!integer || text.len() > 18) && !text.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(JsonError::Invalid);
        }
        Ok(())
    }
}

/// Where the run of plain string characters from `start` ends: the index of the first
/// quote, backslash or control character at or after it. Eight bytes at a time.
#[inline]
fn plain_end(bytes: &[u8], start: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut i = start;
    while let Some(word) = bytes.get(i..i.saturating_add(8)) {
        let w = u64::from_le_bytes(word.try_into().ok()?);
        // Marks the high bit of each byte below `n` (n <= 0x80). A borrow only ever marks
        // bytes after a true match, so the lowest mark is exact.
        let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x;
        let marks =
            (below(w ^ (ONES * 0x22), 1) | below(w ^ (ONES * 0x5C), 1) | below(w, 0x20)) & HIGH;
        if marks != 0 {
            return Some(i + (marks.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let tail = bytes.get(i..)?;
    let at = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(i + at)
}

/// The member names of one object, compared by value: the first few by a fingerprint
/// and, when fingerprints match, in full; the rest in a hash set.
#[derive(Default)]
struct Keys<'a> {
    fingerprints: [u64; INLINE_KEYS],
    names: [Option<Str<'a>>; INLINE_KEYS],
    len: usize,
    spilled: Option<HashSet<Cow<'a, str>>>,
}

/// A name's length and its first bytes (equal names have equal fingerprints).
fn fingerprint(value: &str) -> u64 {
    let bytes = value.as_bytes();
    let head = match bytes.first_chunk::<8>() {
        Some(head) => u64::from_le_bytes(*head),
        None => bytes.iter().rev().fold(0, |fp, &b| fp << 8 | u64::from(b)),
    };
    head ^ (value.len() as u64).rotate_right(8)
}

impl<'a> Keys<'a> {
    fn insert(&mut self, key: Str<'a>) -> Result<(), JsonError> {
        if let Some(set) = &mut self.spilled {
            return if set.insert(key.decode()) {
                Ok(())
            } else {
                Err(JsonError::Invalid)
            };
        }
        let fp = if key.escaped {
            fingerprint(&key.decode())
        } else {
            fingerprint(key.raw)
        };
        let seen = self.fingerprints.get(..self.len).unwrap_or_default();
        for (i, _) in seen.iter().enumerate().filter(|(_, f)| **f == fp) {
            if self
                .names
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|k| k.same(key))
            {
                return Err(JsonError::Invalid);
            }
        }
        if let (Some(f), Some(n)) = (
            self.fingerprints.get_mut(self.len),
            self.names.get_mut(self.len),
        ) {
            (*f, *n) = (fp, Some(key));
            self.len += 1;
            return Ok(());
        }
        let mut set: HashSet<Cow<'a, str>> =
            self.names.iter().flatten().map(|k| k.decode()).collect();
        set.insert(key.decode());
        self.spilled = Some(set);
        Ok(())
    }
}

/// The value of a valid string's text (escapes resolved).
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let resolved = match chars.next() {
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let high = hex(&mut chars);
                if (0xD800..0xDC00).contains(&high) {
                    chars.next();
                    chars.next();
                    let low = hex(&mut chars);
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low.wrapping_sub(0xDC00));
                    char::from_u32(code).unwrap_or('\u{FFFD}')
                } else {
                    char::from_u32(high).unwrap_or('\u{FFFD}')
                }
            }
            Some(other) => other,
            None => break,
        };
        out.push(resolved);
    }
    out
}

fn hex(chars: &mut std::str::Chars<'_>) -> u32 {
    chars
        .take(4)
        .fold(0, |acc, c| (acc << 4) | c.to_digit(16).unwrap_or(0))
}

#[cfg(test)]
mod tests;
