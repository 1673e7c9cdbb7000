//! Generic JSON lines: any JSON object (or array of objects), with common
//! field names mapped onto the event.
//!
//! Keys are matched case-insensitively on the full dotted path, so nested
//! objects (`{"url":{"path":..}}`) and ECS-style dotted keys (`"url.path"`)
//! are the same. When several names map to one field, the first in the record
//! wins. Every string value that maps to nothing goes to `extra` as
//! `(dotted.path, value)`, so detection still scans it.
//!
//! | event field | names |
//! |---|---|
//! | time | `@timestamp`, `timestamp`, `time`, `ts`, `datetime`, `date`, `event.created` (RFC 3339 / ISO 8601, common log format, or epoch s / ms / µs / ns by magnitude) |
//! | client_ip | `client_ip`, `clientip`, `src_ip`, `source_ip`, `remote_addr`, `remote_ip`, `ip`, `client.ip`, `client.address`, `source.ip`, `source.address`, `network.client.ip` |
//! | client_port | `client_port`, `src_port`, `source_port`, `remote_port`, `client.port`, `source.port` |
//! | dest_host | `host`, `hostname`, `http_host`, `server_name`, `destination.domain`, `server.domain`, `url.domain` |
//! | dest_ip | `dest_ip`, `dst_ip`, `destination_ip`, `server_ip`, `destination.ip`, `server.ip` |
//! | dest_port | `dest_port`, `dst_port`, `destination_port`, `server_port`, `destination.port`, `server.port`, `url.port` |
//! | method | `method`, `http_method`, `request_method`, `verb`, `http.method`, `http.request.method`, `request.method` |
//! | path (+ query) | `path`, `request_path`, `url.path`, `http.path`, `request.path`; with a query: `uri`, `request_uri`, `request.uri` |
//! | url | `url`, `url.full`, `url.original`, `http.url`, `request.url` (a relative value is read as path + query) |
//! | request line | `request` (`GET /path?q HTTP/1.1`) |
//! | query | `query`, `query_string`, `querystring`, `args`, `url.query`, `request.query` |
//! | status | `status`, `status_code`, `http_status`, `response_code`, `http.status_code`, `http.response.status_code`, `response.status`, `response.status_code` |
//! | bytes_in | `bytes_in`, `bytes_received`, `request_bytes`, `request_length`, `request.size`, `request.bytes`, `http.request.bytes`, `source.bytes`, `client.bytes` |
//! | bytes_out | `bytes`, `bytes_out`, `bytes_sent`, `body_bytes_sent`, `response_bytes`, `response_size`, `response.size`, `response.bytes`, `http.response.bytes`, `http.response.body.bytes`, `destination.bytes`, `server.bytes` |
//! | duration_ms | `duration_ms`, `latency_ms`, `elapsed_ms` (ms); `request_time`, `response_time` (s); `event.duration` (ns) |
//! | user_agent | `user_agent`, `useragent`, `http_user_agent`, `user_agent.original`, `http.user_agent`, `http.useragent` |
//! | request_id | `request_id`, `requestid`, `req_id`, `x_request_id`, `http.request.id`, `trace.id` |
//! | principal | `user`, `user_name`, `username`, `principal`, `remote_user`, `user.name`, `user.id`, `client.user.name`, `consumer` |
//! | action | `action`, `event.action` |
//! | rule_ids | `rule_id`, `rule.id` |
//! | body | `body`, `request_body`, `request.body`, `http.request.body.content` |
//! | headers | `headers.*`, `request_headers.*`, `request.headers.*`, `http.request.headers.*` |
//! | response headers | `response_headers.*`, `response.headers.*`, `http.response.headers.*` |

use super::Error;
use super::fill;
use super::json::{self, Scalar, Sink};
use super::util::{Unit, secs_to_ms};
use crate::event::Event;
use std::borrow::Cow;

/// Decode one record (an object, or an array of objects).
pub(super) fn decode<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    let mut sink = GenericSink {
        out,
        ev: Event::default(),
    };
    json::walk(text, "generic_json", &mut sink)
}

struct GenericSink<'o, 'a> {
    out: &'o mut Vec<Event<'a>>,
    ev: Event<'a>,
}

const REQUEST_HEADERS: [&str; 4] = [
    "headers.",
    "request_headers.",
    "request.headers.",
    "http.request.headers.",
];
const RESPONSE_HEADERS: [&str; 3] = [
    "response_headers.",
    "response.headers.",
    "http.response.headers.",
];

/// Returns false when the key maps to no field.
fn map<'a>(ev: &mut Event<'a>, key: &str, v: &Scalar<'a>) -> bool {
    match key {
        "@timestamp" | "timestamp" | "time" | "ts" | "datetime" | "date" | "event.created" => {
            fill::set_opt(&mut ev.time, v.time(Unit::Auto))
        }
        "client_ip" | "clientip" | "src_ip" | "source_ip" | "remote_addr" | "remote_ip" | "ip"
        | "client.ip" | "client.address" | "source.ip" | "source.address" | "network.client.ip" => {
            fill::set_scalar(&mut ev.client_ip, v)
        }
        "client_port" | "src_port" | "source_port" | "remote_port" | "client.port"
        | "source.port" => fill::set_opt(&mut ev.client_port, v.u16()),
        "host" | "hostname" | "http_host" | "server_name" | "destination.domain"
        | "server.domain" | "url.domain" => fill::set_scalar(&mut ev.dest_host, v),
        "dest_ip" | "dst_ip" | "destination_ip" | "server_ip" | "destination.ip" | "server.ip" => {
            fill::set_scalar(&mut ev.dest_ip, v)
        }
        "dest_port" | "dst_port" | "destination_port" | "server_port" | "destination.port"
        | "server.port" | "url.port" => fill::set_opt(&mut ev.dest_port, v.u16()),
        "method"
        | "http_method"
        | "request_method"
        | "verb"
        | "http.method"
        | "http.request.method"
        | "request.method" => fill::set_scalar(&mut ev.method, v),
        "path" | "request_path" | "url.path" | "http.path" | "request.path" | "uri"
        | "request_uri" | "request.uri" => {
            if let Some(t) = v.text() {
                fill::with_text(ev, t, fill::set_target);
            }
        }
        "url" | "url.full" | "url.original" | "http.url" | "request.url" => {
            if let Some(t) = v.text() {
                if !t.starts_with('/') {
                    fill::set_text(&mut ev.url, Some(t.clone()));
                }
                fill::with_text(ev, t, fill::set_target);
            }
        }
        "request" => {
            let Some(line) = v.text() else { return true };
            if !fill::with_text(ev, line, fill::set_request_line) {
                return false;
            }
        }
        "query" | "query_string" | "querystring" | "args" | "url.query" | "request.query" => {
            if let Some(q) = v.text() {
                fill::with_text(ev, q, fill::set_query);
            }
        }
        "status"
        | "status_code"
        | "http_status"
        | "response_code"
        | "http.status_code"
        | "http.response.status_code"
        | "response.status"
        | "response.status_code" => fill::set_opt(&mut ev.status, v.u16()),
        "bytes_in" | "bytes_received" | "request_bytes" | "request_length" | "request.size"
        | "request.bytes" | "http.request.bytes" | "source.bytes" | "client.bytes" => {
            fill::set_opt(&mut ev.bytes_in, v.u64())
        }
        "bytes"
        | "bytes_out"
        | "bytes_sent"
        | "body_bytes_sent"
        | "response_bytes"
        | "response_size"
        | "response.size"
        | "response.bytes"
        | "http.response.bytes"
        | "http.response.body.bytes"
        | "destination.bytes"
        | "server.bytes" => fill::set_opt(&mut ev.bytes_out, v.u64()),
        "duration_ms" | "latency_ms" | "elapsed_ms" => fill::set_opt(&mut ev.duration_ms, v.f64()),
        "request_time" | "response_time" => {
            fill::set_opt(&mut ev.duration_ms, v.f64().map(secs_to_ms))
        }
        "event.duration" => fill::set_opt(&mut ev.duration_ms, v.f64().map(|ns| ns / 1e6)),
        "user_agent"
        | "useragent"
        | "http_user_agent"
        | "user_agent.original"
        | "http.user_agent"
        | "http.useragent" => fill::set_scalar(&mut ev.user_agent, v),
        "request_id" | "requestid" | "req_id" | "x_request_id" | "http.request.id" | "trace.id" => {
            fill::set_scalar(&mut ev.request_id, v)
        }
        "user" | "user_name" | "username" | "principal" | "remote_user" | "user.name"
        | "user.id" | "client.user.name" | "consumer" => fill::set_scalar(&mut ev.principal, v),
        "action" | "event.action" => fill::set_scalar(&mut ev.action, v),
        "rule_id" | "rule.id" => fill::push_rule(ev, v.text()),
        "body" | "request_body" | "request.body" | "http.request.body.content" => {
            fill::set_scalar(&mut ev.body, v)
        }
        _ => return false,
    }
    true
}

impl<'de> Sink<'de> for GenericSink<'_, 'de> {
    fn scalar(&mut self, path: &str, v: Scalar<'de>) {
        let key: Cow<'_, str> = if path.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(path.to_ascii_lowercase())
        } else {
            Cow::Borrowed(path)
        };
        let ev = &mut self.ev;
        for prefix in REQUEST_HEADERS {
            if key.starts_with(prefix) {
                return fill::push_header(&mut ev.headers, &path[prefix.len()..], &v);
            }
        }
        for prefix in RESPONSE_HEADERS {
            if key.starts_with(prefix) {
                return fill::push_header(&mut ev.response_headers, &path[prefix.len()..], &v);
            }
        }
        if !map(ev, &key, &v) {
            fill::push_extra(ev, path, &v);
        }
    }

    fn end_record(&mut self) {
        self.out.push(std::mem::take(&mut self.ev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Event<'_> {
        let mut out = Vec::new();
        decode(text, &mut out).expect("valid json");
        out.remove(0)
    }

    #[test]
    fn ecs_dotted_and_nested_are_the_same() {
        let dotted = one(
            r#"{"@timestamp":"2024-01-02T03:04:05Z","source.ip":"192.0.2.1","url.path":"/fhir/Patient/1","url.query":"a=b","http.request.method":"GET","http.response.status_code":200,"user.name":"alice","user_agent.original":"curl/8"}"#,
        );
        let nested = one(
            r#"{"@timestamp":"2024-01-02T03:04:05Z","source":{"ip":"192.0.2.1"},"url":{"path":"/fhir/Patient/1","query":"a=b"},"http":{"request":{"method":"GET"},"response":{"status_code":200}},"user":{"name":"alice"},"user_agent":{"original":"curl/8"}}"#,
        );
        assert_eq!(dotted, nested);
        assert_eq!(dotted.time, Some(1_704_164_645_000_000));
        assert_eq!(dotted.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(dotted.path.as_deref(), Some("/fhir/Patient/1"));
        assert_eq!(dotted.query.as_deref(), Some("a=b"));
        assert_eq!(dotted.method.as_deref(), Some("GET"));
        assert_eq!(dotted.status, Some(200));
        assert_eq!(dotted.principal.as_deref(), Some("alice"));
        assert_eq!(dotted.user_agent.as_deref(), Some("curl/8"));
        assert!(dotted.extra.is_empty());
    }

    type Check = fn(&Event) -> bool;

    #[test]
    fn common_names_and_extras() {
        let cases: &[(&str, Check)] = &[
            (r#"{"request":"GET /a?b=1 HTTP/1.1"}"#, |e| {
                e.method.as_deref() == Some("GET") && e.query.as_deref() == Some("b=1")
            }),
            (r#"{"request":"not a request line"}"#, |e| {
                e.method.is_none() && e.extra.len() == 1
            }),
            (r#"{"url":"https://h.example.org/p?q=1"}"#, |e| {
                e.dest_host.as_deref() == Some("h.example.org") && e.url.is_some()
            }),
            (r#"{"url":"/p?q=1"}"#, |e| {
                e.url.is_none() && e.path.as_deref() == Some("/p")
            }),
            (r#"{"Status":"404","Method":"get"}"#, |e| {
                e.status == Some(404) && e.method.as_deref() == Some("get")
            }),
            (r#"{"request_time":0.25}"#, |e| e.duration_ms == Some(250.0)),
            (r#"{"headers":{"Authorization":"Bearer x"}}"#, |e| {
                e.header("authorization") == Some("Bearer x")
            }),
            (
                r#"{"note":"call 555-0100","n":1,"deep":{"k":["v1","v2"]}}"#,
                |e| e.extra.len() == 3 && e.extra[2].0 == "deep.k",
            ),
            (r#"{"time":"-","status":"abc"}"#, |e| {
                e.time.is_none() && e.status.is_none()
            }),
        ];
        for (text, check) in cases {
            assert!(check(&one(text)), "{text}");
        }
    }
}
