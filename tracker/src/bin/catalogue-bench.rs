//! `catalogue-bench`: how many completion events per second the tracker's
//! catalogue writes before it drops any (scripts/bench-catalogue.sh runs it).
//!
//! One thread records completions through a [`Recorder`], as the UDP workers
//! do (count in memory + one log event through the queue), either as fast as
//! it can (`--rate 0`: the queue overflows, and what the writer wrote per
//! second is its ceiling) or paced at `--rate N` per second (then
//! `dropped 0` confirms the writer keeps up at that rate).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_tracker::catalogue::{Catalogue, DbLocation};
use minitorrent_tracker::peer_id::PeerId;

#[derive(Parser, Debug)]
#[command(
    name = "catalogue-bench",
    about = "Completion events/s the tracker's catalogue sustains"
)]
struct Args {
    /// Database file (created; removed afterwards unless --keep), or `none`.
    #[arg(long, default_value = "catalogue-bench.db")]
    db: String,
    /// Seconds to record for.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Completions offered per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Distinct swarms the completions are spread over.
    #[arg(long, default_value_t = 1000)]
    swarms: u32,
    /// Keep the database file afterwards.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let loc = DbLocation::parse(&args.db);
    if let DbLocation::File(p) = &loc {
        remove(p);
    }
    let cat = match Catalogue::open(&loc) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("catalogue-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = cat.recorder();
    let hashes: Vec<InfoHash> = (0..args.swarms.max(1))
        .map(|i| {
            let mut h = [0x5a; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            InfoHash(h)
        })
        .collect();
    let addr: SocketAddr = "10.0.0.1:6881"
        .parse()
        .unwrap_or(SocketAddr::from(([10, 0, 0, 1], 6881)));
    let id = PeerId::new("-BENCH0-000000000000");
    let run = Duration::from_secs_f64(args.seconds.max(0.1));
    let start = Instant::now();
    let mut offered: u64 = 0;
    while start.elapsed() < run {
        // Paced in 1 ms steps: the events due by now, then a short sleep.
        let due = if args.rate == 0 {
            offered + 1024
        } else {
            (start.elapsed().as_secs_f64() * args.rate as f64) as u64
        };
        while offered < due {
            r.completed(
                hashes[(offered % hashes.len() as u64) as usize],
                addr,
                id.clone(),
            );
            offered += 1;
        }
        if args.rate > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let recording = start.elapsed().as_secs_f64();
    let before_close = cat.stats();
    cat.close();
    let total = start.elapsed().as_secs_f64();
    let st = cat.stats();
    println!(
        "db {}: offered {} completions in {:.2} s ({:.0}/s); written {} events ({:.0}/s over {:.2} s incl. final commit), dropped {}; {} written while recording ({:.0}/s)",
        loc,
        offered,
        recording,
        offered as f64 / recording,
        st.events_written,
        st.events_written as f64 / total,
        total,
        st.events_dropped,
        before_close.events_written,
        before_close.events_written as f64 / recording,
    );
    let counted: u64 = hashes.iter().map(|h| cat.completed(h)).sum();
    println!(
        "completed counts in memory: {counted} (every completion offered: {})",
        counted == offered
    );
    drop(cat);
    if let DbLocation::File(p) = &loc {
        if !args.keep {
            remove(p);
        }
    }
    ExitCode::SUCCESS
}

fn remove(p: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(s));
    }
}
