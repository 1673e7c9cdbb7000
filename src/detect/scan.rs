//! `phiwatch scan`: stdin lines in, one JSON object per finding out (masked only).

use super::Detector;
use crate::decode::{self, FileState, Format, Mode};
use crate::event::Provenance;
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

/// A finding as a JSON object with the CONTRACT findings columns (`time` as RFC 3339).
pub fn finding_json(f: &Finding) -> serde_json::Value {
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
    let mut events = Vec::new();
    let mut findings = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        stats.lines += 1;
        events.clear();
        findings.clear();
        let format =
            match decode::decode_record(&buf, Mode::AutoTextFallback, &mut state, &mut events) {
                Ok(f) => f,
                Err(_) => {
                    stats.invalid_utf8 += 1;
                    events.clear();
                    let lossy = String::from_utf8_lossy(&buf);
                    events.push(decode::text_event(lossy.trim_end_matches(['\r', '\n'])));
                    Format::Text
                }
            };
        for (i, ev) in events.iter().enumerate() {
            let mut prov = Provenance::file_line(source.clone(), stats.lines);
            prov.index = u32::try_from(i).unwrap_or(u32::MAX);
            detector.scan(ev, &prov, format, &mut findings);
        }
        for f in &findings {
            serde_json::to_writer(&mut out, &finding_json(f))?;
            out.write_all(b"\n")?;
            stats.findings += 1;
        }
    }
    out.flush()?;
    Ok(stats)
}
