//! Finding swarms by name: exactly (a `REQUEST` by name) through each
//! shard's name index, or by a case-insensitive substring (`SEARCH`).

use minitorrent_common::metainfo::InfoHash;

use super::shards::{lock, Registry};

/// Most swarms one `SEARCH` answer is built from: more than fit one reply
/// datagram (about 750 with the shortest names).
pub const MAX_SEARCH_HITS: usize = 1_000;

/// One swarm in a `SEARCH` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
}

impl Registry {
    /// The swarm with exactly this name; when several swarms share it, the one
    /// with the most seeders, then the most peers, then the lowest info hash.
    pub fn find_by_name(&self, name: &str) -> Option<InfoHash> {
        let mut best: Option<((u32, usize), InfoHash)> = None;
        for shard in self.swarm_shards.iter() {
            let shard = lock(shard);
            let Some(hashes) = shard.names.get(name) else {
                continue;
            };
            for h in hashes {
                let Some(s) = shard.find(self.swarm_hash(h), h) else {
                    continue;
                };
                let score = (s.seeders, s.peers.len());
                let better = match &best {
                    None => true,
                    Some((bs, bh)) => score > *bs || (score == *bs && h < bh),
                };
                if better {
                    best = Some((score, *h));
                }
            }
        }
        best.map(|(_, h)| h)
    }

    /// `SEARCH`: the first [`MAX_SEARCH_HITS`] swarms whose name contains
    /// `query`, ignoring case (an empty query matches all), sorted by name
    /// then info hash. Scans every swarm, but copies and sorts only about
    /// twice the hits it keeps, however many match.
    pub fn search(&self, query: &str, out: &mut Vec<SearchHit>) {
        out.clear();
        let needle = query.to_lowercase();
        let by_key =
            |a: &SearchHit, b: &SearchHit| a.name.cmp(&b.name).then(a.info_hash.cmp(&b.info_hash));
        // Once `out` has been cut to the first MAX_SEARCH_HITS, nothing at or
        // after the last one kept can make it.
        let mut bound: Option<(String, InfoHash)> = None;
        for shard in self.swarm_shards.iter() {
            let shard = lock(shard);
            for s in shard.swarms.iter() {
                if let Some((name, hash)) = &bound {
                    if (&*s.name, &s.info_hash) >= (name.as_str(), hash) {
                        continue;
                    }
                }
                if contains_ignore_case(&s.name, &needle) {
                    out.push(SearchHit {
                        info_hash: s.info_hash,
                        name: s.name.to_string(),
                        size: s.size,
                        seeders: s.seeders,
                        leechers: s.leechers(),
                    });
                    if out.len() >= 2 * MAX_SEARCH_HITS {
                        out.sort_unstable_by(by_key);
                        out.truncate(MAX_SEARCH_HITS);
                        bound = out.last().map(|h| (h.name.clone(), h.info_hash));
                    }
                }
            }
        }
        out.sort_unstable_by(by_key);
        out.truncate(MAX_SEARCH_HITS);
    }
}

/// `SEARCH`'s matching: whether `hay` contains `needle_lower` (already
/// lowercased), ignoring case; an empty needle is in everything.
pub fn contains_ignore_case(hay: &str, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle_lower.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
        return h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(needle_lower)
}
