//! The interactive menu, in the spirit of a classic seeder/leecher console.
//! Lines from stdin come from a reader thread over a channel, so the menu
//! prints download notices while it waits for input (and then prints its
//! prompt again), the engine never waits on stdin, and a pipe works as well
//! as a terminal. A name several files share is answered with a numbered
//! list to pick from; exiting while a download runs asks first. At end of
//! input the menu waits for the downloads it started, then exits (EXIT
//! sent).

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use crossbeam_channel::Receiver;
use minitorrent_common::metainfo::{format_size, InfoHash};

use crate::core::msg::{count, Notice, Phase, TorrentStatus};
use crate::session::{self, Added, AmbiguousName, FileSummary, NameMatch, Session};

const MENU: &str = concat!(
    " 1) seed a file\n",
    " 2) download a file (name, info hash, magnet link or .torrent)\n",
    " 3) search the tracker\n",
    " 4) view active torrents\n",
    " 5) show a file's magnet link\n",
    " 6) list a file's seeders\n",
    " 7) status of running downloads\n",
    " 8) exit\n",
    " also: pause NAME, resume NAME, remove NAME [--delete], limit up|down RATE (0: none)"
);

/// The live status (item 7 on a terminal) is redrawn this often...
const LIVE_EVERY: Duration = Duration::from_secs(1);
/// ...in lines this short, so none wraps on an 80-column terminal (a
/// wrapped line would break the redraw).
const LIVE_WIDTH: usize = 79;

fn out(s: &str) {
    super::output::stdout(format_args!("{s}"), true);
    super::output::flush();
}

fn prompt(s: &str) {
    super::output::stdout(format_args!("{s}"), false);
    super::output::flush();
}

/// What the menu waits for next.
enum Awaiting {
    Choice,
    SeedPath,
    Download,
    Search,
    Magnet,
    /// A name or info hash whose peers to list.
    Peers,
    /// Which of several files sharing `name` (a number, or cancel).
    Pick {
        name: String,
        candidates: Vec<FileSummary>,
        then: Then,
    },
    /// "a download is running; quit anyway?" (`running` of them).
    ConfirmQuit {
        running: usize,
    },
    /// The live status is on screen; any line ends it.
    Live,
}

/// What to do with the file picked among several of the same name.
#[derive(Clone, Copy)]
enum Then {
    Download,
    Peers,
}

/// The prompt for a state; printed again after a background message.
fn prompt_for(state: &Awaiting) -> String {
    match state {
        Awaiting::Choice => "choice> ".into(),
        Awaiting::SeedPath => "path of the file or directory to seed> ".into(),
        Awaiting::Download => "name, info hash, magnet link or .torrent> ".into(),
        Awaiting::Search => "search for (empty lists all)> ".into(),
        Awaiting::Magnet => "number or name> ".into(),
        Awaiting::Peers => "name or info hash> ".into(),
        Awaiting::Pick { .. } => "number (empty to cancel)> ".into(),
        Awaiting::ConfirmQuit { running } => {
            let verb = if *running == 1 { "is" } else { "are" };
            format!(
                "{} {verb} running; quit anyway? [y/N] ",
                downloads_running(*running)
            )
        }
        Awaiting::Live => String::new(),
    }
}

/// What one input line leads to.
enum Step {
    Next(Awaiting),
    Quit,
}

/// The menu's own view of the session: the downloads it started and not
/// yet seen finish, and the lines of the live status on screen.
struct Menu<'a> {
    s: &'a Session,
    downloads: HashSet<InfoHash>,
    stats: Option<PathBuf>,
    /// Live status on a terminal; in a pipe, item 7 prints once.
    live_ok: bool,
    live_lines: usize,
}

pub fn run(s: &Session, ctrlc: Receiver<()>, stats: Option<PathBuf>) -> Result<()> {
    let (tx, lines) = crossbeam_channel::unbounded::<String>();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })?;
    out(&format!(
        "minitorrent peer {} on {}, tracker {}",
        s.peer_id(),
        s.listen_addr(),
        s.tracker_in_use()
    ));
    out(MENU);
    let mut m = Menu {
        s,
        downloads: HashSet::new(),
        stats,
        live_ok: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
        live_lines: 0,
    };
    let mut state = Awaiting::Choice;
    prompt(&prompt_for(&state));
    let ticker = crossbeam_channel::tick(LIVE_EVERY);
    let never = crossbeam_channel::never();
    loop {
        let tick = if matches!(state, Awaiting::Live) {
            &ticker
        } else {
            &never
        };
        crossbeam_channel::select! {
            recv(lines) -> line => match line {
                Ok(line) => match m.handle(state, line.trim()) {
                    Step::Next(next) => {
                        state = next;
                        prompt(&prompt_for(&state));
                    }
                    Step::Quit => break,
                },
                Err(_) => {
                    if !m.downloads.is_empty() {
                        out(&format!(
                            "\nend of input: waiting for {} to finish (Ctrl-C to stop)",
                            downloads_running(m.downloads.len())
                        ));
                    }
                    return m.wait_downloads(ctrlc);
                }
            },
            recv(s.notices()) -> n => {
                if let Ok(n) = n {
                    m.notice(&n);
                    // The message came in the middle of a prompt (or of the
                    // live status, which starts again below it).
                    m.live_lines = 0;
                    prompt(&prompt_for(&state));
                }
            },
            recv(tick) -> _ => {
                if !m.draw_live() {
                    out("no download running");
                    state = Awaiting::Choice;
                    prompt(&prompt_for(&state));
                }
            },
            recv(ctrlc) -> _ => break,
        }
    }
    out("exiting");
    s.shutdown();
    Ok(())
}

/// "a download is running", "2 downloads are running".
fn downloads_running(n: usize) -> String {
    if n == 1 {
        "a download".to_string()
    } else {
        format!("{n} downloads")
    }
}

/// True while a torrent is still being downloaded (not seeding, failed or
/// stopped).
fn running(st: &TorrentStatus) -> bool {
    matches!(
        st.phase,
        Phase::Metadata | Phase::Checking { .. } | Phase::Downloading
    )
}

/// Reads "1", "2", ... as an index into a list of `len`.
fn pick_index(line: &str, len: usize) -> Option<usize> {
    line.parse::<usize>()
        .ok()
        .and_then(|i| i.checked_sub(1))
        .filter(|i| *i < len)
}

impl Menu<'_> {
    fn wait_downloads(mut self, ctrlc: Receiver<()>) -> Result<()> {
        while !self.downloads.is_empty() {
            crossbeam_channel::select! {
                recv(self.s.notices()) -> n => match n {
                    Ok(n) => self.notice(&n),
                    Err(_) => break,
                },
                recv(ctrlc) -> _ => break,
            }
        }
        out("exiting");
        self.s.shutdown();
        Ok(())
    }

    fn notice(&mut self, n: &Notice) {
        match n {
            Notice::MetadataReceived {
                name,
                size,
                pieces_total,
                ..
            } => out(&format!(
                "\nmetadata received: {name} ({}, {})",
                format_size(*size),
                count(*pieces_total, "piece")
            )),
            Notice::Completed(sum) => {
                self.downloads.remove(&sum.info_hash);
                out(&format!("\ndownload complete: {}", sum.name));
                out(&sum.line());
                for l in sum.peer_lines() {
                    out(&l);
                }
                if let Some(p) = self.stats.as_deref() {
                    let mut v = sum.to_json();
                    if let serde_json::Value::Object(m) = &mut v {
                        m.insert(
                            "trackers".into(),
                            serde_json::json!(self.s.tracker_states()),
                        );
                    }
                    write_stats(p, &v);
                }
                out(&format!("now seeding {}", sum.name));
            }
            Notice::Failed {
                info_hash,
                name,
                error,
            } => {
                self.downloads.remove(info_hash);
                out(&format!("\ndownload of {name} failed: {error}"));
            }
        }
    }

    /// Handles one input line.
    fn handle(&mut self, state: Awaiting, line: &str) -> Step {
        let s = self.s;
        let next = match state {
            Awaiting::Choice => return self.choice(line),
            Awaiting::SeedPath => {
                if line.is_empty() {
                    out("nothing to seed");
                } else {
                    let p = Path::new(line);
                    let r = if crate::cli::source::is_torrent_file(p) {
                        session::read_torrent(p).and_then(|m| s.seed_metainfo(m, s.dir(), true))
                    } else {
                        s.seed_path_with(p, None, &mut super::share::hash_progress(line))
                    };
                    match r {
                        Ok(a) => {
                            show_added(&a, "seeding");
                            out(&format!("magnet: {}", a.magnet));
                        }
                        Err(e) => out(&format!("cannot seed {line}: {}", super::error_chain(&e))),
                    }
                }
                Awaiting::Choice
            }
            Awaiting::Download => self.download(line),
            Awaiting::Search => {
                match s.search(line) {
                    Ok(files) if files.is_empty() => out(&format!("no files match {line:?}")),
                    Ok(files) => {
                        for f in files {
                            out(&format!(
                                "  {}  {}  seeders {}  leechers {}  {}",
                                f.name,
                                format_size(f.size),
                                f.seeders,
                                f.leechers,
                                f.info_hash
                            ));
                        }
                    }
                    Err(e) => out(&format!("search failed: {}", super::error_chain(&e))),
                }
                Awaiting::Choice
            }
            Awaiting::Magnet => {
                let names = list_names(s);
                let pick = pick_index(line, names.len())
                    .and_then(|i| names.get(i).cloned())
                    .unwrap_or_else(|| line.to_string());
                match s
                    .handles()
                    .into_iter()
                    .find(|h| h.status.lock().map(|st| st.name == pick).unwrap_or(false))
                {
                    Some(h) => out(&format!("magnet: {}", h.magnet)),
                    None => out(&format!("no active torrent called {pick:?}")),
                }
                Awaiting::Choice
            }
            Awaiting::Peers => self.peers(line),
            Awaiting::Pick {
                name,
                candidates,
                then,
            } => {
                let by_hash = || candidates.iter().position(|c| c.info_hash.to_hex() == line);
                match pick_index(line, candidates.len()).or_else(by_hash) {
                    Some(i) => {
                        let c = &candidates[i];
                        match then {
                            Then::Download => {
                                let r = s.download_info_hash(
                                    c.info_hash,
                                    Some(c.name.clone()),
                                    Vec::new(),
                                );
                                self.started(&c.name, r);
                            }
                            Then::Peers => show_peers(s, c.info_hash),
                        }
                        Awaiting::Choice
                    }
                    None if line.is_empty() || matches!(line, "c" | "cancel") => {
                        out("cancelled");
                        Awaiting::Choice
                    }
                    None => {
                        out(&format!(
                            "pick a number from 1 to {} (empty to cancel)",
                            candidates.len()
                        ));
                        Awaiting::Pick {
                            name,
                            candidates,
                            then,
                        }
                    }
                }
            }
            Awaiting::ConfirmQuit { .. } => {
                if matches!(line.to_ascii_lowercase().as_str(), "y" | "yes") {
                    return Step::Quit;
                }
                out("not quitting");
                Awaiting::Choice
            }
            Awaiting::Live => {
                // Any line (Enter) ends the live status.
                self.live_lines = 0;
                Awaiting::Choice
            }
        };
        Step::Next(next)
    }

    /// A line at the `choice>` prompt: a number or word, maybe with its
    /// answer on the same line (`2 report.pdf`).
    fn choice(&mut self, line: &str) -> Step {
        let (cmd, arg) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, Some(a.trim())),
            None => (line, None),
        };
        let want = match cmd {
            "" => return Step::Next(Awaiting::Choice),
            "1" | "seed" => Awaiting::SeedPath,
            "2" | "get" | "download" => Awaiting::Download,
            "3" | "search" => Awaiting::Search,
            "4" | "list" | "view" => {
                view(self.s);
                return Step::Next(Awaiting::Choice);
            }
            "5" | "magnet" => {
                let names = list_names(self.s);
                if names.is_empty() {
                    out("no active torrents");
                    return Step::Next(Awaiting::Choice);
                }
                for (i, n) in names.iter().enumerate() {
                    out(&format!(" {}. {n}", i + 1));
                }
                Awaiting::Magnet
            }
            "6" | "peers" | "seeders" => Awaiting::Peers,
            "7" | "status" => return Step::Next(self.status()),
            "8" | "exit" | "quit" | "q" => {
                if self.downloads.is_empty() {
                    return Step::Quit;
                }
                return Step::Next(Awaiting::ConfirmQuit {
                    running: self.downloads.len(),
                });
            }
            "pause" | "resume" | "remove" => {
                self.control(cmd, arg.unwrap_or(""));
                return Step::Next(Awaiting::Choice);
            }
            "limit" => {
                limit(self.s, arg.unwrap_or(""));
                return Step::Next(Awaiting::Choice);
            }
            "?" | "help" | "menu" => {
                out(MENU);
                return Step::Next(Awaiting::Choice);
            }
            other => {
                out(&format!("unknown choice {other:?}; pick 1-8"));
                out(MENU);
                return Step::Next(Awaiting::Choice);
            }
        };
        match arg {
            Some(a) if !a.is_empty() || matches!(want, Awaiting::Search) => self.handle(want, a),
            _ => Step::Next(want),
        }
    }

    /// `pause NAME`, `resume NAME`, `remove NAME [--delete]`: NAME is a
    /// torrent's name (as `4` lists it) or its info hash. `--delete` deletes
    /// the files in `--dir` only.
    fn control(&mut self, cmd: &str, arg: &str) {
        let (what, delete) = match arg.strip_suffix("--delete") {
            Some(w) => (w.trim(), true),
            None => (arg.trim(), false),
        };
        if what.is_empty() {
            out(&format!(
                "{cmd} what? give a name from the list (4) or an info hash"
            ));
            return;
        }
        let all = self.s.all_statuses();
        let found = all
            .iter()
            .find(|st| st.name == what)
            .or_else(|| all.iter().find(|st| st.info_hash.to_hex() == what));
        let Some(st) = found else {
            out(&format!("no torrent called {what:?} (4 lists them)"));
            return;
        };
        let (ih, name) = (st.info_hash, st.name.clone());
        let r = match cmd {
            "pause" => self.s.pause(&ih).map(|_| format!("paused {name}")),
            "resume" => self.s.resume(&ih).map(|_| format!("resumed {name}")),
            _ => self
                .s
                .remove_torrent(&ih, delete.then(|| self.s.dir()))
                .map(|r| {
                    self.downloads.remove(&ih);
                    let mut line = match r.deleted.len() {
                        0 => format!("removed {name}"),
                        n => format!("removed {name} and deleted {}", count(n as u64, "file")),
                    };
                    for k in &r.kept {
                        line.push_str(&format!("\n  kept {k}"));
                    }
                    line
                }),
        };
        match r {
            Ok(line) => out(&line),
            Err(e) => out(&format!("cannot {cmd} {name}: {}", super::error_chain(&e))),
        }
    }

    /// Starts a download; a name several files share asks which one.
    fn download(&mut self, line: &str) -> Awaiting {
        match crate::cli::source::start_download(self.s, line) {
            Ok(a) => {
                show_added(&a, "downloading");
                self.downloads.insert(a.info_hash);
                Awaiting::Choice
            }
            Err(e) => match e.downcast::<AmbiguousName>() {
                Ok(a) => ask_which(a.name, a.candidates, Then::Download),
                Err(e) => {
                    out(&format!(
                        "cannot download {line:?}: {}",
                        super::error_chain(&e)
                    ));
                    Awaiting::Choice
                }
            },
        }
    }

    fn started(&mut self, what: &str, r: Result<Added>) {
        match r {
            Ok(a) => {
                show_added(&a, "downloading");
                self.downloads.insert(a.info_hash);
            }
            Err(e) => out(&format!(
                "cannot download {what:?}: {}",
                super::error_chain(&e)
            )),
        }
    }

    /// Lists the peers of a file given by name or info hash.
    fn peers(&mut self, line: &str) -> Awaiting {
        let s = self.s;
        if line.is_empty() {
            return Awaiting::Choice;
        }
        if let Ok(crate::cli::source::Source::InfoHash(ih)) = crate::cli::source::classify(line) {
            show_peers(s, ih);
            return Awaiting::Choice;
        }
        match s.find_name(line, Duration::ZERO, || {}) {
            Ok(NameMatch::One(r)) => show_peers(s, r.info_hash),
            Ok(NameMatch::Several(c)) => return ask_which(line.to_string(), c, Then::Peers),
            Err(e) => out(&format!(
                "cannot list the peers of {line:?}: {}",
                super::error_chain(&e)
            )),
        }
        Awaiting::Choice
    }

    /// Item 7: each running download's progress, rate and peers; on a
    /// terminal it stays live until Enter.
    fn status(&mut self) -> Awaiting {
        let running: Vec<TorrentStatus> = self.s.statuses().into_iter().filter(running).collect();
        if running.is_empty() {
            out("no download running (4 shows every torrent)");
            return Awaiting::Choice;
        }
        if !self.live_ok {
            for st in &running {
                out(&format!("  {}", crate::cli::progress::line(st)));
            }
            trackers(self.s);
            return Awaiting::Choice;
        }
        out("live status, Enter to go back to the menu:");
        self.live_lines = 0;
        self.draw_live();
        Awaiting::Live
    }

    /// Draws the running downloads over the previous drawing; false when
    /// none is left.
    fn draw_live(&mut self) -> bool {
        let running: Vec<TorrentStatus> = self.s.statuses().into_iter().filter(running).collect();
        let mut o = std::io::stdout().lock();
        if self.live_lines > 0 {
            // Up to the first line drawn, then clear to the end of the screen.
            let _ = write!(o, "\x1b[{}A\r\x1b[J", self.live_lines);
        }
        for st in &running {
            let _ = writeln!(o, "{}", live_line(st, LIVE_WIDTH));
        }
        let _ = o.flush();
        self.live_lines = running.len();
        !running.is_empty()
    }
}

/// One download in at most `width` characters: name (cut short if need
/// be), progress, download rate, peers.
fn live_line(st: &TorrentStatus, width: usize) -> String {
    let size = st.size.unwrap_or(0);
    let what = match st.phase {
        Phase::Metadata => "fetching metadata".to_string(),
        Phase::Checking { done, total } => format!("checking {done}/{total} pieces"),
        _ if size > 0 => format!(
            "{:.1}% of {}",
            st.bytes_have as f64 * 100.0 / size as f64,
            format_size(size)
        ),
        _ => st.phase.to_string(),
    };
    let peers = if st.peers == 1 {
        "1 peer".to_string()
    } else {
        format!("{} peers", st.peers)
    };
    let rest = format!(
        "  {what}  down {}/s  {peers}",
        format_size(st.down_rate as u64)
    );
    let room = width.saturating_sub(2 + rest.chars().count());
    let name: String = if st.name.chars().count() > room {
        let mut n: String = st.name.chars().take(room.saturating_sub(1)).collect();
        n.push('…');
        n
    } else {
        st.name.clone()
    };
    let line = format!("  {name}{rest}");
    line.chars().take(width).collect()
}

/// Prints the files sharing `name`, numbered, and waits for the pick.
fn ask_which(name: String, candidates: Vec<FileSummary>, then: Then) -> Awaiting {
    out(&format!(
        "{} different files are called {name:?}; which one?",
        candidates.len()
    ));
    for (i, c) in candidates.iter().enumerate() {
        out(&format!(" {}. {}", i + 1, session::candidate_line(c)));
    }
    Awaiting::Pick {
        name,
        candidates,
        then,
    }
}

/// The tracker's list of a swarm's peers: address, complete or not.
fn show_peers(s: &Session, info_hash: InfoHash) {
    let r = match s.peers_of(info_hash) {
        Ok(r) => r,
        Err(e) => {
            out(&format!(
                "cannot list the peers of {info_hash}: {}",
                super::error_chain(&e)
            ));
            return;
        }
    };
    out(&format!(
        "{} ({}) info hash {}: {}, {}",
        r.name,
        format_size(r.size),
        r.info_hash,
        count(r.seeders, "seeder"),
        count(r.leechers, "leecher")
    ));
    let me = s.peer_id();
    let mut peers = r.peers.clone();
    // Seeders first, then by address.
    peers.sort_by(|a, b| b.complete.cmp(&a.complete).then(a.addr.cmp(&b.addr)));
    for p in &peers {
        out(&format!(
            "  {}  {}  {}{}",
            p.addr,
            if p.complete {
                "complete   "
            } else {
                "downloading"
            },
            p.peer_id,
            if p.peer_id == me { " (this peer)" } else { "" }
        ));
    }
    let total = (r.seeders as usize).saturating_add(r.leechers as usize);
    if peers.len() < total {
        out(&format!(
            "  ({} more not listed: the tracker sends a sample)",
            total - peers.len()
        ));
    }
}

fn write_stats(p: &Path, json: &serde_json::Value) {
    let json = serde_json::to_string_pretty(json).unwrap_or_default();
    if let Err(e) = std::fs::write(p, json + "\n") {
        out(&format!("cannot write {}: {e}", p.display()));
    }
}

fn show_added(a: &Added, verb: &str) {
    match (a.size, a.pieces) {
        (Some(size), Some(n)) => out(&format!(
            "{verb} {} ({}, {size} bytes, {}) info hash {}",
            a.name,
            format_size(size),
            count(n, "piece"),
            a.info_hash
        )),
        _ => out(&format!(
            "{verb} {} (fetching metadata) info hash {}",
            a.name, a.info_hash
        )),
    }
}

/// `limit up RATE`, `limit down RATE`; `limit` alone shows them.
fn limit(s: &Session, arg: &str) {
    let show = |r: u64| match r {
        0 => "unlimited".to_string(),
        r => format!("{}/s", format_size(r)),
    };
    let mut words = arg.split_whitespace();
    let (dir, rate) = (words.next(), words.next());
    let parsed = rate.map(crate::cli::config::parse_rate);
    match (dir, parsed) {
        (None, _) => {}
        (Some("up"), Some(Ok(r))) => {
            let _ = s.set_limits(Some(r), None);
        }
        (Some("down"), Some(Ok(r))) => {
            if let Err(e) = s.set_limits(None, Some(r)) {
                out(&format!("cannot set the limit: {e}"));
                return;
            }
        }
        (Some(_), Some(Err(e))) => {
            out(&format!("cannot set the limit: {e}"));
            return;
        }
        _ => {
            out("limit up RATE or limit down RATE (500k, 2M; 0: unlimited)");
            return;
        }
    }
    let (up, down) = s.limits();
    out(&format!(
        "limits: upload {}, download {}",
        show(up),
        show(down)
    ));
}

fn list_names(s: &Session) -> Vec<String> {
    s.statuses().into_iter().map(|st| st.name).collect()
}

fn view(s: &Session) {
    let all = s.all_statuses();
    if all.is_empty() {
        out("no active torrents");
        return;
    }
    for st in all {
        out(&format!("  {}", crate::cli::progress::menu_line(&st)));
    }
    trackers(s);
}

/// The trackers: the one in use, and the last error of each that failed.
fn trackers(s: &Session) {
    for t in s.tracker_states() {
        let mut line = format!("  tracker {} ({})", t.url, t.protocol);
        if t.in_use {
            line.push_str(" in use");
        }
        if let Some(e) = &t.last_error {
            line.push_str(&format!(", last error: {e}"));
        }
        out(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, phase: Phase, have: u64, peers: usize) -> TorrentStatus {
        TorrentStatus {
            info_hash: InfoHash([7; 20]),
            name: name.into(),
            size: Some(4 << 20),
            pieces_total: 16,
            pieces_have: 0,
            bytes_have: have,
            downloaded: have,
            uploaded: 0,
            peers,
            down_rate: 1_500_000.0,
            up_rate: 0.0,
            phase,
            paths: Vec::new(),
            problem: None,
        }
    }

    #[test]
    fn a_live_line_fits_the_width_and_keeps_the_figures() {
        let l = live_line(&status("report.pdf", Phase::Downloading, 1 << 20, 1), 79);
        assert!(l.contains("report.pdf  25.0% of 4.0 MiB  down "), "{l}");
        assert!(l.ends_with("/s  1 peer"), "{l}");
        let long = "a-very-long-name-".repeat(10);
        let l = live_line(&status(&long, Phase::Downloading, 0, 3), 79);
        assert!(l.chars().count() <= 79, "{l}");
        assert!(l.contains('…') && l.ends_with("3 peers"), "{l}");
        let l = live_line(&status("m", Phase::Metadata, 0, 0), 79);
        assert!(
            l.contains("fetching metadata") && l.ends_with("0 peers"),
            "{l}"
        );
    }

    #[test]
    fn picks_are_numbers_from_one() {
        assert_eq!(pick_index("1", 2), Some(0));
        assert_eq!(pick_index("2", 2), Some(1));
        assert_eq!(pick_index("3", 2), None);
        assert_eq!(pick_index("0", 2), None);
        assert_eq!(pick_index("-1", 2), None);
        assert_eq!(pick_index("x", 2), None);
    }

    #[test]
    fn every_state_that_reads_a_line_has_a_prompt() {
        assert_eq!(prompt_for(&Awaiting::Choice), "choice> ");
        for st in [
            Awaiting::SeedPath,
            Awaiting::Download,
            Awaiting::Search,
            Awaiting::Magnet,
            Awaiting::Peers,
        ] {
            assert!(prompt_for(&st).ends_with("> "));
        }
        assert_eq!(
            prompt_for(&Awaiting::ConfirmQuit { running: 1 }),
            "a download is running; quit anyway? [y/N] "
        );
        assert_eq!(
            prompt_for(&Awaiting::ConfirmQuit { running: 2 }),
            "2 downloads are running; quit anyway? [y/N] "
        );
        assert_eq!(count(1u32, "seeder"), "1 seeder");
        assert_eq!(count(0u32, "leecher"), "0 leechers");
    }
}
