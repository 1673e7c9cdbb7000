//! A streaming JSON walker: visits every scalar of a record with its dotted key
//! path (`request.headers.host`), without building a DOM.
//!
//! Array indices add no path segment, so `messages[*].details.ruleId` is visited
//! as `messages.details.ruleId`. Duplicate keys are visited in order (never an
//! error). Strings are borrowed from the record when they have no escapes.
//! Nesting deeper than serde_json's limit (127) is an error, not a stack
//! overflow. A top-level array is a batch: each element is one record.
//!
//! The grammar, number types and string escapes are serde_json's (RFC 8259,
//! lone surrogates rejected, integers as u64 / i64 when they fit); a test walks
//! arbitrary input with both and compares every call. Floats are correctly
//! rounded, where serde_json's default parser is approximate: they may differ
//! in the last bits, and a spelling of a number within rounding of f64::MAX
//! (`1.7976931348623158e308`) is accepted or rejected by its correctly rounded
//! value rather than serde_json's approximation.

use super::Error;
use std::borrow::Cow;

/// One JSON scalar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// A string, borrowed when it had no escapes.
    Str(Cow<'a, str>),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl<'a> Scalar<'a> {
    /// The value as text; `None` for null and for the no-value markers `""`, `"-"`.
    pub(crate) fn text(&self) -> Option<Cow<'a, str>> {
        Some(match self {
            Scalar::Str(s) => {
                super::util::non_dash(s)?;
                s.clone()
            }
            Scalar::Int(v) => Cow::Owned(v.to_string()),
            Scalar::UInt(v) => Cow::Owned(v.to_string()),
            Scalar::Float(v) => Cow::Owned(v.to_string()),
            Scalar::Bool(v) => Cow::Borrowed(if *v { "true" } else { "false" }),
            Scalar::Null => return None,
        })
    }

    /// The value as a non-negative integer (numeric strings accepted).
    pub(crate) fn u64(&self) -> Option<u64> {
        match self {
            Scalar::UInt(v) => Some(*v),
            Scalar::Float(v) if *v >= 0.0 && *v < 1.8e19 => Some(v.round() as u64),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a u16 (HTTP status, port).
    pub(crate) fn u16(&self) -> Option<u16> {
        self.u64().and_then(|v| u16::try_from(v).ok())
    }

    /// The value as a float (numeric strings accepted).
    pub(crate) fn f64(&self) -> Option<f64> {
        let v = match self {
            Scalar::UInt(v) => *v as f64,
            Scalar::Int(v) => *v as f64,
            Scalar::Float(v) => *v,
            Scalar::Str(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    /// The value as a timestamp in microseconds: numbers in `unit`, strings as
    /// decimal numbers in `unit` or as any text format [`super::util::text_to_micros`] knows.
    pub(crate) fn time(&self, unit: super::util::Unit) -> Option<i64> {
        use super::util::{decimal_to_micros, float_to_micros, int_to_micros, text_to_micros};
        match self {
            Scalar::UInt(v) => int_to_micros(i64::try_from(*v).ok()?, unit),
            Scalar::Int(v) => int_to_micros(*v, unit),
            Scalar::Float(v) => float_to_micros(*v, unit),
            Scalar::Str(s) => decimal_to_micros(s, unit).or_else(|| text_to_micros(s)),
            _ => None,
        }
    }
}

/// Receives the scalars of a record.
pub(crate) trait Sink<'de> {
    /// A scalar at `path`.
    fn scalar(&mut self, path: &str, value: Scalar<'de>);
    /// An object at `path` ended (`path` is empty for the record itself).
    fn end_object(&mut self, _path: &str) {}
    /// One record (the top-level object, or one element of a top-level array) ended.
    fn end_record(&mut self);
}

thread_local! {
    /// Record-level key bits of the last [`walk`] on this thread (see
    /// [`take_record_keys`]).
    static RECORD_KEYS: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    /// The key path buffer [`walk`] reuses from record to record.
    static PATH: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
    /// The string-stop bit buffer [`walk`] reuses from record to record.
    static STOPS: std::cell::Cell<Vec<u64>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The key bits ([`super::detect::key_bit`]) of the record object of the last
/// successful [`walk`] on this thread, taken (a second call returns `None`).
/// They are the bits detection computes from the raw record, so a decoder's
/// walk can confirm the format it was guessed for without a second pass.
pub(crate) fn take_record_keys() -> Option<u64> {
    RECORD_KEYS.take()
}

/// Walk `text`: one object, or an array of objects (a batch). Errors carry
/// positions, never content.
pub(crate) fn walk<'de, S: Sink<'de>>(
    text: &'de str,
    format: &'static str,
    sink: &mut S,
) -> Result<(), Error> {
    RECORD_KEYS.set(None);
    // Where strings may stop, found for the whole record at once (the buffer
    // of the last walk on this thread, reused like the path's).
    let mut stops = STOPS.take();
    stop_bits(text.as_bytes(), &mut stops);
    let mut parser = Parser {
        text,
        stops: &stops,
        pos: 0,
        depth: 0,
    };
    // The path buffer of the last walk on this thread, reused (a walk inside
    // a sink's call would find it taken and start a new one).
    let mut path = PATH.take();
    path.clear();
    path.reserve(64);
    let mut keys = 0u64;
    let shape = parser.top(&mut path, sink, &mut keys).and_then(|shape| {
        parser.ws();
        match parser.peek() {
            None => Ok(shape),
            Some(_) => parser.fail("trailing characters"),
        }
    });
    PATH.set(path);
    STOPS.set(stops);
    let shape = shape.map_err(|e| e.into_error(text, format))?;
    RECORD_KEYS.set(Some(keys));
    match shape {
        Shape::Records => Ok(()),
        Shape::NotObject => Err(Error::Invalid {
            format,
            message: String::from("expected a json object or an array of objects"),
        }),
    }
}

/// What the top level held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Objects (one, or a batch; possibly an empty batch).
    Records,
    /// A scalar, or an array with a non-object element.
    NotObject,
}

/// What one element of a top-level array was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Object,
    Array,
    Scalar,
}

/// Deepest nesting of objects and arrays accepted (serde_json's limit).
const MAX_DEPTH: u32 = 127;

/// A syntax error: what was expected, and the byte offset where it was noticed.
#[derive(Debug)]
struct SyntaxError {
    pos: usize,
    message: &'static str,
}

impl SyntaxError {
    /// The dead-letter reason: the message and a line and column (1-based,
    /// columns in bytes), never any of the text.
    fn into_error(self, text: &str, format: &'static str) -> Error {
        let before = &text.as_bytes()[..self.pos.min(text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        Error::Json {
            format,
            message: format!("{} at line {line} column {column}", self.message),
        }
    }
}

type Parsed<T> = Result<T, SyntaxError>;

/// Bytes that end a run of plain string content: `"`, `\\` and control characters.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Set `stops` to one bit per byte of `text` (bit `i % 64` of word `i / 64`),
/// set where the byte is in [`STRING_STOP`]; bits past the end are clear.
fn stop_bits(text: &[u8], stops: &mut Vec<u64>) {
    stops.clear();
    let mut blocks = text.chunks_exact(64);
    stops.extend(blocks.by_ref().map(stop_word));
    let tail = blocks.remainder();
    if !tail.is_empty() {
        // Padded with a byte that is no stop.
        let mut last = [b'a'; 64];
        last[..tail.len()].copy_from_slice(tail);
        stops.push(stop_word(&last));
    }
}

/// The stop bits of 64 bytes.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn stop_word(block: &[u8]) -> u64 {
    // SAFETY: the function only needs SSE2, which this build enables (the cfg
    // above); it reads nothing but the slice it is given.
    unsafe { stop_word_sse2(block) }
}

/// [`stop_word`] sixteen bytes at a time: `"`, `\\`, and bytes that the
/// unsigned minimum with 0x1F leaves unchanged (control characters).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn stop_word_sse2(block: &[u8]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x,
        _mm_set1_epi8,
    };
    let mut bits = 0u64;
    for (k, chunk) in block.chunks_exact(16).take(4).enumerate() {
        let word = |i: usize| crate::text::le_word(&chunk[i..]) as i64;
        let v = _mm_set_epi64x(word(8), word(0));
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
        let stop = _mm_or_si128(_mm_or_si128(quote, backslash), control);
        bits |= u64::from(_mm_movemask_epi8(stop) as u16) << (16 * k);
    }
    bits
}

/// The stop bits of 64 bytes, a byte at a time.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn stop_word(block: &[u8]) -> u64 {
    block
        .iter()
        .enumerate()
        .filter(|&(_, &b)| STRING_STOP[usize::from(b)])
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// The walker's cursor over one record.
struct Parser<'de, 's> {
    text: &'de str,
    /// [`stop_bits`] of `text`.
    stops: &'s [u64],
    pos: usize,
    depth: u32,
}

impl<'de> Parser<'de, '_> {
    fn fail<T>(&self, message: &'static str) -> Parsed<T> {
        Err(SyntaxError {
            pos: self.pos,
            message,
        })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Step over an opening `{` or `[`, one level deeper.
    fn enter(&mut self) -> Parsed<()> {
        if self.depth >= MAX_DEPTH {
            return self.fail("recursion limit exceeded");
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    /// The top-level value.
    fn top<S: Sink<'de>>(
        &mut self,
        path: &mut String,
        sink: &mut S,
        keys: &mut u64,
    ) -> Parsed<Shape> {
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.enter()?;
                self.object(path, sink, Some(keys))?;
                sink.end_record();
                Ok(Shape::Records)
            }
            Some(b'[') => {
                self.enter()?;
                let mut shape = Shape::Records;
                // Detection reads the keys of the first element that is an
                // object or an array (none when it is an array).
                let mut container_seen = false;
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(shape);
                }
                loop {
                    self.ws();
                    let kind = match self.peek() {
                        Some(b'{') => {
                            self.enter()?;
                            let keys = (!container_seen).then_some(&mut *keys);
                            self.object(path, sink, keys)?;
                            ElementKind::Object
                        }
                        Some(b'[') => {
                            self.enter()?;
                            self.array(path, sink)?;
                            ElementKind::Array
                        }
                        _ => {
                            self.scalar()?;
                            ElementKind::Scalar
                        }
                    };
                    container_seen |= kind != ElementKind::Scalar;
                    if kind == ElementKind::Object {
                        sink.end_record();
                    } else {
                        shape = Shape::NotObject;
                    }
                    if self.list_end(b']', "expected `,` or `]`")? {
                        break;
                    }
                }
                self.depth -= 1;
                Ok(shape)
            }
            _ => {
                self.scalar()?;
                Ok(Shape::NotObject)
            }
        }
    }

    /// After a member or element: `,` (false) or the closing byte (true).
    #[inline]
    fn list_end(&mut self, close: u8, expected: &'static str) -> Parsed<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            None => self.fail("EOF while parsing a list or object"),
            Some(_) => self.fail(expected),
        }
    }

    /// The members of an object whose `{` was just consumed, extending `path`
    /// with each key; for the record object, `keys` collects the bits of its keys.
    fn object<S: Sink<'de>>(
        &mut self,
        path: &mut String,
        sink: &mut S,
        mut keys: Option<&mut u64>,
    ) -> Parsed<()> {
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                match self.peek() {
                    Some(b'"') => self.pos += 1,
                    None => return self.fail("EOF while parsing an object"),
                    Some(_) => return self.fail("key must be a string"),
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                match self.string()? {
                    // Written without escapes: detection compares raw key
                    // bytes, so only such keys can carry a bit.
                    Cow::Borrowed(k) => {
                        if let Some(bits) = keys.as_deref_mut() {
                            *bits |= super::detect::key_bit(k.as_bytes());
                        }
                        path.push_str(k);
                    }
                    Cow::Owned(k) => path.push_str(&k),
                }
                self.ws();
                match self.peek() {
                    Some(b':') => self.pos += 1,
                    None => return self.fail("EOF while parsing an object"),
                    Some(_) => return self.fail("expected `:`"),
                }
                self.value(path, sink)?;
                path.truncate(len);
                if self.list_end(b'}', "expected `,` or `}`")? {
                    break;
                }
            }
        }
        self.depth -= 1;
        sink.end_object(path);
        Ok(())
    }

    /// The elements of an array whose `[` was just consumed (no path segment).
    fn array<S: Sink<'de>>(&mut self, path: &mut String, sink: &mut S) -> Parsed<()> {
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.value(path, sink)?;
                if self.list_end(b']', "expected `,` or `]`")? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Any value below the top level.
    fn value<S: Sink<'de>>(&mut self, path: &mut String, sink: &mut S) -> Parsed<()> {
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.enter()?;
                self.object(path, sink, None)
            }
            Some(b'[') => {
                self.enter()?;
                self.array(path, sink)
            }
            _ => {
                let v = self.scalar()?;
                sink.scalar(path, v);
                Ok(())
            }
        }
    }

    /// A string, number, `true`, `false` or `null`. Inlined with its common
    /// cases (a string without escapes, a plain integer): a scalar returned
    /// from a call travels through memory, and reading it back right after
    /// the callee wrote it in pieces stalls the load.
    #[inline(always)]
    fn scalar(&mut self) -> Parsed<Scalar<'de>> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                Ok(Scalar::Str(self.string()?))
            }
            Some(b'1'..=b'9') => match self.plain_integer() {
                Some(v) => Ok(Scalar::UInt(v)),
                None => self.number(),
            },
            Some(b'-' | b'0') => self.number(),
            Some(b't') => self.literal("true", Scalar::Bool(true)),
            Some(b'f') => self.literal("false", Scalar::Bool(false)),
            Some(b'n') => self.literal("null", Scalar::Null),
            None => self.fail("EOF while parsing a value"),
            Some(_) => self.fail("expected value"),
        }
    }

    fn literal(&mut self, word: &str, v: Scalar<'de>) -> Parsed<Scalar<'de>> {
        if self.text.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            self.fail("expected value")
        }
    }

    /// The rest of a string whose opening quote was consumed: borrowed when it
    /// holds no escape. Inlined (see [`Parser::scalar`]); a string with an
    /// escape, or an error, takes [`Parser::string_rest`].
    #[inline(always)]
    fn string(&mut self) -> Parsed<Cow<'de, str>> {
        let start = self.pos;
        self.skip_plain();
        if self.peek() == Some(b'"') {
            // `"` is ASCII, so both ends are char boundaries.
            let s = &self.text[start..self.pos];
            self.pos += 1;
            return Ok(Cow::Borrowed(s));
        }
        self.string_rest(start)
    }

    /// A string stopped at something other than its closing quote (at
    /// `self.pos`; it started at `start`): an escape, a control character or
    /// the end of the text.
    #[cold]
    #[inline(never)]
    fn string_rest(&mut self, start: usize) -> Parsed<Cow<'de, str>> {
        match self.peek() {
            Some(b'\\') => {}
            Some(_) => {
                return self
                    .fail("control character (\\u0000-\\u001F) found while parsing a string");
            }
            None => return self.fail("EOF while parsing a string"),
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.text[start..self.pos]);
        loop {
            // At a backslash.
            self.pos += 1;
            let Some(c) = self.peek() else {
                return self.fail("EOF while parsing a string");
            };
            self.pos += 1;
            match c {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => out.push(self.unicode_escape()?),
                _ => {
                    self.pos -= 1;
                    return self.fail("invalid escape");
                }
            }
            let run = self.pos;
            self.skip_plain();
            out.push_str(&self.text[run..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {}
                Some(_) => {
                    return self
                        .fail("control character (\\u0000-\\u001F) found while parsing a string");
                }
                None => return self.fail("EOF while parsing a string"),
            }
        }
    }

    /// Advance over bytes that are neither `"`, `\\` nor control characters
    /// (to the next stop bit, or the end).
    #[inline]
    fn skip_plain(&mut self) {
        let mut word = self.pos / 64;
        let Some(&first) = self.stops.get(word) else {
            return;
        };
        let mut bits = first & (u64::MAX << (self.pos % 64));
        loop {
            if bits != 0 {
                self.pos = word * 64 + bits.trailing_zeros() as usize;
                return;
            }
            word += 1;
            match self.stops.get(word) {
                Some(&b) => bits = b,
                None => {
                    self.pos = self.text.len();
                    return;
                }
            }
        }
    }

    /// The character of a `\\u` escape (its `\\u` consumed), a surrogate pair
    /// taking a second escape.
    fn unicode_escape(&mut self) -> Parsed<char> {
        let first = self.hex4()?;
        let code = match first {
            0xDC00..=0xDFFF => return self.fail("lone leading surrogate in hex escape"),
            0xD800..=0xDBFF => {
                if self.text.as_bytes()[self.pos..].starts_with(b"\\u") {
                    self.pos += 2;
                } else if self.pos + 2 > self.text.len() {
                    return self.fail("EOF while parsing a string");
                } else {
                    return self.fail("unexpected end of hex escape");
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return self.fail("lone leading surrogate in hex escape");
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            c => c,
        };
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None => self.fail("invalid unicode code point"),
        }
    }

    fn hex4(&mut self) -> Parsed<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let Some(b) = self.peek() else {
                return self.fail("EOF while parsing a string");
            };
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return self.fail("invalid escape"),
            };
            v = v * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    #[inline]
    fn digits(&mut self) -> usize {
        let from = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - from
    }

    /// A number that starts with `1`-`9` and is only digits, at most 18 of
    /// them (so it fits a u64), stepped over; `None` (nothing consumed) for
    /// anything else, which [`Parser::number`] reads.
    #[inline(always)]
    fn plain_integer(&mut self) -> Option<u64> {
        let rest = &self.text.as_bytes()[self.pos..];
        let mut v = 0u64;
        let mut n = 0;
        while let Some(&d @ b'0'..=b'9') = rest.get(n) {
            if n == 18 {
                return None;
            }
            v = v * 10 + u64::from(d - b'0');
            n += 1;
        }
        if let Some(b'.' | b'e' | b'E') = rest.get(n) {
            return None;
        }
        self.pos += n;
        Some(v)
    }

    /// A number: u64 or i64 when it is an integer that fits, else f64.
    #[inline(never)]
    fn number(&mut self) -> Parsed<Scalar<'de>> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        // The integer part's value, read as it is stepped over (`None` past u64).
        let magnitude = match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return self.fail("invalid number");
                }
                Some(0)
            }
            Some(b'1'..=b'9') => {
                let mut v = Some(0u64);
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    v = v
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(u64::from(d - b'0')));
                    self.pos += 1;
                }
                v
            }
            _ => return self.fail("invalid number"),
        };
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.fail("invalid number");
            }
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.fail("invalid number");
            }
            integer = false;
        }
        if integer && let Some(v) = magnitude {
            if !negative {
                return Ok(Scalar::UInt(v));
            }
            // As serde_json: -0 and magnitudes beyond i64 become floats.
            let n = (v as i64).wrapping_neg();
            if n < 0 {
                return Ok(Scalar::Int(n));
            }
        }
        match self.text[start..self.pos].parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Scalar::Float(v)),
            _ => self.fail("number out of range"),
        }
    }
}

/// The serde_json walk the hand-written one replaced: the oracle its tests
/// compare against.
#[cfg(test)]
mod reference {
    use super::{ElementKind, Error, RECORD_KEYS, Scalar, Shape, Sink};
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::borrow::Cow;
    use std::fmt;

    /// Walk `text`: one object, or an array of objects (a batch). Errors carry
    /// positions, never content.
    pub(crate) fn walk_reference<'de, S: Sink<'de>>(
        text: &'de str,
        format: &'static str,
        sink: &mut S,
    ) -> Result<(), Error> {
        RECORD_KEYS.set(None);
        let mut de = serde_json::Deserializer::from_str(text);
        let mut path = String::with_capacity(64);
        let mut keys = 0u64;
        let top = Top {
            path: &mut path,
            sink,
            keys: &mut keys,
        }
        .deserialize(&mut de)
        .map_err(|e| json_error(format, &e))?;
        de.end().map_err(|e| json_error(format, &e))?;
        RECORD_KEYS.set(Some(keys));
        match top {
            Shape::Records => Ok(()),
            Shape::NotObject => Err(Error::Invalid {
                format,
                message: String::from("expected a json object or an array of objects"),
            }),
        }
    }

    /// A serde_json error as a dead-letter reason: syntax errors keep serde_json's
    /// fixed message (which carries only positions); anything else is generic.
    fn json_error(format: &'static str, e: &serde_json::Error) -> Error {
        use serde_json::error::Category;
        let message = match e.classify() {
            Category::Syntax | Category::Eof => e.to_string(),
            Category::Data => format!("invalid value at line {} column {}", e.line(), e.column()),
            Category::Io => String::from("i/o error"),
        };
        Error::Json { format, message }
    }

    struct Top<'p, 's, 'k, S> {
        path: &'p mut String,
        sink: &'s mut S,
        /// Key bits of the record object.
        keys: &'k mut u64,
    }

    impl<'de, S: Sink<'de>> DeserializeSeed<'de> for Top<'_, '_, '_, S> {
        type Value = Shape;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de, S: Sink<'de>> Visitor<'de> for Top<'_, '_, '_, S> {
        type Value = Shape;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a json object or array of objects")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
            walk_map(self.path, self.sink, map, Some(self.keys))?;
            self.sink.end_record();
            Ok(Shape::Records)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
            let mut shape = Shape::Records;
            // Detection reads the keys of the first element that is an object or
            // an array (none when it is an array).
            let mut container_seen = false;
            loop {
                let keys = (!container_seen).then_some(&mut *self.keys);
                let Some(kind) = seq.next_element_seed(Element {
                    path: &mut *self.path,
                    sink: &mut *self.sink,
                    keys,
                })?
                else {
                    break;
                };
                container_seen |= kind != ElementKind::Scalar;
                if kind == ElementKind::Object {
                    self.sink.end_record();
                } else {
                    shape = Shape::NotObject;
                }
            }
            Ok(shape)
        }

        fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_unit<E>(self) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
    }

    /// One element of a top-level array.
    struct Element<'p, 's, 'k, S> {
        path: &'p mut String,
        sink: &'s mut S,
        /// Where to record the element's key bits, for the first container element.
        keys: Option<&'k mut u64>,
    }

    impl<'de, S: Sink<'de>> DeserializeSeed<'de> for Element<'_, '_, '_, S> {
        type Value = ElementKind;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ElementKind, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de, S: Sink<'de>> Visitor<'de> for Element<'_, '_, '_, S> {
        type Value = ElementKind;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a json object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ElementKind, A::Error> {
            walk_map(self.path, self.sink, map, self.keys)?;
            Ok(ElementKind::Object)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ElementKind, A::Error> {
            Node {
                path: self.path,
                sink: self.sink,
            }
            .visit_seq(seq)?;
            Ok(ElementKind::Array)
        }

        fn visit_bool<E>(self, _: bool) -> Result<ElementKind, E> {
            Ok(ElementKind::Scalar)
        }
        fn visit_i64<E>(self, _: i64) -> Result<ElementKind, E> {
            Ok(ElementKind::Scalar)
        }
        fn visit_u64<E>(self, _: u64) -> Result<ElementKind, E> {
            Ok(ElementKind::Scalar)
        }
        fn visit_f64<E>(self, _: f64) -> Result<ElementKind, E> {
            Ok(ElementKind::Scalar)
        }
        fn visit_str<E>(self, _: &str) -> Result<ElementKind, E> {
            Ok(ElementKind::Scalar)
        }
        fn visit_unit<E>(self) -> Result<ElementKind, E> {
            Ok(ElementKind::Scalar)
        }
    }

    /// Visit every entry of an object, extending `path` with each key; for the
    /// record object, `keys` collects the bits of its keys.
    fn walk_map<'de, S: Sink<'de>, A: MapAccess<'de>>(
        path: &mut String,
        sink: &mut S,
        mut map: A,
        mut keys: Option<&mut u64>,
    ) -> Result<(), A::Error> {
        loop {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            let key = Key {
                path: &mut *path,
                keys: keys.as_deref_mut(),
            };
            if map.next_key_seed(key)?.is_none() {
                path.truncate(len);
                break;
            }
            map.next_value_seed(Node {
                path: &mut *path,
                sink: &mut *sink,
            })?;
            path.truncate(len);
        }
        sink.end_object(path);
        Ok(())
    }

    /// Appends an object key to the path (and its bit to `keys`).
    struct Key<'p, 'k> {
        path: &'p mut String,
        keys: Option<&'k mut u64>,
    }

    impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for Key<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object key")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
            // Borrowed means written without escapes: detection compares raw key
            // bytes, so only such keys can carry a bit.
            if let Some(keys) = self.keys {
                *keys |= super::super::detect::key_bit(v.as_bytes());
            }
            self.path.push_str(v);
            Ok(())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
            self.path.push_str(v);
            Ok(())
        }
    }

    /// Any value below the top level.
    struct Node<'p, 's, S> {
        path: &'p mut String,
        sink: &'s mut S,
    }

    impl<'de, S: Sink<'de>> DeserializeSeed<'de> for Node<'_, '_, S> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de, S: Sink<'de>> Visitor<'de> for Node<'_, '_, S> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any json value")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
            walk_map(self.path, self.sink, map, None)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq
                .next_element_seed(Node {
                    path: &mut *self.path,
                    sink: &mut *self.sink,
                })?
                .is_some()
            {}
            Ok(())
        }

        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
            self.sink.scalar(self.path, Scalar::Str(Cow::Borrowed(v)));
            Ok(())
        }
        fn visit_str<E>(self, v: &str) -> Result<(), E> {
            self.sink
                .scalar(self.path, Scalar::Str(Cow::Owned(v.to_owned())));
            Ok(())
        }
        fn visit_string<E>(self, v: String) -> Result<(), E> {
            self.sink.scalar(self.path, Scalar::Str(Cow::Owned(v)));
            Ok(())
        }
        fn visit_bool<E>(self, v: bool) -> Result<(), E> {
            self.sink.scalar(self.path, Scalar::Bool(v));
            Ok(())
        }
        fn visit_i64<E>(self, v: i64) -> Result<(), E> {
            self.sink.scalar(self.path, Scalar::Int(v));
            Ok(())
        }
        fn visit_u64<E>(self, v: u64) -> Result<(), E> {
            self.sink.scalar(self.path, Scalar::UInt(v));
            Ok(())
        }
        fn visit_f64<E>(self, v: f64) -> Result<(), E> {
            self.sink.scalar(self.path, Scalar::Float(v));
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            self.sink.scalar(self.path, Scalar::Null);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Default)]
    struct Collect {
        seen: Vec<(String, String)>,
        records: usize,
    }

    impl<'de> Sink<'de> for Collect {
        fn scalar(&mut self, path: &str, value: Scalar<'de>) {
            let v = value
                .text()
                .map_or_else(|| String::from("<none>"), Cow::into_owned);
            self.seen.push((path.to_string(), v));
        }
        fn end_record(&mut self) {
            self.records += 1;
        }
    }

    #[test]
    fn paths_duplicates_and_batches() {
        let mut c = Collect::default();
        let text = r#"{"a":{"b":1,"b":"x\"y"},"c":[{"d":true},{"d":null}],"e.f":"-"}"#;
        walk(text, "t", &mut c).expect("valid json");
        let want = [
            ("a.b", "1"),
            ("a.b", "x\"y"),
            ("c.d", "true"),
            ("c.d", "<none>"),
            ("e.f", "<none>"),
        ];
        let got: Vec<(&str, &str)> = c
            .seen
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(c.records, 1);

        let mut c = Collect::default();
        walk(r#"[{"a":1},{"a":2}]"#, "t", &mut c).expect("valid batch");
        assert_eq!(c.records, 2);
    }

    #[test]
    fn errors_never_carry_content() {
        let secret = "123-45-6789";
        let deep = "[".repeat(5000);
        let cases = [
            format!(r#"{{"ssn":"{secret}""#),
            format!(r#"{{"ssn":{secret}}}"#),
            format!(r#"{{"ssn":"{secret}"}} trailing {secret}"#),
            format!(r#""{secret}""#),
            format!(r#"[{{"a":1}},"{secret}"]"#),
            deep,
        ];
        for case in &cases {
            let err = walk(case, "t", &mut Collect::default()).expect_err("must fail");
            let msg = err.to_string();
            assert!(!msg.contains("123"), "{msg}");
        }
    }

    /// Everything a sink saw, with floats kept apart for a tolerant comparison.
    #[derive(Debug, Default, PartialEq)]
    struct Record {
        calls: Vec<String>,
        floats: Vec<f64>,
    }

    impl<'de> Sink<'de> for Record {
        fn scalar(&mut self, path: &str, value: Scalar<'de>) {
            let v = match value {
                Scalar::Float(f) => {
                    self.floats.push(f);
                    String::from("float")
                }
                Scalar::Str(Cow::Borrowed(s)) => format!("borrowed {s:?}"),
                Scalar::Str(Cow::Owned(s)) => format!("owned {s:?}"),
                other => format!("{other:?}"),
            };
            self.calls.push(format!("{path} = {v}"));
        }
        fn end_object(&mut self, path: &str) {
            self.calls.push(format!("end {path}"));
        }
        fn end_record(&mut self) {
            self.calls.push(String::from("record"));
        }
    }

    /// Walk `text` with the hand-written walker and with serde_json; both must
    /// accept or reject it alike and, when they accept it, make the same calls.
    fn same_as_serde(text: &str) -> Result<(), TestCaseError> {
        let (mut ours, mut theirs) = (Record::default(), Record::default());
        let got = walk(text, "t", &mut ours);
        let got_keys = take_record_keys();
        let want = reference::walk_reference(text, "t", &mut theirs);
        let want_keys = take_record_keys();
        let kind = |r: &Result<(), Error>| match r {
            Ok(()) => "ok",
            Err(Error::Json { .. }) => "syntax",
            Err(Error::Invalid { .. }) => "not an object",
            Err(_) => "other",
        };
        prop_assert_eq!(kind(&got), kind(&want), "{:?} vs {:?}", got, want);
        prop_assert_eq!(got_keys, want_keys);
        if want.is_ok() {
            prop_assert_eq!(&ours.calls, &theirs.calls);
            prop_assert_eq!(ours.floats.len(), theirs.floats.len());
            for (a, b) in ours.floats.iter().zip(&theirs.floats) {
                // serde_json's default (fast, not always correctly rounded)
                // float parser may be a few units in the last place off.
                let ulps = a.to_bits().abs_diff(b.to_bits());
                prop_assert!(a == b || ulps <= 16, "{} vs {} ({} ulps)", a, b, ulps);
            }
        }
        Ok(())
    }

    /// Fragments that are valid JSON tokens, nearly valid ones, and the keys
    /// format detection looks for.
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\n",
        "\t",
        "\"a\"",
        "\"started_at\"",
        "\"latencies\"",
        "\"httpRequest\"",
        "\"x\\\"y\"",
        "\"\\u00e9\\/\\n\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\\ud83dx\"",
        "\"\\udc00\"",
        "\"\\u12\"",
        "\"\\q\"",
        "\"\u{1}\"",
        "\"\u{1f}\"",
        "\"\\udfff\"",
        "\"é\"",
        "\"",
        "\\",
        "0",
        "-0",
        "01",
        "1.5",
        "-2.5e-3",
        "1e400",
        "1E+2",
        "1.",
        ".5",
        "-",
        "2e",
        "9223372036854775807",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        "true",
        "false",
        "null",
        "nul",
        "tru",
        "x",
    ];

    fn scalar_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|v| v.to_string()),
            any::<i64>().prop_map(|v| v.to_string()),
            (-3i64..3).prop_map(|v| v.to_string()),
            proptest::sample::select(NUMBERS).prop_map(String::from),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:e}")),
            any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
            "[a-z\\\\\"/]{0,6}".prop_map(|s| serde_json::Value::String(s).to_string()),
            Just(String::from("true")),
            Just(String::from("null")),
        ]
    }

    /// Valid JSON with random spacing.
    fn valid_json() -> impl Strategy<Value = String> {
        let leaf = scalar_text();
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6)
                    .prop_map(|items| format!("[ {} ]", items.join(" ,"))),
                proptest::collection::vec(("[a-z_.]{0,8}", inner), 0..6).prop_map(|members| {
                    let body: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("{:?}\n: {v}", k))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Valid records (objects, batches, scalars) give serde_json's calls.
        #[test]
        fn valid_json_walks_like_serde(text in valid_json()) {
            same_as_serde(&text)?;
        }

        /// Valid records with one fragment inserted, deleted or truncated are
        /// accepted or rejected as serde_json does.
        #[test]
        fn damaged_json_fails_like_serde(
            text in valid_json(),
            at in any::<proptest::sample::Index>(),
            token in proptest::sample::select(TOKENS),
            how in 0u8..3,
        ) {
            let mut cut = at.index(text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let damaged = match how {
                0 => format!("{}{token}{}", &text[..cut], &text[cut..]),
                1 => text[..cut].to_string(),
                _ => {
                    let mut end = (cut + 1).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    format!("{}{}", &text[..cut], &text[end..])
                }
            };
            same_as_serde(&damaged)?;
        }

        /// Arbitrary token soup.
        #[test]
        fn token_soup_walks_like_serde(tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 0..24)) {
            same_as_serde(&tokens.concat())?;
        }

        /// Arbitrary text never panics and agrees on acceptance.
        #[test]
        fn arbitrary_text_walks_like_serde(text in any::<String>()) {
            same_as_serde(&text)?;
        }

        /// Long keys and values, their quotes, escapes and control
        /// characters falling on every side of the 64-byte words the stop
        /// bits come in; whole, and cut short.
        #[test]
        fn long_strings_walk_like_serde(
            parts in proptest::collection::vec("[a-zé\"\\\\\u{1}\u{1f} ]{0,150}", 1..5),
            cut in any::<proptest::sample::Index>(),
        ) {
            // Written with escapes (valid), and as they are (mostly not).
            let escaped = |p: &String| serde_json::Value::String(p.clone()).to_string();
            let valid: Vec<String> = parts
                .iter()
                .map(|p| format!("{}:{}", escaped(p), escaped(p)))
                .collect();
            let raw: Vec<String> = parts
                .iter()
                .map(|p| format!("\"{p}\":\"{p}\""))
                .collect();
            for text in [valid, raw].map(|m| format!("{{{}}}", m.join(","))) {
                same_as_serde(&text)?;
                let mut end = cut.index(text.len() + 1);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                same_as_serde(&text[..end])?;
            }
        }

        /// The stop bits are the table's, byte for byte, with nothing set
        /// past the end.
        #[test]
        fn stop_bits_follow_the_table(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut stops = vec![u64::MAX; 3];
            stop_bits(&bytes, &mut stops);
            prop_assert_eq!(stops.len(), bytes.len().div_ceil(64));
            for i in 0..stops.len() * 64 {
                let bit = stops[i / 64] >> (i % 64) & 1 == 1;
                let want = bytes.get(i).is_some_and(|&b| STRING_STOP[usize::from(b)]);
                prop_assert_eq!(bit, want, "byte {}", i);
            }
        }
    }

    /// Numbers at the edges of serde_json's types, and malformed ones.
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "-0.0",
        "7",
        "-7",
        "9223372036854775807",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        "1e400",
        "-1e400",
        "1e-400",
        "1.0",
        "0.1e1",
        "2E+2",
        "00",
        "-",
        "1.e1",
        ".5",
        "1e",
        "-a",
    ];

    #[test]
    fn numbers_are_typed_as_serde_json_types_them() {
        for &n in NUMBERS {
            same_as_serde(&format!("{{\"n\":{n}}}")).expect(n);
            same_as_serde(&format!("[{{\"n\":[{n}]}}]")).expect(n);
        }
    }

    #[test]
    fn nesting_limit_is_serde_jsons() {
        for depth in [126, 127, 128, 129] {
            // Arrays inside a record object: depth + 1 levels in all.
            let text = format!(
                "{{\"a\":{}{}}}",
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            );
            let ours = walk(&text, "t", &mut Record::default());
            assert_eq!(ours.is_ok(), depth <= 127, "depth {depth}");
            same_as_serde(&text).expect("as serde_json");
            let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            let ours = walk(&text, "t", &mut Record::default());
            assert_eq!(ours.is_ok(), depth <= 127, "object depth {depth}");
            same_as_serde(&text).expect("as serde_json");
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err =
            walk("{\"a\":1,\n \"b\" 2}", "t", &mut Record::default()).expect_err("missing colon");
        assert!(err.to_string().contains("line 2 column 6"), "{err}");
    }

    #[test]
    fn raw_control_characters_anywhere_in_a_string_are_errors() {
        // Every control character, in the first eight bytes of a string and
        // past them (where the string is skipped a word at a time).
        for c in 0u8..0x20 {
            for at in [0usize, 3, 8, 13] {
                let mut text = b"{\"a\":\"".to_vec();
                let mut body = b"abcdefghijklmnop".to_vec();
                body[at] = c;
                text.extend_from_slice(&body);
                text.extend_from_slice(b"\"}");
                let text = String::from_utf8(text).expect("ascii");
                let err = walk(&text, "t", &mut Record::default()).expect_err("control character");
                assert!(
                    err.to_string().contains("control character"),
                    "{c:#x} at {at}: {err}"
                );
            }
        }
    }
}
