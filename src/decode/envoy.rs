//! Envoy access logs: the default text format (optionally after an `ACCESS `
//! prefix), Istio's longer text format, and JSON access logs.
//!
//! Default text format:
//! `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
//! %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
//! %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%"
//! "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"`.
//! Istio inserts `%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
//! "%UPSTREAM_TRANSPORT_FAILURE_REASON%"` after the flags and appends cluster,
//! local and remote addresses, SNI and route; its `DOWNSTREAM_REMOTE_ADDRESS` is
//! the client. Otherwise the client ip is the first `x-forwarded-for` entry.
//! `:authority` -> dest_host; upstream host -> dest_ip / dest_port;
//! `x-forwarded-for` is also kept as a header.
//!
//! JSON keys (Envoy and Istio docs): `start_time`, `method`, `path`,
//! `response_code`, `bytes_received`, `bytes_sent`, `duration`,
//! `x_forwarded_for`, `user_agent`, `request_id`, `authority`, `upstream_host`,
//! `downstream_remote_address`, `requested_server_name`; other string values go
//! to `extra`.

use super::Error;
use super::fill;
use super::json::{self, Scalar, Sink};
use super::util::{Fields, Unit, non_dash, text_to_micros};
use crate::event::Event;

const NAME: &str = "envoy";

/// Decode one record (text or JSON).
pub(super) fn decode<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    if text.starts_with('{') {
        let mut sink = JsonSink {
            out,
            ev: Event::default(),
        };
        return json::walk(text, NAME, &mut sink);
    }
    super::push_decoded(out, |ev| decode_text(text, ev))
}

fn invalid(message: &str) -> Error {
    Error::Invalid {
        format: NAME,
        message: message.to_owned(),
    }
}

fn decode_text<'a>(line: &'a str, ev: &mut Event<'a>) -> Result<(), Error> {
    let line = line.strip_prefix("ACCESS ").unwrap_or(line);
    if !line.starts_with('[') {
        return Err(invalid("expected [start_time]"));
    }
    let mut fields = Fields::new(line);
    // The fields read below are among the first twenty; later ones are only
    // counted (on the stack: no allocation per line).
    let mut kept = [""; 24];
    let mut count = 0usize;
    loop {
        match fields.next_field() {
            Ok(Some(f)) => {
                if let Some(slot) = kept.get_mut(count) {
                    *slot = f;
                }
                count += 1;
            }
            Ok(None) => break,
            Err(()) => return Err(invalid("unterminated quoted field")),
        }
    }
    if count < 7 {
        return Err(invalid("too few fields"));
    }
    let all = &kept[..count.min(kept.len())];
    ev.time = Some(text_to_micros(all[0]).ok_or_else(|| invalid("bad start_time"))?);
    let request = all[1];
    if !fill::set_request_line(ev, request) && request != "- - -" {
        ev.extra.push(("request".into(), request.into()));
    }
    ev.status = match non_dash(all[2]) {
        None => None,
        Some(code) => Some(code.parse().map_err(|_| invalid("bad response_code"))?),
    };
    // Istio's layout has three more fields after the flags and about 21 in all.
    let istio = count >= 19;
    let rest = if istio { &all[7..] } else { &all[4..] };
    let get = |i: usize| rest.get(i).copied().and_then(non_dash);
    ev.bytes_in = get(0).and_then(|v| v.parse().ok());
    ev.bytes_out = get(1).and_then(|v| v.parse().ok());
    ev.duration_ms = get(2).and_then(|v| v.parse().ok());
    if let Some(xff) = get(4) {
        ev.headers.push(("x-forwarded-for".into(), xff.into()));
    }
    fill::set(&mut ev.user_agent, get(5));
    fill::set(&mut ev.request_id, get(6));
    if let Some(authority) = get(7) {
        fill::set(
            &mut ev.dest_host,
            Some(super::util::split_host_port(authority).0),
        );
    }
    if let Some(upstream) = get(8) {
        fill::set_dest_addr(ev, upstream);
    }
    if istio && let Some(remote) = get(12) {
        fill::set_client_addr(ev, remote);
    }
    if let Some(xff) = get(4) {
        fill::set(&mut ev.client_ip, xff.split(',').next().map(str::trim));
    }
    Ok(())
}

struct JsonSink<'o, 'a> {
    out: &'o mut Vec<Event<'a>>,
    ev: Event<'a>,
}

impl<'de> Sink<'de> for JsonSink<'_, 'de> {
    fn scalar(&mut self, path: &str, v: Scalar<'de>) {
        let ev = &mut self.ev;
        match path {
            "start_time" | "timestamp" => fill::set_opt(&mut ev.time, v.time(Unit::Auto)),
            "method" => fill::set_scalar(&mut ev.method, &v),
            "path" => {
                if let Some(p) = v.text() {
                    fill::with_text(ev, p, fill::set_target);
                }
            }
            "response_code" => fill::set_opt(&mut ev.status, v.u16()),
            "bytes_received" => fill::set_opt(&mut ev.bytes_in, v.u64()),
            "bytes_sent" => fill::set_opt(&mut ev.bytes_out, v.u64()),
            "duration" => fill::set_opt(&mut ev.duration_ms, v.f64()),
            "x_forwarded_for" => fill::push_header(&mut ev.headers, "x-forwarded-for", &v),
            "user_agent" => fill::set_scalar(&mut ev.user_agent, &v),
            "request_id" => fill::set_scalar(&mut ev.request_id, &v),
            "authority" => {
                if let Some(a) = v.text() {
                    let host = fill::map_text(a, |a| Some(super::util::split_host_port(a).0));
                    fill::set_text(&mut ev.dest_host, host);
                }
            }
            "requested_server_name" => fill::set_scalar(&mut ev.dest_host, &v),
            "upstream_host" => {
                if let Some(a) = v.text() {
                    fill::with_text(ev, a, fill::set_dest_addr);
                }
            }
            "downstream_remote_address" => {
                if let Some(a) = v.text() {
                    fill::with_text(ev, a, fill::set_client_addr);
                }
            }
            "protocol"
            | "response_flags"
            | "response_code_details"
            | "connection_termination_details"
            | "upstream_transport_failure_reason"
            | "upstream_service_time"
            | "upstream_cluster"
            | "upstream_local_address"
            | "downstream_local_address"
            | "route_name" => {}
            _ => fill::push_extra(ev, path, &v),
        }
    }

    fn end_record(&mut self) {
        let mut ev = std::mem::take(&mut self.ev);
        if let Some(xff) = fill::header_text(&ev, "x-forwarded-for") {
            let first = fill::map_text(xff, |x| x.split(',').next().map(str::trim));
            fill::set_text(&mut ev.client_ip, first);
        }
        self.out.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line's event, through the decoder's entry point.
    fn decode_text(line: &str) -> Result<Event<'_>, Error> {
        crate::decode::one_event(decode, line)
    }
    use crate::event::Text;

    const LINE: &str = r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations?x=1 HTTP/2" 204 - 154 0 226 100 "10.0.35.28, 10.0.0.1" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations:8080" "tcp://10.0.2.1:80""#;

    #[test]
    fn default_and_access_prefix_decode_the_same() {
        let plain = decode_text(LINE).expect("default format");
        let prefixed_line = format!("ACCESS {LINE}");
        let prefixed = decode_text(&prefixed_line).expect("ACCESS prefix");
        assert_eq!(plain, prefixed);
        assert_eq!(plain.time, Some(1_460_751_420_310_000));
        assert_eq!(plain.path.as_deref(), Some("/api/v1/locations"));
        assert_eq!(plain.query.as_deref(), Some("x=1"));
        assert_eq!(plain.status, Some(204));
        assert_eq!((plain.bytes_in, plain.bytes_out), (Some(154), Some(0)));
        assert_eq!(plain.duration_ms, Some(226.0));
        assert_eq!(plain.client_ip.as_deref(), Some("10.0.35.28"));
        assert_eq!(plain.dest_host.as_deref(), Some("locations"));
        assert_eq!(plain.dest_ip.as_deref(), Some("10.0.2.1"));
        assert_eq!(plain.dest_port, Some(80));
    }

    #[test]
    fn tcp_and_bad_lines() {
        let tcp =
            r#"[2016-04-15T20:17:00.310Z] "- - -" 0 UF 0 0 1 - "-" "-" "-" "-" "10.0.2.1:80""#;
        let ev = decode_text(tcp).expect("tcp line");
        assert_eq!(ev.method, None);
        assert!(ev.extra.is_empty());
        let cases = [
            r#"[not a time] "GET / HTTP/1.1" 200 - 1 2 3 - "-" "-" "-" "-" "-""#,
            r#"[2016-04-15T20:17:00.310Z] "GET / HTTP/1.1" abc - 1 2 3"#,
            r#"[2016-04-15T20:17:00.310Z] "GET / HTTP/1.1"#,
            r#"[2016-04-15T20:17:00.310Z] "GET / HTTP/1.1" 200"#,
        ];
        for case in cases {
            assert!(decode_text(case).is_err(), "{case}");
        }
    }

    #[test]
    fn json_access_log() {
        let mut out = Vec::new();
        decode(
            r#"{"start_time":"2024-01-02T03:04:05.000Z","method":"GET","path":"/a?b=c","response_code":200,"downstream_remote_address":"192.0.2.7:5555","x_forwarded_for":null,"custom":"v"}"#,
            &mut out,
        )
        .expect("envoy json");
        let ev = &out[0];
        assert_eq!(ev.client_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(ev.client_port, Some(5555));
        assert_eq!(ev.query.as_deref(), Some("b=c"));
        assert_eq!(ev.extra, vec![(Text::from("custom"), Text::from("v"))]);
    }
}
