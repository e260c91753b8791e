//! The command line: flags are parsed here, errors get their context here,
//! and each subcommand is a few calls on the [`Session`]. Also home of the
//! other shells over the session: the menu, the progress line and the
//! shared folder.
//!
//! Settings come from the configuration files, the environment and the
//! flags (see [`config`]). Every flag a command uses is accepted after it
//! (`minitorrent get X --dir D`) and, for scripts, before it
//! (`minitorrent --dir D get X`); a command's `--help` lists only its own.
//!
//! `println!`, `print!`, `eprintln!` and `eprint!` in this module and its
//! children are the macros below, not std's: a closed stdout ends the
//! process quietly with status 0 instead of a panic (see [`output`]).

#[allow(unused_macros)]
macro_rules! println {
    () => {
        $crate::cli::output::stdout(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(format_args!($($arg)*), true)
    };
}

#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(format_args!($($arg)*), false)
    };
}

#[allow(unused_macros)]
macro_rules! eprintln {
    () => {
        $crate::cli::output::stderr(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(format_args!($($arg)*), true)
    };
}

#[allow(unused_macros)]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(format_args!($($arg)*), false)
    };
}

pub mod config;
pub mod menu;
pub mod output;
pub mod progress;
pub mod share;
pub mod source;
pub mod web;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::core::msg::{count, Notice, Summary};
use crate::net::tracker::TrackerProtocol;
use crate::session::{self, tracker_endpoint, Added, Config, Encryption, Endpoint, Session};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use config::{Flags, Key, Settings};
use crossbeam_channel::Receiver;
use minitorrent_common::magnet::Magnet;
use minitorrent_common::metainfo::format_size;
use source::Source;

#[derive(Parser, Debug)]
#[command(
    name = "minitorrent",
    version,
    about = "The minitorrent peer: seed files, download them from several peers at once, keep seeding.",
    after_help = "Without a command, an interactive menu starts (it also reads commands from a pipe); \
                  the options above are the menu's. A command's options may also be given before it \
                  (minitorrent --dir D get X); `minitorrent COMMAND --help` lists the ones it uses.\n\n\
                  Settings a lab sets once (tracker, dir, port, bind, max_peers, max_upload_rate, ...) \
                  can also come from /etc/minitorrent/config.toml, ~/.config/minitorrent/config.toml \
                  and MINITORRENT_* environment variables; flags win. `minitorrent config` shows \
                  what is in effect and where each value came from."
)]
struct Cli {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    tracker: TrackerArg,
    #[command(flatten)]
    discover: DiscoverArg,
    #[command(flatten)]
    proto: ProtoArg,
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    peer: PeerArgs,
    #[command(flatten)]
    stats: StatsArg,
    #[command(flatten)]
    trace: TraceArg,
    #[command(flatten)]
    web: WebArg,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// `--web` and `--password`: the peer's web interface beside a command.
#[derive(Args, Debug, Clone, Default)]
struct WebArg {
    /// Also serve the peer's web interface (share, find, add, watch and control every
    /// torrent in a browser) on ADDR:PORT [default when given without a value: 127.0.0.1:8081]
    #[arg(long, value_name = "ADDR:PORT", num_args = 0..=1,
          default_missing_value = web::DEFAULT_LISTEN)]
    web: Option<SocketAddr>,
    /// Password of the web interface (HTTP Basic, any user name); required when it listens
    /// beyond this machine [env: MINITORRENT_WEB_PASSWORD]
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
}

/// `--config`.
#[derive(Args, Debug, Clone, Default)]
struct ConfigArg {
    /// Read this configuration file too, after /etc/minitorrent/config.toml and
    /// ~/.config/minitorrent/config.toml (its values win over theirs) [env: MINITORRENT_CONFIG]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// `--tracker`.
#[derive(Args, Debug, Clone, Default)]
struct TrackerArg {
    /// Tracker address: HOST, HOST:PORT or a udp://HOST[:PORT][/announce] URL; the port is 6969
    /// when left out. Given here, in MINITORRENT_TRACKER or in a config file, it is used
    /// whatever a torrent announces [default: the torrent's announce, else one found on the LAN, else 127.0.0.1:6969]
    #[arg(long, value_name = "HOST[:PORT]")]
    tracker: Option<String>,
}

/// `--no-discover` and `--discover-port`.
#[derive(Args, Debug, Clone, Default)]
struct DiscoverArg {
    /// Do not look for a tracker on the LAN when none is named [env: MINITORRENT_DISCOVER=0]
    #[arg(long)]
    no_discover: bool,
    /// UDP port of LAN tracker discovery [default: 6968]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    discover_port: Option<u16>,
}

/// `--tracker-protocol`.
#[derive(Args, Debug, Clone, Default)]
struct ProtoArg {
    /// Tracker protocol: auto probes a udp:// tracker (JSON if it answers JSON, else BEP 15);
    /// a bare HOST[:PORT] is JSON [default: auto]
    #[arg(long, value_enum, value_name = "PROTO")]
    tracker_protocol: Option<TrackerProtocol>,
}

/// `--dir`.
#[derive(Args, Debug, Clone, Default)]
struct DirArg {
    /// Directory for downloads and for a .torrent's data [default: .]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The options of a running peer.
#[derive(Args, Debug, Clone, Default)]
struct PeerArgs {
    /// TCP port other peers connect to; 0 takes any free port [default: 0]
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Address to listen on [default: 0.0.0.0]
    #[arg(long, value_name = "IP")]
    bind: Option<IpAddr>,
    /// Peers to connect to at once per download [default: 8]
    #[arg(long, value_name = "N")]
    max_peers: Option<usize>,
    /// Upload limit for the whole process, bytes per second (suffixes k, M, G: 500k, 2M)
    /// [default: unlimited]
    #[arg(long, value_parser = parse_rate, value_name = "RATE")]
    max_upload_rate: Option<u64>,
    /// Download limit for the whole process, bytes per second (suffixes k, M, G: 500k, 2M),
    /// at least 32k [default: unlimited]
    #[arg(long, value_parser = parse_rate, value_name = "RATE")]
    max_download_rate: Option<u64>,
    /// MSE/PE encrypted connections: accept (incoming plain or encrypted, outgoing plain),
    /// prefer (dial encrypted, plain if the peer refuses), require (encrypted RC4 only, both
    /// ways), off (no encryption) [default: accept]
    #[arg(long, value_parser = parse_encryption, value_name = "MODE")]
    encryption: Option<Encryption>,
}

fn parse_encryption(s: &str) -> Result<Encryption, String> {
    Encryption::parse(s).ok_or_else(|| format!("{s:?} is not {}", Encryption::NAMES))
}

/// `--stats`.
#[derive(Args, Debug, Clone, Default)]
struct StatsArg {
    /// Write a JSON summary of each finished download (bytes per peer) here
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
}

/// `--trace`.
#[derive(Args, Debug, Clone, Default)]
struct TraceArg {
    /// Print every peer message and tracker datagram, decoded, on stderr
    #[arg(long)]
    trace: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make a .torrent for a file or a directory; prints the info hash and magnet link
    Create {
        /// The file or directory to describe
        path: PathBuf,
        /// Where to write the .torrent
        #[arg(short = 'o', long = "output", value_name = "FILE.torrent")]
        output: PathBuf,
        /// Piece length in bytes (a power of two, 16 KiB to 16 MiB) [default: from the size]
        #[arg(long, value_name = "BYTES")]
        piece_length: Option<u64>,
        #[command(flatten)]
        config: ConfigArg,
        /// A tracker written into the .torrent: HOST, HOST:PORT or a udp:// URL (written as
        /// udp://IP:PORT, port 6969 when left out), or an http:// URL (written as given). Give it
        /// again for more trackers: the first is the announce, and all go into the BEP 12
        /// announce-list, one tier each [default: the configured tracker, else one found on the
        /// LAN, else 127.0.0.1:6969]
        #[arg(long, value_name = "HOST[:PORT]|URL")]
        tracker: Vec<String>,
        /// Put all the --tracker's in one tier of the announce-list (trackers that share their
        /// swarms) instead of one tier each
        #[arg(long)]
        same_tier: bool,
        #[command(flatten)]
        discover: DiscoverArg,
    },
    /// Seed files or directories (hashed now), or .torrent files (data looked up in --dir)
    Seed {
        /// Files or directories to seed, or .torrent files whose data is in --dir
        #[arg(required = true, value_name = "PATH|TORRENT")]
        paths: Vec<PathBuf>,
        /// Piece length when hashing PATHs [default: from the size]
        #[arg(long, value_name = "BYTES")]
        piece_length: Option<u64>,
        #[command(flatten)]
        web: WebArg,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        tracker: TrackerArg,
        #[command(flatten)]
        discover: DiscoverArg,
        #[command(flatten)]
        proto: ProtoArg,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        peer: PeerArgs,
        #[command(flatten)]
        trace: TraceArg,
    },
    /// Download from a .torrent, a magnet link, an info hash, or a name known to the tracker
    Get {
        /// What to download: a .torrent file, a magnet: link, a 40-hex-digit info hash, or a file
        /// name the tracker knows (see `minitorrent search`)
        #[arg(value_name = "TORRENT|MAGNET|INFOHASH|NAME")]
        source: String,
        /// Exit when the download is complete instead of seeding it
        #[arg(long)]
        no_seed: bool,
        #[command(flatten)]
        web: WebArg,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        tracker: TrackerArg,
        #[command(flatten)]
        discover: DiscoverArg,
        #[command(flatten)]
        proto: ProtoArg,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        peer: PeerArgs,
        #[command(flatten)]
        stats: StatsArg,
        #[command(flatten)]
        trace: TraceArg,
    },
    /// List the files the tracker knows (names containing QUERY)
    Search {
        /// Part of a file name, any case; empty lists every file
        #[arg(default_value = "")]
        query: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        tracker: TrackerArg,
        #[command(flatten)]
        discover: DiscoverArg,
        #[command(flatten)]
        proto: ProtoArg,
        #[command(flatten)]
        trace: TraceArg,
    },
    /// Show what a .torrent holds
    Info {
        /// The .torrent file
        torrent: PathBuf,
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Start a peer with its web interface: shares every file in --dir (as `share` does) and
    /// downloads there; open the printed URL in a browser
    Web {
        /// Address of the web interface; beyond 127.0.0.1 it needs --password
        #[arg(long, value_name = "ADDR:PORT", default_value = web::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Password of the web interface (HTTP Basic, any user name); required when it
        /// listens beyond this machine [env: MINITORRENT_WEB_PASSWORD]
        #[arg(long, value_name = "PASSWORD")]
        password: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        tracker: TrackerArg,
        #[command(flatten)]
        discover: DiscoverArg,
        #[command(flatten)]
        proto: ProtoArg,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        peer: PeerArgs,
        #[command(flatten)]
        trace: TraceArg,
    },
    /// Seed every file in DIR, like a shared folder (metainfo cached in DIR/.minitorrent)
    Share {
        /// The folder to share; files added later are picked up by a rescan
        dir: PathBuf,
        #[command(flatten)]
        web: WebArg,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        tracker: TrackerArg,
        #[command(flatten)]
        discover: DiscoverArg,
        #[command(flatten)]
        proto: ProtoArg,
        #[command(flatten)]
        peer: PeerArgs,
        #[command(flatten)]
        trace: TraceArg,
    },
    /// Print every setting in effect, where each value came from, and the config files looked at
    #[command(
        after_help = "Files, read in this order (later ones win): /etc/minitorrent/config.toml \
                            (lab-wide; MINITORRENT_SYSTEM_CONFIG names another, empty for none), \
                            $XDG_CONFIG_HOME/minitorrent/config.toml or ~/.config/minitorrent/config.toml \
                            (MINITORRENT_USER_CONFIG names another, empty for none), then --config FILE \
                            or MINITORRENT_CONFIG. Each line is key = value in TOML: tracker = \"192.168.1.10\", \
                            port = 6881, max_upload_rate = \"2M\", discover = false. Environment variables \
                            (MINITORRENT_TRACKER, MINITORRENT_DIR, MINITORRENT_PORT, MINITORRENT_BIND, \
                            MINITORRENT_MAX_PEERS, MINITORRENT_MAX_UPLOAD_RATE, MINITORRENT_MAX_DOWNLOAD_RATE, \
                            MINITORRENT_TRACKER_PROTOCOL, \
                            MINITORRENT_DISCOVER, MINITORRENT_DISCOVER_PORT, MINITORRENT_TRACE) override \
                            the files; flags override both. The flags below are shown with their source."
    )]
    Config {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        tracker: TrackerArg,
        #[command(flatten)]
        discover: DiscoverArg,
        #[command(flatten)]
        proto: ProtoArg,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        peer: PeerArgs,
        #[command(flatten)]
        trace: TraceArg,
    },
}

fn parse_rate(s: &str) -> Result<u64, String> {
    config::parse_rate(s)
}

/// One group of flags, laid over the ones given before the command.
trait Onto {
    fn onto(&self, f: &mut Flags);
}

impl Onto for ConfigArg {
    fn onto(&self, f: &mut Flags) {
        if self.config.is_some() {
            f.config.clone_from(&self.config);
        }
    }
}

impl Onto for TrackerArg {
    fn onto(&self, f: &mut Flags) {
        if self.tracker.is_some() {
            f.tracker.clone_from(&self.tracker);
        }
    }
}

impl Onto for DiscoverArg {
    fn onto(&self, f: &mut Flags) {
        if self.no_discover {
            f.discover = Some(false);
        }
        f.discover_port = self.discover_port.or(f.discover_port);
    }
}

impl Onto for ProtoArg {
    fn onto(&self, f: &mut Flags) {
        f.tracker_protocol = self.tracker_protocol.or(f.tracker_protocol);
    }
}

impl Onto for DirArg {
    fn onto(&self, f: &mut Flags) {
        if self.dir.is_some() {
            f.dir.clone_from(&self.dir);
        }
    }
}

impl Onto for PeerArgs {
    fn onto(&self, f: &mut Flags) {
        f.port = self.port.or(f.port);
        f.bind = self.bind.or(f.bind);
        f.max_peers = self.max_peers.or(f.max_peers);
        f.max_upload_rate = self.max_upload_rate.or(f.max_upload_rate);
        f.max_download_rate = self.max_download_rate.or(f.max_download_rate);
        f.encryption = self.encryption.or(f.encryption);
    }
}

impl Onto for TraceArg {
    fn onto(&self, f: &mut Flags) {
        if self.trace {
            f.trace = Some(true);
        }
    }
}

impl Cli {
    /// The flags given, before the command or after it (after wins).
    fn flags(&self) -> Flags {
        let mut f = Flags::default();
        let before: [&dyn Onto; 7] = [
            &self.config,
            &self.tracker,
            &self.discover,
            &self.proto,
            &self.dir,
            &self.peer,
            &self.trace,
        ];
        let after: Vec<&dyn Onto> = match &self.cmd {
            None | Some(Cmd::Info { .. }) => vec![],
            Some(Cmd::Create {
                config, discover, ..
            }) => vec![config, discover],
            Some(Cmd::Seed {
                config,
                tracker,
                discover,
                proto,
                dir,
                peer,
                trace,
                ..
            })
            | Some(Cmd::Get {
                config,
                tracker,
                discover,
                proto,
                dir,
                peer,
                trace,
                ..
            })
            | Some(Cmd::Web {
                config,
                tracker,
                discover,
                proto,
                dir,
                peer,
                trace,
                ..
            })
            | Some(Cmd::Config {
                config,
                tracker,
                discover,
                proto,
                dir,
                peer,
                trace,
            }) => vec![config, tracker, discover, proto, dir, peer, trace],
            Some(Cmd::Search {
                config,
                tracker,
                discover,
                proto,
                trace,
                ..
            }) => vec![config, tracker, discover, proto, trace],
            Some(Cmd::Share {
                config,
                tracker,
                discover,
                proto,
                peer,
                trace,
                ..
            }) => vec![config, tracker, discover, proto, peer, trace],
        };
        for a in before.into_iter().chain(after) {
            a.onto(&mut f);
        }
        // `create` has its own --tracker, worded for what it does.
        if let Some(Cmd::Create { tracker, .. }) = &self.cmd {
            if let Some(t) = tracker.first() {
                f.tracker = Some(t.clone());
            }
        }
        f
    }

    fn stats(&self) -> Option<PathBuf> {
        match &self.cmd {
            Some(Cmd::Get { stats, .. }) if stats.stats.is_some() => stats.stats.clone(),
            _ => self.stats.stats.clone(),
        }
    }
}

/// What [`run`] works from: the command and the settings in effect.
struct Run {
    cmd: Option<Cmd>,
    /// [`Settings::tracker`]: the flag, else the environment, else a file.
    tracker: Option<String>,
    stats: Option<PathBuf>,
    st: Settings,
    /// `--web` and `--password` given before the command (or for the menu).
    web: WebArg,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .init();
    let resolved = resolve(cli);
    match resolved.and_then(run) {
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

/// The settings in effect for the command (`info` reads no configuration).
fn resolve(cli: Cli) -> Result<Run> {
    let st = match cli.cmd {
        Some(Cmd::Info { .. }) => Settings::default(),
        _ => config::load(&cli.flags(), &config::process_env)?,
    };
    crate::net::trace::enable(st.trace);
    crate::net::tracker::discover::configure(st.discover, st.discover_port);
    Ok(Run {
        tracker: st.tracker.clone(),
        stats: cli.stats(),
        web: cli.web,
        cmd: cli.cmd,
        st,
    })
}

fn config(cli: &Run, announce: Option<&str>) -> Config {
    let st = &cli.st;
    Config {
        tracker_protocol: session::effective_protocol(
            st.tracker_protocol,
            st.tracker.as_deref(),
            announce,
        ),
        bind: st.bind,
        port: st.port,
        dir: st.dir.clone(),
        max_peers: st.max_peers.max(1),
        max_upload_rate: st.max_upload_rate,
        max_download_rate: st.max_download_rate,
        trackers: Vec::new(),
        encryption: st.encryption,
    }
}

fn run(cli: Run) -> Result<ExitCode> {
    if matches!(
        cli.cmd,
        None | Some(Cmd::Get { .. })
            | Some(Cmd::Seed { .. })
            | Some(Cmd::Share { .. })
            | Some(Cmd::Web { .. })
    ) {
        output::keep_running_when_closed();
    }
    match &cli.cmd {
        None => {
            let access = web_access(&cli.web)?;
            let (tracker, all) = session_trackers(&cli, &[])?;
            let s = start(&cli, tracker, None, all)?;
            let dir = cli.st.dir.clone();
            start_web(&s, cli.web.web, access, &dir, web::Sharer::Direct)?;
            let ctrlc = ctrlc_channel();
            menu::run(&s, ctrlc, cli.stats.clone())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Web {
            listen, password, ..
        }) => {
            let access = web::check_access(*listen, web::password(password.as_deref()).as_deref())?;
            let (tracker, all) = session_trackers(&cli, &[])?;
            let s = start(&cli, tracker, None, all)?;
            let dir = cli.st.dir.clone();
            let (tx, rx) = crossbeam_channel::bounded(64);
            start_web(
                &s,
                Some(*listen),
                Some(access),
                &dir,
                web::Sharer::Folder(tx),
            )?;
            let r = share::run_with(&s, &dir, &ctrlc_channel(), &rx);
            eprintln!("minitorrent: shutting down");
            s.shutdown();
            r.map(|()| ExitCode::SUCCESS)
        }
        Some(Cmd::Create {
            path,
            output,
            piece_length,
            tracker,
            same_tier,
            ..
        }) => {
            let urls = match (tracker.as_slice(), cli.tracker.as_deref()) {
                ([], Some(t)) => vec![announce_url(t)?],
                ([], None) => vec![format!("udp://{}", session::pick_tracker(None, None)?)],
                (given, _) => given
                    .iter()
                    .map(|t| announce_url(t))
                    .collect::<Result<Vec<_>>>()?,
            };
            let mut m = session::create_metainfo(path, *piece_length, None)?;
            m.announce = urls.first().cloned();
            if urls.len() > 1 {
                m.announce_list = if *same_tier {
                    vec![urls.clone()]
                } else {
                    urls.iter().map(|u| vec![u.clone()]).collect()
                };
            }
            std::fs::write(output, m.to_bytes())
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "created {}: {} ({}, {} bytes, {} of {})",
                output.display(),
                m.info.name,
                format_size(m.info.total_length()),
                m.info.total_length(),
                count(m.info.num_pieces() as u64, "piece"),
                format_size(m.info.piece_length)
            );
            println!("info hash: {}", m.info_hash);
            println!("magnet: {}", Magnet::from_metainfo(&m).to_uri());
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Config { .. }) => {
            print!("{}", config::report(&cli.st));
            match &cli.tracker {
                Some(t) => match session::pick_tracker(Some(t), None) {
                    Ok(a) => println!("\ntracker address: {a}"),
                    Err(e) => println!("\ntracker address: {e}"),
                },
                None if cli.st.discover => println!(
                    "\nno tracker configured: a torrent's announce is used, else one that answers \
                     DISCOVER on the LAN (UDP port {}), else {}",
                    cli.st.discover_port,
                    crate::net::tracker::json::DEFAULT_TRACKER
                ),
                None => println!(
                    "\nno tracker configured: a torrent's announce is used, else {} \
                     (LAN discovery is off)",
                    crate::net::tracker::json::DEFAULT_TRACKER
                ),
            }
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
                if !m.announce_list.is_empty() {
                    println!("trackers (BEP 12 tiers, tried in order):");
                    for (i, tier) in m.announce_list.iter().enumerate() {
                        println!("  tier {}: {}", i + 1, tier.join(", "));
                    }
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
        Some(Cmd::Search { query, .. }) => {
            let tracker = session::pick_tracker(cli.tracker.as_deref(), None)?;
            let files = session::search(
                tracker,
                config(&cli, None).tracker_protocol,
                cli.st.bind,
                query,
            )?;
            if files.is_empty() {
                println!("no files match {query:?}");
            }
            for f in files {
                println!(
                    "{}  {}  {} ({} bytes)  seeders {}  leechers {}",
                    f.info_hash,
                    f.name,
                    format_size(f.size),
                    f.size,
                    f.seeders,
                    f.leechers
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Seed {
            paths,
            piece_length,
            web,
            ..
        }) => {
            let web = &web.or(&cli.web);
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
            let tiers = torrents
                .iter()
                .find_map(|(_, m)| m.as_ref().map(tracker_tiers))
                .unwrap_or_default();
            let access = web_access(web)?;
            let (tracker, all) = session_trackers(&cli, &tiers)?;
            let s = start(&cli, tracker, announce.as_deref(), all)?;
            let dir = cli.st.dir.clone();
            start_web(&s, web.web, access, &dir, web::Sharer::Direct)?;
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
        Some(Cmd::Share { dir, web, .. }) => {
            let web = &web.or(&cli.web);
            let access = web_access(web)?;
            let (tracker, all) = session_trackers(&cli, &[])?;
            let s = start(&cli, tracker, None, all)?;
            let (tx, rx) = crossbeam_channel::bounded(64);
            start_web(&s, web.web, access, dir, web::Sharer::Folder(tx))?;
            let r = share::run_with(&s, dir, &ctrlc_channel(), &rx);
            eprintln!("minitorrent: shutting down");
            s.shutdown();
            r.map(|()| ExitCode::SUCCESS)
        }
        Some(Cmd::Get {
            source,
            no_seed,
            web,
            ..
        }) => get(&cli, source, *no_seed, &web.or(&cli.web)),
    }
}

impl WebArg {
    /// These flags, or where one is missing, those given before the command.
    fn or(&self, before: &WebArg) -> WebArg {
        WebArg {
            web: self.web.or(before.web),
            password: self.password.clone().or_else(|| before.password.clone()),
        }
    }
}

/// A tracker as a .torrent names it: a URL (`http://`, `udp://`) exactly as
/// given, path and query included (BEP 41 carries a UDP tracker's path);
/// `HOST[:PORT]` as `udp://IP:PORT`. Checked first: a host that cannot be
/// looked up is an error here rather than in every peer.
fn announce_url(t: &str) -> Result<String> {
    let t = t.trim();
    let lower = t.get(..8).unwrap_or(t).to_ascii_lowercase();
    for scheme in ["http://", "https://"] {
        if lower.starts_with(scheme) {
            let rest = &t[scheme.len()..];
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || rest.contains(char::is_whitespace) {
                bail!("--tracker {t:?}: no host after {scheme}");
            }
            return Ok(t.to_string());
        }
    }
    let addr = session::pick_tracker(Some(t), None).with_context(|| format!("--tracker {t:?}"))?;
    if lower.starts_with("udp://") {
        if t.contains(char::is_whitespace) {
            bail!("--tracker {t:?}: a URL has no spaces");
        }
        // As given, with the port our peers assume made explicit (other
        // clients have no default port for udp://).
        let rest = &t["udp://".len()..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (hostport, tail) = rest.split_at(end);
        let has_port = match hostport.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => hostport.contains(':'),
        };
        if has_port {
            return Ok(t.to_string());
        }
        return Ok(format!("udp://{hostport}:{}{tail}", addr.port()));
    }
    Ok(format!("udp://{addr}"))
}

/// Who may use the page `--web` asks for (checked before anything starts).
fn web_access(arg: &WebArg) -> Result<Option<web::Access>> {
    match arg.web {
        Some(addr) => {
            web::check_access(addr, web::password(arg.password.as_deref()).as_deref()).map(Some)
        }
        None => Ok(None),
    }
}

/// Starts the web interface on `addr` when asked, uploads going to `dir`;
/// a page that cannot start stops the session with the reason.
fn start_web(
    s: &Arc<Session>,
    addr: Option<SocketAddr>,
    access: Option<web::Access>,
    dir: &Path,
    sharer: web::Sharer,
) -> Result<()> {
    let (Some(addr), Some(access)) = (addr, access) else {
        return Ok(());
    };
    match web::start(s.clone(), addr, access, dir, sharer) {
        Ok(local) => {
            println!("web interface: {}", web::url_for(local));
            let _ = std::io::stdout().flush();
            Ok(())
        }
        Err(e) => {
            s.shutdown();
            Err(e)
        }
    }
}

/// A torrent's trackers in BEP 12 tiers: its `announce-list`, else its
/// `announce`.
fn tracker_tiers(m: &minitorrent_common::metainfo::Metainfo) -> Vec<Vec<String>> {
    if m.announce_list.is_empty() {
        m.announce.iter().map(|a| vec![a.clone()]).collect()
    } else {
        m.announce_list.clone()
    }
}

/// The session's trackers: the address of the one named first (what the
/// JSON protocol and the protocol probe use) and every tracker in BEP 12
/// tiers. `--tracker` (or the configuration) overrides the torrent's and is
/// then the only one; a torrent without trackers gets one found on the LAN
/// or the default. At most [`session::MAX_TRACKERS`] are taken.
fn session_trackers(cli: &Run, tiers: &[Vec<String>]) -> Result<(SocketAddr, Vec<Vec<Endpoint>>)> {
    if let Some(t) = cli.tracker.as_deref() {
        if tracker_endpoint::is_http(t) {
            let e = tracker_endpoint::parse(t).with_context(|| format!("--tracker {t:?}"))?;
            // Only shown, and where JSON would go (nowhere: the announcer
            // speaks HTTP): a host not found yet is no reason to stop.
            let addr = match &e {
                Endpoint::Http(u) => tracker_endpoint::http_host(u),
                Endpoint::Udp(a, _) => Some(*a),
            };
            let addr = match addr {
                Some(a) => a,
                None => session::pick_tracker(None, None)?,
            };
            return Ok((addr, vec![vec![e]]));
        }
        return Ok((session::pick_tracker(Some(t), None)?, Vec::new()));
    }
    let mut all: Vec<Vec<Endpoint>> = Vec::new();
    let mut taken = 0;
    for tier in tiers {
        let mut out = Vec::new();
        for t in tier {
            if taken == session::MAX_TRACKERS {
                log::warn!(
                    "the torrent names more than {} trackers; the others are not used",
                    session::MAX_TRACKERS
                );
                break;
            }
            match tracker_endpoint::parse(t) {
                Ok(e) => {
                    out.push(e);
                    taken += 1;
                }
                Err(e) => log::warn!("ignoring the torrent's tracker: {e}"),
            }
        }
        if !out.is_empty() {
            all.push(out);
        }
    }
    let first_udp = all.iter().flatten().find_map(|e| match e {
        Endpoint::Udp(a, _) => Some(*a),
        Endpoint::Http(_) => None,
    });
    let addr = match all.first().and_then(|t| t.first()) {
        None => return Ok((session::pick_tracker(None, None)?, Vec::new())),
        Some(Endpoint::Udp(a, _)) => *a,
        // Only http:// trackers (public ones, say, on a LAN without the
        // Internet): the tracker found on the LAN, or the default, is the
        // last resort, as it was before the peer spoke HTTP.
        Some(Endpoint::Http(_)) => match first_udp {
            Some(a) => a,
            None => {
                let local = session::pick_tracker(None, None)?;
                all.push(vec![Endpoint::udp(local)]);
                local
            }
        },
    };
    Ok((addr, all))
}

fn start(
    cli: &Run,
    tracker: std::net::SocketAddr,
    announce: Option<&str>,
    trackers: Vec<Vec<Endpoint>>,
) -> Result<Arc<Session>> {
    let mut cfg = config(cli, announce);
    cfg.trackers = trackers;
    // Downloads may go to a directory that does not exist yet, and must be
    // able to write there: both checked before anything is fetched.
    let downloads = matches!(
        cli.cmd,
        None | Some(Cmd::Get { .. }) | Some(Cmd::Web { .. })
    );
    let origin = cli.st.origin(Key::Dir);
    if downloads && !cfg.dir.exists() {
        if let Err(e) = std::fs::create_dir_all(&cfg.dir) {
            bail!(
                "cannot create the download directory {} (set by {origin}): {e}; create it \
                 yourself or choose another with --dir DIR",
                cfg.dir.display()
            );
        }
    }
    if !cfg.dir.is_dir() {
        bail!(
            "--dir {}: not a directory (set by {origin}); choose a directory with --dir DIR",
            cfg.dir.display()
        );
    }
    if downloads {
        if let Err(e) = check_writable(&cfg.dir) {
            bail!(
                "cannot write to the download directory {} (set by {origin}): {e}; make it \
                 writable (chmod u+w {}) or download elsewhere with --dir DIR",
                cfg.dir.display(),
                cfg.dir.display()
            );
        }
    }
    let s = Arc::new(Session::start(cfg, tracker)?);
    println!("listening on {}", s.listen_addr());
    let in_use = s.tracker_in_use();
    println!(
        "tracker {}",
        in_use.strip_prefix("udp://").unwrap_or(&in_use)
    );
    let states = s.tracker_states();
    if states.len() > 1 {
        let all: Vec<&str> = states.iter().map(|t| t.url.as_str()).collect();
        println!("trackers, in the order tried: {}", all.join(", "));
    }
    let _ = std::io::stdout().flush();
    Ok(s)
}

/// Creates and removes a file in `dir`.
fn check_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".minitorrent-write-check.{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

pub fn print_seeding(a: &Added) {
    println!(
        "seeding {} ({}, {} bytes, {}) info hash {}",
        a.name,
        format_size(a.size.unwrap_or(0)),
        a.size.unwrap_or(0),
        count(a.pieces.unwrap_or(0) as u64, "piece"),
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

/// The summary of a finished download; with `--stats`, also as JSON, with
/// the session's trackers (the one in use, the last error of each).
pub fn print_summary(s: &Summary, stats: Option<&Path>, trackers: &[session::TrackerState]) {
    println!("{}", s.line());
    for l in s.peer_lines() {
        println!("{l}");
    }
    if let Some(p) = stats {
        let mut v = s.to_json();
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("trackers".into(), serde_json::json!(trackers));
        }
        let json = serde_json::to_string_pretty(&v).unwrap_or_default();
        if let Err(e) = std::fs::write(p, json + "\n") {
            eprintln!("minitorrent: cannot write {}: {e}", p.display());
        }
    }
    let _ = std::io::stdout().flush();
}

fn get(cli: &Run, source: &str, no_seed: bool, web_arg: &WebArg) -> Result<ExitCode> {
    let access = web_access(web_arg)?;
    let src = source::classify(source)?;
    let (metainfo, announce, tiers) = match &src {
        Source::Torrent(p) => {
            let m = session::read_torrent(p)?;
            let a = m.announce.clone();
            let tiers = tracker_tiers(&m);
            (Some(m), a, tiers)
        }
        Source::Magnet(m) => (
            None,
            m.trackers.first().cloned(),
            m.trackers.iter().map(|t| vec![t.clone()]).collect(),
        ),
        _ => (None, None, Vec::new()),
    };
    let (tracker, all) = session_trackers(cli, &tiers)?;
    let s = start(cli, tracker, announce.as_deref(), all)?;
    let dir = cli.st.dir.clone();
    start_web(&s, web_arg.web, access, &dir, web::Sharer::Direct)?;
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
            "downloading {} ({}, {size} bytes, {}) info hash {}",
            added.name,
            format_size(size),
            count(n as u64, "piece"),
            added.info_hash
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
                    println!(
                        "metadata received: {name} ({}, {size} bytes, {}, {pieces_on_disk} already on disk)",
                        format_size(size),
                        count(pieces_total as u64, "piece")
                    );
                    let _ = std::io::stdout().flush();
                }
                Ok(Notice::Completed(sum)) => {
                    prog.finish();
                    print_summary(&sum, cli.stats.as_deref(), &s.tracker_states());
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
