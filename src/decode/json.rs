//! A streaming JSON walker: visits every scalar of a record with its dotted key
//! path (`request.headers.host`), without building a DOM.
//!
//! Array indices add no path segment, so `messages[*].details.ruleId` is visited
//! as `messages.details.ruleId`. Duplicate keys are visited in order (never an
//! error). Strings are borrowed from the record when they have no escapes.
//! serde_json's recursion limit stays on, so deep nesting is an error, not a
//! stack overflow. A top-level array is a batch: each element is one record.

use super::Error;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

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

    /// The value as an owned string (see [`Scalar::text`]).
    pub(crate) fn string(&self) -> Option<String> {
        self.text().map(Cow::into_owned)
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
pub(crate) fn json_error(format: &'static str, e: &serde_json::Error) -> Error {
    use serde_json::error::Category;
    let message = match e.classify() {
        Category::Syntax | Category::Eof => e.to_string(),
        Category::Data => format!("invalid value at line {} column {}", e.line(), e.column()),
        Category::Io => String::from("i/o error"),
    };
    Error::Json { format, message }
}

/// What the top level held.
enum Shape {
    /// Objects (one, or a batch; possibly an empty batch).
    Records,
    /// A scalar, or an array with a non-object element.
    NotObject,
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

/// What one element of a top-level array was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Object,
    Array,
    Scalar,
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
            *keys |= super::detect::key_bit(v.as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        seen: Vec<(String, String)>,
        records: usize,
    }

    impl<'de> Sink<'de> for Collect {
        fn scalar(&mut self, path: &str, value: Scalar<'de>) {
            let v = value.string().unwrap_or_else(|| String::from("<none>"));
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
}
