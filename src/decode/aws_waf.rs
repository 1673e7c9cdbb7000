//! AWS WAF v2 logs (JSON, one web request per record).
//!
//! Mapping: `timestamp` (ms) -> time; `action`; `responseCodeSent` -> status;
//! rule ids from `terminatingRuleId` (unless `Default_Action`),
//! `ruleGroupList[].terminatingRule.ruleId`,
//! `ruleGroupList[].nonTerminatingMatchingRules[].ruleId` and
//! `nonTerminatingMatchingRules[].ruleId`; `httpRequest.clientIp`,
//! `.httpMethod`, `.uri` -> path, `.args` (the raw query) -> query, `.requestId`,
//! `.headers[] {name, value}` -> headers; the `host` header -> dest_host.
//! `matchedData` of any rule match goes to `extra` (WAF may log request
//! fragments there).

use super::Error;
use super::fill;
use super::json::{self, Scalar, Sink};
use super::util::Unit;
use crate::event::Event;

/// Decode one record.
pub(super) fn decode<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    let mut sink = WafSink {
        out,
        ev: Event::default(),
        header_name: None,
        header_value: None,
    };
    json::walk(text, "aws_waf", &mut sink)
}

struct WafSink<'o, 'de> {
    out: &'o mut Vec<Event<'de>>,
    ev: Event<'de>,
    header_name: Option<Scalar<'de>>,
    header_value: Option<Scalar<'de>>,
}

impl<'de> Sink<'de> for WafSink<'_, 'de> {
    fn scalar(&mut self, path: &str, v: Scalar<'de>) {
        let ev = &mut self.ev;
        match path {
            "timestamp" => fill::set_opt(&mut ev.time, v.time(Unit::Millis)),
            "action" => fill::set_scalar(&mut ev.action, &v),
            "responseCodeSent" => fill::set_opt(&mut ev.status, v.u16()),
            "terminatingRuleId" => {
                let id = v.text().filter(|id| id != "Default_Action");
                // The terminating rule goes first, whatever the key order.
                if let Some(id) = id
                    && !ev.rule_ids.contains(&id)
                {
                    ev.rule_ids.insert(0, id);
                }
            }
            "ruleGroupList.terminatingRule.ruleId"
            | "ruleGroupList.nonTerminatingMatchingRules.ruleId"
            | "nonTerminatingMatchingRules.ruleId" => fill::push_rule(ev, v.text()),
            "httpRequest.clientIp" => fill::set_scalar(&mut ev.client_ip, &v),
            "httpRequest.httpMethod" => fill::set_scalar(&mut ev.method, &v),
            "httpRequest.uri" => {
                if let Some(uri) = v.text() {
                    fill::with_text(ev, uri, fill::set_target);
                }
            }
            "httpRequest.args" => {
                if let Some(args) = v.text() {
                    fill::with_text(ev, args, fill::set_query);
                }
            }
            "httpRequest.requestId" => fill::set_scalar(&mut ev.request_id, &v),
            "httpRequest.host" => fill::set_scalar(&mut ev.dest_host, &v),
            "httpRequest.headers.name" => self.header_name = Some(v),
            "httpRequest.headers.value" => self.header_value = Some(v),
            p if p.ends_with(".matchedData") => fill::push_extra(ev, p, &v),
            _ => {}
        }
    }

    fn end_object(&mut self, path: &str) {
        if path == "httpRequest.headers" {
            let name = self.header_name.take();
            let value = self.header_value.take();
            if let (Some(name), Some(value)) = (name, value)
                && let Some(name) = name.text()
            {
                fill::push_header(&mut self.ev.headers, &name, &value);
            }
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
    use crate::event::Text;

    fn one(text: &str) -> Event<'_> {
        let mut out = Vec::new();
        decode(text, &mut out).expect("valid waf record");
        out.remove(0)
    }

    #[test]
    fn headers_pairs_keep_duplicates_and_order() {
        let ev = one(
            r#"{"httpRequest":{"headers":[{"name":"Host","value":"a.example.org"},{"value":"v1","name":"X-Dup"},{"name":"X-Dup","value":"v2"},{"name":"Lonely"}]}}"#,
        );
        let want: Vec<(Text, Text)> = [("host", "a.example.org"), ("x-dup", "v1"), ("x-dup", "v2")]
            .iter()
            .map(|&(a, b)| (a.into(), b.into()))
            .collect();
        assert_eq!(ev.headers, want);
        assert_eq!(ev.dest_host.as_deref(), Some("a.example.org"));
    }

    #[test]
    fn rule_ids_from_every_list() {
        let ev = one(
            r#"{"ruleGroupList":[{"ruleGroupId":"g","terminatingRule":{"ruleId":"SQLi_QUERYARGUMENTS","action":"BLOCK"},"nonTerminatingMatchingRules":[{"ruleId":"NoUserAgent_HEADER"}]}],"nonTerminatingMatchingRules":[{"ruleId":"rate"}],"terminatingRuleId":"AWS-AWSManagedRulesSQLiRuleSet"}"#,
        );
        assert_eq!(
            ev.rule_ids,
            vec![
                "AWS-AWSManagedRulesSQLiRuleSet",
                "SQLi_QUERYARGUMENTS",
                "NoUserAgent_HEADER",
                "rate"
            ]
        );
        let ev = one(r#"{"terminatingRuleId":"Default_Action","action":"ALLOW"}"#);
        assert!(ev.rule_ids.is_empty());
        assert_eq!(ev.action.as_deref(), Some("ALLOW"));
    }

    #[test]
    fn args_is_the_raw_query() {
        let ev = one(
            r#"{"httpRequest":{"uri":"/fhir/Patient","args":"identifier=x%7C1","httpMethod":"GET"}}"#,
        );
        assert_eq!(ev.path.as_deref(), Some("/fhir/Patient"));
        assert_eq!(ev.query.as_deref(), Some("identifier=x%7C1"));
        let ev = one(r#"{"httpRequest":{"uri":"/a","args":""}}"#);
        assert_eq!(ev.query, None);
    }
}
