//! Peer wire codec: round trips, byte-exact encodings real clients expect, and
//! every malformed input we know of.
//!
//! Handshakes are compared field by field: `InfoHash`'s Debug output is not
//! needed for a passing assertion and keeps these tests independent of it.

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::wire::*;

fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out);
    out
}

/// Encodes, checks the prefix, and decodes the frame again.
fn round_trip(msg: Message) {
    let bytes = encode(&msg);
    let len = frame_len(bytes[..4].try_into().unwrap(), MAX_MESSAGE_LEN).unwrap();
    assert_eq!(len, bytes.len() - 4, "{msg:?}");
    assert_eq!(Message::decode(&bytes[4..]).unwrap(), msg);
}

fn decode_err(frame: &[u8]) -> WireError {
    Message::decode(frame).unwrap_err()
}

// ---------------------------------------------------------------- handshake

fn sample_handshake() -> Handshake {
    let mut peer_id = *b"-MN0100-000000000000";
    peer_id[8..].copy_from_slice(&[0xab; 12]);
    Handshake::new(InfoHash([0x12; 20]), peer_id)
}

#[test]
fn handshake_bytes_are_exact() {
    let hs = sample_handshake();
    let bytes = hs.encode();
    let mut expected = vec![19u8];
    expected.extend_from_slice(b"BitTorrent protocol");
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0]);
    expected.extend_from_slice(&[0x12; 20]);
    expected.extend_from_slice(b"-MN0100-");
    expected.extend_from_slice(&[0xab; 12]);
    assert_eq!(bytes.to_vec(), expected);
    assert_eq!(bytes.len(), HANDSHAKE_LEN);
}

#[test]
fn handshake_round_trip_keeps_reserved_bits() {
    let mut hs = sample_handshake();
    hs.reserved[7] |= 0x01; // DHT bit: not ours, but must survive
    let back = Handshake::decode(&hs.encode()).unwrap();
    assert!(back == hs);
    assert!(back.supports_extensions());
    assert_eq!(back.reserved[7], 0x01);
    assert_eq!(back.info_hash.0, [0x12; 20]);
}

#[test]
fn handshake_without_extension_bit() {
    let mut hs = sample_handshake();
    hs.reserved = [0; 8];
    let back = Handshake::decode(&hs.encode()).unwrap();
    assert!(!back.supports_extensions());
    assert!(!back.summary().contains("extensions"));
}

#[test]
fn handshake_bad_pstrlen() {
    let mut bytes = sample_handshake().encode();
    bytes[0] = 18;
    let err = Handshake::decode(&bytes).err().unwrap();
    assert_eq!(err, WireError::BadProtocolLength(18));
    assert_eq!(
        err.to_string(),
        "handshake protocol string length is 18, expected 19"
    );
}

#[test]
fn handshake_bad_pstr() {
    let mut bytes = sample_handshake().encode();
    bytes[1..20].copy_from_slice(b"BitTorrent protocoL");
    let err = Handshake::decode(&bytes).err().unwrap();
    assert_eq!(err, WireError::BadProtocol);
    assert_eq!(
        err.to_string(),
        "handshake protocol string is not 'BitTorrent protocol'"
    );
}

#[test]
fn handshake_summary() {
    assert_eq!(
        sample_handshake().summary(),
        "HANDSHAKE info_hash=12121212… peer_id=-MN0100-… (extensions)"
    );
    let mut hs = sample_handshake();
    hs.peer_id = [0u8; 20];
    assert!(hs.summary().contains("peer_id=0000000000000000…"));
}

// ---------------------------------------------------------------- messages

#[test]
fn every_message_round_trips() {
    for msg in [
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(0),
        Message::Have(u32::MAX),
        Message::Bitfield(vec![0b1010_0000, 0xff]),
        Message::Bitfield(vec![]),
        Message::Request {
            index: 3,
            begin: 16384,
            length: 16384,
        },
        Message::Request {
            index: 0,
            begin: 0,
            length: 1,
        },
        Message::Piece {
            index: 3,
            begin: 16384,
            data: vec![7; 16384],
        },
        Message::Piece {
            index: 1,
            begin: 2,
            data: vec![9],
        },
        Message::Cancel {
            index: 9,
            begin: 0,
            length: 100,
        },
        Message::Port(6881),
        Message::Extended {
            id: 0,
            payload: b"d1:md11:ut_metadatai1eee".to_vec(),
        },
        Message::Extended {
            id: 1,
            payload: vec![],
        },
    ] {
        round_trip(msg);
    }
}

#[test]
fn encode_appends_to_existing_buffer() {
    let mut out = vec![0xee];
    Message::Have(1).encode(&mut out);
    Message::KeepAlive.encode(&mut out);
    assert_eq!(out, [0xee, 0, 0, 0, 5, 4, 0, 0, 0, 1, 0, 0, 0, 0]);
}

#[test]
fn byte_exact_encodings() {
    let cases: Vec<(Message, Vec<u8>)> = vec![
        (Message::KeepAlive, vec![0, 0, 0, 0]),
        (Message::Choke, vec![0, 0, 0, 1, 0]),
        (Message::Unchoke, vec![0, 0, 0, 1, 1]),
        (Message::Interested, vec![0, 0, 0, 1, 2]),
        (Message::NotInterested, vec![0, 0, 0, 1, 3]),
        (Message::Have(0x0102_0304), vec![0, 0, 0, 5, 4, 1, 2, 3, 4]),
        (Message::Bitfield(vec![0xc0]), vec![0, 0, 0, 2, 5, 0xc0]),
        (
            Message::Request {
                index: 1,
                begin: 0x4000,
                length: 0x4000,
            },
            vec![0, 0, 0, 0x0d, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (
            Message::Piece {
                index: 2,
                begin: 0x10,
                data: b"abc".to_vec(),
            },
            vec![
                0, 0, 0, 0x0c, 7, 0, 0, 0, 2, 0, 0, 0, 0x10, b'a', b'b', b'c',
            ],
        ),
        (
            Message::Cancel {
                index: 0x0a0b_0c0d,
                begin: 0,
                length: 1,
            },
            vec![
                0, 0, 0, 0x0d, 8, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 0, 0, 0, 0, 1,
            ],
        ),
        (Message::Port(0x1ae1), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
        (
            Message::Extended {
                id: 0,
                payload: b"de".to_vec(),
            },
            vec![0, 0, 0, 4, 20, 0, b'd', b'e'],
        ),
    ];
    for (msg, expected) in cases {
        assert_eq!(encode(&msg), expected, "{msg:?}");
    }
}

#[test]
fn piece_header_matches_encoded_piece() {
    let data = vec![5u8; 1000];
    let full = encode(&Message::Piece {
        index: 7,
        begin: 32768,
        data: data.clone(),
    });
    let header = piece_header(7, 32768, data.len() as u32);
    assert_eq!(&full[..13], &header);
    assert_eq!(header, [0, 0, 0x03, 0xf1, 7, 0, 0, 0, 7, 0, 0, 0x80, 0]);
}

#[test]
fn fixed_size_messages_reject_wrong_lengths() {
    let cases: [(&[u8], &str, usize); 10] = [
        (&[0, 0], "choke", 1),
        (&[1, 0], "unchoke", 1),
        (&[2, 0, 0], "interested", 1),
        (&[3, 9], "not interested", 1),
        (&[4, 0, 0], "have", 5),
        (&[4, 0, 0, 0, 0, 0], "have", 5),
        (&[6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40], "request", 13),
        (&[8, 0, 0, 0, 0], "cancel", 13),
        (&[9, 0x1a], "port", 3),
        (&[9, 0x1a, 0xe1, 0], "port", 3),
    ];
    for (frame, name, expected) in cases {
        assert_eq!(
            decode_err(frame),
            WireError::WrongLength {
                name,
                expected,
                got: frame.len()
            },
            "{frame:?}"
        );
    }
    assert_eq!(
        decode_err(&[4, 0, 0]).to_string(),
        "have message must be 5 bytes, got 3"
    );
}

#[test]
fn every_id_truncated_is_an_error() {
    // Each valid frame cut short by one byte or more must fail (the only
    // exception is a bitfield, whose size the codec cannot know).
    let frames = [
        encode(&Message::Have(5)),
        encode(&Message::Request {
            index: 1,
            begin: 0,
            length: 16384,
        }),
        encode(&Message::Piece {
            index: 1,
            begin: 0,
            data: vec![1],
        }),
        encode(&Message::Cancel {
            index: 1,
            begin: 0,
            length: 16384,
        }),
        encode(&Message::Port(1)),
        encode(&Message::Extended {
            id: 1,
            payload: vec![],
        }),
    ];
    for full in frames {
        let frame = &full[4..];
        for cut in 1..frame.len() {
            assert!(
                Message::decode(&frame[..cut]).is_err(),
                "id {} cut to {cut} bytes decoded",
                frame[0]
            );
        }
    }
}

#[test]
fn unknown_id() {
    for id in [10u8, 19, 21, 42, 255] {
        assert_eq!(decode_err(&[id, 1, 2]), WireError::UnknownId(id));
    }
    assert_eq!(decode_err(&[42]).to_string(), "unknown message id 42");
}

#[test]
fn request_and_cancel_block_length_limits() {
    for id in [6u8, 8] {
        let mut frame = vec![id, 0, 0, 0, 1, 0, 0, 0, 0];
        frame.extend_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            decode_err(&frame),
            WireError::BadBlockLength { length: 0, .. }
        ));
        frame.truncate(9);
        frame.extend_from_slice(&(MAX_BLOCK_LEN + 1).to_be_bytes());
        assert!(matches!(
            decode_err(&frame),
            WireError::BadBlockLength { length: 16385, .. }
        ));
        frame.truncate(9);
        frame.extend_from_slice(&MAX_BLOCK_LEN.to_be_bytes());
        assert!(Message::decode(&frame).is_ok());
    }
    let mut frame = vec![6u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        decode_err(&frame).to_string(),
        "request length 0 is outside 1..=16384"
    );
    frame[0] = 8;
    assert!(decode_err(&frame)
        .to_string()
        .starts_with("cancel length 0"));
}

#[test]
fn piece_without_data_or_oversized() {
    let empty = [7u8, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(
        decode_err(&empty),
        WireError::TooShort {
            name: "piece",
            min: 10,
            got: 9
        }
    );
    assert_eq!(
        decode_err(&empty).to_string(),
        "piece message must be at least 10 bytes, got 9"
    );
    let mut big = empty.to_vec();
    big.extend(vec![0u8; MAX_BLOCK_LEN as usize + 1]);
    assert_eq!(decode_err(&big), WireError::PieceTooLong(16385));
}

#[test]
fn extended_without_id_byte() {
    assert_eq!(
        decode_err(&[20]),
        WireError::TooShort {
            name: "extended",
            min: 2,
            got: 1
        }
    );
}

#[test]
fn port_is_decoded() {
    assert_eq!(
        Message::decode(&[9, 0x1a, 0xe1]).unwrap(),
        Message::Port(6881)
    );
}

#[test]
fn empty_frame_is_keep_alive() {
    assert_eq!(Message::decode(&[]).unwrap(), Message::KeepAlive);
}

#[test]
fn summaries() {
    let cases = [
        (Message::KeepAlive, "KEEP-ALIVE"),
        (Message::Choke, "CHOKE"),
        (Message::Unchoke, "UNCHOKE"),
        (Message::Interested, "INTERESTED"),
        (Message::NotInterested, "NOT INTERESTED"),
        (Message::Have(5), "HAVE 5"),
        (Message::Bitfield(vec![0; 128]), "BITFIELD (128 bytes)"),
        (
            Message::Request {
                index: 3,
                begin: 16384,
                length: 16384,
            },
            "REQUEST piece 3 offset 16384 length 16384",
        ),
        (
            Message::Piece {
                index: 3,
                begin: 16384,
                data: vec![0; 16384],
            },
            "PIECE 3 offset 16384 (16384 bytes)",
        ),
        (
            Message::Cancel {
                index: 3,
                begin: 0,
                length: 10,
            },
            "CANCEL piece 3 offset 0 length 10",
        ),
        (Message::Port(6881), "PORT 6881"),
        (Message::Bitfield(vec![0xc0]), "BITFIELD (1 byte)"),
        (
            Message::Extended {
                id: 0,
                payload: vec![b'x'; 40],
            },
            "EXTENDED handshake (40 bytes)",
        ),
        (
            Message::Extended {
                id: 1,
                payload: vec![b'x'; 7],
            },
            "EXTENDED id 1 (7 bytes)",
        ),
    ];
    for (msg, line) in cases {
        assert_eq!(msg.summary(), line);
        assert!(!msg.summary().contains('\n'));
    }
}

// ---------------------------------------------------------------- framing

#[test]
fn frame_len_limits() {
    assert_eq!(frame_len([0, 0, 0, 0], 10), Ok(0));
    assert_eq!(frame_len([0, 0, 0x40, 0x09], 16393), Ok(16393));
    let err = frame_len([0, 0x04, 0x93, 0xe0], 16397).unwrap_err();
    assert_eq!(
        err,
        WireError::FrameTooLong {
            len: 300000,
            max: 16397
        }
    );
    assert_eq!(
        err.to_string(),
        "message length 300000 exceeds the limit of 16397"
    );
    assert!(frame_len([0xff; 4], MAX_MESSAGE_LEN).is_err());
}

#[test]
fn max_message_len_formula() {
    let floor = 2 + METADATA_DICT_MAX + METADATA_BLOCK;
    assert_eq!(max_message_len(0), floor);
    assert_eq!(max_message_len(1000), floor);
    assert!(max_message_len(0) >= 9 + MAX_BLOCK_LEN as usize);
    // A bitfield bigger than a block: 1 + ceil(n / 8).
    assert_eq!(max_message_len(1 << 20), 1 + (1 << 17));
    assert_eq!(max_message_len((1 << 20) + 1), 2 + (1 << 17));
    // Every message a torrent of that size can produce fits.
    let bits = Bitfield::full(200_000);
    let frame = encode(&Message::Bitfield(bits.as_bytes().to_vec()));
    assert!(frame.len() - 4 <= max_message_len(200_000));
    let data = MetadataMsg::Data {
        piece: 1023,
        total_size: MAX_METADATA_SIZE,
        data: vec![0; METADATA_BLOCK],
    };
    let frame = encode(&Message::Extended {
        id: 200,
        payload: data.encode(),
    });
    assert!(frame.len() - 4 <= max_message_len(0));
}

// ---------------------------------------------------------------- bitfield

#[test]
fn bitfield_bit_order_is_bep3() {
    let mut b = Bitfield::new(13);
    b.set(0);
    b.set(9);
    b.set(12);
    assert_eq!(b.as_bytes(), &[0b1000_0000, 0b0100_1000]);
    assert!(b.get(0) && b.get(9) && b.get(12));
    assert!(!b.get(1) && !b.get(13) && !b.get(1000));
    assert_eq!(b.count(), 3);
    assert!(!b.all());
}

#[test]
fn bitfield_out_of_range_is_ignored() {
    let mut b = Bitfield::new(3);
    b.set(3);
    b.set(7);
    b.set(usize::MAX);
    b.clear(100);
    assert_eq!(b.as_bytes(), &[0]);
    assert_eq!(b.count(), 0);
}

#[test]
fn bitfield_from_bytes() {
    let b = Bitfield::from_bytes(&[0xff, 0xf8], 13).unwrap();
    assert!(b.all());
    assert_eq!(b.count(), 13);
    assert_eq!(b, Bitfield::full(13));
    assert_eq!(
        Bitfield::from_bytes(&[0, 0, 0], 13),
        Err(WireError::BitfieldSize {
            got: 3,
            expected: 2,
            pieces: 13
        })
    );
    assert_eq!(
        Bitfield::from_bytes(&[0, 0, 0], 13)
            .unwrap_err()
            .to_string(),
        "bitfield has 3 bytes, expected 2 for 13 pieces"
    );
    assert!(Bitfield::from_bytes(&[0], 13).is_err());
    assert_eq!(
        Bitfield::from_bytes(&[0, 0x04], 13),
        Err(WireError::BitfieldSpareBits(13))
    );
    assert!(Bitfield::from_bytes(&[0, 0x01], 13).is_err());
    // 16 pieces: no spare bits, any pattern is fine.
    assert!(Bitfield::from_bytes(&[0xff, 0xff], 16).unwrap().all());
    // Zero pieces: zero bytes.
    let empty = Bitfield::from_bytes(&[], 0).unwrap();
    assert!(empty.is_empty() && empty.all());
    assert!(Bitfield::from_bytes(&[0], 0).is_err());
}

#[test]
fn bitfield_full_and_set_all() {
    for len in [0usize, 1, 7, 8, 9, 16, 17, 1000] {
        let full = Bitfield::full(len);
        assert_eq!(full.count(), len);
        assert!(full.all());
        assert_eq!(full.as_bytes().len(), len.div_ceil(8));
        // Round-trips through the wire check: no spare bits were set.
        assert_eq!(Bitfield::from_bytes(full.as_bytes(), len).unwrap(), full);
        let mut b = Bitfield::new(len);
        b.set_all();
        assert_eq!(b, full);
    }
}

#[test]
fn bitfield_clear_and_iterators() {
    let mut b = Bitfield::full(20);
    b.clear(0);
    b.clear(8);
    b.clear(9);
    b.clear(19);
    assert_eq!(b.iter_unset().collect::<Vec<_>>(), [0, 8, 9, 19]);
    assert_eq!(b.iter_set().count(), 16);
    assert_eq!(b.iter_set().take(3).collect::<Vec<_>>(), [1, 2, 3]);

    let mut sparse = Bitfield::new(1000);
    for i in [5, 64, 999] {
        sparse.set(i);
    }
    assert_eq!(sparse.iter_set().collect::<Vec<_>>(), [5, 64, 999]);
    assert_eq!(sparse.iter_unset().count(), 997);
    assert!(sparse.iter_unset().all(|i| i < 1000));
    assert_eq!(Bitfield::full(13).iter_unset().count(), 0);
    assert_eq!(Bitfield::new(13).iter_unset().last(), Some(12));
    assert_eq!(Bitfield::new(0).iter_set().count(), 0);
}

// ---------------------------------------------------------------- BEP 10

#[test]
fn ext_handshake_round_trip() {
    let mut hs = ExtHandshake::ours(Some(31_337), Some(6881), "minitorrent 0.1.0");
    hs.reqq = Some(250);
    hs.m.insert("ut_pex".into(), 0);
    let back = ExtHandshake::decode(&hs.encode()).unwrap();
    assert_eq!(back, hs);
    assert_eq!(back.ut_metadata_id(), Some(UT_METADATA_ID));
    assert_eq!(back.m.get("ut_pex"), Some(&0));
    assert_eq!(back.ut_pex_id(), None, "turned off");
    let ours = ExtHandshake::ours(None, None, "mt");
    assert_eq!(ours.ut_pex_id(), Some(UT_PEX_ID));
    assert_eq!(
        ExtHandshake::default(),
        ExtHandshake::decode(b"de").unwrap()
    );
    assert_eq!(
        ExtHandshake::decode(&ExtHandshake::default().encode()).unwrap(),
        ExtHandshake::default()
    );
}

#[test]
fn ext_handshake_bytes_are_exact() {
    let hs = ExtHandshake::ours(Some(5012), Some(6881), "mt");
    assert_eq!(
        hs.encode(),
        b"d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei5012e1:pi6881e1:v2:mte".to_vec()
    );
}

#[test]
fn ext_handshake_from_another_client() {
    // The shape libtorrent-style clients send: extra keys we do not know.
    let payload = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei9876e1:pi51413e4:reqqi500e11:upload_onlyi0e1:v17:qBittorrent/4.6.06:yourip4:\x7f\x00\x00\x01e";
    let hs = ExtHandshake::decode(payload).unwrap();
    assert_eq!(hs.ut_metadata_id(), Some(2));
    assert_eq!(hs.ut_pex_id(), Some(1));
    assert_eq!(hs.metadata_size, Some(9876));
    assert_eq!(hs.p, Some(51413));
    assert_eq!(hs.reqq, Some(500));
    assert_eq!(hs.v.as_deref(), Some("qBittorrent/4.6.0"));
    assert_eq!(hs.m.len(), 6);
}

#[test]
fn ext_handshake_disabled_and_odd_values() {
    let hs = ExtHandshake::decode(b"d1:md11:ut_metadatai0ee13:metadata_sizei0ee").unwrap();
    assert_eq!(hs.m.get("ut_metadata"), Some(&0));
    assert_eq!(hs.ut_metadata_id(), None);
    assert_eq!(hs.metadata_size, None);
    // A non-UTF-8 client name is shown, not refused.
    let hs = ExtHandshake::decode(b"d1:v2:\xffAe").unwrap();
    assert_eq!(hs.v.as_deref(), Some("\u{fffd}A"));
}

#[test]
fn ext_handshake_rejects_bad_input() {
    let field_type = |payload: &[u8], key: &str| match ExtHandshake::decode(payload) {
        Err(WireError::FieldType { key: k, .. }) => assert_eq!(k, key),
        other => panic!("{payload:?}: {other:?}"),
    };
    field_type(b"d1:mi1ee", "m");
    field_type(b"d1:md11:ut_metadata1:xee", "m.ut_metadata");
    field_type(b"d13:metadata_size3:abce", "metadata_size");
    field_type(b"d1:vi1ee", "v");
    field_type(b"d1:p4:6881e", "p");
    field_type(b"d4:reqqlee", "reqq");

    let range = |payload: &[u8], key: &str, value: i64| match ExtHandshake::decode(payload) {
        Err(WireError::FieldRange {
            key: k, value: v, ..
        }) => assert_eq!((k.as_str(), v), (key, value)),
        other => panic!("{payload:?}: {other:?}"),
    };
    range(b"d1:md11:ut_metadatai256eee", "m.ut_metadata", 256);
    range(b"d1:md11:ut_metadatai-1eee", "m.ut_metadata", -1);
    range(b"d13:metadata_sizei-5ee", "metadata_size", -5);
    range(b"d13:metadata_sizei16777217ee", "metadata_size", 16_777_217);
    range(b"d1:pi65536ee", "p", 65536);
    range(b"d1:pi0ee", "p", 0);
    range(b"d4:reqqi-1ee", "reqq", -1);
    assert_eq!(
        ExtHandshake::decode(b"d13:metadata_sizei-5ee")
            .unwrap_err()
            .to_string(),
        "extension handshake: 'metadata_size' is -5, must be between 0 and 16777216"
    );
    assert_eq!(
        ExtHandshake::decode(b"d1:mi1ee").unwrap_err().to_string(),
        "extension handshake: 'm' must be a dictionary"
    );
    assert!(ExtHandshake::decode(b"d13:metadata_sizei16777216ee").is_ok());

    assert_eq!(
        ExtHandshake::decode(b"li1ee"),
        Err(WireError::NotADict("extension handshake"))
    );
    assert!(matches!(
        ExtHandshake::decode(b"d1:m"),
        Err(WireError::Bencode { .. })
    ));
    assert!(matches!(
        ExtHandshake::decode(b"dextra"),
        Err(WireError::Bencode { .. })
    ));
    assert!(matches!(
        ExtHandshake::decode(b"dejunk"),
        Err(WireError::Bencode { .. })
    ));
    assert!(matches!(
        ExtHandshake::decode(b""),
        Err(WireError::Bencode { .. })
    ));
}

#[test]
fn ext_handshake_summary() {
    let mut hs = ExtHandshake::ours(Some(5012), Some(6881), "minitorrent 0.1.0");
    hs.reqq = Some(250);
    assert_eq!(
        hs.summary(),
        "EXT-HANDSHAKE m={ut_metadata:1, ut_pex:2} metadata_size=5012 v=\"minitorrent 0.1.0\" p=6881 reqq=250"
    );
    assert_eq!(ExtHandshake::default().summary(), "EXT-HANDSHAKE m={}");
}

// ---------------------------------------------------------------- BEP 9

#[test]
fn metadata_round_trips() {
    for msg in [
        MetadataMsg::Request { piece: 0 },
        MetadataMsg::Request { piece: 1023 },
        MetadataMsg::Reject { piece: 4 },
        MetadataMsg::Data {
            piece: 0,
            total_size: 20000,
            data: vec![1; METADATA_BLOCK],
        },
        MetadataMsg::Data {
            piece: 1,
            total_size: 20000,
            data: vec![2; 20000 - METADATA_BLOCK],
        },
        MetadataMsg::Data {
            piece: 0,
            total_size: 2,
            data: b"de".to_vec(),
        },
        MetadataMsg::Data {
            piece: 0,
            total_size: METADATA_BLOCK as u64,
            data: vec![3; METADATA_BLOCK],
        },
    ] {
        assert_eq!(MetadataMsg::decode(&msg.encode()).unwrap(), msg);
    }
}

#[test]
fn metadata_bytes_are_exact() {
    assert_eq!(
        MetadataMsg::Request { piece: 0 }.encode(),
        b"d8:msg_typei0e5:piecei0ee".to_vec()
    );
    assert_eq!(
        MetadataMsg::Reject { piece: 3 }.encode(),
        b"d8:msg_typei2e5:piecei3ee".to_vec()
    );
    assert_eq!(
        MetadataMsg::Data {
            piece: 0,
            total_size: 4,
            data: b"d1:e".to_vec()
        }
        .encode(),
        b"d8:msg_typei1e5:piecei0e10:total_sizei4eed1:e".to_vec()
    );
}

#[test]
fn metadata_data_whose_block_looks_like_bencode() {
    // The block is the info dictionary itself: decode_prefix must stop at the
    // end of the header dictionary, not swallow the block.
    let info = b"d4:name3:abc12:piece lengthi16384ee".to_vec();
    let msg = MetadataMsg::Data {
        piece: 0,
        total_size: info.len() as u64,
        data: info,
    };
    assert_eq!(MetadataMsg::decode(&msg.encode()).unwrap(), msg);
}

#[test]
fn metadata_rejects_malformed() {
    use MetadataMsg as M;
    let err = |payload: &[u8]| M::decode(payload).unwrap_err();

    assert_eq!(
        err(b"d8:msg_typei7e5:piecei0ee"),
        WireError::UnknownMetadataType(7)
    );
    assert_eq!(
        err(b"d8:msg_typei7e5:piecei0ee").to_string(),
        "unknown ut_metadata msg_type 7"
    );
    assert_eq!(
        err(b"d8:msg_typei0ee"),
        WireError::MissingField {
            what: "ut_metadata message",
            key: "piece"
        }
    );
    assert_eq!(
        err(b"d8:msg_typei0ee").to_string(),
        "ut_metadata message has no 'piece'"
    );
    assert!(matches!(
        err(b"d5:piecei0ee"),
        WireError::MissingField {
            key: "msg_type",
            ..
        }
    ));
    assert!(matches!(
        err(b"d8:msg_type1:05:piecei0ee"),
        WireError::FieldType { .. }
    ));
    assert!(matches!(
        err(b"d8:msg_typei0e5:piece1:0e"),
        WireError::FieldType { .. }
    ));
    assert!(matches!(
        err(b"d8:msg_typei0e5:piecei-1ee"),
        WireError::FieldRange { value: -1, .. }
    ));
    assert!(matches!(
        err(b"d8:msg_typei0e5:piecei1024ee"),
        WireError::FieldRange { value: 1024, .. }
    ));
    assert!(matches!(err(b"li0ee"), WireError::NotADict(_)));
    assert!(matches!(err(b""), WireError::Bencode { .. }));
    assert!(matches!(err(b"d8:msg_typei0e"), WireError::Bencode { .. }));
    assert_eq!(
        err(b"d8:msg_typei0e5:piecei0eexyz"),
        WireError::MetadataTrailing {
            name: "request",
            extra: 3
        }
    );
    assert!(matches!(
        err(b"d8:msg_typei2e5:piecei0eex"),
        WireError::MetadataTrailing { name: "reject", .. }
    ));

    // Data without total_size, with a bad one, too long, wrong size, beyond the end.
    assert!(matches!(
        err(b"d8:msg_typei1e5:piecei0eeabc"),
        WireError::MissingField {
            key: "total_size",
            ..
        }
    ));
    assert!(matches!(
        err(b"d8:msg_typei1e5:piecei0e10:total_sizei0eeabc"),
        WireError::FieldRange { .. }
    ));
    assert!(matches!(
        err(b"d8:msg_typei1e5:piecei0e10:total_sizei16777217eeabc"),
        WireError::FieldRange { .. }
    ));
    let mut long = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
    long.extend(vec![0; METADATA_BLOCK + 1]);
    assert_eq!(
        err(&long),
        WireError::MetadataBlockTooLong(METADATA_BLOCK + 1)
    );
    assert_eq!(
        err(b"d8:msg_typei1e5:piecei1e10:total_sizei20000eeabc"),
        WireError::MetadataBlockSize {
            piece: 1,
            got: 3,
            expected: 20000 - METADATA_BLOCK,
            total_size: 20000
        }
    );
    assert!(matches!(
        err(b"d8:msg_typei1e5:piecei0e10:total_sizei20000ee"),
        WireError::MetadataBlockSize { got: 0, .. }
    ));
    assert_eq!(
        err(b"d8:msg_typei1e5:piecei2e10:total_sizei20000eeabc"),
        WireError::MetadataPieceOutOfRange {
            piece: 2,
            total_size: 20000
        }
    );
}

#[test]
fn metadata_summaries() {
    assert_eq!(
        MetadataMsg::Request { piece: 2 }.summary(),
        "METADATA REQUEST piece 2"
    );
    assert_eq!(
        MetadataMsg::Reject { piece: 2 }.summary(),
        "METADATA REJECT piece 2"
    );
    assert_eq!(
        MetadataMsg::Data {
            piece: 0,
            total_size: 20000,
            data: vec![0; METADATA_BLOCK]
        }
        .summary(),
        "METADATA DATA piece 0 of 20000 (16384 bytes)"
    );
}

#[test]
fn metadata_inside_extended_frame() {
    // The full path a peer takes: frame → Extended → MetadataMsg.
    let req = MetadataMsg::Request { piece: 1 };
    let bytes = encode(&Message::Extended {
        id: UT_METADATA_ID,
        payload: req.encode(),
    });
    let len = frame_len(bytes[..4].try_into().unwrap(), max_message_len(1)).unwrap();
    match Message::decode(&bytes[4..4 + len]).unwrap() {
        Message::Extended { id, payload } => {
            assert_eq!(id, UT_METADATA_ID);
            assert_eq!(MetadataMsg::decode(&payload).unwrap(), req);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- BEP 11

fn sock(s: &str) -> std::net::SocketAddr {
    s.parse().unwrap()
}

fn peer(s: &str, flags: u8) -> PexPeer {
    PexPeer {
        addr: sock(s),
        flags,
    }
}

#[test]
fn pex_round_trips_both_families() {
    let msg = PexMsg {
        added: vec![
            peer("10.0.0.1:6881", pex_flags::SEED | pex_flags::REACHABLE),
            peer("[2001:db8::1]:51413", 0),
            peer("10.0.0.2:7000", 0),
        ],
        dropped: vec![sock("10.0.0.3:6881"), sock("[::1]:6882")],
        ignored: 0,
    };
    let back = PexMsg::decode(&msg.encode()).unwrap();
    // Decoded IPv4 first, then IPv6, each in the order sent.
    assert_eq!(
        back.added,
        vec![msg.added[0], msg.added[2], msg.added[1]],
        "{back:?}"
    );
    assert_eq!(back.dropped, msg.dropped);
    assert_eq!(back.ignored, 0);
    assert_eq!(
        PexMsg::decode(&PexMsg::default().encode()).unwrap(),
        PexMsg::default()
    );
    // Every key may be missing.
    assert_eq!(PexMsg::decode(b"de").unwrap(), PexMsg::default());
}

#[test]
fn pex_bytes_are_exact() {
    let msg = PexMsg {
        added: vec![peer("127.0.0.1:6881", pex_flags::SEED)],
        dropped: vec![sock("10.0.0.1:256")],
        ignored: 0,
    };
    assert_eq!(
        msg.encode(),
        b"d5:added6:\x7f\x00\x00\x01\x1a\xe17:added.f1:\x026:added60:8:added6.f0:7:dropped6:\x0a\x00\x00\x01\x01\x008:dropped60:e"
            .to_vec()
    );
}

#[test]
fn pex_from_another_client_without_flags_and_with_extra_keys() {
    // No `added.f`: no flags. Unknown keys are ignored.
    let msg =
        PexMsg::decode(b"d5:added12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe15:extrai1ee")
            .unwrap();
    assert_eq!(
        msg.added,
        vec![peer("10.0.0.1:6881", 0), peer("10.0.0.2:6881", 0)]
    );
    assert!(msg.dropped.is_empty());
}

#[test]
fn pex_keeps_at_most_50_added_and_50_dropped() {
    let many = |n: usize, port: u16| -> Vec<std::net::SocketAddr> {
        (0..n)
            .map(|i| sock(&format!("10.0.{}.{}:{port}", i / 250, i % 250 + 1)))
            .collect()
    };
    // Encoding leaves the rest out.
    let big = PexMsg {
        added: many(70, 1)
            .into_iter()
            .map(|a| PexPeer { addr: a, flags: 0 })
            .collect(),
        dropped: many(60, 2),
        ignored: 0,
    };
    let back = PexMsg::decode(&big.encode()).unwrap();
    assert_eq!(
        (back.added.len(), back.dropped.len()),
        (MAX_PEX_ADDED, MAX_PEX_DROPPED)
    );
    assert_eq!(back.ignored, 0);
    // Decoding a longer list keeps the first 50 (IPv4 before IPv6) and
    // counts the rest.
    let mut added = Vec::new();
    for a in many(45, 1) {
        added.extend_from_slice(&compact_v4(a));
    }
    let mut added6 = Vec::new();
    for i in 0..10u16 {
        let mut e = [0u8; 18];
        e[0] = 0x20;
        e[1] = 0x01;
        e[15] = i as u8;
        e[16..].copy_from_slice(&6881u16.to_be_bytes());
        added6.extend_from_slice(&e);
    }
    let mut dropped = Vec::new();
    for a in many(120, 2) {
        dropped.extend_from_slice(&compact_v4(a));
    }
    let payload = minitorrent_common::bencode::dict([
        ("added", minitorrent_common::bencode::bytes(added)),
        ("added6", minitorrent_common::bencode::bytes(added6)),
        ("dropped", minitorrent_common::bencode::bytes(dropped)),
    ])
    .encode();
    let msg = PexMsg::decode(&payload).unwrap();
    assert_eq!(msg.added.len(), 50);
    assert_eq!(
        msg.added[..45].iter().map(|p| p.addr).collect::<Vec<_>>(),
        many(45, 1)
    );
    assert!(msg.added[45..].iter().all(|p| p.addr.is_ipv6()));
    assert_eq!(msg.dropped, many(50, 2));
    assert_eq!(msg.ignored, 5 + 70);
    assert!(
        msg.summary().ends_with(" (75 more ignored)"),
        "{}",
        msg.summary()
    );
}

fn compact_v4(a: std::net::SocketAddr) -> Vec<u8> {
    let mut b = Vec::new();
    minitorrent_common::compact::push(&mut b, a, false);
    b
}

#[test]
fn pex_rejects_malformed_messages() {
    let err = |payload: &[u8]| PexMsg::decode(payload).unwrap_err();
    // Not bencode, not one value, not a dictionary.
    for bad in [&b""[..], b"d", b"d5:added", b"dexx", b"d5:added0:e5:extra"] {
        assert!(matches!(err(bad), WireError::Bencode { .. }), "{bad:?}");
    }
    assert_eq!(err(b"le"), WireError::NotADict("ut_pex message"));
    assert_eq!(err(b"i1e"), WireError::NotADict("ut_pex message"));
    // A list that is not a byte string.
    for key in [
        "added", "added.f", "added6", "added6.f", "dropped", "dropped6",
    ] {
        let payload = format!("d{}:{key}i1ee", key.len());
        match err(payload.as_bytes()) {
            WireError::FieldType {
                key: k, expected, ..
            } => {
                assert_eq!((k.as_str(), expected), (key, "a byte string"));
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    // Lists that are not whole entries.
    for (payload, key, len, unit, extra) in [
        (&b"d5:added5:abcdee"[..], "added", 5, 6, 5),
        (b"d5:added7:abcdefge", "added", 7, 6, 1),
        (b"d6:added66:abcdefe", "added6", 6, 18, 6),
        (b"d7:dropped4:abcde", "dropped", 4, 6, 4),
        (b"d8:dropped619:abcdefghijklmnopqrse", "dropped6", 19, 18, 1),
    ] {
        assert_eq!(
            err(payload),
            WireError::PexList {
                key,
                len,
                unit,
                extra
            },
            "{payload:?}"
        );
    }
    // Flags that do not match their list, or flags for no list.
    for (payload, key, got, expected) in [
        (
            &b"d5:added6:abcdef7:added.f2:\x00\x00e"[..],
            "added.f",
            2,
            1,
        ),
        (b"d5:added12:abcdefabcdef7:added.f1:\x00e", "added.f", 1, 2),
        (b"d7:added.f1:\x02e", "added.f", 1, 0),
        (b"d8:added6.f1:\x02e", "added6.f", 1, 0),
    ] {
        assert_eq!(
            err(payload),
            WireError::PexFlags { key, got, expected },
            "{payload:?}"
        );
    }
    assert_eq!(
        err(b"d5:added5:abcdee").to_string(),
        "ut_pex 'added' has 5 bytes, not a whole number of 6-byte entries (5 left over)"
    );
    assert_eq!(
        err(b"d7:added.f1:\x02e").to_string(),
        "ut_pex 'added.f' has 1 flag bytes for 0 added peers"
    );
}

#[test]
fn pex_summary() {
    let msg = PexMsg {
        added: vec![
            peer("10.0.0.1:6881", pex_flags::SEED),
            peer("[2001:db8::1]:6881", 0),
        ],
        dropped: vec![sock("10.0.0.3:6881")],
        ignored: 0,
    };
    assert_eq!(
        msg.summary(),
        "PEX added 2: 10.0.0.1:6881 (seed), [2001:db8::1]:6881; dropped 1: 10.0.0.3:6881"
    );
    assert_eq!(PexMsg::default().summary(), "PEX added 0; dropped 0");
    let many = PexMsg {
        added: (1..=9).map(|i| peer(&format!("10.0.0.{i}:1"), 0)).collect(),
        ..PexMsg::default()
    };
    let s = many.summary();
    assert!(s.starts_with("PEX added 9: 10.0.0.1:1, "), "{s}");
    assert!(s.contains("10.0.0.8:1, …; dropped 0"), "{s}");
    assert!(!s.contains("10.0.0.9:1"), "{s}");
}

/// Peer ids are shown as Wireshark shows them: readable ids as they are,
/// binary ones as their printable client prefix and the rest in hex.
#[test]
fn peer_ids_print_without_raw_bytes() {
    use minitorrent_common::wire::peer_id_display;
    assert_eq!(
        peer_id_display(b"-qB4650-abcdefghijkl"),
        "-qB4650-abcdefghijkl"
    );
    let mut binary = *b"-CD0303-............";
    binary[8..].copy_from_slice(&[
        0x40, 0xe1, 0xa4, 0x24, 0xf9, 0xe1, 0x37, 0x72, 0x60, 0x00, 0xff, 0x0a,
    ]);
    assert_eq!(
        peer_id_display(&binary),
        "-CD0303-40e1a424f9e1377260".to_string() + "00ff0a"
    );
    // No tag: the printable bytes it starts with, then hex.
    let mut odd = [0u8; 20];
    odd[..3].copy_from_slice(b"M7-");
    odd[3] = 0x80;
    let shown = peer_id_display(&odd);
    assert!(shown.starts_with("M7-80"), "{shown}");
    assert!(shown.chars().all(|c| c.is_ascii_graphic()), "{shown}");
    assert_eq!(peer_id_display(&[0xff; 20]), "ff".repeat(20));
}
