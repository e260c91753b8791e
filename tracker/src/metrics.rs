//! Counters of the UDP side for `/metrics`: datagrams by protocol and type,
//! replies by type, bad and dropped datagrams. Each worker thread owns one
//! [`WorkerCounters`] (its own cache lines, written by that thread alone, so
//! counting costs a few uncontended relaxed additions per datagram); the
//! web server sums them all when asked ([`UdpMetrics::snapshot`]).
//!
//! The type of a datagram is read from its bytes without decoding it again:
//! a BEP 15 request's action field, a JSON request's `"type"` key (the first
//! one found), and the reply's type, which the tracker's own encoder always
//! writes first (`{"type":"OK"…`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Every counter, in the order of [`NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    Bep15Connect,
    Bep15Announce,
    Bep15Scrape,
    Bep15OtherRequest,
    Bep15ReplyConnect,
    Bep15ReplyAnnounce,
    Bep15ReplyScrape,
    Bep15ReplyError,
    Bep15Dropped,
    JsonRegister,
    JsonRequest,
    JsonSearch,
    JsonHeartbeat,
    JsonExit,
    JsonStats,
    JsonOtherRequest,
    JsonReplyOk,
    JsonReplyPeers,
    JsonReplyFiles,
    JsonReplyError,
    JsonBadRequest,
}

const COUNT: usize = Counter::JsonBadRequest as usize + 1;

/// (metric, protocol, type) of each counter, in [`Counter`] order.
pub const NAMES: [(&str, &str, &str); COUNT] = [
    ("requests", "bep15", "connect"),
    ("requests", "bep15", "announce"),
    ("requests", "bep15", "scrape"),
    ("requests", "bep15", "other"),
    ("replies", "bep15", "connect"),
    ("replies", "bep15", "announce"),
    ("replies", "bep15", "scrape"),
    ("replies", "bep15", "error"),
    ("dropped", "bep15", ""),
    ("requests", "json", "REGISTER"),
    ("requests", "json", "REQUEST"),
    ("requests", "json", "SEARCH"),
    ("requests", "json", "HEARTBEAT"),
    ("requests", "json", "EXIT"),
    ("requests", "json", "STATS"),
    ("requests", "json", "other"),
    ("replies", "json", "OK"),
    ("replies", "json", "PEERS"),
    ("replies", "json", "FILES"),
    ("replies", "json", "ERROR"),
    ("bad", "json", ""),
];

/// One worker's counters, alone on their cache lines.
#[repr(align(128))]
pub struct WorkerCounters {
    c: [AtomicU64; COUNT],
}

impl Default for WorkerCounters {
    fn default() -> WorkerCounters {
        WorkerCounters {
            c: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WorkerCounters {
    #[inline]
    pub fn add(&self, c: Counter) {
        // One writer per worker: a relaxed add on a line nobody else writes.
        self.c[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one datagram and its reply (`None`: nothing was sent).
    #[inline]
    pub fn record(&self, data: &[u8], reply: Option<&[u8]>) {
        if looks_like_bep15(data) {
            self.add(match data[11] {
                0 => Counter::Bep15Connect,
                1 => Counter::Bep15Announce,
                2 => Counter::Bep15Scrape,
                _ => Counter::Bep15OtherRequest,
            });
            match reply {
                None => self.add(Counter::Bep15Dropped),
                Some(r) if r.len() >= 4 => self.add(match r[3] {
                    0 => Counter::Bep15ReplyConnect,
                    1 => Counter::Bep15ReplyAnnounce,
                    2 => Counter::Bep15ReplyScrape,
                    _ => Counter::Bep15ReplyError,
                }),
                Some(_) => {}
            }
            return;
        }
        self.add(match json_type(data) {
            Some(b"REGISTER") => Counter::JsonRegister,
            Some(b"REQUEST") => Counter::JsonRequest,
            Some(b"SEARCH") => Counter::JsonSearch,
            Some(b"HEARTBEAT") => Counter::JsonHeartbeat,
            Some(b"EXIT") => Counter::JsonExit,
            Some(b"STATS") => Counter::JsonStats,
            _ => Counter::JsonOtherRequest,
        });
        let Some(r) = reply else { return };
        // The tracker's encoder writes `{"type":"` first, always.
        match r.get(9) {
            Some(b'O') => self.add(Counter::JsonReplyOk),
            Some(b'P') => self.add(Counter::JsonReplyPeers),
            Some(b'F') => self.add(Counter::JsonReplyFiles),
            Some(b'E') => {
                self.add(Counter::JsonReplyError);
                if find(r, b"\"code\":\"bad_request\"").is_some() {
                    self.add(Counter::JsonBadRequest);
                }
            }
            _ => {}
        }
    }
}

/// The same test as the handler's: at least 16 bytes, not `{`, an action
/// (bytes 8–11) of 0–3.
#[inline]
fn looks_like_bep15(d: &[u8]) -> bool {
    d.len() >= 16 && d[0] != b'{' && d[8..11] == [0, 0, 0] && d[11] <= 3
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of the first `"type"` key of a JSON datagram, when it is a
/// short string.
fn json_type(d: &[u8]) -> Option<&[u8]> {
    let mut from = 0;
    while let Some(i) = find(&d[from..], b"\"type\"") {
        let mut j = from + i + 6;
        while d.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        if d.get(j) != Some(&b':') {
            from += i + 6;
            continue;
        }
        j += 1;
        while d.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        if d.get(j) != Some(&b'"') {
            return None;
        }
        let rest = &d[j + 1..];
        let end = rest.iter().take(16).position(|&b| b == b'"')?;
        return Some(&rest[..end]);
    }
    None
}

/// All workers' counters, for the web server.
#[derive(Clone, Default)]
pub struct UdpMetrics {
    workers: Vec<Arc<WorkerCounters>>,
}

impl UdpMetrics {
    pub fn new(workers: usize) -> UdpMetrics {
        UdpMetrics {
            workers: (0..workers)
                .map(|_| Arc::new(WorkerCounters::default()))
                .collect(),
        }
    }

    /// Worker `i`'s counters.
    pub fn worker(&self, i: usize) -> Option<Arc<WorkerCounters>> {
        self.workers.get(i).cloned()
    }

    /// Every counter summed over the workers, in [`NAMES`] order.
    pub fn snapshot(&self) -> [u64; COUNT] {
        let mut out = [0u64; COUNT];
        for w in &self.workers {
            for (o, c) in out.iter_mut().zip(w.c.iter()) {
                *o += c.load(Ordering::Relaxed);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(data: &[u8], reply: Option<&[u8]>) -> [u64; COUNT] {
        let m = UdpMetrics::new(1);
        m.worker(0).unwrap().record(data, reply);
        m.snapshot()
    }

    #[test]
    fn json_requests_and_replies_by_type() {
        let c = counts(
            br#"{"tid":1, "type" : "SEARCH","query":"type"}"#,
            Some(br#"{"type":"FILES","tid":1,"files":[]}"#),
        );
        assert_eq!(c[Counter::JsonSearch as usize], 1);
        assert_eq!(c[Counter::JsonReplyFiles as usize], 1);
        let c = counts(
            b"garbage",
            Some(br#"{"type":"ERROR","tid":null,"code":"bad_request","message":"x"}"#),
        );
        assert_eq!(c[Counter::JsonOtherRequest as usize], 1);
        assert_eq!(c[Counter::JsonReplyError as usize], 1);
        assert_eq!(c[Counter::JsonBadRequest as usize], 1);
        // A value "type" is not the key.
        assert_eq!(
            json_type(br#"{"name":"type","type":"EXIT"}"#),
            Some(&b"EXIT"[..])
        );
    }

    #[test]
    fn bep15_by_action_and_drops() {
        let mut connect = vec![0u8; 16];
        connect[..8].copy_from_slice(&0x41727101980u64.to_be_bytes());
        let c = counts(&connect, Some(&[0, 0, 0, 0, 1, 2, 3, 4]));
        assert_eq!(c[Counter::Bep15Connect as usize], 1);
        assert_eq!(c[Counter::Bep15ReplyConnect as usize], 1);
        let mut announce = vec![0x80u8; 98];
        announce[8..12].copy_from_slice(&1u32.to_be_bytes());
        let c = counts(&announce, None);
        assert_eq!(c[Counter::Bep15Announce as usize], 1);
        assert_eq!(c[Counter::Bep15Dropped as usize], 1);
    }
}
