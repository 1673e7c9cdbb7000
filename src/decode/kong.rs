//! Kong file-log / http-log JSON: one object per line, or a JSON array batch
//! (http-log with queueing), one event per object.
//!
//! Mapping: `started_at` (ms) -> time; `client_ip`; `request.method`;
//! `request.uri` -> path + query; `request.url` -> url; `request.headers.*` ->
//! headers (array values give duplicates); `request.size` -> bytes_in;
//! `request.id` -> request_id; `request.body` -> body; `response.status`;
//! `response.size` -> bytes_out; `response.headers.*`; `latencies.request` ->
//! duration_ms; `consumer.username` (else `custom_id`, else `id`) -> principal;
//! `route.name`, `service.name` -> extra; the `host` header -> dest_host.
//! String fields under top-level keys Kong does not write (custom fields) go
//! to `extra`.

use super::Error;
use super::fill;
use super::json::{self, Scalar, Sink};
use super::util::Unit;
use crate::event::{Event, Text};
use crate::text::SplitByte;

/// Top-level keys Kong itself writes; string values under any other key go to `extra`.
const KNOWN_TOP: [&str; 15] = [
    "request",
    "response",
    "route",
    "service",
    "consumer",
    "latencies",
    "tries",
    "client_ip",
    "started_at",
    "upstream_uri",
    "upstream_status",
    "authenticated_entity",
    "workspace",
    "workspace_name",
    "source",
];

/// Decode one record (object or batch array).
pub(super) fn decode<'a>(text: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    let len = out.len();
    // Each object's event is filled where it stays, in a slot at the end of
    // `out` (an event is several hundred bytes: moving one costs a copy).
    out.push(Event::default());
    let mut sink = KongSink {
        out,
        consumer: [None, None, None],
    };
    let result = json::walk(text, "kong", &mut sink);
    // Drop the slot no object filled (or, on error, all this record added).
    let keep = if result.is_ok() {
        out.len().saturating_sub(1)
    } else {
        len
    };
    out.truncate(keep);
    result
}

struct KongSink<'o, 'a> {
    /// Ends with the slot of the object being read.
    out: &'o mut Vec<Event<'a>>,
    /// username, custom_id, id: the first present names the principal.
    consumer: [Option<Text<'a>>; 3],
}

impl<'de> Sink<'de> for KongSink<'_, 'de> {
    fn scalar(&mut self, path: &str, v: Scalar<'de>) {
        let Some(ev) = self.out.last_mut() else {
            return;
        };
        if let Some(name) = path.strip_prefix("request.headers.") {
            fill::push_header(&mut ev.headers, name, &v);
            return;
        }
        if let Some(name) = path.strip_prefix("response.headers.") {
            fill::push_header(&mut ev.response_headers, name, &v);
            return;
        }
        match path {
            "started_at" => fill::set_opt(&mut ev.time, v.time(Unit::Millis)),
            "client_ip" => fill::set_scalar(&mut ev.client_ip, &v),
            "request.method" => fill::set_scalar(&mut ev.method, &v),
            "request.uri" => {
                if let Some(t) = v.text() {
                    fill::with_text(ev, t, fill::set_target);
                }
            }
            "request.url" => fill::set_scalar(&mut ev.url, &v),
            "request.size" => fill::set_opt(&mut ev.bytes_in, v.u64()),
            "request.id" => fill::set_scalar(&mut ev.request_id, &v),
            "request.body" => fill::set_scalar(&mut ev.body, &v),
            "response.status" => fill::set_opt(&mut ev.status, v.u16()),
            "response.size" => fill::set_opt(&mut ev.bytes_out, v.u64()),
            "latencies.request" => fill::set_opt(&mut ev.duration_ms, v.f64()),
            "consumer.username" => fill::set_scalar(&mut self.consumer[0], &v),
            "consumer.custom_id" => fill::set_scalar(&mut self.consumer[1], &v),
            "consumer.id" => fill::set_scalar(&mut self.consumer[2], &v),
            "route.name" => fill::push_extra(ev, "route", &v),
            "service.name" => fill::push_extra(ev, "service", &v),
            _ => {
                // Fields added by `custom_fields_by_lua` (or a record that only
                // looks like Kong) are still scanned.
                let top = path.split_b(b'.').next().unwrap_or(path);
                if !KNOWN_TOP.contains(&top) {
                    fill::push_extra(ev, path, &v);
                }
            }
        }
    }

    fn end_record(&mut self) {
        let consumer = std::mem::take(&mut self.consumer);
        let Some(ev) = self.out.last_mut() else {
            return;
        };
        ev.principal = consumer.into_iter().flatten().next();
        if ev.path.is_none()
            && let Some(url) = ev.url.clone()
        {
            fill::with_text(ev, url, fill::set_target);
        }
        fill::from_headers(ev);
        self.out.push(Event::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Vec<Event<'_>>, Error> {
        let mut out = Vec::new();
        decode(text, &mut out).map(|()| out)
    }

    #[test]
    fn batch_array_gives_one_event_per_object() {
        let cases: &[(&str, &[Option<&str>])] = &[
            (
                r#"[{"request":{"uri":"/a?x=1"},"response":{"status":200}},{"request":{"uri":"/b"},"response":{"status":404}}]"#,
                &[Some("/a"), Some("/b")],
            ),
            (r#"[]"#, &[]),
            (
                r#"{"request":{"uri":"/only"},"response":{}}"#,
                &[Some("/only")],
            ),
        ];
        for (text, paths) in cases {
            let evs = run(text).expect("valid kong");
            let got: Vec<Option<&str>> = evs.iter().map(|e| e.path.as_deref()).collect();
            assert_eq!(&got, paths, "{text}");
        }
        let evs = run(r#"[{"request":{"uri":"/a?x=1"}}]"#).expect("valid kong");
        assert_eq!(evs[0].query.as_deref(), Some("x=1"));
    }

    #[test]
    fn headers_arrays_and_principal_fallback() {
        let evs = run(
            r#"{"request":{"headers":{"X-Tag":["a","b"],"host":"h.example.org:8000"}},"consumer":{"id":"c-1","custom_id":"cust"}}"#,
        )
        .expect("valid kong");
        let ev = &evs[0];
        assert_eq!(ev.headers.len(), 3);
        assert_eq!(ev.headers[0], (Text::from("x-tag"), Text::from("a")));
        assert_eq!(ev.headers[1], (Text::from("x-tag"), Text::from("b")));
        assert_eq!(ev.principal.as_deref(), Some("cust"));
        assert_eq!(ev.dest_host.as_deref(), Some("h.example.org"));
    }

    #[test]
    fn custom_fields_are_scanned() {
        let evs = run(r#"{"request":{"uri":"/a"},"response":{},"tries":[{"ip":"10.0.0.1"}],"note":{"ssn":"x"}}"#)
            .expect("valid kong");
        assert_eq!(
            evs[0].extra,
            vec![(Text::from("note.ssn"), Text::from("x"))]
        );
    }

    #[test]
    fn scalars_and_bad_batches_are_errors() {
        assert!(run("42").is_err());
        assert!(run(r#"[{"request":{}}, 3]"#).is_err());
        assert!(run(r#"{"request":"#).is_err());
        // A batch that fails after its first object leaves no event behind.
        let mut out = Vec::new();
        decode(r#"{"request":{"uri":"/a"}}"#, &mut out).expect("valid kong");
        assert!(decode(r#"[{"request":{"uri":"/b"}}, 3]"#, &mut out).is_err());
        assert!(decode(r#"[{"request":{"uri":"/b"}}, {"#, &mut out).is_err());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path.as_deref(), Some("/a"));
    }
}
