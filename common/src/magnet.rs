//! Magnet links: `magnet:?xt=urn:btih:<40 hex or 32 base32>&dn=<name>&tr=<tracker>`.
//!
//! Parsing accepts what real clients produce: the info hash in hex (either case)
//! or base32, percent-encoded values (and `+` as a space in `dn`), any number of
//! `tr` (also the numbered `tr.1` form) and `x.pe` peers, several `xt` as long as
//! exactly one v1 hash is among them (hybrid links also carry `urn:btmh`), and
//! unknown parameters, which are ignored.

use crate::hex::{self, HexError};
use crate::metainfo::{shorten, InfoHash, Metainfo};
use crate::percent;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    pub name: Option<String>,
    pub trackers: Vec<String>,
    /// `x.pe` peer addresses (`host:port`).
    pub peers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet URI (expected 'magnet:?xt=urn:btih:...'): '{0}'")]
    NotMagnet(String),
    #[error("magnet link has no xt (exact topic) parameter with the info hash")]
    MissingXt,
    #[error("unsupported xt '{0}': only urn:btih (a BitTorrent v1 info hash) is supported")]
    UnsupportedXt(String),
    #[error("magnet link has two different urn:btih info hashes")]
    ConflictingXt,
    #[error("btih info hash '{0}' has {len} characters; expected 40 hex or 32 base32", len = .0.chars().count())]
    BadHashLength(String),
    #[error("btih info hash '{hash}' contains '{ch}', which is not a hex digit")]
    BadHex { hash: String, ch: char },
    #[error("btih info hash '{hash}' contains '{ch}', which is not a base32 character (A-Z, 2-7)")]
    BadBase32 { hash: String, ch: char },
    #[error("bad percent-encoding in magnet parameter '{param}': '%' must be followed by two hex digits")]
    BadPercent { param: String },
    #[error("magnet parameter '{param}' is not UTF-8 after percent-decoding")]
    NotUtf8 { param: String },
}

impl Magnet {
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        let uri = uri.trim();
        let query = uri
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("magnet:?"))
            .map(|_| &uri[8..])
            .ok_or_else(|| MagnetError::NotMagnet(shorten(uri)))?;

        let mut info_hash: Option<InfoHash> = None;
        let mut unsupported_xt: Option<String> = None;
        let mut name = None;
        let mut trackers = Vec::new();
        let mut peers = Vec::new();

        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key, raw_key, false)?;
            match key.as_str() {
                "xt" => {
                    let xt = decode(raw_value, "xt", false)?;
                    match strip_prefix_ignore_case(&xt, "urn:btih:") {
                        Some(h) => {
                            let h = parse_btih(h)?;
                            match info_hash {
                                Some(prev) if prev != h => return Err(MagnetError::ConflictingXt),
                                _ => info_hash = Some(h),
                            }
                        }
                        None => {
                            unsupported_xt.get_or_insert(xt);
                        }
                    }
                }
                "dn" => name = Some(decode(raw_value, "dn", true)?),
                "x.pe" => peers.push(decode(raw_value, "x.pe", false)?),
                k if k == "tr" || is_numbered(k, "tr.") => {
                    trackers.push(decode(raw_value, k, false)?)
                }
                _ => {}
            }
        }
        let info_hash = match (info_hash, unsupported_xt) {
            (Some(h), _) => h,
            (None, Some(xt)) => return Err(MagnetError::UnsupportedXt(shorten(&xt))),
            (None, None) => return Err(MagnetError::MissingXt),
        };
        Ok(Magnet {
            info_hash,
            name,
            trackers,
            peers,
        })
    }

    /// The link, with `dn` and `tr` URL-encoded.
    pub fn to_uri(&self) -> String {
        let mut s = format!("magnet:?xt=urn:btih:{}", self.info_hash.to_hex());
        if let Some(n) = &self.name {
            s.push_str("&dn=");
            encode_into(n, &mut s);
        }
        for t in &self.trackers {
            s.push_str("&tr=");
            encode_into(t, &mut s);
        }
        for p in &self.peers {
            s.push_str("&x.pe=");
            encode_into(p, &mut s);
        }
        s
    }

    /// A link to the torrent: its info hash, name and every tracker it names
    /// (`announce` first, then `announce-list`, without repeats).
    pub fn from_metainfo(m: &Metainfo) -> Magnet {
        let mut trackers: Vec<String> = Vec::new();
        for t in m.announce.iter().chain(m.announce_list.iter().flatten()) {
            if !trackers.contains(t) {
                trackers.push(t.clone());
            }
        }
        Magnet {
            info_hash: m.info_hash,
            name: Some(m.info.name.clone()),
            trackers,
            peers: Vec::new(),
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

fn is_numbered(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_btih(h: &str) -> Result<InfoHash, MagnetError> {
    let b = h.as_bytes();
    let mut out = [0u8; 20];
    match b.len() {
        40 => {
            out = hex::decode_20(h).map_err(|e| match e {
                HexError::Digit { byte, .. } => MagnetError::BadHex {
                    hash: shorten(h),
                    ch: byte as char,
                },
                HexError::Length(_) => MagnetError::BadHashLength(shorten(h)),
            })?;
        }
        32 => {
            // RFC 4648 base32: 32 characters × 5 bits = exactly 160 bits.
            let mut acc: u64 = 0;
            let mut bits = 0;
            let mut i = 0;
            for &c in b {
                let v = match c {
                    b'A'..=b'Z' => c - b'A',
                    b'a'..=b'z' => c - b'a',
                    b'2'..=b'7' => c - b'2' + 26,
                    _ => {
                        return Err(MagnetError::BadBase32 {
                            hash: shorten(h),
                            ch: c as char,
                        })
                    }
                };
                acc = acc << 5 | u64::from(v);
                bits += 5;
                if bits >= 8 {
                    bits -= 8;
                    out[i] = (acc >> bits) as u8;
                    i += 1;
                }
            }
        }
        _ => return Err(MagnetError::BadHashLength(shorten(h))),
    }
    Ok(InfoHash(out))
}

/// Percent-decodes `raw`; with `plus_is_space`, `+` becomes a space (form
/// encoding, which some clients use for `dn`).
fn decode(raw: &str, param: &str, plus_is_space: bool) -> Result<String, MagnetError> {
    let out =
        percent::decode(raw.as_bytes(), plus_is_space).map_err(|_| MagnetError::BadPercent {
            param: shorten(param),
        })?;
    String::from_utf8(out).map_err(|_| MagnetError::NotUtf8 {
        param: shorten(param),
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_into(s: &str, out: &mut String) {
    percent::encode_into(s.as_bytes(), out)
}
