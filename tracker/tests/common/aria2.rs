//! Finding aria2c for the interoperability tests of both crates (the
//! client's tests include this file by path).

use std::path::PathBuf;

/// The aria2c binary on the PATH. Without one the test fails with what to
/// install, unless `MINITORRENT_SKIP_INTEROP=1`, which skips it (`None`).
pub fn aria2c() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("aria2c"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("MINITORRENT_SKIP_INTEROP").as_deref() == Ok("1") {
            eprintln!("aria2c is not installed: test skipped (MINITORRENT_SKIP_INTEROP=1)");
            return None;
        }
        panic!(
            "aria2c is not installed: run scripts/test.sh, which installs it \
             (apt-get install aria2), or set MINITORRENT_SKIP_INTEROP=1 to skip"
        );
    }
    found
}
