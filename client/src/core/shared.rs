//! Plain data shared by a torrent's coordinator and its connection threads:
//! the verified-piece set ([`HaveSet`]), what is known once the info
//! dictionary is ([`Meta`]), and the limits both sides must agree on.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use minitorrent_common::metainfo::Info;

use crate::core::geometry::Geometry;

/// The set of verified pieces, readable by every connection thread without a
/// lock. Only the coordinator sets bits, and only after the piece is written.
#[derive(Debug)]
pub struct HaveSet {
    words: Vec<AtomicU64>,
    len: usize,
    count: AtomicUsize,
}

impl HaveSet {
    pub fn new(have: &[bool]) -> HaveSet {
        let words: Vec<AtomicU64> = (0..have.len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        let s = HaveSet {
            words,
            len: have.len(),
            count: AtomicUsize::new(0),
        };
        for (i, h) in have.iter().enumerate() {
            if *h {
                s.set(i);
            }
        }
        s
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64].load(Ordering::Acquire) & (1 << (i % 64)) != 0
    }
    /// Returns true if the bit was newly set.
    pub fn set(&self, i: usize) -> bool {
        if i >= self.len {
            return false;
        }
        let old = self.words[i / 64].fetch_or(1 << (i % 64), Ordering::AcqRel);
        let new = old & (1 << (i % 64)) == 0;
        if new {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        new
    }
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
    /// BEP 3 bitfield bytes (piece 0 is the high bit of byte 0).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len.div_ceil(8)];
        for i in 0..self.len {
            if self.get(i) {
                out[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out
    }
}

/// Everything known once the info dictionary is known (the storage that
/// holds the data is the I/O layer's: `net::shared::MetaCtx`).
#[derive(Debug)]
pub struct Meta {
    pub info: Info,
    pub info_bytes: Vec<u8>,
    pub geometry: Geometry,
    pub have: HaveSet,
}

/// Our client's prefix in the peer id (Azureus style) and in `v` of the
/// extension handshake.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-MN0100-";
pub const CLIENT_NAME: &str = concat!("minitorrent ", env!("CARGO_PKG_VERSION"));

/// A fresh peer id: `-MN0100-` followed by 12 random alphanumerics.
pub fn new_peer_id() -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(PEER_ID_PREFIX);
    for b in &mut id[8..] {
        *b = fastrand::alphanumeric() as u8;
    }
    id
}

/// The peer id as text for the tracker; ours is always ASCII, a foreign one
/// is shown lossily.
pub fn peer_id_str(id: &[u8; 20]) -> String {
    String::from_utf8_lossy(id).into_owned()
}

/// The client a peer id names (Azureus-style `-XXvvvv-` or Shad0w-style),
/// as in the peer lists of BitTorrent programs: `libtorrent 2.0.8`; the
/// printable prefix for a client not in the list, and `unknown` for an id
/// without one.
pub fn client_name(id: &[u8; 20]) -> String {
    if id.starts_with(PEER_ID_PREFIX) {
        return CLIENT_NAME.to_string();
    }
    if id[0] == b'-' && id[7] == b'-' && id[1..7].iter().all(u8::is_ascii_alphanumeric) {
        let code = std::str::from_utf8(&id[1..3]).unwrap_or("??");
        let v: Vec<char> = id[3..7].iter().map(|&b| b as char).collect();
        let name = match code {
            "lt" => Some("libtorrent"),
            "LT" => Some("libtorrent (rakshasa)"),
            "qB" => Some("qBittorrent"),
            "TR" => Some("Transmission"),
            "UT" => Some("\u{b5}Torrent"),
            "DE" => Some("Deluge"),
            "AZ" => Some("Vuze"),
            "BT" => Some("BitTorrent"),
            "KT" => Some("KTorrent"),
            "rT" => Some("rTorrent"),
            "RB" => Some("rqbit"),
            "BI" => Some("BiglyBT"),
            "WW" => Some("WebTorrent"),
            _ => None,
        };
        // Versions are digits (hex-ish letters for some clients): 2.0.8.0.
        let version = format!("{}.{}.{}", v[0], v[1], v[2]);
        return match name {
            Some(n) => format!("{n} {version}"),
            None => format!("unknown (-{}{}-)", code, v.iter().collect::<String>()),
        };
    }
    if id.starts_with(b"A2-") {
        return "aria2".to_string();
    }
    let prefix: String = id
        .iter()
        .take_while(|b| b.is_ascii_graphic())
        .take(8)
        .map(|&b| b as char)
        .collect();
    if prefix.is_empty() {
        "unknown".to_string()
    } else {
        format!("unknown ({prefix})")
    }
}

/// A seed for a torrent's random choices, taken from its info hash (so a
/// test that scripts events sees the same choices every run).
pub fn seed_of(info_hash: &[u8; 20]) -> u64 {
    info_hash[..8]
        .iter()
        .fold(0u64, |h, b| (h << 8) | u64::from(*b))
}

/// Unchoked peers per torrent (upload slots).
pub const MAX_UNCHOKED: usize = 16;
/// The torrent's upload slots: at most [`MAX_UNCHOKED`] connections
/// unchoke their peer at once. Shared by the connection threads, lock-free.
#[derive(Debug, Default)]
pub struct UploadSlots(AtomicUsize);

impl UploadSlots {
    /// Takes a slot if one is free.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_UNCHOKED).then_some(n + 1)
            })
            .is_ok()
    }
    /// Gives a slot back.
    pub fn give(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
    pub fn taken(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Bytes of request pipeline per peer at most.
const PIPELINE_BYTES: u64 = 4 << 20;
/// Memory for pieces being assembled per connection, roughly.
const PIECE_MEMORY: u64 = 6 << 20;
/// What we ask of a peer at once covers this long at its measured rate,
/// plus two of its round trips, plus [`PIPELINE_FLOOR`]: enough to keep its
/// link busy across our reaction to a finished piece, short enough that a
/// piece asked of a busy peer is not stuck behind others while another
/// peer that has it could send it. (Measured on an emulated LAN: 60 ms
/// left every leecher's link busier than 400 ms did; see
/// docs/BENCHMARKS.md.)
pub const PIPELINE_TIME: Duration = Duration::from_millis(60);
/// Bytes asked of a peer at once whatever its rate.
const PIPELINE_FLOOR: u64 = 32 << 10;
/// Bytes asked of a peer before its rate is measured (its first
/// [`RateMeter::WINDOW`](crate::core::swarm::peers::RateMeter::WINDOW)).
const PIPELINE_START: u64 = 256 << 10;

/// Pieces one connection holds at most: enough for a deep request pipeline,
/// bounded in memory (each is assembled in a buffer of its own).
pub fn pieces_per_peer(piece_len: u64) -> usize {
    let plen = piece_len.max(1);
    let want = PIPELINE_BYTES.div_ceil(plen) + 1;
    let mem = (PIECE_MEMORY / plen).max(1);
    want.min(mem).clamp(1, 64) as usize
}

/// Bytes to have asked of a peer whose pieces arrive at `rate` bytes/s
/// (`None`: not measured yet) over a path of round-trip time `rtt`:
/// `rate × (PIPELINE_TIME + 2 rtt) + PIPELINE_FLOOR`, or
/// [`PIPELINE_START`] before it is measured.
pub fn pipeline_bytes(rate: Option<f64>, rtt: Option<Duration>) -> u64 {
    let span = PIPELINE_TIME + 2 * rtt.unwrap_or(Duration::ZERO).min(Duration::from_secs(2));
    match rate {
        None => PIPELINE_START,
        Some(r) => {
            let b = r.max(0.0) * span.as_secs_f64();
            PIPELINE_FLOOR.saturating_add(b.min(u64::MAX as f64 / 2.0) as u64)
        }
    }
}

/// Pieces to hold for a peer: [`pipeline_bytes`] of them, at least 2 (one
/// arriving while the next is asked for), at most [`pieces_per_peer`].
pub fn pieces_for_rate(piece_len: u64, rate: Option<f64>, rtt: Option<Duration>) -> usize {
    let plen = piece_len.max(1);
    let max = pieces_per_peer(plen);
    (pipeline_bytes(rate, rtt).div_ceil(plen) as usize).clamp(2.min(max), max)
}

#[cfg(test)]
mod tests {

    #[test]
    fn client_names() {
        let id = |s: &[u8]| {
            let mut a = [b'x'; 20];
            a[..s.len()].copy_from_slice(s);
            a
        };
        assert_eq!(client_name(&new_peer_id()), CLIENT_NAME);
        assert_eq!(client_name(&id(b"-lt2080-")), "libtorrent 2.0.8");
        assert_eq!(client_name(&id(b"-qB4630-")), "qBittorrent 4.6.3");
        assert_eq!(client_name(&id(b"-ZZ1234-")), "unknown (-ZZ1234-)");
        assert_eq!(client_name(&id(b"A2-1-37-0-")), "aria2");
        assert_eq!(client_name(&[0xff; 20]), "unknown");
        assert_eq!(client_name(&id(b"M7-2-0--\xff")), "unknown (M7-2-0--)");
    }

    use super::*;

    #[test]
    fn upload_slots_are_handed_out_and_taken_back() {
        let slots = UploadSlots::default();
        for _ in 0..MAX_UNCHOKED {
            assert!(slots.take());
        }
        assert!(!slots.take(), "a 17th peer waits");
        assert_eq!(slots.taken(), MAX_UNCHOKED);
        slots.give();
        assert!(slots.take(), "a freed slot goes to the next peer");
        for _ in 0..MAX_UNCHOKED + 5 {
            slots.give();
        }
        assert_eq!(slots.taken(), 0, "giving back never goes below zero");
        assert!(slots.take());
    }

    #[test]
    fn pieces_per_peer_is_bounded() {
        assert_eq!(pieces_per_peer(0), 64);
        assert!(pieces_per_peer(32 << 20) >= 1);
        assert!(pieces_per_peer(16 << 10) <= 64);
    }

    #[test]
    fn pieces_for_rate_follow_the_rate_and_round_trip_within_bounds() {
        let kib = 1024u64;
        let ms = Duration::from_millis;
        // Unmeasured: 256 KiB.
        assert_eq!(pieces_for_rate(32 * kib, None, None), 8);
        // Measured very slow: 2 pieces (the floor is less).
        assert_eq!(pieces_for_rate(32 * kib, Some(1.0), None), 2);
        assert_eq!(pieces_for_rate(8 * kib, Some(1.0), None), 4);
        // 5 MB/s for 60 ms = 300 kB, plus 32 KiB: 11 pieces of 32 KiB.
        assert_eq!(pieces_for_rate(32 * kib, Some(5e6), None), 11);
        // A 20 ms round trip adds 40 ms of the rate: 200 kB more.
        assert_eq!(pieces_for_rate(32 * kib, Some(5e6), Some(ms(20))), 17);
        // Never fewer than 2, never more than pieces_per_peer.
        assert_eq!(pieces_for_rate(1024 * kib, Some(1.0), None), 2);
        assert_eq!(
            pieces_for_rate(16 * kib, Some(1e12), None),
            pieces_per_peer(16 * kib)
        );
        assert_eq!(
            pieces_for_rate(32 << 20, Some(1e12), Some(ms(3000))),
            pieces_per_peer(32 << 20)
        );
        assert_eq!(pieces_for_rate(32 * kib, Some(f64::NAN), None), 2);
        assert_eq!(pieces_for_rate(32 * kib, Some(-5.0), None), 2);
    }
}
