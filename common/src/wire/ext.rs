//! The payloads of extended messages (message id 20): the BEP 10 extension
//! handshake ([`ExtHandshake`], extended id 0) and the BEP 9 `ut_metadata`
//! messages ([`MetadataMsg`]) that fetch the info dictionary from peers
//! (BEP 11 `ut_pex` lives in `pex`).
//! Both are bencoded; unknown keys are ignored, known keys are range-checked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{n_bytes, WireError, MAX_METADATA_SIZE, METADATA_BLOCK, UT_METADATA_ID, UT_PEX_ID};
use crate::bencode::{self, Value};

/// BEP 10 extension handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// Extension name → message id (`ut_metadata` → 1 and `ut_pex` → 2 for
    /// us); id 0 disables. A decoded entry with id 0 stays in the map as 0
    /// (the peer turned that extension off); use
    /// [`ExtHandshake::ut_metadata_id`] and [`ExtHandshake::ut_pex_id`] to
    /// ask whether the peer speaks one.
    pub m: BTreeMap<String, u8>,
    pub metadata_size: Option<u64>,
    /// Client name and version.
    pub v: Option<String>,
    /// The sender's listening TCP port.
    pub p: Option<u16>,
    pub reqq: Option<u32>,
}

const EXT_WHAT: &str = "extension handshake";

impl ExtHandshake {
    /// Ours: `ut_metadata` under [`UT_METADATA_ID`] and `ut_pex` under
    /// [`UT_PEX_ID`], plus whatever we know.
    pub fn ours(metadata_size: Option<u64>, port: Option<u16>, version: &str) -> ExtHandshake {
        ExtHandshake {
            m: BTreeMap::from([
                ("ut_metadata".to_string(), UT_METADATA_ID),
                ("ut_pex".to_string(), UT_PEX_ID),
            ]),
            metadata_size,
            v: Some(version.to_string()),
            p: port,
            reqq: None,
        }
    }

    /// The peer's id for `ut_metadata` messages, if it enabled the extension.
    pub fn ut_metadata_id(&self) -> Option<u8> {
        self.m.get("ut_metadata").copied().filter(|&id| id != 0)
    }

    /// The peer's id for `ut_pex` messages, if it enabled the extension.
    pub fn ut_pex_id(&self) -> Option<u8> {
        self.m.get("ut_pex").copied().filter(|&id| id != 0)
    }

    pub fn encode(&self) -> Vec<u8> {
        let m = bencode::dict(
            self.m
                .iter()
                .map(|(name, id)| (name.as_bytes().to_vec(), Value::Int(i64::from(*id)))),
        );
        let mut entries: Vec<(&str, Value)> = vec![("m", m)];
        if let Some(size) = self.metadata_size {
            entries.push((
                "metadata_size",
                Value::Int(size.min(i64::MAX as u64) as i64),
            ));
        }
        if let Some(v) = &self.v {
            entries.push(("v", bencode::bytes(v.as_bytes())));
        }
        if let Some(p) = self.p {
            entries.push(("p", Value::Int(i64::from(p))));
        }
        if let Some(reqq) = self.reqq {
            entries.push(("reqq", Value::Int(i64::from(reqq))));
        }
        bencode::dict(entries).encode()
    }

    /// Unknown keys are ignored; wrong types for known keys are errors.
    /// `metadata_size` 0 reads as absent (no info dictionary is empty), a
    /// non-UTF-8 `v` is decoded lossily, and `m` entries whose name is not
    /// UTF-8 are skipped: they cannot name an extension we speak.
    pub fn decode(payload: &[u8]) -> Result<ExtHandshake, WireError> {
        let value = bencode::decode(payload).map_err(|err| WireError::Bencode {
            what: EXT_WHAT,
            err,
        })?;
        let dict = value.as_dict().ok_or(WireError::NotADict(EXT_WHAT))?;
        let mut hs = ExtHandshake::default();
        if let Some(m) = dict.get(&b"m"[..]) {
            let m = m
                .as_dict()
                .ok_or_else(|| field_type(EXT_WHAT, "m", "a dictionary"))?;
            for (name, id) in m {
                let Ok(name) = std::str::from_utf8(name) else {
                    continue;
                };
                let key = format!("m.{name}");
                let id = int_in(EXT_WHAT, &key, id, 0, 255)?;
                hs.m.insert(name.to_string(), id as u8);
            }
        }
        if let Some(size) = dict.get(&b"metadata_size"[..]) {
            let size = int_in(EXT_WHAT, "metadata_size", size, 0, MAX_METADATA_SIZE as i64)?;
            hs.metadata_size = (size != 0).then_some(size as u64);
        }
        if let Some(v) = dict.get(&b"v"[..]) {
            let v = v
                .as_bytes()
                .ok_or_else(|| field_type(EXT_WHAT, "v", "a byte string"))?;
            hs.v = Some(String::from_utf8_lossy(v).into_owned());
        }
        if let Some(p) = dict.get(&b"p"[..]) {
            hs.p = Some(int_in(EXT_WHAT, "p", p, 1, i64::from(u16::MAX))? as u16);
        }
        if let Some(reqq) = dict.get(&b"reqq"[..]) {
            hs.reqq = Some(int_in(EXT_WHAT, "reqq", reqq, 0, i64::from(u32::MAX))? as u32);
        }
        Ok(hs)
    }

    /// One line for `--trace`, e.g.
    /// `EXT-HANDSHAKE m={ut_metadata:1} metadata_size=5012 v="minitorrent 0.1.0" p=6881`.
    pub fn summary(&self) -> String {
        let m: Vec<String> = self.m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let mut s = format!("EXT-HANDSHAKE m={{{}}}", m.join(", "));
        if let Some(size) = self.metadata_size {
            let _ = write!(s, " metadata_size={size}");
        }
        if let Some(v) = &self.v {
            let _ = write!(s, " v={v:?}");
        }
        if let Some(p) = self.p {
            let _ = write!(s, " p={p}");
        }
        if let Some(reqq) = self.reqq {
            let _ = write!(s, " reqq={reqq}");
        }
        s
    }
}

fn field_type(what: &'static str, key: &str, expected: &'static str) -> WireError {
    WireError::FieldType {
        what,
        key: key.to_string(),
        expected,
    }
}

/// An integer value within `min..=max`, or the error naming `key`.
fn int_in(what: &'static str, key: &str, v: &Value, min: i64, max: i64) -> Result<i64, WireError> {
    let n = v
        .as_int()
        .ok_or_else(|| field_type(what, key, "an integer"))?;
    if n < min || n > max {
        return Err(WireError::FieldRange {
            what,
            key: key.to_string(),
            value: n,
            min,
            max,
        });
    }
    Ok(n)
}

/// BEP 9 `ut_metadata` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMsg {
    Request {
        piece: u32,
    },
    Data {
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    Reject {
        piece: u32,
    },
}

const META_WHAT: &str = "ut_metadata message";
/// The last metadata piece index a [`MAX_METADATA_SIZE`] info dictionary has.
const MAX_METADATA_PIECE: i64 = (MAX_METADATA_SIZE.div_ceil(METADATA_BLOCK as u64) - 1) as i64;

impl MetadataMsg {
    /// The payload of an extended message (after the extended id byte).
    pub fn encode(&self) -> Vec<u8> {
        let (msg_type, piece) = match self {
            MetadataMsg::Request { piece } => (0, piece),
            MetadataMsg::Data { piece, .. } => (1, piece),
            MetadataMsg::Reject { piece } => (2, piece),
        };
        let mut entries = vec![
            ("msg_type", Value::Int(msg_type)),
            ("piece", Value::Int(i64::from(*piece))),
        ];
        if let MetadataMsg::Data { total_size, .. } = self {
            entries.push((
                "total_size",
                Value::Int((*total_size).min(i64::MAX as u64) as i64),
            ));
        }
        let mut out = bencode::dict(entries).encode();
        if let MetadataMsg::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }

    /// Checks the whole message, including that a data block has exactly the
    /// size its piece index and `total_size` imply (16 KiB, shorter for the
    /// last piece). [`WireError::UnknownMetadataType`] is worth ignoring
    /// rather than disconnecting, as BEP 9 asks.
    pub fn decode(payload: &[u8]) -> Result<MetadataMsg, WireError> {
        let (value, dict_len) =
            bencode::decode_prefix(payload).map_err(|err| WireError::Bencode {
                what: META_WHAT,
                err,
            })?;
        if value.as_dict().is_none() {
            return Err(WireError::NotADict(META_WHAT));
        }
        let rest = &payload[dict_len..];
        let msg_type = value
            .get("msg_type")
            .ok_or(WireError::MissingField {
                what: META_WHAT,
                key: "msg_type",
            })?
            .as_int()
            .ok_or_else(|| field_type(META_WHAT, "msg_type", "an integer"))?;
        let name = match msg_type {
            0 => "request",
            1 => "data",
            2 => "reject",
            other => return Err(WireError::UnknownMetadataType(other)),
        };
        let piece = value.get("piece").ok_or(WireError::MissingField {
            what: META_WHAT,
            key: "piece",
        })?;
        let piece = int_in(META_WHAT, "piece", piece, 0, MAX_METADATA_PIECE)? as u32;
        if msg_type != 1 {
            if !rest.is_empty() {
                return Err(WireError::MetadataTrailing {
                    name,
                    extra: rest.len(),
                });
            }
            return Ok(if msg_type == 0 {
                MetadataMsg::Request { piece }
            } else {
                MetadataMsg::Reject { piece }
            });
        }
        let total_size = value.get("total_size").ok_or(WireError::MissingField {
            what: "ut_metadata data message",
            key: "total_size",
        })?;
        let total_size = int_in(
            META_WHAT,
            "total_size",
            total_size,
            1,
            MAX_METADATA_SIZE as i64,
        )? as u64;
        if rest.len() > METADATA_BLOCK {
            return Err(WireError::MetadataBlockTooLong(rest.len()));
        }
        let start = u64::from(piece) * METADATA_BLOCK as u64;
        if start >= total_size {
            return Err(WireError::MetadataPieceOutOfRange { piece, total_size });
        }
        let expected = (total_size - start).min(METADATA_BLOCK as u64) as usize;
        if rest.len() != expected {
            return Err(WireError::MetadataBlockSize {
                piece,
                got: rest.len(),
                expected,
                total_size,
            });
        }
        Ok(MetadataMsg::Data {
            piece,
            total_size,
            data: rest.to_vec(),
        })
    }

    /// One line for `--trace`, e.g. `METADATA DATA piece 0 of 20000 (16384 bytes)`.
    pub fn summary(&self) -> String {
        match self {
            MetadataMsg::Request { piece } => format!("METADATA REQUEST piece {piece}"),
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => format!(
                "METADATA DATA piece {piece} of {total_size} ({})",
                n_bytes(data.len())
            ),
            MetadataMsg::Reject { piece } => format!("METADATA REJECT piece {piece}"),
        }
    }
}
