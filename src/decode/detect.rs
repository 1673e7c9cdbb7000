//! Cheap per-record format detection.
//!
//! JSON records are recognized by the key names of the record object (the
//! top-level object, or the first element of a top-level array), found with a
//! byte scan that skips strings with `memchr` and builds nothing. Text records
//! are recognized by the shape of their first fields. Detection only picks a
//! decoder; the decoder then validates the record.

use super::{FileState, Format};
use super::{nginx, vpc_flow};
use crate::text::SplitByte;

/// Record keys that identify a format.
mod key {
    pub const TRANSACTION: u64 = 1 << 0;
    pub const HTTP_REQUEST: u64 = 1 << 1;
    pub const TERMINATING_RULE_ID: u64 = 1 << 2;
    pub const WEBACL_ID: u64 = 1 << 3;
    pub const RAY_ID: u64 = 1 << 4;
    pub const CLIENT_REQUEST_HOST: u64 = 1 << 5;
    pub const CLIENT_REQUEST_PATH: u64 = 1 << 6;
    pub const LATENCIES: u64 = 1 << 7;
    pub const STARTED_AT: u64 = 1 << 8;
    pub const REQUEST: u64 = 1 << 9;
    pub const RESPONSE: u64 = 1 << 10;
    pub const REQUEST_ID: u64 = 1 << 11;
    pub const HTTP_METHOD: u64 = 1 << 12;
    pub const ROUTE_KEY: u64 = 1 << 13;
    pub const REQUEST_TIME: u64 = 1 << 14;
    pub const RESOURCE_PATH: u64 = 1 << 15;
    pub const UID: u64 = 1 << 16;
    pub const ID_ORIG_H: u64 = 1 << 17;
    pub const ZEEK_HTTP: u64 = 1 << 18;
    pub const ZEEK_CONN: u64 = 1 << 19;
    pub const RESPONSE_FLAGS: u64 = 1 << 20;
    pub const UPSTREAM_CLUSTER: u64 = 1 << 21;
    pub const UPSTREAM_HOST: u64 = 1 << 22;
    pub const RESPONSE_CODE: u64 = 1 << 23;
    pub const START_TIME: u64 = 1 << 24;
    pub const CLIENT_IP: u64 = 1 << 25;
}

/// The bit of a record key that identifies a format (0 for other keys).
pub(crate) fn key_bit(k: &[u8]) -> u64 {
    match k {
        b"transaction" => key::TRANSACTION,
        b"httpRequest" => key::HTTP_REQUEST,
        b"terminatingRuleId" => key::TERMINATING_RULE_ID,
        b"webaclId" => key::WEBACL_ID,
        b"RayID" => key::RAY_ID,
        b"ClientRequestHost" => key::CLIENT_REQUEST_HOST,
        b"ClientRequestPath" | b"ClientRequestURI" => key::CLIENT_REQUEST_PATH,
        b"latencies" => key::LATENCIES,
        b"started_at" => key::STARTED_AT,
        b"request" => key::REQUEST,
        b"response" => key::RESPONSE,
        b"requestId" => key::REQUEST_ID,
        b"httpMethod" => key::HTTP_METHOD,
        b"routeKey" => key::ROUTE_KEY,
        b"requestTime" | b"requestTimeEpoch" => key::REQUEST_TIME,
        b"resourcePath" => key::RESOURCE_PATH,
        b"uid" => key::UID,
        b"id.orig_h" => key::ID_ORIG_H,
        b"method" | b"uri" | b"status_code" | b"trans_depth" | b"user_agent" => key::ZEEK_HTTP,
        b"proto" | b"conn_state" | b"history" | b"orig_pkts" => key::ZEEK_CONN,
        b"response_flags" => key::RESPONSE_FLAGS,
        b"upstream_cluster" => key::UPSTREAM_CLUSTER,
        b"upstream_host" => key::UPSTREAM_HOST,
        b"response_code" => key::RESPONSE_CODE,
        b"start_time" => key::START_TIME,
        b"client_ip" => key::CLIENT_IP,
        _ => 0,
    }
}

/// Keys of the record object: the top-level object's keys, or those of the
/// first element of a top-level array. Stops at the end of that object.
fn record_keys(b: &[u8]) -> u64 {
    let mut bits = 0;
    let mut depth = 0usize;
    let mut target = 1usize;
    let mut want_key = false;
    let mut target_is_object = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                loop {
                    match memchr::memchr2(b'"', b'\\', &b[j..]) {
                        None => return bits,
                        Some(off) if b[j + off] == b'\\' => j += off + 2,
                        Some(off) => {
                            j += off;
                            break;
                        }
                    }
                    if j >= b.len() {
                        return bits;
                    }
                }
                if want_key && depth == target && target_is_object {
                    bits |= key_bit(&b[start..j]);
                }
                want_key = false;
                i = j;
            }
            c @ (b'{' | b'[') => {
                if depth == 0 && c == b'[' {
                    target = 2;
                }
                depth += 1;
                if depth == target {
                    target_is_object = c == b'{';
                    want_key = target_is_object;
                }
            }
            b'}' | b']' => {
                if depth == target {
                    return bits;
                }
                depth = depth.saturating_sub(1);
            }
            b',' if depth == target => want_key = target_is_object,
            _ => {}
        }
        i += 1;
    }
    bits
}

/// The JSON format whose keys the record carries; generic JSON otherwise.
fn json_format(b: &[u8]) -> Format {
    format_of_keys(record_keys(b))
}

/// The JSON format of a record with these key bits ([`key_bit`]).
pub(crate) fn format_of_keys(k: u64) -> Format {
    use key::*;
    let has = |m: u64| k & m != 0;
    let all = |m: u64| k & m == m;
    if has(TRANSACTION) {
        Format::Modsecurity
    } else if has(HTTP_REQUEST) && has(TERMINATING_RULE_ID | WEBACL_ID) {
        Format::AwsWaf
    } else if has(RAY_ID | CLIENT_REQUEST_HOST | CLIENT_REQUEST_PATH) {
        Format::Cloudflare
    } else if all(UID | ID_ORIG_H) && has(ZEEK_HTTP) {
        Format::ZeekHttp
    } else if all(UID | ID_ORIG_H) && has(ZEEK_CONN) {
        Format::ZeekConn
    } else if all(REQUEST | RESPONSE) && has(LATENCIES | STARTED_AT | CLIENT_IP) {
        Format::Kong
    } else if has(REQUEST_ID) && has(HTTP_METHOD | ROUTE_KEY | REQUEST_TIME | RESOURCE_PATH) {
        Format::AwsApigw
    } else if has(RESPONSE_FLAGS | UPSTREAM_CLUSTER)
        || (has(UPSTREAM_HOST | START_TIME) && has(RESPONSE_CODE))
    {
        Format::Envoy
    } else {
        Format::GenericJson
    }
}

/// Squid native: `secs.millis elapsed client action/code ...`.
fn is_squid(line: &str) -> bool {
    let mut it = line.split_b(b' ').filter(|t| !t.is_empty());
    // The time first: most lines of other formats fail there, before the
    // other three fields are looked for.
    let time_ok = it
        .next()
        .and_then(|t| t.split_once_b(b'.'))
        .is_some_and(|(s, ms)| {
            !s.is_empty()
                && !ms.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && ms.bytes().all(|b| b.is_ascii_digit())
        });
    if !time_ok {
        return false;
    }
    let (Some(elapsed), Some(_client), Some(code)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    elapsed.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && code.split_once_b(b'/').is_some_and(|(a, _)| {
            !a.is_empty() && a.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
}

/// Envoy's default text format: `[START_TIME] "...` (optionally after `ACCESS `).
fn is_envoy_text(line: &str) -> bool {
    let s = line.strip_prefix("ACCESS ").unwrap_or(line);
    let b = s.as_bytes();
    b.len() > 2
        && b[0] == b'['
        && b[1].is_ascii_digit()
        && memchr::memchr(b']', b).is_some_and(|end| s[end..].starts_with("] \""))
}

/// A line that only carries information for later lines, or a comment.
pub(crate) fn is_comment(line: &str) -> bool {
    line.starts_with('#')
}

/// Whether detection reads a record (already trimmed, non-empty) as JSON: an
/// object, or an array that starts with an object or is empty.
pub(crate) fn is_json_record(line: &str) -> bool {
    match line.as_bytes().first() {
        Some(b'{') => true,
        Some(b'[') => {
            let next = line[1..].trim_start().as_bytes().first().copied();
            matches!(next, Some(b'{' | b']') | None)
        }
        _ => false,
    }
}

/// Pick the decoder for one record (already trimmed, non-empty), or `None`.
pub fn detect(line: &str, state: &FileState) -> Option<Format> {
    if is_json_record(line) {
        return Some(json_format(line.as_bytes()));
    }
    if is_envoy_text(line) {
        return Some(Format::Envoy);
    }
    if is_squid(line) {
        return Some(Format::Squid);
    }
    if vpc_flow::looks_like(line, state) {
        return Some(Format::VpcFlow);
    }
    if nginx::looks_like(line) {
        return Some(Format::Nginx);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_only_at_record_level() {
        assert_eq!(record_keys(br#"{"transaction":{}}"#), key::TRANSACTION);
        assert_eq!(record_keys(br#"{"a":{"transaction":1}}"#), 0);
        assert_eq!(record_keys(br#"{"a":"transaction","b":["uid"]}"#), 0);
        assert_eq!(record_keys(br#"{"a\"":"x", "uid" : 1}"#), key::UID);
        assert_eq!(
            record_keys(br#"[{"request":{},"response":{}},{"uid":1}]"#),
            key::REQUEST | key::RESPONSE
        );
        assert_eq!(record_keys(br#"{"unterminated"#), 0);
    }

    /// JSON text with keys detection knows (some written with escapes), other
    /// keys, nesting and batches.
    fn json_value(depth: u32) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            proptest::sample::select(vec![
                "request",
                "response",
                "latencies",
                "started_at",
                "client_ip",
                "uid",
                "id.orig_h",
                "uri",
                "proto",
                "transaction",
                "httpRequest",
                "webaclId",
                "RayID",
                "requestId",
                "httpMethod",
                "response_code",
                "start_time",
                "upstream_cluster",
                "requ\\u0065st",
                "x",
                "note",
            ])
            .prop_map(String::from),
            "[a-z_]{1,8}",
        ];
        let scalar = prop_oneof![
            Just("1".to_string()),
            Just("-2.5e3".to_string()),
            Just("null".to_string()),
            Just("true".to_string()),
            "[a-z \\[\\]{}:,]{0,8}".prop_map(|t| format!("{t:?}")),
        ];
        if depth == 0 {
            return scalar.boxed();
        }
        let inner = json_value(depth - 1);
        prop_oneof![
            scalar,
            proptest::collection::vec((key, inner.clone()), 0..5).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
            proptest::collection::vec(inner, 0..4).prop_map(|vs| format!("[{}]", vs.join(", "))),
        ]
        .boxed()
    }

    struct Null;
    impl<'de> super::super::json::Sink<'de> for Null {
        fn scalar(&mut self, _: &str, _: super::super::json::Scalar<'de>) {}
        fn end_record(&mut self) {}
    }

    use proptest::prelude::*;

    proptest::proptest! {
        /// The keys a decoder's walk collects are the keys detection reads from
        /// the raw record, so a guessed format is confirmed exactly when
        /// detection would have picked it.
        #[test]
        fn walk_keys_match_detection(
            text in prop_oneof![
                json_value(3).prop_map(|v| format!("{{\"request\":{v},\"a\":{v}}}")),
                proptest::collection::vec(json_value(3), 0..4).prop_map(|vs| format!("[{}]", vs.join(","))),
                json_value(3),
            ]
        ) {
            if is_json_record(&text) {
                let walked = super::super::json::walk(&text, "t", &mut Null)
                    .ok()
                    .and_then(|()| super::super::json::take_record_keys());
                if let Some(bits) = walked {
                    proptest::prop_assert_eq!(bits, record_keys(text.as_bytes()), "{}", text);
                }
            }
        }
    }

    #[test]
    fn text_shapes() {
        let st = FileState::default();
        let cases: &[(&str, Option<Format>)] = &[
            (
                r#"10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#,
                Some(Format::Nginx),
            ),
            (
                r#"api.example.org:443 10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#,
                Some(Format::Nginx),
            ),
            (
                r#"[2016-04-15T20:17:00.310Z] "POST /x HTTP/2" 204 - 154 0 226 100 "-" "-" "-" "-" "-""#,
                Some(Format::Envoy),
            ),
            (
                r#"ACCESS [2016-04-15T20:17:00.310Z] "POST /x HTTP/2" 204 - 154 0 226 100 "-" "-" "-" "-" "-""#,
                Some(Format::Envoy),
            ),
            (
                "1286536308.779    180 192.0.2.24 TCP_MISS/200 411 GET http://example.org/ - DIRECT/192.0.2.1 text/html",
                Some(Format::Squid),
            ),
            (
                "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
                Some(Format::VpcFlow),
            ),
            ("[1, 2]", None),
            ("hello world", None),
            ("[]", Some(Format::GenericJson)),
        ];
        for (line, want) in cases {
            assert_eq!(detect(line, &st), *want, "line {line:?}");
        }
    }
}
