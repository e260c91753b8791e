//! A torrent's lifecycle as one enum, [`Stage`], and the two steps that are
//! more than a new value: the metadata arriving (on to checking the
//! storage) and the storage opened (on to live).

use log::info;
use minitorrent_common::metainfo::{format_size, Info};

use super::fetch::Fetching;
use super::pieces::{Ctx, Live};
use super::Action;
use crate::core::geometry::Geometry;
use crate::core::msg::{count, BoxError, Notice, Opened};

#[derive(Debug)]
pub(super) enum Stage {
    Metadata(Fetching),
    /// The storage is being opened and checked (`Action::Open` is out);
    /// `from_peers` when the metadata came from peers (the session is told).
    Checking {
        total: u32,
        size: u64,
        from_peers: bool,
    },
    Live(Box<Live>),
    Failed(String),
    Stopped,
}

impl Stage {
    /// The whole info dictionary arrived and matches the info hash: if it
    /// is usable, have the storage opened and checked. Returns the
    /// torrent's name and whether it is private, or why it cannot be
    /// downloaded.
    pub fn metadata_complete(
        &mut self,
        bytes: Vec<u8>,
        out: &mut Vec<Action>,
    ) -> Result<(String, bool), String> {
        let info = Info::from_bytes(&bytes)
            .map_err(|e| format!("the metadata from peers is not a valid info dictionary: {e}"))?;
        Geometry::from_info(&info).map_err(|e| format!("{}: {e}", info.name))?;
        info!(
            "{}: metadata received: {} bytes ({}) in {}",
            info.name,
            info.total_length(),
            format_size(info.total_length()),
            count(info.num_pieces() as u64, "piece")
        );
        let (name, private) = (info.name.clone(), info.private);
        *self = Stage::Checking {
            total: info.num_pieces() as u32,
            size: info.total_length(),
            from_peers: true,
        };
        out.push(Action::Open {
            info,
            info_bytes: bytes,
        });
        Ok((name, private))
    }

    /// The storage is open and checked (or could not be): live from now on.
    /// Returns the torrent's name, or the error to fail with.
    pub fn opened(
        &mut self,
        cx: &mut Ctx,
        r: Result<Opened, BoxError>,
        download: bool,
    ) -> Result<Option<String>, String> {
        let Stage::Checking { from_peers, .. } = *self else {
            return Ok(None);
        };
        let o = r.map_err(|e| e.to_string())?;
        let g = &o.meta.geometry;
        let (size, total, on_disk) = (g.total_len(), g.num_pieces(), o.on_disk);
        let name = o.meta.info.name.clone();
        if on_disk > 0 {
            info!(
                "{name}: resume: {on_disk} of {} already verified on disk",
                count(total, "piece")
            );
        }
        if from_peers {
            cx.out.push(Action::Notify(Notice::MetadataReceived {
                info_hash: cx.info_hash,
                name: name.clone(),
                size,
                pieces_on_disk: on_disk,
                pieces_total: total,
            }));
        }
        let mut live = Live::new(o, download, cx.peers, cx.now);
        if download && !live.is_complete() {
            cx.out
                .push(Action::Track(live.tracked(cx.info_hash, false)));
        }
        live.start(cx);
        *self = Stage::Live(Box::new(live));
        Ok(Some(name))
    }
}
