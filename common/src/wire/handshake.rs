//! The BEP 3 handshake: the fixed 68 bytes each side sends first (protocol
//! string, reserved bits, info hash, peer id), and the reserved bit that
//! announces the BEP 10 extension protocol.

use super::{WireError, HANDSHAKE_LEN, PROTOCOL};
use crate::hex;
use crate::metainfo::InfoHash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
}

/// BEP 10: bit 0x10 of reserved byte 5 announces the extension protocol.
const EXTENSION_BYTE: usize = 5;
const EXTENSION_BIT: u8 = 0x10;

impl Handshake {
    /// A handshake announcing the extension protocol (reserved bit 0x10 of byte 5).
    pub fn new(info_hash: InfoHash, peer_id: [u8; 20]) -> Handshake {
        let mut reserved = [0u8; 8];
        reserved[EXTENSION_BYTE] |= EXTENSION_BIT;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PROTOCOL.len() as u8;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }
    /// Rejects a wrong protocol string length or name. Reserved bits are kept
    /// as sent: peers set bits for extensions we do not know.
    pub fn decode(buf: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
        if buf[0] as usize != PROTOCOL.len() {
            return Err(WireError::BadProtocolLength(buf[0]));
        }
        if &buf[1..20] != PROTOCOL {
            return Err(WireError::BadProtocol);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&buf[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&buf[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&buf[48..68]);
        Ok(Handshake {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id,
        })
    }
    pub fn supports_extensions(&self) -> bool {
        self.reserved[EXTENSION_BYTE] & EXTENSION_BIT != 0
    }
    /// One line for `--trace`, e.g.
    /// `HANDSHAKE info_hash=0123abcd… peer_id=-MN0100-… (extensions)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "HANDSHAKE info_hash={}… peer_id={}",
            hex::encode(&self.info_hash.0[..4]),
            peer_id_prefix(&self.peer_id)
        );
        if self.supports_extensions() {
            s.push_str(" (extensions)");
        }
        s
    }
}

/// A peer id for people (logs, pages), as Wireshark shows one: the text when
/// every byte is printable ASCII; otherwise the printable client prefix (an
/// Azureus-style `-XX0000-` tag, or the printable bytes it starts with) and
/// the rest in hex, e.g. `-CD0303-40e1a424f9e1377260`. Never a raw byte.
pub fn peer_id_display(peer_id: &[u8; 20]) -> String {
    let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ';
    if peer_id.iter().all(printable) {
        return String::from_utf8_lossy(peer_id).into_owned();
    }
    let azureus = peer_id[0] == b'-' && peer_id[7] == b'-' && peer_id[1..7].iter().all(printable);
    let cut = if azureus {
        8
    } else {
        peer_id.iter().take_while(|b| printable(b)).count()
    };
    let (head, rest) = peer_id.split_at(cut);
    format!("{}{}", String::from_utf8_lossy(head), hex::encode(rest))
}

/// Most clients start the peer id with a readable tag such as `-MN0100-` and
/// fill the rest with random bytes; show the tag, or hex if there is none.
fn peer_id_prefix(peer_id: &[u8; 20]) -> String {
    let tag = &peer_id[..8];
    if tag.iter().all(|b| b.is_ascii_graphic()) {
        format!("{}…", String::from_utf8_lossy(tag))
    } else {
        format!("{}…", hex::encode(tag))
    }
}
