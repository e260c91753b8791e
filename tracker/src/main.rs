//! `minitorrent-tracker`: the command line over the tracker library.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use log::info;
use minitorrent_common::tracker_proto::{DISCOVER_GROUP, DISCOVER_PORT};
use minitorrent_tracker::catalogue::{DbLocation, DEFAULT_DB};
use minitorrent_tracker::config::Config;
use minitorrent_tracker::discover::{DiscoverConfig, Responder};
use minitorrent_tracker::registry::MAX_SWARMS;
use minitorrent_tracker::server::Tracker;
use minitorrent_tracker::web::{WebContext, WebServer};

/// The minitorrent UDP tracker: knows which peer shares which file.
///
/// Peers talk to it with JSON datagrams (REGISTER, REQUEST, SEARCH, HEARTBEAT,
/// EXIT) and BitTorrent clients with the UDP tracker protocol (BEP 15), both on
/// the same port, or with the HTTP tracker protocol (GET /announce, /scrape)
/// on the web page's port; see docs/PROTOCOL.md. On start it prints one line to stdout,
/// `minitorrent-tracker listening on ADDR:PORT`, with the port actually bound,
/// then (unless `--web off`) `minitorrent-tracker web page on http://IP:PORT/`.
/// Logs go to stderr (level info; set RUST_LOG=debug for every datagram, or
/// RUST_LOG=warn for quiet); the first says where LAN discovery (DISCOVER,
/// on its own UDP port) is answered. Ctrl-C stops it.
#[derive(Parser, Debug)]
#[command(name = "minitorrent-tracker", version)]
struct Cli {
    /// IP address and UDP port to listen on (e.g. 127.0.0.1:6969 or [::]:6969);
    /// an IP alone means port 6969. Port 0 picks a free port; the chosen one
    /// is printed.
    #[arg(long, value_name = "ADDR[:PORT]", default_value = "0.0.0.0:6969", value_parser = parse_bind)]
    bind: SocketAddr,

    /// Forget a peer that sent no REGISTER or HEARTBEAT for this many seconds
    /// (1 to 86400). Peers are told to heartbeat every min(10, SECS/3) seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    peer_timeout: u64,

    /// Most peers listed in one PEERS reply or announce reply (1 to 1000); when
    /// a swarm has more, a random subset is sent.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    max_peers: u64,

    /// Most swarms (files) tracked at once (1 to 100000000); a REGISTER or
    /// BEP 15 announce that would start a new swarm past it gets an error
    /// (`full`), and everything already tracked keeps being served.
    #[arg(long, value_name = "N", default_value_t = MAX_SWARMS as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    max_swarms: u64,

    /// Worker threads, each with its own socket on the same port (the kernel
    /// spreads clients over them); default: one per CPU core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    workers: Option<u64>,

    /// The catalogue's SQLite database: published .torrent files, completed
    /// download counts (BEP 15 scrape reports them) and the swarm event log,
    /// kept across restarts. Created if missing; `none` keeps everything in
    /// memory only. See docs/CATALOGUE.md.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    db: String,

    /// Where the web page (search, magnet links, .torrent downloads, the live
    /// swarm view, /metrics) and the HTTP tracker protocol (http://IP:PORT/announce)
    /// listen, over TCP: ADDR:PORT, or `off`. Default:
    /// the --bind IP with port 8080, or a free port when --bind asks for
    /// port 0. See docs/WEB.md.
    #[arg(long, value_name = "ADDR:PORT|off")]
    web: Option<String>,

    /// Print every datagram decoded and every reply sent, one line each, to
    /// stderr: `HH:MM:SS.mmm tracker ← ADDR  MESSAGE` (UTC; → for replies).
    /// Discovery datagrams too.
    #[arg(long)]
    trace: bool,

    /// Do not answer LAN discovery: peers then need `--tracker` to find this
    /// tracker.
    #[arg(long)]
    no_discover: bool,

    /// UDP port where LAN discovery (DISCOVER) is answered, by broadcast and
    /// on the multicast group 239.255.69.69.
    #[arg(long, value_name = "N", default_value_t = DISCOVER_PORT,
          value_parser = clap::value_parser!(u16).range(1..))]
    discover_port: u16,

    /// Answer DISCOVER from public IP addresses too (by default only
    /// private, link-local and loopback addresses get an answer).
    #[arg(long)]
    discover_public: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let web = match web_addr(cli.web.as_deref(), cli.bind) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("minitorrent-tracker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config {
        bind: cli.bind,
        peer_timeout: Duration::from_secs(cli.peer_timeout),
        max_peers: cli.max_peers as usize,
        trace: cli.trace,
        max_swarms: cli.max_swarms as usize,
        workers: cli.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |n| n as usize,
        ),
        discover: !cli.no_discover,
        discover_port: cli.discover_port,
        discover_public: cli.discover_public,
        db: DbLocation::parse(&cli.db),
        web,
        web_url: None,
    };
    let tracker = match Tracker::bind(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("minitorrent-tracker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = tracker.stop_handle();
    // The web page's port, bound before anything is printed so that a port
    // in use stops the start with a clear error.
    let web_server = match config.web {
        Some(addr) => match WebServer::bind(addr) {
            Ok(w) => {
                config.web_url = Some(w.url());
                Some(w)
            }
            Err(e) => {
                eprintln!("minitorrent-tracker: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    // Bound before the first line is printed, so a DISCOVER sent as soon as
    // it appears is answered.
    let responder = if config.discover {
        let mut d = DiscoverConfig::new(tracker.local_addr());
        d.port = config.discover_port;
        d.public = config.discover_public;
        d.trace = config.trace;
        d.web = config.web_url.clone();
        match Responder::bind(d) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!(
                    "minitorrent-tracker: warning: cannot answer LAN discovery on UDP port {port}: {e} \
                     (another program holds it? pick another with --discover-port N, or \
                     --no-discover); the tracker runs, but peers must be given --tracker ADDR",
                    port = config.discover_port
                );
                None
            }
        }
    } else {
        None
    };
    let handler_stop = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || handler_stop.stop()) {
        eprintln!("minitorrent-tracker: cannot install the Ctrl-C handler: {e}");
        return ExitCode::FAILURE;
    }
    // The one line scripts and tests wait for; stdout so it survives RUST_LOG.
    // A closed stdout (`| head -1`) must not stop the server: errors ignored.
    let _ = writeln!(
        std::io::stdout(),
        "minitorrent-tracker listening on {}",
        tracker.local_addr()
    );
    if let Some(url) = &config.web_url {
        let _ = writeln!(std::io::stdout(), "minitorrent-tracker web page on {url}");
    }
    let _ = std::io::stdout().flush();
    if let Some(w) = web_server {
        let ctx = WebContext {
            registry: tracker.registry(),
            view: tracker.stats_view(),
            catalogue: tracker.catalogue(),
            udp: tracker.metrics(),
            tracker: tracker.local_addr(),
            max_peers: config.max_peers,
            interval: config.interval_secs(),
            trace: config.trace,
        };
        info!(
            "web page listening on {} (TCP; at most {} connections, {} per IP); \
             HTTP tracker announce URL {}announce",
            w.local_addr(),
            minitorrent_tracker::web::bounds::MAX_CONNECTIONS,
            minitorrent_tracker::web::bounds::MAX_PER_IP,
            w.url()
        );
        if let Err(e) = w.spawn(ctx, stop.clone()) {
            eprintln!("minitorrent-tracker: cannot start the web server's thread: {e}");
            return ExitCode::FAILURE;
        }
    } else {
        info!("web page off (--web off)");
    }
    if !config.discover {
        info!("LAN discovery off (--no-discover): peers need --tracker to find this tracker");
    }
    if let Some(r) = responder {
        info!("{}", discovery_line(&r, &config, tracker.local_addr()));
        if let Err(e) = r.spawn(stop) {
            eprintln!(
                "minitorrent-tracker: warning: cannot start the discovery thread: {e}; \
                 peers must be given --tracker ADDR"
            );
        }
    }
    let held = tracker.catalogue().stats();
    info!(
        "{} worker{}, peer timeout {} s, heartbeat interval {} s, at most {} peers per reply, catalogue {} ({} torrents, {} swarms with completed downloads){}",
        tracker.workers(),
        if tracker.workers() == 1 { "" } else { "s" },
        config.timeout_secs(),
        config.interval_secs(),
        config.max_peers,
        config.db,
        held.torrents,
        held.counted,
        if config.trace { ", tracing" } else { "" }
    );
    let registry = tracker.registry();
    let catalogue = tracker.catalogue();
    match tracker.run(&config) {
        Ok(()) => {
            let st = registry.stats();
            let cat = catalogue.stats();
            let _ = writeln!(
                std::io::stdout(),
                "minitorrent-tracker stopped (interrupted); it knew {} peer entries in {} swarms; \
                 catalogue: {} torrents, {} swarms with completed downloads, {} log events written, {} dropped",
                st.entries, st.swarms, cat.torrents, cat.counted, cat.events_written, cat.events_dropped
            );
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("minitorrent-tracker: stopped on an error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--web`: `off`, an address, or (absent) the `--bind` IP with port 8080
/// (port 0 when `--bind` asks for port 0).
fn web_addr(arg: Option<&str>, bind: SocketAddr) -> Result<Option<SocketAddr>, String> {
    match arg {
        Some("off") => Ok(None),
        Some(a) => a.parse::<SocketAddr>().map(Some).map_err(|_| {
            format!("--web {a:?}: expected ADDR:PORT (e.g. 0.0.0.0:8080 or 127.0.0.1:0) or off")
        }),
        None => Ok(Some(SocketAddr::new(
            bind.ip(),
            if bind.port() == 0 { 0 } else { 8080 },
        ))),
    }
}

/// The start-up line about discovery: port, multicast group, who is answered.
fn discovery_line(r: &Responder, config: &Config, tracker: SocketAddr) -> String {
    let port = r.local_addr().map_or(config.discover_port, |a| a.port());
    let n = r.joined().len();
    let group = if n == 0 {
        "no multicast group joined".to_string()
    } else {
        format!(
            "multicast group {DISCOVER_GROUP} on {n} interface{}",
            if n == 1 { "" } else { "s" }
        )
    };
    let who = if tracker.ip().is_loopback() {
        "loopback only, like the tracker's address"
    } else if config.discover_public {
        "any address (--discover-public)"
    } else {
        "private, link-local and loopback addresses only"
    };
    format!("answering LAN discovery on UDP port {port} (broadcast, {group}; {who})")
}

/// `--bind`: `IP:PORT`, `[IPv6]:PORT`, or an IP alone (port 6969).
fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip = s.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 6969))
        .map_err(|_| {
            format!("{s:?} is not an address: expected IP:PORT (e.g. 0.0.0.0:6969), [IPv6]:PORT or an IP alone (port 6969)")
        })
}

#[cfg(test)]
mod tests {
    use super::parse_bind;

    #[test]
    fn bind_takes_an_ip_alone_as_port_6969() {
        assert_eq!(parse_bind("10.0.0.1").unwrap().to_string(), "10.0.0.1:6969");
        assert_eq!(parse_bind("::1").unwrap().to_string(), "[::1]:6969");
        assert_eq!(parse_bind("[::1]").unwrap().to_string(), "[::1]:6969");
        assert_eq!(parse_bind("0.0.0.0:0").unwrap().to_string(), "0.0.0.0:0");
        assert!(parse_bind("host").unwrap_err().contains("IP alone"));
    }
}
