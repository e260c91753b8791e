//! Message Stream Encryption / Protocol Encryption (MSE/PE): the obfuscated
//! handshake that qBittorrent, Transmission, libtorrent and aria2 speak
//! before (or instead of) the plain BitTorrent handshake, and the RC4 streams
//! it sets up.
//!
//! Two state machines, one per role: [`Initiator`] (A, who dialled) and
//! [`Receiver`] (B, who accepted). Neither does any I/O: bytes read from the
//! socket go in with `feed`, bytes to send come out of `take_output`, and
//! the randomness (the private key, the pad) is passed in, so every step is
//! unit-tested with plain byte strings.
//!
//! The exchange (S is the Diffie-Hellman secret, SKEY the torrent's info
//! hash, `ENCRYPT` RC4 keyed with keyA from A and keyB from B, the first 1024
//! bytes of each keystream discarded; `ENCRYPT2` the method B selected):
//!
//! ```text
//! A→B  Ya, PadA
//! B→A  Yb, PadB
//! A→B  SHA1("req1",S), SHA1("req2",SKEY) xor SHA1("req3",S),
//!      ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! B→A  ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(stream)
//! A→B  ENCRYPT2(stream)
//! ```
//!
//! Bounds: pads are at most [`MAX_PAD`] bytes, so B finds the req1 hash
//! within [`RECEIVER_SYNC_LIMIT`] bytes of the start of A's stream and A
//! finds the encrypted VC within [`INITIATOR_SYNC_LIMIT`] bytes of the start
//! of B's, or gives up: a peer that never sends the marker costs at most that
//! much reading. The initial payload is at most 65,535 bytes (its length is
//! two bytes). Nothing else is buffered.

use num_bigint::BigUint;
use rc4::{consts::U20, KeyInit, StreamCipher};
use thiserror::Error;

use crate::hash::Sha1;
use crate::metainfo::InfoHash;

/// The 768-bit prime of the specification (generator 2).
pub const PRIME: [u8; KEY_LEN] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
    0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
    0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
    0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
    0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
    0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x3A, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
];
/// A public key, the shared secret and the prime are 96 bytes, big-endian.
pub const KEY_LEN: usize = 96;
/// The longest pad (PadA, PadB, PadC, PadD) either side may send.
pub const MAX_PAD: usize = 512;
/// The verification constant: 8 zero bytes, encrypted.
const VC: [u8; 8] = [0; 8];
/// RC4 keystream bytes thrown away before the first one used.
const DISCARD: usize = 1024;
/// B gives up when the req1 hash has not ended within this many bytes of
/// A's stream: Ya (96) + PadA (512) + the hash (20).
pub const RECEIVER_SYNC_LIMIT: usize = KEY_LEN + MAX_PAD + 20;
/// A gives up when the encrypted VC has not ended within this many bytes
/// of B's stream: Yb (96) + PadB (512) + VC (8).
pub const INITIATOR_SYNC_LIMIT: usize = KEY_LEN + MAX_PAD + VC.len();
/// The plain BitTorrent handshake starts with these 20 bytes.
const PLAIN_PREFIX: &[u8; 20] = b"\x13BitTorrent protocol";

/// A crypto method bit of `crypto_provide` / `crypto_select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// 0x01: the stream goes on in plaintext after the handshake.
    Plain,
    /// 0x02: the stream goes on through RC4.
    Rc4,
}

impl Method {
    pub fn bit(self) -> u32 {
        match self {
            Method::Plain => 0x01,
            Method::Rc4 => 0x02,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Plain => "plaintext",
            Method::Rc4 => "RC4",
        })
    }
}

/// Which crypto methods one side offers (A) or accepts (B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods {
    pub plain: bool,
    pub rc4: bool,
}

impl Methods {
    pub const RC4_ONLY: Methods = Methods {
        plain: false,
        rc4: true,
    };
    pub const BOTH: Methods = Methods {
        plain: true,
        rc4: true,
    };

    pub fn bits(self) -> u32 {
        (if self.plain { 0x01 } else { 0 }) | (if self.rc4 { 0x02 } else { 0 })
    }
}

/// The peer's policy for encrypted connections (`--encryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Incoming plain or encrypted; outgoing plain.
    #[default]
    Accept,
    /// Outgoing encrypted first, plain when the peer refuses; incoming both.
    Prefer,
    /// Encrypted (RC4) only, both ways.
    Require,
    /// No MSE at all: incoming encrypted handshakes are closed.
    Off,
}

impl Encryption {
    pub const NAMES: &'static str = "accept, prefer, require or off";

    pub fn parse(s: &str) -> Option<Encryption> {
        match s.trim().to_ascii_lowercase().as_str() {
            "accept" => Some(Encryption::Accept),
            "prefer" => Some(Encryption::Prefer),
            "require" => Some(Encryption::Require),
            "off" => Some(Encryption::Off),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encryption::Accept => "accept",
            Encryption::Prefer => "prefer",
            Encryption::Require => "require",
            Encryption::Off => "off",
        }
    }

    /// The methods accepted from a peer that opens with MSE; `None`: MSE
    /// is refused.
    pub fn inbound_methods(self) -> Option<Methods> {
        match self {
            Encryption::Accept | Encryption::Prefer => Some(Methods::BOTH),
            Encryption::Require => Some(Methods::RC4_ONLY),
            Encryption::Off => None,
        }
    }

    /// The methods offered when dialling; `None`: dial plain.
    pub fn outbound_methods(self) -> Option<Methods> {
        match self {
            Encryption::Prefer => Some(Methods::BOTH),
            Encryption::Require => Some(Methods::RC4_ONLY),
            Encryption::Accept | Encryption::Off => None,
        }
    }

    /// Whether a plain BitTorrent handshake is accepted.
    pub fn allows_plain(self) -> bool {
        self != Encryption::Require
    }
}

/// What the first bytes of an incoming connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// The 20-byte prefix of a plain BitTorrent handshake.
    Plain,
    /// Anything else: an MSE handshake (or garbage, which MSE then rejects).
    Encrypted,
    /// Too few bytes to tell.
    Unknown,
}

/// Tells a plain handshake (byte 19 then "BitTorrent protocol") from an
/// encrypted one by the first bytes read: as soon as one byte differs from
/// the plain prefix, or once the whole prefix is there.
pub fn classify(first: &[u8]) -> Opening {
    let n = first.len().min(PLAIN_PREFIX.len());
    if first[..n] != PLAIN_PREFIX[..n] {
        Opening::Encrypted
    } else if n == PLAIN_PREFIX.len() {
        Opening::Plain
    } else {
        Opening::Unknown
    }
}

/// One direction's RC4 stream, its first 1024 bytes discarded.
pub struct Rc4Stream(rc4::Rc4<U20>);

impl Rc4Stream {
    fn new(key: [u8; 20]) -> Rc4Stream {
        let mut c = rc4::Rc4::<U20>::new(&key.into());
        let mut skip = [0u8; DISCARD];
        c.apply_keystream(&mut skip);
        Rc4Stream(c)
    }

    /// Encrypts or decrypts `buf` in place (RC4 is its own inverse).
    pub fn apply(&mut self, buf: &mut [u8]) {
        self.0.apply_keystream(buf);
    }
}

impl std::fmt::Debug for Rc4Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rc4Stream")
    }
}

/// The two streams of an RC4 connection: ours out, theirs in.
#[derive(Debug)]
pub struct Ciphers {
    pub encrypt: Rc4Stream,
    pub decrypt: Rc4Stream,
}

/// A finished handshake.
#[derive(Debug)]
pub struct Established {
    pub method: Method,
    /// The torrent the connection is for (B: the one whose hash matched).
    pub info_hash: InfoHash,
    /// Stream bytes already received, decrypted: for B the initial payload
    /// then what followed it; for A what followed PadD.
    pub received: Vec<u8>,
    /// `Some` when RC4 was selected: every later byte goes through them.
    pub ciphers: Option<Ciphers>,
}

/// What a `feed` leaves the handshake at.
#[derive(Debug)]
pub enum Status {
    /// More bytes are needed (send `take_output` first).
    Pending,
    Done(Box<Established>),
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MseError {
    #[error("no {what} within {limit} bytes of the peer's stream: not an encrypted BitTorrent handshake")]
    NoSync { what: &'static str, limit: usize },
    #[error("the peer's Diffie-Hellman key is out of range")]
    BadKey,
    #[error("the peer asks for a torrent we do not serve (its obfuscated info hash matches none of ours)")]
    UnknownTorrent,
    #[error("the verification constant does not decrypt to zeros")]
    BadVc,
    #[error("the peer offers crypto methods {offered:#x}, we accept {accepted:#x} (0x01 plaintext, 0x02 RC4)")]
    NoCommonMethod { offered: u32, accepted: u32 },
    #[error("crypto_select {0:#x} is not one method")]
    BadSelect(u32),
    #[error(
        "the peer selected crypto method {selected:#x}, which we did not offer ({offered:#x})"
    )]
    NotOffered { selected: u32, offered: u32 },
    #[error("{which} of {len} bytes (at most {MAX_PAD})")]
    PadTooLong { which: &'static str, len: usize },
    #[error("the handshake already failed or finished")]
    Finished,
}

/// The randomness one side of a handshake uses.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// The Diffie-Hellman private key (160 bits).
    pub private: [u8; 20],
    /// PadA or PadB, sent after the public key (cut to [`MAX_PAD`]).
    pub pad: Vec<u8>,
}

fn sha1_of(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finish_reset()
}

fn to_key(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    // `n` < P, so it fits in 96 bytes.
    let at = KEY_LEN.saturating_sub(bytes.len());
    out[at..].copy_from_slice(&bytes[bytes.len().saturating_sub(KEY_LEN)..]);
    out
}

/// Our key pair.
struct Dh {
    private: BigUint,
    public: [u8; KEY_LEN],
}

impl Dh {
    fn new(private: [u8; 20]) -> Dh {
        let p = BigUint::from_bytes_be(&PRIME);
        let x = BigUint::from_bytes_be(&private);
        let public = to_key(&BigUint::from(2u32).modpow(&x, &p));
        Dh { private: x, public }
    }

    /// The shared secret S with the peer's public key; refuses the keys
    /// 0, 1 and P-1 and up, which would make S guessable.
    fn secret(&self, theirs: &[u8]) -> Result<[u8; KEY_LEN], MseError> {
        let p = BigUint::from_bytes_be(&PRIME);
        let y = BigUint::from_bytes_be(theirs);
        if y <= BigUint::from(1u32) || y >= &p - 1u32 {
            return Err(MseError::BadKey);
        }
        Ok(to_key(&y.modpow(&self.private, &p)))
    }
}

fn first_line(secrets: &Secrets, dh: &Dh) -> Vec<u8> {
    let mut out = dh.public.to_vec();
    out.extend_from_slice(&secrets.pad[..secrets.pad.len().min(MAX_PAD)]);
    out
}

/// Where `pat` first ends within `buf[..limit]`, scanning from `from`.
fn find(buf: &[u8], pat: &[u8], from: usize, limit: usize) -> Option<usize> {
    let end = buf.len().min(limit);
    (from..=end.saturating_sub(pat.len()))
        .find(|&i| i + pat.len() <= end && buf[i..i + pat.len()] == *pat)
        .map(|i| i + pat.len())
}

/// The bounded search for a sync pattern: where it ends in `buf`, `None`
/// while more bytes may still bring it (`scanned` moves on so no byte is
/// searched twice), or [`MseError::NoSync`] once `limit` bytes (of the
/// `total` the standard allows) came without it.
fn sync(
    buf: &[u8],
    pat: &[u8],
    scanned: &mut usize,
    limit: usize,
    total: usize,
    what: &'static str,
) -> Result<Option<usize>, MseError> {
    match find(buf, pat, *scanned, limit) {
        Some(end) => Ok(Some(end)),
        None if buf.len() >= limit => Err(MseError::NoSync { what, limit: total }),
        None => {
            *scanned = buf.len().saturating_sub(pat.len() - 1);
            Ok(None)
        }
    }
}

fn u16_at(b: &[u8]) -> usize {
    u16::from_be_bytes([b[0], b[1]]) as usize
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AStage {
    Key,
    SyncVc,
    Select,
    PadD(usize),
    Failed,
}

/// Side A: the peer that dialled.
pub struct Initiator {
    dh: Dh,
    skey: InfoHash,
    offer: Methods,
    ia: Vec<u8>,
    stage: AStage,
    /// Received bytes not consumed yet.
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Bytes of B's stream consumed before `buf` (for the sync bound).
    consumed: usize,
    /// How far `buf` was searched for the VC already.
    scanned: usize,
    vc: [u8; 8],
    selected: Option<Method>,
    ciphers: Option<Ciphers>,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Initiator({:?})", self.stage)
    }
}

impl Initiator {
    /// Starts a handshake for the torrent `skey`, offering `offer`, with
    /// `ia` (the BitTorrent handshake, or nothing) as the initial payload.
    /// Ya and PadA are ready in `take_output` at once.
    pub fn new(skey: InfoHash, offer: Methods, secrets: Secrets, ia: Vec<u8>) -> Initiator {
        let dh = Dh::new(secrets.private);
        let out = first_line(&secrets, &dh);
        Initiator {
            dh,
            skey,
            offer,
            ia: ia[..ia.len().min(u16::MAX as usize)].to_vec(),
            stage: AStage::Key,
            buf: Vec::new(),
            out,
            consumed: 0,
            scanned: 0,
            vc: [0; 8],
            selected: None,
            ciphers: None,
        }
    }

    /// Bytes to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// What the handshake waits for, for an error when the peer goes away.
    pub fn waiting_for(&self) -> &'static str {
        match self.stage {
            AStage::Key => "the peer's public key",
            AStage::SyncVc => "the peer's verification constant",
            AStage::Select => "the peer's crypto_select",
            AStage::PadD(_) => "the peer's PadD",
            AStage::Failed => "nothing (failed)",
        }
    }

    pub fn feed(&mut self, input: &[u8]) -> Result<Status, MseError> {
        if self.stage == AStage::Failed {
            return Err(MseError::Finished);
        }
        self.buf.extend_from_slice(input);
        let r = self.advance();
        if r.is_err() {
            self.stage = AStage::Failed;
        }
        r
    }

    fn advance(&mut self) -> Result<Status, MseError> {
        loop {
            match self.stage {
                AStage::Key => {
                    if self.buf.len() < KEY_LEN {
                        return Ok(Status::Pending);
                    }
                    let s = self.dh.secret(&self.buf[..KEY_LEN])?;
                    self.take(KEY_LEN);
                    let key_a = sha1_of(&[b"keyA", &s, &self.skey.0]);
                    let key_b = sha1_of(&[b"keyB", &s, &self.skey.0]);
                    let mut encrypt = Rc4Stream::new(key_a);
                    let mut decrypt = Rc4Stream::new(key_b);
                    self.vc = VC;
                    decrypt.apply(&mut self.vc);
                    let req1 = sha1_of(&[b"req1", &s]);
                    let req2 = sha1_of(&[b"req2", &self.skey.0]);
                    let req3 = sha1_of(&[b"req3", &s]);
                    self.out.extend_from_slice(&req1);
                    self.out
                        .extend(req2.iter().zip(req3.iter()).map(|(a, b)| a ^ b));
                    let mut plain = VC.to_vec();
                    plain.extend_from_slice(&self.offer.bits().to_be_bytes());
                    plain.extend_from_slice(&0u16.to_be_bytes()); // len(PadC)
                    plain.extend_from_slice(&(self.ia.len() as u16).to_be_bytes());
                    plain.extend_from_slice(&self.ia);
                    encrypt.apply(&mut plain);
                    self.out.extend_from_slice(&plain);
                    self.ciphers = Some(Ciphers { encrypt, decrypt });
                    self.stage = AStage::SyncVc;
                }
                AStage::SyncVc => {
                    let limit = INITIATOR_SYNC_LIMIT - self.consumed;
                    let what = "encrypted verification constant";
                    let total = INITIATOR_SYNC_LIMIT;
                    let Some(end) =
                        sync(&self.buf, &self.vc, &mut self.scanned, limit, total, what)?
                    else {
                        return Ok(Status::Pending);
                    };
                    self.take(end);
                    self.stage = AStage::Select;
                }
                AStage::Select => {
                    if self.buf.len() < 6 {
                        return Ok(Status::Pending);
                    }
                    let mut head = [0u8; 6];
                    head.copy_from_slice(&self.buf[..6]);
                    self.decrypt(&mut head);
                    self.take(6);
                    let select = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                    let method = match select {
                        0x01 => Method::Plain,
                        0x02 => Method::Rc4,
                        other => return Err(MseError::BadSelect(other)),
                    };
                    if self.offer.bits() & select == 0 {
                        return Err(MseError::NotOffered {
                            selected: select,
                            offered: self.offer.bits(),
                        });
                    }
                    let pad = u16_at(&head[4..]);
                    if pad > MAX_PAD {
                        return Err(MseError::PadTooLong {
                            which: "PadD",
                            len: pad,
                        });
                    }
                    self.selected = Some(method);
                    self.stage = AStage::PadD(pad);
                }
                AStage::PadD(n) => {
                    if self.buf.len() < n {
                        return Ok(Status::Pending);
                    }
                    let mut pad = self.buf[..n].to_vec();
                    self.decrypt(&mut pad);
                    self.take(n);
                    let method = self.selected.unwrap_or(Method::Rc4);
                    let mut received = std::mem::take(&mut self.buf);
                    let ciphers = match method {
                        Method::Rc4 => {
                            let mut c = self.ciphers.take();
                            if let Some(c) = c.as_mut() {
                                c.decrypt.apply(&mut received);
                            }
                            c
                        }
                        Method::Plain => None,
                    };
                    self.stage = AStage::Failed;
                    return Ok(Status::Done(Box::new(Established {
                        method,
                        info_hash: self.skey,
                        received,
                        ciphers,
                    })));
                }
                AStage::Failed => return Err(MseError::Finished),
            }
        }
    }

    fn take(&mut self, n: usize) {
        self.buf.drain(..n);
        self.consumed += n;
        self.scanned = 0;
    }

    fn decrypt(&mut self, b: &mut [u8]) {
        if let Some(c) = self.ciphers.as_mut() {
            c.decrypt.apply(b);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BStage {
    Key,
    SyncReq1,
    Skey,
    Provide,
    PadC(usize),
    Ia(usize),
    Failed,
}

/// Side B: the peer that accepted the connection.
pub struct Receiver {
    dh: Dh,
    accept: Methods,
    /// The info hashes we serve, each with its SHA1("req2", hash).
    served: Vec<(InfoHash, [u8; 20])>,
    secrets_pad: Vec<u8>,
    stage: BStage,
    buf: Vec<u8>,
    out: Vec<u8>,
    consumed: usize,
    scanned: usize,
    secret: [u8; KEY_LEN],
    req1: [u8; 20],
    skey: Option<InfoHash>,
    selected: Option<Method>,
    ciphers: Option<Ciphers>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Receiver({:?})", self.stage)
    }
}

impl Receiver {
    /// Answers a handshake for one of the torrents `served`, accepting
    /// `accept` (RC4 chosen when both sides allow it).
    pub fn new(served: &[InfoHash], accept: Methods, secrets: Secrets) -> Receiver {
        let pad = secrets.pad[..secrets.pad.len().min(MAX_PAD)].to_vec();
        Receiver {
            dh: Dh::new(secrets.private),
            accept,
            served: served
                .iter()
                .map(|h| (*h, sha1_of(&[b"req2", &h.0])))
                .collect(),
            secrets_pad: pad,
            stage: BStage::Key,
            buf: Vec::new(),
            out: Vec::new(),
            consumed: 0,
            scanned: 0,
            secret: [0; KEY_LEN],
            req1: [0; 20],
            skey: None,
            selected: None,
            ciphers: None,
        }
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn waiting_for(&self) -> &'static str {
        match self.stage {
            BStage::Key => "the peer's public key",
            BStage::SyncReq1 => "the peer's req1 hash",
            BStage::Skey => "the peer's obfuscated info hash",
            BStage::Provide => "the peer's crypto_provide",
            BStage::PadC(_) => "the peer's PadC",
            BStage::Ia(_) => "the peer's initial payload",
            BStage::Failed => "nothing (failed)",
        }
    }

    pub fn feed(&mut self, input: &[u8]) -> Result<Status, MseError> {
        if self.stage == BStage::Failed {
            return Err(MseError::Finished);
        }
        self.buf.extend_from_slice(input);
        let r = self.advance();
        if r.is_err() {
            self.stage = BStage::Failed;
        }
        r
    }

    fn advance(&mut self) -> Result<Status, MseError> {
        loop {
            match self.stage {
                BStage::Key => {
                    if self.buf.len() < KEY_LEN {
                        return Ok(Status::Pending);
                    }
                    self.secret = self.dh.secret(&self.buf[..KEY_LEN])?;
                    self.take(KEY_LEN);
                    self.req1 = sha1_of(&[b"req1", &self.secret]);
                    self.out.extend_from_slice(&self.dh.public);
                    self.out.extend_from_slice(&self.secrets_pad);
                    self.stage = BStage::SyncReq1;
                }
                BStage::SyncReq1 => {
                    let limit = RECEIVER_SYNC_LIMIT - self.consumed;
                    let (total, what) = (RECEIVER_SYNC_LIMIT, "req1 hash");
                    let Some(end) =
                        sync(&self.buf, &self.req1, &mut self.scanned, limit, total, what)?
                    else {
                        return Ok(Status::Pending);
                    };
                    self.take(end);
                    self.stage = BStage::Skey;
                }
                BStage::Skey => {
                    if self.buf.len() < 20 {
                        return Ok(Status::Pending);
                    }
                    let req3 = sha1_of(&[b"req3", &self.secret]);
                    let mut req2 = [0u8; 20];
                    for (i, b) in req2.iter_mut().enumerate() {
                        *b = self.buf[i] ^ req3[i];
                    }
                    self.take(20);
                    let skey = self
                        .served
                        .iter()
                        .find(|(_, h)| *h == req2)
                        .map(|(ih, _)| *ih)
                        .ok_or(MseError::UnknownTorrent)?;
                    let key_a = sha1_of(&[b"keyA", &self.secret, &skey.0]);
                    let key_b = sha1_of(&[b"keyB", &self.secret, &skey.0]);
                    self.ciphers = Some(Ciphers {
                        encrypt: Rc4Stream::new(key_b),
                        decrypt: Rc4Stream::new(key_a),
                    });
                    self.skey = Some(skey);
                    self.stage = BStage::Provide;
                }
                BStage::Provide => {
                    if self.buf.len() < 14 {
                        return Ok(Status::Pending);
                    }
                    let mut head = [0u8; 14];
                    head.copy_from_slice(&self.buf[..14]);
                    self.decrypt(&mut head);
                    self.take(14);
                    if head[..8] != VC {
                        return Err(MseError::BadVc);
                    }
                    let offered = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
                    let both = offered & self.accept.bits();
                    let method = if both & 0x02 != 0 {
                        Method::Rc4
                    } else if both & 0x01 != 0 {
                        Method::Plain
                    } else {
                        return Err(MseError::NoCommonMethod {
                            offered,
                            accepted: self.accept.bits(),
                        });
                    };
                    let pad = u16_at(&head[12..]);
                    if pad > MAX_PAD {
                        return Err(MseError::PadTooLong {
                            which: "PadC",
                            len: pad,
                        });
                    }
                    self.selected = Some(method);
                    self.stage = BStage::PadC(pad);
                }
                BStage::PadC(n) => {
                    if self.buf.len() < n + 2 {
                        return Ok(Status::Pending);
                    }
                    let mut pad = self.buf[..n + 2].to_vec();
                    self.decrypt(&mut pad);
                    self.take(n + 2);
                    self.stage = BStage::Ia(u16_at(&pad[n..]));
                }
                BStage::Ia(n) => {
                    if self.buf.len() < n {
                        return Ok(Status::Pending);
                    }
                    let mut received = std::mem::take(&mut self.buf);
                    let method = self.selected.unwrap_or(Method::Rc4);
                    let Some(mut c) = self.ciphers.take() else {
                        return Err(MseError::Finished);
                    };
                    // IA is always RC4; what follows it, the method's.
                    let ia_end = match method {
                        Method::Rc4 => received.len(),
                        Method::Plain => n,
                    };
                    c.decrypt.apply(&mut received[..ia_end]);
                    let mut answer = VC.to_vec();
                    answer.extend_from_slice(&method.bit().to_be_bytes());
                    answer.extend_from_slice(&0u16.to_be_bytes()); // len(PadD)
                    c.encrypt.apply(&mut answer);
                    self.out.extend_from_slice(&answer);
                    self.stage = BStage::Failed;
                    return Ok(Status::Done(Box::new(Established {
                        method,
                        info_hash: self.skey.unwrap_or(InfoHash([0; 20])),
                        received,
                        ciphers: (method == Method::Rc4).then_some(c),
                    })));
                }
                BStage::Failed => return Err(MseError::Finished),
            }
        }
    }

    fn take(&mut self, n: usize) {
        self.buf.drain(..n);
        self.consumed += n;
        self.scanned = 0;
    }

    fn decrypt(&mut self, b: &mut [u8]) {
        if let Some(c) = self.ciphers.as_mut() {
            c.decrypt.apply(b);
        }
    }
}

#[cfg(test)]
mod tests;
