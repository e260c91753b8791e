//! `tracker-load`: a load generator for minitorrent-tracker. A benchmark tool,
//! not a test: it registers thousands of simulated peers, then keeps a window
//! of requests in flight from one thread over loopback for a fixed time and
//! prints replies per second and how many requests went unanswered.
//!
//! Run it through `scripts/bench-tracker.sh`, which pins the tracker and this
//! tool to different cores. `http-announce` loads the HTTP tracker protocol
//! on the web port instead, over kept-alive TCP connections. The `handler*` modes skip the sockets and feed
//! the tracker's request handler in this process instead.

mod args;
mod handler_modes;
mod http_mode;
mod packets;
mod socket_modes;
mod traffic;

use clap::Parser;

use args::{Args, Mode};
use handler_modes::{run_handler, run_handler_announce, run_handler_scrape};
use http_mode::run_http_announce;
use socket_modes::{run_announce, run_connect, run_fill, run_json};
use traffic::open_socket;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.mode == Mode::Handler {
        return run_handler(&args);
    }
    if args.mode == Mode::HandlerAnnounce {
        return run_handler_announce(&args);
    }
    if args.mode == Mode::HandlerScrape {
        return run_handler_scrape(&args);
    }
    if args.mode == Mode::HttpAnnounce {
        return run_http_announce(&args);
    }
    let sock = open_socket(args.tracker)?;
    match args.mode {
        Mode::Json => run_json(&args, &sock),
        Mode::Announce => run_announce(&args, &sock),
        Mode::Connect => run_connect(&args, &sock),
        Mode::Fill => run_fill(&args, &sock),
        Mode::Handler | Mode::HandlerAnnounce | Mode::HandlerScrape | Mode::HttpAnnounce => Ok(()),
    }
}
