//! Helpers for the integration tests: start the real tracker binary on
//! 127.0.0.1 port 0 and talk to it over plain UDP sockets with timeouts.
#![allow(dead_code)]

pub mod chromium;

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{ErrorCode, Reply, Request, Token};
use minitorrent_common::udp_tracker as udp;

pub const BIN: &str = env!("CARGO_BIN_EXE_minitorrent-tracker");
pub const WAIT: Duration = Duration::from_secs(10);

/// A running tracker process, killed when dropped.
pub struct TrackerProc {
    child: Child,
    pub addr: SocketAddr,
    /// The web page's URL (`http://IP:PORT/`), unless `--web off`.
    pub web: Option<String>,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl TrackerProc {
    /// Starts `minitorrent-tracker --bind BIND ARGS...` and waits for its
    /// "listening on" line. Without `--db` in ARGS it adds `--db none`, so
    /// tests neither leave a database behind nor share one.
    pub fn start_on(bind: &str, args: &[&str]) -> TrackerProc {
        let mut child = Command::new(BIN)
            .arg("--bind")
            .arg(bind)
            .args(args)
            .args(no_db(args))
            .args(no_web(args))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tracker");
        let (tx, stdout) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let line = match stdout.recv_timeout(WAIT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "tracker printed no listening line; stderr: {:?}",
                    stderr.lock().unwrap()
                );
            }
        };
        let addr = line
            .strip_prefix("minitorrent-tracker listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        // The second line names the web page, unless it is off.
        let web_off = args.windows(2).any(|w| w == ["--web", "off"]) || !no_web(args).is_empty();
        let web = (!web_off).then(|| {
            let line = stdout.recv_timeout(WAIT).expect("a web page line");
            line.strip_prefix("minitorrent-tracker web page on ")
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
                .to_string()
        });
        TrackerProc {
            child,
            addr,
            web,
            stdout,
            stderr,
        }
    }

    pub fn start(args: &[&str]) -> TrackerProc {
        TrackerProc::start_on("127.0.0.1:0", args)
    }

    /// The web page's address, from its `http://IP:PORT/` URL (the web
    /// page must be on).
    pub fn web_addr(&self) -> SocketAddr {
        let url = self.web.as_deref().expect("the web page is on");
        url.strip_prefix("http://")
            .and_then(|u| u.strip_suffix('/'))
            .and_then(|u| u.parse().ok())
            .unwrap_or_else(|| panic!("not an http://IP:PORT/ URL: {url}"))
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until some stderr line contains `needle`.
    pub fn wait_stderr(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = self.stderr().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line with {needle:?} in {:?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn next_stdout(&self) -> Option<String> {
        self.stdout.recv_timeout(WAIT).ok()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "tracker did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TrackerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--web off` unless `args` ask for a web page: the replies the protocol
/// tests compare then carry no `web`.
pub fn no_web(args: &[&str]) -> &'static [&'static str] {
    if args.contains(&"--web") {
        &[]
    } else {
        &["--web", "off"]
    }
}

/// `--db none` unless `args` name a database.
pub fn no_db(args: &[&str]) -> &'static [&'static str] {
    if args.contains(&"--db") {
        &[]
    } else {
        &["--db", "none"]
    }
}

/// Runs the binary with `args` to completion (bounded), returning status and
/// stderr (`--db none` added unless `args` name a database).
pub fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .args(no_db(args))
        .args(no_web(args))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tracker");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tracker {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    (status, text)
}

/// A UDP client of the JSON protocol.
pub struct Client {
    pub sock: UdpSocket,
    tracker: SocketAddr,
    token: Cell<Option<Token>>,
}

impl Client {
    pub fn new(tracker: SocketAddr) -> Client {
        Client::bound("127.0.0.1:0", tracker)
    }

    pub fn bound(local: &str, tracker: SocketAddr) -> Client {
        let sock = UdpSocket::bind(local).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Client {
            sock,
            tracker,
            token: Cell::new(None),
        }
    }

    /// Sends raw bytes and returns the decoded reply (retrying on loss).
    pub fn ask_raw(&self, bytes: &[u8]) -> Reply {
        let mut buf = vec![0u8; 70_000];
        for _ in 0..10 {
            self.sock.send_to(bytes, self.tracker).unwrap();
            if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                assert_eq!(from, self.tracker);
                return Reply::decode(&buf[..n]).expect("tracker reply decodes");
            }
        }
        panic!(
            "no reply to {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        );
    }

    /// Sends a request and returns the reply with the same tid, as a peer
    /// does: with the latest address token the tracker handed out, and
    /// once more with a new one when the tracker answers `token`.
    pub fn ask(&self, req: &Request) -> Reply {
        let sent_with = self.token.get();
        let (reply, token) = self.ask_with_token(req, sent_with);
        if token.is_some() {
            self.token.set(token);
        }
        match reply {
            Reply::Error {
                code: ErrorCode::Token,
                ..
            } if token.is_some() && token != sent_with => self.ask_with_token(req, token).0,
            r => r,
        }
    }

    /// Sends `req` with `token` (none: without) and returns the reply with
    /// the same tid and the token it carries; the client's token is left
    /// as it was.
    pub fn ask_with_token(&self, req: &Request, token: Option<Token>) -> (Reply, Option<Token>) {
        let bytes = req.encode_with_token(token);
        let mut buf = vec![0u8; 70_000];
        for _ in 0..10 {
            self.sock.send_to(&bytes, self.tracker).unwrap();
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                    let (reply, token) =
                        Reply::decode_with_token(&buf[..n]).expect("tracker reply decodes");
                    if reply.tid() == Some(req.tid()) {
                        return (reply, token);
                    }
                }
            }
        }
        panic!("no reply to {}", req.summary());
    }

    /// The latest token the tracker handed this client.
    pub fn token(&self) -> Option<Token> {
        self.token.get()
    }

    /// True when nothing arrives within `wait`.
    pub fn silent_for(&self, wait: Duration) -> bool {
        let mut buf = [0u8; 2048];
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let got = self.sock.recv_from(&mut buf).is_ok();
        self.sock
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        !got
    }
}

/// Polls `cond` until it holds or the deadline passes.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A BEP 15 client.
pub struct Bep15 {
    pub sock: UdpSocket,
    tracker: SocketAddr,
    pub connection_id: u64,
}

impl Bep15 {
    /// Binds `local` and connects (BEP 15 connect) to the tracker.
    pub fn connect(local: &str, tracker: SocketAddr) -> Bep15 {
        let sock = UdpSocket::bind(local).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut c = Bep15 {
            sock,
            tracker,
            connection_id: 0,
        };
        match c.ask(&udp::Request::Connect { transaction_id: 77 }) {
            udp::Response::Connect {
                transaction_id,
                connection_id,
            } => {
                assert_eq!(transaction_id, 77);
                c.connection_id = connection_id;
            }
            other => panic!("connect answered {other:?}"),
        }
        c
    }

    pub fn ipv6(&self) -> bool {
        self.tracker.is_ipv6()
    }

    /// Sends raw bytes; returns the reply if one comes within `wait`.
    pub fn send_raw(&self, bytes: &[u8], wait: Duration) -> Option<udp::Response> {
        let mut buf = vec![0u8; 70_000];
        self.sock.set_read_timeout(Some(wait)).unwrap();
        self.sock.send_to(bytes, self.tracker).unwrap();
        let got = self.sock.recv_from(&mut buf).ok();
        self.sock
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        got.map(|(n, _)| {
            udp::Response::decode(&buf[..n], self.ipv6()).expect("BEP 15 reply decodes")
        })
    }

    /// Sends a request and returns the reply with its transaction id (retrying on loss).
    pub fn ask(&self, req: &udp::Request) -> udp::Response {
        let bytes = req.encode();
        for _ in 0..10 {
            if let Some(r) = self.send_raw(&bytes, Duration::from_millis(500)) {
                if r.transaction_id() == req.transaction_id() {
                    return r;
                }
            }
        }
        panic!("no reply to {}", req.summary());
    }

    #[allow(clippy::too_many_arguments)]
    pub fn announce(
        &self,
        tid: u32,
        hash: InfoHash,
        peer_id: &[u8; 20],
        port: u16,
        left: u64,
        event: udp::Event,
        num_want: i32,
    ) -> udp::Response {
        self.ask(&udp::Request::Announce(udp::AnnounceRequest {
            connection_id: self.connection_id,
            transaction_id: tid,
            info_hash: hash,
            peer_id: *peer_id,
            downloaded: 0,
            left,
            uploaded: 0,
            event,
            ip: std::net::Ipv4Addr::UNSPECIFIED,
            key: 0,
            num_want,
            port,
        }))
    }
}

/// A temp directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "mt-tracker-it-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    /// A catalogue file in it.
    pub fn db(&self) -> String {
        self.0.join("tracker.db").to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
