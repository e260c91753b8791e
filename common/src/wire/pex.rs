//! The payload of BEP 11 peer exchange (`ut_pex`) messages ([`PexMsg`]): the
//! peers the sender connected to since its last message, and those it
//! dropped, as compact address lists (IPv4 in `added`/`dropped`, IPv6 in
//! `added6`/`dropped6`) with one flag byte per added peer (`added.f`,
//! `added6.f`).
//!
//! Bounded both ways: [`PexMsg::encode`] writes at most [`MAX_PEX_ADDED`]
//! added and [`MAX_PEX_DROPPED`] dropped entries, and [`PexMsg::decode`]
//! keeps at most as many (IPv4 first) and counts the rest in
//! [`PexMsg::ignored`]; a longer list is cut, not refused, since a client
//! that sends a few more than we take is no worse a peer for it. Lists
//! that are not whole entries, flags that do not match their list, wrong
//! types and bad bencode are errors.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{WireError, MAX_PEX_ADDED, MAX_PEX_DROPPED};
use crate::bencode::{self, Value};
use crate::compact;

/// `added.f` bits (BEP 11).
pub mod pex_flags {
    /// The peer prefers encrypted connections.
    pub const ENCRYPTION: u8 = 0x01;
    /// The peer is a seeder.
    pub const SEED: u8 = 0x02;
    /// The peer speaks uTP.
    pub const UTP: u8 = 0x04;
    /// The peer supports `ut_holepunch`.
    pub const HOLEPUNCH: u8 = 0x08;
    /// The sender connected to the peer: it accepts connections.
    pub const REACHABLE: u8 = 0x10;
}

/// One added peer: its listen address and its `added.f` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PexPeer {
    pub addr: SocketAddr,
    pub flags: u8,
}

/// One `ut_pex` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMsg {
    /// Peers connected since the last message, IPv4 and IPv6 together.
    pub added: Vec<PexPeer>,
    /// Peers dropped since the last message.
    pub dropped: Vec<SocketAddr>,
    /// Entries [`PexMsg::decode`] left out, past [`MAX_PEX_ADDED`] or
    /// [`MAX_PEX_DROPPED`]. [`PexMsg::encode`] does not look at it.
    pub ignored: usize,
}

const WHAT: &str = "ut_pex message";

impl PexMsg {
    /// The payload of an extended message (after the extended id byte).
    /// Every key is written, empty lists too (as libtorrent does); entries
    /// past the limits are left out.
    pub fn encode(&self) -> Vec<u8> {
        let added = &self.added[..self.added.len().min(MAX_PEX_ADDED)];
        let dropped = &self.dropped[..self.dropped.len().min(MAX_PEX_DROPPED)];
        let mut entries: Vec<(&str, Value)> = Vec::with_capacity(6);
        for (ipv6, key, flags_key, dropped_key) in [
            (false, "added", "added.f", "dropped"),
            (true, "added6", "added6.f", "dropped6"),
        ] {
            let (mut list, mut flags) = (Vec::new(), Vec::new());
            for p in added {
                if compact::push(&mut list, p.addr, ipv6) {
                    flags.push(p.flags);
                }
            }
            let mut gone = Vec::new();
            for a in dropped {
                compact::push(&mut gone, *a, ipv6);
            }
            entries.push((key, bencode::bytes(list)));
            entries.push((flags_key, bencode::bytes(flags)));
            entries.push((dropped_key, bencode::bytes(gone)));
        }
        bencode::dict(entries).encode()
    }

    /// Unknown keys are ignored; every key may be missing (an absent
    /// `added.f` means no flags).
    pub fn decode(payload: &[u8]) -> Result<PexMsg, WireError> {
        let value =
            bencode::decode(payload).map_err(|err| WireError::Bencode { what: WHAT, err })?;
        if value.as_dict().is_none() {
            return Err(WireError::NotADict(WHAT));
        }
        let mut msg = PexMsg::default();
        for (ipv6, key, flags_key, dropped_key) in [
            (false, "added", "added.f", "dropped"),
            (true, "added6", "added6.f", "dropped6"),
        ] {
            let added = list(&value, key, ipv6)?;
            let flags = match value.get(flags_key) {
                None => vec![0; added.len()],
                Some(f) => bytes(f, flags_key)?.to_vec(),
            };
            if flags.len() != added.len() {
                return Err(WireError::PexFlags {
                    key: flags_key,
                    got: flags.len(),
                    expected: added.len(),
                });
            }
            for (addr, flags) in added.into_iter().zip(flags) {
                if msg.added.len() < MAX_PEX_ADDED {
                    msg.added.push(PexPeer { addr, flags });
                } else {
                    msg.ignored += 1;
                }
            }
            for addr in list(&value, dropped_key, ipv6)? {
                if msg.dropped.len() < MAX_PEX_DROPPED {
                    msg.dropped.push(addr);
                } else {
                    msg.ignored += 1;
                }
            }
        }
        Ok(msg)
    }

    /// One line for `--trace`, e.g. `PEX added 2: 10.0.0.1:6881 (seed),
    /// [2001:db8::1]:6881; dropped 1: 10.0.0.3:6881`. At most
    /// [`SUMMARY_ADDRS`] addresses of each list are named.
    pub fn summary(&self) -> String {
        let mut s = format!("PEX added {}", self.added.len());
        let named = self.added.iter().take(SUMMARY_ADDRS);
        for (i, p) in named.enumerate() {
            s.push_str(if i == 0 { ": " } else { ", " });
            let _ = write!(s, "{}", p.addr);
            if p.flags & pex_flags::SEED != 0 {
                s.push_str(" (seed)");
            }
        }
        if self.added.len() > SUMMARY_ADDRS {
            s.push_str(", …");
        }
        let _ = write!(s, "; dropped {}", self.dropped.len());
        for (i, a) in self.dropped.iter().take(SUMMARY_ADDRS).enumerate() {
            s.push_str(if i == 0 { ": " } else { ", " });
            let _ = write!(s, "{a}");
        }
        if self.dropped.len() > SUMMARY_ADDRS {
            s.push_str(", …");
        }
        if self.ignored > 0 {
            let _ = write!(s, " ({} more ignored)", self.ignored);
        }
        s
    }
}

/// Addresses named per list in [`PexMsg::summary`].
pub const SUMMARY_ADDRS: usize = 8;

fn bytes<'a>(v: &'a Value, key: &str) -> Result<&'a [u8], WireError> {
    v.as_bytes().ok_or_else(|| WireError::FieldType {
        what: WHAT,
        key: key.to_string(),
        expected: "a byte string",
    })
}

/// The compact list under `key` (empty when absent).
fn list(dict: &Value, key: &'static str, ipv6: bool) -> Result<Vec<SocketAddr>, WireError> {
    let Some(v) = dict.get(key) else {
        return Ok(Vec::new());
    };
    let b = bytes(v, key)?;
    compact::decode(b, ipv6).map_err(|extra| WireError::PexList {
        key,
        len: b.len(),
        unit: compact::entry_len(ipv6),
        extra,
    })
}
