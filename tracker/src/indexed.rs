//! `IndexedVec`: a dense `Vec` of items plus a hash index of their positions.
//!
//! This is how the registry keeps a million peers small: the items sit
//! back to back in the vector (no per-bucket padding at a hash table's load
//! factor), and the index stores only a `u32` position per item, found by the
//! item's hash, which the caller computes (so it is never stored twice).
//! Removal swaps the last item into the hole, so positions stay dense; an
//! iteration order that changes is fine for a tracker.

use hashbrown::HashTable;

pub struct IndexedVec<T> {
    items: Vec<T>,
    index: HashTable<u32>,
}

impl<T> Default for IndexedVec<T> {
    fn default() -> Self {
        IndexedVec {
            items: Vec::new(),
            index: HashTable::new(),
        }
    }
}

impl<T> IndexedVec<T> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Mutable access to the items. Callers must not change what an item's
    /// hash is computed from.
    pub fn items_mut(&mut self) -> &mut [T] {
        &mut self.items
    }

    /// Position of the item with hash `hash` for which `eq` holds.
    pub fn position(&self, hash: u64, eq: impl Fn(&T) -> bool) -> Option<usize> {
        let items = &self.items;
        self.index
            .find(hash, |&i| eq(&items[i as usize]))
            .map(|&i| i as usize)
    }

    /// Appends `item` (whose hash is `hash`; the caller knows it is not there
    /// yet) and returns its position. `rehash` recomputes any item's hash when
    /// the index grows.
    pub fn push(&mut self, hash: u64, item: T, rehash: impl Fn(&T) -> u64) -> usize {
        let pos = self.items.len();
        self.items.push(item);
        let items = &self.items;
        self.index
            .insert_unique(hash, pos as u32, |&i| rehash(&items[i as usize]));
        pos
    }

    /// Removes the item at `pos`, moving the last item into its place.
    pub fn swap_remove(&mut self, pos: usize, rehash: impl Fn(&T) -> u64) -> T {
        let h = rehash(&self.items[pos]);
        if let Ok(slot) = self.index.find_entry(h, |&i| i as usize == pos) {
            slot.remove();
        }
        let last = self.items.len() - 1;
        if pos != last {
            let hl = rehash(&self.items[last]);
            if let Some(slot) = self.index.find_mut(hl, |&i| i as usize == last) {
                *slot = pos as u32;
            }
        }
        self.items.swap_remove(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, RandomState};

    #[test]
    fn push_find_and_swap_remove_stay_consistent() {
        let rs = RandomState::new();
        let h = |v: &u64| rs.hash_one(v);
        let mut iv = IndexedVec::default();
        for v in 0..1000u64 {
            assert_eq!(iv.push(h(&v), v, h), v as usize);
        }
        // Remove every third, from the front, so many items move.
        for v in (0..1000u64).step_by(3) {
            let pos = iv.position(h(&v), |x| *x == v).unwrap();
            assert_eq!(iv.swap_remove(pos, h), v);
        }
        assert_eq!(iv.len(), 666);
        for v in 0..1000u64 {
            let found = iv.position(h(&v), |x| *x == v);
            assert_eq!(found.is_some(), v % 3 != 0, "{v}");
            if let Some(p) = found {
                assert_eq!(iv.items()[p], v);
            }
        }
        while let Some(&v) = iv.items().first() {
            iv.swap_remove(0, h);
            assert!(iv.position(h(&v), |x| *x == v).is_none());
        }
        assert!(iv.is_empty());
    }
}
