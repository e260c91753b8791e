//! `PeerId`: the tracker's compact copy of a peer's id string.
//!
//! Every registered peer stores one per swarm it is in, so the common case (ids
//! of up to 22 bytes, such as the 20-character `-MN0100-…` ids) is kept inline
//! in 24 bytes with no heap allocation; longer ids (JSON allows 64 characters)
//! go to the heap.

use std::fmt;
use std::hash::{Hash, Hasher};

use minitorrent_common::percent;
use minitorrent_common::udp_tracker::peer_id_text;

const INLINE: usize = 22;

#[derive(Clone)]
pub struct PeerId(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

impl PeerId {
    pub fn new(s: &str) -> PeerId {
        if s.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            PeerId(Repr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            PeerId(Repr::Heap(s.into()))
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `PeerId::new` is the only constructor and copies a whole
            // &str, so these bytes are valid UTF-8. (Validating on every read
            // showed up in profiles: a reply lists up to 50 ids.)
            Repr::Inline { len, buf } => unsafe {
                std::str::from_utf8_unchecked(&buf[..usize::from(*len)])
            },
            Repr::Heap(s) => s,
        }
    }
}

impl PartialEq for PeerId {
    fn eq(&self, other: &PeerId) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for PeerId {}

impl Hash for PeerId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A BEP 15 announcer's 20-byte peer id as the JSON protocol shows it (see
/// [`peer_id_text`]: percent-encoding, so `-XX1234-…` ids read as themselves
/// and equal a JSON peer that uses the same 20 characters).
pub fn peer_id_from_bytes(bytes: &[u8; 20]) -> PeerId {
    if bytes.iter().all(|&b| percent::is_unreserved(b)) {
        // All ASCII, so valid UTF-8; skip building a String.
        if let Ok(s) = std::str::from_utf8(bytes) {
            return PeerId::new(s);
        }
    }
    PeerId::new(&peer_id_text(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_compare_by_content() {
        let short = PeerId::new("-MN0100-abcdefghijkl");
        assert_eq!(short.as_str(), "-MN0100-abcdefghijkl");
        let long = PeerId::new(&"é".repeat(30));
        assert_eq!(long.as_str(), "é".repeat(30));
        assert_eq!(PeerId::new("x"), PeerId::new("x"));
        assert_ne!(PeerId::new("x"), PeerId::new("y"));
        assert_eq!(std::mem::size_of::<PeerId>(), 24);
    }

    #[test]
    fn bep15_ids_are_percent_encoded_only_when_needed() {
        assert_eq!(
            peer_id_from_bytes(b"-qB4650-abcdefghijkl").as_str(),
            "-qB4650-abcdefghijkl"
        );
        let mut raw = *b"-TR3000-abcdefghijkl";
        raw[8] = 0;
        raw[9] = 0xff;
        raw[10] = b'%';
        assert_eq!(
            peer_id_from_bytes(&raw).as_str(),
            "-TR3000-%00%FF%25defghijkl"
        );
        assert!(peer_id_from_bytes(&[0xAB; 20]).as_str().len() == 60);
    }
}
