//! NGINX (and Apache) combined log format:
//! `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
//! "$http_referer" "$http_user_agent"`, optionally prefixed by a virtual host
//! (`$host:$server_port ` or `$host `, as in Apache's `vhost_combined`).
//!
//! `$remote_user` -> principal; the vhost prefix -> dest_host / dest_port;
//! `$body_bytes_sent` -> bytes_out; the referer is kept as a `referer` header.
//! Fields some deployments append (`"$http_x_forwarded_for"` ...) go to
//! `extra` as `trailing` so detection still scans them.

use super::Error;
use super::fill;
use super::util::{Fields, non_dash, split_host_port, text_to_micros};
use crate::event::Event;
use crate::text::SplitByte;

const NAME: &str = "nginx";

fn invalid(message: &str) -> Error {
    Error::Invalid {
        format: NAME,
        message: message.to_owned(),
    }
}

/// Decode one line.
pub(super) fn decode<'a>(line: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    super::push_decoded(out, |ev| decode_line(line, ev))
}

/// `dd/Mon/yyyy:` at the start of `s` (the common log format time).
fn clf_date(s: &[u8]) -> bool {
    s.len() >= 12
        && s[0].is_ascii_digit()
        && s[1].is_ascii_digit()
        && s[2] == b'/'
        && s[3..6].iter().all(u8::is_ascii_alphabetic)
        && s[6] == b'/'
        && s[7..11].iter().all(u8::is_ascii_digit)
        && s[11] == b':'
}

/// Byte offset of the `[` that opens the `[time]` field.
fn time_bracket(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    memchr::memchr_iter(b'[', b).find(|&i| clf_date(&b[i + 1..]))
}

/// Cheap shape check for detection: 3 fields (4 with a vhost) before `[time] "`.
pub(super) fn looks_like(line: &str) -> bool {
    let Some(open) = time_bracket(line) else {
        return false;
    };
    let before = line[..open].split_b(b' ').filter(|t| !t.is_empty()).count();
    matches!(before, 3 | 4) && crate::text::find_str(&line[open..], "] \"").is_some()
}

fn decode_line<'a>(line: &'a str, ev: &mut Event<'a>) -> Result<(), Error> {
    let open = time_bracket(line).ok_or_else(|| invalid("missing [time]"))?;
    let mut head = line[..open].split_b(b' ').filter(|t| !t.is_empty());
    let fields: [Option<&str>; 5] = std::array::from_fn(|_| head.next());
    let (vhost, addr, user) = match fields {
        [Some(addr), Some(_ident), Some(user), None, _] => (None, addr, user),
        [Some(vhost), Some(addr), Some(_ident), Some(user), None] => (Some(vhost), addr, user),
        _ => return Err(invalid("expected 3 or 4 fields before [time]")),
    };
    if let Some(vhost) = vhost {
        let (host, port) = split_host_port(vhost);
        fill::set(&mut ev.dest_host, Some(host));
        ev.dest_port = port;
    }
    fill::set(&mut ev.client_ip, Some(addr));
    fill::set(&mut ev.principal, Some(user));

    let mut fields = Fields::new(&line[open..]);
    let mut next = || -> Result<Option<&str>, Error> {
        fields
            .next_field()
            .map_err(|()| invalid("unterminated quoted field"))
    };
    let time = next()?.ok_or_else(|| invalid("missing [time]"))?;
    ev.time = Some(text_to_micros(time).ok_or_else(|| invalid("bad time"))?);
    let request = next()?.ok_or_else(|| invalid("missing request"))?;
    let status = next()?.ok_or_else(|| invalid("missing status"))?;
    ev.status = Some(status.parse().map_err(|_| invalid("bad status"))?);
    let bytes = next()?.ok_or_else(|| invalid("missing body_bytes_sent"))?;
    ev.bytes_out = match non_dash(bytes) {
        None => None,
        Some(b) => Some(b.parse().map_err(|_| invalid("bad body_bytes_sent"))?),
    };
    if let Some(referer) = next()?.and_then(non_dash) {
        ev.headers.push(("referer".into(), referer.into()));
    }
    fill::set(&mut ev.user_agent, next()?);
    let trailing = fields.rest().trim();
    if !trailing.is_empty() {
        ev.extra.push(("trailing".into(), trailing.into()));
    }
    if !fill::set_request_line(ev, request) && non_dash(request).is_some() {
        // A malformed request line (scanners, TLS on a plain port): keep it for detection.
        ev.extra.push(("request".into(), request.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line's event, through the decoder's entry point.
    fn decode_line(line: &str) -> Result<Event<'_>, Error> {
        crate::decode::one_event(decode, line)
    }
    use crate::event::Text;

    const TAIL: &str = r#"[10/Oct/2023:13:55:36 -0700] "GET /fhir/Patient/12345?_format=json HTTP/1.1" 200 2326 "https://portal.example.org/" "Mozilla/5.0""#;

    #[test]
    fn vhost_prefix_variants() {
        let cases: &[(&str, Option<&str>, Option<u16>)] = &[
            ("", None, None),
            ("api.example.org:443 ", Some("api.example.org"), Some(443)),
            ("api.example.org ", Some("api.example.org"), None),
            ("[2001:db8::1]:8443 ", Some("2001:db8::1"), Some(8443)),
        ];
        for (prefix, host, port) in cases {
            let line = format!("{prefix}192.0.2.10 - alice {TAIL}");
            let ev = decode_line(&line).expect("combined line");
            assert_eq!(ev.dest_host.as_deref(), *host, "{line}");
            assert_eq!(ev.dest_port, *port, "{line}");
            assert_eq!(ev.client_ip.as_deref(), Some("192.0.2.10"));
            assert_eq!(ev.principal.as_deref(), Some("alice"));
            assert_eq!(ev.time, Some(1_696_971_336_000_000));
            assert_eq!(ev.path.as_deref(), Some("/fhir/Patient/12345"));
            assert_eq!(ev.query.as_deref(), Some("_format=json"));
            assert_eq!(ev.bytes_out, Some(2326));
        }
    }

    #[test]
    fn odd_request_lines_and_trailing_fields() {
        let ev = decode_line(
            r#"192.0.2.10 - - [10/Oct/2023:13:55:36 +0000] "\x16\x03\x01" 400 157 "-" "-" "203.0.113.9""#,
        )
        .expect("malformed request line still decodes");
        assert_eq!(ev.method, None);
        assert_eq!(
            ev.extra[0],
            (Text::from("trailing"), Text::from("\"203.0.113.9\""))
        );
        assert_eq!(ev.extra[1].0, "request");
        assert_eq!(ev.principal, None);
        assert!(ev.headers.is_empty());
    }

    #[test]
    fn bad_lines() {
        let cases = [
            "no brackets here",
            r#"a b c d e [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 1"#,
            r#"192.0.2.10 - - [yesterday] "GET / HTTP/1.1" 200 1"#,
            r#"192.0.2.10 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" OK 1"#,
            r#"192.0.2.10 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1"#,
        ];
        // A failed line leaves no half-filled event behind.
        let good = format!("192.0.2.10 - - {TAIL}");
        let mut out = Vec::new();
        decode(&good, &mut out).expect("good line");
        for case in cases {
            assert!(decode_line(case).is_err(), "{case}");
            assert!(decode(case, &mut out).is_err(), "{case}");
            assert_eq!(out.len(), 1, "{case}");
        }
    }
}
