//! Cloudflare Logpush JSON: firewall events (and the request fields of the
//! http requests dataset, which share names).
//!
//! Mapping: `Datetime` / `EdgeStartTimestamp` (RFC 3339, unix seconds or unix
//! nanoseconds, as numbers or strings) -> time; `ClientIP`, `ClientSrcPort`;
//! `ClientRequestHost` -> dest_host; `OriginIP` -> dest_ip;
//! `ClientRequestMethod`; `ClientRequestPath` (or `ClientRequestURI`) -> path;
//! `ClientRequestQuery` -> query (leading `?` dropped); `ClientRequestUserAgent`;
//! `Action` / `SecurityAction` -> action; `RuleID` / `SecurityRuleID` ->
//! rule_ids; `RayID` -> request_id; `EdgeResponseStatus` -> status;
//! `ClientRequestBytes` / `EdgeResponseBytes` -> bytes; `RequestHeaders.*` /
//! `ResponseHeaders.*` -> headers; `ClientReferer{Host,Path,Query}` -> extra.

use super::Error;
use super::fill;
use super::json::{self, Scalar, Sink};
use super::util::Unit;
use crate::event::Event;

/// Decode one record.
pub(super) fn decode<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    let mut sink = CfSink {
        out,
        ev: Event::default(),
    };
    json::walk(text, "cloudflare", &mut sink)
}

struct CfSink<'o, 'a> {
    out: &'o mut Vec<Event<'a>>,
    ev: Event<'a>,
}

impl<'de> Sink<'de> for CfSink<'_, 'de> {
    fn scalar(&mut self, path: &str, v: Scalar<'de>) {
        let ev = &mut self.ev;
        if let Some(name) = path.strip_prefix("RequestHeaders.") {
            fill::push_header(&mut ev.headers, name, &v);
            return;
        }
        if let Some(name) = path.strip_prefix("ResponseHeaders.") {
            fill::push_header(&mut ev.response_headers, name, &v);
            return;
        }
        match path {
            "Datetime" | "EdgeStartTimestamp" => fill::set_opt(&mut ev.time, v.time(Unit::Auto)),
            "ClientIP" => fill::set_scalar(&mut ev.client_ip, &v),
            "ClientSrcPort" => fill::set_opt(&mut ev.client_port, v.u16()),
            "ClientRequestHost" => fill::set_scalar(&mut ev.dest_host, &v),
            "OriginIP" => fill::set_scalar(&mut ev.dest_ip, &v),
            "ClientRequestMethod" => fill::set_scalar(&mut ev.method, &v),
            "ClientRequestPath" | "ClientRequestURI" => {
                if let Some(t) = v.text() {
                    fill::with_text(ev, t, fill::set_target);
                }
            }
            "ClientRequestQuery" => {
                if let Some(q) = v.text() {
                    fill::with_text(ev, q, fill::set_query);
                }
            }
            "ClientRequestUserAgent" => fill::set_scalar(&mut ev.user_agent, &v),
            "Action" | "SecurityAction" => fill::set_scalar(&mut ev.action, &v),
            "RuleID" | "SecurityRuleID" => fill::push_rule(ev, v.text()),
            "RayID" => fill::set_scalar(&mut ev.request_id, &v),
            "EdgeResponseStatus" => fill::set_opt(&mut ev.status, v.u16()),
            "ClientRequestBytes" => fill::set_opt(&mut ev.bytes_in, v.u64()),
            "EdgeResponseBytes" => fill::set_opt(&mut ev.bytes_out, v.u64()),
            "ClientRefererHost" | "ClientRefererPath" | "ClientRefererQuery" => {
                fill::push_extra(ev, path, &v)
            }
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

    #[test]
    fn datetime_variants() {
        let want = Some(1_704_164_645_000_000);
        let cases: &[(&str, Option<i64>)] = &[
            (r#""2024-01-02T03:04:05Z""#, want),
            (r#""2024-01-02T04:04:05+01:00""#, want),
            ("1704164645", want),
            (r#""1704164645""#, want),
            ("1704164645000000000", want),
            (r#""1704164645123456789""#, Some(1_704_164_645_123_456)),
            ("1704164645.5", Some(1_704_164_645_500_000)),
            (r#""yesterday""#, None),
            ("null", None),
        ];
        for (value, time) in cases {
            let text = format!(r#"{{"Datetime":{value},"RayID":"7d1a2b3c4d5e6f70"}}"#);
            let mut out = Vec::new();
            decode(&text, &mut out).expect("valid record");
            assert_eq!(out[0].time, *time, "{value}");
        }
    }

    #[test]
    fn query_and_rule() {
        let mut out = Vec::new();
        decode(
            r#"{"ClientRequestPath":"/fhir/Patient","ClientRequestQuery":"?name=x","RuleID":"r1","RuleID":"r1","Action":"block"}"#,
            &mut out,
        )
        .expect("valid record");
        let ev = &out[0];
        assert_eq!(ev.path.as_deref(), Some("/fhir/Patient"));
        assert_eq!(ev.query.as_deref(), Some("name=x"));
        assert_eq!(ev.rule_ids, vec!["r1"]);
        assert_eq!(ev.action.as_deref(), Some("block"));
    }
}
