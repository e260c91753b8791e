//! [`Bitfield`]: the set of pieces a peer has, kept as the BEP 3 bitfield
//! bytes it travels as, with the spare bits after the last piece always 0.

use super::WireError;

/// A fixed-length set of piece indices, stored as BEP 3 bitfield bytes
/// (high bit of byte 0 is piece 0). Spare bits in the last byte are always 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: usize,
}

impl Bitfield {
    pub fn new(len: usize) -> Bitfield {
        Bitfield {
            bytes: vec![0; len.div_ceil(8)],
            len,
        }
    }
    /// Every piece set (a seeder's bitfield).
    pub fn full(len: usize) -> Bitfield {
        let mut b = Bitfield::new(len);
        b.set_all();
        b
    }
    /// Rejects a wrong byte count or set spare bits.
    pub fn from_bytes(bytes: &[u8], len: usize) -> Result<Bitfield, WireError> {
        let expected = len.div_ceil(8);
        if bytes.len() != expected {
            return Err(WireError::BitfieldSize {
                got: bytes.len(),
                expected,
                pieces: len,
            });
        }
        if let Some(&last) = bytes.last() {
            if last & !last_byte_mask(len) != 0 {
                return Err(WireError::BitfieldSpareBits(len));
            }
        }
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len,
        })
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// False for an index out of range.
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bytes[i / 8] & bit(i) != 0
    }
    /// Ignores an index out of range.
    pub fn set(&mut self, i: usize) {
        if i < self.len {
            self.bytes[i / 8] |= bit(i);
        }
    }
    /// Ignores an index out of range.
    pub fn clear(&mut self, i: usize) {
        if i < self.len {
            self.bytes[i / 8] &= !bit(i);
        }
    }
    pub fn set_all(&mut self) {
        self.bytes.fill(0xff);
        if let Some(last) = self.bytes.last_mut() {
            *last = last_byte_mask(self.len);
        }
    }
    pub fn count(&self) -> usize {
        self.bytes.iter().map(|b| b.count_ones() as usize).sum()
    }
    /// True when every piece is set (also for an empty bitfield).
    pub fn all(&self) -> bool {
        self.count() == self.len
    }
    /// Set indices in ascending order; skips whole empty bytes.
    pub fn iter_set(&self) -> impl Iterator<Item = usize> + '_ {
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .flat_map(|(byte, &b)| {
                (0..8)
                    .filter(move |bit_i| b & (0x80 >> bit_i) != 0)
                    .map(move |bit_i| byte * 8 + bit_i)
            })
    }
    /// Unset indices in ascending order; skips whole full bytes.
    pub fn iter_unset(&self) -> impl Iterator<Item = usize> + '_ {
        let len = self.len;
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0xff)
            .flat_map(|(byte, &b)| {
                (0..8)
                    .filter(move |bit_i| b & (0x80 >> bit_i) == 0)
                    .map(move |bit_i| byte * 8 + bit_i)
            })
            .take_while(move |&i| i < len)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn bit(i: usize) -> u8 {
    0x80 >> (i % 8)
}

/// The bits of the last byte that belong to pieces (`0xff` when `len` is a
/// multiple of 8).
fn last_byte_mask(len: usize) -> u8 {
    match len % 8 {
        0 => 0xff,
        r => !(0xffu8 >> r),
    }
}
