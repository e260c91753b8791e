//! BEP 9 metadata fetching state: which 16 KiB blocks of the info dictionary
//! we have, which are asked of which connection, and the final check against
//! the info hash. Owned by the coordinator of a torrent that started from an
//! info hash alone; plain data, time passed in.

use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::wire::METADATA_BLOCK;

use crate::picker::ConnId;
use minitorrent_common::hash::sha1;

/// Info dictionaries larger than this are refused (a million pieces take
/// 20 MB of hashes; real torrents are far below).
pub const MAX_METADATA_SIZE: u64 = 16 << 20;
/// A block asked of a peer that has not answered by then is asked elsewhere.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("peer announced a metadata size of {0} bytes (limit {MAX_METADATA_SIZE})")]
    BadSize(u64),
    #[error("metadata block {piece} is out of range or has the wrong length ({len} bytes)")]
    BadBlock { piece: u32, len: usize },
    #[error("metadata total size {got} differs from the announced {expected}")]
    SizeMismatch { got: u64, expected: u64 },
    #[error("the metadata received does not match the info hash; fetching it again")]
    HashMismatch,
}

#[derive(Debug)]
pub struct MetadataFetch {
    info_hash: InfoHash,
    size: Option<usize>,
    blocks: Vec<Option<Vec<u8>>>,
    asked: Vec<Option<(ConnId, Instant)>>,
}

impl MetadataFetch {
    pub fn new(info_hash: InfoHash) -> MetadataFetch {
        MetadataFetch {
            info_hash,
            size: None,
            blocks: Vec::new(),
            asked: Vec::new(),
        }
    }

    pub fn size(&self) -> Option<usize> {
        self.size
    }

    /// Learns the size from a peer's extension handshake (the first sane one
    /// wins; a wrong one shows up as a hash mismatch and is forgotten).
    pub fn offer_size(&mut self, size: u64) -> Result<(), MetadataError> {
        if size == 0 || size > MAX_METADATA_SIZE {
            return Err(MetadataError::BadSize(size));
        }
        if self.size.is_none() {
            let n = (size as usize).div_ceil(METADATA_BLOCK);
            self.size = Some(size as usize);
            self.blocks = vec![None; n];
            self.asked = vec![None; n];
        }
        Ok(())
    }

    fn block_len(&self, piece: usize) -> usize {
        let size = self.size.unwrap_or(0);
        (size - piece * METADATA_BLOCK).min(METADATA_BLOCK)
    }

    /// The next block to ask `conn` for, if any is missing and not asked of
    /// someone else recently.
    pub fn next_request(&mut self, conn: ConnId, now: Instant) -> Option<u32> {
        let i = (0..self.blocks.len()).find(|&i| {
            self.blocks[i].is_none()
                && match self.asked[i] {
                    None => true,
                    Some((c, t)) => c != conn && now.duration_since(t) > REQUEST_TIMEOUT,
                }
        })?;
        self.asked[i] = Some((conn, now));
        Some(i as u32)
    }

    /// Whether `conn` has an unanswered request.
    pub fn is_asking(&self, conn: ConnId) -> bool {
        self.asked
            .iter()
            .zip(&self.blocks)
            .any(|(a, b)| b.is_none() && matches!(a, Some((c, _)) if *c == conn))
    }

    /// Forgets what was asked of `conn` (it left, or rejected).
    pub fn forget(&mut self, conn: ConnId) {
        for a in &mut self.asked {
            if matches!(a, Some((c, _)) if *c == conn) {
                *a = None;
            }
        }
    }

    /// Stores a block. Returns the whole info dictionary once every block is
    /// in and its SHA-1 matches the info hash.
    pub fn received(
        &mut self,
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, MetadataError> {
        let Some(size) = self.size else {
            return Err(MetadataError::BadBlock {
                piece,
                len: data.len(),
            });
        };
        if total_size != size as u64 {
            return Err(MetadataError::SizeMismatch {
                got: total_size,
                expected: size as u64,
            });
        }
        let p = piece as usize;
        if p >= self.blocks.len() || data.len() != self.block_len(p) {
            return Err(MetadataError::BadBlock {
                piece,
                len: data.len(),
            });
        }
        self.blocks[p] = Some(data);
        if self.blocks.iter().any(|b| b.is_none()) {
            return Ok(None);
        }
        let mut all = Vec::with_capacity(size);
        for b in self.blocks.iter().flatten() {
            all.extend_from_slice(b);
        }
        if sha1(&all) != self.info_hash.0 {
            // Start over, possibly with another peer's size.
            *self = MetadataFetch::new(self.info_hash);
            return Err(MetadataError::HashMismatch);
        }
        Ok(Some(all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_and_verifies() {
        let info: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let ih = InfoHash(sha1(&info));
        let mut m = MetadataFetch::new(ih);
        let now = Instant::now();
        assert_eq!(m.next_request(1, now), None, "size unknown");
        assert!(m.offer_size(0).is_err());
        assert!(m.offer_size(MAX_METADATA_SIZE + 1).is_err());
        m.offer_size(info.len() as u64).unwrap();
        assert_eq!(m.next_request(1, now), Some(0));
        assert_eq!(m.next_request(2, now), Some(1));
        assert_eq!(m.next_request(1, now), Some(2));
        assert_eq!(m.next_request(3, now), None);
        assert!(m.is_asking(2));
        // Timed out requests go to another peer.
        assert_eq!(m.next_request(3, now + REQUEST_TIMEOUT * 2), Some(0));
        assert!(m
            .received(0, info.len() as u64, info[..100].to_vec())
            .is_err());
        assert!(m.received(0, 5, info[..16384].to_vec()).is_err());
        assert_eq!(m.received(0, 40_000, info[..16384].to_vec()), Ok(None));
        assert_eq!(m.received(2, 40_000, info[32768..].to_vec()), Ok(None));
        let got = m.received(1, 40_000, info[16384..32768].to_vec()).unwrap();
        assert_eq!(got.as_deref(), Some(&info[..]));
    }

    #[test]
    fn hash_mismatch_starts_over() {
        let ih = InfoHash([7; 20]);
        let mut m = MetadataFetch::new(ih);
        m.offer_size(10).unwrap();
        assert_eq!(m.next_request(1, Instant::now()), Some(0));
        assert_eq!(
            m.received(0, 10, vec![0; 10]),
            Err(MetadataError::HashMismatch)
        );
        assert_eq!(m.size(), None);
    }
}
