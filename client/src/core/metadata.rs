//! BEP 9 metadata fetching state: the metadata size each connection
//! announced, which 16 KiB blocks of the info dictionary we have, which are
//! asked of which connection, and the final check against the info hash.
//! Owned by the coordinator of a torrent that started from an info hash
//! alone; plain data, time passed in.
//!
//! No single peer can stop the fetch: a size is only a claim of the peer
//! that announced it. The fetch uses the size most connections announced,
//! asks only those connections for blocks, accepts a block only from the
//! connection it was asked of, and when the assembled dictionary does not
//! match the info hash it forgets the claims of the peers that supplied it
//! and starts over with what the others claim.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::wire::METADATA_BLOCK;

use crate::core::picker::ConnId;
use minitorrent_common::hash::sha1;

/// Info dictionaries larger than this are refused (the wire codec's limit
/// for `metadata_size`).
pub use minitorrent_common::wire::MAX_METADATA_SIZE;
/// A block asked of a peer that has not answered by then is asked elsewhere.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("peer announced a metadata size of {0} bytes (limit {MAX_METADATA_SIZE})")]
    BadSize(u64),
    #[error("metadata block {piece} is out of range or has the wrong length ({len} bytes)")]
    BadBlock { piece: u32, len: usize },
    #[error("metadata block {piece} was not asked of this peer")]
    Unsolicited { piece: u32 },
    #[error("metadata total size {got} differs from the {expected} being fetched")]
    SizeMismatch { got: u64, expected: u64 },
    #[error("the metadata received does not match the info hash; fetching it again")]
    HashMismatch,
}

/// One try at assembling the dictionary with one announced size.
#[derive(Debug)]
struct Attempt {
    size: usize,
    blocks: Vec<Option<Vec<u8>>>,
    asked: Vec<Option<(ConnId, Instant)>>,
    /// Connections whose blocks are in `blocks`.
    from: HashSet<ConnId>,
}

impl Attempt {
    fn new(size: usize) -> Attempt {
        let n = size.div_ceil(METADATA_BLOCK);
        Attempt {
            size,
            blocks: vec![None; n],
            asked: vec![None; n],
            from: HashSet::new(),
        }
    }

    fn block_len(&self, piece: usize) -> usize {
        (self.size - piece * METADATA_BLOCK).min(METADATA_BLOCK)
    }

    fn forget_asks(&mut self, conn: ConnId) {
        for a in &mut self.asked {
            if matches!(a, Some((c, _)) if *c == conn) {
                *a = None;
            }
        }
    }
}

#[derive(Debug)]
pub struct MetadataFetch {
    info_hash: InfoHash,
    /// The sane metadata size each connection announced.
    offers: HashMap<ConnId, usize>,
    attempt: Option<Attempt>,
}

impl MetadataFetch {
    pub fn new(info_hash: InfoHash) -> MetadataFetch {
        MetadataFetch {
            info_hash,
            offers: HashMap::new(),
            attempt: None,
        }
    }

    /// The size being fetched, if any.
    pub fn size(&self) -> Option<usize> {
        self.attempt.as_ref().map(|a| a.size)
    }

    /// Records the size `conn` announced in its extension handshake.
    pub fn offer_size(&mut self, conn: ConnId, size: u64) -> Result<(), MetadataError> {
        if size == 0 || size > MAX_METADATA_SIZE {
            self.forget(conn);
            return Err(MetadataError::BadSize(size));
        }
        if self.offers.insert(conn, size as usize) != Some(size as usize) {
            if let Some(a) = &mut self.attempt {
                a.forget_asks(conn);
            }
            self.choose();
        }
        Ok(())
    }

    /// Keeps the current attempt while someone still announces its size;
    /// otherwise starts one with the size most connections announced.
    fn choose(&mut self) {
        if let Some(a) = &self.attempt {
            if self.offers.values().any(|s| *s == a.size) {
                return;
            }
        }
        let mut votes: HashMap<usize, usize> = HashMap::new();
        for s in self.offers.values() {
            *votes.entry(*s).or_default() += 1;
        }
        // Most votes; among equals the smallest, so the choice is stable.
        self.attempt = votes
            .into_iter()
            .max_by_key(|(s, n)| (*n, std::cmp::Reverse(*s)))
            .map(|(s, _)| Attempt::new(s));
    }

    /// The next block to ask `conn` for: only a connection that announced
    /// the size being fetched, and only for a block that is missing and not
    /// asked of anyone (a request unanswered for [`REQUEST_TIMEOUT`] is
    /// withdrawn, with the claim of the peer that ignored it).
    pub fn next_request(&mut self, conn: ConnId, now: Instant) -> Option<u32> {
        // A request unanswered that long is withdrawn. If others claim
        // another size, the silent peer's claim goes too: a liar that
        // announces a size and then stays silent cannot hold the fetch
        // (an undisputed peer that is merely slow is asked again).
        let stale: Vec<ConnId> = self
            .attempt
            .iter()
            .flat_map(|a| a.asked.iter().zip(&a.blocks))
            .filter_map(|(x, b)| match x {
                Some((c, t)) if b.is_none() && now.duration_since(*t) > REQUEST_TIMEOUT => Some(*c),
                _ => None,
            })
            .collect();
        for c in stale {
            let claim = self.offers.get(&c).copied();
            let disputed = self.offers.values().any(|s| Some(*s) != claim);
            if disputed {
                self.forget(c);
            } else if let Some(a) = &mut self.attempt {
                a.forget_asks(c);
            }
        }
        let a = self.attempt.as_mut()?;
        if self.offers.get(&conn) != Some(&a.size) {
            return None;
        }
        let i = (0..a.blocks.len()).find(|&i| a.blocks[i].is_none() && a.asked[i].is_none())?;
        a.asked[i] = Some((conn, now));
        Some(i as u32)
    }

    /// Whether `conn` has an unanswered request.
    pub fn is_asking(&self, conn: ConnId) -> bool {
        self.attempt.as_ref().is_some_and(|a| {
            a.asked
                .iter()
                .zip(&a.blocks)
                .any(|(x, b)| b.is_none() && matches!(x, Some((c, _)) if *c == conn))
        })
    }

    /// Forgets `conn`: what was asked of it and the size it announced (it
    /// left, rejected, or sent a size other than it announced).
    pub fn forget(&mut self, conn: ConnId) {
        if let Some(a) = &mut self.attempt {
            a.forget_asks(conn);
        }
        if self.offers.remove(&conn).is_some() {
            self.choose();
        }
    }

    /// Stores a block `conn` sent. Returns the whole info dictionary once
    /// every block is in and its SHA-1 matches the info hash.
    pub fn received(
        &mut self,
        conn: ConnId,
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, MetadataError> {
        let p = piece as usize;
        let Some(a) = self.attempt.as_mut() else {
            return Err(MetadataError::Unsolicited { piece });
        };
        if !matches!(a.asked.get(p), Some(Some((c, _))) if *c == conn) || a.blocks[p].is_some() {
            return Err(MetadataError::Unsolicited { piece });
        }
        if total_size != a.size as u64 {
            let expected = a.size as u64;
            self.forget(conn);
            return Err(MetadataError::SizeMismatch {
                got: total_size,
                expected,
            });
        }
        if data.len() != a.block_len(p) {
            a.asked[p] = None;
            return Err(MetadataError::BadBlock {
                piece,
                len: data.len(),
            });
        }
        a.blocks[p] = Some(data);
        a.from.insert(conn);
        if a.blocks.iter().any(|b| b.is_none()) {
            return Ok(None);
        }
        let mut all = Vec::with_capacity(a.size);
        for b in a.blocks.iter().flatten() {
            all.extend_from_slice(b);
        }
        if sha1(&all) != self.info_hash.0 {
            // Whoever supplied it claimed a wrong size or sent wrong bytes:
            // their claims go, the others' stay (a peer that reconnects
            // may claim again).
            let from: Vec<ConnId> = a.from.iter().copied().collect();
            self.attempt = None;
            for c in from {
                self.offers.remove(&c);
            }
            self.choose();
            return Err(MetadataError::HashMismatch);
        }
        Ok(Some(all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: usize) -> (Vec<u8>, InfoHash) {
        let info: Vec<u8> = (0..n as u32).map(|i| (i % 251) as u8).collect();
        let ih = InfoHash(sha1(&info));
        (info, ih)
    }

    #[test]
    fn fetches_and_verifies() {
        let (info, ih) = info(40_000);
        let mut m = MetadataFetch::new(ih);
        let now = Instant::now();
        assert_eq!(m.next_request(1, now), None, "size unknown");
        assert!(m.offer_size(1, 0).is_err());
        assert!(m.offer_size(1, MAX_METADATA_SIZE + 1).is_err());
        for c in 1..=3 {
            m.offer_size(c, info.len() as u64).unwrap();
        }
        assert_eq!(m.next_request(1, now), Some(0));
        assert_eq!(m.next_request(2, now), Some(1));
        assert_eq!(m.next_request(1, now), Some(2));
        assert_eq!(m.next_request(3, now), None);
        assert!(m.is_asking(2));
        assert_eq!(
            m.received(2, 1, 40_000, info[16384..32768].to_vec()),
            Ok(None)
        );
        // Peer 1 does not answer: its requests are withdrawn and go to
        // whoever asks next (all claim the same size, so peer 1 may be
        // asked again).
        let later = now + REQUEST_TIMEOUT * 2;
        assert_eq!(m.next_request(3, later), Some(0));
        assert_eq!(m.next_request(1, later), Some(2));
        // Its late answer to the withdrawn request is not taken.
        assert_eq!(
            m.received(1, 0, 40_000, info[..16384].to_vec()),
            Err(MetadataError::Unsolicited { piece: 0 })
        );
        assert!(m.received(3, 0, 40_000, info[..100].to_vec()).is_err());
        assert_eq!(m.next_request(3, later), Some(0));
        assert_eq!(m.received(3, 0, 40_000, info[..16384].to_vec()), Ok(None));
        let got = m.received(1, 2, 40_000, info[32768..].to_vec()).unwrap();
        assert_eq!(got.as_deref(), Some(&info[..]));
    }

    #[test]
    fn only_blocks_asked_of_that_connection_are_taken() {
        let (info, ih) = info(40_000);
        let mut m = MetadataFetch::new(ih);
        let now = Instant::now();
        m.offer_size(1, 40_000).unwrap();
        m.offer_size(2, 40_000).unwrap();
        assert_eq!(m.next_request(1, now), Some(0));
        // Peer 2 pushes a wrong block 0 and a block 1 nobody asked for.
        for (p, r) in [(0u32, 0..16384), (1, 16384..32768)] {
            assert_eq!(
                m.received(2, p, 40_000, vec![0xee; r.len()]),
                Err(MetadataError::Unsolicited { piece: p })
            );
        }
        // The good blocks, each from the connection asked, still verify.
        assert_eq!(m.received(1, 0, 40_000, info[..16384].to_vec()), Ok(None));
        assert_eq!(
            m.received(1, 0, 40_000, info[..16384].to_vec()),
            Err(MetadataError::Unsolicited { piece: 0 }),
            "answered already"
        );
        assert_eq!(m.next_request(2, now), Some(1));
        assert_eq!(m.next_request(1, now), Some(2));
        assert_eq!(
            m.received(2, 1, 40_000, info[16384..32768].to_vec()),
            Ok(None)
        );
        let got = m.received(1, 2, 40_000, info[32768..].to_vec()).unwrap();
        assert_eq!(got.as_deref(), Some(&info[..]));
    }

    #[test]
    fn a_false_size_does_not_stop_the_fetch() {
        let (info, ih) = info(20_000);
        let now = Instant::now();
        // The liar announces first; the honest peer's data of another total
        // size is not held against it.
        let mut m = MetadataFetch::new(ih);
        m.offer_size(9, 100).unwrap();
        assert_eq!(m.size(), Some(100));
        m.offer_size(1, 20_000).unwrap();
        assert_eq!(m.next_request(1, now), None, "not the size being fetched");
        assert_eq!(m.next_request(9, now), Some(0));
        // The liar's data cannot verify: its claim is dropped and the honest
        // size is fetched.
        assert_eq!(
            m.received(9, 0, 100, vec![0; 100]),
            Err(MetadataError::HashMismatch)
        );
        assert_eq!(m.size(), Some(20_000));
        assert_eq!(m.next_request(9, now), None, "the liar is not asked again");
        assert_eq!(m.next_request(1, now), Some(0));
        assert_eq!(m.received(1, 0, 20_000, info[..16384].to_vec()), Ok(None));
        assert_eq!(m.next_request(1, now), Some(1));
        let got = m.received(1, 1, 20_000, info[16384..].to_vec()).unwrap();
        assert_eq!(got.as_deref(), Some(&info[..]));

        // A liar that stays silent loses its claim once its request times
        // out, since another size is claimed.
        let mut m = MetadataFetch::new(ih);
        m.offer_size(9, 100).unwrap();
        m.offer_size(1, 20_000).unwrap();
        assert_eq!(m.next_request(9, now), Some(0));
        assert_eq!(m.next_request(1, now + REQUEST_TIMEOUT * 2), Some(0));
        assert_eq!(m.size(), Some(20_000));

        // The liar leaving also gives the honest size its turn.
        let mut m = MetadataFetch::new(ih);
        m.offer_size(9, 100).unwrap();
        m.offer_size(1, 20_000).unwrap();
        m.forget(9);
        assert_eq!(m.size(), Some(20_000));

        // More peers announcing the true size win the vote at once.
        let mut m = MetadataFetch::new(ih);
        m.offer_size(9, 100).unwrap();
        m.offer_size(1, 20_000).unwrap();
        m.offer_size(2, 20_000).unwrap();
        m.forget(9);
        m.offer_size(9, 100).unwrap();
        assert_eq!(m.size(), Some(20_000));

        // A peer answering with a total other than it announced loses its
        // claim, without ending the fetch.
        let mut m = MetadataFetch::new(ih);
        m.offer_size(1, 20_000).unwrap();
        m.offer_size(2, 20_000).unwrap();
        assert_eq!(m.next_request(2, now), Some(0));
        assert!(matches!(
            m.received(2, 0, 77, vec![0; 77]),
            Err(MetadataError::SizeMismatch { .. })
        ));
        assert_eq!(m.size(), Some(20_000));
        assert_eq!(m.next_request(2, now), None);
        assert_eq!(m.next_request(1, now), Some(0));
    }

    #[test]
    fn hash_mismatch_starts_over_with_the_other_claims() {
        let ih = InfoHash([7; 20]);
        let mut m = MetadataFetch::new(ih);
        m.offer_size(1, 10).unwrap();
        assert_eq!(m.next_request(1, Instant::now()), Some(0));
        assert_eq!(
            m.received(1, 0, 10, vec![0; 10]),
            Err(MetadataError::HashMismatch)
        );
        assert_eq!(m.size(), None);
        // The same peer reconnecting may claim again.
        m.offer_size(5, 10).unwrap();
        assert_eq!(m.size(), Some(10));
    }
}
