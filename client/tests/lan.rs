//! LAN deployment, for real: the tracker and two peers each in their own
//! network namespace, joined by veth pairs on a bridge, so every process sees
//! the others at private, non-loopback addresses the way machines on a LAN do:
//!
//! ```text
//!   ns …-a (seeder)  10.77.0.2 ─veth─┐
//!                                    br0 10.77.0.1  ns …-t (tracker, bound to 0.0.0.0)
//!   ns …-b (leecher) 10.77.0.3 ─veth─┘
//! ```
//!
//! The seeder seeds a random file, the leecher in the other namespace gets it
//! by name, and the bytes are compared. A plain UDP REQUEST sent from the
//! leecher's namespace checks that the tracker lists the seeder at its
//! namespace address (never 127.0.0.1).
//!
//! Needs root and iproute2 (`ip netns`). Where a namespace cannot be created
//! the test prints why and passes without running; everything after that
//! must work. Namespaces and processes are removed on drop, also on failure.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);
const TRACKER_IP: &str = "10.77.0.1";
const SEEDER_IP: &str = "10.77.0.2";
const LEECHER_IP: &str = "10.77.0.3";
/// Set (to "TRACKER_ADDR NAME") when this test binary is re-run inside a
/// namespace as the UDP probe; see [`netns_probe`].
const PROBE_ENV: &str = "MT_LAN_PROBE";
const NS_PREFIX: &str = "mt-lan-";

// ------------------------------------------------------------- binaries

fn peer_bin() -> PathBuf {
    match std::env::var_os("MINITORRENT_TEST_PEER") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_minitorrent")),
    }
}

static BUILD_TRACKER: Once = Once::new();

/// The tracker binary sits next to ours (same target dir and profile). It
/// belongs to another package, so `cargo test -p minitorrent` does not build
/// it: build it once here (a no-op when it is up to date).
/// `MINITORRENT_TEST_TRACKER` overrides the path.
fn tracker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MINITORRENT_TEST_TRACKER") {
        return PathBuf::from(p);
    }
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_minitorrent"));
    let bin = ours.with_file_name(format!(
        "minitorrent-tracker{}",
        std::env::consts::EXE_SUFFIX
    ));
    BUILD_TRACKER.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "minitorrent-tracker"]);
        let profile_dir = bin.parent().and_then(Path::file_name);
        if profile_dir.and_then(|n| n.to_str()) == Some("release") {
            cmd.arg("--release");
        }
        if let Some(target_dir) = bin.parent().and_then(Path::parent) {
            cmd.env("CARGO_TARGET_DIR", target_dir);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        let st = cmd
            .status()
            .expect("running cargo build -p minitorrent-tracker");
        assert!(st.success(), "cargo build -p minitorrent-tracker failed");
    });
    bin
}

// ----------------------------------------------------------- namespaces

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    check(&out, &format!("ip {}", args.join(" ")))
}

fn check(out: &Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Network namespaces created by this test, deleted on drop.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.0.push(name.to_string());
        Ok(())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.0.iter().rev() {
            // Deleting a namespace removes its veth ends and the bridge.
            if let Err(e) = ip(&["netns", "delete", ns]) {
                eprintln!("lan test: could not delete namespace {ns}: {e}");
            }
        }
    }
}

/// Namespaces left by an earlier run that was killed (its PID is gone).
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

/// The tracker's namespace holds a bridge; each peer namespace is joined to it
/// by a veth pair whose peer end is created directly inside the peer's
/// namespace, so no interface names are used in the root namespace (two runs
/// at once cannot collide).
fn build_lan(tag: &str) -> Result<(Namespaces, [String; 3]), String> {
    let t = format!("{tag}-t");
    let a = format!("{tag}-a");
    let b = format!("{tag}-b");
    let mut nss = Namespaces(Vec::new());
    nss.add(&t)?;
    nss.add(&a)?;
    nss.add(&b)?;
    let on = |ns: &str, args: &[&str]| {
        let mut v = vec!["-n", ns];
        v.extend_from_slice(args);
        ip(&v)
    };
    on(&t, &["link", "set", "lo", "up"])?;
    on(&t, &["link", "add", "br0", "type", "bridge"])?;
    on(
        &t,
        &["addr", "add", &format!("{TRACKER_IP}/24"), "dev", "br0"],
    )?;
    on(&t, &["link", "set", "br0", "up"])?;
    for (ns, veth, addr) in [(&a, "va", SEEDER_IP), (&b, "vb", LEECHER_IP)] {
        on(
            &t,
            &[
                "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        )?;
        on(&t, &["link", "set", veth, "master", "br0"])?;
        on(&t, &["link", "set", veth, "up"])?;
        on(ns, &["link", "set", "lo", "up"])?;
        on(ns, &["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        on(ns, &["link", "set", "eth0", "up"])?;
    }
    Ok((nss, [t, a, b]))
}

// ------------------------------------------------------------ processes

/// A process started inside a namespace, stdout and stderr in files; killed
/// on drop.
struct Proc {
    name: &'static str,
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Proc {
    fn start(name: &'static str, ns: &str, dir: &Path, bin: &Path, args: &[&str]) -> Proc {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let mut cmd = Command::new("ip");
        // Never the machine's or the user's configuration (an installed
        // package's /etc/minitorrent/config.toml, MINITORRENT_* variables).
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MINITORRENT_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("MINITORRENT_SYSTEM_CONFIG", "")
            .env("MINITORRENT_USER_CONFIG", "");
        let child = cmd
            .args(["netns", "exec", ns])
            .arg(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            name,
            child,
            out,
            err,
        }
    }

    /// Both logs, for failure messages.
    fn logs(&self) -> String {
        let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            read(&self.out),
            self.name,
            tail(&read(&self.err), 40)
        )
    }

    /// Waits for a stdout line containing `needle`; panics with the logs of
    /// every process in `all` when it does not come.
    fn wait_line(&mut self, needle: &str, all: &[&Proc]) -> String {
        let out = self.out.clone();
        self.wait_line_in(&out, needle, all)
    }

    /// [`Proc::wait_line`] on stderr.
    fn wait_err_line(&mut self, needle: &str, all: &[&Proc]) -> String {
        let err = self.err.clone();
        self.wait_line_in(&err, needle, all)
    }

    fn wait_line_in(&mut self, file: &Path, needle: &str, all: &[&Proc]) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(l) = fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .find(|l| l.contains(needle))
            {
                return l.to_string();
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let why = match exited {
                    Some(st) => format!("exited ({st})"),
                    None => format!("nothing within {TIMEOUT:?}"),
                };
                panic!(
                    "{}: no line with {needle:?}: {why}\n{}\n{}",
                    self.name,
                    self.logs(),
                    all.iter().map(|p| p.logs()).collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].iter().map(|l| format!("{l}\n")).collect()
}

/// "... listening on 0.0.0.0:PORT" → PORT.
fn port_of(line: &str) -> u16 {
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ----------------------------------------------------------------- tests

#[test]
fn seeder_and_leecher_in_separate_namespaces() {
    if std::env::var_os(PROBE_ENV).is_some() {
        return; // this binary is running as the probe
    }
    remove_stale_namespaces();
    let tag = format!(
        "{NS_PREFIX}{}-{}",
        std::process::id(),
        fastrand::u32(..1 << 20)
    );
    // Only "cannot create a namespace at all" is a reason to skip.
    let probe = format!("{tag}-probe");
    if let Err(why) = ip(&["netns", "add", &probe]) {
        println!("SKIPPED lan test: cannot create a network namespace here ({why}); needs root and iproute2");
        return;
    }
    drop(Namespaces(vec![probe]));
    let (_nss, [ns_t, ns_a, ns_b]) = build_lan(&tag).unwrap_or_else(|e| panic!("{e}"));

    let tmp = TempDir(std::env::temp_dir().join(&tag));
    let seed_dir = tmp.0.join("seeder");
    let get_dir = tmp.0.join("leecher");
    fs::create_dir_all(&seed_dir).unwrap();
    fs::create_dir_all(&get_dir).unwrap();
    let name = "lan-notes.bin";
    let mut data = vec![0u8; 3 * 1024 * 1024 + 12_345];
    fastrand::Rng::new().fill(&mut data);
    fs::write(seed_dir.join(name), &data).unwrap();

    let tracker_bin = tracker_bin();
    let peer = peer_bin();
    let mut tracker = Proc::start(
        "tracker",
        &ns_t,
        &tmp.0,
        &tracker_bin,
        &["--bind", "0.0.0.0:0", "--db", "none", "--trace"],
    );
    let line = tracker.wait_line("listening on", &[]);
    let tracker_addr = format!("{TRACKER_IP}:{}", port_of(&line));

    let seed_path = seed_dir.join(name);
    let mut seeder = Proc::start(
        "seeder",
        &ns_a,
        &tmp.0,
        &peer,
        &[
            "--tracker",
            &tracker_addr,
            "--dir",
            seed_dir.to_str().unwrap(),
            "seed",
            seed_path.to_str().unwrap(),
        ],
    );
    let line = seeder.wait_line("listening on", &[&tracker]);
    let seeder_port = port_of(&line);
    seeder.wait_line("seeding ", &[&tracker]);
    let seeder_addr: SocketAddr = format!("{SEEDER_IP}:{seeder_port}").parse().unwrap();

    // The tracker's answer to a REQUEST from the leecher's namespace, sent by
    // this very test binary re-run there as the probe.
    let reply = probe_from(&ns_b, &tracker_addr, name, &tracker, &seeder);
    let peers: Vec<String> = reply["peers"]
        .as_array()
        .unwrap_or_else(|| panic!("PEERS without peers: {reply}"))
        .iter()
        .filter_map(|p| p["addr"].as_str().map(String::from))
        .collect();
    assert_eq!(reply["type"], "PEERS", "{reply}");
    assert!(
        peers.contains(&seeder_addr.to_string()),
        "the tracker should list the seeder at its namespace address {seeder_addr}, lists {peers:?}"
    );
    assert!(
        peers.iter().all(|a| !a.starts_with("127.")),
        "a loopback address in {peers:?}"
    );

    let stats = tmp.0.join("leecher-stats.json");
    let mut leecher = Proc::start(
        "leecher",
        &ns_b,
        &tmp.0,
        &peer,
        &[
            "--tracker",
            &tracker_addr,
            "--dir",
            get_dir.to_str().unwrap(),
            "--stats",
            stats.to_str().unwrap(),
            "--trace",
            "get",
            name,
            "--no-seed",
        ],
    );
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(st) = leecher.child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            panic!(
                "the download took more than {TIMEOUT:?}\n{}\n{}\n{}",
                leecher.logs(),
                seeder.logs(),
                tracker.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "leecher failed ({status})\n{}\n{}\n{}",
        leecher.logs(),
        seeder.logs(),
        tracker.logs()
    );
    let got = fs::read(get_dir.join(name)).unwrap();
    assert!(got == data, "the download differs from the original");

    // The bytes came over the veth link from the seeder's LAN address.
    let stats: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&stats).unwrap()).unwrap();
    let from = stats["bytes_from_peers"][seeder_addr.to_string()].as_u64();
    assert_eq!(
        from,
        Some(data.len() as u64),
        "bytes_from_peers should credit {seeder_addr} with every byte: {stats}"
    );
}

/// Runs this test binary inside `ns` as the probe and returns the reply.
fn probe_from(
    ns: &str,
    tracker: &str,
    name: &str,
    tracker_proc: &Proc,
    seeder: &Proc,
) -> serde_json::Value {
    let exe = std::env::current_exe().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .args([
                "--exact",
                "netns_probe",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(PROBE_ENV, format!("{tracker} {name}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("running the probe");
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let st = child.wait().expect("waiting for the probe");
        let reply = out
            .lines()
            // The harness prints "test netns_probe ... " on the same line.
            .find_map(|l| l.split_once("PROBE-REPLY ").map(|(_, json)| json))
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok());
        match reply {
            // The seeder registers just after it prints "seeding": until then
            // the name is not found.
            Some(r) if r["type"] == "ERROR" && r["code"] == "not_found" => {}
            Some(r) => return r,
            None => {}
        }
        if Instant::now() > deadline {
            panic!(
                "no PEERS reply for {name:?} from the tracker within {TIMEOUT:?} (probe {st}, output {out:?})\n{}\n{}",
                tracker_proc.logs(),
                seeder.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Not a test of its own: when [`PROBE_ENV`] is set, this binary was started
/// inside the leecher's namespace by [`probe_from`], and sends one REQUEST to
/// the tracker from there, printing the reply. Without it, it does nothing.
#[test]
fn netns_probe() {
    let Ok(spec) = std::env::var(PROBE_ENV) else {
        return;
    };
    let (tracker, name) = spec.split_once(' ').expect("MT_LAN_PROBE=ADDR NAME");
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.connect(tracker).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let tid = fastrand::u32(1..);
    let mut req = serde_json::json!({"type": "REQUEST", "tid": tid, "name": name});
    let mut buf = vec![0u8; 65536];
    for _ in 0..6 {
        sock.send(req.to_string().as_bytes()).unwrap();
        while let Ok(n) = sock.recv(&mut buf) {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf[..n]) else {
                continue;
            };
            if v["tid"] != tid {
                continue;
            }
            // A PEERS over 3 times the REQUEST needs the tracker's address
            // token: send it again with the one this ERROR hands out, once.
            if v["code"] == "token" && req.get("token").is_none() {
                req["token"] = v["token"].clone();
                sock.send(req.to_string().as_bytes()).unwrap();
                continue;
            }
            println!("PROBE-REPLY {v}");
            return;
        }
    }
    println!("PROBE-NO-REPLY");
}

// ------------------------------------------------------------ discovery

/// Not the default 6968: namespaces keep tests apart anyway, and a test must
/// never answer to (or be answered by) a tracker someone runs for real.
const DISCOVER_PORT: &str = "16968";

/// LAN discovery across the bridge: a seeder and a leecher started with no
/// `--tracker` find the tracker in its own namespace (by broadcast or
/// multicast: the copy sent to 127.0.0.1 reaches nobody there), and the file
/// arrives byte for byte; a tracker started with `--no-discover` is not found,
/// and the peer says so.
#[test]
fn peers_find_the_tracker_on_the_lan_by_themselves() {
    if std::env::var_os(PROBE_ENV).is_some() {
        return;
    }
    remove_stale_namespaces();
    let tag = format!(
        "{NS_PREFIX}{}-{}",
        std::process::id(),
        fastrand::u32(..1 << 20)
    );
    let probe = format!("{tag}-probe");
    if let Err(why) = ip(&["netns", "add", &probe]) {
        println!("SKIPPED lan discovery test: cannot create a network namespace here ({why}); needs root and iproute2");
        return;
    }
    drop(Namespaces(vec![probe]));
    let (_nss, [ns_t, ns_a, ns_b]) = build_lan(&tag).unwrap_or_else(|e| panic!("{e}"));

    let tmp = TempDir(std::env::temp_dir().join(&tag));
    let seed_dir = tmp.0.join("seeder");
    let get_dir = tmp.0.join("leecher");
    fs::create_dir_all(&seed_dir).unwrap();
    fs::create_dir_all(&get_dir).unwrap();
    let name = "found-on-the-lan.bin";
    let mut data = vec![0u8; 1024 * 1024 + 777];
    fastrand::Rng::new().fill(&mut data);
    let seed_path = seed_dir.join(name);
    fs::write(&seed_path, &data).unwrap();

    let tracker_bin = tracker_bin();
    let peer = peer_bin();
    let mut tracker = Proc::start(
        "tracker",
        &ns_t,
        &tmp.0,
        &tracker_bin,
        &[
            "--bind",
            "0.0.0.0:0",
            "--db",
            "none",
            "--discover-port",
            DISCOVER_PORT,
            "--trace",
        ],
    );
    let line = tracker.wait_line("listening on", &[]);
    let tracker_addr = format!("{TRACKER_IP}:{}", port_of(&line));
    let found = format!("found tracker {tracker_addr} on the LAN");

    let mut seeder = Proc::start(
        "seeder",
        &ns_a,
        &tmp.0,
        &peer,
        &[
            "--discover-port",
            DISCOVER_PORT,
            "--dir",
            seed_dir.to_str().unwrap(),
            "seed",
            seed_path.to_str().unwrap(),
        ],
    );
    seeder.wait_err_line(&found, &[&tracker]);
    seeder.wait_line("seeding ", &[&tracker]);

    // The seeder registers just after it prints "seeding": wait until the
    // tracker (tracing) has read that REGISTER.
    tracker.wait_err(&format!("REGISTER {name}"), &[&seeder]);
    let mut leecher = Proc::start(
        "leecher",
        &ns_b,
        &tmp.0,
        &peer,
        &[
            "--discover-port",
            DISCOVER_PORT,
            "--dir",
            get_dir.to_str().unwrap(),
            "--trace",
            "get",
            name,
            "--no-seed",
        ],
    );
    let status = leecher.wait_exit(&[&tracker, &seeder]);
    assert!(
        status.success(),
        "leecher failed ({status})\n{}\n{}\n{}",
        leecher.logs(),
        seeder.logs(),
        tracker.logs()
    );
    leecher.wait_err_line(&found, &[&tracker]);
    let got = fs::read(get_dir.join(name)).unwrap();
    assert!(got == data, "the download differs from the original");
    // The tracker saw the leecher's DISCOVER from its LAN address twice:
    // the subnet broadcast and the multicast copy (the one to 127.0.0.1
    // stays in the leecher's namespace).
    let tracker_err = fs::read_to_string(&tracker.err).unwrap_or_default();
    let discovers = tracker_err
        .lines()
        .filter(|l| l.contains(&format!("← {LEECHER_IP}:")) && l.contains("DISCOVER tid="))
        .count();
    assert!(
        discovers >= 2,
        "{discovers} DISCOVER from {LEECHER_IP} in the tracker's trace, expected the broadcast and the multicast copy\n{}",
        tracker.logs()
    );
    drop(leecher);
    drop(seeder);
    drop(tracker);

    // The same LAN, a tracker with --no-discover: nobody finds it.
    let mut quiet = Proc::start(
        "quiet-tracker",
        &ns_t,
        &tmp.0,
        &tracker_bin,
        &[
            "--bind",
            "0.0.0.0:0",
            "--db",
            "none",
            "--discover-port",
            DISCOVER_PORT,
            "--no-discover",
        ],
    );
    quiet.wait_line("listening on", &[]);
    let mut lost = Proc::start(
        "lost-peer",
        &ns_b,
        &tmp.0,
        &peer,
        &["--discover-port", DISCOVER_PORT, "search", ""],
    );
    let status = lost.wait_exit(&[&quiet]);
    assert!(!status.success(), "search found a tracker\n{}", lost.logs());
    let out = fs::read_to_string(&lost.out).unwrap_or_default();
    let err = fs::read_to_string(&lost.err).unwrap_or_default();
    assert!(
        !out.contains("found tracker") && !err.contains("found tracker"),
        "{}",
        lost.logs()
    );
    assert!(
        err.contains("no tracker answered on the LAN") && err.contains("--tracker HOST"),
        "the peer should say no tracker answered and how to name one\n{}",
        lost.logs()
    );
}

impl Proc {
    /// Waits for a stderr line containing `needle`.
    fn wait_err(&self, needle: &str, all: &[&Proc]) {
        let deadline = Instant::now() + TIMEOUT;
        while !fs::read_to_string(&self.err)
            .unwrap_or_default()
            .contains(needle)
        {
            if Instant::now() > deadline {
                panic!(
                    "{}: no stderr line with {needle:?} within {TIMEOUT:?}\n{}\n{}",
                    self.name,
                    self.logs(),
                    all.iter().map(|p| p.logs()).collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit; panics with every log after
    /// [`TIMEOUT`].
    fn wait_exit(&mut self, all: &[&Proc]) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not exit within {TIMEOUT:?}\n{}\n{}",
                    self.name,
                    self.logs(),
                    all.iter().map(|p| p.logs()).collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
