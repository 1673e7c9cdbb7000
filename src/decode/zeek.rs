//! Zeek http.log and conn.log as JSON lines (`LogAscii::use_json=T`); `ts` as
//! float seconds or ISO 8601 (`JSON::TS_ISO8601`).
//!
//! Both: `ts` -> time; `uid` -> request_id; `id.orig_h` / `id.orig_p` -> client
//! ip / port; `id.resp_h` / `id.resp_p` -> destination ip / port.
//!
//! http.log: `method`; `host` -> dest_host; `uri` -> path + query (an absolute
//! URI of a proxied request also sets url); `referrer` -> a `referer` header;
//! `user_agent`; `request_body_len` / `response_body_len` -> bytes in / out;
//! `status_code`; `username` -> principal; `password`, `orig_filenames`,
//! `resp_filenames` -> extra.
//!
//! conn.log: `duration` (seconds) -> duration_ms; `orig_bytes` / `resp_bytes` ->
//! bytes in / out; `conn_state` -> action; `proto` and `service` -> extra (the
//! event has no protocol field).
//!
//! String values of fields Zeek does not write itself (added by scripts, such
//! as `post_body`) go to `extra`.

use super::Error;
use super::fill;
use super::json::{self, Scalar, Sink};
use super::util::{Unit, secs_to_ms};
use crate::event::Event;

/// http.log fields Zeek writes (besides the common ones); string values of
/// fields added by scripts (`post_body` ...) go to `extra`.
const HTTP_FIELDS: [&str; 22] = [
    "trans_depth",
    "method",
    "host",
    "uri",
    "referrer",
    "version",
    "user_agent",
    "origin",
    "request_body_len",
    "response_body_len",
    "status_code",
    "status_msg",
    "info_code",
    "info_msg",
    "tags",
    "username",
    "password",
    "proxied",
    "orig_fuids",
    "orig_mime_types",
    "resp_fuids",
    "resp_mime_types",
];

/// conn.log fields Zeek writes (besides the common ones).
const CONN_FIELDS: [&str; 21] = [
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
    "community_id",
    "orig_l2_addr",
    "resp_l2_addr",
    "vlan",
    "inner_vlan",
    "ip_proto",
];

/// Decode one http.log record.
pub(super) fn decode_http<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    decode(text, "zeek_http", Log::Http, out)
}

/// Decode one conn.log record.
pub(super) fn decode_conn<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    decode(text, "zeek_conn", Log::Conn, out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Log {
    Http,
    Conn,
}

fn decode<'a>(
    text: &'a str,
    name: &'static str,
    log: Log,
    out: &mut Vec<Event<'a>>,
) -> Result<(), Error> {
    let mut sink = ZeekSink {
        out,
        ev: Event::default(),
        log,
    };
    json::walk(text, name, &mut sink)
}

struct ZeekSink<'o, 'a> {
    out: &'o mut Vec<Event<'a>>,
    ev: Event<'a>,
    log: Log,
}

impl<'de> Sink<'de> for ZeekSink<'_, 'de> {
    fn scalar(&mut self, path: &str, v: Scalar<'de>) {
        let ev = &mut self.ev;
        match path {
            "ts" => return fill::set_opt(&mut ev.time, v.time(Unit::Seconds)),
            "uid" => return fill::set_scalar(&mut ev.request_id, &v),
            "id.orig_h" => return fill::set_scalar(&mut ev.client_ip, &v),
            "id.orig_p" => return fill::set_opt(&mut ev.client_port, v.u16()),
            "id.resp_h" => return fill::set_scalar(&mut ev.dest_ip, &v),
            "id.resp_p" => return fill::set_opt(&mut ev.dest_port, v.u16()),
            _ => {}
        }
        match (self.log, path) {
            (Log::Http, "method") => fill::set_scalar(&mut ev.method, &v),
            (Log::Http, "host") => {
                if let Some(h) = v.text() {
                    fill::set_text(
                        &mut ev.dest_host,
                        fill::map_text(h, |h| Some(super::util::split_host_port(h).0)),
                    );
                }
            }
            (Log::Http, "uri") => {
                if let Some(uri) = v.text() {
                    fill::with_text(ev, uri, fill::set_target);
                }
            }
            (Log::Http, "referrer") => fill::push_header(&mut ev.headers, "referer", &v),
            (Log::Http, "user_agent") => fill::set_scalar(&mut ev.user_agent, &v),
            (Log::Http, "request_body_len") => fill::set_opt(&mut ev.bytes_in, v.u64()),
            (Log::Http, "response_body_len") => fill::set_opt(&mut ev.bytes_out, v.u64()),
            (Log::Http, "status_code") => fill::set_opt(&mut ev.status, v.u16()),
            (Log::Http, "username") => fill::set_scalar(&mut ev.principal, &v),
            (Log::Http, "password") => fill::push_extra(ev, path, &v),
            (Log::Conn, "duration") => fill::set_opt(&mut ev.duration_ms, v.f64().map(secs_to_ms)),
            (Log::Conn, "orig_bytes") => fill::set_opt(&mut ev.bytes_in, v.u64()),
            (Log::Conn, "resp_bytes") => fill::set_opt(&mut ev.bytes_out, v.u64()),
            (Log::Conn, "conn_state") => fill::set_scalar(&mut ev.action, &v),
            (Log::Conn, "proto" | "service") => fill::push_extra(ev, path, &v),
            (Log::Http, "orig_filenames" | "resp_filenames") => fill::push_extra(ev, path, &v),
            (Log::Http, p) if !HTTP_FIELDS.contains(&p) => fill::push_extra(ev, path, &v),
            (Log::Conn, p) if !CONN_FIELDS.contains(&p) => fill::push_extra(ev, path, &v),
            _ => {}
        }
    }

    fn end_record(&mut self) {
        self.out.push(std::mem::take(&mut self.ev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_float_and_iso() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1258531221.486539", Some(1_258_531_221_486_539)),
            (
                r#""2009-11-18T08:00:21.486539Z""#,
                Some(1_258_531_221_486_539),
            ),
            ("1258531221", Some(1_258_531_221_000_000)),
            (r#""garbage""#, None),
        ];
        for (ts, want) in cases {
            let text =
                format!(r#"{{"ts":{ts},"uid":"CxYz","id.orig_h":"10.1.1.1","method":"GET"}}"#);
            let mut out = Vec::new();
            decode_http(&text, &mut out).expect("valid record");
            assert_eq!(out[0].time, *want, "{ts}");
        }
    }

    #[test]
    fn script_fields_are_scanned() {
        let mut out = Vec::new();
        decode_http(
            r#"{"ts":1,"uid":"C","id.orig_h":"10.0.0.1","status_msg":"OK","post_body":"ssn=x","orig_filenames":["chart.pdf"]}"#,
            &mut out,
        )
        .expect("valid record");
        let keys: Vec<&str> = out[0].extra.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["post_body", "orig_filenames"]);
    }

    #[test]
    fn conn_fields() {
        let mut out = Vec::new();
        decode_conn(
            r#"{"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.2","id.orig_p":50000,"id.resp_h":"192.0.2.1","id.resp_p":443,"proto":"tcp","service":"ssl","duration":0.25,"orig_bytes":10,"resp_bytes":20,"conn_state":"SF","method":"ignored"}"#,
            &mut out,
        )
        .expect("valid record");
        let ev = &out[0];
        assert_eq!(ev.duration_ms, Some(250.0));
        assert_eq!((ev.bytes_in, ev.bytes_out), (Some(10), Some(20)));
        assert_eq!(ev.action.as_deref(), Some("SF"));
        assert_eq!(ev.method, None);
        // proto and service, and the foreign `method` field, still scanned
        assert_eq!(ev.extra.len(), 3);
        assert_eq!((ev.client_port, ev.dest_port), (Some(50000), Some(443)));
    }
}
