//! Magnet links: `magnet:?xt=urn:btih:<40 hex or 32 base32>&dn=<name>&tr=<tracker>`.
// STUB: the signatures below are the agreed API; bodies are filled in by the metainfo work.
#![allow(unused_variables)]

use crate::metainfo::InfoHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    pub name: Option<String>,
    pub trackers: Vec<String>,
    /// `x.pe` peer addresses (`host:port`).
    pub peers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// Placeholder; the real variants name each problem.
    #[error("{0}")]
    Invalid(String),
}

impl Magnet {
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        todo!()
    }
    /// The link, with `dn` and `tr` URL-encoded.
    pub fn to_uri(&self) -> String {
        todo!()
    }
}
