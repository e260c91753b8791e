//! One peer message after the handshake: the [`Message`] enum, its encoding
//! with the 4-byte length prefix, its strict decoding of one frame, and its
//! one-line `--trace` summary.

use super::{id, n_bytes, WireError, MAX_BLOCK_LEN};

/// One peer message (the frame after its 4-byte length prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request {
        index: u32,
        begin: u32,
        length: u32,
    },
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel {
        index: u32,
        begin: u32,
        length: u32,
    },
    Port(u16),
    /// BEP 6: a piece the sender suggests we fetch (advice only).
    SuggestPiece(u32),
    /// BEP 6: the sender has every piece (in place of a BITFIELD).
    HaveAll,
    /// BEP 6: the sender has no piece (in place of a BITFIELD).
    HaveNone,
    /// BEP 6: the sender will not answer this request.
    RejectRequest {
        index: u32,
        begin: u32,
        length: u32,
    },
    /// BEP 6: the receiver may request this piece even while choked.
    AllowedFast(u32),
    /// BEP 10: `id` 0 is the extension handshake, others are the ids we
    /// advertised in our `m` dictionary.
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
}

impl Message {
    /// Appends the length prefix and the message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Message::KeepAlive => {}
            Message::Choke => out.push(id::CHOKE),
            Message::Unchoke => out.push(id::UNCHOKE),
            Message::Interested => out.push(id::INTERESTED),
            Message::NotInterested => out.push(id::NOT_INTERESTED),
            Message::Have(index) => {
                out.push(id::HAVE);
                out.extend_from_slice(&index.to_be_bytes());
            }
            Message::Bitfield(bits) => {
                out.push(id::BITFIELD);
                out.extend_from_slice(bits);
            }
            Message::Request {
                index,
                begin,
                length,
            } => push_block_ref(out, id::REQUEST, *index, *begin, *length),
            Message::Cancel {
                index,
                begin,
                length,
            } => push_block_ref(out, id::CANCEL, *index, *begin, *length),
            Message::Piece { index, begin, data } => {
                out.push(id::PIECE);
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(data);
            }
            Message::Port(port) => {
                out.push(id::PORT);
                out.extend_from_slice(&port.to_be_bytes());
            }
            Message::SuggestPiece(index) => {
                out.push(id::SUGGEST_PIECE);
                out.extend_from_slice(&index.to_be_bytes());
            }
            Message::HaveAll => out.push(id::HAVE_ALL),
            Message::HaveNone => out.push(id::HAVE_NONE),
            Message::RejectRequest {
                index,
                begin,
                length,
            } => push_block_ref(out, id::REJECT_REQUEST, *index, *begin, *length),
            Message::AllowedFast(index) => {
                out.push(id::ALLOWED_FAST);
                out.extend_from_slice(&index.to_be_bytes());
            }
            Message::Extended { id: ext, payload } => {
                out.push(id::EXTENDED);
                out.push(*ext);
                out.extend_from_slice(payload);
            }
        }
        // Frames we build are bounded by MAX_MESSAGE_LEN-sized inputs; a body
        // over 4 GiB would be a bug in our own code, not peer input.
        let body_len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&body_len.to_be_bytes());
    }

    /// Decodes one frame (without its length prefix). Wrong lengths for a
    /// message id, unknown ids and empty extended messages are errors. The
    /// BEP 6 messages decode whether or not the fast extension was
    /// negotiated: the connection decides (without it they are violations,
    /// like an unknown id, see [`Message::is_fast`]).
    pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
        let Some((&msg_id, body)) = frame.split_first() else {
            return Ok(Message::KeepAlive);
        };
        let exact = |name: &'static str, expected: usize| {
            if frame.len() == expected {
                Ok(())
            } else {
                Err(WireError::WrongLength {
                    name,
                    expected,
                    got: frame.len(),
                })
            }
        };
        match msg_id {
            id::CHOKE => exact("choke", 1).map(|_| Message::Choke),
            id::UNCHOKE => exact("unchoke", 1).map(|_| Message::Unchoke),
            id::INTERESTED => exact("interested", 1).map(|_| Message::Interested),
            id::NOT_INTERESTED => exact("not interested", 1).map(|_| Message::NotInterested),
            id::HAVE => {
                exact("have", 5)?;
                Ok(Message::Have(be_u32(body, 0)))
            }
            id::BITFIELD => Ok(Message::Bitfield(body.to_vec())),
            id::REQUEST | id::CANCEL | id::REJECT_REQUEST => {
                let name = match msg_id {
                    id::REQUEST => "request",
                    id::CANCEL => "cancel",
                    _ => "reject request",
                };
                exact(name, 13)?;
                let (index, begin, length) = (be_u32(body, 0), be_u32(body, 4), be_u32(body, 8));
                if length == 0 || length > MAX_BLOCK_LEN {
                    return Err(WireError::BadBlockLength { name, length });
                }
                Ok(match msg_id {
                    id::REQUEST => Message::Request {
                        index,
                        begin,
                        length,
                    },
                    id::CANCEL => Message::Cancel {
                        index,
                        begin,
                        length,
                    },
                    _ => Message::RejectRequest {
                        index,
                        begin,
                        length,
                    },
                })
            }
            id::SUGGEST_PIECE => {
                exact("suggest piece", 5)?;
                Ok(Message::SuggestPiece(be_u32(body, 0)))
            }
            id::HAVE_ALL => exact("have all", 1).map(|_| Message::HaveAll),
            id::HAVE_NONE => exact("have none", 1).map(|_| Message::HaveNone),
            id::ALLOWED_FAST => {
                exact("allowed fast", 5)?;
                Ok(Message::AllowedFast(be_u32(body, 0)))
            }
            id::PIECE => {
                if frame.len() < 10 {
                    return Err(WireError::TooShort {
                        name: "piece",
                        min: 10,
                        got: frame.len(),
                    });
                }
                let data = &body[8..];
                if data.len() > MAX_BLOCK_LEN as usize {
                    return Err(WireError::PieceTooLong(data.len()));
                }
                Ok(Message::Piece {
                    index: be_u32(body, 0),
                    begin: be_u32(body, 4),
                    data: data.to_vec(),
                })
            }
            id::PORT => {
                exact("port", 3)?;
                Ok(Message::Port(u16::from_be_bytes([body[0], body[1]])))
            }
            id::EXTENDED => match body.split_first() {
                Some((&ext, payload)) => Ok(Message::Extended {
                    id: ext,
                    payload: payload.to_vec(),
                }),
                None => Err(WireError::TooShort {
                    name: "extended",
                    min: 2,
                    got: frame.len(),
                }),
            },
            other => Err(WireError::UnknownId(other)),
        }
    }

    /// A BEP 6 message: only legal when both handshakes set the fast bit.
    pub fn is_fast(&self) -> bool {
        matches!(
            self,
            Message::SuggestPiece(_)
                | Message::HaveAll
                | Message::HaveNone
                | Message::RejectRequest { .. }
                | Message::AllowedFast(_)
        )
    }

    /// One human-readable line for `--trace`; payloads summarised, never dumped,
    /// e.g. `PIECE 3 offset 16384 (16384 bytes)`.
    pub fn summary(&self) -> String {
        match self {
            Message::KeepAlive => "KEEP-ALIVE".into(),
            Message::Choke => "CHOKE".into(),
            Message::Unchoke => "UNCHOKE".into(),
            Message::Interested => "INTERESTED".into(),
            Message::NotInterested => "NOT INTERESTED".into(),
            Message::Have(index) => format!("HAVE {index}"),
            Message::Bitfield(bits) => format!("BITFIELD ({})", n_bytes(bits.len())),
            Message::Request {
                index,
                begin,
                length,
            } => format!("REQUEST piece {index} offset {begin} length {length}"),
            Message::Cancel {
                index,
                begin,
                length,
            } => format!("CANCEL piece {index} offset {begin} length {length}"),
            Message::Piece { index, begin, data } => {
                format!("PIECE {index} offset {begin} ({})", n_bytes(data.len()))
            }
            Message::Port(port) => format!("PORT {port}"),
            Message::SuggestPiece(index) => format!("SUGGEST PIECE {index}"),
            Message::HaveAll => "HAVE ALL".into(),
            Message::HaveNone => "HAVE NONE".into(),
            Message::RejectRequest {
                index,
                begin,
                length,
            } => format!("REJECT REQUEST piece {index} offset {begin} length {length}"),
            Message::AllowedFast(index) => format!("ALLOWED FAST {index}"),
            Message::Extended { id: 0, payload } => {
                format!("EXTENDED handshake ({})", n_bytes(payload.len()))
            }
            Message::Extended { id, payload } => {
                format!("EXTENDED id {id} ({})", n_bytes(payload.len()))
            }
        }
    }
}

fn push_block_ref(out: &mut Vec<u8>, msg_id: u8, index: u32, begin: u32, length: u32) {
    out.push(msg_id);
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&begin.to_be_bytes());
    out.extend_from_slice(&length.to_be_bytes());
}

/// Callers check the length first, so the slice is always in range.
fn be_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
