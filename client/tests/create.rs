//! Making a .torrent from files on disk: `create` gives what mktorrent gives
//! for the same files, round-trips, hashes pieces across file and buffer
//! boundaries, chooses a piece length, and refuses what cannot be shared
//! (bad piece lengths, nothing to share, missing paths, links inside a
//! directory, names no downloader would accept).

mod common;
// The mktorrent fixtures live with the metainfo tests in common.
#[path = "../../common/tests/fixtures/mod.rs"]
mod fixtures;

use std::fs;
use std::path::PathBuf;

use common::TempDir;
use fixtures::{opts, pattern, MULTI_INFO_HASH, MULTI_TORRENT, SINGLE_INFO_HASH, SINGLE_TORRENT};
use minitorrent::net::create::create;
use minitorrent_common::bencode::{self, Value};
use minitorrent_common::metainfo::{CreateOptions, Metainfo, MetainfoError};

/// Writes a file below the temp dir, making its directories.
trait Put {
    fn put(&self, rel: &str, data: &[u8]) -> PathBuf;
}

impl Put for TempDir {
    fn put(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        p
    }
}

fn write_fixture_data(t: &TempDir) {
    t.put("pattern.bin", &pattern(102523, 1));
    t.put("multi/a.txt", &pattern(5000, 2));
    t.put("multi/a/b.bin", &pattern(40000, 3));
    t.put("multi/a/empty", &[]);
    t.put("multi/z/deep/c.bin", &pattern(70000, 4));
}

/// The project's SHA-1; common/tests/hash.rs checks it against an
/// independent implementation.
fn sha1(b: &[u8]) -> [u8; 20] {
    minitorrent_common::hash::sha1(b)
}

#[test]
fn create_matches_mktorrent_single_file() {
    let t = TempDir::new("mk1");
    write_fixture_data(&t);
    let ours = create(&t.path().join("pattern.bin"), &opts(Some(32768))).unwrap();
    let theirs = Metainfo::from_bytes(SINGLE_TORRENT).unwrap();
    assert_eq!(ours.info.pieces, theirs.info.pieces);
    assert_eq!(ours.info_bytes, theirs.info_bytes);
    assert_eq!(ours.info_hash.to_hex(), SINGLE_INFO_HASH);
}

#[test]
fn create_matches_mktorrent_multi_file() {
    let t = TempDir::new("mk2");
    write_fixture_data(&t);
    let ours = create(&t.path().join("multi"), &opts(Some(32768))).unwrap();
    let theirs = Metainfo::from_bytes(MULTI_TORRENT).unwrap();
    assert_eq!(ours.info.files, theirs.info.files);
    assert_eq!(ours.info.pieces, theirs.info.pieces);
    assert_eq!(ours.info_bytes, theirs.info_bytes);
    assert_eq!(ours.info_hash.to_hex(), MULTI_INFO_HASH);
}

#[test]
fn create_round_trips_through_bytes() {
    let t = TempDir::new("rt");
    t.put("d/x.bin", &pattern(50_000, 9));
    t.put("d/sub/y.bin", &pattern(20_000, 8));
    let o = CreateOptions {
        announce: Some("udp://10.0.0.1:6969".into()),
        piece_length: None,
        comment: Some("lab 3".into()),
        created_by: Some("minitorrent 0.1".into()),
        creation_date: Some(1_700_000_000),
        private: true,
    };
    let mut m = create(&t.path().join("d"), &o).unwrap();
    m.announce_list = vec![vec!["udp://a:1".into(), "udp://b:2".into()], vec![]];
    let back = Metainfo::from_bytes(&m.to_bytes()).unwrap();
    assert_eq!(back, m);
    assert!(back.info.private);
    assert_eq!(back.comment.as_deref(), Some("lab 3"));
    let info = bencode::decode(&m.info_bytes).unwrap();
    assert_eq!(info.get("private").and_then(Value::as_int), Some(1));
    // Files are in sorted path order and every offset is the sum before it.
    let paths: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
    assert_eq!(paths, vec!["sub/y.bin", "x.bin"]);
    assert_eq!(m.info.files[1].offset, 20_000);
}

#[test]
fn created_info_dict_has_only_standard_keys() {
    let t = TempDir::new("keys");
    let f = t.put("f.bin", &pattern(1000, 1));
    let m = create(&f, &opts(None)).unwrap();
    let info = bencode::decode(&m.info_bytes).unwrap();
    let keys: Vec<&[u8]> = info.as_dict().unwrap().keys().map(Vec::as_slice).collect();
    assert_eq!(
        keys,
        vec![&b"length"[..], b"name", b"piece length", b"pieces"]
    );
}

#[test]
fn create_hashes_across_file_and_buffer_boundaries() {
    // Pieces that span files, and pieces both smaller and larger than the
    // internal read buffer, must hash like the plain concatenation.
    let t = TempDir::new("span");
    let a = pattern(100_000, 1);
    let b = pattern(1, 2);
    let c = pattern(300_000, 3);
    t.put("d/a", &a);
    t.put("d/b", &b);
    t.put("d/c", &c);
    let all = [a, b, c].concat();
    for pl in [16 * 1024, 128 * 1024] {
        let m = create(&t.path().join("d"), &opts(Some(pl))).unwrap();
        let expected: Vec<[u8; 20]> = all.chunks(pl as usize).map(sha1).collect();
        assert_eq!(m.info.pieces, expected, "piece length {pl}");
    }
}

#[test]
fn create_chooses_piece_length_when_not_given() {
    let t = TempDir::new("choose");
    let f = t.put("f.bin", &pattern(40_000, 1));
    let m = create(&f, &opts(None)).unwrap();
    assert_eq!(m.info.piece_length, 16 * 1024);
    assert_eq!(m.info.num_pieces(), 3);
    assert_eq!(m.announce.as_deref(), Some("udp://127.0.0.1:6969"));
}

#[test]
fn create_rejects_bad_piece_length() {
    let t = TempDir::new("badpl");
    let f = t.put("f.bin", &pattern(1000, 1));
    for pl in [0, 1, 1000, 8 * 1024, 48 * 1024, 32 * 1024 * 1024] {
        let err = create(&f, &opts(Some(pl))).unwrap_err();
        assert_eq!(err, MetainfoError::BadCreatePieceLength(pl));
        assert!(err.to_string().contains("power of two"), "{err}");
    }
    assert!(create(&f, &opts(Some(16 * 1024 * 1024))).is_ok());
}

#[test]
fn create_rejects_empty_file_and_empty_dir() {
    let t = TempDir::new("empty");
    let f = t.put("zero.bin", &[]);
    assert!(matches!(
        create(&f, &opts(None)),
        Err(MetainfoError::NothingToShare(_))
    ));
    fs::create_dir_all(t.path().join("d/sub")).unwrap();
    assert!(matches!(
        create(&t.path().join("d"), &opts(None)),
        Err(MetainfoError::NothingToShare(_))
    ));
    t.put("d/sub/zero", &[]);
    let err = create(&t.path().join("d"), &opts(None)).unwrap_err();
    assert!(err.to_string().contains("nothing to share"), "{err}");
}

#[test]
fn create_rejects_missing_path() {
    let t = TempDir::new("missing");
    let err = create(&t.path().join("nope"), &opts(None)).unwrap_err();
    assert!(matches!(err, MetainfoError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[cfg(unix)]
#[test]
fn create_rejects_symlink_inside_directory() {
    let t = TempDir::new("link");
    let target = t.put("d/real.bin", &pattern(1000, 1));
    std::os::unix::fs::symlink(&target, t.path().join("d/link.bin")).unwrap();
    let err = create(&t.path().join("d"), &opts(None)).unwrap_err();
    assert!(
        matches!(&err, MetainfoError::UnsupportedFileType { kind: "symbolic link", path } if path.ends_with("link.bin")),
        "{err}"
    );
    // A symlink named directly is followed: the user chose it.
    let top = t.path().join("top.bin");
    std::os::unix::fs::symlink(&target, &top).unwrap();
    let m = create(&top, &opts(None)).unwrap();
    assert_eq!(m.info.name, "top.bin");
}

#[cfg(unix)]
#[test]
fn create_rejects_name_with_backslash() {
    // Legal on Unix, but our parser (and Windows) would refuse the torrent.
    let t = TempDir::new("bslash");
    t.put("d/a\\b", &pattern(10, 1));
    let err = create(&t.path().join("d"), &opts(None)).unwrap_err();
    assert!(err.to_string().contains("path separator"), "{err}");
}

#[test]
fn create_names_dot_after_the_real_directory() {
    let t = TempDir::new("dot");
    t.put("share/x", &pattern(100, 1));
    let m = create(&t.path().join("share/."), &opts(None)).unwrap();
    assert_eq!(m.info.name, "share");
}

/// `create --tracker A --tracker B --tracker URL` writes a BEP 12
/// announce-list, one tier each (`--same-tier`: one tier), with the first
/// as the announce; `info` shows the tiers and the magnet link carries them
/// all.
#[test]
fn several_trackers_make_an_announce_list() {
    let t = TempDir::new("create-tiers");
    let file = t.put("lab.bin", &pattern(40000, 9));
    let out = t.join("lab.torrent");
    let http = "http://tracker.example:8080/announce";
    let run = |args: &[&str]| {
        let mut p = common::Proc::mt("create", args);
        assert!(p.wait(common::TIMEOUT).success(), "{}", p.dump());
        p
    };
    let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());
    let p = run(&[
        "create",
        f,
        "-o",
        o,
        "--no-discover",
        "--tracker",
        "127.0.0.1:7001",
        "--tracker",
        "udp://127.0.0.1:7002/announce?passkey=abc",
        "--tracker",
        http,
    ]);
    let m = Metainfo::from_bytes(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(m.announce.as_deref(), Some("udp://127.0.0.1:7001"));
    // URLs exactly as given: a UDP tracker's path and query too (BEP 41).
    assert_eq!(
        m.announce_list,
        vec![
            vec!["udp://127.0.0.1:7001".to_string()],
            vec!["udp://127.0.0.1:7002/announce?passkey=abc".to_string()],
            vec![http.to_string()],
        ]
    );
    let magnet = p.out.wait_for("magnet: ", common::TIMEOUT);
    assert_eq!(magnet.matches("&tr=").count(), 3, "{magnet}");
    let parsed =
        minitorrent_common::magnet::Magnet::parse(magnet.trim_start_matches("magnet: ")).unwrap();
    assert_eq!(
        parsed.trackers[1], "udp://127.0.0.1:7002/announce?passkey=abc",
        "the magnet link keeps the path and query: {magnet}"
    );
    let info = run(&["info", o]);
    info.out.wait_for(
        "tier 3: http://tracker.example:8080/announce",
        common::TIMEOUT,
    );

    run(&[
        "create",
        f,
        "-o",
        o,
        "--no-discover",
        "--same-tier",
        "--tracker",
        "127.0.0.1:7001",
        "--tracker",
        "127.0.0.1:7002",
    ]);
    let m2 = Metainfo::from_bytes(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        m2.info_hash, m.info_hash,
        "trackers are outside the info dictionary"
    );
    assert_eq!(m2.announce_list.len(), 1);
    assert_eq!(m2.announce_list[0].len(), 2);

    // One tracker: no announce-list, as before.
    run(&[
        "create",
        f,
        "-o",
        o,
        "--no-discover",
        "--tracker",
        "127.0.0.1:7001",
    ]);
    let m3 = Metainfo::from_bytes(&fs::read(&out).unwrap()).unwrap();
    assert!(m3.announce_list.is_empty());

    let mut bad = common::Proc::mt(
        "create-bad",
        &[
            "create",
            f,
            "-o",
            o,
            "--no-discover",
            "--tracker",
            "http://",
        ],
    );
    assert!(!bad.wait(common::TIMEOUT).success());
    assert!(
        bad.err.text().contains("no host after http://"),
        "{}",
        bad.dump()
    );
}
