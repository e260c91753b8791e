//! Standard output and error of the command line. Rust's own `println!`
//! panics when stdout is a pipe whose reader has gone
//! (`minitorrent info x.torrent --json | head -1`); here a closed stdout ends
//! the process quietly with status 0, as it does for other Unix tools. The
//! `println!`, `print!`, `eprintln!` and `eprint!` used anywhere in `cli/`
//! are macros defined at the top of `cli/mod.rs` that call these functions.
//! (SIGPIPE stays ignored, as Rust sets it: a peer that closes a TCP
//! connection must not kill the process.)

use std::fmt;
use std::io::{self, Write};

/// Writes to stdout; a closed stdout ends the process (see
/// [`stdout_failed`]).
pub fn stdout(args: fmt::Arguments<'_>, newline: bool) {
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
    if let Err(e) = io::stdout().flush() {
        stdout_failed(e);
    }
}

/// Nobody reads stdout any more: exit 0 without a word. Any other error
/// (a full disk under `> file`) is said on stderr, with status 1.
pub fn stdout_failed(e: io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
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
