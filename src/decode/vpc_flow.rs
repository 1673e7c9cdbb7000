//! AWS VPC Flow Logs (space-separated). The v2 default order is
//! `version account-id interface-id srcaddr dstaddr srcport dstport protocol
//! packets bytes start end action log-status`; a header line naming the fields
//! (as in flow logs delivered to S3) sets a custom order for the rest of the
//! file (kept in [`FileState`]), as can the config.
//!
//! Mapping: `srcaddr` / `srcport` -> client ip / port; `dstaddr` / `dstport` ->
//! destination ip / port; `bytes` (sent by the source) -> bytes_in; `start`
//! (unix seconds) -> time; `action`. NODATA and SKIPDATA rows (no traffic /
//! records skipped) decode to an event whose action is that status.

use super::fill;
use super::{Error, FileState};
use crate::event::Event;

const NAME: &str = "vpc_flow";

/// The v2 default field order.
const DEFAULT: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// Every field name AWS documents (versions 2 to 5).
const KNOWN: [&str; 40] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
];

fn invalid(message: &str) -> Error {
    Error::Invalid {
        format: NAME,
        message: message.to_owned(),
    }
}

/// Field names of a header line (underscores read as dashes), or `None` if the
/// line is not a header: every token must be a documented field name, and the
/// addresses must be among them.
pub(super) fn header_fields(line: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for token in line.split_ascii_whitespace() {
        let name = token.replace('_', "-");
        if !KNOWN.contains(&name.as_str()) {
            return None;
        }
        names.push(name);
    }
    let has = |n: &str| names.iter().any(|x| x == n);
    (has("srcaddr") || has("dstaddr") || has("pkt-srcaddr")).then_some(names)
}

/// Cheap shape check for detection.
pub(super) fn looks_like(line: &str, state: &FileState) -> bool {
    if memchr::memchr3(b'"', b'[', b'{', line.as_bytes()).is_some() {
        return false;
    }
    if line.starts_with(|c: char| c.is_ascii_lowercase()) && header_fields(line).is_some() {
        return true;
    }
    let count = line.split_ascii_whitespace().count();
    if state.vpc_fields.as_ref().is_some_and(|f| f.len() == count) {
        return true;
    }
    let mut it = line.split_ascii_whitespace();
    let version = it.next().unwrap_or_default();
    let status = it.last().unwrap_or_default();
    count == DEFAULT.len()
        && version.bytes().all(|b| b.is_ascii_digit())
        && matches!(status, "OK" | "NODATA" | "SKIPDATA")
}

/// Decode one line: a header sets the field order and yields no event.
pub(super) fn decode<'a>(
    line: &'a str,
    state: &mut FileState,
    out: &mut Vec<Event<'a>>,
) -> Result<(), Error> {
    if line.starts_with(|c: char| c.is_ascii_lowercase())
        && let Some(fields) = header_fields(line)
    {
        state.vpc_fields = Some(fields);
        return Ok(());
    }
    let ev = match &state.vpc_fields {
        Some(fields) => decode_row(line, fields.iter().map(String::as_str), fields.len())?,
        None => decode_row(line, DEFAULT.iter().copied(), DEFAULT.len())?,
    };
    out.push(ev);
    Ok(())
}

fn number<T: std::str::FromStr>(value: &str, what: &str) -> Result<Option<T>, Error> {
    if value == "-" {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| invalid(&format!("bad {what}")))
}

fn decode_row<'f>(
    line: &str,
    fields: impl Iterator<Item = &'f str>,
    count: usize,
) -> Result<Event<'_>, Error> {
    if line.split_ascii_whitespace().count() != count {
        return Err(invalid("field count does not match the field order"));
    }
    let mut ev = Event::default();
    let mut status = None;
    for (name, value) in fields.zip(line.split_ascii_whitespace()) {
        match name {
            "srcaddr" => fill::set(&mut ev.client_ip, Some(value)),
            "dstaddr" => fill::set(&mut ev.dest_ip, Some(value)),
            "srcport" => ev.client_port = number(value, name)?,
            "dstport" => ev.dest_port = number(value, name)?,
            "bytes" => ev.bytes_in = number(value, name)?,
            "packets" | "end" | "protocol" => {
                number::<u64>(value, name)?;
            }
            "start" => {
                ev.time = number::<i64>(value, name)?
                    .map(|s| {
                        super::util::int_to_micros(s, super::util::Unit::Seconds)
                            .ok_or_else(|| invalid("bad start"))
                    })
                    .transpose()?
            }
            "action" => fill::set(&mut ev.action, Some(value)),
            "log-status" => status = Some(value),
            _ => {}
        }
    }
    match status {
        Some("OK") | None => {}
        Some(s @ ("NODATA" | "SKIPDATA")) => fill::set(&mut ev.action, Some(s)),
        Some(_) => return Err(invalid("bad log-status")),
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<'a>(lines: &[&'a str]) -> Vec<Result<Vec<Event<'a>>, Error>> {
        let mut state = FileState::default();
        lines
            .iter()
            .map(|l| {
                let mut out = Vec::new();
                decode(l, &mut state, &mut out).map(|()| out)
            })
            .collect()
    }

    #[test]
    fn default_rows_and_nodata() {
        let got = run(&[
            "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
            "2 123456789010 eni-11111111111111111 - - - - - - - 1431280876 1431280934 - SKIPDATA",
            "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 notaport 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
            "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 1 22 6 20 4249 1418530010 1418530070 ACCEPT WHAT",
        ]);
        let ok = got[0].as_ref().expect("ok row");
        assert_eq!(ok[0].client_ip.as_deref(), Some("172.31.16.139"));
        assert_eq!(ok[0].dest_port, Some(22));
        assert_eq!(ok[0].bytes_in, Some(4249));
        assert_eq!(ok[0].time, Some(1_418_530_010_000_000));
        assert_eq!(ok[0].action.as_deref(), Some("ACCEPT"));
        let nodata = got[1].as_ref().expect("nodata row");
        assert_eq!(nodata[0].action.as_deref(), Some("NODATA"));
        assert_eq!(nodata[0].client_ip, None);
        let skip = got[2].as_ref().expect("skipdata row");
        assert_eq!(skip[0].action.as_deref(), Some("SKIPDATA"));
        assert!(got[3].is_err());
        assert!(got[4].is_err());
    }

    #[test]
    fn header_sets_custom_order() {
        let got = run(&[
            "version vpc-id srcaddr dstaddr srcport dstport action log-status bytes start",
            "5 vpc-0a1b2c3d 10.0.1.5 203.0.113.50 49152 443 REJECT OK 99 1700000000",
            "5 vpc-0a1b2c3d 10.0.1.5 203.0.113.50 49152 443 REJECT OK",
        ]);
        assert!(got[0].as_ref().expect("header").is_empty());
        let row = &got[1].as_ref().expect("custom row")[0];
        assert_eq!(row.client_ip.as_deref(), Some("10.0.1.5"));
        assert_eq!(row.dest_port, Some(443));
        assert_eq!(row.action.as_deref(), Some("REJECT"));
        assert_eq!(row.bytes_in, Some(99));
        assert!(got[2].is_err(), "short row");
    }

    #[test]
    fn header_recognition() {
        assert!(header_fields("version account_id interface_id srcaddr").is_some());
        assert!(header_fields("version account-id packets").is_none());
        assert!(header_fields("version srcaddr hello").is_none());
        let st = FileState::default();
        assert!(looks_like(&DEFAULT.join(" "), &st));
    }
}
