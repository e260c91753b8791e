//! Download progress: a live bar per download on a terminal (indicatif), a
//! plain line every few seconds otherwise. Reads the coordinator's status
//! snapshots; never blocks the engine.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use minitorrent_common::metainfo::{format_size, InfoHash};

use crate::session::Session;
use crate::torrent::{Phase, TorrentStatus};

/// Plain progress lines come this often when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(3);

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
                            bar.set_message(s.name.clone());
                            bar.set_length(s.size.unwrap_or(0));
                            bar.set_position(s.bytes_have);
                            bar.set_prefix(format!("{} peers", s.peers));
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    bar.finish_and_clear();
                } else {
                    let mut waited = Duration::ZERO;
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(100));
                        waited += Duration::from_millis(100);
                        if waited >= PLAIN_EVERY {
                            waited = Duration::ZERO;
                            if let Some(s) = snapshot() {
                                if matches!(s.phase, Phase::Downloading | Phase::Metadata) {
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
