//! The `/api/swarms` answers of the last second: the index page polls it
//! every 5 s from every open tab, and each answer scans every swarm of the
//! registry, locking each shard in turn (the UDP workers wait for it). With
//! this cache, a query is scanned at most once per
//! [`SWARMS_CACHE_TTL`](super::bounds::SWARMS_CACHE_TTL) however many
//! browsers ask.
//!
//! Bounded: at most `capacity` answers (the empty query, which every page
//! asks first, and the most recently answered others), each under
//! [`SWARMS_CACHE_KEY`](super::bounds::SWARMS_CACHE_KEY) bytes of query and
//! at most one answer's JSON (1,000 rows, about 400 KB) of body. Time comes
//! from the caller, so the tests use their own clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bounds;

struct Entry {
    /// The query, lowercased (the matching ignores case).
    key: String,
    at: Instant,
    body: Arc<[u8]>,
}

pub struct SwarmsCache {
    entries: Vec<Entry>,
    capacity: usize,
    ttl: Duration,
}

/// The cache key of a query: matching ignores case, so `Lecture` and
/// `lecture` share an answer. `None` for a query too long to keep.
pub fn key(query: &str) -> Option<String> {
    (query.len() <= bounds::SWARMS_CACHE_KEY).then(|| query.to_lowercase())
}

impl SwarmsCache {
    pub fn new(capacity: usize, ttl: Duration) -> SwarmsCache {
        SwarmsCache {
            entries: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The answer to `key` made less than the TTL before `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<Arc<[u8]>> {
        self.entries
            .iter()
            .find(|e| e.key == key && now.saturating_duration_since(e.at) < self.ttl)
            .map(|e| e.body.clone())
    }

    /// Keeps `body` as the answer to `key` made at `now`. When full, the
    /// oldest answer goes, the empty query's last (it is the one every
    /// page asks).
    pub fn put(&mut self, key: String, body: Arc<[u8]>, now: Instant) {
        self.entries.retain(|e| e.key != key);
        if self.entries.len() >= self.capacity {
            let victim = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| (e.key.is_empty() && self.capacity > 1, e.at))
                .map(|(i, _)| i);
            if let Some(i) = victim {
                self.entries.swap_remove(i);
            }
        }
        self.entries.push(Entry { key, at: now, body });
    }

    /// Forgets every answer (after a publication, so it shows at once).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> Arc<[u8]> {
        Arc::from(s.as_bytes())
    }

    #[test]
    fn an_answer_is_reused_for_one_ttl_then_made_again() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = SwarmsCache::new(3, Duration::from_secs(1));
        assert!(c.get("", t0).is_none());
        c.put(String::new(), body("all"), t0);
        assert_eq!(c.get("", t0 + ms(999)).as_deref(), Some(&b"all"[..]));
        assert!(c.get("", t0 + ms(1000)).is_none(), "stale after the TTL");
        assert!(c.get("x", t0).is_none(), "another query is not this one");
        c.put(String::new(), body("new"), t0 + ms(1000));
        assert_eq!(c.get("", t0 + ms(1500)).as_deref(), Some(&b"new"[..]));
        assert_eq!(c.len(), 1, "replaced, not added");
        c.clear();
        assert!(c.get("", t0 + ms(1500)).is_none());
    }

    #[test]
    fn it_is_bounded_and_keeps_the_empty_query() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = SwarmsCache::new(3, Duration::from_secs(1));
        c.put(String::new(), body("all"), t0);
        for i in 0..10u64 {
            c.put(format!("q{i}"), body("x"), t0 + ms(i + 1));
            assert!(c.len() <= 3);
        }
        assert!(c.get("", t0 + ms(20)).is_some(), "the empty query stays");
        assert!(c.get("q9", t0 + ms(20)).is_some());
        assert!(c.get("q8", t0 + ms(20)).is_some());
        assert!(c.get("q7", t0 + ms(20)).is_none(), "the oldest went");
    }

    #[test]
    fn keys_ignore_case_and_long_queries_are_not_kept() {
        assert_eq!(key("LeCture").as_deref(), Some("lecture"));
        assert_eq!(key(""), Some(String::new()));
        assert!(key(&"a".repeat(bounds::SWARMS_CACHE_KEY + 1)).is_none());
    }
}
