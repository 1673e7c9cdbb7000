//! Squid native access.log:
//! `time.ms elapsed client action/code size method URL user hierarchy/peer type`.
//!
//! Mapping: time (seconds with milliseconds) -> time; elapsed (ms) ->
//! duration_ms; client -> client_ip; action (`TCP_MISS` ...) -> action; code ->
//! status; size (bytes sent to the client) -> bytes_out; method; URL -> url,
//! dest_host, path, query (for `CONNECT host:port`: dest_host and dest_port);
//! user -> principal; the peer of `hierarchy/peer` -> dest_ip when it is an IP
//! address. Fields after the content type (extended log formats) go to
//! `extra` as `trailing`.

use super::Error;
use super::fill;
use super::util::{Unit, decimal_to_micros, non_dash, split_host_port};
use crate::event::{Event, Text};
use std::net::IpAddr;

const NAME: &str = "squid";

fn invalid(message: &str) -> Error {
    Error::Invalid {
        format: NAME,
        message: message.to_owned(),
    }
}

/// Decode one line.
pub(super) fn decode<'a>(line: &'a str, out: &mut Vec<Event<'a>>) -> Result<(), Error> {
    out.push(decode_line(line)?);
    Ok(())
}

fn decode_line(line: &str) -> Result<Event<'_>, Error> {
    let mut it = line.split(' ').filter(|t| !t.is_empty());
    let mut next = |what: &str| it.next().ok_or_else(|| invalid(what));
    let time = next("missing time")?;
    let elapsed = next("missing elapsed")?;
    let client = next("missing client")?;
    let code = next("missing action/code")?;
    let size = next("missing size")?;
    let method = next("missing method")?;
    let url = next("missing url")?;
    let mut ev = Event {
        time: Some(decimal_to_micros(time, Unit::Seconds).ok_or_else(|| invalid("bad time"))?),
        duration_ms: non_dash(elapsed).and_then(|e| e.parse().ok()),
        ..Event::default()
    };
    fill::set(&mut ev.client_ip, Some(client));
    let (action, status) = code
        .split_once('/')
        .ok_or_else(|| invalid("bad action/code"))?;
    fill::set(&mut ev.action, Some(action));
    ev.status = status.parse().ok().filter(|s| *s != 0);
    ev.bytes_out = Some(size.parse().map_err(|_| invalid("bad size"))?);
    fill::set(&mut ev.method, Some(method));
    if method == "CONNECT" && !url.contains('/') {
        let (host, port) = split_host_port(url);
        fill::set(&mut ev.dest_host, Some(host));
        ev.dest_port = port;
    } else if url.starts_with('/') || url.contains("://") {
        fill::set_target(&mut ev, url);
    } else if non_dash(url).is_some() {
        // `error:invalid-request` and the like: not a URL, still scanned.
        ev.extra.push((Text::from("url"), url.into()));
    }
    let user = it.next();
    fill::set(&mut ev.principal, user);
    if let Some(peer) = it.next().and_then(|h| h.split_once('/')).map(|(_, p)| p)
        && peer.parse::<IpAddr>().is_ok()
    {
        ev.dest_ip = Some(peer.into());
    }
    let _content_type = it.next();
    let trailing: Vec<&str> = it.collect();
    if !trailing.is_empty() {
        ev.extra
            .push((Text::from("trailing"), trailing.join(" ").into()));
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_lines() {
        let ev = decode_line(
            "1286536308.779    180 192.0.2.24 TCP_MISS/200 411 GET http://www.example.org/fhir/Patient/1?x=y alice HIER_DIRECT/192.0.2.80 text/html",
        )
        .expect("native line");
        assert_eq!(ev.time, Some(1_286_536_308_779_000));
        assert_eq!(ev.duration_ms, Some(180.0));
        assert_eq!(ev.action.as_deref(), Some("TCP_MISS"));
        assert_eq!(ev.status, Some(200));
        assert_eq!(ev.dest_host.as_deref(), Some("www.example.org"));
        assert_eq!(ev.path.as_deref(), Some("/fhir/Patient/1"));
        assert_eq!(ev.query.as_deref(), Some("x=y"));
        assert_eq!(ev.principal.as_deref(), Some("alice"));
        assert_eq!(ev.dest_ip.as_deref(), Some("192.0.2.80"));

        let ev = decode_line(
            "1286536309.100      5 192.0.2.24 TCP_TUNNEL/200 3900 CONNECT api.example.org:443 - HIER_DIRECT/api.example.org -",
        )
        .expect("connect line");
        assert_eq!(ev.dest_host.as_deref(), Some("api.example.org"));
        assert_eq!(ev.dest_port, Some(443));
        assert_eq!(
            (ev.path.as_ref(), ev.dest_ip.as_ref(), ev.principal.as_ref()),
            (None, None, None)
        );
    }

    #[test]
    fn bad_lines() {
        let cases = [
            "1286536308.779 180 192.0.2.24",
            "yesterday 180 192.0.2.24 TCP_MISS/200 411 GET http://a/ - - -",
            "1286536308.779 180 192.0.2.24 TCP_MISS 411 GET http://a/ - - -",
            "1286536308.779 180 192.0.2.24 TCP_MISS/200 many GET http://a/ - - -",
        ];
        for case in cases {
            assert!(decode_line(case).is_err(), "{case}");
        }
    }
}
