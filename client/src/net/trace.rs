//! `--trace`: one line per peer message or tracker datagram, on stderr, with
//! wall-clock time (UTC), direction and both ends; and one line per piece
//! checked (SHA-1 ok or mismatch). When tracing is off the only
//! cost is one relaxed atomic load per message, and nothing is formatted.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static ON: AtomicBool = AtomicBool::new(false);

pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// `HH:MM:SS.mmm` (UTC).
pub fn clock() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    minitorrent_common::trace::hms_millis(d)
}

fn emit(line: String) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// A peer message. `from` → `to`; `what` is the codec's summary.
pub fn peer(from: SocketAddr, to: SocketAddr, what: impl FnOnce() -> String) {
    if enabled() {
        emit(format!("{} peer {from} → {to}  {}", clock(), what()));
    }
}

/// Something a peer decided about what came over the wire (a piece's SHA-1
/// verdict), not a message: `at` is our end of the connection.
pub fn note(at: SocketAddr, what: impl FnOnce() -> String) {
    if enabled() {
        emit(format!("{} peer {at}  {}", clock(), what()));
    }
}

/// The trace text of a BITFIELD: how many pieces the peer has out of how
/// many the torrent has, e.g. `BITFIELD 32/32 pieces`. Before the metadata
/// is known (a download by name or info hash) the piece count is not, so the
/// line gives the bits set and the message's size instead.
pub fn bitfield(bits: &[u8], pieces: Option<usize>) -> String {
    match pieces {
        Some(n) => {
            // Only the first `n` bits are pieces; the spare bits at the end
            // of the last byte are not counted, whatever a peer put there.
            let full = bits.iter().take(n / 8).map(|b| b.count_ones() as usize);
            let last = match (n % 8, bits.get(n / 8)) {
                (0, _) | (_, None) => 0,
                (r, Some(b)) => (b >> (8 - r)).count_ones() as usize,
            };
            let have = full.sum::<usize>() + last;
            format!("BITFIELD {have}/{n} {}", plural(n, "piece", "pieces"))
        }
        None => {
            let set: usize = bits.iter().map(|b| b.count_ones() as usize).sum();
            format!(
                "BITFIELD {set} {} ({} {}; the piece count comes with the metadata)",
                plural(set, "piece", "pieces"),
                bits.len(),
                plural(bits.len(), "byte", "bytes")
            )
        }
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A tracker datagram.
pub fn tracker(from: SocketAddr, to: SocketAddr, what: impl FnOnce() -> String) {
    if enabled() {
        emit(format!("{} tracker {from} → {to}  {}", clock(), what()));
    }
}

/// An HTTP tracker request (`sent`) or its reply, with the tracker's URL
/// (without its query) for an address.
pub fn tracker_http(url: &str, sent: bool, what: impl FnOnce() -> String) {
    if enabled() {
        let arrow = if sent { "→" } else { "←" };
        emit(format!("{} tracker {arrow} {url}  {}", clock(), what()));
    }
}

#[cfg(test)]
mod tests {
    use super::bitfield;

    #[test]
    fn a_bitfield_reads_as_pieces_had_out_of_pieces_in_all() {
        assert_eq!(bitfield(&[0xff; 4], Some(32)), "BITFIELD 32/32 pieces");
        assert_eq!(bitfield(&[0; 4], Some(32)), "BITFIELD 0/32 pieces");
        // 10 pieces: 8 in the first byte, 2 in the top bits of the second.
        assert_eq!(bitfield(&[0xf0, 0xc0], Some(10)), "BITFIELD 6/10 pieces");
        assert_eq!(bitfield(&[0x80], Some(1)), "BITFIELD 1/1 piece");
    }

    #[test]
    fn spare_bits_and_missing_bytes_are_not_counted() {
        // Spare bits set (a malformed bitfield the connection will refuse).
        assert_eq!(bitfield(&[0xff, 0xff], Some(10)), "BITFIELD 10/10 pieces");
        // Too short: the bytes that are there count, nothing else.
        assert_eq!(bitfield(&[0xff], Some(10)), "BITFIELD 8/10 pieces");
        assert_eq!(bitfield(&[], Some(10)), "BITFIELD 0/10 pieces");
    }

    #[test]
    fn without_the_metadata_the_bits_set_are_counted() {
        assert_eq!(
            bitfield(&[0xff; 4], None),
            "BITFIELD 32 pieces (4 bytes; the piece count comes with the metadata)"
        );
        assert_eq!(
            bitfield(&[0x80], None),
            "BITFIELD 1 piece (1 byte; the piece count comes with the metadata)"
        );
    }
}
