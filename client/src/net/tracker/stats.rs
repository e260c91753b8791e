//! What goes into a `STATS`: for each file we share with the JSON tracker
//! that moved data since the last round or is downloading, the pieces we
//! have, progress, rates, and the bytes exchanged with each remote peer
//! (taken from the torrent's `TrafficTable`, which the coordinator fills).
//! The JSON tracker thread (`register`) calls it every `stats_every`
//! seconds while the tracker asks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{
    StatsEdge, StatsFile, MAX_STATS_EDGES, MAX_STATS_FILES, MAX_STATS_PIECES,
};

use crate::core::msg::Phase;
use crate::net::shared::TorrentHandle;
use crate::net::tracker::json::RegisterFile;

/// `STATS` datagrams sent per round at most: files past
/// `MAX_STATS_FILES × MAX_STATS_DATAGRAMS` (the least busy) wait for a later
/// round.
pub const MAX_STATS_DATAGRAMS: usize = 4;

/// The session's torrents.
pub type Table = Arc<Mutex<HashMap<InfoHash, TorrentHandle>>>;

/// The torrents registered with the tracker, their handles cloned under the
/// table's lock (held only to clone).
fn registered(table: &Table, files: &BTreeMap<InfoHash, RegisterFile>) -> Vec<TorrentHandle> {
    let t = table.lock().unwrap_or_else(PoisonError::into_inner);
    files.keys().filter_map(|h| t.get(h).cloned()).collect()
}

/// Forgets the bytes moved so far (while the tracker wants no `STATS`), so
/// that the first `STATS` it asks for does not carry old transfers.
pub fn discard(table: &Table, files: &BTreeMap<InfoHash, RegisterFile>) {
    for h in registered(table, files) {
        let _ = h.shared.traffic.lock().map(|mut t| t.take());
    }
}

/// One round: the `STATS` datagrams' files, at most
/// [`MAX_STATS_FILES`] per datagram and [`MAX_STATS_DATAGRAMS`] datagrams.
/// A file is included while it downloads, while it moved data, and once
/// more after it stopped (so its rates are seen to fall to 0); `active`
/// remembers which moved in the previous round.
pub fn gather(
    table: &Table,
    files: &BTreeMap<InfoHash, RegisterFile>,
    active: &mut HashSet<InfoHash>,
) -> Vec<Vec<StatsFile>> {
    let mut out: Vec<(u64, StatsFile)> = Vec::new();
    let mut now_active = HashSet::new();
    for h in registered(table, files) {
        let (moved, overflowed) = h
            .shared
            .traffic
            .lock()
            .map(|mut t| t.take())
            .unwrap_or_default();
        let status = h
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let downloading = matches!(status.phase, Phase::Downloading | Phase::Metadata);
        let info_hash = h.shared.info_hash;
        let busy = !moved.is_empty() || downloading;
        if busy {
            now_active.insert(info_hash);
        }
        if !busy && !active.contains(&info_hash) {
            continue;
        }
        let total: u64 = moved.iter().map(|(_, s, r)| s + r).sum();
        let truncated = overflowed || moved.len() > MAX_STATS_EDGES;
        let peers = moved
            .into_iter()
            .take(MAX_STATS_EDGES)
            .map(|(addr, sent, recv)| StatsEdge { addr, sent, recv })
            .collect();
        let (pieces, have) = match h.shared.meta.get() {
            Some(m) => {
                let n = m.have.len() as u32;
                let bits = (n > 0 && n <= MAX_STATS_PIECES).then(|| m.have.to_bytes());
                (if bits.is_some() { n } else { 0 }, bits)
            }
            None => (0, None),
        };
        let size = status.size.unwrap_or(0);
        out.push((
            total,
            StatsFile {
                info_hash,
                size,
                done: status.bytes_have.min(size),
                pieces,
                have,
                down: status.down_rate.max(0.0) as u64,
                up: status.up_rate.max(0.0) as u64,
                peers,
                truncated,
            },
        ));
    }
    *active = now_active;
    out.sort_by_key(|(total, _)| std::cmp::Reverse(*total));
    let files: Vec<StatsFile> = out
        .into_iter()
        .take(MAX_STATS_FILES * MAX_STATS_DATAGRAMS)
        .map(|(_, f)| f)
        .collect();
    files.chunks(MAX_STATS_FILES).map(<[_]>::to_vec).collect()
}
