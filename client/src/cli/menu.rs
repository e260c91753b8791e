//! The interactive menu, in the spirit of a classic seeder/leecher console.
//! Lines from stdin come from a reader thread over a channel, so the menu
//! prints download notices while it waits for input, the engine never waits
//! on stdin, and a pipe works as well as a terminal. At end of input the
//! menu waits for the downloads it started, then exits (EXIT sent).

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Result;
use crossbeam_channel::Receiver;
use minitorrent_common::metainfo::{format_size, InfoHash};

use crate::core::msg::{Notice, Phase};
use crate::session::{self, Added, Session};

const MENU: &str = concat!(
    " 1) seed a file\n",
    " 2) download a file (name, magnet link or .torrent)\n",
    " 3) search the tracker\n",
    " 4) view active torrents\n",
    " 5) show a file's magnet link\n",
    " 6) exit"
);

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
        s.tracker_addr()
    ));
    out(MENU);
    prompt("choice> ");
    let mut state = Awaiting::Choice;
    let mut downloads: HashSet<InfoHash> = HashSet::new();
    loop {
        crossbeam_channel::select! {
            recv(lines) -> line => match line {
                Ok(line) => {
                    let (next, quit) = handle(s, state, line.trim(), &mut downloads);
                    if quit {
                        break;
                    }
                    state = next;
                }
                Err(_) => {
                    if !downloads.is_empty() {
                        out(&format!(
                            "\nend of input: waiting for {} download(s) to finish (Ctrl-C to stop)",
                            downloads.len()
                        ));
                    }
                    return wait_downloads(s, ctrlc, stats, downloads);
                }
            },
            recv(s.notices()) -> n => {
                if let Ok(n) = n {
                    notice(&n, &mut downloads, stats.as_deref());
                    prompt(match state { Awaiting::Choice => "choice> ", _ => "> " });
                }
            },
            recv(ctrlc) -> _ => break,
        }
    }
    out("exiting");
    s.shutdown();
    Ok(())
}

fn wait_downloads(
    s: &Session,
    ctrlc: Receiver<()>,
    stats: Option<PathBuf>,
    mut downloads: HashSet<InfoHash>,
) -> Result<()> {
    while !downloads.is_empty() {
        crossbeam_channel::select! {
            recv(s.notices()) -> n => match n {
                Ok(n) => notice(&n, &mut downloads, stats.as_deref()),
                Err(_) => break,
            },
            recv(ctrlc) -> _ => break,
        }
    }
    out("exiting");
    s.shutdown();
    Ok(())
}

fn notice(n: &Notice, downloads: &mut HashSet<InfoHash>, stats: Option<&Path>) {
    match n {
        Notice::MetadataReceived {
            name,
            size,
            pieces_total,
            ..
        } => out(&format!(
            "\nmetadata received: {name} ({size} bytes, {pieces_total} pieces)"
        )),
        Notice::Completed(sum) => {
            downloads.remove(&sum.info_hash);
            out(&format!("\ndownload complete: {}", sum.name));
            out(&sum.line());
            for (peer, bytes) in &sum.from_peers {
                out(&format!("  from {peer}: {bytes} bytes"));
            }
            if let Some(p) = stats {
                let json = serde_json::to_string_pretty(&sum.to_json()).unwrap_or_default();
                if let Err(e) = std::fs::write(p, json + "\n") {
                    out(&format!("cannot write {}: {e}", p.display()));
                }
            }
            out(&format!("now seeding {}", sum.name));
        }
        Notice::Failed {
            info_hash,
            name,
            error,
        } => {
            downloads.remove(info_hash);
            out(&format!("\ndownload of {name} failed: {error}"));
        }
    }
}

fn show_added(a: &Added, verb: &str) {
    match (a.size, a.pieces) {
        (Some(size), Some(n)) => out(&format!(
            "{verb} {} ({size} bytes, {n} pieces) info hash {}",
            a.name, a.info_hash
        )),
        _ => out(&format!(
            "{verb} {} (fetching metadata) info hash {}",
            a.name, a.info_hash
        )),
    }
}

/// Handles one input line; returns the next state and whether to quit.
fn handle(
    s: &Session,
    state: Awaiting,
    line: &str,
    downloads: &mut HashSet<InfoHash>,
) -> (Awaiting, bool) {
    let next = match state {
        Awaiting::Choice => {
            let (cmd, arg) = match line.split_once(char::is_whitespace) {
                Some((c, a)) => (c, Some(a.trim())),
                None => (line, None),
            };
            let (want, ask) = match cmd {
                "" => {
                    prompt("choice> ");
                    return (Awaiting::Choice, false);
                }
                "1" | "seed" => (
                    Awaiting::SeedPath,
                    "path of the file or directory to seed> ",
                ),
                "2" | "get" | "download" => (Awaiting::Download, "name, magnet link or .torrent> "),
                "3" | "search" => (Awaiting::Search, "search for (empty lists all)> "),
                "4" | "list" | "view" => {
                    view(s);
                    (Awaiting::Choice, "")
                }
                "5" | "magnet" => {
                    let names = list_names(s);
                    if names.is_empty() {
                        out("no active torrents");
                        (Awaiting::Choice, "")
                    } else {
                        for (i, n) in names.iter().enumerate() {
                            out(&format!(" {}. {n}", i + 1));
                        }
                        (Awaiting::Magnet, "number or name> ")
                    }
                }
                "6" | "exit" | "quit" | "q" => return (Awaiting::Choice, true),
                "?" | "help" | "menu" => {
                    out(MENU);
                    (Awaiting::Choice, "")
                }
                other => {
                    out(&format!("unknown choice {other:?}; pick 1-6"));
                    out(MENU);
                    (Awaiting::Choice, "")
                }
            };
            match (want, arg) {
                (Awaiting::Choice, _) => {
                    prompt("choice> ");
                    return (Awaiting::Choice, false);
                }
                (w, Some(a)) if !a.is_empty() || matches!(w, Awaiting::Search) => {
                    return handle(s, w, a, downloads);
                }
                (w, _) => {
                    prompt(ask);
                    return (w, false);
                }
            }
        }
        Awaiting::SeedPath => {
            if line.is_empty() {
                out("nothing to seed");
            } else {
                let p = Path::new(line);
                let r = if crate::cli::source::is_torrent_file(p) {
                    session::read_torrent(p).and_then(|m| s.seed_metainfo(m, s.dir(), true))
                } else {
                    s.seed_path(p, None)
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
        Awaiting::Download => {
            match crate::cli::source::start_download(s, line) {
                Ok(a) => {
                    show_added(&a, "downloading");
                    downloads.insert(a.info_hash);
                }
                Err(e) => out(&format!(
                    "cannot download {line:?}: {}",
                    super::error_chain(&e)
                )),
            }
            Awaiting::Choice
        }
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
            let pick = line
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(1))
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
    };
    prompt("choice> ");
    (next, false)
}

fn list_names(s: &Session) -> Vec<String> {
    s.statuses().into_iter().map(|st| st.name).collect()
}

fn view(s: &Session) {
    let all = s.statuses();
    if all.is_empty() {
        out("no active torrents");
        return;
    }
    for st in all {
        let line = crate::cli::progress::line(&st);
        let tag = match st.phase {
            Phase::Seeding => " [seeding]",
            _ => "",
        };
        out(&format!(
            "  {line} uploaded {}{tag}",
            format_size(st.uploaded)
        ));
    }
}
