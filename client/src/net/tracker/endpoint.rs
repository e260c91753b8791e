//! A tracker as the announcer speaks to it: BEP 15 at a UDP address, or an
//! HTTP announce URL kept exactly as written.

use std::fmt;
use std::net::SocketAddr;

use crate::net::tracker::json::{self, AddressError, TrackerError};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `udp://HOST:PORT` or `HOST:PORT`, looked up.
    Udp(SocketAddr),
    /// `http://HOST[:PORT]/PATH[?QUERY]`, as given.
    Http(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Udp(a) => write!(f, "udp://{a}"),
            Endpoint::Http(u) => f.write_str(u),
        }
    }
}

impl Endpoint {
    /// How the announcer speaks to it.
    pub fn protocol(&self) -> &'static str {
        match self {
            Endpoint::Udp(_) => "bep15",
            Endpoint::Http(_) => "http",
        }
    }
}

/// Whether `t` names an HTTP tracker (`http://` or `https://`).
pub fn is_http(t: &str) -> bool {
    let t = t.trim();
    t.starts_with("http://") || t.starts_with("https://")
}

/// A tracker as written in `--tracker`, a .torrent or a magnet link.
pub fn parse(t: &str) -> Result<Endpoint, TrackerError> {
    let t = t.trim();
    let bad = |why| TrackerError::BadAddress {
        given: t.into(),
        why,
    };
    if t.starts_with("https://") {
        return Err(bad(AddressError::Https));
    }
    if let Some(rest) = t.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || t.contains(char::is_whitespace) {
            return Err(bad(AddressError::NoHost));
        }
        return Ok(Endpoint::Http(t.to_string()));
    }
    json::resolve(t).map(Endpoint::Udp)
}

/// The host and port of an HTTP URL, looked up (port 80 when none is
/// given); `None` if it cannot be.
pub fn http_host(url: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let rest = url.trim().strip_prefix("http://")?;
    let hostport = rest.split(['/', '?', '#']).next()?;
    let with_port = if hostport.ends_with(']') || !hostport.contains(':') {
        format!("{hostport}:80")
    } else {
        hostport.to_string()
    };
    with_port.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trackers_are_read_as_written() {
        let u = "http://127.0.0.1:8080/announce?passkey=abc";
        assert_eq!(parse(u).unwrap(), Endpoint::Http(u.into()));
        assert_eq!(parse(u).unwrap().to_string(), u);
        assert_eq!(
            parse("udp://127.0.0.1:7000").unwrap(),
            Endpoint::Udp("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(
            parse("127.0.0.1:7000").unwrap().to_string(),
            "udp://127.0.0.1:7000"
        );
        let e = parse("https://t.example/announce").unwrap_err().to_string();
        assert!(e.contains("https"), "{e}");
        assert!(parse("http:///announce").is_err());
        assert_eq!(
            http_host("http://127.0.0.1:8080/announce"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            http_host("http://127.0.0.1/announce"),
            Some("127.0.0.1:80".parse().unwrap())
        );
    }
}
