//! SHA-1: agreement with an independent implementation (`sha1_smol`), and an
//! ignored speed comparison of the two.

use minitorrent_common::hash::{sha1, Sha1};

fn portable(data: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(data).digest().bytes()
}

#[test]
fn agrees_with_an_independent_implementation() {
    assert_eq!(
        sha1(b"abc"),
        [
            0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
            0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d
        ]
    );
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    assert_eq!(sha1(&data), portable(&data));
    assert_eq!(sha1(&[]), portable(&[]));
    let mut h = Sha1::new();
    h.update(&data[..333]);
    h.update(&data[333..]);
    assert_eq!(h.finish_reset(), portable(&data));
    assert_eq!(h.finish_reset(), portable(&[]));
}

/// `cargo test -p minitorrent-common --release --test hash -- --ignored --nocapture sha1_speed`
#[test]
#[ignore]
fn sha1_speed() {
    let data = vec![0x5au8; 64 << 20];
    for (name, f) in [
        ("sha1 (RustCrypto)", sha1 as fn(&[u8]) -> [u8; 20]),
        ("sha1_smol", portable),
    ] {
        let t = std::time::Instant::now();
        let mut acc = 0u8;
        for chunk in data.chunks(512 * 1024) {
            acc ^= f(chunk)[0];
        }
        let s = t.elapsed().as_secs_f64();
        println!("{name}: {:.0} MB/s ({acc})", data.len() as f64 / s / 1e6);
    }
}
