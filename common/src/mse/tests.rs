use super::*;

const IH: InfoHash = InfoHash([7; 20]);
const OTHER: InfoHash = InfoHash([9; 20]);

fn secrets(seed: u8, pad: usize) -> Secrets {
    let mut private = [0u8; 20];
    for (i, b) in private.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8).wrapping_mul(17) | 1;
    }
    Secrets {
        private,
        pad: (0..pad)
            .map(|i| (i as u8).wrapping_mul(seed) ^ 0x5a)
            .collect(),
    }
}

const BT_HANDSHAKE: &[u8] = b"\x13BitTorrent protocol....the rest of a 68-byte handshake.........";

fn pair(offer: Methods, accept: Methods, pad_a: usize, pad_b: usize) -> (Initiator, Receiver) {
    let a = Initiator::new(IH, offer, secrets(3, pad_a), BT_HANDSHAKE.to_vec());
    let b = Receiver::new(&[OTHER, IH], accept, secrets(5, pad_b));
    (a, b)
}

/// Runs both sides against each other, moving `chunk` bytes at a time,
/// until both are done; `extra_*` are stream bytes each side sends right
/// after its part of the handshake (already encrypted by the caller's
/// closure when RC4 is selected: here, plaintext appended before any
/// cipher exists is only possible for B's IA, so extra bytes go through
/// the returned ciphers instead).
fn run(
    mut a: Initiator,
    mut b: Receiver,
    chunk: usize,
) -> Result<(Established, Established), MseError> {
    let (mut a_done, mut b_done) = (None, None);
    let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
    for _ in 0..100_000 {
        if a_done.is_none() {
            to_b.extend(a.take_output());
        }
        if b_done.is_none() {
            to_a.extend(b.take_output());
        }
        if a_done.is_some() && b_done.is_some() {
            break;
        }
        if !to_b.is_empty() && b_done.is_none() {
            let n = chunk.min(to_b.len());
            let piece: Vec<u8> = to_b.drain(..n).collect();
            if let Status::Done(e) = b.feed(&piece)? {
                to_a.extend(b.take_output());
                b_done = Some(*e);
            }
        } else if !to_a.is_empty() && a_done.is_none() {
            let n = chunk.min(to_a.len());
            let piece: Vec<u8> = to_a.drain(..n).collect();
            if let Status::Done(e) = a.feed(&piece)? {
                a_done = Some(*e);
            }
        } else if a_done.is_none() || b_done.is_none() {
            panic!("stuck: A {a:?}, B {b:?}");
        }
    }
    Ok((a_done.unwrap(), b_done.unwrap()))
}

#[test]
fn the_prime_is_the_specifications() {
    let hex: String = PRIME.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(
        hex,
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563"
    );
}

#[test]
fn public_keys_are_two_to_the_private_key_in_96_bytes() {
    let mut one = [0u8; 20];
    one[19] = 1;
    let mut want = [0u8; KEY_LEN];
    want[KEY_LEN - 1] = 2;
    assert_eq!(Dh::new(one).public, want);
    one[19] = 10;
    want[KEY_LEN - 1] = 0;
    want[KEY_LEN - 2] = 4; // 2^10 = 0x0400
    assert_eq!(Dh::new(one).public, want);
    // Both sides reach the same secret.
    let (x, y) = (
        Dh::new(secrets(1, 0).private),
        Dh::new(secrets(2, 0).private),
    );
    assert_eq!(x.secret(&y.public).unwrap(), y.secret(&x.public).unwrap());
}

/// A textbook RC4, only to check the crate and the 1024-byte discard.
fn reference_rc4(key: &[u8], skip: usize, n: usize) -> Vec<u8> {
    let mut s: Vec<u8> = (0..=255).collect();
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, j as usize);
    }
    let (mut i, mut j) = (0u8, 0u8);
    let mut out = Vec::new();
    for k in 0..skip + n {
        i = i.wrapping_add(1);
        j = j.wrapping_add(s[i as usize]);
        s.swap(i as usize, j as usize);
        let byte = s[(s[i as usize].wrapping_add(s[j as usize])) as usize];
        if k >= skip {
            out.push(byte);
        }
    }
    out
}

#[test]
fn the_rc4_stream_skips_its_first_1024_bytes() {
    let key = [0x42u8; 20];
    let mut buf = vec![0u8; 64];
    Rc4Stream::new(key).apply(&mut buf);
    assert_eq!(buf, reference_rc4(&key, 1024, 64));
    assert_ne!(buf, reference_rc4(&key, 0, 64));
    // Known RC4 vector (key "Key"), for the reference itself.
    assert_eq!(
        reference_rc4(b"Key", 0, 9)
            .iter()
            .zip(b"Plaintext")
            .map(|(k, p)| k ^ p)
            .collect::<Vec<_>>(),
        [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]
    );
}

#[test]
fn the_plain_handshake_is_told_from_an_encrypted_one() {
    assert_eq!(classify(b""), Opening::Unknown);
    assert_eq!(classify(b"\x13BitTor"), Opening::Unknown);
    assert_eq!(classify(b"\x13BitTorrent protocol"), Opening::Plain);
    assert_eq!(classify(b"\x13BitTorrent protocol\0\0"), Opening::Plain);
    assert_eq!(classify(b"\x13BitTorrent protocoL"), Opening::Encrypted);
    assert_eq!(classify(b"\x14"), Opening::Encrypted);
    // A public key that happens to start with 19 is still told apart.
    assert_eq!(classify(b"\x13Bx"), Opening::Encrypted);
}

fn check_streams(a: &mut Established, b: &mut Established) {
    // B got the initial payload; A got nothing extra.
    assert_eq!(b.received, BT_HANDSHAKE);
    assert!(a.received.is_empty());
    assert_eq!(a.info_hash, IH);
    assert_eq!(b.info_hash, IH, "B found the torrent by req2 xor req3");
    if let (Some(ca), Some(cb)) = (a.ciphers.as_mut(), b.ciphers.as_mut()) {
        let mut msg = b"hello from A".to_vec();
        ca.encrypt.apply(&mut msg);
        assert_ne!(msg, b"hello from A");
        cb.decrypt.apply(&mut msg);
        assert_eq!(msg, b"hello from A");
        let mut msg = b"and from B".to_vec();
        cb.encrypt.apply(&mut msg);
        ca.decrypt.apply(&mut msg);
        assert_eq!(msg, b"and from B");
    }
}

#[test]
fn both_roles_agree_on_rc4_whatever_the_pads_and_chunking() {
    for (pad_a, pad_b) in [(0, 0), (1, 511), (MAX_PAD, MAX_PAD), (37, 0)] {
        for chunk in [1, 7, 100, 10_000] {
            let (a, b) = pair(Methods::RC4_ONLY, Methods::BOTH, pad_a, pad_b);
            let (mut ea, mut eb) = run(a, b, chunk).unwrap();
            assert_eq!(ea.method, Method::Rc4);
            assert_eq!(eb.method, Method::Rc4);
            assert!(ea.ciphers.is_some() && eb.ciphers.is_some());
            check_streams(&mut ea, &mut eb);
        }
    }
}

#[test]
fn plaintext_is_selected_when_only_it_is_common() {
    let (a, b) = pair(
        Methods::BOTH,
        Methods {
            plain: true,
            rc4: false,
        },
        10,
        20,
    );
    let (mut ea, mut eb) = run(a, b, 13).unwrap();
    assert_eq!((ea.method, eb.method), (Method::Plain, Method::Plain));
    assert!(ea.ciphers.is_none() && eb.ciphers.is_none());
    check_streams(&mut ea, &mut eb);
    // B prefers RC4 when both are offered.
    let (a, b) = pair(Methods::BOTH, Methods::BOTH, 0, 0);
    let (ea, _) = run(a, b, 1000).unwrap();
    assert_eq!(ea.method, Method::Rc4);
}

#[test]
fn no_common_method_fails_at_the_receiver() {
    let (a, b) = pair(
        Methods::RC4_ONLY,
        Methods {
            plain: true,
            rc4: false,
        },
        0,
        0,
    );
    assert_eq!(
        run(a, b, 50).unwrap_err(),
        MseError::NoCommonMethod {
            offered: 2,
            accepted: 1
        }
    );
    let (a, b) = pair(
        Methods {
            plain: true,
            rc4: false,
        },
        Methods::RC4_ONLY,
        0,
        0,
    );
    assert!(matches!(
        run(a, b, 50).unwrap_err(),
        MseError::NoCommonMethod { .. }
    ));
}

#[test]
fn a_wrong_skey_is_an_unknown_torrent() {
    let a = Initiator::new(IH, Methods::BOTH, secrets(3, 5), Vec::new());
    let b = Receiver::new(&[OTHER], Methods::BOTH, secrets(5, 5));
    assert_eq!(run(a, b, 64).unwrap_err(), MseError::UnknownTorrent);
    // None served at all.
    let a = Initiator::new(IH, Methods::BOTH, secrets(3, 5), Vec::new());
    let b = Receiver::new(&[], Methods::BOTH, secrets(5, 5));
    assert_eq!(run(a, b, 64).unwrap_err(), MseError::UnknownTorrent);
}

/// Bytes that never contain either marker.
fn noise(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn a_receiver_gives_up_when_req1_does_not_end_within_628_bytes() {
    let key = Dh::new(secrets(3, 0).private).public;
    // Byte by byte: pending up to the bound, then the error, never later.
    let mut b = Receiver::new(&[IH], Methods::BOTH, secrets(5, 0));
    let mut stream = key.to_vec();
    stream.extend(noise(2000));
    for (i, byte) in stream.iter().enumerate() {
        match b.feed(&[*byte]) {
            Ok(Status::Pending) => assert!(i + 1 < RECEIVER_SYNC_LIMIT, "still pending at {i}"),
            Ok(Status::Done(_)) => panic!("done on noise"),
            Err(e) => {
                assert_eq!(i + 1, RECEIVER_SYNC_LIMIT, "gave up at byte {i}");
                assert!(matches!(e, MseError::NoSync { limit: 628, .. }), "{e}");
                break;
            }
        }
    }
    assert_eq!(RECEIVER_SYNC_LIMIT, 628);
    // All at once: the same error, and only the bound is searched.
    let mut b = Receiver::new(&[IH], Methods::BOTH, secrets(5, 0));
    assert!(matches!(b.feed(&stream), Err(MseError::NoSync { .. })));
    assert_eq!(b.feed(b"more").unwrap_err(), MseError::Finished);
}

#[test]
fn req1_ending_exactly_at_the_bound_is_found() {
    // PadA of 512 is the most a peer may send: still accepted.
    let (a, b) = pair(Methods::RC4_ONLY, Methods::RC4_ONLY, MAX_PAD, 0);
    assert!(run(a, b, 1).is_ok());
    // One byte more of pad and req1 ends past 628.
    let mut a = Initiator::new(IH, Methods::RC4_ONLY, secrets(3, MAX_PAD), Vec::new());
    let mut b = Receiver::new(&[IH], Methods::RC4_ONLY, secrets(5, 0));
    let mut first = a.take_output();
    first.push(0xEE);
    assert!(matches!(b.feed(&first), Ok(Status::Pending)));
    let yb = b.take_output();
    assert!(matches!(a.feed(&yb), Ok(Status::Pending)));
    let step3 = a.take_output();
    assert!(matches!(b.feed(&step3), Err(MseError::NoSync { .. })));
}

#[test]
fn an_initiator_gives_up_when_the_vc_does_not_end_within_616_bytes() {
    let yb = Dh::new(secrets(5, 0).private).public;
    let mut stream = yb.to_vec();
    stream.extend(noise(1000));
    let mut a = Initiator::new(IH, Methods::BOTH, secrets(3, 0), Vec::new());
    for (i, byte) in stream.iter().enumerate() {
        match a.feed(&[*byte]) {
            Ok(Status::Pending) => assert!(i + 1 < INITIATOR_SYNC_LIMIT),
            Ok(Status::Done(_)) => panic!("done on noise"),
            Err(e) => {
                assert_eq!(i + 1, INITIATOR_SYNC_LIMIT);
                assert!(matches!(e, MseError::NoSync { limit: 616, .. }), "{e}");
                return;
            }
        }
    }
    panic!("never gave up");
}

#[test]
fn out_of_range_public_keys_are_refused() {
    let p_minus_1 = {
        let mut k = PRIME;
        k[KEY_LEN - 1] -= 1;
        k
    };
    let mut one = [0u8; KEY_LEN];
    one[KEY_LEN - 1] = 1;
    for key in [[0u8; KEY_LEN], one, p_minus_1, PRIME, [0xFF; KEY_LEN]] {
        let mut b = Receiver::new(&[IH], Methods::BOTH, secrets(5, 0));
        assert_eq!(b.feed(&key).unwrap_err(), MseError::BadKey);
        let mut a = Initiator::new(IH, Methods::BOTH, secrets(3, 0), Vec::new());
        assert_eq!(a.feed(&key).unwrap_err(), MseError::BadKey);
    }
}

/// A handshake up to B's answer: A has Yb and sent step 3; the test writes
/// B's answer by hand. Returns A and keyB's encrypting stream.
fn initiator_awaiting_answer(offer: Methods) -> (Initiator, Rc4Stream) {
    let mut a = Initiator::new(IH, offer, secrets(3, 0), Vec::new());
    let b = Dh::new(secrets(5, 0).private);
    let ya = a.take_output();
    let s = b.secret(&ya[..KEY_LEN]).unwrap();
    assert!(matches!(a.feed(&b.public), Ok(Status::Pending)));
    let _ = a.take_output();
    (a, Rc4Stream::new(sha1_of(&[b"keyB", &s, &IH.0])))
}

fn answer(enc: &mut Rc4Stream, select: u32, pad: u16, pad_bytes: usize) -> Vec<u8> {
    let mut m = VC.to_vec();
    m.extend_from_slice(&select.to_be_bytes());
    m.extend_from_slice(&pad.to_be_bytes());
    m.extend(std::iter::repeat_n(0u8, pad_bytes));
    enc.apply(&mut m);
    m
}

#[test]
fn the_initiator_checks_crypto_select_and_pad_d() {
    for (select, offer, want) in [
        (0x03, Methods::BOTH, MseError::BadSelect(3)),
        (0x00, Methods::BOTH, MseError::BadSelect(0)),
        (0x04, Methods::BOTH, MseError::BadSelect(4)),
        (
            0x01,
            Methods::RC4_ONLY,
            MseError::NotOffered {
                selected: 1,
                offered: 2,
            },
        ),
    ] {
        let (mut a, mut enc) = initiator_awaiting_answer(offer);
        assert_eq!(a.feed(&answer(&mut enc, select, 0, 0)).unwrap_err(), want);
    }
    let (mut a, mut enc) = initiator_awaiting_answer(Methods::BOTH);
    assert_eq!(
        a.feed(&answer(&mut enc, 2, 513, 0)).unwrap_err(),
        MseError::PadTooLong {
            which: "PadD",
            len: 513
        }
    );
    // A PadD of 512 with some padding before the VC, then stream bytes.
    let (mut a, mut enc) = initiator_awaiting_answer(Methods::BOTH);
    let mut bytes = noise(300);
    bytes.extend(answer(&mut enc, 2, 512, 512));
    let mut tail = b"stream".to_vec();
    enc.apply(&mut tail);
    bytes.extend(tail);
    match a.feed(&bytes) {
        Ok(Status::Done(e)) => {
            assert_eq!(e.method, Method::Rc4);
            assert_eq!(e.received, b"stream");
        }
        other => panic!("{other:?}"),
    }
}

/// B after Ya: returns B, its output so far, and A's step 3 parts.
fn receiver_awaiting_step3() -> (Receiver, [u8; 20], [u8; 20], Rc4Stream) {
    let mut b = Receiver::new(&[IH], Methods::BOTH, secrets(5, 0));
    let a = Dh::new(secrets(3, 0).private);
    assert!(matches!(b.feed(&a.public), Ok(Status::Pending)));
    let yb = b.take_output();
    let s = a.secret(&yb[..KEY_LEN]).unwrap();
    let req1 = sha1_of(&[b"req1", &s]);
    let req2 = sha1_of(&[b"req2", &IH.0]);
    let req3 = sha1_of(&[b"req3", &s]);
    let mut x = [0u8; 20];
    for i in 0..20 {
        x[i] = req2[i] ^ req3[i];
    }
    (b, req1, x, Rc4Stream::new(sha1_of(&[b"keyA", &s, &IH.0])))
}

fn step3(
    req1: [u8; 20],
    x: [u8; 20],
    enc: &mut Rc4Stream,
    vc: [u8; 8],
    provide: u32,
    pad_c: u16,
) -> Vec<u8> {
    let mut out = req1.to_vec();
    out.extend_from_slice(&x);
    let mut m = vc.to_vec();
    m.extend_from_slice(&provide.to_be_bytes());
    m.extend_from_slice(&pad_c.to_be_bytes());
    enc.apply(&mut m);
    out.extend(m);
    out
}

#[test]
fn the_receiver_checks_vc_provide_and_pad_c() {
    let (mut b, r1, x, mut enc) = receiver_awaiting_step3();
    assert_eq!(
        b.feed(&step3(r1, x, &mut enc, [1; 8], 2, 0)).unwrap_err(),
        MseError::BadVc
    );
    let (mut b, r1, x, mut enc) = receiver_awaiting_step3();
    assert_eq!(
        b.feed(&step3(r1, x, &mut enc, VC, 0, 0)).unwrap_err(),
        MseError::NoCommonMethod {
            offered: 0,
            accepted: 3
        }
    );
    let (mut b, r1, x, mut enc) = receiver_awaiting_step3();
    assert_eq!(
        b.feed(&step3(r1, x, &mut enc, VC, 2, 600)).unwrap_err(),
        MseError::PadTooLong {
            which: "PadC",
            len: 600
        }
    );
    // Unknown bits next to RC4 are ignored; PadC of 512, then IA and the
    // first stream bytes in the same read.
    let (mut b, r1, x, mut enc) = receiver_awaiting_step3();
    let mut bytes = step3(r1, x, &mut enc, VC, 0xF2, 512);
    let mut rest = vec![0u8; 512];
    rest.extend_from_slice(&3u16.to_be_bytes());
    rest.extend_from_slice(b"IA!more");
    enc.apply(&mut rest);
    bytes.extend(rest);
    match b.feed(&bytes) {
        Ok(Status::Done(e)) => {
            assert_eq!(e.method, Method::Rc4);
            assert_eq!(e.received, b"IA!more");
            assert_eq!(e.info_hash, IH);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.take_output().len(), 14, "VC, crypto_select, len(PadD)");
}

#[test]
fn after_plaintext_is_selected_only_the_ia_was_encrypted() {
    let (mut b, r1, x, mut enc) = receiver_awaiting_step3();
    let mut bytes = step3(r1, x, &mut enc, VC, 0x01, 0);
    let mut ia = 2u16.to_be_bytes().to_vec();
    ia.extend_from_slice(b"IA");
    enc.apply(&mut ia);
    bytes.extend(ia);
    bytes.extend_from_slice(b"plain after");
    match b.feed(&bytes) {
        Ok(Status::Done(e)) => {
            assert_eq!(e.method, Method::Plain);
            assert_eq!(e.received, b"IAplain after");
            assert!(e.ciphers.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_handshakes_stay_pending_and_say_what_they_wait_for() {
    // Record the whole exchange, then replay every prefix of each side's
    // stream: never done, never an error, until the last byte.
    let (a, b) = pair(Methods::RC4_ONLY, Methods::BOTH, 40, 60);
    let mut a2 = Initiator::new(IH, Methods::RC4_ONLY, secrets(3, 40), BT_HANDSHAKE.to_vec());
    let mut b2 = Receiver::new(&[OTHER, IH], Methods::BOTH, secrets(5, 60));
    let _ = run(a, b, 1000).unwrap();
    let a_stream = {
        let mut s = a2.take_output();
        let mut bb = Receiver::new(&[OTHER, IH], Methods::BOTH, secrets(5, 60));
        let _ = bb.feed(&s);
        let yb = bb.take_output();
        let _ = a2.feed(&yb);
        s.extend(a2.take_output());
        s
    };
    for cut in 0..a_stream.len() {
        let mut fresh = Receiver::new(&[OTHER, IH], Methods::BOTH, secrets(5, 60));
        assert!(
            matches!(fresh.feed(&a_stream[..cut]), Ok(Status::Pending)),
            "cut {cut}"
        );
        assert!(!fresh.waiting_for().is_empty());
    }
    assert!(matches!(b2.feed(&a_stream), Ok(Status::Done(_))));
    let b_stream = b2.take_output();
    for cut in 0..b_stream.len() {
        let mut fresh =
            Initiator::new(IH, Methods::RC4_ONLY, secrets(3, 40), BT_HANDSHAKE.to_vec());
        let _ = fresh.take_output();
        assert!(
            matches!(fresh.feed(&b_stream[..cut]), Ok(Status::Pending)),
            "cut {cut}"
        );
    }
    let mut whole = Initiator::new(IH, Methods::RC4_ONLY, secrets(3, 40), BT_HANDSHAKE.to_vec());
    assert!(matches!(whole.feed(&b_stream), Ok(Status::Done(_))));
    let fresh = Initiator::new(IH, Methods::RC4_ONLY, secrets(3, 40), Vec::new());
    assert_eq!(fresh.waiting_for(), "the peer's public key");
}

#[test]
fn encryption_policies() {
    assert_eq!(Encryption::parse(" Require "), Some(Encryption::Require));
    assert_eq!(Encryption::parse("maybe"), None);
    assert_eq!(Encryption::default(), Encryption::Accept);
    assert_eq!(Encryption::Accept.outbound_methods(), None);
    assert_eq!(Encryption::Off.inbound_methods(), None);
    assert_eq!(
        Encryption::Require.inbound_methods(),
        Some(Methods::RC4_ONLY)
    );
    assert!(!Encryption::Require.allows_plain());
    assert!(Encryption::Off.allows_plain());
    for e in [
        Encryption::Accept,
        Encryption::Prefer,
        Encryption::Require,
        Encryption::Off,
    ] {
        assert_eq!(Encryption::parse(e.name()), Some(e));
    }
}
