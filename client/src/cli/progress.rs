//! Download progress: a live bar per download on a terminal (indicatif), a
//! plain line soon after the start and then every 2 s otherwise. Reads the coordinator's status
//! snapshots; never blocks the engine.

use std::io::IsTerminal;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

use indicatif::{ProgressBar, ProgressStyle};
use minitorrent_common::metainfo::{format_size, InfoHash};

use crate::core::msg::{count, format_rate, Phase, TorrentStatus};
use crate::session::{tracker_words, Session};

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
    /// Dropping it wakes the display thread at once (it waits on the other
    /// end between updates), so the summary that follows is not delayed.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Sleeps `d` unless the display is stopped meanwhile; true to go on.
fn pause(stop: &crossbeam_channel::Receiver<()>, d: Duration) -> bool {
    matches!(stop.recv_timeout(d), Err(RecvTimeoutError::Timeout))
}

impl Progress {
    /// Shows the progress of one download until [`Progress::finish`].
    pub fn start(s: &Session, info_hash: InfoHash) -> Progress {
        let (stop, flag) = crossbeam_channel::bounded::<()>(0);
        let Some(h) = s.handle(&info_hash) else {
            return Progress {
                stop: None,
                thread: None,
            };
        };
        let status = h.status.clone();
        let board = s.tracker_board();
        let tty = std::io::stderr().is_terminal();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let snapshot = || status.lock().map(|s| s.clone()).ok();
                if tty {
                    let bar = ProgressBar::new(0);
                    let mut shown = None;
                    loop {
                        if let Some(s) = snapshot() {
                            show_on_bar(&bar, &s, &mut shown);
                            // The trackers only when one fails: the bar is short.
                            let t = board.snapshot();
                            // (show_on_bar sets the prefix anew outside
                            // the metadata phase, which shows none.)
                            if s.phase != Phase::Metadata
                                && t.iter().any(|t| t.last_error.is_some())
                            {
                                bar.set_prefix(format!("{}; {}", bar.prefix(), tracker_words(&t)));
                            }
                        }
                        if !pause(&flag, Duration::from_millis(200)) {
                            break;
                        }
                    }
                    bar.finish_and_clear();
                } else {
                    let started = std::time::Instant::now();
                    let mut schedule = PlainSchedule::new();
                    while pause(&flag, PLAIN_POLL) {
                        if schedule.due(started.elapsed()) {
                            if let Some(s) = snapshot() {
                                if matches!(
                                    s.phase,
                                    Phase::Downloading | Phase::Metadata | Phase::Checking { .. }
                                ) {
                                    eprintln!("{}; {}", line(&s), tracker_words(&board.snapshot()));
                                }
                            }
                        }
                    }
                }
            })
            .ok();
        Progress {
            stop: Some(stop),
            thread,
        }
    }

    /// Stops the display and waits until the bar is cleared, so that what
    /// is printed next is not mixed with it.
    pub fn finish(&mut self) {
        self.stop = None;
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

/// What the bar looks like: a spinner while the size is unknown, a bar
/// once it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BarKind {
    Spinner,
    Bar,
}

/// Shows one status snapshot on the live bar. The rate and ETA are the
/// swarm's (bytes fetched from peers), not the bar's own estimate, which
/// would count the data found on disk by a resume as downloaded at once.
fn show_on_bar(bar: &ProgressBar, s: &TorrentStatus, shown: &mut Option<BarKind>) {
    let kind = if s.phase == Phase::Metadata {
        BarKind::Spinner
    } else {
        BarKind::Bar
    };
    if *shown != Some(kind) {
        let template = match kind {
            BarKind::Spinner => "{spinner} {msg}",
            BarKind::Bar => "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {percent:>3}% {prefix}",
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        if kind == BarKind::Spinner {
            bar.enable_steady_tick(Duration::from_millis(120));
        } else {
            bar.disable_steady_tick();
        }
        *shown = Some(kind);
    }
    match &s.phase {
        Phase::Metadata => {
            bar.set_message(format!("{}: {}", s.name, metadata_words(s)));
        }
        Phase::Checking { done, total } => {
            // Pieces hashed, shown as a share of the size.
            let size = s.size.unwrap_or(0);
            let at = size * u64::from(*done) / u64::from((*total).max(1));
            bar.set_message(format!("checking {}", s.name));
            bar.set_length(size);
            bar.set_position(at);
            bar.set_prefix(count(s.peers as u64, "peer"));
        }
        _ => {
            bar.set_message(s.name.clone());
            bar.set_length(s.size.unwrap_or(0));
            bar.set_position(s.bytes_have);
            let mut prefix = format!(
                "{} ETA {}, {}",
                format_rate(s.down_rate),
                eta(s),
                count(s.peers as u64, "peer")
            );
            if let Some(p) = &s.problem {
                prefix = format!("{prefix}: {p}");
            }
            bar.set_prefix(prefix);
        }
    }
}

/// While the metadata is being fetched: from how many peers.
fn metadata_words(s: &TorrentStatus) -> String {
    if s.peers == 0 {
        "fetching metadata: looking for peers…".to_string()
    } else {
        format!("fetching metadata from {}…", count(s.peers as u64, "peer"))
    }
}

/// Time left at the current rate, or "-".
fn eta(s: &TorrentStatus) -> String {
    let size = s.size.unwrap_or(0);
    if s.down_rate > 1.0 && size > s.bytes_have {
        format!("{:.0} s", (size - s.bytes_have) as f64 / s.down_rate)
    } else {
        "-".into()
    }
}

/// One status line: name, phase, bytes, %, rates, ETA, peers, and what
/// stops the download if something does. While the metadata is fetched
/// the size is unknown: the line says so instead of showing 0 of 0 bytes.
pub fn line(s: &TorrentStatus) -> String {
    with_problem(s, progress_words(s))
}

/// The menu's line for one torrent: [`line`] with the bytes uploaded and
/// whether it is seeding, before the problem if there is one.
pub fn menu_line(s: &TorrentStatus) -> String {
    let tag = match s.phase {
        Phase::Seeding => " [seeding]",
        Phase::Paused => " [paused]",
        Phase::Failed(_) => " [stopped by an error]",
        _ => "",
    };
    let words = format!(
        "{}, uploaded {}{tag}",
        progress_words(s),
        format_size(s.uploaded)
    );
    with_problem(s, words)
}

fn progress_words(s: &TorrentStatus) -> String {
    if s.phase == Phase::Metadata {
        return format!("{}: {}", s.name, metadata_words(s));
    }
    let size = s.size.unwrap_or(0);
    let pct = if size > 0 {
        s.bytes_have as f64 * 100.0 / size as f64
    } else {
        0.0
    };
    format!(
        "{}: {} {} of {} ({pct:.1}%), down {}, up {}, ETA {}, {}",
        s.name,
        s.phase,
        format_size(s.bytes_have),
        format_size(size),
        format_rate(s.down_rate),
        format_rate(s.up_rate),
        eta(s),
        count(s.peers as u64, "peer")
    )
}

fn with_problem(s: &TorrentStatus, mut words: String) -> String {
    if let Some(p) = &s.problem {
        words.push_str(": ");
        words.push_str(p);
    }
    words
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

    fn status(phase: Phase, peers: usize) -> TorrentStatus {
        TorrentStatus {
            info_hash: InfoHash([1; 20]),
            name: "f.bin".into(),
            size: None,
            pieces_total: 0,
            pieces_have: 0,
            bytes_have: 0,
            downloaded: 0,
            uploaded: 0,
            peers,
            down_rate: 0.0,
            up_rate: 0.0,
            phase,
            paths: Vec::new(),
            problem: None,
        }
    }

    #[test]
    fn fetching_metadata_is_said_rather_than_a_full_bar() {
        assert_eq!(
            line(&status(Phase::Metadata, 2)),
            "f.bin: fetching metadata from 2 peers…"
        );
        assert_eq!(
            line(&status(Phase::Metadata, 1)),
            "f.bin: fetching metadata from 1 peer…"
        );
        assert_eq!(
            line(&status(Phase::Metadata, 0)),
            "f.bin: fetching metadata: looking for peers…"
        );
    }

    #[test]
    fn the_line_names_its_units_and_counts_in_the_singular() {
        let mut s = status(Phase::Downloading, 1);
        s.size = Some(4 * 1024 * 1024);
        s.bytes_have = 1024 * 1024;
        s.down_rate = 1024.0 * 1024.0;
        s.up_rate = 512.0;
        assert_eq!(
            line(&s),
            "f.bin: downloading 1.0 MiB of 4.0 MiB (25.0%), down 1.0 MiB/s, up 512 B/s, ETA 3 s, 1 peer"
        );
        s.uploaded = 3 * 1024 * 1024;
        assert_eq!(
            menu_line(&s),
            "f.bin: downloading 1.0 MiB of 4.0 MiB (25.0%), down 1.0 MiB/s, up 512 B/s, ETA 3 s, \
             1 peer, uploaded 3.0 MiB"
        );
        s.problem = Some("every peer that has this file sent corrupt data".into());
        s.peers = 0;
        s.down_rate = 0.0;
        assert!(
            line(&s).ends_with("ETA -, 0 peers: every peer that has this file sent corrupt data"),
            "{}",
            line(&s)
        );
    }
}
