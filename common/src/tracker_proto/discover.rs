//! LAN discovery: the `DISCOVER` request a peer broadcasts and the `TRACKER`
//! reply a tracker sends back, on their own UDP port ([`DISCOVER_PORT`]) and
//! multicast group ([`DISCOVER_GROUP`]).
//!
//! They are kept apart from [`Request`](super::Request) and
//! [`Reply`](super::Reply): they never travel on the tracker's port, and a
//! tracker that receives anything else on the discovery port ignores it.
//! Same conventions as the rest of the JSON protocol: one JSON object per
//! datagram, `type` and `tid`, unknown fields ignored, a [`DecodeError`] that
//! says what was wrong.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};

use serde_json::{Map, Value};

use super::{DecodeError, DecodeErrorKind};

/// The UDP port trackers listen on for `DISCOVER`.
pub const DISCOVER_PORT: u16 = 6968;
/// The multicast group trackers join for `DISCOVER` (organisation-local scope,
/// RFC 2365: routers do not forward it off the site).
pub const DISCOVER_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 69, 69);
/// Longest discovery datagram either side reads; longer ones are malformed.
pub const MAX_DISCOVER_SIZE: usize = 1024;
/// Longest `web` URL a `TRACKER` reply (or an `OK`) may carry, in characters.
pub const MAX_WEB_CHARS: usize = 512;

/// "Is there a tracker on this LAN?", sent to the broadcast addresses and
/// the multicast group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discover {
    pub tid: u32,
}

/// A tracker's answer to [`Discover`]: where its JSON/BEP 15 port is, and
/// its web page when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerHere {
    pub tid: u32,
    /// The address peers should use as `--tracker`.
    pub tracker: SocketAddr,
    /// The tracker's web page (an `http://` URL), if it serves one.
    pub web: Option<String>,
}

fn err(tid: Option<u32>, kind: DecodeErrorKind) -> DecodeError {
    DecodeError { tid, kind }
}

/// Size, JSON, object, `type` and `tid`: the checks both messages share.
fn object<'v>(
    bytes: &[u8],
    value: &'v mut Value,
    want: &'static str,
) -> Result<(&'v Map<String, Value>, u32), DecodeError> {
    if bytes.len() > MAX_DISCOVER_SIZE {
        return Err(err(None, DecodeErrorKind::TooLarge(bytes.len())));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(err(None, DecodeErrorKind::Empty));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| err(None, DecodeErrorKind::NotUtf8(e.valid_up_to())))?;
    *value = serde_json::from_str(text)
        .map_err(|e| err(None, DecodeErrorKind::NotJson(e.to_string())))?;
    let Some(obj) = value.as_object() else {
        let found = match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        return Err(err(None, DecodeErrorKind::NotObject(found)));
    };
    let tid = match obj.get("tid") {
        None => return Err(err(None, DecodeErrorKind::MissingField("tid".into()))),
        Some(v) => match v.as_u64().and_then(|t| u32::try_from(t).ok()) {
            Some(t) => t,
            None => {
                return Err(err(
                    None,
                    DecodeErrorKind::WrongType {
                        field: "tid".into(),
                        expected: "an integer from 0 to 4294967295",
                        found: v.to_string().chars().take(20).collect(),
                    },
                ))
            }
        },
    };
    match obj.get("type").map(|t| t.as_str()) {
        None => Err(err(Some(tid), DecodeErrorKind::MissingField("type".into()))),
        Some(Some(t)) if t == want => Ok((obj, tid)),
        Some(Some(t)) => Err(err(
            Some(tid),
            DecodeErrorKind::UnknownType {
                found: t.chars().take(40).collect(),
                expected: want,
            },
        )),
        Some(None) => Err(err(
            Some(tid),
            DecodeErrorKind::WrongType {
                field: "type".into(),
                expected: "a string",
                found: "not a string".into(),
            },
        )),
    }
}

impl Discover {
    /// `{"type":"DISCOVER","tid":N}`
    pub fn encode(&self) -> Vec<u8> {
        format!("{{\"type\":\"DISCOVER\",\"tid\":{}}}", self.tid).into_bytes()
    }

    /// Decodes a datagram received on the discovery port; anything but a
    /// well-formed `DISCOVER` is an error.
    pub fn decode(bytes: &[u8]) -> Result<Discover, DecodeError> {
        let mut v = Value::Null;
        let (_, tid) = object(bytes, &mut v, "DISCOVER")?;
        Ok(Discover { tid })
    }

    /// One line for `--trace`: `DISCOVER tid=7`.
    pub fn summary(&self) -> String {
        format!("DISCOVER tid={}", self.tid)
    }
}

impl TrackerHere {
    /// `{"type":"TRACKER","tid":N,"tracker":"IP:PORT","web":null}`
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!(
            "{{\"type\":\"TRACKER\",\"tid\":{},\"tracker\":\"{}\",\"web\":",
            self.tid, self.tracker
        );
        match &self.web {
            // A string always serialises; the fallback is never taken.
            Some(w) => s.push_str(&serde_json::to_string(w).unwrap_or_else(|_| "null".into())),
            None => s.push_str("null"),
        }
        s.push('}');
        s.into_bytes()
    }

    /// Decodes a reply to `DISCOVER`. `tracker` must be `IP:PORT` with a
    /// port other than 0; `web` may be absent or null.
    pub fn decode(bytes: &[u8]) -> Result<TrackerHere, DecodeError> {
        let mut v = Value::Null;
        let (obj, tid) = object(bytes, &mut v, "TRACKER")?;
        let bad = |field: &str, problem: String| {
            err(
                Some(tid),
                DecodeErrorKind::BadValue {
                    field: field.into(),
                    problem,
                },
            )
        };
        let tracker = match obj.get("tracker") {
            None | Some(Value::Null) => {
                return Err(err(
                    Some(tid),
                    DecodeErrorKind::MissingField("tracker".into()),
                ))
            }
            Some(Value::String(s)) => match s.parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 => a,
                _ => {
                    let shown: String = s.chars().take(60).collect();
                    return Err(bad(
                        "tracker",
                        format!("must be IP:PORT with a port from 1 to 65535, found \"{shown}\""),
                    ));
                }
            },
            Some(other) => {
                return Err(err(
                    Some(tid),
                    DecodeErrorKind::WrongType {
                        field: "tracker".into(),
                        expected: "a string",
                        found: other.to_string().chars().take(20).collect(),
                    },
                ))
            }
        };
        let web = match obj.get("web") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n == 0 || n > MAX_WEB_CHARS {
                    return Err(bad(
                        "web",
                        format!("must be 1 to {MAX_WEB_CHARS} characters, found {n}"),
                    ));
                }
                if s.chars().any(char::is_control) {
                    return Err(bad("web", "must not contain control characters".into()));
                }
                Some(s.clone())
            }
            Some(other) => {
                return Err(err(
                    Some(tid),
                    DecodeErrorKind::WrongType {
                        field: "web".into(),
                        expected: "a string or null",
                        found: other.to_string().chars().take(20).collect(),
                    },
                ))
            }
        };
        Ok(TrackerHere { tid, tracker, web })
    }

    /// One line for `--trace`: `TRACKER 192.168.1.10:6969 web=none tid=7`.
    pub fn summary(&self) -> String {
        let mut s = format!("TRACKER {}", self.tracker);
        match &self.web {
            Some(w) => {
                let _ = write!(s, " web={w}");
            }
            None => s.push_str(" web=none"),
        }
        let _ = write!(s, " tid={}", self.tid);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_round_trips_and_reads_like_the_docs() {
        let d = Discover { tid: 7 };
        assert_eq!(d.encode(), br#"{"type":"DISCOVER","tid":7}"#);
        assert_eq!(Discover::decode(&d.encode()), Ok(d));
        // Unknown fields are ignored, like everywhere in the protocol.
        let d = Discover::decode(br#"{"tid":4294967295,"type":"DISCOVER","v":2}"#).unwrap();
        assert_eq!(d.tid, u32::MAX);
        assert_eq!(d.summary(), "DISCOVER tid=4294967295");
    }

    #[test]
    fn tracker_round_trips_with_and_without_web() {
        let t = TrackerHere {
            tid: 9,
            tracker: "192.168.1.10:6969".parse().unwrap(),
            web: None,
        };
        assert_eq!(
            t.encode(),
            br#"{"type":"TRACKER","tid":9,"tracker":"192.168.1.10:6969","web":null}"#
        );
        assert_eq!(TrackerHere::decode(&t.encode()), Ok(t.clone()));
        assert_eq!(t.summary(), "TRACKER 192.168.1.10:6969 web=none tid=9");
        let w = TrackerHere {
            web: Some("http://192.168.1.10:8080/\"x\"".into()),
            ..t
        };
        assert_eq!(TrackerHere::decode(&w.encode()), Ok(w.clone()));
        // `web` may be left out.
        let v6 = TrackerHere::decode(br#"{"type":"TRACKER","tid":1,"tracker":"[fe80::1]:6969"}"#)
            .unwrap();
        assert_eq!(v6.tracker, "[fe80::1]:6969".parse::<SocketAddr>().unwrap());
        assert_eq!(v6.web, None);
    }

    #[test]
    fn anything_else_is_an_error_that_says_why() {
        let e = |b: &[u8]| Discover::decode(b).unwrap_err();
        assert_eq!(e(b"").kind, DecodeErrorKind::Empty);
        assert!(matches!(e(b"\xff\xfe").kind, DecodeErrorKind::NotUtf8(0)));
        assert!(matches!(e(b"{nope").kind, DecodeErrorKind::NotJson(_)));
        assert!(matches!(
            e(b"[1]").kind,
            DecodeErrorKind::NotObject("an array")
        ));
        assert!(
            matches!(e(br#"{"type":"DISCOVER"}"#).kind, DecodeErrorKind::MissingField(ref f) if f == "tid")
        );
        assert!(matches!(
            e(br#"{"type":"DISCOVER","tid":-1}"#).kind,
            DecodeErrorKind::WrongType { .. }
        ));
        let other = e(br#"{"type":"REQUEST","tid":3,"name":"x"}"#);
        assert_eq!(other.tid, Some(3));
        assert!(matches!(other.kind, DecodeErrorKind::UnknownType { .. }));
        // A reply is not a request, and the other way round.
        let reply = br#"{"type":"TRACKER","tid":1,"tracker":"10.0.0.1:6969"}"#;
        assert!(Discover::decode(reply).is_err());
        assert!(TrackerHere::decode(br#"{"type":"DISCOVER","tid":1}"#).is_err());
        let big = format!(
            r#"{{"type":"DISCOVER","tid":1,"pad":"{}"}}"#,
            "x".repeat(2000)
        );
        assert!(matches!(
            e(big.as_bytes()).kind,
            DecodeErrorKind::TooLarge(_)
        ));

        let t = |b: &str| TrackerHere::decode(b.as_bytes()).unwrap_err().kind;
        for bad in [
            r#"{"type":"TRACKER","tid":1}"#,
            r#"{"type":"TRACKER","tid":1,"tracker":"10.0.0.1"}"#,
            r#"{"type":"TRACKER","tid":1,"tracker":"10.0.0.1:0"}"#,
            r#"{"type":"TRACKER","tid":1,"tracker":"tracker.lan:6969"}"#,
            r#"{"type":"TRACKER","tid":1,"tracker":6969}"#,
            r#"{"type":"TRACKER","tid":1,"tracker":"10.0.0.1:6969","web":5}"#,
            r#"{"type":"TRACKER","tid":1,"tracker":"10.0.0.1:6969","web":""}"#,
            r#"{"type":"TRACKER","tid":1,"tracker":"10.0.0.1:6969","web":"a\nb"}"#,
        ] {
            let k = t(bad);
            assert!(!k.to_string().is_empty(), "{bad}");
        }
    }
}
