//! MSE/PE (`--encryption`): encrypted connections between our peers, plain
//! peers refused by `require`, `prefer` falling back to plain; and with
//! real clients that *require* encryption: libtorrent (Python bindings,
//! Debian package `python3-libtorrent`) and aria2 (`aria2c`, package
//! `aria2`), each seeding to us and downloading from us. Every download is
//! compared byte for byte.
//!
//! Without aria2c or libtorrent's Python bindings these tests fail with what
//! to install (scripts/test.sh installs both), unless
//! `MINITORRENT_SKIP_INTEROP=1`.

#[path = "../../tracker/tests/common/aria2.rs"]
mod aria2;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use aria2::aria2c;
use common::*;

const PIECE: u32 = 64 * 1024;

/// Our peer found nothing wrong in what the other side sent.
fn no_violations(p: &Proc) {
    let err = p.err.text();
    assert!(
        !err.contains("protocol violation") && !err.contains("panicked"),
        "{}",
        p.dump()
    );
}

#[test]
fn two_require_peers_trade_encrypted_and_the_trace_shows_it_decrypted() {
    let sw = swarm_with(
        "enc-both",
        "e.bin",
        3 * 1024 * 1024 + 17,
        PIECE,
        &["--encryption", "require"],
    );
    let dir = sw.tmp.sub("l");
    let g = get_ok(
        "leecher",
        &sw.tracker,
        sw.torrent.to_str().unwrap(),
        &dir,
        &["--encryption", "require", "--trace"],
    );
    assert_same_file(&sw.data, &dir.join("e.bin"));
    let trace = g.err.text();
    assert!(
        trace.contains("MSE handshake with 127.0.0.1:") && trace.contains("done: encrypted (RC4)"),
        "no MSE line in the trace\n{trace}"
    );
    // The messages traced are the decrypted ones.
    for m in ["HANDSHAKE", "EXT-HANDSHAKE", "REQUEST", "PIECE"] {
        assert!(trace.contains(m), "no {m} in the trace\n{trace}");
    }
    no_violations(&g);
    no_violations(&sw.seeder);
}

#[test]
fn a_require_seeder_refuses_a_plain_leecher_and_says_why() {
    let sw = swarm_with(
        "enc-refuse",
        "r.bin",
        512 * 1024,
        PIECE,
        &["--encryption", "require"],
    );
    let dir = sw.tmp.sub("l");
    let mut g = start_get(
        "plain leecher",
        &sw.tracker,
        sw.torrent.to_str().unwrap(),
        &dir,
        &["--encryption", "off"],
    );
    let why = sw.seeder.err.wait_match(
        |l| {
            l.contains("plain (unencrypted) BitTorrent handshake, refused")
                && l.contains("--encryption require")
        },
        TIMEOUT,
    );
    assert!(
        why.is_some(),
        "the seeder never said why\n{}\n{}",
        sw.seeder.dump(),
        g.dump()
    );
    assert!(
        g.child.try_wait().unwrap().is_none(),
        "the plain leecher finished from a require seeder\n{}",
        g.dump()
    );
    g.kill();
    let got = std::fs::read(dir.join("r.bin")).unwrap_or_default();
    assert!(
        got != std::fs::read(&sw.data).unwrap(),
        "the plain leecher got the file"
    );
}

#[test]
fn a_require_leecher_says_why_an_off_seeder_is_no_use() {
    let sw = swarm_with(
        "enc-off",
        "o.bin",
        512 * 1024,
        PIECE,
        &["--encryption", "off"],
    );
    let dir = sw.tmp.sub("l");
    let mut g = start_get(
        "require leecher",
        &sw.tracker,
        sw.torrent.to_str().unwrap(),
        &dir,
        &["--encryption", "require"],
    );
    let why = g.err.wait_match(
        |l| l.contains("no encrypted connection") && l.contains("--encryption require"),
        TIMEOUT,
    );
    assert!(why.is_some(), "the leecher never said why\n{}", g.dump());
    assert!(g.child.try_wait().unwrap().is_none(), "{}", g.dump());
    g.kill();
}

#[test]
fn a_prefer_leecher_falls_back_to_plain_and_an_accepting_seeder_takes_both() {
    // `off` refuses MSE: `prefer` retries plain.
    let sw = swarm_with(
        "enc-prefer",
        "p.bin",
        1024 * 1024 + 5,
        PIECE,
        &["--encryption", "off"],
    );
    let dir = sw.tmp.sub("l");
    let g = get_ok(
        "prefer leecher",
        &sw.tracker,
        sw.torrent.to_str().unwrap(),
        &dir,
        &["--encryption", "prefer", "--trace"],
    );
    assert_same_file(&sw.data, &dir.join("p.bin"));
    assert!(!g.err.contains("done: encrypted (RC4)"), "{}", g.dump());
    // And it does dial encrypted first: a `require` seeder serves it.
    let sw = swarm_with(
        "enc-prefer2",
        "q.bin",
        1024 * 1024 + 3,
        PIECE,
        &["--encryption", "require"],
    );
    let dir = sw.tmp.sub("l");
    let g = get_ok(
        "prefer leecher",
        &sw.tracker,
        sw.torrent.to_str().unwrap(),
        &dir,
        &["--encryption", "prefer", "--trace"],
    );
    assert_same_file(&sw.data, &dir.join("q.bin"));
    assert!(g.err.contains("done: encrypted (RC4)"), "{}", g.dump());
    // The default seeder accepts an encrypted leecher, and the environment
    // sets the mode like the flag.
    let sw = swarm("enc-accept", 1024 * 1024 + 9, PIECE);
    let dir = sw.tmp.sub("l");
    let mut p = Proc::spawn(
        "env leecher",
        &minitorrent_bin(),
        &[
            "get",
            sw.torrent.to_str().unwrap(),
            "--no-seed",
            "--dir",
            dir.to_str().unwrap(),
            "--tracker",
            &sw.tracker.arg(),
            "--trace",
        ],
        &[("MINITORRENT_ENCRYPTION", "require")],
        false,
    );
    let st = p.wait(TIMEOUT);
    assert!(st.success(), "{}", p.dump());
    assert_same_file(&sw.data, &dir.join("f.bin"));
    assert!(p.err.contains("done: encrypted (RC4)"), "{}", p.dump());
    no_violations(&sw.seeder);
}

// ---- aria2 ----------------------------------------------------------------

/// aria2c requiring RC4 on `torrent`, files in `dir`. A seeder seeds for
/// at most two minutes; a leecher exits when its download is complete.
fn aria2(bin: &Path, name: &'static str, torrent: &Path, dir: &Path, seed: bool) -> Proc {
    let dht = dir.join(".aria2-dht.dat");
    let args: Vec<String> = vec![
        "--bt-require-crypto=true".into(),
        "--bt-min-crypto-level=arc4".into(),
        // aria2 sends UDP tracker requests through its DHT socket.
        "--enable-dht=true".into(),
        format!("--dht-listen-port={}", free_udp_port()),
        format!("--dht-file-path={}", dht.display()),
        "--enable-peer-exchange=false".into(),
        "--bt-enable-lpd=false".into(),
        "--disable-ipv6=true".into(),
        format!("--listen-port={}", free_tcp_port()),
        "--seed-ratio=0.0".into(),
        format!("--seed-time={}", if seed { 2 } else { 0 }),
        format!("--bt-seed-unverified={seed}"),
        "--check-integrity=true".into(),
        "--file-allocation=none".into(),
        "--allow-overwrite=true".into(),
        "--auto-file-renaming=false".into(),
        "--summary-interval=0".into(),
        "--console-log-level=warn".into(),
        "--bt-tracker-interval=2".into(),
        format!("--dir={}", dir.display()),
        torrent.to_str().unwrap().into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn(name, bin, &args, &[], false)
}

/// A data file in `dir` and its .torrent announcing the tracker's `udp://`.
fn make_torrent(tmp: &TempDir, dir: &Path, name: &str, size: usize, tracker: &Tracker) -> PathBuf {
    let data = dir.join(name);
    write_random(&data, size);
    let torrent = tmp.join(&format!("{name}.torrent"));
    run_create(&data, &torrent, &format!("udp://{}", tracker.addr), PIECE);
    torrent
}

fn wait_done(p: &mut Proc, others: &[&Proc]) {
    let st = p.wait(TIMEOUT * 2);
    let mut dumps = p.dump();
    for o in others {
        dumps.push('\n');
        dumps.push_str(&o.dump());
    }
    assert!(st.success(), "{} failed: {st}\n{dumps}", p.name);
}

#[test]
fn aria2_requiring_encryption_downloads_from_our_require_seeder() {
    let Some(bin) = aria2c() else { return };
    let tracker = Tracker::start();
    let tmp = TempDir::new("enc-aria2-leech");
    let sdir = tmp.sub("mt");
    let torrent = make_torrent(&tmp, &sdir, "to-aria2.bin", 2 * 1024 * 1024 + 7, &tracker);
    let seeder = seed_torrent(
        "minitorrent seeder",
        &tracker,
        &torrent,
        &sdir,
        &["--encryption", "require"],
    );
    let adir = tmp.sub("aria2");
    let mut leecher = aria2(&bin, "aria2c leecher", &torrent, &adir, false);
    wait_done(&mut leecher, &[&seeder]);
    assert_same_file(&sdir.join("to-aria2.bin"), &adir.join("to-aria2.bin"));
    no_violations(&seeder);
}

#[test]
fn our_require_leecher_downloads_from_aria2_requiring_encryption() {
    let Some(bin) = aria2c() else { return };
    let tracker = Tracker::start();
    let tmp = TempDir::new("enc-aria2-seed");
    let sdir = tmp.sub("aria2");
    let torrent = make_torrent(
        &tmp,
        &sdir,
        "from-aria2.bin",
        2 * 1024 * 1024 + 99,
        &tracker,
    );
    let seeder = aria2(&bin, "aria2c seeder", &torrent, &sdir, true);
    let ldir = tmp.sub("mt");
    let mut mt = start_get(
        "minitorrent leecher",
        &tracker,
        torrent.to_str().unwrap(),
        &ldir,
        &["--encryption", "require", "--trace"],
    );
    wait_done(&mut mt, &[&seeder]);
    assert!(mt.err.contains("done: encrypted (RC4)"), "{}", mt.dump());
    assert_same_file(&sdir.join("from-aria2.bin"), &ldir.join("from-aria2.bin"));
    no_violations(&mt);
}

// ---- libtorrent -----------------------------------------------------------

/// A Python that imports libtorrent: `MINITORRENT_LT_PYTHON`, else the
/// system's `/usr/bin/python3` (Debian's python3-libtorrent), else
/// `python3` on the PATH. Without one the test fails with what to install,
/// unless `MINITORRENT_SKIP_INTEROP=1` (then `None`).
fn lt_python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("MINITORRENT_LT_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push("/usr/bin/python3".into());
    candidates.push("python3".into());
    for c in candidates {
        let ok = Command::new(&c)
            .args(["-c", "import libtorrent"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(c);
        }
    }
    if std::env::var("MINITORRENT_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!(
            "libtorrent's Python bindings are missing: test skipped (MINITORRENT_SKIP_INTEROP=1)"
        );
        return None;
    }
    panic!(
        "no python3 imports libtorrent: run scripts/test.sh, which installs it \
         (apt-get install python3-libtorrent), or set MINITORRENT_SKIP_INTEROP=1 to skip"
    );
}

/// A libtorrent session that requires RC4 (pe_forced both ways,
/// allowed_enc_level pe_rc4), no DHT/LSD/UPnP/NAT-PMP, on `torrent` with
/// no uTP, on `torrent` with files in `dir`; it connects to `peer`
/// directly when given (again every 3 s while it has no peer). It prints
/// `listening PORT`, then `done` once it has every piece (a leecher exits
/// then; a seeder keeps seeding until killed, at most two minutes).
const LT_SCRIPT: &str = r#"
import sys, time
import libtorrent as lt
torrent, save, mode, peer = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s = lt.session({
    'listen_interfaces': '127.0.0.1:0',
    'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False,
    'enable_outgoing_utp': False, 'enable_incoming_utp': False,
    'out_enc_policy': int(lt.enc_policy.forced),
    'in_enc_policy': int(lt.enc_policy.forced),
    'allowed_enc_level': int(lt.enc_level.rc4),
    'prefer_rc4': True,
    'allow_multiple_connections_per_ip': True,
    'alert_mask': lt.alert.category_t.error_notification | lt.alert.category_t.peer_notification,
})
params = lt.add_torrent_params()
params.ti = lt.torrent_info(torrent)
params.save_path = save
h = s.add_torrent(params)
print('listening', s.listen_port(), flush=True)
if peer != '-':
    host, port = peer.rsplit(':', 1)
    h.connect_peer((host, int(port)))
deadline = time.time() + 120
said = False
redial = time.time() + 3
while time.time() < deadline:
    for a in s.pop_alerts():
        print('alert', a.message(), flush=True)
    st = h.status()
    if st.is_seeding and not said:
        print('done', flush=True)
        said = True
        if mode == 'leech':
            sys.exit(0)
    if peer != '-' and st.num_peers == 0 and time.time() > redial:
        h.connect_peer((host, int(port)))
        redial = time.time() + 3
    time.sleep(0.2)
sys.exit(1)
"#;

fn libtorrent(
    py: &Path,
    name: &'static str,
    torrent: &Path,
    dir: &Path,
    seed: bool,
    peer: Option<u16>,
) -> Proc {
    let peer = peer.map_or("-".to_string(), |p| format!("127.0.0.1:{p}"));
    let mode = if seed { "seed" } else { "leech" };
    Proc::spawn(
        name,
        py,
        &[
            "-c",
            LT_SCRIPT,
            torrent.to_str().unwrap(),
            dir.to_str().unwrap(),
            mode,
            &peer,
        ],
        &[],
        false,
    )
}

fn lt_port(p: &Proc) -> u16 {
    let l = p.out.wait_match(|l| l.starts_with("listening "), TIMEOUT);
    let l = l.unwrap_or_else(|| panic!("libtorrent did not start\n{}", p.dump()));
    l.trim_start_matches("listening ").trim().parse().unwrap()
}

#[test]
fn libtorrent_requiring_encryption_downloads_from_our_require_seeder() {
    let Some(py) = lt_python() else { return };
    let tracker = Tracker::start();
    let tmp = TempDir::new("enc-lt-leech");
    let sdir = tmp.sub("mt");
    let torrent = make_torrent(&tmp, &sdir, "to-lt.bin", 2 * 1024 * 1024 + 3, &tracker);
    let seeder = seed_torrent(
        "minitorrent seeder",
        &tracker,
        &torrent,
        &sdir,
        &["--encryption", "require"],
    );
    let ldir = tmp.sub("lt");
    let mut lt = libtorrent(
        &py,
        "libtorrent leecher",
        &torrent,
        &ldir,
        false,
        Some(seeder.port()),
    );
    wait_done(&mut lt, &[&seeder]);
    assert_same_file(&sdir.join("to-lt.bin"), &ldir.join("to-lt.bin"));
    no_violations(&seeder);
}

#[test]
fn our_require_leecher_downloads_from_libtorrent_requiring_encryption() {
    let Some(py) = lt_python() else { return };
    let tracker = Tracker::start();
    let tmp = TempDir::new("enc-lt-seed");
    let sdir = tmp.sub("lt");
    let torrent = make_torrent(&tmp, &sdir, "from-lt.bin", 2 * 1024 * 1024 + 11, &tracker);
    // libtorrent seeds; our leecher listens and libtorrent dials it too,
    // so both directions of the encrypted handshake meet libtorrent.
    let ldir = tmp.sub("mt");
    let mut mt = start_get(
        "minitorrent leecher",
        &tracker,
        torrent.to_str().unwrap(),
        &ldir,
        &["--encryption", "require", "--trace"],
    );
    let port = mt.port();
    let seeder = libtorrent(&py, "libtorrent seeder", &torrent, &sdir, true, Some(port));
    let _ = lt_port(&seeder);
    wait_done(&mut mt, &[&seeder]);
    assert!(mt.err.contains("done: encrypted (RC4)"), "{}", mt.dump());
    assert_same_file(&sdir.join("from-lt.bin"), &ldir.join("from-lt.bin"));
    no_violations(&mt);
}
