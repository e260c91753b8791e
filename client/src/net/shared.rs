//! What a torrent's threads share at run time: [`TorrentShared`] (counters,
//! upload slots, the event channel to the coordinator, the metadata once
//! known), [`MetaCtx`] (the metadata plus the open storage) and the
//! session's [`TorrentHandle`].

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_channel::Sender;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::mse::Encryption;

use crate::core::msg::{Input, TorrentStatus};
use crate::core::ratelimit::RateLimit;
use crate::core::shared::{Meta, UploadSlots};
use crate::core::traffic::TrafficTable;
use crate::net::storage::Storage;

/// The metadata and the files that hold the torrent's data.
#[derive(Debug)]
pub struct MetaCtx {
    pub meta: Arc<Meta>,
    pub storage: Storage,
}

impl Deref for MetaCtx {
    type Target = Meta;
    fn deref(&self) -> &Meta {
        &self.meta
    }
}

/// State shared between a torrent's coordinator and its connection threads.
#[derive(Debug)]
pub struct TorrentShared {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub listen_port: u16,
    /// Set once, by the coordinator, when the metadata is known.
    pub meta: OnceLock<Arc<MetaCtx>>,
    pub events: Sender<Input>,
    /// `--max-upload-rate`, shared by the whole session.
    pub rate: Arc<RateLimit>,
    /// `--max-download-rate`, shared by the whole session.
    pub down_rate: Arc<RateLimit>,
    /// `--encryption`: how connections are dialled (MSE/PE or plain).
    pub encryption: Encryption,
    downloaded: AtomicU64,
    uploaded: AtomicU64,
    wasted: AtomicU64,
    upload_slots: UploadSlots,
    /// Initial seeding: a connection starting now greets without a
    /// BITFIELD (the coordinator mirrors `Swarm::hides_pieces` here).
    hide_pieces: AtomicBool,
    /// Bytes moved with each remote peer and not yet reported in `STATS`:
    /// the coordinator adds, the tracker thread takes. Held only to do so.
    pub traffic: Mutex<TrafficTable>,
}

impl TorrentShared {
    pub fn new(
        info_hash: InfoHash,
        peer_id: [u8; 20],
        listen_port: u16,
        events: Sender<Input>,
        rate: Arc<RateLimit>,
        down_rate: Arc<RateLimit>,
    ) -> TorrentShared {
        TorrentShared {
            info_hash,
            peer_id,
            listen_port,
            meta: OnceLock::new(),
            events,
            rate,
            down_rate,
            encryption: Encryption::default(),
            downloaded: AtomicU64::new(0),
            uploaded: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
            upload_slots: UploadSlots::default(),
            hide_pieces: AtomicBool::new(false),
            traffic: Mutex::default(),
        }
    }
    /// The same, dialling under `policy`.
    pub fn with_encryption(mut self, policy: Encryption) -> TorrentShared {
        self.encryption = policy;
        self
    }
    pub fn add_downloaded(&self, n: u64) {
        self.downloaded.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_uploaded(&self, n: u64) {
        self.uploaded.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_wasted(&self) {
        self.wasted.fetch_add(1, Ordering::Relaxed);
    }
    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }
    /// Takes one of the torrent's upload slots if one is free.
    pub fn take_upload_slot(&self) -> bool {
        self.upload_slots.take()
    }
    pub fn give_upload_slot(&self) {
        self.upload_slots.give()
    }
    pub fn hides_pieces(&self) -> bool {
        self.hide_pieces.load(Ordering::Acquire)
    }
    pub fn set_hide_pieces(&self, yes: bool) {
        self.hide_pieces.store(yes, Ordering::Release)
    }
}

/// How a torrent started: what resuming it starts again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Seeding data found below this directory.
    Seed(PathBuf),
    /// Downloading into this directory.
    Download(PathBuf),
}

impl Origin {
    /// The directory below which the torrent's files are.
    pub fn root(&self) -> &Path {
        match self {
            Origin::Seed(p) | Origin::Download(p) => p,
        }
    }
}

/// Session-side handle of a torrent.
#[derive(Clone)]
pub struct TorrentHandle {
    pub shared: Arc<TorrentShared>,
    pub status: Arc<Mutex<TorrentStatus>>,
    pub magnet: String,
    pub origin: Origin,
    /// The info dictionary when the torrent started with it (a .torrent,
    /// a seed): what a pause keeps while the storage is still checked.
    pub info_bytes: Option<Arc<Vec<u8>>>,
}
