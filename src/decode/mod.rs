//! Decoders: one vendor record (a line of a file, or one Kafka record) into
//! normalized [`Event`]s, with cheap per-record format auto-detection.
//!
//! The entry point is [`decode_record`]. A record that matches no format, or fails
//! to decode, is an [`Error`] whose text is the dead-letter reason.
//!
//! | format | record | notes |
//! |---|---|---|
//! | `kong` | file-log / http-log JSON, one object or a batch array | one event per object |
//! | `aws_apigw` | JSON built from `$context` variables | `"-"` is null; unmapped strings go to `extra` |
//! | `envoy` | default text format (optional `ACCESS ` prefix), or JSON | client ip from `x-forwarded-for` in text |
//! | `nginx` | combined, optionally prefixed by `host:port ` or `host ` | prefix is the destination host |
//! | `aws_waf` | WAF v2 JSON | `args` is the raw query; rule ids from every rule list |
//! | `cloudflare` | firewall events / http requests JSON | `Datetime` RFC 3339, unix s or ns |
//! | `modsecurity` | v3 JSON audit log | duplicate keys allowed; time as UTC |
//! | `zeek_http`, `zeek_conn` | JSON, `ts` float seconds or ISO 8601 | `proto`, `service` go to `extra` |
//! | `squid` | native access.log | |
//! | `vpc_flow` | v2 default, or the order of a header line | NODATA/SKIPDATA rows: action = status |
//! | `generic_json` | any JSON object | see [`generic_json`] for the name mapping |
//!
//! Times are microseconds since the epoch, UTC. Paths and queries stay
//! percent-encoded as logged. Header names are lower-cased, duplicates kept.
//! Empty lines and `#` comment lines decode to no event.

mod aws_apigw;
mod aws_waf;
mod cloudflare;
mod detect;
mod envoy;
mod fill;
pub mod generic_json;
mod json;
mod kong;
mod modsecurity;
mod nginx;
mod squid;
mod util;
mod vpc_flow;
mod zeek;

pub use detect::detect;

use crate::event::Event;
use std::fmt;
use std::str::FromStr;

/// Every format phiwatch decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Format {
    /// Kong file-log / http-log JSON (one object, or a batch array).
    Kong,
    /// AWS API Gateway access log JSON built from `$context` variables.
    AwsApigw,
    /// Envoy access log (default text format, `ACCESS` prefix, or JSON).
    Envoy,
    /// NGINX combined log (optionally with a vhost prefix).
    Nginx,
    /// AWS WAF v2 JSON log.
    AwsWaf,
    /// Cloudflare firewall events (JSON).
    Cloudflare,
    /// ModSecurity v3 JSON audit log.
    Modsecurity,
    /// Zeek http.log (JSON).
    ZeekHttp,
    /// Zeek conn.log (JSON).
    ZeekConn,
    /// Squid native access.log.
    Squid,
    /// AWS VPC Flow Logs (v2 default or custom field order).
    VpcFlow,
    /// Generic JSON lines with common field names (ECS-style dotted keys too).
    GenericJson,
    /// Unknown lines scanned as plain text.
    Text,
}

// `Format::index` is the declaration order: `ALL` must list the formats in it.
const _: () = {
    let mut i = 0;
    while i < Format::ALL.len() {
        assert!(Format::ALL[i] as usize == i);
        i += 1;
    }
};

impl Format {
    /// Every format, in auto-detection order of preference.
    pub const ALL: [Format; 13] = [
        Format::Kong,
        Format::AwsApigw,
        Format::Envoy,
        Format::Nginx,
        Format::AwsWaf,
        Format::Cloudflare,
        Format::Modsecurity,
        Format::ZeekHttp,
        Format::ZeekConn,
        Format::Squid,
        Format::VpcFlow,
        Format::GenericJson,
        Format::Text,
    ];

    /// The format's position in [`Format::ALL`] (for counters kept in an
    /// array).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Decoder name as it appears in `source_format` and `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Kong => "kong",
            Format::AwsApigw => "aws_apigw",
            Format::Envoy => "envoy",
            Format::Nginx => "nginx",
            Format::AwsWaf => "aws_waf",
            Format::Cloudflare => "cloudflare",
            Format::Modsecurity => "modsecurity",
            Format::ZeekHttp => "zeek_http",
            Format::ZeekConn => "zeek_conn",
            Format::Squid => "squid",
            Format::VpcFlow => "vpc_flow",
            Format::GenericJson => "generic_json",
            Format::Text => "text",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {s:?}; known: {}", names.join(", "))
            })
    }
}

/// How to choose a decoder for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Detect the format per record; unknown records are errors (dead letters).
    Auto,
    /// Detect the format per record; unknown records become [`Format::Text`] events.
    AutoTextFallback,
    /// Use this format for every record.
    Forced(Format),
}

/// Why a record could not be decoded. The `Display` text is the dead-letter reason
/// and never contains record content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record is not valid UTF-8.
    #[error("invalid utf-8 at byte {0}")]
    InvalidUtf8(usize),
    /// The record matches no known format.
    #[error("no known format matches")]
    Unrecognized,
    /// JSON syntax error (truncated, garbage, too deep ...).
    #[error("{format}: invalid json: {message}")]
    Json {
        /// Decoder that tried.
        format: &'static str,
        /// serde_json's message (positions only, no content).
        message: String,
    },
    /// The record has the format's shape but a required field is missing or bad.
    #[error("{format}: {message}")]
    Invalid {
        /// Decoder that tried.
        format: &'static str,
        /// What is wrong (field names, never values).
        message: String,
    },
}

/// Per-file (or per-partition) decoder state: header lines that change how later
/// lines decode, such as a VPC Flow Logs custom field order.
#[derive(Debug, Clone, Default)]
pub struct FileState {
    /// VPC Flow Logs field names (dashed, as in the header line) from a header
    /// line or the config; `None` means the v2 default order.
    pub vpc_fields: Option<Vec<String>>,
    /// Format of the last JSON record: tried first on the next one, and kept
    /// when the walk finds the keys detection would (one pass instead of two).
    json_guess: Option<Format>,
}

impl FileState {
    /// State for a file (or partition) whose VPC Flow Logs use this field order,
    /// given as the header line would name it (`version account-id ...`).
    /// Underscores are read as dashes. Fails when a name is not a documented
    /// field or no address field is named.
    pub fn with_vpc_fields(fields: &str) -> Result<Self, Error> {
        match vpc_flow::header_fields(fields) {
            Some(f) => Ok(FileState {
                vpc_fields: Some(f),
                json_guess: None,
            }),
            None => Err(Error::Invalid {
                format: "vpc_flow",
                message: String::from("field order names an unknown field or no address"),
            }),
        }
    }
}

/// Decode one record into events appended to `out`; returns the format used.
///
/// A record that is valid but carries no event (an empty, comment or header line)
/// returns `Ok` and appends nothing; the format returned is then the forced one,
/// the one the header belongs to, or [`Format::Text`].
///
/// With [`Mode::AutoTextFallback`], a record that matches no format, or that
/// fails to decode as the format it looks like, becomes one [`text_event`]
/// (only invalid UTF-8 is still an error). On error, `out` is left as it was.
pub fn decode_record<'a>(
    record: &'a [u8],
    mode: Mode,
    state: &mut FileState,
    out: &mut Vec<Event<'a>>,
) -> Result<Format, Error> {
    let text = crate::text::utf8(record).map_err(|e| Error::InvalidUtf8(e.valid_up_to()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let idle = match mode {
        Mode::Forced(f) => f,
        Mode::Auto | Mode::AutoTextFallback => Format::Text,
    };
    if text.is_empty() {
        return Ok(idle);
    }
    let auto_json = !matches!(mode, Mode::Forced(_)) && detect::is_json_record(text);
    if auto_json {
        // Auto-detected JSON: decode as the previous JSON record's format; the
        // walk collects the record keys detection reads, so when they name the
        // same format the record needed one pass.
        if let Some(guess) = state.json_guess {
            let len = out.len();
            json::take_record_keys();
            if decode_as(guess, text, state, out).is_ok()
                && json::take_record_keys().map(detect::format_of_keys) == Some(guess)
            {
                return Ok(guess);
            }
            out.truncate(len);
        }
    }
    let format = match mode {
        Mode::Forced(Format::Text) => {
            out.push(text_event(text));
            return Ok(Format::Text);
        }
        _ if detect::is_comment(text) => return Ok(idle),
        Mode::Forced(f) => f,
        Mode::Auto => detect(text, state).ok_or(Error::Unrecognized)?,
        Mode::AutoTextFallback => match detect(text, state) {
            Some(f) => f,
            None => {
                out.push(text_event(text));
                return Ok(Format::Text);
            }
        },
    };
    if auto_json {
        state.json_guess = Some(format);
    }
    let len = out.len();
    let result = decode_as(format, text, state, out);
    match result {
        Ok(()) => Ok(format),
        Err(e) => {
            out.truncate(len);
            if mode == Mode::AutoTextFallback {
                out.push(text_event(text));
                Ok(Format::Text)
            } else {
                Err(e)
            }
        }
    }
}

/// Decode `text` (trimmed, non-empty) with one decoder.
fn decode_as<'a>(
    format: Format,
    text: &'a str,
    state: &mut FileState,
    out: &mut Vec<Event<'a>>,
) -> Result<(), Error> {
    match format {
        Format::Kong => kong::decode(text, out),
        Format::AwsApigw => aws_apigw::decode(text, out),
        Format::Envoy => envoy::decode(text, out),
        Format::Nginx => nginx::decode(text, out),
        Format::AwsWaf => aws_waf::decode(text, out),
        Format::Cloudflare => cloudflare::decode(text, out),
        Format::Modsecurity => modsecurity::decode(text, out),
        Format::ZeekHttp => zeek::decode_http(text, out),
        Format::ZeekConn => zeek::decode_conn(text, out),
        Format::Squid => squid::decode(text, out),
        Format::VpcFlow => vpc_flow::decode(text, state, out),
        Format::GenericJson => generic_json::decode(text, out),
        Format::Text => {
            out.push(text_event(text));
            Ok(())
        }
    }
}

/// Decode one event into a new slot at the end of `out`. An event is several
/// hundred bytes: built on the stack, returned and then pushed, it was copied
/// twice on every record. The slot is removed again when `fill` fails.
fn push_decoded<'a>(
    out: &mut Vec<Event<'a>>,
    fill: impl FnOnce(&mut Event<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(Event::default());
    let result = out.last_mut().map_or(Ok(()), fill);
    if result.is_err() {
        out.pop();
    }
    result
}

/// The one event a line decoder makes of `line`, through its entry point
/// (for the decoders' tests).
#[cfg(test)]
fn one_event(
    decode: for<'a> fn(&'a str, &mut Vec<Event<'a>>) -> Result<(), Error>,
    line: &str,
) -> Result<Event<'_>, Error> {
    let mut out = Vec::new();
    decode(line, &mut out)?;
    assert_eq!(out.len(), 1, "one event per line");
    Ok(out.remove(0))
}

/// An event that carries a whole line as plain text.
pub fn text_event(text: &str) -> Event<'_> {
    Event {
        extra: vec![("line".into(), text.into())],
        ..Event::default()
    }
}
