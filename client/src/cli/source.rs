//! What the user asked to download: a `.torrent` file, a magnet link, an
//! info hash or a name the tracker knows. One classifier for the command
//! line and the menu, so both accept the same things. A name waits a few
//! seconds for the tracker to know it, and a name several files share is
//! refused with the list of them (`session::AmbiguousName`): the command
//! line prints it, the menu asks which one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use minitorrent_common::magnet::Magnet;
use minitorrent_common::metainfo::{InfoHash, Metainfo};

use crate::session::{self, Added, Session};

/// What `get` (or the menu's download) was given.
#[derive(Debug)]
pub enum Source {
    Torrent(PathBuf),
    Magnet(Magnet),
    InfoHash(InfoHash),
    Name(String),
}

/// True for a path ending in `.torrent`, in any case.
pub fn is_torrent_file(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("torrent"))
}

pub fn classify(source: &str) -> Result<Source> {
    let source = source.trim();
    if source.starts_with("magnet:") {
        let m = Magnet::parse(source).map_err(|e| anyhow!("bad magnet link: {e}"))?;
        return Ok(Source::Magnet(m));
    }
    if is_torrent_file(Path::new(source)) {
        return Ok(Source::Torrent(PathBuf::from(source)));
    }
    if source.len() == 40 && source.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(Source::InfoHash(InfoHash::from_hex(source)?));
    }
    if source.is_empty() {
        bail!("nothing to download: give a .torrent, a magnet link, an info hash or a name");
    }
    Ok(Source::Name(source.to_string()))
}

/// Starts downloading what `src` names (the menu's path).
pub fn start_download(s: &Session, src: &str) -> Result<Added> {
    download(s, classify(src)?, None)
}

/// Starts downloading `src`; `metainfo` is the .torrent already read, if
/// the caller needed it first (`get` takes its tracker from it).
pub fn download(s: &Session, src: Source, metainfo: Option<Metainfo>) -> Result<Added> {
    match src {
        Source::Torrent(p) => match metainfo {
            Some(m) => s.download_metainfo(m),
            None => s.download_metainfo(session::read_torrent(&p)?),
        },
        Source::Magnet(m) => s.download_magnet(&m),
        Source::InfoHash(ih) => s.download_info_hash(ih, None, Vec::new()),
        Source::Name(n) => s.download_name(&n, || waiting_for(&n)),
    }
}

/// Said once while a download by name waits for the name to appear (its
/// seeder may still be hashing the file).
pub fn waiting_for(name: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "waiting for {name} to appear at the tracker…");
    let _ = o.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_recognised() {
        assert!(matches!(classify("a.TORRENT").unwrap(), Source::Torrent(_)));
        assert!(matches!(
            classify("dir/a.torrent").unwrap(),
            Source::Torrent(_)
        ));
        let hex = "0123456789abcdef0123456789abcdef01234567";
        assert!(matches!(classify(hex).unwrap(), Source::InfoHash(_)));
        let magnet = format!("magnet:?xt=urn:btih:{hex}&dn=x");
        assert!(matches!(classify(&magnet).unwrap(), Source::Magnet(_)));
        assert!(matches!(classify("report.pdf").unwrap(), Source::Name(n) if n == "report.pdf"));
        assert!(classify("  ").is_err());
        assert!(classify("magnet:?xt=bad").is_err());
    }
}
