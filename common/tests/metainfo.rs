//! Metainfo: the mktorrent fixtures, the layout of a new torrent, round trips,
//! and one test per rejection rule. Making a torrent from files on disk is
//! tested with the peer, in client/tests/create.rs.

use std::collections::BTreeMap;
use std::path::Path;

use minitorrent_common::bencode::{self, bytes, dict, Value};
use minitorrent_common::metainfo::{
    choose_piece_length, format_size, CreateOptions, Info, InfoHash, Layout, Metainfo,
    MetainfoError, NewFile, MAX_PARSE_PIECE_LENGTH,
};

mod fixtures;

use fixtures::{opts, pattern, MULTI_INFO_HASH, MULTI_TORRENT, SINGLE_INFO_HASH, SINGLE_TORRENT};

fn sha1(b: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(b).digest().bytes()
}

// ---------------------------------------------------------------- fixtures

#[test]
fn parses_mktorrent_single_file() {
    let m = Metainfo::from_bytes(SINGLE_TORRENT).unwrap();
    assert_eq!(m.info_hash.to_hex(), SINGLE_INFO_HASH);
    assert_eq!(m.announce.as_deref(), Some("udp://127.0.0.1:6969"));
    assert_eq!(m.created_by.as_deref(), Some("mktorrent 1.1"));
    assert!(m.creation_date.is_some());
    let i = &m.info;
    assert_eq!(i.name, "pattern.bin");
    assert!(!i.multi_file);
    assert!(!i.private);
    assert_eq!(i.piece_length, 32768);
    assert_eq!(i.num_pieces(), 4);
    assert_eq!(i.total_length(), 102523);
    assert_eq!(i.files.len(), 1);
    assert_eq!(i.files[0].path, vec!["pattern.bin".to_string()]);
    assert_eq!(i.piece_size(3), 102523 - 3 * 32768);
    // Independent check of the piece hashes against the regenerated data.
    let data = pattern(102523, 1);
    for (k, chunk) in data.chunks(32768).enumerate() {
        assert_eq!(i.pieces[k], sha1(chunk), "piece {k}");
    }
}

#[test]
fn parses_mktorrent_multi_file() {
    let m = Metainfo::from_bytes(MULTI_TORRENT).unwrap();
    assert_eq!(m.info_hash.to_hex(), MULTI_INFO_HASH);
    let i = &m.info;
    assert_eq!(i.name, "multi");
    assert!(i.multi_file);
    let got: Vec<(String, u64, u64)> = i
        .files
        .iter()
        .map(|f| (f.path.join("/"), f.length, f.offset))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a.txt".to_string(), 5000, 0),
            ("a/b.bin".to_string(), 40000, 5000),
            ("a/empty".to_string(), 0, 45000),
            ("z/deep/c.bin".to_string(), 70000, 45000),
        ]
    );
    assert_eq!(i.total_length(), 115000);
    assert_eq!(i.num_pieces(), 4);
}

#[test]
fn fixture_to_bytes_is_byte_identical() {
    for t in [SINGLE_TORRENT, MULTI_TORRENT] {
        let m = Metainfo::from_bytes(t).unwrap();
        assert_eq!(m.to_bytes(), t);
    }
}

#[test]
fn from_info_bytes_matches_full_parse() {
    let full = Metainfo::from_bytes(MULTI_TORRENT).unwrap();
    let m = Metainfo::from_info_bytes(full.info_bytes.clone(), Some("udp://h:1".into())).unwrap();
    assert_eq!(m.info, full.info);
    assert_eq!(m.info_hash, full.info_hash);
    assert_eq!(m.announce.as_deref(), Some("udp://h:1"));
    assert_eq!(Info::from_bytes(&full.info_bytes).unwrap(), full.info);
}

#[test]
fn corrupted_fixtures_never_panic() {
    for t in [SINGLE_TORRENT, MULTI_TORRENT] {
        for n in 0..t.len() {
            assert!(Metainfo::from_bytes(&t[..n]).is_err(), "truncated at {n}");
        }
        for pos in 0..t.len() {
            for b in [b'0', b'9', b'e', b'd', b'l', b'i', b':', b'-', 0xff] {
                let mut c = t.to_vec();
                c[pos] = b;
                let _ = Metainfo::from_bytes(&c);
            }
        }
    }
}

// ---------------------------------------------------------------- layout

/// The piece hashes of `data`, back to back, as `Layout::into_metainfo` takes them.
fn piece_hashes(data: &[u8], piece_length: u64) -> Vec<u8> {
    data.chunks(piece_length as usize).flat_map(sha1).collect()
}

fn new_file(path: &str, length: u64) -> NewFile {
    NewFile {
        path: path.split('/').map(str::to_string).collect(),
        length,
    }
}

#[test]
fn layout_matches_mktorrent_single_file() {
    let data = pattern(102523, 1);
    let layout = Layout::single("pattern.bin".into(), 102523, &opts(Some(32768))).unwrap();
    assert_eq!(layout.files(), &[new_file("pattern.bin", 102523)]);
    let ours = layout.into_metainfo(piece_hashes(&data, 32768)).unwrap();
    let theirs = Metainfo::from_bytes(SINGLE_TORRENT).unwrap();
    assert_eq!(ours.info_bytes, theirs.info_bytes);
    assert_eq!(ours.info_hash.to_hex(), SINGLE_INFO_HASH);
    assert_eq!(ours.announce.as_deref(), Some("udp://127.0.0.1:6969"));
}

#[test]
fn layout_matches_mktorrent_multi_file() {
    // Given in any order; laid out in byte order of the '/'-joined path, so
    // "a.txt" comes before "a/b.bin" ('.' < '/').
    let files = vec![
        new_file("z/deep/c.bin", 70000),
        new_file("a/empty", 0),
        new_file("a.txt", 5000),
        new_file("a/b.bin", 40000),
    ];
    let layout = Layout::directory("multi".into(), files, &opts(Some(32768))).unwrap();
    let order: Vec<String> = layout.files().iter().map(|f| f.path.join("/")).collect();
    assert_eq!(order, vec!["a.txt", "a/b.bin", "a/empty", "z/deep/c.bin"]);
    assert!(layout.is_multi_file());
    assert_eq!(layout.total_length(), 115000);
    let data = [pattern(5000, 2), pattern(40000, 3), pattern(70000, 4)].concat();
    let ours = layout.into_metainfo(piece_hashes(&data, 32768)).unwrap();
    let theirs = Metainfo::from_bytes(MULTI_TORRENT).unwrap();
    assert_eq!(ours.info.files, theirs.info.files);
    assert_eq!(ours.info_bytes, theirs.info_bytes);
    assert_eq!(ours.info_hash.to_hex(), MULTI_INFO_HASH);
}

#[test]
fn layout_chooses_piece_length_and_carries_the_options() {
    let o = CreateOptions {
        announce: None,
        piece_length: None,
        comment: Some("lab 3".into()),
        created_by: Some("minitorrent 0.1".into()),
        creation_date: Some(1_700_000_000),
        private: true,
    };
    let layout = Layout::single("f.bin".into(), 40_000, &o).unwrap();
    assert_eq!(layout.piece_length(), choose_piece_length(40_000));
    assert_eq!(layout.name(), "f.bin");
    let m = layout
        .into_metainfo(piece_hashes(&pattern(40_000, 1), 16 * 1024))
        .unwrap();
    assert!(m.info.private);
    assert_eq!(m.comment.as_deref(), Some("lab 3"));
    assert_eq!(m.created_by.as_deref(), Some("minitorrent 0.1"));
    assert_eq!(m.creation_date, Some(1_700_000_000));
    assert_eq!(Metainfo::from_bytes(&m.to_bytes()).unwrap(), m);
}

#[test]
fn layout_refuses_what_a_downloader_would() {
    for pl in [0, 8 * 1024, 48 * 1024, 32 * 1024 * 1024] {
        assert_eq!(
            CreateOptions {
                piece_length: Some(pl),
                ..CreateOptions::default()
            }
            .check(),
            Err(MetainfoError::BadCreatePieceLength(pl))
        );
        assert_eq!(
            Layout::single("f".into(), 1, &opts(Some(pl))).unwrap_err(),
            MetainfoError::BadCreatePieceLength(pl)
        );
    }
    let e = Layout::single("C:x".into(), 1, &opts(None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "info.name 'C:x' starts with a Windows drive prefix"
    );
    let e = Layout::directory("d".into(), vec![new_file("a/..", 1)], &opts(None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "file path component '..' escapes the download directory"
    );
    let huge = vec![new_file("a", 1 << 40), new_file("b", 1)];
    assert_eq!(
        Layout::directory("d".into(), huge, &opts(None)).unwrap_err(),
        MetainfoError::TooLarge((1 << 40) + 1)
    );
}

#[test]
fn layout_needs_bytes_and_the_right_hashes() {
    let empty = Layout::directory("d".into(), vec![new_file("a/zero", 0)], &opts(None)).unwrap();
    assert_eq!(empty.total_length(), 0);
    assert_eq!(
        empty.into_metainfo(Vec::new()).unwrap_err(),
        MetainfoError::EmptyTorrent
    );
    let layout = Layout::single("f".into(), 40_000, &opts(Some(16 * 1024))).unwrap();
    assert!(matches!(
        layout.into_metainfo(vec![0; 40]),
        Err(MetainfoError::PieceCountMismatch {
            actual: 2,
            expected: 3,
            ..
        })
    ));
}

#[test]
fn choose_piece_length_boundaries() {
    const K16: u64 = 16 * 1024;
    assert_eq!(choose_piece_length(0), K16);
    assert_eq!(choose_piece_length(1), K16);
    assert_eq!(choose_piece_length(2000 * K16), K16);
    assert_eq!(choose_piece_length(2000 * K16 + 1), 2 * K16);
    assert_eq!(choose_piece_length(4000 * K16), 2 * K16);
    assert_eq!(choose_piece_length(4000 * K16 + 1), 4 * K16);
    let m8 = 8 * 1024 * 1024;
    assert_eq!(choose_piece_length(2000 * m8), m8);
    assert_eq!(choose_piece_length(2000 * m8 + 1), 16 * 1024 * 1024);
    assert_eq!(choose_piece_length(1 << 40), 16 * 1024 * 1024);
    assert_eq!(choose_piece_length(u64::MAX), 16 * 1024 * 1024);
    // 1,001..=2,000 pieces between the clamps.
    for total in [50_000_000u64, 700_000_000, 4_000_000_000, 20_000_000_000] {
        let pl = choose_piece_length(total);
        assert!(pl.is_power_of_two());
        let n = total.div_ceil(pl);
        assert!((1001..=2000).contains(&n), "{total}: {n} pieces of {pl}");
    }
}

// ---------------------------------------------------------------- Info helpers

fn three_files() -> Info {
    // 16 KiB pieces over files of 10,000 + 30,000 + 5 bytes.
    let files = vec![
        (vec!["a"], 10_000),
        (vec!["b", "c"], 30_000),
        (vec!["d"], 5),
    ];
    Metainfo::from_bytes(&multi_torrent(&files)).unwrap().info
}

#[test]
fn multi_file_offsets_and_piece_sizes() {
    let i = three_files();
    let offsets: Vec<u64> = i.files.iter().map(|f| f.offset).collect();
    assert_eq!(offsets, vec![0, 10_000, 40_000]);
    assert_eq!(i.total_length(), 40_005);
    assert_eq!(i.num_pieces(), 3);
    assert_eq!(i.piece_size(0), 16384);
    assert_eq!(i.piece_size(1), 16384);
    assert_eq!(i.piece_size(2), 40_005 - 2 * 16384);
    assert_eq!(i.piece_size(3), 0);
    assert_eq!(i.piece_size(usize::MAX), 0);
}

#[test]
fn last_piece_full_when_size_divides() {
    let mut d = base_info();
    d.insert(b"length".to_vec(), Value::Int(3 * 16384));
    let i = parse(d).unwrap().info;
    assert_eq!(i.piece_size(2), 16384);
}

#[test]
fn file_paths_below_download_dir() {
    let i = three_files();
    let dir = Path::new("/dl");
    assert_eq!(i.file_path(dir, 0), Path::new("/dl/root/a"));
    assert_eq!(i.file_path(dir, 1), Path::new("/dl/root/b/c"));
    let single = parse(base_info()).unwrap().info;
    assert_eq!(single.file_path(dir, 0), Path::new("/dl/file.bin"));
}

#[test]
fn to_json_shows_everything() {
    let m = Metainfo::from_bytes(MULTI_TORRENT).unwrap();
    let j = m.to_json();
    assert_eq!(j["name"], "multi");
    assert_eq!(j["info_hash"], MULTI_INFO_HASH);
    assert_eq!(j["announce"], "udp://127.0.0.1:6969");
    assert_eq!(j["created_by"], "mktorrent 1.1");
    assert!(j["creation_date"].is_i64());
    assert!(j["comment"].is_null());
    assert_eq!(j["announce_list"], serde_json::json!([]));
    assert_eq!(j["piece_length"], 32768);
    assert_eq!(j["num_pieces"], 4);
    assert_eq!(j["total_length"], 115000);
    assert_eq!(j["files"][1]["path"], "a/b.bin");
    assert_eq!(j["files"][1]["length"], 40000);
    assert_eq!(j["files"][1]["offset"], 5000);
    let p0 = j["pieces"][0].as_str().unwrap();
    assert_eq!(p0.len(), 40);
    assert_eq!(InfoHash::from_hex(p0).unwrap().0, m.info.pieces[0]);
}

#[test]
fn info_hash_hex() {
    let h = InfoHash::from_hex(SINGLE_INFO_HASH).unwrap();
    assert_eq!(h.to_hex(), SINGLE_INFO_HASH);
    assert_eq!(
        InfoHash::from_hex(&SINGLE_INFO_HASH.to_uppercase()).unwrap(),
        h
    );
    assert_eq!(h.to_string(), SINGLE_INFO_HASH);
    for bad in ["", "abc", &SINGLE_INFO_HASH[1..], "g".repeat(40).as_str()] {
        assert!(matches!(
            InfoHash::from_hex(bad),
            Err(MetainfoError::BadInfoHash(_))
        ));
    }
    assert_eq!(
        InfoHash::of(b"").to_hex(),
        "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    );
}

#[test]
fn format_size_units() {
    assert_eq!(format_size(0), "0 B");
    assert_eq!(format_size(512), "512 B");
    assert_eq!(format_size(1023), "1023 B");
    assert_eq!(format_size(1024), "1.0 KiB");
    assert_eq!(format_size(1536), "1.5 KiB");
    assert_eq!(format_size(4 * 1024 * 1024), "4.0 MiB");
    assert_eq!(format_size(3 * 512 * 1024 * 1024), "1.5 GiB");
    assert_eq!(format_size(1024 * 1024 - 1), "1.0 MiB");
    assert_eq!(format_size(1 << 40), "1.0 TiB");
    assert_eq!(format_size(u64::MAX), "16.0 EiB");
}

// ---------------------------------------------------------------- rejections

const PL: i64 = 16384;

/// A valid single-file info dict: 40,000 bytes in three 16 KiB pieces.
fn base_info() -> BTreeMap<Vec<u8>, Value> {
    let mut d = BTreeMap::new();
    d.insert(b"name".to_vec(), bytes("file.bin"));
    d.insert(b"piece length".to_vec(), Value::Int(PL));
    d.insert(b"length".to_vec(), Value::Int(40_000));
    d.insert(b"pieces".to_vec(), bytes(vec![7u8; 60]));
    d
}

fn torrent_with(info: Value) -> Vec<u8> {
    dict([("announce", bytes("udp://127.0.0.1:6969")), ("info", info)]).encode()
}

fn parse(info: BTreeMap<Vec<u8>, Value>) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes(&torrent_with(Value::Dict(info)))
}

fn with(key: &str, v: Value) -> Result<Metainfo, MetainfoError> {
    let mut d = base_info();
    d.insert(key.as_bytes().to_vec(), v);
    parse(d)
}

fn without(key: &str) -> Result<Metainfo, MetainfoError> {
    let mut d = base_info();
    d.remove(key.as_bytes());
    parse(d)
}

fn file_entry(path: &[&str], len: i64) -> Value {
    dict([
        ("length", Value::Int(len)),
        (
            "path",
            Value::List(path.iter().map(|c| bytes(*c)).collect()),
        ),
    ])
}

fn multi_info(files: &[(Vec<&str>, i64)]) -> BTreeMap<Vec<u8>, Value> {
    let total: i64 = files.iter().map(|f| f.1.max(0)).sum();
    let n = (total + PL - 1) / PL;
    let mut d = base_info();
    d.remove(&b"length"[..]);
    d.insert(b"name".to_vec(), bytes("root"));
    d.insert(b"pieces".to_vec(), bytes(vec![1u8; n as usize * 20]));
    d.insert(
        b"files".to_vec(),
        Value::List(files.iter().map(|(p, l)| file_entry(p, *l)).collect()),
    );
    d
}

fn multi_torrent(files: &[(Vec<&str>, i64)]) -> Vec<u8> {
    torrent_with(Value::Dict(multi_info(files)))
}

fn parse_multi(files: &[(Vec<&str>, i64)]) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes(&multi_torrent(files))
}

fn err_text(r: Result<Metainfo, MetainfoError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn base_info_is_valid() {
    assert!(parse(base_info()).is_ok());
    assert!(parse_multi(&[(vec!["a"], 1), (vec!["b", "c"], 2)]).is_ok());
}

#[test]
fn rejects_malformed_bencode() {
    let mut t = torrent_with(Value::Dict(base_info()));
    t.pop();
    assert!(matches!(
        Metainfo::from_bytes(&t),
        Err(MetainfoError::Bencode(_))
    ));
    assert!(err_text(Metainfo::from_bytes(b"d4:infoi1e")).starts_with("malformed bencode"));
}

#[test]
fn rejects_trailing_bytes() {
    let mut t = torrent_with(Value::Dict(base_info()));
    t.extend_from_slice(b"junk");
    assert!(matches!(
        Metainfo::from_bytes(&t),
        Err(MetainfoError::Bencode(bencode::BencodeError::Trailing(4)))
    ));
}

#[test]
fn rejects_top_level_not_dict() {
    assert_eq!(
        Metainfo::from_bytes(b"li1ee"),
        Err(MetainfoError::NotADict("the torrent file"))
    );
}

#[test]
fn rejects_missing_info() {
    let t = dict([("announce", bytes("x"))]).encode();
    assert_eq!(err_text(Metainfo::from_bytes(&t)), "missing field info");
}

#[test]
fn rejects_info_not_dict() {
    assert_eq!(
        Metainfo::from_bytes(&torrent_with(Value::Int(1))),
        Err(MetainfoError::NotADict("info"))
    );
    assert_eq!(
        Info::from_bytes(b"le"),
        Err(MetainfoError::NotADict("info"))
    );
}

#[test]
fn rejects_missing_name() {
    assert_eq!(err_text(without("name")), "missing field info.name");
}

#[test]
fn rejects_mistyped_name() {
    assert_eq!(
        err_text(with("name", Value::Int(3))),
        "field info.name is not a byte string"
    );
}

#[test]
fn rejects_non_utf8_name() {
    assert_eq!(
        err_text(with("name", bytes(vec![0xff, 0xfe]))),
        "field info.name is not valid UTF-8"
    );
}

#[test]
fn rejects_missing_piece_length() {
    assert_eq!(
        err_text(without("piece length")),
        "missing field info.piece length"
    );
}

#[test]
fn rejects_mistyped_piece_length() {
    assert_eq!(
        err_text(with("piece length", bytes("16384"))),
        "field info.piece length is not an integer"
    );
}

#[test]
fn rejects_piece_length_not_power_of_two() {
    assert_eq!(
        err_text(with("piece length", Value::Int(20_000))),
        "info.piece length 20000 is not a power of two between 16 KiB and 32 MiB"
    );
}

#[test]
fn rejects_piece_length_out_of_range() {
    for pl in [-16384, 0, 8192, 64 * 1024 * 1024, 128 * 1024 * 1024] {
        assert_eq!(
            with("piece length", Value::Int(pl)).unwrap_err(),
            MetainfoError::BadPieceLength(pl)
        );
    }
}

#[test]
fn accepts_32_mib_pieces() {
    let mut d = base_info();
    d.insert(b"piece length".to_vec(), Value::Int(32 * 1024 * 1024));
    d.insert(b"pieces".to_vec(), bytes(vec![0u8; 20]));
    assert_eq!(parse(d).unwrap().info.piece_length, 32 * 1024 * 1024);
    assert_eq!(MAX_PARSE_PIECE_LENGTH, 32 * 1024 * 1024);
}

#[test]
fn rejects_64_mib_pieces_that_no_peer_could_fetch() {
    let mut d = base_info();
    d.insert(b"piece length".to_vec(), Value::Int(64 * 1024 * 1024));
    d.insert(b"pieces".to_vec(), bytes(vec![0u8; 20]));
    assert_eq!(
        err_text(parse(d)),
        "info.piece length 67108864 is not a power of two between 16 KiB and 32 MiB"
    );
}

#[test]
fn rejects_missing_pieces() {
    assert_eq!(err_text(without("pieces")), "missing field info.pieces");
}

#[test]
fn rejects_pieces_not_multiple_of_20() {
    assert_eq!(
        err_text(with("pieces", bytes(vec![0u8; 41]))),
        "info.pieces length 41 is not a multiple of 20"
    );
}

#[test]
fn rejects_pieces_count_mismatch() {
    assert_eq!(
        err_text(with("pieces", bytes(vec![0u8; 40]))),
        "info.pieces holds 2 hashes but 40000 bytes in pieces of 16384 bytes need 3"
    );
    assert!(matches!(
        with("pieces", bytes(vec![0u8; 80])),
        Err(MetainfoError::PieceCountMismatch {
            actual: 4,
            expected: 3,
            ..
        })
    ));
}

#[test]
fn rejects_too_many_pieces() {
    let n = (1usize << 20) + 1;
    let mut d = base_info();
    d.insert(b"length".to_vec(), Value::Int(n as i64 * PL));
    d.insert(b"pieces".to_vec(), bytes(vec![0u8; n * 20]));
    assert_eq!(parse(d).unwrap_err(), MetainfoError::TooManyPieces(n));
}

#[test]
fn rejects_total_over_one_tib() {
    assert_eq!(
        err_text(with("length", Value::Int((1 << 40) + 1))),
        "total length 1099511627777 bytes exceeds the 1 TiB limit"
    );
    // The size check comes before the pieces are looked at.
    let mut d = multi_info(&[(vec!["a"], 1)]);
    let files = [(["a"], 1i64 << 39), (["b"], 1 << 39), (["c"], 1)]
        .iter()
        .map(|(p, l)| file_entry(p, *l))
        .collect();
    d.insert(b"files".to_vec(), Value::List(files));
    assert_eq!(
        parse(d).unwrap_err(),
        MetainfoError::TooLarge((1 << 40) + 1)
    );
}

#[test]
fn rejects_negative_length() {
    assert_eq!(
        err_text(with("length", Value::Int(-5))),
        "info.length is negative (-5)"
    );
}

#[test]
fn rejects_negative_file_length() {
    assert_eq!(
        err_text(parse_multi(&[(vec!["a"], 10), (vec!["b"], -1)])),
        "info.files[1].length is negative (-1)"
    );
}

#[test]
fn rejects_mistyped_length() {
    assert_eq!(
        err_text(with("length", bytes("40000"))),
        "field info.length is not an integer"
    );
}

#[test]
fn rejects_zero_total_length() {
    let mut d = base_info();
    d.insert(b"length".to_vec(), Value::Int(0));
    d.insert(b"pieces".to_vec(), bytes(""));
    assert_eq!(parse(d).unwrap_err(), MetainfoError::EmptyTorrent);
    assert_eq!(
        parse_multi(&[(vec!["a"], 0), (vec!["b"], 0)]).unwrap_err(),
        MetainfoError::EmptyTorrent
    );
}

#[test]
fn rejects_both_length_and_files() {
    let mut d = multi_info(&[(vec!["a"], 40_000)]);
    d.insert(b"length".to_vec(), Value::Int(40_000));
    assert_eq!(parse(d).unwrap_err(), MetainfoError::LengthAndFiles);
}

#[test]
fn rejects_neither_length_nor_files() {
    assert_eq!(
        err_text(without("length")),
        "info has neither length nor files"
    );
}

#[test]
fn rejects_empty_files_list() {
    assert_eq!(parse_multi(&[]).unwrap_err(), MetainfoError::NoFiles);
}

#[test]
fn rejects_files_not_a_list() {
    let mut d = base_info();
    d.remove(&b"length"[..]);
    d.insert(b"files".to_vec(), bytes("a"));
    assert_eq!(err_text(parse(d)), "field info.files is not a list");
}

#[test]
fn rejects_file_entry_not_a_dict() {
    let mut d = multi_info(&[(vec!["a"], 40_000)]);
    d.insert(b"files".to_vec(), Value::List(vec![bytes("a")]));
    assert_eq!(
        err_text(parse(d)),
        "field info.files[0] is not a dictionary"
    );
}

#[test]
fn rejects_file_missing_path() {
    let mut d = multi_info(&[(vec!["a"], 40_000)]);
    d.insert(
        b"files".to_vec(),
        Value::List(vec![dict([("length", Value::Int(40_000))])]),
    );
    assert_eq!(err_text(parse(d)), "missing field info.files[0].path");
}

#[test]
fn rejects_file_path_not_a_list() {
    let mut d = multi_info(&[(vec!["a"], 40_000)]);
    d.insert(
        b"files".to_vec(),
        Value::List(vec![dict([
            ("length", Value::Int(40_000)),
            ("path", bytes("a/b")),
        ])]),
    );
    assert_eq!(err_text(parse(d)), "field info.files[0].path is not a list");
}

#[test]
fn rejects_empty_file_path() {
    assert_eq!(
        parse_multi(&[(vec!["a"], 1), (vec![], 1)]).unwrap_err(),
        MetainfoError::EmptyPath(1)
    );
}

#[test]
fn rejects_non_utf8_path() {
    let mut d = multi_info(&[(vec!["a"], 40_000)]);
    d.insert(
        b"files".to_vec(),
        Value::List(vec![dict([
            ("length", Value::Int(40_000)),
            ("path", Value::List(vec![bytes(vec![b'a', 0xc0])])),
        ])]),
    );
    assert_eq!(
        err_text(parse(d)),
        "field info.files[0].path is not valid UTF-8"
    );
}

fn path_err(component: &str) -> String {
    err_text(parse_multi(&[(vec!["ok", component], 100)]))
}

#[test]
fn rejects_dotdot_component() {
    assert_eq!(
        path_err(".."),
        "file path component '..' escapes the download directory"
    );
}

#[test]
fn rejects_dot_component() {
    assert_eq!(
        path_err("."),
        "file path component '.' refers to the directory itself"
    );
}

#[test]
fn rejects_empty_component() {
    assert_eq!(path_err(""), "file path component '' is empty");
}

#[test]
fn rejects_absolute_component() {
    assert_eq!(
        path_err("/etc/passwd"),
        "file path component '/etc/passwd' is an absolute path"
    );
    assert_eq!(
        path_err("\\Windows"),
        "file path component '\\\\Windows' is an absolute path"
    );
}

#[test]
fn rejects_slash_inside_component() {
    assert_eq!(
        path_err("a/../../x"),
        "file path component 'a/../../x' contains a path separator"
    );
}

#[test]
fn rejects_backslash_inside_component() {
    assert_eq!(
        path_err("a\\..\\x"),
        "file path component 'a\\\\..\\\\x' contains a path separator"
    );
}

#[test]
fn rejects_nul_in_component() {
    assert_eq!(
        path_err("a\0b"),
        "file path component 'a\\0b' contains a NUL byte"
    );
}

#[test]
fn rejects_windows_drive_prefix() {
    assert_eq!(
        path_err("C:"),
        "file path component 'C:' starts with a Windows drive prefix"
    );
    assert!(path_err("c:evil").contains("Windows drive prefix"));
}

#[test]
fn rejects_unsafe_name() {
    for (name, reason) in [
        ("..", "escapes the download directory"),
        (".", "refers to the directory itself"),
        ("", "is empty"),
        ("/tmp", "is an absolute path"),
        ("a/b", "contains a path separator"),
        ("D:x", "starts with a Windows drive prefix"),
    ] {
        let e = err_text(with("name", bytes(name)));
        assert_eq!(e, format!("info.name '{name}' {reason}"));
        let mut d = multi_info(&[(vec!["a"], 1)]);
        d.insert(b"name".to_vec(), bytes(name));
        assert_eq!(err_text(parse(d)), e);
    }
}

#[test]
fn rejects_duplicate_paths() {
    assert_eq!(
        err_text(parse_multi(&[
            (vec!["a", "b"], 1),
            (vec!["c"], 1),
            (vec!["a", "b"], 1)
        ])),
        "file path 'a/b' appears more than once in info.files"
    );
}

#[test]
fn rejects_paths_that_differ_only_in_case() {
    assert_eq!(
        err_text(parse_multi(&[
            (vec!["A"], 1),
            (vec!["c"], 1),
            (vec!["a"], 1)
        ])),
        "file paths 'A' and 'a' in info.files differ only in case; on a \
         case-insensitive file system (Windows, macOS) they are the same path"
    );
    assert_eq!(
        parse_multi(&[
            (vec!["Dir", "Report.PDF"], 1),
            (vec!["dir", "report.pdf"], 1)
        ])
        .unwrap_err(),
        MetainfoError::CaseCollision {
            first: "Dir/Report.PDF".to_string(),
            second: "dir/report.pdf".to_string(),
        }
    );
    // Non-ASCII letters fold too (NTFS and APFS fold them).
    assert!(matches!(
        parse_multi(&[(vec!["Ä"], 1), (vec!["ä"], 1)]),
        Err(MetainfoError::CaseCollision { .. })
    ));
    // A file named like a directory in another case.
    assert_eq!(
        parse_multi(&[(vec!["docs", "x"], 1), (vec!["DOCS"], 1)]).unwrap_err(),
        MetainfoError::CaseCollision {
            first: "docs".to_string(),
            second: "DOCS".to_string(),
        }
    );
    // Directories differing only in case merge into one; distinct files in
    // them do not clash.
    let m = parse_multi(&[(vec!["Dir", "a"], 1), (vec!["dir", "b"], 1)]).unwrap();
    assert_eq!(m.info.files.len(), 2);
}

#[test]
fn rejects_file_that_is_also_a_directory() {
    assert_eq!(
        err_text(parse_multi(&[(vec!["a", "b"], 1), (vec!["a"], 1)])),
        "file path 'a' is both a file and a directory in info.files"
    );
}

#[test]
fn rejects_bad_private_flag() {
    assert_eq!(
        err_text(with("private", Value::Int(2))),
        "info.private is 2; it must be 0 or 1"
    );
    assert!(!with("private", Value::Int(0)).unwrap().info.private);
    assert!(with("private", Value::Int(1)).unwrap().info.private);
}

fn top_with(key: &str, v: Value) -> Result<Metainfo, MetainfoError> {
    let t = dict([(key, v), ("info", Value::Dict(base_info()))]).encode();
    Metainfo::from_bytes(&t)
}

#[test]
fn rejects_mistyped_announce() {
    assert_eq!(
        err_text(top_with("announce", Value::Int(1))),
        "field announce is not a byte string"
    );
}

#[test]
fn rejects_mistyped_announce_list() {
    for v in [bytes("udp://a:1"), Value::List(vec![bytes("udp://a:1")])] {
        assert_eq!(
            err_text(top_with("announce-list", v)),
            "field announce-list is not a list of lists"
        );
    }
    let ok = top_with(
        "announce-list",
        Value::List(vec![Value::List(vec![bytes("udp://a:1")])]),
    )
    .unwrap();
    assert_eq!(ok.announce_list, vec![vec!["udp://a:1".to_string()]]);
}

#[test]
fn rejects_mistyped_creation_date() {
    assert_eq!(
        err_text(top_with("creation date", bytes("today"))),
        "field creation date is not an integer"
    );
}

#[test]
fn rejects_non_utf8_comment() {
    assert_eq!(
        err_text(top_with("comment", bytes(vec![0xff]))),
        "field comment is not valid UTF-8"
    );
}

#[test]
fn ignores_unknown_keys_but_hashes_them() {
    let mut d = base_info();
    d.insert(b"source".to_vec(), bytes("lab"));
    let with_source = parse(d).unwrap();
    let plain = parse(base_info()).unwrap();
    assert_eq!(with_source.info, plain.info);
    assert_ne!(with_source.info_hash, plain.info_hash);
    assert_eq!(with_source.info_hash, InfoHash::of(&with_source.info_bytes));
}
