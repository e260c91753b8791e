//! Standard output and error of the command line. Rust's own `println!`
//! panics when stdout is a pipe whose reader has gone
//! (`minitorrent info x.torrent --json | head -1`); here a closed stdout ends
//! the process quietly with status 0, as it does for other Unix tools; in
//! the commands that keep running (`get`, `seed`, `share`, the menu) it only
//! stops the printing, and the command goes on to its normal end. The
//! `println!`, `print!`, `eprintln!` and `eprint!` used anywhere in `cli/`
//! are macros defined at the top of `cli/mod.rs` that call these functions.
//! (SIGPIPE stays ignored, as Rust sets it: a peer that closes a TCP
//! connection must not kill the process.)

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set for the commands that keep running (`get`, `seed`, `share`, the
/// menu): a closed stdout there must not end a download half-way or skip
/// the goodbye to the tracker, so it only stops the printing.
static KEEP_RUNNING: AtomicBool = AtomicBool::new(false);
/// Stdout was found closed while [`KEEP_RUNNING`]: nothing more is written.
static GONE: AtomicBool = AtomicBool::new(false);

/// A closed stdout from now on stops the printing, not the process.
pub fn keep_running_when_closed() {
    KEEP_RUNNING.store(true, Ordering::Relaxed);
}

/// Writes to stdout; a closed stdout ends the process (see
/// [`stdout_failed`]).
pub fn stdout(args: fmt::Arguments<'_>, newline: bool) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut o = io::stdout().lock();
    let r = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
    if let Err(e) = r {
        stdout_failed(e);
    }
}

/// Flushes stdout; a closed stdout ends the process.
pub fn flush() {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = io::stdout().flush() {
        stdout_failed(e);
    }
}

/// Nobody reads stdout any more: exit 0 without a word (or, in a command
/// that keeps running, print nothing more). Any other error
/// (a full disk under `> file`) is said on stderr, with status 1.
pub fn stdout_failed(e: io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        if KEEP_RUNNING.load(Ordering::Relaxed) {
            GONE.store(true, Ordering::Relaxed);
            return;
        }
        std::process::exit(0);
    }
    let _ = writeln!(
        io::stderr(),
        "minitorrent: cannot write to standard output: {e}"
    );
    std::process::exit(1);
}

/// Writes to stderr; an error is ignored (there is nowhere left to say it).
pub fn stderr(args: fmt::Arguments<'_>, newline: bool) {
    let mut o = io::stderr().lock();
    let _ = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
}
