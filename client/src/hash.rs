//! The one SHA-1 function the engine uses for piece checks.
//!
//! Both RustCrypto `sha1` (which uses the SHA-NI instructions when the CPU has
//! them) and `sha1_smol` were measured behind this function on the target
//! machine; see `scripts/bench-peer.sh` and the unit test below for how to
//! compare. `sha1` won by a wide margin on SHA-NI hardware, so it is the one
//! used.

use sha1::Digest;

/// SHA-1 of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let out = sha1::Sha1::digest(data);
    let mut h = [0u8; 20];
    h.copy_from_slice(&out);
    h
}

/// The portable implementation, kept for the comparison in tests.
pub fn sha1_portable(data: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(data).digest().bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha1(b"abc"),
            [
                0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
                0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d
            ]
        );
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        assert_eq!(sha1(&data), sha1_portable(&data));
        assert_eq!(sha1(&[]), sha1_portable(&[]));
    }

    /// `cargo test -p minitorrent --release -- --ignored --nocapture sha1_speed`
    #[test]
    #[ignore]
    fn sha1_speed() {
        let data = vec![0x5au8; 64 << 20];
        for (name, f) in [
            ("sha1 (RustCrypto)", sha1 as fn(&[u8]) -> [u8; 20]),
            ("sha1_smol", sha1_portable),
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
}
