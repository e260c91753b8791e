//! One-line summaries of tracker messages for `--trace`.
//!
//! This file owns `Request::summary`, `Reply::summary` and [`short_hash`]: what
//! a person reading a trace sees of each message, one line each.

use std::fmt::Write as _;

use super::{FileRef, Reply, Request};
use crate::metainfo::{format_size, InfoHash};

/// The first 12 hex digits of an info hash and an ellipsis: enough to tell
/// swarms apart in a trace.
pub fn short_hash(h: &InfoHash) -> String {
    let mut s = h.to_hex();
    s.truncate(12);
    s.push('…');
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Request {
    /// One line for people, e.g.
    /// `REGISTER report.pdf (4.0 MiB, complete) peer=-MN0100-abc port=6881 tid=1`.
    pub fn summary(&self) -> String {
        let mut s = String::from(self.type_name());
        match self {
            Request::Register {
                peer_id,
                port,
                files,
                ..
            } => {
                if files.is_empty() {
                    s.push_str(" (no files)");
                } else if files.len() > 1 {
                    let _ = write!(s, " {}:", plural(files.len(), "file", "files"));
                }
                for (i, f) in files.iter().take(3).enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let _ = write!(
                        s,
                        " {} ({}, {})",
                        f.name,
                        format_size(f.size),
                        if f.complete {
                            "complete"
                        } else {
                            "downloading"
                        }
                    );
                }
                if files.len() > 3 {
                    let _ = write!(s, " and {} more", files.len() - 3);
                }
                let _ = write!(s, " peer={peer_id} port={port}");
            }
            Request::Request { file, peer_id, .. } => {
                match file {
                    FileRef::InfoHash(h) => {
                        let _ = write!(s, " {}", short_hash(h));
                    }
                    FileRef::Name(n) => {
                        let _ = write!(s, " \"{n}\"");
                    }
                }
                if let Some(p) = peer_id {
                    let _ = write!(s, " peer={p}");
                }
            }
            Request::Search { query, .. } => {
                let _ = write!(s, " \"{query}\"");
            }
            Request::Heartbeat { peer_id, .. } | Request::Exit { peer_id, .. } => {
                let _ = write!(s, " peer={peer_id}");
            }
            Request::Stats { peer_id, files, .. } => {
                // One short line however many files and peers: a STATS
                // comes every second while anything moves.
                let edges: usize = files.iter().map(|f| f.peers.len()).sum();
                let (sent, recv) = files
                    .iter()
                    .flat_map(|f| &f.peers)
                    .fold((0u64, 0u64), |(s, r), e| {
                        (s.saturating_add(e.sent), r.saturating_add(e.recv))
                    });
                let _ = write!(
                    s,
                    " {} {}, {}: {} sent, {} received",
                    plural(files.len(), "file", "files"),
                    files
                        .first()
                        .map(|f| short_hash(&f.info_hash))
                        .unwrap_or_default(),
                    plural(edges, "peer", "peers"),
                    format_size(sent),
                    format_size(recv),
                );
                if let Some(pct) = files
                    .first()
                    .and_then(|f| f.done.saturating_mul(100).checked_div(f.size))
                {
                    let _ = write!(s, " ({pct}% done)");
                }
                let _ = write!(s, " peer={peer_id}");
            }
        }
        let _ = write!(s, " tid={}", self.tid());
        s
    }
}

impl Reply {
    /// One line for people, e.g.
    /// `PEERS report.pdf (4.0 MiB) 1 seeder, 0 leechers: 127.0.0.1:7001 tid=2`.
    pub fn summary(&self) -> String {
        let mut s = String::from(self.type_name());
        match self {
            Reply::Ok {
                interval,
                timeout,
                stats_every,
                web,
                ..
            } => {
                let _ = write!(s, " interval={interval}s timeout={timeout}s");
                if *stats_every > 0 {
                    let _ = write!(s, " stats_every={stats_every}s");
                }
                if let Some(web) = web {
                    let _ = write!(s, " web={web}");
                }
            }
            Reply::Peers {
                name,
                size,
                seeders,
                leechers,
                peers,
                ..
            } => {
                let _ = write!(
                    s,
                    " {name} ({}) {}, {}: ",
                    format_size(*size),
                    plural(*seeders as usize, "seeder", "seeders"),
                    plural(*leechers as usize, "leecher", "leechers"),
                );
                if peers.is_empty() {
                    s.push_str("no other peers");
                }
                for (i, p) in peers.iter().take(3).enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let _ = write!(s, "{}", p.addr);
                }
                if peers.len() > 3 {
                    let _ = write!(s, " and {} more", peers.len() - 3);
                }
            }
            Reply::Files { files, .. } => {
                let _ = write!(s, " {}", plural(files.len(), "file", "files"));
                for (i, f) in files.iter().take(3).enumerate() {
                    s.push_str(if i == 0 { ": " } else { ", " });
                    let _ = write!(s, "{} ({}S/{}L)", f.name, f.seeders, f.leechers);
                }
                if files.len() > 3 {
                    let _ = write!(s, " and {} more", files.len() - 3);
                }
            }
            Reply::Error { code, message, .. } => {
                let _ = write!(s, " {code}: {message}");
            }
        }
        match self.tid() {
            Some(t) => {
                let _ = write!(s, " tid={t}");
            }
            None => s.push_str(" tid=null"),
        }
        s
    }
}
