//! Piece and block arithmetic. A [`PieceIndex`] can only be made by a
//! [`Geometry`], so holding one proves the index is in range; requests from the
//! network are checked here before anything touches storage.

use minitorrent_common::metainfo::{Info, BLOCK_SIZE};

/// Largest piece length we handle: a piece is assembled in memory, so this
/// bounds the memory one piece in flight can take. The metainfo parser
/// refuses longer pieces with the same limit, so `info` and `get` agree.
pub const MAX_PIECE_LEN: u64 = minitorrent_common::metainfo::MAX_PARSE_PIECE_LENGTH;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error("piece length {0} is not between 1 byte and {MAX_PIECE_LEN} bytes")]
    BadPieceLength(u64),
    #[error("{pieces} piece hashes do not cover {total} bytes in pieces of {piece_len} bytes")]
    PieceCountMismatch {
        pieces: usize,
        total: u64,
        piece_len: u64,
    },
    #[error("piece {index} is out of range (the torrent has {num_pieces} pieces)")]
    PieceOutOfRange { index: u32, num_pieces: u32 },
    #[error(
        "block at offset {begin} length {len} does not fit piece {index} of {piece_len} bytes"
    )]
    BlockOutOfRange {
        index: u32,
        begin: u32,
        len: u32,
        piece_len: u32,
    },
    #[error("block length {0} is not between 1 and {BLOCK_SIZE} bytes")]
    BadBlockLength(u32),
}

/// A piece index known to be below the torrent's piece count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceIndex(u32);

impl PieceIndex {
    pub fn get(self) -> u32 {
        self.0
    }
    pub fn usize(self) -> usize {
        self.0 as usize
    }
}

/// A block inside a piece, validated against the geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    pub piece: PieceIndex,
    pub begin: u32,
    pub len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    total_len: u64,
    piece_len: u64,
    num_pieces: u32,
}

impl Geometry {
    pub fn new(
        total_len: u64,
        piece_len: u64,
        num_pieces: usize,
    ) -> Result<Geometry, GeometryError> {
        if piece_len == 0 || piece_len > MAX_PIECE_LEN {
            return Err(GeometryError::BadPieceLength(piece_len));
        }
        let expected = total_len.div_ceil(piece_len);
        if expected != num_pieces as u64 || num_pieces > u32::MAX as usize {
            return Err(GeometryError::PieceCountMismatch {
                pieces: num_pieces,
                total: total_len,
                piece_len,
            });
        }
        Ok(Geometry {
            total_len,
            piece_len,
            num_pieces: num_pieces as u32,
        })
    }

    pub fn from_info(info: &Info) -> Result<Geometry, GeometryError> {
        let total = info.files.iter().map(|f| f.length).sum();
        Geometry::new(total, info.piece_length, info.pieces.len())
    }

    pub fn total_len(&self) -> u64 {
        self.total_len
    }
    pub fn nominal_piece_len(&self) -> u64 {
        self.piece_len
    }
    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    pub fn piece(&self, index: u32) -> Result<PieceIndex, GeometryError> {
        if index < self.num_pieces {
            Ok(PieceIndex(index))
        } else {
            Err(GeometryError::PieceOutOfRange {
                index,
                num_pieces: self.num_pieces,
            })
        }
    }

    pub fn pieces(&self) -> impl Iterator<Item = PieceIndex> {
        (0..self.num_pieces).map(PieceIndex)
    }

    /// Length of the piece; only the last one may be shorter.
    pub fn piece_len(&self, p: PieceIndex) -> u32 {
        let start = self.piece_offset(p);
        (self.total_len - start).min(self.piece_len) as u32
    }

    /// Offset of the piece's first byte in the torrent's concatenated data.
    pub fn piece_offset(&self, p: PieceIndex) -> u64 {
        p.0 as u64 * self.piece_len
    }

    pub fn num_blocks(&self, p: PieceIndex) -> u32 {
        self.piece_len(p).div_ceil(BLOCK_SIZE)
    }

    /// The `b`-th block of the piece (callers iterate `0..num_blocks`).
    pub fn block(&self, p: PieceIndex, b: u32) -> Block {
        let begin = b * BLOCK_SIZE;
        let len = (self.piece_len(p) - begin).min(BLOCK_SIZE);
        Block {
            piece: p,
            begin,
            len,
        }
    }

    /// Checks a (index, begin, length) triple from the network.
    pub fn check_block(&self, index: u32, begin: u32, len: u32) -> Result<Block, GeometryError> {
        let piece = self.piece(index)?;
        if len == 0 || len > BLOCK_SIZE {
            return Err(GeometryError::BadBlockLength(len));
        }
        let piece_len = self.piece_len(piece);
        if begin as u64 + len as u64 > piece_len as u64 {
            return Err(GeometryError::BlockOutOfRange {
                index,
                begin,
                len,
                piece_len,
            });
        }
        Ok(Block { piece, begin, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_and_blocks() {
        let g = Geometry::new(100_000, 32768, 4).unwrap();
        assert_eq!(g.num_pieces(), 4);
        let last = g.piece(3).unwrap();
        assert_eq!(g.piece_len(last), 100_000 - 3 * 32768);
        assert_eq!(g.piece_offset(last), 3 * 32768);
        assert_eq!(g.num_blocks(last), 1);
        assert_eq!(g.num_blocks(g.piece(0).unwrap()), 2);
        let b = g.block(g.piece(0).unwrap(), 1);
        assert_eq!((b.begin, b.len), (16384, 16384));
        assert!(g.piece(4).is_err());
    }

    #[test]
    fn odd_last_block() {
        let g = Geometry::new(40_000, 32768, 2).unwrap();
        let p1 = g.piece(1).unwrap();
        assert_eq!(g.piece_len(p1), 7232);
        let b = g.block(g.piece(0).unwrap(), 1);
        assert_eq!(b.len, 16384);
        let g = Geometry::new(20_000, 32768, 1).unwrap();
        let p0 = g.piece(0).unwrap();
        assert_eq!(g.num_blocks(p0), 2);
        assert_eq!(g.block(p0, 1).len, 20_000 - 16384);
    }

    #[test]
    fn rejects_inconsistent() {
        assert!(Geometry::new(100, 0, 1).is_err());
        assert!(Geometry::new(100, 64, 1).is_err());
        assert!(Geometry::new(100, 64, 3).is_err());
        assert!(Geometry::new(0, 64, 0).is_ok());
        assert!(Geometry::new(100, MAX_PIECE_LEN * 2, 1).is_err());
    }

    #[test]
    fn checks_requests() {
        let g = Geometry::new(100_000, 32768, 4).unwrap();
        assert!(g.check_block(0, 0, 16384).is_ok());
        assert!(g.check_block(0, 16384, 16384).is_ok());
        assert!(g.check_block(0, 16385, 16384).is_err());
        assert!(g.check_block(0, 0, 16385).is_err());
        assert!(g.check_block(0, 0, 0).is_err());
        assert!(g.check_block(4, 0, 1).is_err());
        assert!(g.check_block(3, 0, 1696).is_ok());
        assert!(g.check_block(3, 0, 1697).is_err());
        assert!(g.check_block(3, u32::MAX, 1).is_err());
    }
}
