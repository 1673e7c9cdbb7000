//! AWS API Gateway access logs: a JSON object the operator builds from
//! `$context` variables. Values are strings; `"-"` means no value.
//!
//! Key names follow the AWS documentation examples (flat or nested):
//! `requestId`; `ip` / `sourceIp` / `identity.sourceIp` -> client_ip;
//! `httpMethod`; `path` (else `resourcePath`, else the path of `routeKey`);
//! `status`; `responseLength` -> bytes_out; `requestTimeEpoch` (else
//! `requestTime`) -> time; `principalId` / `authorizer.principalId` (else
//! `user`, else `caller`) -> principal; `userAgent`; `domainName` -> dest_host;
//! `responseLatency` -> duration_ms. Other string values go to `extra`, since
//! the operator may log anything (`$context.authorizer.claims.email` ...).

use super::Error;
use super::fill;
use super::json::{self, Scalar, Sink};
use super::util::Unit;
use crate::event::{Event, Text};

/// Decode one record.
pub(super) fn decode<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    let mut sink = ApigwSink {
        out,
        ev: Event::default(),
        paths: [None, None, None],
        times: [None, None],
        principals: [None, None, None],
    };
    json::walk(text, "aws_apigw", &mut sink)
}

struct ApigwSink<'o, 'a> {
    out: &'o mut Vec<Event<'a>>,
    ev: Event<'a>,
    /// path, resourcePath, routeKey: the first present wins.
    paths: [Option<Text<'a>>; 3],
    /// requestTimeEpoch, requestTime.
    times: [Option<i64>; 2],
    /// principalId, user, caller.
    principals: [Option<Text<'a>>; 3],
}

impl<'de> Sink<'de> for ApigwSink<'_, 'de> {
    fn scalar(&mut self, path: &str, v: Scalar<'de>) {
        let ev = &mut self.ev;
        let name = path.strip_prefix("context.").unwrap_or(path);
        match name {
            "requestId" => fill::set_scalar(&mut ev.request_id, &v),
            "ip" | "sourceIp" | "identity.sourceIp" => fill::set_scalar(&mut ev.client_ip, &v),
            "httpMethod" => fill::set_scalar(&mut ev.method, &v),
            "path" => fill::set_scalar(&mut self.paths[0], &v),
            "resourcePath" => fill::set_scalar(&mut self.paths[1], &v),
            "routeKey" => {
                // `GET /pets/{id}` or `$default`: keep the path part only.
                if let Some(route) = v.text()
                    && route.contains(' ')
                {
                    let p = fill::map_text(route.clone(), |r| r.split_once(' ').map(|(_, p)| p));
                    let method = fill::map_text(route, |r| {
                        r.split_once(' ').map(|(m, _)| m).filter(|m| *m != "ANY")
                    });
                    fill::set_text(&mut self.paths[2], p);
                    fill::set_text(&mut ev.method, method);
                }
            }
            "status" => fill::set_opt(&mut ev.status, v.u16()),
            "responseLength" => fill::set_opt(&mut ev.bytes_out, v.u64()),
            "requestTimeEpoch" => fill::set_opt(&mut self.times[0], v.time(Unit::Auto)),
            "requestTime" => fill::set_opt(&mut self.times[1], v.time(Unit::Auto)),
            "principalId" | "authorizer.principalId" => {
                fill::set_scalar(&mut self.principals[0], &v)
            }
            "user" | "identity.user" => fill::set_scalar(&mut self.principals[1], &v),
            "caller" | "identity.caller" => fill::set_scalar(&mut self.principals[2], &v),
            "userAgent" | "identity.userAgent" => fill::set_scalar(&mut ev.user_agent, &v),
            "domainName" => fill::set_scalar(&mut ev.dest_host, &v),
            "responseLatency" => fill::set_opt(&mut ev.duration_ms, v.f64()),
            "protocol" | "extendedRequestId" | "integrationLatency" | "integrationStatus"
            | "stage" | "apiId" => {}
            _ => fill::push_extra(ev, path, &v),
        }
    }

    fn end_record(&mut self) {
        let mut ev = std::mem::take(&mut self.ev);
        if let Some(p) = std::mem::take(&mut self.paths).into_iter().flatten().next() {
            fill::with_text(&mut ev, p, fill::set_target);
        }
        ev.time = std::mem::take(&mut self.times).into_iter().flatten().next();
        ev.principal = std::mem::take(&mut self.principals)
            .into_iter()
            .flatten()
            .next();
        self.out.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Event<'_> {
        let mut out = Vec::new();
        decode(text, &mut out).expect("valid record");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn dash_means_null() {
        let ev = one(
            r#"{"requestId":"r-1","ip":"-","httpMethod":"GET","status":"-","responseLength":"-","principalId":"-","user":"-","caller":"-","requestTime":"-","path":"-","userAgent":"-"}"#,
        );
        assert_eq!(
            ev,
            Event {
                request_id: Some(Text::from("r-1")),
                method: Some(Text::from("GET")),
                ..Event::default()
            }
        );
    }

    /// record, expected path, method, principal
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

    #[test]
    fn path_and_principal_preference() {
        let cases: &[Case] = &[
            (
                r#"{"routeKey":"GET /a/{id}","resourcePath":"/b","path":"/c"}"#,
                Some("/c"),
                Some("GET"),
                None,
            ),
            (
                r#"{"routeKey":"POST /a/{id}","resourcePath":"/b"}"#,
                Some("/b"),
                Some("POST"),
                None,
            ),
            (
                r#"{"routeKey":"$default","user":"u"}"#,
                None,
                None,
                Some("u"),
            ),
            (
                r#"{"caller":"c","principalId":"p","user":"u"}"#,
                None,
                None,
                Some("p"),
            ),
            (
                r#"{"authorizer":{"principalId":"nested"}}"#,
                None,
                None,
                Some("nested"),
            ),
        ];
        for (text, path, method, principal) in cases {
            let ev = one(text);
            assert_eq!(ev.path.as_deref(), *path, "{text}");
            assert_eq!(ev.method.as_deref(), *method, "{text}");
            assert_eq!(ev.principal.as_deref(), *principal, "{text}");
        }
    }

    #[test]
    fn epoch_preferred_over_clf_time() {
        let ev = one(
            r#"{"requestTime":"02/Jan/2024:03:04:05 +0000","requestTimeEpoch":"1704164645123"}"#,
        );
        assert_eq!(ev.time, Some(1_704_164_645_123_000));
        let ev = one(r#"{"requestTime":"02/Jan/2024:03:04:05 +0000"}"#);
        assert_eq!(ev.time, Some(1_704_164_645_000_000));
    }

    #[test]
    fn unmapped_strings_go_to_extra() {
        let ev = one(r#"{"email":"pat@example.org","n":5,"claims":{"sub":"abc"}}"#);
        assert_eq!(
            ev.extra,
            vec![
                (Text::from("email"), Text::from("pat@example.org")),
                (Text::from("claims.sub"), Text::from("abc")),
            ]
        );
    }
}
