//! Files uploaded from the page: their names checked (nothing lands outside
//! the directory, nothing hidden, nothing overwritten unless asked), their
//! bytes streamed to a temporary file below `DIR/.minitorrent/uploads/`,
//! and the whole file moved to its name only once every byte arrived.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use super::bounds::MAX_NAME;
use crate::cli::share::CACHE_DIR;

/// Why an upload was refused or failed, with the HTTP status to answer.
#[derive(Debug)]
pub struct UploadError {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> UploadError {
    UploadError {
        status,
        message: message.into(),
    }
}

/// The relative path an uploaded file's `name` stands for: components
/// separated by `/` (a folder upload keeps its folders), none empty, `.`,
/// `..` or hidden, no backslash or NUL, not absolute, not a `.part` name
/// (those are unfinished downloads).
pub fn check_name(name: &str) -> Result<PathBuf, UploadError> {
    let bad = |why: &str| refuse(400, format!("cannot store a file named {name:?}: {why}"));
    if name.trim().is_empty() {
        return Err(refuse(400, "the file has no name: give ?name=FILE"));
    }
    if name.len() > MAX_NAME {
        return Err(bad(&format!("the name is longer than {MAX_NAME} bytes")));
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Err(bad(
            "an absolute path; names are relative to the shared folder",
        ));
    }
    if name.contains('\0') || name.contains('\\') {
        return Err(bad("it contains a NUL or a backslash"));
    }
    let mut rel = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" => return Err(bad("it has an empty part (// or a trailing /)")),
            "." | ".." => return Err(bad("'.' and '..' would leave the shared folder")),
            p if p.starts_with('.') => {
                return Err(bad("hidden names (starting with '.') are not shared"))
            }
            p if p.len() > 255 => return Err(bad("one part is longer than 255 bytes")),
            p => rel.push(p),
        }
    }
    if name.ends_with(".part") {
        return Err(bad(
            "names ending in .part are kept for unfinished downloads",
        ));
    }
    // Belt and braces: what the checks above let through is plain.
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad("not a plain relative path"));
    }
    Ok(rel)
}

/// Where `rel` goes below `dir`, with each existing directory on the way
/// checked to be a real directory inside `dir` (not a link out of it), and
/// whether a file is there already.
pub fn target(dir: &Path, rel: &Path) -> Result<(PathBuf, bool), UploadError> {
    let root = dir
        .canonicalize()
        .map_err(|e| refuse(500, format!("the shared folder {}: {e}", dir.display())))?;
    let mut at = root.clone();
    let parts: Vec<_> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(
                    400,
                    format!(
                        "{} is a symbolic link; uploads do not follow links",
                        rel.display()
                    ),
                ))
            }
            Ok(m) if !last && !m.is_dir() => {
                return Err(refuse(
                    409,
                    format!(
                        "{} is a file, not a folder",
                        at.strip_prefix(&root).unwrap_or(&at).display()
                    ),
                ))
            }
            Ok(m) if last && m.is_dir() => {
                return Err(refuse(409, format!("{} is a folder", rel.display())))
            }
            Ok(_) if last => return Ok((at, true)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(refuse(500, format!("{}: {e}", at.display()))),
        }
    }
    Ok((at, false))
}

/// The temporary directory of uploads in progress.
pub fn temp_dir(dir: &Path) -> PathBuf {
    dir.join(CACHE_DIR).join("uploads")
}

/// Temporary files of uploads cut short by an earlier run (untouched for
/// [`STALE_UPLOAD`]) are deleted when the page starts.
pub const STALE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(600);

/// Deletes what uploads cut short (a crash, Ctrl-C) left in the temporary
/// directory.
pub fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(temp_dir(dir)) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let stale = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_UPLOAD);
        if stale && p.extension().is_some_and(|x| x == "upload") {
            match std::fs::remove_file(&p) {
                Ok(()) => log::info!("web: deleted {}, an upload cut short", p.display()),
                Err(e) => log::warn!("web: cannot delete {}: {e}", p.display()),
            }
        }
    }
}

/// Copies `body` (exactly `len` bytes) into a new temporary file and
/// returns it. A body that ends early, stalls or cannot be written leaves
/// nothing behind.
pub fn receive(dir: &Path, body: &mut dyn Read, len: u64) -> Result<PathBuf, UploadError> {
    let tmp_dir = temp_dir(dir);
    std::fs::create_dir_all(&tmp_dir)
        .map_err(|e| refuse(500, format!("cannot create {}: {e}", tmp_dir.display())))?;
    let tmp = tmp_dir.join(format!(
        "{}-{:016x}.upload",
        std::process::id(),
        fastrand::u64(..)
    ));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| disk_error(&tmp, e))?;
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0u64;
        while got < len {
            let n = match body.read(&mut buf) {
                Ok(0) => {
                    return Err(refuse(
                        400,
                        format!("the upload ended after {got} of {len} bytes"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(refuse(
                        408,
                        format!("the upload stopped after {got} of {len} bytes: {e}"),
                    ))
                }
            };
            f.write_all(&buf[..n]).map_err(|e| disk_error(&tmp, e))?;
            got += n as u64;
        }
        f.sync_all().map_err(|e| disk_error(&tmp, e))?;
        Ok(())
    })();
    match r {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn disk_error(path: &Path, e: io::Error) -> UploadError {
    if e.raw_os_error() == Some(libc::ENOSPC) {
        refuse(
            507,
            "the disk of the shared folder is full; free some space and upload again",
        )
    } else {
        refuse(500, format!("cannot write {}: {e}", path.display()))
    }
}

/// Gives the received file `tmp` its name `at`: without `overwrite`, only
/// if nothing took that name meanwhile (a hard link cannot replace a file).
pub fn place(tmp: &Path, at: &Path, overwrite: bool) -> Result<(), UploadError> {
    let r = (|| {
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(|e| disk_error(parent, e))?;
        }
        if overwrite {
            std::fs::rename(tmp, at).map_err(|e| disk_error(at, e))
        } else {
            match std::fs::hard_link(tmp, at) {
                Ok(()) => {
                    let _ = std::fs::remove_file(tmp);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(refuse(
                    409,
                    format!(
                        "{} already exists; send it again with overwrite=1 to replace it",
                        at.display()
                    ),
                )),
                Err(e) => Err(disk_error(at, e)),
            }
        }
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(check_name("a.txt").unwrap(), PathBuf::from("a.txt"));
        assert_eq!(
            check_name("dir/sub/a.txt").unwrap(),
            PathBuf::from("dir/sub/a.txt")
        );
        for bad in [
            "",
            " ",
            "../a",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            "a/",
            ".hidden",
            "d/.x",
            "a\\b",
            "a\0b",
            "x.part",
            ".",
            "..",
        ] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad:?}");
        }
        assert!(check_name(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn targets_stay_inside() {
        let d = std::env::temp_dir().join(format!("mt-upload-{}", fastrand::u64(..)));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("file"), b"x").unwrap();
        let (p, exists) = target(&d, Path::new("sub/new.bin")).unwrap();
        assert!(!exists && p.ends_with("sub/new.bin"));
        assert!(target(&d, Path::new("file")).unwrap().1);
        assert_eq!(target(&d, Path::new("file/x")).unwrap_err().status, 409);
        assert_eq!(target(&d, Path::new("sub")).unwrap_err().status, 409);
        std::os::unix::fs::symlink("/tmp", d.join("out")).unwrap();
        assert_eq!(target(&d, Path::new("out/x")).unwrap_err().status, 400);

        let mut body: &[u8] = b"hello";
        let tmp = receive(&d, &mut body, 5).unwrap();
        place(&tmp, &d.join("sub/new.bin"), false).unwrap();
        assert_eq!(std::fs::read(d.join("sub/new.bin")).unwrap(), b"hello");
        let mut body: &[u8] = b"again";
        let tmp = receive(&d, &mut body, 5).unwrap();
        assert_eq!(
            place(&tmp, &d.join("sub/new.bin"), false)
                .unwrap_err()
                .status,
            409
        );
        assert!(!tmp.exists(), "a refused upload leaves nothing");
        let mut short: &[u8] = b"abc";
        assert_eq!(receive(&d, &mut short, 10).unwrap_err().status, 400);
        assert_eq!(std::fs::read_dir(temp_dir(&d)).unwrap().count(), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
