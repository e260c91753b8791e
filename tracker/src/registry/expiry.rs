//! Expiry: removing every peer past its timeout, and every swarm left empty,
//! one share of the shards per worker.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use minitorrent_common::metainfo::InfoHash;

use super::identity::{ip_from16, peer_hash};
use super::shards::{lock, Registry};
use crate::peer_id::PeerId;

/// What one sweep removed.
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    /// Registered (JSON) peers that expired: IP, peer_id, port.
    pub expired: Vec<(IpAddr, PeerId, u16)>,
    /// Swarm entries removed (a peer in three swarms counts three times).
    pub entries_removed: usize,
    pub swarms_removed: usize,
    /// Set by the caller to have every removed entry listed in
    /// `expired_entries` (for the catalogue's log).
    pub collect_entries: bool,
    /// Each swarm entry removed: swarm, IP, peer_id, port.
    pub expired_entries: Vec<(InfoHash, IpAddr, PeerId, u16)>,
}

impl Registry {
    /// Removes every peer past its timeout and every swarm left empty.
    pub fn sweep(&self, now: Instant) -> SweepReport {
        let mut report = SweepReport::default();
        self.sweep_part(0, 1, now, &mut report);
        report
    }

    /// Sweeps the shards `i` with `i % parts == part`, so that each of `parts`
    /// worker threads can sweep its own share.
    pub fn sweep_part(&self, part: usize, parts: usize, now: Instant, report: &mut SweepReport) {
        let now_ms = self.ms(now);
        let parts = parts.max(1);
        for (i, shard) in self.peer_shards.iter().enumerate() {
            if i % parts != part {
                continue;
            }
            let mut shard = lock(shard);
            let records = &mut shard.records;
            let mut j = 0;
            while j < records.len() {
                let r = &records.items()[j];
                if self.expired(r.live.last_seen.load(Ordering::Relaxed), now_ms) {
                    report.expired.push((
                        ip_from16(&r.ip),
                        r.id.clone(),
                        r.live.port.load(Ordering::Relaxed),
                    ));
                    records.swap_remove(j, |r| peer_hash(&self.hasher, &r.ip, &r.id));
                } else {
                    j += 1;
                }
            }
        }
        let mut gone = Vec::new();
        for (i, shard) in self.swarm_shards.iter().enumerate() {
            if i % parts != part {
                continue;
            }
            let mut shard = lock(shard);
            shard.swarms.retain(|s| {
                let mut j = 0;
                while j < s.peers.len() {
                    if self.expired(s.peers.items()[j].last_seen(), now_ms) {
                        let p = s.remove_at(&self.hasher, j);
                        report.entries_removed += 1;
                        if report.collect_entries {
                            let ip = ip_from16(&p.ip);
                            report
                                .expired_entries
                                .push((s.info_hash, ip, p.id.clone(), p.port()));
                        }
                    } else {
                        j += 1;
                    }
                }
                if s.peers.is_empty() {
                    gone.push((std::mem::take(&mut s.name), s.info_hash));
                    false
                } else {
                    true
                }
            });
            report.swarms_removed += gone.len();
            self.release_swarms(gone.len());
            for (name, h) in gone.drain(..) {
                shard.forget_name(&name, &h);
            }
        }
    }
}
