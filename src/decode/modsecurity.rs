//! ModSecurity JSON audit log (v3 / libmodsecurity; the v2 JSON layout is read
//! too). Duplicate keys are allowed: headers keep every value, scalars keep the
//! first.
//!
//! v3 mapping, all under `transaction`: `client_ip`, `client_port`; `host_ip`,
//! `host_port` -> dest ip / port; `time_stamp` (ctime, read as UTC) -> time;
//! `unique_id` -> request_id; `request.method`; `request.uri` -> path + query;
//! `request.headers.*` -> headers; `request.body` -> body; `response.http_code`
//! -> status; `response.headers.*` -> response headers; `response.body`,
//! `messages[].message`, `messages[].details.match` and `.data` -> extra (they
//! can quote request content); `messages[].details.ruleId` -> rule_ids; the
//! `host` header -> dest_host.
//!
//! v2 mapping: `transaction.{remote_address, remote_port, local_address,
//! local_port, time, transaction_id}`, `request.request_line`,
//! `request.headers.*`, `request.body[]`, `response.status`,
//! `response.headers.*`, `audit_data.messages[]` -> extra.

use super::Error;
use super::fill;
use super::json::{self, Scalar, Sink};
use super::util::Unit;
use crate::event::Event;

/// Decode one record.
pub(super) fn decode<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    let mut sink = ModsecSink {
        out,
        ev: Event::default(),
    };
    json::walk(text, "modsecurity", &mut sink)
}

struct ModsecSink<'o, 'a> {
    out: &'o mut Vec<Event<'a>>,
    ev: Event<'a>,
}

impl<'de> Sink<'de> for ModsecSink<'_, 'de> {
    fn scalar(&mut self, path: &str, v: Scalar<'de>) {
        let ev = &mut self.ev;
        let tx = path.strip_prefix("transaction.").unwrap_or(path);
        if let Some(name) = tx.strip_prefix("request.headers.") {
            fill::push_header(&mut ev.headers, name, &v);
            return;
        }
        if let Some(name) = tx.strip_prefix("response.headers.") {
            fill::push_header(&mut ev.response_headers, name, &v);
            return;
        }
        match tx {
            "client_ip" | "remote_address" => fill::set_scalar(&mut ev.client_ip, &v),
            "client_port" | "remote_port" => fill::set_opt(&mut ev.client_port, v.u16()),
            "host_ip" | "local_address" => fill::set_scalar(&mut ev.dest_ip, &v),
            "host_port" | "local_port" => fill::set_opt(&mut ev.dest_port, v.u16()),
            "time_stamp" | "time" => fill::set_opt(&mut ev.time, v.time(Unit::Auto)),
            "unique_id" | "transaction_id" => fill::set_scalar(&mut ev.request_id, &v),
            "request.method" => fill::set_scalar(&mut ev.method, &v),
            "request.uri" => {
                if let Some(uri) = v.text() {
                    fill::with_text(ev, uri, fill::set_target);
                }
            }
            "request.request_line" => {
                if let Some(line) = v.text()
                    && !fill::with_text(ev, line, fill::set_request_line)
                {
                    fill::push_extra(ev, path, &v);
                }
            }
            "request.body" => match &mut ev.body {
                // v2 logs the body as an array of lines.
                Some(body) => {
                    if let Some(more) = v.text() {
                        let body = body.to_mut();
                        body.push('\n');
                        body.push_str(&more);
                    }
                }
                None => ev.body = v.text(),
            },
            "response.http_code" | "response.status" => fill::set_opt(&mut ev.status, v.u16()),
            "response.body"
            | "messages.message"
            | "messages.details.match"
            | "messages.details.data"
            | "audit_data.messages" => fill::push_extra(ev, path, &v),
            "messages.details.ruleId" => fill::push_rule(ev, v.text()),
            _ => {}
        }
    }

    fn end_record(&mut self) {
        let mut ev = std::mem::take(&mut self.ev);
        fill::from_headers(&mut ev);
        self.out.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Event<'_> {
        let mut out = Vec::new();
        decode(text, &mut out).expect("valid modsecurity record");
        out.remove(0)
    }

    #[test]
    fn duplicate_keys_are_not_an_error() {
        let cases: &[(&str, usize, Option<u16>)] = &[
            (
                r#"{"transaction":{"request":{"headers":{"Cookie":"a=1","Cookie":"b=2"}},"response":{"http_code":200}}}"#,
                2,
                Some(200),
            ),
            (
                r#"{"transaction":{"response":{"http_code":403},"response":{"http_code":200}}}"#,
                0,
                Some(403),
            ),
            (
                r#"{"transaction":{"client_ip":"192.0.2.1"},"transaction":{"client_ip":"192.0.2.2"}}"#,
                0,
                None,
            ),
        ];
        for (text, headers, status) in cases {
            let ev = one(text);
            assert_eq!(ev.headers.len(), *headers, "{text}");
            assert_eq!(ev.status, *status, "{text}");
        }
        let ev = one(cases[2].0);
        assert_eq!(ev.client_ip.as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn ctime_and_rules() {
        let ev = one(
            r#"{"transaction":{"time_stamp":"Tue Jan  2 03:04:05 2024","messages":[{"message":"m1","details":{"ruleId":"942100","data":"d"}},{"details":{"ruleId":"949110"}}]}}"#,
        );
        assert_eq!(ev.time, Some(1_704_164_645_000_000));
        assert_eq!(ev.rule_ids, vec!["942100", "949110"]);
        assert_eq!(ev.extra.len(), 2);
    }

    #[test]
    fn v2_layout() {
        let ev = one(
            r#"{"transaction":{"time":"02/Jan/2024:03:04:05.250000 +0000","remote_address":"192.0.2.9","transaction_id":"t1"},"request":{"request_line":"POST /login?x=1 HTTP/1.1","body":["a=1","b=2"]},"response":{"status":302}}"#,
        );
        assert_eq!(ev.time, Some(1_704_164_645_250_000));
        assert_eq!(ev.method.as_deref(), Some("POST"));
        assert_eq!(ev.query.as_deref(), Some("x=1"));
        assert_eq!(ev.body.as_deref(), Some("a=1\nb=2"));
        assert_eq!(ev.status, Some(302));
    }
}
