//! Compiled rules and the matching loop over one view: keyword prefilter
//! (aho-corasick) and digit check, regex confirmation, boundary, validator, context.

use super::Error;
use super::normalize::{self, View};
use super::rule::{ContextSpec, DeriveSpec, LoadedRule};
use super::shape::Shape;
use super::validate::Validator;
use crate::finding::{Category, Severity};
use crate::text::SplitByte;
use aho_corasick::AhoCorasick;
use regex::Regex;
use std::ops::Range;
use std::sync::Arc;

/// One rule ready to run.
pub(crate) struct Compiled {
    pub id: Arc<str>,
    pub kind: Arc<str>,
    pub category: Category,
    pub severity: Severity,
    pub confidence: f32,
    pub regex: Option<Regex>,
    pub group: usize,
    /// The value group spans the whole match (or there is no group): a
    /// search for matches gives the values, and no capture pass is needed.
    pub whole: bool,
    pub validator: Option<Validator>,
    pub context: Option<ContextSpec>,
    pub locations: Vec<String>,
    pub boundary: bool,
    pub derive: Option<DeriveSpec>,
    pub has_keywords: bool,
    /// The shape a text needs before the rule runs without a keyword.
    pub gate: Gate,
}

impl Shape {
    fn allows(self, rule: &Compiled) -> bool {
        self.allows_gate(rule.gate)
    }

    /// Whether the text may hold a match of a rule with this gate. The maxima
    /// are taken over clusters independently, so this errs towards scanning.
    fn allows_gate(self, gate: Gate) -> bool {
        self.digit_cluster >= gate.digits.max(1)
            && self.digit_groups >= gate.groups
            && self.upper_token >= gate.upper_token
    }
}

/// The shape a text needs before a rule without keywords runs on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gate {
    digits: usize,
    groups: usize,
    upper_token: usize,
}

/// A confirmed match, still holding the raw value: it never leaves this module's
/// parent, and has no `Debug` so it cannot be printed by accident.
pub(crate) struct Hit {
    pub rule: usize,
    pub location: String,
    pub span: Range<usize>,
    pub depth: u8,
    pub value: String,
    pub confidence: f32,
    pub context: bool,
    pub decoded: normalize::Decoded,
    /// Text of the top-level view to mask in `url_path` (the value, or the base64
    /// segment that held it).
    pub cover: String,
}

/// All rules plus the keyword prefilter.
pub(crate) struct Engine {
    pub rules: Vec<Compiled>,
    prefilter: Option<AhoCorasick>,
    keyword_rules: Vec<Vec<usize>>,
    /// Distinct gates of the rules without keywords: a text that passes none of
    /// them (and holds no keyword) is skipped.
    gates: Vec<Gate>,
    /// No keyword holds `&`, so a query string holds a keyword exactly when
    /// one of its parameters does (see [`Engine::worth_scanning_query`]).
    split_queries: bool,
    /// Distinguishes engines in the per-thread [`WORTH_CACHE`].
    id: u64,
}

/// Values shorter than this are checked directly; longer ones go through the
/// per-thread cache (user agents, hosts and paths repeat line after line).
const CACHE_MIN: usize = 4;
const CACHE_SLOTS: usize = 1024;
/// Bytes of field name and value a cache slot holds; longer fields are
/// checked directly. Slots are 512 bytes with their header.
const SLOT_TEXT: usize = 488;

/// A field [`Engine::worth_scanning`] answered "skip" for (engine 0: empty).
/// The name and value are stored inline, right after the hash, so that a hit
/// reads one stretch of memory rather than chasing two heap pointers.
#[derive(Clone)]
#[repr(C, align(64))]
struct Remembered {
    hash: u64,
    engine: u64,
    name_len: u16,
    value_len: u16,
    /// The name's bytes, then the value's.
    text: [u8; SLOT_TEXT],
}

// The slot size the comments and SLOT_TEXT assume.
const _: () = assert!(std::mem::size_of::<Remembered>() == 512);

impl Remembered {
    const EMPTY: Remembered = Remembered {
        hash: 0,
        engine: 0,
        name_len: 0,
        value_len: 0,
        text: [0; SLOT_TEXT],
    };

    fn holds(&self, engine: u64, hash: u64, name: &[u8], value: &[u8]) -> bool {
        let (n, v) = (usize::from(self.name_len), usize::from(self.value_len));
        self.hash == hash
            && self.engine == engine
            && n == name.len()
            && v == value.len()
            && self.text[..n] == *name
            && self.text[n..n + v] == *value
    }

    /// Remember `name` and `value` (together at most [`SLOT_TEXT`] bytes).
    fn store(&mut self, engine: u64, hash: u64, name: &[u8], value: &[u8]) {
        let (n, v) = (name.len(), value.len());
        let (Ok(name_len), Ok(value_len)) = (u16::try_from(n), u16::try_from(v)) else {
            return;
        };
        let Some(text) = self.text.get_mut(..n + v) else {
            return;
        };
        text[..n].copy_from_slice(name);
        text[n..].copy_from_slice(value);
        (self.hash, self.engine) = (hash, engine);
        (self.name_len, self.value_len) = (name_len, value_len);
    }
}

thread_local! {
    /// Direct-mapped cache of recent "skip" answers.
    static WORTH_CACHE: std::cell::RefCell<Vec<Remembered>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// What a field name alone tells [`Engine::worth_scanning_now`]: its shape,
/// and whether the name by itself makes the field worth scanning (it holds a
/// keyword, or a base64 segment that decodes to text).
#[derive(Clone, Copy)]
struct NameFacts {
    shape: Shape,
    worth: bool,
}

/// Names longer than this are looked at directly, not remembered.
const NAME_MAX: usize = 40;
const NAME_SLOTS: usize = 64;
/// Slots of the per-thread cache of query parameters' facts (more than of
/// names: a page number or a timestamp to the minute takes a slot per value).
const PARAM_SLOTS: usize = 1024;

/// The [`NameFacts`] of one recent field name (engine 0: empty). Field names
/// are few (header and parameter names) while values mostly differ, so a
/// value the worth cache has not seen usually comes with a name it has.
#[derive(Clone, Copy)]
struct NameSlot {
    engine: u64,
    len: u8,
    name: [u8; NAME_MAX],
    facts: NameFacts,
}

impl NameSlot {
    const EMPTY: NameSlot = NameSlot {
        engine: 0,
        len: 0,
        name: [0; NAME_MAX],
        facts: NameFacts {
            shape: Shape {
                digit_cluster: 0,
                digit_groups: 0,
                upper_token: 0,
                base64_run: 0,
                escapes: false,
            },
            worth: false,
        },
    };
}

/// The slot of `text` in a facts cache of `slots` slots ([`NAME_CACHE`],
/// [`PARAM_CACHE`]). Engines share them: a slot records its engine, which a
/// lookup checks.
fn facts_slot(text: &str, slots: usize) -> Option<usize> {
    (crate::text::quick_hash(text.as_bytes()) as usize).checked_rem(slots)
}

thread_local! {
    /// Direct-mapped cache of the facts of recent field names.
    static NAME_CACHE: std::cell::RefCell<[NameSlot; NAME_SLOTS]> =
        const { std::cell::RefCell::new([NameSlot::EMPTY; NAME_SLOTS]) };
    /// Direct-mapped cache of the facts of recent query parameters (sized on
    /// first use).
    static PARAM_CACHE: std::cell::RefCell<Vec<NameSlot>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

static NEXT_ENGINE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// How far before the window a context word may start.
const WORD_MAX: usize = 32;

/// Whether `loc` is covered by a location pattern (`header:*`, `url.query` ...).
pub(crate) fn location_matches(pattern: &str, loc: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => loc.starts_with(prefix),
        None => {
            loc == pattern
                || loc
                    .strip_prefix(pattern)
                    .is_some_and(|r| r.starts_with(':'))
        }
    }
}

fn bounded_contains(hay: &str, word: &str) -> bool {
    bounded_ending_after(hay, word, 0)
}

/// Whether `word` occurs in `hay` as a whole token ending at or after byte `min_end`
/// (an empty word never does; rule loading rejects one).
fn bounded_ending_after(hay: &str, word: &str, min_end: usize) -> bool {
    if word.is_empty() {
        return false;
    }
    let hb = hay.as_bytes();
    let mut from = 0;
    while let Some(i) = crate::text::find_str(&hay[from..], word) {
        let s = from + i;
        let e = s + word.len();
        let before = s == 0 || !hb[s - 1].is_ascii_alphanumeric();
        let after = e >= hb.len() || !hb[e].is_ascii_alphanumeric();
        if before && after && e >= min_end {
            return true;
        }
        from = s + 1;
        while !hay.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

fn touches(b: &[u8], at: usize, step_back: bool) -> bool {
    let near = |i: Option<usize>| i.and_then(|i| b.get(i).copied());
    let (c, c2) = if step_back {
        (near(at.checked_sub(1)), near(at.checked_sub(2)))
    } else {
        (near(Some(at)), near(Some(at + 1)))
    };
    match c {
        Some(c) if c.is_ascii_alphanumeric() => true,
        Some(b'-' | b'.') => c2.is_some_and(|x| x.is_ascii_digit()),
        _ => false,
    }
}

/// Whether `text` holds a base64 segment that decodes to text. A long
/// mixed-case run of base64 characters is often a path (`/fhir/Observation`)
/// or a user agent: only a segment that really decodes is worth a view.
fn decodes_somewhere(text: &str) -> bool {
    !normalize::base64_segments(text).is_empty()
}

/// Whether the value group of `pattern` (`group`, 0 for the whole match) is
/// the whole match: no group, or one group around the entire pattern.
fn value_is_whole_match(pattern: &str, group: usize) -> bool {
    if group == 0 {
        return true;
    }
    match regex_syntax::parse(pattern) {
        Ok(hir) => match hir.kind() {
            regex_syntax::hir::HirKind::Capture(c) => c.index as usize == group,
            _ => false,
        },
        Err(_) => false,
    }
}

impl Engine {
    pub fn compile(loaded: &[LoadedRule]) -> Result<Engine, Error> {
        let mut rules = Vec::with_capacity(loaded.len());
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        for (idx, lr) in loaded.iter().enumerate() {
            let r = &lr.spec;
            let regex = match &r.pattern {
                Some(p) => Some(Regex::new(p).map_err(|e| Error::Invalid {
                    file: lr.file.clone(),
                    id: r.id.clone(),
                    message: format!("pattern: {e}"),
                })?),
                None => None,
            };
            let group = regex.as_ref().map_or(0, |re| {
                re.capture_names()
                    .position(|n| n == Some("value"))
                    .unwrap_or(usize::from(re.captures_len() > 1))
            });
            let whole = r
                .pattern
                .as_deref()
                .is_some_and(|p| value_is_whole_match(p, group));
            for k in &r.keywords {
                let k = k.to_ascii_lowercase();
                match keywords.iter().position(|x| *x == k) {
                    Some(p) => keyword_rules[p].push(idx),
                    None => {
                        keywords.push(k);
                        keyword_rules.push(vec![idx]);
                    }
                }
            }
            let context = r.context.clone().map(|mut c| {
                c.words = c.words.iter().map(|w| w.to_lowercase()).collect();
                c
            });
            rules.push(Compiled {
                id: Arc::from(r.id.as_str()),
                kind: Arc::from(r.kind.as_str()),
                category: r.category.into(),
                severity: r.severity.into(),
                confidence: r.confidence,
                regex,
                group,
                whole,
                validator: r.validator,
                context,
                locations: r.locations.clone(),
                boundary: r.boundary,
                derive: r.derive.clone(),
                has_keywords: !r.keywords.is_empty(),
                gate: Gate {
                    digits: r.min_digit_cluster.unwrap_or(0),
                    groups: r.min_digit_groups.unwrap_or(0),
                    upper_token: r.min_upper_token.unwrap_or(0),
                },
            });
        }
        let prefilter = if keywords.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(&keywords)
                    .map_err(|e| Error::Rule {
                        file: String::from("(keywords)"),
                        message: e.to_string(),
                    })?,
            )
        };
        let mut gates: Vec<Gate> = Vec::new();
        for r in rules
            .iter()
            .filter(|r| r.regex.is_some() && !r.has_keywords)
        {
            let g = r.gate;
            if !gates.contains(&g) {
                gates.push(g);
            }
        }
        let split_queries = !keywords.iter().any(|k| k.contains('&'));
        Ok(Engine {
            rules,
            prefilter,
            keyword_rules,
            gates,
            split_queries,
            id: NEXT_ENGINE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Whether a field could yield anything when scanned as `name: value` (as
    /// `value` alone when `name` is empty): false only when neither part needs
    /// decoding (`%`, `\\`, `+`) or holds a keyword, a shape that a rule without
    /// keywords is gated on, or a base64 segment that decodes to text. The `: `
    /// between the parts ends every run, so each part is judged on its own. Lets
    /// the detector skip building views of plain fields. Only "skip" answers are
    /// remembered (per thread): no value worth scanning is kept in the cache.
    pub fn worth_scanning(&self, name: &str, value: &str) -> bool {
        if value.len() < CACHE_MIN || name.len() + value.len() > SLOT_TEXT {
            return self.worth_scanning_now(name, value);
        }
        WORTH_CACHE.with_borrow_mut(|slots| {
            if slots.is_empty() {
                slots.resize(CACHE_SLOTS, Remembered::EMPTY);
            }
            let hash = crate::text::quick_hash(value.as_bytes())
                ^ crate::text::quick_hash(name.as_bytes()).rotate_left(17)
                ^ self.id;
            let slot = &mut slots[(hash as usize) % CACHE_SLOTS];
            if slot.holds(self.id, hash, name.as_bytes(), value.as_bytes()) {
                return false;
            }
            let worth = self.worth_scanning_now(name, value);
            if !worth {
                slot.store(self.id, hash, name.as_bytes(), value.as_bytes());
            }
            worth
        })
    }

    fn worth_scanning_now(&self, name: &str, value: &str) -> bool {
        let of_name = self.name_facts(name);
        if of_name.worth {
            return true;
        }
        let of_value = Shape::of(value);
        let shape = of_value.max(of_name.shape);
        if self.shape_calls_for_scan(shape) {
            return true;
        }
        if self.prefilter.as_ref().is_some_and(|ac| ac.is_match(value)) {
            return true;
        }
        of_value.base64_run >= normalize::BASE64_MIN && decodes_somewhere(value)
    }

    /// [`Engine::worth_scanning`] of a query string (`name` empty), judged
    /// parameter by parameter. `&` ends every run a [`Shape`] counts and every
    /// base64 segment, and no keyword holds one, so the query is worth
    /// scanning exactly when one parameter holds a keyword or a base64
    /// segment that decodes, or the parameters' shapes together (their
    /// maximum, the query's shape) pass a gate or need decoding. Parameters
    /// repeat far more than whole queries do (a page number, a timestamp to
    /// the minute), so their facts come from a per-thread cache of their own.
    /// A parameter too long for a slot, or a keyword with `&` in it, sends
    /// the query down the whole-field path.
    pub fn worth_scanning_query(&self, query: &str) -> bool {
        if !self.split_queries {
            return self.worth_scanning("", query);
        }
        PARAM_CACHE.with_borrow_mut(|slots| {
            if slots.is_empty() {
                slots.resize(PARAM_SLOTS, NameSlot::EMPTY);
            }
            let mut shape = Shape::default();
            for param in query.split_b(b'&') {
                if param.len() > NAME_MAX {
                    return self.worth_scanning("", query);
                }
                let facts = self.facts_in(slots, param);
                if facts.worth {
                    return true;
                }
                shape = shape.max(facts.shape);
            }
            self.shape_calls_for_scan(shape)
        })
    }

    /// Whether a text of this shape is worth scanning whatever its keywords:
    /// it needs decoding, or it passes the gate of a rule without keywords.
    fn shape_calls_for_scan(&self, shape: Shape) -> bool {
        shape.escapes || self.gates.iter().any(|&g| shape.allows_gate(g))
    }

    /// The facts of a field name, from the per-thread [`NAME_CACHE`] when it
    /// was seen lately.
    fn name_facts(&self, name: &str) -> NameFacts {
        NAME_CACHE.with_borrow_mut(|slots| self.facts_in(slots, name))
    }

    /// The facts of `text` from a direct-mapped cache, computed (and stored)
    /// when its slot holds something else. Texts longer than a slot are
    /// computed every time.
    fn facts_in(&self, slots: &mut [NameSlot], text: &str) -> NameFacts {
        let len = match u8::try_from(text.len()) {
            Ok(len) if text.len() <= NAME_MAX => len,
            _ => return self.name_facts_now(text),
        };
        let Some(slot) = facts_slot(text, slots.len()).and_then(|i| slots.get_mut(i)) else {
            return self.name_facts_now(text);
        };
        if slot.engine == self.id && slot.len == len && slot.name[..text.len()] == *text.as_bytes()
        {
            return slot.facts;
        }
        let facts = self.name_facts_now(text);
        slot.name[..text.len()].copy_from_slice(text.as_bytes());
        (slot.engine, slot.len, slot.facts) = (self.id, len, facts);
        facts
    }

    fn name_facts_now(&self, name: &str) -> NameFacts {
        let shape = Shape::of(name);
        let worth = !name.is_empty()
            && (self.prefilter.as_ref().is_some_and(|ac| ac.is_match(name))
                || (shape.base64_run >= normalize::BASE64_MIN && decodes_somewhere(name)));
        NameFacts { shape, worth }
    }

    /// [`Engine::worth_scanning_now`] computed from scratch, with nothing
    /// remembered: the reference the caches are tested against.
    #[cfg(test)]
    fn worth_scanning_reference(&self, name: &str, value: &str) -> bool {
        let (of_value, of_name) = (Shape::of(value), Shape::of(name));
        let shape = of_value.max(of_name);
        if self.shape_calls_for_scan(shape) {
            return true;
        }
        if self
            .prefilter
            .as_ref()
            .is_some_and(|ac| ac.is_match(value) || (!name.is_empty() && ac.is_match(name)))
        {
            return true;
        }
        (of_value.base64_run >= normalize::BASE64_MIN && decodes_somewhere(value))
            || (of_name.base64_run >= normalize::BASE64_MIN && decodes_somewhere(name))
    }

    /// Mark the rules whose keywords occur in `text`.
    fn mark(&self, text: &str, marks: &mut [u64]) {
        // The packed (Teddy) search behind is_match is much faster than the
        // overlapping automaton walk, and most texts hold no keyword at all.
        if let Some(ac) = self.prefilter.as_ref().filter(|ac| ac.is_match(text)) {
            for m in ac.find_overlapping_iter(text) {
                for &r in &self.keyword_rules[m.pattern().as_usize()] {
                    marks[r / 64] |= 1 << (r % 64);
                }
            }
        }
    }

    /// Scan one view (and the base64 segments inside it), appending hits.
    pub fn scan_view(&self, view: &View, cover_of: Option<&str>, hits: &mut Vec<Hit>) {
        // One bit per rule; on the stack for up to 256 rules.
        let words = self.rules.len().div_ceil(64);
        let (mut inline, mut heap) = ([0u64; 4], Vec::new());
        let marks: &mut [u64] = if words <= inline.len() {
            &mut inline[..words]
        } else {
            heap.resize(words, 0);
            &mut heap
        };
        self.mark(&view.text, marks);
        if let Some(f) = &view.field {
            self.mark(f, marks);
        }
        let shape = Shape::of(&view.text);
        for (idx, rule) in self.rules.iter().enumerate() {
            let Some(re) = &rule.regex else { continue };
            let marked = marks[idx / 64] & (1 << (idx % 64)) != 0;
            if !(marked || (!rule.has_keywords && shape.allows(rule))) {
                continue;
            }
            let mut confirm = |m: regex::Match<'_>| {
                hits.extend(self.confirm(idx, view, m.range(), cover_of));
            };
            if rule.whole {
                re.find_iter(&view.text).for_each(&mut confirm);
            } else {
                re.captures_iter(&view.text)
                    .filter_map(|caps| caps.get(rule.group))
                    .for_each(&mut confirm);
            }
        }
        if view.depth < normalize::BASE64_DEPTH && shape.base64_run >= normalize::BASE64_MIN {
            for (range, text) in normalize::base64_segments(&view.text) {
                let inner = View {
                    text,
                    location: view.location_at(range.start),
                    field: view
                        .part_at(range.start)
                        .map(|p| p.name.to_lowercase())
                        .or_else(|| view.field.clone()),
                    parts: Vec::new(),
                    depth: view.depth + 1,
                    decoded: normalize::Decoded {
                        base64: true,
                        ..view.decoded
                    },
                };
                let cover = cover_of.unwrap_or(&view.text[range]);
                self.scan_view(&inner, Some(cover), hits);
            }
        }
    }

    fn confirm(
        &self,
        idx: usize,
        view: &View,
        span: Range<usize>,
        cover_of: Option<&str>,
    ) -> Option<Hit> {
        let rule = &self.rules[idx];
        let text = &view.text;
        let value = &text[span.clone()];
        if value.is_empty() {
            return None;
        }
        let location = view.location_at(span.start);
        if !rule.locations.is_empty()
            && !rule
                .locations
                .iter()
                .any(|p| location_matches(p, &location))
        {
            return None;
        }
        let b = text.as_bytes();
        if rule.boundary && (touches(b, span.start, true) || touches(b, span.end, false)) {
            return None;
        }
        if let Some(v) = rule.validator
            && !v.check(value)
        {
            return None;
        }
        let mut confidence = rule.confidence;
        let mut context = false;
        if let Some(ctx) = &rule.context {
            let part = view.part_at(span.start);
            let floor = part.map_or(0, |p| p.range.start);
            // A context word must end within `window` bytes of the value; it may
            // start further back (up to WORD_MAX more bytes).
            let near = span.start.saturating_sub(ctx.window).max(floor);
            let mut from = near.saturating_sub(WORD_MAX).max(floor);
            while !text.is_char_boundary(from) {
                from += 1;
            }
            let window = text[from..span.start].to_lowercase();
            let min_end = near - from;
            let field = part
                .map(|p| p.name.to_lowercase())
                .or_else(|| view.field.clone())
                .unwrap_or_default();
            context = ctx
                .words
                .iter()
                .any(|w| bounded_ending_after(&window, w, min_end) || bounded_contains(&field, w));
            if context {
                confidence = (confidence + ctx.boost).min(1.0);
            } else if ctx.required {
                return None;
            }
        }
        Some(Hit {
            rule: idx,
            location,
            span,
            depth: view.depth,
            value: value.to_string(),
            confidence,
            context,
            decoded: view.decoded,
            cover: cover_of.unwrap_or(value).to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert!(location_matches("header:*", "header:authorization"));
        assert!(location_matches("url.query", "url.query:ssn"));
        assert!(location_matches("url.query", "url.query"));
        assert!(!location_matches("url.query", "url.query_x"));
        assert!(!location_matches("body", "url.path"));
    }

    #[test]
    fn bounded_words() {
        assert!(bounded_contains("patient.birthdate=", "birthdate"));
        assert!(bounded_contains("\"ssn\":\"", "ssn"));
        assert!(!bounded_contains("classname=", "ssn"));
        assert!(!bounded_contains("adobe", "dob"));
        assert!(!bounded_contains("dob1", ""));
    }

    proptest::proptest! {
        /// A gate never keeps a rule without keywords off a text its pattern
        /// matches: digits, separators, hex, upper-case tokens and written-out
        /// numbers in any mix.
        #[test]
        fn gates_never_hide_a_match(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[0-9]{1,12}",
                    "[0-9a-f]{4,32}",
                    "[0-9]{3}-[0-9]{2}-[0-9]{4}",
                    "\\(?[2-9][0-9]{2}\\)?[ .-]?[2-9][0-9]{2}[ .-][0-9]{4}",
                    "\\+?1[ .-][2-9][0-9]{2}[ .-][2-9][0-9]{2}[ .-][0-9]{4}",
                    "[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{1,7}",
                    "[A-Z0-9-]{3,14}",
                    "[ .()+/_=&:;-]{1,3}",
                    "[a-zA-Z]{1,6}",
                ],
                1..10,
            ),
        ) {
            let det = crate::detect::Detector::load(
                crate::redact::Key::from_bytes(b"gate test key"),
                None,
            )
            .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let text = parts.concat();
            let shape = Shape::of(&text);
            for rule in det.engine.rules.iter().filter(|r| !r.has_keywords) {
                let Some(re) = &rule.regex else { continue };
                if re.is_match(&text) {
                    proptest::prop_assert!(shape.allows(rule), "{} gated off a match", rule.id);
                }
            }
        }

        /// The per-thread caches (of answers and of name facts) answer
        /// exactly as a check from scratch, across repeats, fields that split
        /// the same bytes differently between name and value, names and
        /// fields too long for a slot, and two engines with different rules
        /// asked in turn on one thread.
        #[test]
        fn cached_answers_equal_direct_ones(
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "", "u", "user-agent", "ssn", "x", "x-api-key", "VGhpcyBpcyBhIHRlc3Q",
                    ]),
                    proptest::sample::select(vec![
                        "agent", "-agent", "/fhir/Observation", "ssn=123456789", "ab",
                        "Mozilla/5.0", "page=2&_count=10", "id=000-12-3456",
                    ]),
                    0..3usize,
                    0..3usize,
                    proptest::bool::ANY,
                ),
                1..40,
            ),
        ) {
            let engines = cache_test_engines()?;
            for (name, value, name_repeat, repeat, second) in fields {
                let engine = &engines[usize::from(second)];
                let name = name.repeat(1 + name_repeat * 4);
                let value = value.repeat(1 + repeat * 40);
                let direct = engine.worth_scanning_reference(&name, &value);
                proptest::prop_assert_eq!(engine.worth_scanning_now(&name, &value), direct);
                proptest::prop_assert_eq!(engine.worth_scanning(&name, &value), direct);
                proptest::prop_assert_eq!(engine.worth_scanning(&name, &value), direct);
            }
        }

        /// A query judged parameter by parameter (with the facts of recent
        /// parameters remembered) gets the answer of the whole query checked
        /// from scratch, by each engine, asked twice.
        #[test]
        fn query_answers_equal_direct_ones(
            queries in proptest::collection::vec((query_text(), 0..3usize), 1..20),
        ) {
            let engines = cache_test_engines()?;
            for (query, e) in queries {
                let engine = &engines[e];
                let direct = engine.worth_scanning_reference("", &query);
                proptest::prop_assert_eq!(engine.worth_scanning_query(&query), direct, "{}", query);
                proptest::prop_assert_eq!(engine.worth_scanning_query(&query), direct, "{}", query);
            }
        }
    }

    /// A rule whose keyword holds `&`: it can match across two parameters of
    /// a query, so an engine with it judges queries whole.
    const AMPERSAND_RULE: &str = r#"
rules:
  - id: test.ampersand
    name: Ampersand keyword
    description: A keyword that spans two query parameters.
    category: phi
    kind: mrn
    severity: low
    confidence: 0.5
    keywords: ["x&mr"]
    pattern: '(?P<value>[0-9]{6})'
"#;

    /// A parameter or a query to cut into parameters: `&`, keywords, digit
    /// runs a gate counts, upper-case tokens, escapes and base64 segments.
    fn query_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "",
                    "&",
                    "page=2",
                    "_count=50",
                    "ts=2024-01-15T10:23:00Z",
                    "ssn=",
                    "x",
                    "mr=1",
                    "id=123",
                    "456",
                    "78-90",
                    "ABC",
                    "DEF1",
                    "q=%41",
                    "a+b",
                    "token=",
                    "VGhpcyBpcyBhIHRlc3Q",
                    "dea",
                    "npi",
                ]),
                0..3usize,
            ),
            0..12,
        )
        .prop_map(|parts| {
            parts
                .into_iter()
                .map(|(p, n)| p.repeat(1 + n * 20))
                .collect::<Vec<_>>()
                .join("")
        })
    }

    #[test]
    fn whole_match_values_are_told_apart() {
        let cases = [
            ("(?P<value>[0-9]{9})", 1, true),
            ("([0-9]{3}-[0-9]{2}-[0-9]{4})", 1, true),
            ("[0-9]{9}", 0, true),
            ("(?P<value>a|b)", 1, true),
            ("(?i:bearer)\\s+(?P<value>[A-Za-z]{8,})", 1, false),
            ("(a)(?P<value>b)", 2, false),
            ("(a)b", 1, false),
            ("(a)|b", 1, false),
            ("(a)+", 1, false),
            ("(?:x)(a)", 1, false),
        ];
        for (pattern, group, want) in cases {
            assert_eq!(value_is_whole_match(pattern, group), want, "{pattern}");
        }
    }

    /// For every built-in rule whose value is its whole match, the matches a
    /// search finds are the values the capture groups give, on every example
    /// and negative example and on all of them run together; and some rules
    /// do take that path, and some do not.
    #[test]
    fn whole_match_rules_find_their_captures() -> Result<(), Box<dyn std::error::Error>> {
        let loaded = crate::detect::rule::load_all(None)?;
        let engine = Engine::compile(&loaded)?;
        let mut texts: Vec<String> = loaded
            .iter()
            .flat_map(|r| r.spec.examples.iter().chain(&r.spec.negative_examples))
            .cloned()
            .collect();
        texts.push(texts.join(" "));
        let (mut whole, mut not) = (0, 0);
        for rule in &engine.rules {
            let Some(re) = &rule.regex else { continue };
            if !rule.whole {
                not += 1;
                continue;
            }
            whole += 1;
            for text in &texts {
                let found: Vec<_> = re.find_iter(text).map(|m| m.range()).collect();
                let captured: Vec<_> = re
                    .captures_iter(text)
                    .filter_map(|c| c.get(rule.group).map(|m| m.range()))
                    .collect();
                assert_eq!(found, captured, "rule {}", rule.id);
            }
        }
        assert!(whole > 5 && not > 5, "{whole} whole, {not} not");
        Ok(())
    }

    /// Three engines for the cache tests: all rules; the rules without the
    /// keywords that name SSNs and API keys (the same texts tell it something
    /// else); all rules and [`AMPERSAND_RULE`]. Built once, so the caches also
    /// carry entries from earlier cases.
    fn cache_test_engines() -> Result<&'static [Engine; 3], proptest::test_runner::TestCaseError> {
        static ENGINES: std::sync::LazyLock<Result<[Engine; 3], String>> =
            std::sync::LazyLock::new(|| {
                let rules = crate::detect::rule::load_all(None).map_err(|e| e.to_string())?;
                let fewer: Vec<_> = rules
                    .iter()
                    .filter(|r| {
                        !r.spec
                            .keywords
                            .iter()
                            .any(|k| k.contains("ssn") || k.contains("key"))
                    })
                    .cloned()
                    .collect();
                if fewer.len() == rules.len() {
                    return Err(String::from("no rule was left out"));
                }
                let mut more = rules.clone();
                more.extend(
                    crate::detect::rule::parse("ampersand.yaml", AMPERSAND_RULE)
                        .map_err(|e| e.to_string())?,
                );
                let compile = |r: &[LoadedRule]| Engine::compile(r).map_err(|e| e.to_string());
                Ok([compile(&rules)?, compile(&fewer)?, compile(&more)?])
            });
        ENGINES
            .as_ref()
            .map_err(|e| proptest::test_runner::TestCaseError::fail(e.clone()))
    }

    /// The engine with a keyword that holds `&` finds it across two
    /// parameters, where no single parameter holds it.
    #[test]
    fn a_keyword_across_parameters_is_seen() -> Result<(), Box<dyn std::error::Error>> {
        let engines = cache_test_engines().map_err(|e| e.to_string())?;
        assert!(engines[2].worth_scanning_query("a=x&mr=b"));
        assert!(!engines[0].worth_scanning_query("a=x&mr=b"));
        assert!(!engines[2].worth_scanning_query("a=x&b=mr"));
        Ok(())
    }

    /// Two names of one length in one slot of the name cache: the second is
    /// told its own facts, not those of the keyword before it.
    #[test]
    fn names_sharing_a_slot_keep_their_own_facts() -> Result<(), Box<dyn std::error::Error>> {
        let engine = Engine::compile(&crate::detect::rule::load_all(None)?)?;
        let other = (0..1000)
            .map(|i| format!("{i:03}"))
            .find(|n| facts_slot(n, NAME_SLOTS) == facts_slot("ssn", NAME_SLOTS))
            .ok_or("no three-digit name shares the slot of `ssn`")?;
        assert!(engine.worth_scanning_now("ssn", "agent"));
        assert!(!engine.worth_scanning_reference(&other, "agent"));
        assert!(!engine.worth_scanning_now(&other, "agent"));
        assert!(engine.worth_scanning_now("ssn", "agent"));
        Ok(())
    }

    #[test]
    fn touching() {
        let b = b"a123 9-123 -123 x";
        assert!(touches(b, 1, true));
        assert!(touches(b, 7, true));
        assert!(!touches(b, 12, true));
        assert!(!touches(b, 4, false));
    }
}
