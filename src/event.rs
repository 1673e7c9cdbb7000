//! The normalized event every decoder produces, and where it came from.
//!
//! Decoders turn one vendor record into one or more [`Event`]s; everything after
//! decoding (detection, exposure, sinks) sees only this shape, so a replay of a file
//! and a Kafka stream of the same records give the same findings.

use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;

/// Text of an [`Event`]: borrowed from the record when the record holds it as
/// is, owned when decoding changed it (an unescaped JSON string, a lower-cased
/// header name, a number written out).
pub type Text<'a> = Cow<'a, str>;

/// One HTTP request (or flow) as seen by a gateway, WAF or egress proxy.
///
/// Every field is optional: formats log different subsets. Times are microseconds
/// since the Unix epoch, UTC. Header names are lower-cased; duplicates are kept in
/// the order the record gave them. Text fields borrow from the record they
/// were decoded from (see [`Text`]); [`Event::into_owned`] detaches an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Event<'a> {
    /// Event time in microseconds since the Unix epoch (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// Client (source) IP address as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<Text<'a>>,
    /// Client (source) port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
    /// Destination host name (Host header, SNI, upstream host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_host: Option<Text<'a>>,
    /// Destination IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<Text<'a>>,
    /// Destination port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// HTTP method, upper case as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Text<'a>>,
    /// URL path without the query string, still percent-encoded as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text<'a>>,
    /// Raw query string without the leading `?`, still percent-encoded as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<Text<'a>>,
    /// Full URL when the format logs one (scheme and host included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Text<'a>>,
    /// HTTP response status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Bytes received from the client (request size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Bytes sent to the client (response size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// Request duration in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// User-Agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Text<'a>>,
    /// Request or trace id assigned by the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Text<'a>>,
    /// Who made the request as the log names it (consumer, authorizer principal, proxy user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Text<'a>>,
    /// WAF or proxy action (`ALLOW`, `BLOCK`, `TCP_MISS`, `ACCEPT` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Text<'a>>,
    /// Ids of WAF rules that matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_ids: Vec<Text<'a>>,
    /// Request headers, names lower-cased, duplicates kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(Text<'a>, Text<'a>)>,
    /// Response headers, names lower-cased, duplicates kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<(Text<'a>, Text<'a>)>,
    /// Request or response body when the format logs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Text<'a>>,
    /// Other string fields of the record that detection should still scan
    /// (field path, value), e.g. unmapped keys of a generic JSON line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<(Text<'a>, Text<'a>)>,
}

/// Where a record came from: a line of a file, or an offset of a Kafka partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Provenance {
    /// File path as the user gave it (`-` for stdin), or the Kafka topic.
    pub source: Arc<str>,
    /// 1-based line number in a line-oriented file.
    pub line: Option<u64>,
    /// Kafka partition.
    pub kafka_partition: Option<i32>,
    /// Kafka offset.
    pub kafka_offset: Option<i64>,
    /// Index of the event within its record, for formats that batch several
    /// events in one record (a Kong batch array); 0 otherwise.
    pub index: u32,
}

impl Provenance {
    /// Provenance of a line in a file.
    pub fn file_line(source: Arc<str>, line: u64) -> Self {
        Provenance {
            source,
            line: Some(line),
            kafka_partition: None,
            kafka_offset: None,
            index: 0,
        }
    }

    /// Provenance of a Kafka record.
    pub fn kafka(topic: Arc<str>, partition: i32, offset: i64) -> Self {
        Provenance {
            source: topic,
            line: None,
            kafka_partition: Some(partition),
            kafka_offset: Some(offset),
            index: 0,
        }
    }

    /// A short, stable position string used to derive ids: `line:N` or `kafka:P:O`,
    /// with `#I` appended for the I-th event of a batched record.
    pub fn position(&self) -> String {
        let base = match (self.line, self.kafka_partition, self.kafka_offset) {
            (Some(l), _, _) => format!("line:{l}"),
            (None, Some(p), Some(o)) => format!("kafka:{p}:{o}"),
            _ => String::from("-"),
        };
        if self.index == 0 {
            base
        } else {
            format!("{base}#{}", self.index)
        }
    }
}

impl Event<'_> {
    /// Value of the first request header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| &**v)
    }

    /// An emptied event vector, detached from the records its events borrowed
    /// from, that keeps its allocation for the next record.
    pub fn recycle(mut events: Vec<Event<'_>>) -> Vec<Event<'static>> {
        events.clear();
        // Collecting an empty vector's iterator into a vector of the same layout
        // reuses its buffer.
        events.into_iter().map(Event::into_owned).collect()
    }

    /// The same event, owning all its text.
    pub fn into_owned(self) -> Event<'static> {
        fn own(t: Option<Text<'_>>) -> Option<Text<'static>> {
            t.map(|t| Cow::Owned(t.into_owned()))
        }
        fn own_pairs(v: Vec<(Text<'_>, Text<'_>)>) -> Vec<(Text<'static>, Text<'static>)> {
            v.into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect()
        }
        Event {
            time: self.time,
            client_ip: own(self.client_ip),
            client_port: self.client_port,
            dest_host: own(self.dest_host),
            dest_ip: own(self.dest_ip),
            dest_port: self.dest_port,
            method: own(self.method),
            path: own(self.path),
            query: own(self.query),
            url: own(self.url),
            status: self.status,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            duration_ms: self.duration_ms,
            user_agent: own(self.user_agent),
            request_id: own(self.request_id),
            principal: own(self.principal),
            action: own(self.action),
            rule_ids: self
                .rule_ids
                .into_iter()
                .map(|r| Cow::Owned(r.into_owned()))
                .collect(),
            headers: own_pairs(self.headers),
            response_headers: own_pairs(self.response_headers),
            body: own(self.body),
            extra: own_pairs(self.extra),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_events_equal_borrowed_ones_and_recycling_keeps_the_buffer() {
        let record = String::from("GET /fhir/Patient/1 curl/8");
        let ev = Event {
            method: Some(Cow::Borrowed(&record[..3])),
            path: Some(Cow::Borrowed(&record[4..19])),
            headers: vec![("user-agent".into(), Cow::Borrowed(&record[20..]))],
            ..Event::default()
        };
        let owned = ev.clone().into_owned();
        assert_eq!(owned, ev);
        assert!(matches!(owned.path, Some(Cow::Owned(_))));
        assert_eq!(ev.header("user-agent"), Some("curl/8"));

        let mut events = Vec::with_capacity(8);
        events.push(ev);
        let spare = Event::recycle(events);
        assert!(spare.is_empty());
        assert!(spare.capacity() >= 8, "buffer kept for the next record");
    }
}
