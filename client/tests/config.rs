//! Settings from files, the environment and flags, as a user meets them:
//! `minitorrent config` says where each value came from, the values are
//! used, a bad file names its line, a tracker without a port is on 6969,
//! and a download directory that cannot be written is refused before
//! anything is fetched.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// `minitorrent ARGS` to its end, with `envs` on top of a hermetic
/// environment; `home` replaces the hermetic "no user file" by
/// `HOME=home` and `XDG_CONFIG_HOME=home/xdg`.
fn run(args: &[&str], envs: &[(&str, &str)], home: Option<&Path>) -> Output {
    let mut cmd = Command::new(minitorrent_bin());
    cmd.args(args).stdin(Stdio::null()).env("RUST_LOG", "warn");
    hermetic(&mut cmd);
    if let Some(h) = home {
        cmd.env_remove("MINITORRENT_USER_CONFIG")
            .env("HOME", h)
            .env("XDG_CONFIG_HOME", h.join("xdg"));
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running minitorrent");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The line of `minitorrent config` for `key`, its spaces collapsed.
fn setting(out: &str, key: &str) -> String {
    let l = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key} in\n{out}"));
    l.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn files_then_environment_then_flags() {
    let tmp = TempDir::new("cfg-order");
    let etc = tmp.join("etc.toml");
    std::fs::write(
        &etc,
        "# the lab's settings\ntracker = \"127.0.0.1\"\nport = 7001\nmax_upload_rate = \"2M\"\n\
         discover = false\n",
    )
    .unwrap();
    let user_dir = tmp.sub("xdg/minitorrent");
    let user = user_dir.join("config.toml");
    std::fs::write(&user, "port = 7002\nmax-peers = 4\n").unwrap();
    let etc_s = etc.to_str().unwrap();
    let sys = ("MINITORRENT_SYSTEM_CONFIG", etc_s);

    let o = run(&["config"], &[sys], Some(tmp.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("{etc_s} (lab-wide): read")), "{out}");
    assert!(
        out.contains(&format!("{} (user): read", user.display())),
        "{out}"
    );
    assert_eq!(
        setting(&out, "tracker"),
        format!("tracker = 127.0.0.1 from {etc_s} line 2")
    );
    assert!(
        setting(&out, "port").ends_with(&format!("from {} line 1", user.display())),
        "{out}"
    );
    assert!(setting(&out, "port").contains("= 7002"), "{out}");
    assert!(setting(&out, "max_peers").contains("= 4"), "{out}");
    assert!(
        setting(&out, "max_upload_rate").contains("2000000 bytes/s"),
        "{out}"
    );
    assert!(
        setting(&out, "discover").ends_with(&format!("from {etc_s} line 5")),
        "{out}"
    );
    assert!(
        setting(&out, "discover_port").contains("6968")
            && setting(&out, "discover_port").ends_with("from default"),
        "{out}"
    );
    assert!(setting(&out, "dir").ends_with("from default"), "{out}");
    // A tracker without a port is on 6969.
    assert!(out.contains("tracker address: 127.0.0.1:6969"), "{out}");

    // The environment overrides both files.
    let env = [
        sys,
        ("MINITORRENT_PORT", "7003"),
        ("MINITORRENT_TRACKER", "udp://127.0.0.2/announce"),
    ];
    let out = stdout(&run(&["config"], &env, Some(tmp.path())));
    assert!(
        setting(&out, "port").contains("= 7003")
            && setting(&out, "port").ends_with("from env MINITORRENT_PORT"),
        "{out}"
    );
    assert!(out.contains("tracker address: 127.0.0.2:6969"), "{out}");

    // Flags override everything, given after the command or before it.
    for args in [
        &["config", "--port", "7004", "--trace"][..],
        &["--port", "7004", "--trace", "config"][..],
    ] {
        let out = stdout(&run(args, &env, Some(tmp.path())));
        assert!(
            setting(&out, "port").contains("= 7004")
                && setting(&out, "port").ends_with("from --port"),
            "{args:?}\n{out}"
        );
        assert!(setting(&out, "trace").ends_with("from --trace"), "{out}");
    }

    // --config (or MINITORRENT_CONFIG) is read last of the files.
    let extra = tmp.join("extra.toml");
    std::fs::write(&extra, "dir = \"/srv/lab\"\nport = 7005\n").unwrap();
    let extra_s = extra.to_str().unwrap();
    for (args, env) in [
        (vec!["config", "--config", extra_s], vec![sys]),
        (vec!["config"], vec![sys, ("MINITORRENT_CONFIG", extra_s)]),
    ] {
        let out = stdout(&run(&args, &env, Some(tmp.path())));
        assert!(setting(&out, "port").contains("= 7005"), "{out}");
        assert!(
            setting(&out, "dir").ends_with(&format!("from {extra_s} line 1")),
            "{out}"
        );
    }
}

#[test]
fn no_files_at_all_reads_nothing() {
    let tmp = TempDir::new("cfg-none");
    let out = stdout(&run(&["config"], &[], Some(tmp.path())));
    let path = tmp.join("xdg/minitorrent/config.toml");
    assert!(
        out.contains(&format!("{} (user): not found", path.display())),
        "{out}"
    );
    assert_eq!(out.matches("): ").count(), 1, "only the user file: {out}");
    let out = stdout(&run(&["config"], &[], None));
    assert!(out.contains("(none)"), "{out}");
    for l in out.lines().filter(|l| l.contains(" = ")) {
        assert!(l.ends_with("from default"), "{out}");
    }
}

#[test]
fn a_bad_file_names_file_line_and_key() {
    let tmp = TempDir::new("cfg-bad");
    let f = tmp.join("lab.toml");
    let name = f.to_str().unwrap();
    let sys = ("MINITORRENT_SYSTEM_CONFIG", name);
    for (text, want) in [
        (
            "port = 7000\ntrakcer = \"10.0.0.1\"\n",
            format!("config file {name} line 2: unknown key \"trakcer\""),
        ),
        (
            "\n\ntracker = 10.0.0.1\n",
            format!("config file {name} line 3: tracker: 10.0.0.1 is not a value"),
        ),
        (
            "port = \"many\"\n",
            format!("config file {name} line 1: port: \"many\" is not a TCP port"),
        ),
        (
            "[peer]\nport = 1\n",
            format!("config file {name} line 1: \"[peer]\": tables are not used"),
        ),
    ] {
        std::fs::write(&f, text).unwrap();
        for args in [&["config"][..], &["search", "--tracker", "127.0.0.1:9"][..]] {
            let o = run(args, &[sys], None);
            assert!(!o.status.success(), "{text:?} {args:?}");
            assert!(stderr(&o).contains(&want), "{want}\n{}", stderr(&o));
        }
    }
    let o = run(
        &["config"],
        &[("MINITORRENT_MAX_UPLOAD_RATE", "fast")],
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("environment variable MINITORRENT_MAX_UPLOAD_RATE: \"fast\" is not a rate"),
        "{}",
        stderr(&o)
    );
    let o = run(&["config", "--config", "/nonexistent/lab.toml"], &[], None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot read the config file /nonexistent/lab.toml (--config)"),
        "{}",
        stderr(&o)
    );
    // `info` needs no settings: a broken lab file does not stop it.
    let data = tmp.join("i.bin");
    write_random(&data, 1000);
    let torrent = tmp.join("i.torrent");
    run_create(&data, &torrent, "127.0.0.1:6969", 16384);
    let o = run(&["info", torrent.to_str().unwrap()], &[sys], None);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn configured_settings_are_used() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("cfg-used");
    let s = tmp.sub("s");
    let data = s.join("lab-notes.bin");
    write_random(&data, 300_000);
    let mut seeder = Proc::mt(
        "seeder",
        &["seed", data.to_str().unwrap(), "--tracker", &tracker.arg()],
    );
    if seeder
        .out
        .wait_match(|l| l.starts_with("seeding "), TIMEOUT)
        .is_none()
    {
        panic!("seeder did not start\n{}", seeder.dump());
    }

    // The tracker from the environment alone.
    let o = run(
        &["search", "lab-notes"],
        &[("MINITORRENT_TRACKER", &tracker.arg())],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("lab-notes.bin"), "{}", stdout(&o));

    // Tracker and download directory from the lab-wide file alone.
    let dl = tmp.join("downloads");
    let etc = tmp.join("etc.toml");
    std::fs::write(
        &etc,
        format!(
            "tracker = \"{}\"\ndir = \"{}\"\nmax_peers = 2\n",
            tracker.arg(),
            dl.display()
        ),
    )
    .unwrap();
    let mut p = Proc::spawn(
        "leecher",
        &minitorrent_bin(),
        &["get", "lab-notes.bin", "--no-seed"],
        &[("MINITORRENT_SYSTEM_CONFIG", etc.to_str().unwrap())],
        false,
    );
    let st = p.wait(TIMEOUT);
    assert!(st.success(), "{}", p.dump());
    assert_same_file(&data, &dl.join("lab-notes.bin"));
    seeder.kill();
}

#[test]
fn create_announces_port_6969_for_a_bare_host() {
    let tmp = TempDir::new("cfg-6969");
    let data = tmp.join("a.bin");
    write_random(&data, 5000);
    for tracker in ["127.0.0.1", "udp://127.0.0.1/announce"] {
        let torrent = tmp.join("a.torrent");
        run_create(&data, &torrent, tracker, 16384);
        let o = run(&["info", torrent.to_str().unwrap()], &[], None);
        assert!(
            stdout(&o).contains("announce: udp://127.0.0.1:6969"),
            "{tracker}: {}",
            stdout(&o)
        );
    }
    let o = run(
        &[
            "create",
            data.to_str().unwrap(),
            "-o",
            "/dev/null",
            "--tracker",
            "127.0.0.1:x",
        ],
        &[],
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("\"x\" is not a port number (1 to 65535; leave it out for 6969)"),
        "{}",
        stderr(&o)
    );
}

/// A directory this process cannot write, or `None` (with the reason) when
/// the test cannot make one: root writes through file modes, so a read-only
/// tmpfs stands in for it there.
struct ReadOnlyDir {
    path: std::path::PathBuf,
    mounted: bool,
}

impl ReadOnlyDir {
    fn make(at: std::path::PathBuf) -> Option<ReadOnlyDir> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&at).ok()?;
        std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o555)).ok()?;
        if std::fs::write(at.join("probe"), b"x").is_err() {
            return Some(ReadOnlyDir {
                path: at,
                mounted: false,
            });
        }
        let _ = std::fs::remove_file(at.join("probe"));
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"])
            .arg(&at)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(ReadOnlyDir {
            path: at,
            mounted: true,
        })
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.mounted {
            let _ = Command::new("umount").arg(&self.path).status();
        }
        let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn an_unwritable_download_dir_is_refused_before_fetching() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("cfg-rodir");

    // A directory that cannot be created: a file stands in its path.
    let file = tmp.join("file");
    std::fs::write(&file, b"x").unwrap();
    let under = file.join("dl");
    let o = run(
        &[
            "get",
            "anything.bin",
            "--no-seed",
            "--tracker",
            &tracker.arg(),
            "--dir",
            under.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "cannot create the download directory {} (set by --dir)",
            under.display()
        )) && err.contains("choose another with --dir DIR"),
        "{err}"
    );
    assert!(!stdout(&o).contains("listening on"), "{}", stdout(&o));

    let Some(ro) = ReadOnlyDir::make(tmp.join("ro")) else {
        eprintln!("skipped: cannot make a read-only directory here");
        return;
    };
    let dir = ro.path.to_str().unwrap();
    let o = run(
        &[
            "get",
            "anything.bin",
            "--no-seed",
            "--tracker",
            &tracker.arg(),
        ],
        &[("MINITORRENT_DIR", dir)],
        None,
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "cannot write to the download directory {dir} (set by env MINITORRENT_DIR)"
        )) && err.contains("download elsewhere with --dir DIR"),
        "{err}"
    );
    assert_eq!(err.matches("cannot write").count(), 1, "said once: {err}");
    // Refused before the tracker was asked anything: it would have said
    // that it knows no such file.
    assert!(!err.contains("knows no file"), "{err}");
    assert!(!stdout(&o).contains("listening on"), "{}", stdout(&o));
    drop(ro);
}
