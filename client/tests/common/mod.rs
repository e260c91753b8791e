//! Test harness: real `minitorrent` and `minitorrent-tracker` processes on
//! 127.0.0.1, temp dirs, output read line by line with deadlines, children
//! killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::{InfoHash, Metainfo};
use minitorrent_common::wire::{self, Bitfield, Handshake, Message};

pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn minitorrent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_minitorrent"))
}

static BUILD_TRACKER: Once = Once::new();

/// The tracker binary sits next to ours (same target directory and profile).
/// It belongs to another package, so `cargo test -p minitorrent` does not
/// build it: the harness runs `cargo build -p minitorrent-tracker` once per
/// test binary (a no-op when it is up to date).
/// `MINITORRENT_TEST_TRACKER` overrides the path.
pub fn tracker_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MINITORRENT_TEST_TRACKER") {
        return PathBuf::from(p);
    }
    let bin = minitorrent_bin().with_file_name("minitorrent-tracker");
    BUILD_TRACKER.call_once(|| {
        let profile_dir = bin
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "minitorrent-tracker"]);
        if profile_dir == Some("release") {
            cmd.arg("--release");
        }
        let target_dir = bin.parent().and_then(|p| p.parent());
        if let Some(t) = target_dir {
            cmd.env("CARGO_TARGET_DIR", t);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        let st = cmd
            .status()
            .expect("running cargo build -p minitorrent-tracker");
        assert!(st.success(), "cargo build -p minitorrent-tracker failed");
    });
    bin
}

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "mt-test-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
    pub fn sub(&self, p: &str) -> PathBuf {
        let d = self.0.join(p);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::new();
    let mut v = vec![0u8; n];
    rng.fill(&mut v);
    v
}

pub fn write_random(path: &Path, n: usize) -> Vec<u8> {
    let d = random_bytes(n);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, &d).unwrap();
    d
}

/// Lines of a child's stdout or stderr, collected by a reader thread.
/// The lines so far and whether the stream ended.
type Shared = Arc<(Mutex<(Vec<String>, bool)>, Condvar)>;

#[derive(Clone, Default)]
pub struct Lines(Shared);

impl Lines {
    fn spawn(r: impl std::io::Read + Send + 'static, echo: &'static str) -> Lines {
        let l = Lines::default();
        let l2 = l.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("MT_TEST_ECHO").is_some() {
                    eprintln!("[{echo}] {line}");
                }
                let (m, c) = &*l2.0;
                m.lock().unwrap().0.push(line);
                c.notify_all();
            }
            let (m, c) = &*l2.0;
            m.lock().unwrap().1 = true;
            c.notify_all();
        });
        l
    }

    /// Waits for a line containing `pat` and returns it.
    pub fn wait_for(&self, pat: &str, timeout: Duration) -> String {
        self.wait_match(|l| l.contains(pat), timeout)
            .unwrap_or_else(|| {
                panic!(
                    "no line containing {pat:?} within {timeout:?}; got:\n{}",
                    self.text()
                )
            })
    }

    pub fn wait_match(&self, f: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.0;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(l) = g.0.iter().find(|l| f(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline || g.1 {
                return None;
            }
            g = c.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    pub fn text(&self) -> String {
        self.0 .0.lock().unwrap().0.join("\n")
    }

    pub fn contains(&self, pat: &str) -> bool {
        self.0 .0.lock().unwrap().0.iter().any(|l| l.contains(pat))
    }
}

/// The peer reads no configuration of this machine or user: no
/// /etc/minitorrent or ~/.config file, no MINITORRENT_* setting of the shell
/// that runs the tests (a test sets what it needs through `envs`).
pub fn hermetic(cmd: &mut Command) {
    cmd.env("MINITORRENT_SYSTEM_CONFIG", "")
        .env("MINITORRENT_USER_CONFIG", "");
    for k in [
        "MINITORRENT_CONFIG",
        "MINITORRENT_TRACKER",
        "MINITORRENT_TRACKER_PROTOCOL",
        "MINITORRENT_DIR",
        "MINITORRENT_PORT",
        "MINITORRENT_BIND",
        "MINITORRENT_MAX_PEERS",
        "MINITORRENT_MAX_UPLOAD_RATE",
        "MINITORRENT_MAX_DOWNLOAD_RATE",
        "MINITORRENT_ENCRYPTION",
        "MINITORRENT_WEB_PASSWORD",
        "MINITORRENT_DISCOVER",
        "MINITORRENT_DISCOVER_PORT",
        "MINITORRENT_TRACE",
    ] {
        cmd.env_remove(k);
    }
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub out: Lines,
    pub err: Lines,
    pub stdin: Option<ChildStdin>,
    pub name: &'static str,
}

impl Proc {
    pub fn spawn(
        name: &'static str,
        bin: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        stdin: bool,
    ) -> Proc {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() });
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        hermetic(&mut cmd);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let out = Lines::spawn(child.stdout.take().unwrap(), name);
        let err = Lines::spawn(child.stderr.take().unwrap(), name);
        let stdin = child.stdin.take();
        Proc {
            child,
            out,
            err,
            stdin,
            name,
        }
    }

    pub fn mt(name: &'static str, args: &[&str]) -> Proc {
        Proc::spawn(name, &minitorrent_bin(), args, &[], false)
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader threads drain.
                let _ = self.out.wait_match(|_| false, Duration::from_secs(2));
                let _ = self.err.wait_match(|_| false, Duration::from_secs(2));
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.out.text(),
                    self.err.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn send_line(&mut self, line: &str) {
        let s = self.stdin.as_mut().expect("stdin piped");
        writeln!(s, "{line}").unwrap();
        s.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// SIGINT, like Ctrl-C.
    pub fn interrupt(&self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The port from the `listening on ADDR:PORT` line.
    pub fn port(&self) -> u16 {
        let l = self.out.wait_for("listening on ", TIMEOUT);
        l.rsplit(':').next().unwrap().trim().parse().unwrap()
    }

    pub fn dump(&self) -> String {
        format!(
            "--- {} stdout:\n{}\n--- {} stderr:\n{}",
            self.name,
            self.out.text(),
            self.name,
            self.err.text()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Tracker {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Tracker {
    pub fn start() -> Tracker {
        Tracker::start_with(&["--bind", "127.0.0.1:0"])
    }

    /// Adds `--db none` unless `args` name a database: tests keep no
    /// catalogue file behind.
    pub fn start_with(args: &[&str]) -> Tracker {
        let mut args = args.to_vec();
        if !args.contains(&"--db") {
            args.extend(["--db", "none"]);
        }
        // A fixed --bind port would put the web page on port 8080, where
        // tests running side by side collide: a free port instead.
        let web_any;
        if !args.contains(&"--web") {
            let bind = args
                .windows(2)
                .find(|w| w[0] == "--bind")
                .and_then(|w| w[1].parse::<SocketAddr>().ok());
            if let Some(b) = bind.filter(|b| b.port() != 0) {
                web_any = SocketAddr::new(b.ip(), 0).to_string();
                args.extend(["--web", web_any.as_str()]);
            }
        }
        let proc = Proc::spawn("tracker", &tracker_bin(), &args, &[], false);
        let line = proc
            .out
            .wait_match(|l| l.contains("listening on"), TIMEOUT)
            .or_else(|| {
                proc.err
                    .wait_match(|l| l.contains("listening on"), Duration::from_secs(1))
            })
            .unwrap_or_else(|| panic!("tracker did not start\n{}", proc.dump()));
        let addr = line
            .split_whitespace()
            .find_map(|w| w.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Tracker { proc, addr }
    }
    pub fn arg(&self) -> String {
        self.addr.to_string()
    }

    /// The HTTP announce URL on the tracker's web port (start it with
    /// `--web 127.0.0.1:0`).
    pub fn announce_url(&self) -> String {
        let line = self
            .proc
            .out
            .wait_match(|l| l.contains("web page on http://"), TIMEOUT)
            .unwrap_or_else(|| panic!("the tracker has no web page\n{}", self.proc.dump()));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        format!("{}announce", url)
    }
}

/// `minitorrent create` with a small piece length; returns the magnet link.
pub fn create_torrent(data: &Path, out: &Path, tracker: &Tracker, piece_len: u32) -> String {
    let p = run_create(data, out, &tracker.arg(), piece_len);
    let m = p.out.wait_for("magnet:", TIMEOUT);
    m.trim_start_matches("magnet: ").to_string()
}

/// `minitorrent create` announcing `announce`, run to a successful end; its
/// output holds the info hash and the magnet link.
pub fn run_create(data: &Path, out: &Path, announce: &str, piece_len: u32) -> Proc {
    let mut p = Proc::mt(
        "create",
        &[
            "create",
            data.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--tracker",
            announce,
            "--piece-length",
            &piece_len.to_string(),
        ],
    );
    let st = p.wait(TIMEOUT);
    assert!(st.success(), "create failed\n{}", p.dump());
    p
}

/// A seeder of `torrent` with data in `dir`, started and registered.
pub fn seed_torrent(
    name: &'static str,
    tracker: &Tracker,
    torrent: &Path,
    dir: &Path,
    extra: &[&str],
) -> Proc {
    let mut args = vec![
        "seed",
        torrent.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
        "--tracker",
    ];
    let t = tracker.arg();
    args.push(&t);
    args.extend_from_slice(extra);
    let p = Proc::mt(name, &args);
    if p.out
        .wait_match(|l| l.starts_with("seeding "), TIMEOUT)
        .is_none()
    {
        panic!("seeder did not start\n{}", p.dump());
    }
    p
}

/// `get` with `--no-seed`, in `dir`; waits for it to finish successfully.
pub fn get_ok(
    name: &'static str,
    tracker: &Tracker,
    source: &str,
    dir: &Path,
    extra: &[&str],
) -> Proc {
    let mut p = start_get(name, tracker, source, dir, extra);
    let st = p.wait(TIMEOUT);
    assert!(st.success(), "get failed: {st}\n{}", p.dump());
    assert!(p.out.contains("SHA-1 verified"), "{}", p.dump());
    p
}

pub fn start_get(
    name: &'static str,
    tracker: &Tracker,
    source: &str,
    dir: &Path,
    extra: &[&str],
) -> Proc {
    let t = tracker.arg();
    let mut args = vec![
        "get",
        source,
        "--no-seed",
        "--dir",
        dir.to_str().unwrap(),
        "--tracker",
        &t,
    ];
    args.extend_from_slice(extra);
    Proc::mt(name, &args)
}

pub fn assert_same_file(a: &Path, b: &Path) {
    let x = std::fs::read(a).unwrap_or_else(|e| panic!("{}: {e}", a.display()));
    let y = std::fs::read(b).unwrap_or_else(|e| panic!("{}: {e}", b.display()));
    assert!(
        x.len() == y.len() && x == y,
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

/// Polls `f` until it is true or the deadline passes.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bytes actually written to a (sparse) file.
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}

// Fake peers written in the tests themselves, with std::net and the shared
// wire codecs.

/// The parsed metainfo of a `.torrent` file.
pub fn metainfo_of(torrent: &Path) -> Metainfo {
    Metainfo::from_bytes(&std::fs::read(torrent).unwrap()).unwrap()
}

/// One peer wire message as it goes on the wire (length prefix included).
pub fn frame(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

/// Reads one length-prefixed message; a bad prefix or body is `InvalidData`.
pub fn read_msg(s: &mut impl Read) -> std::io::Result<Message> {
    let mut p = [0u8; 4];
    s.read_exact(&mut p)?;
    let len = wire::frame_len(p, wire::MAX_MESSAGE_LEN)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut f = vec![0u8; len];
    s.read_exact(&mut f)?;
    Message::decode(&f).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Registers a fake complete seeder of `ih` at `port` with the JSON tracker
/// and checks that the tracker said OK.
pub fn register_seeder(
    tracker: &Tracker,
    ih: InfoHash,
    peer_id: &str,
    name: &str,
    size: usize,
    port: u16,
) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let reg = serde_json::json!({"type": "REGISTER", "tid": 1, "peer_id": peer_id,
        "port": port, "files": [{"info_hash": ih.to_hex(), "name": name, "size": size,
        "complete": true}]});
    udp.send_to(reg.to_string().as_bytes(), tracker.addr)
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("OK"));
}

/// A peer that claims every piece and answers each request with garbage;
/// `accepted` counts the connections it took.
pub fn corrupt_peer(
    listener: TcpListener,
    ih: InfoHash,
    pieces: usize,
    accepted: Arc<AtomicUsize>,
) {
    for s in listener.incoming() {
        let Ok(mut s) = s else { return };
        accepted.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            let mut buf = [0u8; wire::HANDSHAKE_LEN];
            if s.read_exact(&mut buf).is_err() {
                return;
            }
            let _ = s.write_all(&Handshake::new(ih, *b"-XX0000-bad000000000").encode());
            let _ = s.write_all(&frame(&Message::Bitfield(
                Bitfield::full(pieces).as_bytes().to_vec(),
            )));
            while let Ok(m) = read_msg(&mut s) {
                let reply = match m {
                    Message::Interested => Message::Unchoke,
                    Message::Request {
                        index,
                        begin,
                        length,
                    } => Message::Piece {
                        index,
                        begin,
                        data: random_bytes(length as usize),
                    },
                    _ => continue,
                };
                if s.write_all(&frame(&reply)).is_err() {
                    return;
                }
            }
        });
    }
}

/// Starts a `corrupt_peer` for `torrent` and registers it with the tracker
/// as a seeder of `name` (`size` bytes); returns its port and its count of
/// accepted connections.
pub fn start_corrupt_seeder(
    tracker: &Tracker,
    torrent: &Path,
    name: &str,
    size: usize,
) -> (u16, Arc<AtomicUsize>) {
    let m = metainfo_of(torrent);
    let ih = m.info_hash;
    let pieces = m.info.pieces.len();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    std::thread::spawn(move || corrupt_peer(listener, ih, pieces, acc));
    register_seeder(tracker, ih, "-XX0000-bad000000000", name, size, port);
    (port, accepted)
}

/// A tracker and a seeder of a fresh random file, for tests that need a
/// swarm to talk to.
pub struct Swarm {
    pub tracker: Tracker,
    pub tmp: TempDir,
    /// The seeder's directory.
    pub dir: PathBuf,
    pub data: PathBuf,
    pub torrent: PathBuf,
    pub magnet: String,
    pub ih: InfoHash,
    pub seeder: Proc,
}

/// A swarm seeding `f.bin` of `size` random bytes.
pub fn swarm(tag: &str, size: usize, piece: u32) -> Swarm {
    swarm_with(tag, "f.bin", size, piece, &[])
}

/// A swarm seeding `name` of `size` random bytes, the seeder started with
/// `seed_args`.
pub fn swarm_with(tag: &str, name: &str, size: usize, piece: u32, seed_args: &[&str]) -> Swarm {
    swarm_after(tag, name, size, piece, seed_args, |_, _| ()).0
}

/// `swarm_with`, calling `before_seeder` with the tracker and the torrent
/// once the torrent exists and before the seeder starts.
pub fn swarm_after<R>(
    tag: &str,
    name: &str,
    size: usize,
    piece: u32,
    seed_args: &[&str],
    before_seeder: impl FnOnce(&Tracker, &Path) -> R,
) -> (Swarm, R) {
    let tracker = Tracker::start();
    let tmp = TempDir::new(tag);
    let dir = tmp.sub("s");
    let data = dir.join(name);
    write_random(&data, size);
    let stem = name.strip_suffix(".bin").unwrap_or(name);
    let torrent = tmp.join(&format!("{stem}.torrent"));
    let magnet = create_torrent(&data, &torrent, &tracker, piece);
    let ih = metainfo_of(&torrent).info_hash;
    let r = before_seeder(&tracker, &torrent);
    let seeder = seed_torrent("seeder", &tracker, &torrent, &dir, seed_args);
    let sw = Swarm {
        tracker,
        tmp,
        dir,
        data,
        torrent,
        magnet,
        ih,
        seeder,
    };
    (sw, r)
}

impl Swarm {
    /// Downloads from `source` into a fresh directory and checks the file.
    pub fn leech_ok(&self, name: &'static str, source: &str) {
        let dir = self.tmp.sub(name);
        get_ok(name, &self.tracker, source, &dir, &[]);
        let file = self.data.file_name().unwrap().to_str().unwrap();
        assert_same_file(&self.data, &dir.join(file));
    }
}

/// Whether the other side closed `s` (EOF or reset) within `within`.
pub fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A field of /proc/PID/status, e.g. `VmRSS` (kB) or `Threads`.
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

// `share DIR` and bare-hands leechers (tests/share.rs).

/// `minitorrent share DIR` rescanning every `rescan_ms` and taking a file
/// as stable once it was left alone `settle_ms` (hidden test settings).
pub fn start_share(
    name: &'static str,
    tracker: &Tracker,
    dir: &Path,
    rescan_ms: u64,
    settle_ms: u64,
    extra: &[&str],
) -> Proc {
    let t = tracker.arg();
    let mut args = vec!["share", dir.to_str().unwrap(), "--tracker", &t];
    args.extend_from_slice(extra);
    let (r, s) = (rescan_ms.to_string(), settle_ms.to_string());
    Proc::spawn(
        name,
        &minitorrent_bin(),
        &args,
        &[
            ("MINITORRENT_SHARE_RESCAN_MS", &r),
            ("MINITORRENT_SHARE_SETTLE_MS", &s),
        ],
        false,
    )
}

/// The info hash at the end of a line (`seeding NAME (…) info hash X`,
/// `changed: NAME, re-announced as X`).
pub fn hash_in(line: &str) -> InfoHash {
    line.split_whitespace()
        .find_map(|w| InfoHash::from_hex(w).ok())
        .unwrap_or_else(|| panic!("no info hash in {line:?}"))
}

/// Waits for `p` to say it seeds `name`; returns the info hash it gave.
pub fn seeding_hash(p: &Proc, name: &str) -> InfoHash {
    let pat = format!("seeding {name} (");
    hash_in(&p.out.wait_for(&pat, TIMEOUT))
}

/// Overwrites the start of `path` with `data`, in place (no truncation, no
/// new file): what an editor saving in place or a program updating a file
/// does.
pub fn rewrite_in_place(path: &Path, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(data, 0).unwrap();
}

/// A leecher written by hand: handshakes for `ih` with the peer at
/// `127.0.0.1:port`, says INTERESTED and waits for UNCHOKE.
pub fn wire_leecher(port: u16, ih: InfoHash) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut id = *b"-XX0000-wire00000000";
    id[12..16].copy_from_slice(format!("{:04}", fastrand::u16(..10000)).as_bytes());
    s.write_all(&Handshake::new(ih, id).encode()).unwrap();
    let mut buf = [0u8; wire::HANDSHAKE_LEN];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(Handshake::decode(&buf).unwrap().info_hash, ih);
    s.write_all(&frame(&Message::Interested)).unwrap();
    loop {
        match read_msg(&mut s) {
            Ok(Message::Unchoke) => return s,
            Ok(_) => continue,
            Err(e) => panic!("no UNCHOKE from the seeder: {e}"),
        }
    }
}

/// What became of a REQUEST sent by [`fetch_block`].
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    Data(Vec<u8>),
    /// The peer closed the connection.
    Closed,
    /// CHOKE: the peer dropped our requests.
    Choked,
}

/// Requests one block and waits for its PIECE (other messages are passed
/// over).
pub fn fetch_block(s: &mut TcpStream, index: u32, begin: u32, length: u32) -> Fetched {
    let req = Message::Request {
        index,
        begin,
        length,
    };
    if s.write_all(&frame(&req)).is_err() {
        return Fetched::Closed;
    }
    loop {
        match read_msg(s) {
            Ok(Message::Piece {
                index: i,
                begin: b,
                data,
            }) if i == index && b == begin => return Fetched::Data(data),
            Ok(Message::Choke) => return Fetched::Choked,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("no answer to {req:?} within the read timeout")
            }
            Err(_) => return Fetched::Closed,
        }
    }
}

/// A tracker running in this test process (the `minitorrent-tracker` library),
/// for tests that read its live view or set what its command line cannot.
pub struct InProcessTracker {
    pub addr: String,
    pub view: minitorrent_tracker::stats::StatsView,
    stop: minitorrent_tracker::server::StopHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessTracker {
    /// On 127.0.0.1, a free port, no discovery, and a heartbeat every second
    /// (a 3 s timeout), with `web_url` named in every `OK` when given.
    pub fn start(web_url: Option<&str>) -> InProcessTracker {
        let config = minitorrent_tracker::config::Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            discover: false,
            peer_timeout: Duration::from_secs(3),
            web_url: web_url.map(str::to_string),
            ..minitorrent_tracker::config::Config::default()
        };
        let tracker =
            minitorrent_tracker::server::Tracker::bind(&config).expect("bind the tracker");
        let addr = tracker.local_addr().to_string();
        let (view, stop) = (tracker.stats_view(), tracker.stop_handle());
        let thread = std::thread::spawn(move || {
            tracker.run(&config).expect("tracker runs");
        });
        InProcessTracker {
            addr,
            view,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for InProcessTracker {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
