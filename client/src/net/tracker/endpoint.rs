//! A tracker as the announcer speaks to it: BEP 15 at a UDP address, or an
//! HTTP announce URL kept exactly as written.

use std::fmt;
use std::net::SocketAddr;

use crate::net::tracker::json::{self, AddressError, TrackerError};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `udp://HOST:PORT[/PATH[?QUERY]]` or `HOST:PORT`, looked up; the
    /// path and query (empty for none) go with each BEP 15 announce as
    /// BEP 41 URLData.
    Udp(SocketAddr, String),
    /// `http://HOST[:PORT]/PATH[?QUERY]`, as given.
    Http(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Udp(a, path) => {
                write!(f, "udp://{a}{}", crate::net::tracker::http::shown_url(path))
            }
            // Without its query, which may hold a personal passkey.
            Endpoint::Http(u) => f.write_str(&crate::net::tracker::http::shown_url(u)),
        }
    }
}

impl Endpoint {
    /// A UDP tracker without a path.
    pub fn udp(addr: SocketAddr) -> Endpoint {
        Endpoint::Udp(addr, String::new())
    }

    /// The URL as written (passkey included), for a `.torrent`.
    pub fn url(&self) -> String {
        match self {
            Endpoint::Udp(a, path) => format!("udp://{a}{path}"),
            Endpoint::Http(u) => u.clone(),
        }
    }

    /// How the announcer speaks to it.
    pub fn protocol(&self) -> &'static str {
        match self {
            Endpoint::Udp(..) => "bep15",
            Endpoint::Http(_) => "http",
        }
    }
}

/// Whether `t` names an HTTP tracker (`http://` or `https://`).
pub fn is_http(t: &str) -> bool {
    let t = t.trim().to_ascii_lowercase();
    t.starts_with("http://") || t.starts_with("https://")
}

/// A tracker as written in `--tracker`, a .torrent or a magnet link.
pub fn parse(t: &str) -> Result<Endpoint, TrackerError> {
    let t = t.trim();
    let bad = |why| TrackerError::BadAddress {
        given: crate::net::tracker::http::shown_url(t),
        why,
    };
    let lower = t.get(..8).unwrap_or(t).to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(bad(AddressError::Https));
    }
    if lower.starts_with("http://") {
        // The scheme in lower case; a fragment is never sent.
        let rest = &t["http://".len()..];
        let rest = rest.split('#').next().unwrap_or(rest);
        let host = rest.split(['/', '?']).next().unwrap_or("");
        if host.is_empty() || rest.contains(char::is_whitespace) {
            return Err(bad(AddressError::NoHost));
        }
        return Ok(Endpoint::Http(format!("http://{rest}")));
    }
    let addr = json::resolve(t)?;
    // What follows HOST:PORT in a udp:// URL (BEP 41).
    let path = match t.get(..6).map(str::to_ascii_lowercase).as_deref() {
        Some("udp://") => {
            let rest = &t[6..];
            let rest = rest.split('#').next().unwrap_or(rest);
            rest.find(['/', '?']).map_or("", |i| &rest[i..])
        }
        _ => "",
    };
    Ok(Endpoint::Udp(addr, path.to_string()))
}

/// The host and port of an HTTP URL, looked up (port 80 when none is
/// given); `None` if it cannot be.
pub fn http_host(url: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let t = crate::net::tracker::http::target(url.trim())?;
    (t.host.as_str(), t.port).to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trackers_are_read_as_written() {
        let u = "http://127.0.0.1:8080/announce?passkey=abc";
        assert_eq!(parse(u).unwrap(), Endpoint::Http(u.into()));
        // Shown without the passkey.
        assert_eq!(
            parse(u).unwrap().to_string(),
            "http://127.0.0.1:8080/announce?…"
        );
        assert_eq!(
            parse("HTTP://h:1/announce#top").unwrap(),
            Endpoint::Http("http://h:1/announce".into())
        );
        assert!(is_http("HTTP://h/"));
        let e = parse("udp://127.0.0.1:7000/announce?passkey=abc").unwrap();
        assert_eq!(
            e,
            Endpoint::Udp(
                "127.0.0.1:7000".parse().unwrap(),
                "/announce?passkey=abc".into()
            )
        );
        assert_eq!(e.url(), "udp://127.0.0.1:7000/announce?passkey=abc");
        assert_eq!(e.to_string(), "udp://127.0.0.1:7000/announce?…");
        assert_eq!(
            parse("udp://127.0.0.1:7000").unwrap(),
            Endpoint::udp("127.0.0.1:7000".parse().unwrap())
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
