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

/// A tracker datagram.
pub fn tracker(from: SocketAddr, to: SocketAddr, what: impl FnOnce() -> String) {
    if enabled() {
        emit(format!("{} tracker {from} → {to}  {}", clock(), what()));
    }
}
