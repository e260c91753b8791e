//! Writing to a closed pipe (`minitorrent info x.torrent --json | head -1`)
//! ends quietly with status 0, never a panic. The pipe's reading end is
//! closed before the process starts, so every write it makes fails.

mod common;

use std::process::{Command, Output, Stdio};

use common::*;

/// `minitorrent ARGS` with its stdout a pipe nobody reads.
fn into_closed_pipe(args: &[&str], stdin: Stdio) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cmd = Command::new(minitorrent_bin());
    cmd.args(args)
        .stdin(stdin)
        .stdout(writer)
        .stderr(Stdio::piped())
        .env("RUST_LOG", "warn");
    hermetic(&mut cmd);
    let child = cmd.spawn().expect("spawning minitorrent");
    drop(cmd); // our copy of the pipe's writing end
    child.wait_with_output().expect("waiting for minitorrent")
}

fn quiet_success(what: &str, o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(o.status.code(), Some(0), "{what}: {}\n{err}", o.status);
    assert!(err.trim().is_empty(), "{what}: quietly, not {err:?}");
}

#[test]
fn info_and_search_into_a_closed_pipe_exit_0() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("pipe");
    let data = tmp.join("p.bin");
    write_random(&data, 100_000);
    let torrent = tmp.join("p.torrent");
    create_torrent(&data, &torrent, &tracker, 16384);
    let t = torrent.to_str().unwrap();

    quiet_success(
        "info --json",
        &into_closed_pipe(&["info", t, "--json"], Stdio::null()),
    );
    quiet_success("info", &into_closed_pipe(&["info", t], Stdio::null()));
    quiet_success(
        "search",
        &into_closed_pipe(&["search", "--tracker", &tracker.arg()], Stdio::null()),
    );
    quiet_success("config", &into_closed_pipe(&["config"], Stdio::null()));
    let data_s = data.to_str().unwrap();
    let out = tmp.join("q.torrent");
    quiet_success(
        "create",
        &into_closed_pipe(
            &[
                "create",
                data_s,
                "-o",
                out.to_str().unwrap(),
                "--tracker",
                &tracker.arg(),
            ],
            Stdio::null(),
        ),
    );
    // The menu ends at the end of its input, quietly.
    quiet_success(
        "menu",
        &into_closed_pipe(
            &[
                "--tracker",
                &tracker.arg(),
                "--bind",
                "127.0.0.1",
                "--dir",
                tmp.path().to_str().unwrap(),
            ],
            Stdio::piped(),
        ),
    );
}

/// A command that keeps running (`get`, `seed`) only stops printing when its
/// stdout closes: the download finishes and is whole, the seeder keeps
/// seeding until Ctrl-C, and neither panics.
#[test]
fn downloads_and_seeders_go_on_when_stdout_closes() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("pipe-run");
    let data = tmp.join("r.bin");
    let bytes = write_random(&data, 600_000);
    let data_s = data.to_str().unwrap();

    let spawn_closed = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = Command::new(minitorrent_bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .env("RUST_LOG", "warn");
        hermetic(&mut cmd);
        let child = cmd.spawn().expect("spawning minitorrent");
        drop(cmd);
        child
    };
    let seeder = spawn_closed(&[
        "seed",
        data_s,
        "--tracker",
        &tracker.arg(),
        "--bind",
        "127.0.0.1",
    ]);
    let dir = tmp.sub("down");
    let get = spawn_closed(&[
        "get",
        "r.bin",
        "--no-seed",
        "--tracker",
        &tracker.arg(),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let out = get.wait_with_output().expect("waiting for get");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "get: {err}");
    assert_eq!(std::fs::read(dir.join("r.bin")).unwrap(), bytes);

    // The seeder served the whole download after its stdout had closed
    // (its first line already failed); Ctrl-C ends it as usual.
    let mut seeder = seeder;
    assert!(seeder.try_wait().unwrap().is_none(), "the seeder stopped");
    let pid = seeder.id() as i32;
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = seeder.wait_with_output().expect("waiting for the seeder");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "seed: {err}");
}
