//! `phiwatch scan`: stdin lines in, one JSON object per finding out (masked only).

use super::Detector;
use crate::decode::{self, FileState, Format, Mode};
use crate::event::{Event, Provenance};
use crate::finding::Finding;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

/// Counts from [`scan_lines`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Lines read.
    pub lines: u64,
    /// Findings written.
    pub findings: u64,
    /// Lines that were not valid UTF-8 (scanned lossily as text).
    pub invalid_utf8: u64,
}

/// A finding as one JSON object with the CONTRACT findings columns (`time` as
/// RFC 3339), keys in alphabetical order, written straight from the finding.
#[derive(serde::Serialize)]
struct FindingLine<'a> {
    category: &'a str,
    client_ip: Option<&'a str>,
    /// Widened as the findings' JSON has always carried it.
    confidence: f64,
    dest_host: Option<&'a str>,
    detail: Option<&'a str>,
    finding_id: &'a str,
    http_method: Option<&'a str>,
    http_status: Option<u16>,
    kafka_offset: Option<i64>,
    kafka_partition: Option<i32>,
    key_id: &'a str,
    kind: &'a str,
    location: &'a str,
    ocsf_class_uid: i32,
    principal: Option<&'a str>,
    rule_id: &'a str,
    severity: &'a str,
    source: &'a str,
    source_format: &'a str,
    source_line: Option<u64>,
    time: Option<String>,
    url_path: Option<&'a str>,
    value_hmac: &'a str,
    value_masked: &'a str,
}

impl<'a> FindingLine<'a> {
    fn new(f: &'a Finding) -> FindingLine<'a> {
        FindingLine {
            category: f.category.as_str(),
            client_ip: f.client_ip.as_deref(),
            confidence: f64::from(f.confidence),
            dest_host: f.dest_host.as_deref(),
            detail: f.detail.as_deref(),
            finding_id: &f.finding_id,
            http_method: f.http_method.as_deref(),
            http_status: f.http_status,
            kafka_offset: f.kafka_offset,
            kafka_partition: f.kafka_partition,
            key_id: &f.key_id,
            kind: &f.kind,
            location: &f.location,
            ocsf_class_uid: f.ocsf_class_uid(),
            principal: f.principal.as_deref(),
            rule_id: &f.rule_id,
            severity: f.severity.as_str(),
            source: &f.source,
            source_format: f.source_format,
            source_line: f.source_line,
            time: f
                .time
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            url_path: f.url_path.as_deref(),
            value_hmac: &f.value_hmac,
            value_masked: &f.value_masked,
        }
    }
}

/// Scan every line of `input` (format auto-detected per line, unknown lines as plain
/// text) and write one JSON line per finding to `out`, with source `-` and
/// source_line the 1-based line number.
pub fn scan_lines(
    mut input: impl BufRead,
    mut out: impl Write,
    detector: &Detector,
) -> io::Result<ScanStats> {
    let source: Arc<str> = Arc::from("-");
    let mut stats = ScanStats::default();
    let mut buf = Vec::new();
    let mut state = FileState::default();
    let mut spare = Vec::new();
    let mut findings = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        stats.lines += 1;
        let mut events: Vec<Event<'_>> = std::mem::take(&mut spare);
        findings.clear();
        let format =
            match decode::decode_record(&buf, Mode::AutoTextFallback, &mut state, &mut events) {
                Ok(f) => f,
                Err(_) => {
                    stats.invalid_utf8 += 1;
                    events.clear();
                    let lossy = String::from_utf8_lossy(&buf);
                    events.push(
                        decode::text_event(lossy.trim_end_matches(['\r', '\n'])).into_owned(),
                    );
                    Format::Text
                }
            };
        for (i, ev) in events.iter().enumerate() {
            let mut prov = Provenance::file_line(source.clone(), stats.lines);
            prov.index = u32::try_from(i).unwrap_or(u32::MAX);
            detector.scan(ev, &prov, format, &mut findings);
        }
        spare = Event::recycle(events);
        for f in &findings {
            serde_json::to_writer(&mut out, &FindingLine::new(f))?;
            out.write_all(b"\n")?;
            stats.findings += 1;
        }
    }
    out.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Key;

    /// The findings' JSON as it was first built (through a `serde_json::Value`).
    fn finding_json(f: &Finding) -> serde_json::Value {
        let time = f
            .time
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        serde_json::json!({
            "finding_id": f.finding_id,
            "time": time,
            "rule_id": f.rule_id,
            "category": f.category.as_str(),
            "kind": f.kind,
            "severity": f.severity.as_str(),
            "confidence": f.confidence,
            "ocsf_class_uid": f.ocsf_class_uid(),
            "source_format": f.source_format,
            "source": f.source,
            "source_line": f.source_line,
            "kafka_partition": f.kafka_partition,
            "kafka_offset": f.kafka_offset,
            "location": f.location,
            "value_hmac": f.value_hmac,
            "value_masked": f.value_masked,
            "key_id": f.key_id,
            "principal": f.principal,
            "client_ip": f.client_ip,
            "dest_host": f.dest_host,
            "http_method": f.http_method,
            "url_path": f.url_path,
            "http_status": f.http_status,
            "detail": f.detail,
        })
    }

    /// Every finding of the labeled set serializes byte for byte as the
    /// `serde_json::Value` it used to be built as.
    #[test]
    fn finding_lines_are_the_json_objects_they_replace() {
        let detector = Detector::load(Key::from_bytes(b"unit test key 0123"), None)
            .expect("built-in rules load");
        let labeled = include_str!("../../fixtures/eval/labeled.jsonl");
        let (mut state, mut findings) = (FileState::default(), Vec::new());
        for (n, record) in labeled.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(record).expect("labeled json");
            let line = v["line"].as_str().expect("line");
            let mut events = Vec::new();
            let Ok(format) = decode::decode_record(
                line.as_bytes(),
                Mode::AutoTextFallback,
                &mut state,
                &mut events,
            ) else {
                continue;
            };
            let mut prov = Provenance::file_line(Arc::from("-"), n as u64 + 1);
            for (i, ev) in events.iter().enumerate() {
                prov.index = i as u32;
                detector.scan(ev, &prov, format, &mut findings);
            }
        }
        assert!(findings.len() > 500, "{} findings", findings.len());
        for f in &findings {
            let got = serde_json::to_string(&FindingLine::new(f)).expect("serializes");
            let want = serde_json::to_string(&finding_json(f)).expect("serializes");
            assert_eq!(got, want);
        }
    }
}
