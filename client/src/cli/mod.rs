//! The command line: flags are parsed here, errors get their context here,
//! and each subcommand is a few calls on the [`Session`]. Also home of the
//! other shells over the session: the menu, the progress line and the
//! shared folder.

pub mod menu;
pub mod progress;
pub mod share;
pub mod source;

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::core::msg::{Notice, Summary};
use crate::net::tracker::TrackerProtocol;
use crate::session::{self, Added, Config, Session};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use crossbeam_channel::Receiver;
use minitorrent_common::magnet::Magnet;
use minitorrent_common::metainfo::format_size;
use source::Source;

#[derive(Parser, Debug)]
#[command(
    name = "minitorrent",
    version,
    about = "The minitorrent peer: seed files, download them from several peers at once, keep seeding.",
    after_help = "Without a command, an interactive menu starts (it also reads commands from a pipe)."
)]
struct Cli {
    /// Tracker address HOST:PORT [default: the torrent's announce, else 127.0.0.1:6969]
    #[arg(long, global = true, value_name = "HOST:PORT")]
    tracker: Option<String>,
    /// TCP port for peers; 0 takes any free port [default: 0]
    #[arg(long, global = true, value_name = "N")]
    port: Option<u16>,
    /// Directory for downloads and for a .torrent's data [default: .]
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Address to listen on
    #[arg(long, global = true, default_value = "0.0.0.0", value_name = "IP")]
    bind: IpAddr,
    /// Print every peer message and tracker datagram, decoded, on stderr
    #[arg(long, global = true)]
    trace: bool,
    /// Peers to connect to at once per download
    #[arg(long, global = true, default_value_t = 8, value_name = "N")]
    max_peers: usize,
    /// Upload limit for the whole process, bytes per second (suffixes k, M, G)
    #[arg(long, global = true, value_parser = parse_rate, value_name = "RATE")]
    max_upload_rate: Option<u64>,
    /// Write a JSON summary of each finished download (bytes per peer) here
    #[arg(long, global = true, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Tracker protocol: auto probes a udp:// tracker (JSON if it answers JSON, else BEP 15); a bare HOST:PORT is JSON
    #[arg(long, global = true, value_enum, default_value_t = TrackerProtocol::Auto, value_name = "PROTO")]
    tracker_protocol: TrackerProtocol,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make a .torrent for a file or a directory; prints the info hash and magnet link
    Create {
        path: PathBuf,
        /// Where to write the .torrent
        #[arg(short = 'o', long = "output", value_name = "FILE.torrent")]
        output: PathBuf,
        /// Piece length in bytes (a power of two, 16 KiB to 16 MiB) [default: from the size]
        #[arg(long, value_name = "BYTES")]
        piece_length: Option<u64>,
    },
    /// Seed files or directories (hashed now), or .torrent files (data looked up in --dir)
    Seed {
        #[arg(required = true, value_name = "PATH|TORRENT")]
        paths: Vec<PathBuf>,
        /// Piece length when hashing PATHs [default: from the size]
        #[arg(long, value_name = "BYTES")]
        piece_length: Option<u64>,
    },
    /// Download from a .torrent, a magnet link, an info hash, or a name known to the tracker
    Get {
        #[arg(value_name = "TORRENT|MAGNET|INFOHASH|NAME")]
        source: String,
        /// Exit when the download is complete instead of seeding it
        #[arg(long)]
        no_seed: bool,
    },
    /// List the files the tracker knows (names containing QUERY)
    Search {
        #[arg(default_value = "")]
        query: String,
    },
    /// Show what a .torrent holds
    Info {
        torrent: PathBuf,
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Seed every file in DIR, like a shared folder (metainfo cached in DIR/.minitorrent)
    Share { dir: PathBuf },
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000),
        Some((i, 'm' | 'M')) => (&s[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&s[..i], 1_000_000_000),
        _ => (s, 1),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|v| (v * mult as f64) as u64)
        .ok_or_else(|| format!("{s:?} is not a rate like 500k or 2M"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .init();
    crate::net::trace::enable(cli.trace);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("minitorrent: error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, leaving out a cause whose text an outer
/// message already includes.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if out.contains(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    out
}

fn config(cli: &Cli, announce: Option<&str>) -> Config {
    Config {
        tracker_protocol: session::effective_protocol(
            cli.tracker_protocol,
            cli.tracker.as_deref(),
            announce,
        ),
        bind: cli.bind,
        port: cli.port.unwrap_or(0),
        dir: cli.dir.clone().unwrap_or_else(|| PathBuf::from(".")),
        max_peers: cli.max_peers.max(1),
        max_upload_rate: cli.max_upload_rate.unwrap_or(0),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.cmd {
        None => {
            let tracker = session::pick_tracker(cli.tracker.as_deref(), None)?;
            let s = start(&cli, tracker, None)?;
            let ctrlc = ctrlc_channel();
            menu::run(&s, ctrlc, cli.stats.clone())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Create {
            path,
            output,
            piece_length,
        }) => {
            let tracker = session::pick_tracker(cli.tracker.as_deref(), None)?;
            let m = session::create_metainfo(path, *piece_length, Some(tracker))?;
            std::fs::write(output, m.to_bytes())
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "created {}: {} ({} bytes, {} pieces of {})",
                output.display(),
                m.info.name,
                m.info.total_length(),
                m.info.num_pieces(),
                format_size(m.info.piece_length)
            );
            println!("info hash: {}", m.info_hash);
            println!("magnet: {}", Magnet::from_metainfo(&m).to_uri());
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Info { torrent, json }) => {
            let m = session::read_torrent(torrent)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&m.to_json())?);
            } else {
                println!("name: {}", m.info.name);
                println!("info hash: {}", m.info_hash);
                println!(
                    "size: {} bytes ({})",
                    m.info.total_length(),
                    format_size(m.info.total_length())
                );
                println!(
                    "pieces: {} of {} bytes",
                    m.info.num_pieces(),
                    m.info.piece_length
                );
                if let Some(a) = &m.announce {
                    println!("announce: {a}");
                }
                if m.info.multi_file {
                    println!("files:");
                    for f in &m.info.files {
                        println!("  {} ({} bytes)", f.path.join("/"), f.length);
                    }
                }
                println!("magnet: {}", Magnet::from_metainfo(&m).to_uri());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Search { query }) => {
            let tracker = session::pick_tracker(cli.tracker.as_deref(), None)?;
            let files = session::search(tracker, config(&cli, None).tracker_protocol, query)?;
            if files.is_empty() {
                println!("no files match {query:?}");
            }
            for f in files {
                println!(
                    "{}  {}  {} bytes  seeders {}  leechers {}",
                    f.info_hash, f.name, f.size, f.seeders, f.leechers
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Seed {
            paths,
            piece_length,
        }) => {
            let mut torrents = Vec::new();
            for p in paths {
                if source::is_torrent_file(p) {
                    torrents.push((p.clone(), Some(session::read_torrent(p)?)));
                } else {
                    torrents.push((p.clone(), None));
                }
            }
            let announce = torrents
                .iter()
                .find_map(|(_, m)| m.as_ref().and_then(|m| m.announce.clone()));
            let tracker = session::pick_tracker(cli.tracker.as_deref(), announce.as_deref())?;
            let s = start(&cli, tracker, announce.as_deref())?;
            let ctrlc = ctrlc_channel();
            for (p, m) in torrents {
                let added = match m {
                    Some(m) => s.seed_metainfo(m, &config(&cli, None).dir, true),
                    None => {
                        let label = p.display().to_string();
                        s.seed_path_with(&p, *piece_length, &mut share::hash_progress(&label))
                    }
                };
                match added {
                    Ok(a) => print_seeding(&a),
                    Err(e) => {
                        s.shutdown();
                        return Err(e.context(format!("cannot seed {}", p.display())));
                    }
                }
            }
            let r = share::wait_seeding(&s, &ctrlc);
            eprintln!("minitorrent: shutting down");
            s.shutdown();
            r.map(|()| ExitCode::SUCCESS)
        }
        Some(Cmd::Share { dir }) => {
            let tracker = session::pick_tracker(cli.tracker.as_deref(), None)?;
            let s = start(&cli, tracker, None)?;
            let r = share::run(&s, dir, &ctrlc_channel());
            eprintln!("minitorrent: shutting down");
            s.shutdown();
            r.map(|()| ExitCode::SUCCESS)
        }
        Some(Cmd::Get { source, no_seed }) => get(&cli, source, *no_seed),
    }
}

fn start(cli: &Cli, tracker: std::net::SocketAddr, announce: Option<&str>) -> Result<Session> {
    let cfg = config(cli, announce);
    // Downloads may go to a directory that does not exist yet.
    if matches!(cli.cmd, None | Some(Cmd::Get { .. })) && !cfg.dir.exists() {
        std::fs::create_dir_all(&cfg.dir)
            .with_context(|| format!("creating --dir {}", cfg.dir.display()))?;
    }
    if !cfg.dir.is_dir() {
        bail!("--dir {}: not a directory", cfg.dir.display());
    }
    let s = Session::start(cfg, tracker)?;
    println!("listening on {}", s.listen_addr());
    println!("tracker {}", s.tracker_addr());
    let _ = std::io::stdout().flush();
    Ok(s)
}

pub fn print_seeding(a: &Added) {
    println!(
        "seeding {} ({} bytes, {} pieces) info hash {}",
        a.name,
        a.size.unwrap_or(0),
        a.pieces.unwrap_or(0),
        a.info_hash
    );
    println!("magnet: {}", a.magnet);
    let _ = std::io::stdout().flush();
}

fn ctrlc_channel() -> Receiver<()> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    }) {
        log::warn!("cannot catch Ctrl-C: {e}");
    }
    rx
}

pub fn print_summary(s: &Summary, stats: Option<&Path>) {
    println!("{}", s.line());
    for (peer, bytes) in &s.from_peers {
        println!("  from {peer}: {bytes} bytes");
    }
    if let Some(p) = stats {
        let json = serde_json::to_string_pretty(&s.to_json()).unwrap_or_default();
        if let Err(e) = std::fs::write(p, json + "\n") {
            eprintln!("minitorrent: cannot write {}: {e}", p.display());
        }
    }
    let _ = std::io::stdout().flush();
}

fn get(cli: &Cli, source: &str, no_seed: bool) -> Result<ExitCode> {
    let src = source::classify(source)?;
    let (metainfo, announce) = match &src {
        Source::Torrent(p) => {
            let m = session::read_torrent(p)?;
            let a = m.announce.clone();
            (Some(m), a)
        }
        Source::Magnet(m) => (None, m.trackers.first().cloned()),
        _ => (None, None),
    };
    let tracker = session::pick_tracker(cli.tracker.as_deref(), announce.as_deref())?;
    let s = start(cli, tracker, announce.as_deref())?;
    let ctrlc = ctrlc_channel();
    let added = match source::download(&s, src, metainfo) {
        Ok(a) => a,
        Err(e) => {
            s.shutdown();
            return Err(e);
        }
    };
    match (added.size, added.pieces) {
        (Some(size), Some(n)) => println!(
            "downloading {} ({size} bytes, {n} pieces) info hash {}",
            added.name, added.info_hash
        ),
        _ => println!(
            "downloading {} (fetching metadata from peers) info hash {}",
            added.name, added.info_hash
        ),
    }
    let _ = std::io::stdout().flush();
    let mut prog = progress::Progress::start(&s, added.info_hash);
    let mut done = false;
    loop {
        crossbeam_channel::select! {
            recv(s.notices()) -> n => match n {
                Ok(Notice::MetadataReceived { name, size, pieces_on_disk, pieces_total, .. }) => {
                    println!("metadata received: {name} ({size} bytes, {pieces_total} pieces, {pieces_on_disk} already on disk)");
                    let _ = std::io::stdout().flush();
                }
                Ok(Notice::Completed(sum)) => {
                    prog.finish();
                    print_summary(&sum, cli.stats.as_deref());
                    done = true;
                    if no_seed {
                        break;
                    }
                    println!("seeding {} (Ctrl-C to stop)", sum.name);
                    let _ = std::io::stdout().flush();
                }
                Ok(Notice::Failed { name, error, .. }) => {
                    prog.finish();
                    s.shutdown();
                    bail!("{name}: {error}");
                }
                Err(_) => break,
            },
            recv(ctrlc) -> _ => {
                prog.finish();
                if !done {
                    eprintln!("minitorrent: interrupted; verified pieces are kept, run the same command again to resume");
                }
                break;
            }
        }
    }
    s.shutdown();
    Ok(if done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(130)
    })
}
