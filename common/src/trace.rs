//! The time stamp at the start of every `--trace` line, shared by the tracker
//! and the peer so their logs line up. Only the formatting lives here: the
//! binaries read the clock and pass the time in.

use std::time::Duration;

/// `HH:MM:SS.mmm` (UTC) for a time given as the duration since the Unix
/// epoch; the date is dropped and milliseconds are truncated, not rounded.
pub fn hms_millis(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since_epoch.subsec_millis()
    )
}
