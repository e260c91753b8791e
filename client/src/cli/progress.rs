//! Download progress: a live bar per download on a terminal (indicatif), a
//! plain line soon after the start and then every 2 s otherwise. Reads the coordinator's status
//! snapshots; never blocks the engine.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use minitorrent_common::metainfo::{format_size, InfoHash};

use crate::core::msg::{Phase, TorrentStatus};
use crate::session::Session;

/// Plain progress lines come this often when stderr is not a terminal...
const PLAIN_EVERY: Duration = Duration::from_secs(2);
/// ...the first one this soon, once the download had time to find a peer
/// (a short download should not finish before saying anything).
const PLAIN_FIRST: Duration = Duration::from_millis(500);
const PLAIN_POLL: Duration = Duration::from_millis(100);

/// When the plain lines are due, given the time since the display started.
#[derive(Debug)]
struct PlainSchedule {
    next: Duration,
}

impl PlainSchedule {
    fn new() -> PlainSchedule {
        PlainSchedule { next: PLAIN_FIRST }
    }
    fn due(&mut self, elapsed: Duration) -> bool {
        if elapsed < self.next {
            return false;
        }
        self.next = elapsed + PLAIN_EVERY;
        true
    }
}

pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Shows the progress of one download until [`Progress::finish`].
    pub fn start(s: &Session, info_hash: InfoHash) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let Some(h) = s.handle(&info_hash) else {
            return Progress { stop, thread: None };
        };
        let status = h.status.clone();
        let flag = stop.clone();
        let tty = std::io::stderr().is_terminal();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let snapshot = || status.lock().map(|s| s.clone()).ok();
                if tty {
                    let bar = ProgressBar::new(0);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {percent:>3}% {binary_bytes_per_sec} ETA {eta} {prefix}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    while !flag.load(Ordering::Relaxed) {
                        if let Some(s) = snapshot() {
                            if let Phase::Checking { done, total } = s.phase {
                                // Pieces hashed, shown as a share of the size.
                                let size = s.size.unwrap_or(0);
                                let at = size * u64::from(done) / u64::from(total.max(1));
                                bar.set_message(format!("checking {}", s.name));
                                bar.set_length(size);
                                bar.set_position(at);
                            } else {
                                bar.set_message(s.name.clone());
                                bar.set_length(s.size.unwrap_or(0));
                                bar.set_position(s.bytes_have);
                            }
                            bar.set_prefix(format!("{} peers", s.peers));
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    bar.finish_and_clear();
                } else {
                    let started = std::time::Instant::now();
                    let mut schedule = PlainSchedule::new();
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(PLAIN_POLL);
                        if schedule.due(started.elapsed()) {
                            if let Some(s) = snapshot() {
                                if matches!(
                                    s.phase,
                                    Phase::Downloading | Phase::Metadata | Phase::Checking { .. }
                                ) {
                                    eprintln!("{}", line(&s));
                                }
                            }
                        }
                    }
                }
            })
            .ok();
        Progress { stop, thread }
    }

    /// Stops the display and waits until the bar is cleared, so that what
    /// is printed next is not mixed with it.
    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One status line: name, bytes, %, rate, ETA, peers.
pub fn line(s: &TorrentStatus) -> String {
    let size = s.size.unwrap_or(0);
    let pct = if size > 0 {
        s.bytes_have as f64 * 100.0 / size as f64
    } else {
        0.0
    };
    let eta = if s.down_rate > 1.0 && size > s.bytes_have {
        format!("{:.0} s", (size - s.bytes_have) as f64 / s.down_rate)
    } else {
        "-".into()
    };
    format!(
        "{}: {} {}/{} ({pct:.1}%) down {}/s up {}/s ETA {eta} peers {}",
        s.name,
        s.phase,
        format_size(s.bytes_have),
        format_size(size),
        format_size(s.down_rate as u64),
        format_size(s.up_rate as u64),
        s.peers
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_soon_then_every_two_seconds() {
        let ms = Duration::from_millis;
        let mut s = PlainSchedule::new();
        assert!(!s.due(ms(100)));
        assert!(!s.due(ms(400)));
        assert!(s.due(ms(500)), "the first line comes at start");
        assert!(!s.due(ms(600)));
        assert!(!s.due(ms(2400)));
        assert!(s.due(ms(2500)));
        // A late poll (a busy machine) does not make lines bunch up.
        assert!(s.due(ms(5000)));
        assert!(!s.due(ms(5100)));
        assert!(!s.due(ms(6900)));
        assert!(s.due(ms(7000)));
    }
}
