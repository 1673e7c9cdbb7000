//! Small helpers shared by the decoders: time parsing, URL splitting, host:port,
//! and a tokenizer for space-separated text logs with `"quoted"` and `[bracketed]`
//! fields.

use crate::text::SplitByte;
use chrono::{DateTime, NaiveDateTime};

/// Microseconds in one second.
const MICROS: i64 = 1_000_000;

/// Unit of a numeric timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Seconds since the epoch (fractions allowed).
    Seconds,
    /// Milliseconds since the epoch.
    Millis,
    /// Guess from the magnitude: seconds, milliseconds, microseconds or nanoseconds.
    Auto,
}

/// What to multiply (or divide) a timestamp by to get microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl Scale {
    /// The scale of a value in `unit`, guessing from `magnitude` for [`Unit::Auto`].
    fn of(unit: Unit, magnitude: f64) -> Scale {
        match unit {
            Unit::Seconds => Scale::Seconds,
            Unit::Millis => Scale::Millis,
            Unit::Auto => {
                let m = magnitude.abs();
                if m < 1e11 {
                    Scale::Seconds
                } else if m < 1e14 {
                    Scale::Millis
                } else if m < 1e17 {
                    Scale::Micros
                } else {
                    Scale::Nanos
                }
            }
        }
    }

    fn factor(self) -> f64 {
        match self {
            Scale::Seconds => 1e6,
            Scale::Millis => 1e3,
            Scale::Micros => 1.0,
            Scale::Nanos => 1e-3,
        }
    }
}

/// Latest accepted time (year 9999) in microseconds; guards against overflow.
const MAX_MICROS: f64 = 253_402_300_799.0 * 1e6;

/// A float timestamp in `unit` to microseconds, if finite and in range.
pub(crate) fn float_to_micros(v: f64, unit: Unit) -> Option<i64> {
    let us = (v * Scale::of(unit, v).factor()).round();
    (us.is_finite() && us.abs() <= MAX_MICROS).then_some(us as i64)
}

/// An integer timestamp in `unit` to microseconds, if in range.
pub(crate) fn int_to_micros(v: i64, unit: Unit) -> Option<i64> {
    let us = match Scale::of(unit, v as f64) {
        Scale::Seconds => v.checked_mul(MICROS)?,
        Scale::Millis => v.checked_mul(1000)?,
        Scale::Micros => v,
        Scale::Nanos => v / 1000,
    };
    ((us as f64).abs() <= MAX_MICROS).then_some(us)
}

/// A decimal number string (`1286536308.779`, `1700000000123`) in `unit` to
/// microseconds, exact (no float rounding) for up to 6 fraction digits.
pub(crate) fn decimal_to_micros(s: &str, unit: Unit) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac_part) = body.split_once_b(b'.').unwrap_or((body, ""));
    if int_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = int_part.parse().ok()?;
    let int = if neg { -int } else { int };
    if Scale::of(unit, int as f64) != Scale::Seconds || frac_part.is_empty() {
        if frac_part.is_empty() {
            return int_to_micros(int, unit);
        }
        return float_to_micros(s.parse().ok()?, unit);
    }
    let mut frac: i64 = 0;
    for (i, b) in frac_part.bytes().take(6).enumerate() {
        frac += i64::from(b - b'0') * 10_i64.pow(5 - i as u32);
    }
    let base = int.checked_mul(MICROS)?;
    let us = if neg { base - frac } else { base + frac };
    ((us as f64).abs() <= MAX_MICROS).then_some(us)
}

/// A textual timestamp to microseconds since the epoch, UTC. Accepts RFC 3339 /
/// ISO 8601 (`2024-01-02T03:04:05.678Z`, with an offset, or without a zone as
/// UTC), the common log format (`02/Jan/2024:03:04:05 +0000`), ctime as
/// ModSecurity writes it (`Tue Jan  2 03:04:05 2024`, as UTC) and decimal epoch
/// numbers (magnitude decides the unit).
pub(crate) fn text_to_micros(s: &str) -> Option<i64> {
    let s = s.trim();
    let first = *s.as_bytes().first()?;
    if first.is_ascii_digit() || first == b'-' {
        // The common log format and the usual RFC 3339 shape first: their
        // fast paths reject anything else from the length and a few bytes.
        if let Some(us) = clf_to_micros(s).or_else(|| rfc3339_to_micros(s)) {
            return Some(us);
        }
        if let Some(us) = decimal_to_micros(s, Unit::Auto) {
            return Some(us);
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(dt.timestamp_micros());
        }
        if let Ok(dt) = DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S%.f %z") {
            return Some(dt.timestamp_micros());
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(dt.and_utc().timestamp_micros());
            }
        }
        // `2024-01-02 03:04:05.678+00:00` and `... Z` variants with a space.
        if s.len() > 10 && s.as_bytes()[10] == b' ' {
            let t = format!("{}T{}", &s[..10], &s[11..]);
            if let Ok(dt) = DateTime::parse_from_rfc3339(&t) {
                return Some(dt.timestamp_micros());
            }
        }
        return None;
    }
    // ctime: the weekday is redundant, so a wrong one is not a reason to lose the time.
    let (_weekday, rest) = s.split_once_b(b' ')?;
    NaiveDateTime::parse_from_str(rest.trim_start(), "%b %e %H:%M:%S %Y")
        .ok()
        .map(|dt| dt.and_utc().timestamp_micros())
}

/// The decimal number written in `b[r]` when those bytes are all digits (at
/// most nine, so it fits).
fn digits_at(b: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    let d = b.get(r)?;
    d.iter()
        .all(u8::is_ascii_digit)
        .then(|| d.iter().fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0')))
}

/// Month abbreviations of the common log format, January first.
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Fast path for the common log format time `02/Jan/2024:03:04:05 +0000`
/// (no fraction); anything else is left to chrono's parser.
fn clf_to_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits_at(b, r);
    let month = MONTHS.iter().position(|m| m[..] == b[3..6])? as u32 + 1;
    let secs = civil_seconds(
        num(7..11)? as i32,
        month,
        num(0..2)?,
        (num(12..14)?, num(15..17)?, num(18..20)?),
    )?;
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = i64::from(num(22..24)? * 3600 + num(24..26)? * 60) * sign;
    Some((secs - offset) * MICROS)
}

/// Seconds since the epoch of a UTC date and time of day, or `None` when
/// either does not exist (as chrono's `from_ymd_opt` and `and_hms_opt` decide:
/// hour below 24, minute and second below 60). The date's day number comes
/// from a one-entry per-thread cache: a log's lines mostly share their date.
fn civil_seconds(year: i32, month: u32, day: u32, (h, m, s): (u32, u32, u32)) -> Option<i64> {
    thread_local! {
        static LAST_DATE: std::cell::Cell<Option<(i32, u32, u32, i64)>> =
            const { std::cell::Cell::new(None) };
    }
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let days = match LAST_DATE.get() {
        Some((y, mo, d, days)) if (y, mo, d) == (year, month, day) => days,
        _ => {
            let midnight =
                chrono::NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(0, 0, 0)?;
            // Midnight is a whole number of days from the epoch, either side of it.
            let days = midnight.and_utc().timestamp() / 86_400;
            LAST_DATE.set(Some((year, month, day, days)));
            days
        }
    };
    Some(days * 86_400 + i64::from(h * 3600 + m * 60 + s))
}

/// Fast path for the usual RFC 3339 shape `2024-01-02T03:04:05[.fff]Z` (or
/// with a `+hh:mm` / `-hh:mm` offset; 1 to 9 fraction digits); `None` for
/// anything else, which is left to chrono's parser (it gives the same answer
/// for everything accepted here).
fn rfc3339_to_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits_at(b, r);
    let mut at = 19;
    let mut micros = 0i64;
    if b[at] == b'.' {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        // Microseconds: the first six digits (chrono truncates the same way).
        let kept = digits.min(6);
        micros = i64::from(num(at + 1..at + 1 + kept)?) * 10i64.pow(6 - kept as u32);
        at += 1 + digits;
    }
    let offset = match &b[at..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let (second, minute, hour) = (num(17..19)?, num(14..16)?, num(11..13)?);
    let secs = civil_seconds(
        num(0..4)? as i32,
        num(5..7)?,
        num(8..10)?,
        (hour, minute, second),
    )?;
    Some((secs - offset) * MICROS + micros)
}

/// Seconds to milliseconds, rounded to the microsecond so `0.042311` s reads
/// as `42.311` ms rather than a float artifact.
pub(crate) fn secs_to_ms(secs: f64) -> f64 {
    (secs * 1e6).round() / 1e3
}

/// Split a request target into path and query at the first `?`. An empty query
/// is `None`.
pub(crate) fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once_b(b'?') {
        Some((p, q)) => (p, (!q.is_empty()).then_some(q)),
        None => (target, None),
    }
}

/// The parts of an absolute URL (`scheme://[userinfo@]host[:port]/path?query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    /// Host without brackets or port.
    pub host: Option<&'a str>,
    /// Port when given.
    pub port: Option<u16>,
    /// Path, `None` when the URL has none.
    pub path: Option<&'a str>,
    /// Query without `?`.
    pub query: Option<&'a str>,
}

/// Parse an absolute URL; `None` if `url` has no `scheme://`.
pub(crate) fn parse_url(url: &str) -> Option<UrlParts<'_>> {
    // The scheme is the leading run of scheme characters, and `://` must follow
    // it (the same as splitting at the first `://` and checking the scheme).
    let end = url
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    if end == 0 || !url[end..].starts_with("://") {
        return None;
    }
    let rest = &url[end + 3..];
    let auth_end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let authority = authority.rsplit_once_b(b'@').map_or(authority, |(_, h)| h);
    let (host, port) = split_host_port(authority);
    let target = &rest[auth_end..];
    let target = target.split_once_b(b'#').map_or(target, |(t, _)| t);
    let (path, query) = split_target(target);
    Some(UrlParts {
        host: (!host.is_empty()).then_some(host),
        port,
        path: (!path.is_empty()).then_some(path),
        query,
    })
}

/// Split `host:port`, `[v6]:port`, `[v6]`, `host` or a bare IPv6 address.
pub(crate) fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once_b(b']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
        return (s, None);
    }
    match s.rsplit_once_b(b':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (s, None),
        },
        _ => (s, None),
    }
}

/// `None` for the "no value" markers logs use (`-` and the empty string).
pub(crate) fn non_dash(s: &str) -> Option<&str> {
    (!s.is_empty() && s != "-").then_some(s)
}

/// Space-separated fields of a text log line: bare tokens, `"quoted"` (backslash
/// escapes skipped, content returned as logged) and `[bracketed]`.
pub(crate) struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    /// Fields of `line`.
    pub(crate) fn new(line: &'a str) -> Self {
        Fields { rest: line }
    }

    /// The unparsed remainder (leading spaces removed).
    pub(crate) fn rest(&self) -> &'a str {
        self.rest.trim_start_matches(' ')
    }

    /// Next field; `Err(())` on an unterminated quote or bracket. Inlined:
    /// returned from a call, the result travels through memory and its read
    /// right after stalls (the decoders call it in one loop or one closure).
    #[inline(always)]
    pub(crate) fn next_field(&mut self) -> Result<Option<&'a str>, ()> {
        let spaces = self.rest.bytes().take_while(|&b| b == b' ').count();
        // Spaces are ASCII: `spaces` is a char boundary.
        let s = &self.rest[spaces..];
        let bytes = s.as_bytes();
        let Some(&first) = bytes.first() else {
            self.rest = s;
            return Ok(None);
        };
        let (field, after) = match first {
            b'"' => {
                let mut i = 1;
                loop {
                    let at = bytes.get(i..).and_then(|b| memchr::memchr2(b'"', b'\\', b));
                    match at {
                        None => return Err(()),
                        Some(off) if bytes[i + off] == b'\\' => i += off + 2,
                        Some(off) => {
                            i += off;
                            break;
                        }
                    }
                }
                (&s[1..i], i + 1)
            }
            b'[' => {
                let end = memchr::memchr(b']', bytes).ok_or(())?;
                (&s[1..end], end + 1)
            }
            _ => {
                let end = crate::text::find_byte(bytes, b' ').unwrap_or(bytes.len());
                (&s[..end], end)
            }
        };
        self.rest = s.get(after..).unwrap_or("");
        Ok(Some(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_times() {
        let cases: &[(&str, Option<i64>)] = &[
            ("2024-01-02T03:04:05Z", Some(1_704_164_645_000_000)),
            ("2024-01-02T03:04:05.678901Z", Some(1_704_164_645_678_901)),
            ("2024-01-02T04:04:05+01:00", Some(1_704_164_645_000_000)),
            ("2024-01-02T03:04:05.5", Some(1_704_164_645_500_000)),
            ("2024-01-02 03:04:05", Some(1_704_164_645_000_000)),
            ("2024-01-02 03:04:05.25+00:00", Some(1_704_164_645_250_000)),
            ("02/Jan/2024:03:04:05 +0000", Some(1_704_164_645_000_000)),
            ("02/Jan/2024:04:04:05 +0100", Some(1_704_164_645_000_000)),
            ("02/Jan/2024:00:04:05 -0300", Some(1_704_164_645_000_000)),
            ("02/Jan/2024:03:04:05.5 +0000", Some(1_704_164_645_500_000)),
            ("31/Feb/2024:03:04:05 +0000", None),
            ("02/Foo/2024:03:04:05 +0000", None),
            ("Tue Jan  2 03:04:05 2024", Some(1_704_164_645_000_000)),
            ("Fri Jan 12 03:04:05 2024", Some(1_705_028_645_000_000)),
            ("Mon Jan 12 03:04:05 2024", Some(1_705_028_645_000_000)),
            ("1704164645", Some(1_704_164_645_000_000)),
            ("1704164645.678", Some(1_704_164_645_678_000)),
            ("1704164645678", Some(1_704_164_645_678_000)),
            ("1704164645678901", Some(1_704_164_645_678_901)),
            ("1704164645678901234", Some(1_704_164_645_678_901)),
            ("not a time", None),
            ("", None),
            ("99999999999999999999999", None),
        ];
        for (input, want) in cases {
            assert_eq!(text_to_micros(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn numeric_times() {
        assert_eq!(
            float_to_micros(1_258_531_221.486_539, Unit::Seconds),
            Some(1_258_531_221_486_539)
        );
        assert_eq!(
            int_to_micros(1_700_000_000_123, Unit::Millis),
            Some(1_700_000_000_123_000)
        );
        assert_eq!(
            int_to_micros(1_700_000_000_123_456_789, Unit::Auto),
            Some(1_700_000_000_123_456)
        );
        assert_eq!(int_to_micros(i64::MAX, Unit::Seconds), None);
        assert_eq!(float_to_micros(f64::NAN, Unit::Seconds), None);
        assert_eq!(
            decimal_to_micros("1286536308.7", Unit::Seconds),
            Some(1_286_536_308_700_000)
        );
    }

    #[test]
    fn urls() {
        let u = parse_url("https://user:pw@api.example.org:8443/fhir/Patient/1?x=1#f")
            .expect("absolute url");
        assert_eq!(u.host, Some("api.example.org"));
        assert_eq!(u.port, Some(8443));
        assert_eq!(u.path, Some("/fhir/Patient/1"));
        assert_eq!(u.query, Some("x=1"));
        let u = parse_url("http://[2001:db8::1]:80?q").expect("absolute url");
        assert_eq!(
            (u.host, u.port, u.path, u.query),
            (Some("2001:db8::1"), Some(80), None, Some("q"))
        );
        assert!(parse_url("/relative?x").is_none());
        assert!(parse_url("://host/x").is_none());
        assert!(parse_url("a b://host/x").is_none());
        assert!(parse_url("/x?next=http://host/").is_none());
        assert_eq!(parse_url("svc+h2.v1://h/p").and_then(|u| u.host), Some("h"));
        assert_eq!(split_target("/a?"), ("/a", None));
        assert_eq!(split_target("/a?b=1?c"), ("/a", Some("b=1?c")));
        assert_eq!(split_host_port("10.0.0.1:443"), ("10.0.0.1", Some(443)));
        assert_eq!(split_host_port("2001:db8::1"), ("2001:db8::1", None));
        assert_eq!(split_host_port("host:notaport"), ("host:notaport", None));
    }

    #[test]
    fn fields() {
        let mut f = Fields::new(r#"a  "b \" c" [d e] f"#);
        let mut got = Vec::new();
        while let Ok(Some(x)) = f.next_field() {
            got.push(x);
        }
        assert_eq!(got, vec!["a", r#"b \" c"#, "d e", "f"]);
        assert!(Fields::new(r#""open"#).next_field().is_err());
        assert!(Fields::new("[open").next_field().is_err());
        assert!(
            Fields::new(r#""ends with backslash\"#)
                .next_field()
                .is_err()
        );
    }

    /// chrono's answer for an RFC 3339 text (the path the fast one shortcuts).
    fn by_chrono(s: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| dt.timestamp_micros())
    }

    proptest::proptest! {
        /// Every time the RFC 3339 fast path accepts, chrono reads the same.
        #[test]
        fn rfc3339_fast_path_agrees_with_chrono(
            y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..61,
            sec in 0u32..62, frac in proptest::option::of("[0-9]{1,11}"),
            zone in proptest::sample::select(&["Z", "z", "+00:00", "-07:30", "+14:00", "+24:00", "-00:60", "+0530", ""][..]),
        ) {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{frac}{zone}");
            if let Some(fast) = rfc3339_to_micros(&text) {
                proptest::prop_assert_eq!(Some(fast), by_chrono(&text), "{}", text);
            }
            // Valid dates in the usual shape take the fast path.
            if by_chrono(&text).is_some() && zone == "Z" && sec < 60 && frac.len() <= 10 {
                proptest::prop_assert!(rfc3339_to_micros(&text).is_some(), "{}", text);
            }
        }

        /// The common log format fast path reads what chrono reads (declining
        /// only leap seconds, left to chrono), over dates
        /// that exist and do not, and times out of range; the dates repeat so
        /// that the remembered day is used as well as recomputed.
        #[test]
        fn clf_fast_path_agrees_with_chrono(
            times in proptest::collection::vec(
                (
                    proptest::sample::select(vec![(2024, 1, 15), (2024, 1, 16), (2024, 2, 28), (2024, 2, 29), (2023, 2, 29), (1969, 12, 31), (2024, 4, 31), (1, 1, 1)]),
                    0u32..26, 0u32..61, 0u32..62,
                    proptest::sample::select(&["+0000", "-0730", "+1400"][..]),
                ),
                1..8,
            ),
        ) {
            for ((y, mo, d), h, mi, sec, zone) in times {
                let month = String::from_utf8_lossy(MONTHS[mo - 1]);
                let text = format!("{d:02}/{month}/{y:04}:{h:02}:{mi:02}:{sec:02} {zone}");
                let chrono = DateTime::parse_from_str(&text, "%d/%b/%Y:%H:%M:%S %z")
                    .ok()
                    .map(|dt| dt.timestamp_micros());
                let fast = clf_to_micros(&text);
                if fast.is_some() {
                    proptest::prop_assert_eq!(fast, chrono, "{}", text);
                }
                // Everything but a leap second (which chrono's parser takes) is
                // read by the fast path.
                if chrono.is_some() && sec < 60 {
                    proptest::prop_assert!(fast.is_some(), "{}", text);
                }
            }
        }

        /// Arbitrary text: the fast path never panics and never disagrees.
        #[test]
        fn rfc3339_fast_path_never_disagrees(text in "[0-9T:.Z+ -]{0,32}") {
            if let Some(fast) = rfc3339_to_micros(&text) {
                proptest::prop_assert_eq!(Some(fast), by_chrono(&text), "{}", text);
            }
        }
    }
}
