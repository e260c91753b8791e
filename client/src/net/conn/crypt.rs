//! Connection setup below the BitTorrent handshake: the socket with a
//! deadline, the MSE/PE handshake (the state machines of
//! `minitorrent_common::mse`, driven here over blocking reads), and what it
//! leaves behind: bytes already read and, when RC4 was selected, the two
//! RC4 streams that every later byte goes through ([`Link`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::mse::{
    self, Ciphers, Established, Initiator, Method, Methods, Opening, Receiver, Secrets, Status,
};

use crate::core::msg::ConnError;

/// Bytes asked of the socket at a time during the setup: a plain
/// handshake never reads past itself (see `Link::read_exact`), and an MSE
/// handshake's reads are bounded by its own limits plus one read.
const SETUP_READ: usize = 4096;

/// A connection during setup: the socket, the stream bytes read but not
/// used yet (decrypted), and the RC4 streams once MSE selected RC4.
pub(super) struct Link {
    pub s: TcpStream,
    pub pending: Vec<u8>,
    pub ciphers: Option<Ciphers>,
    pub deadline: Instant,
    /// The method MSE settled on; `None` for a plain connection.
    pub mse: Option<Method>,
    /// The torrent MSE named (its SKEY); the BitTorrent handshake after it
    /// must name the same.
    pub skey: Option<InfoHash>,
}

/// What the peer's socket gave, within the deadline.
fn read_raw(
    s: &mut TcpStream,
    deadline: Instant,
    buf: &mut [u8],
    doing: &str,
) -> Result<usize, ConnError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnError::Handshake(format!(
                "{doing}: no answer within {:?}",
                super::HANDSHAKE_TIMEOUT
            )));
        }
        s.set_read_timeout(Some(left))?;
        match s.read(buf) {
            // Closed before the handshake was through: what a peer that
            // accepts only encrypted connections does to a plain one (and a
            // plain-only peer to an encrypted one).
            Ok(0) => return Err(ConnError::HandshakeClosed),
            Ok(n) => return Ok(n),
            // A timeout goes round the loop, which reports the deadline.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Err(ConnError::HandshakeClosed)
            }
            Err(e) => return Err(ConnError::Handshake(format!("{doing}: {e}"))),
        }
    }
}

impl Link {
    pub fn plain(s: TcpStream, deadline: Instant, pending: Vec<u8>) -> Link {
        Link {
            s,
            pending,
            ciphers: None,
            deadline,
            mse: None,
            skey: None,
        }
    }

    fn established(s: TcpStream, deadline: Instant, e: Established) -> Link {
        Link {
            s,
            pending: e.received,
            ciphers: e.ciphers,
            deadline,
            mse: Some(e.method),
            skey: Some(e.info_hash),
        }
    }

    /// Exactly `n` stream bytes (decrypted), no more read from the socket
    /// than needed when the stream is plain.
    pub fn read_exact(&mut self, n: usize, doing: &str) -> Result<Vec<u8>, ConnError> {
        while self.pending.len() < n {
            let want = n - self.pending.len();
            let mut buf = vec![0u8; want];
            let got = read_raw(&mut self.s, self.deadline, &mut buf, doing)?;
            let got = &mut buf[..got];
            if let Some(c) = self.ciphers.as_mut() {
                c.decrypt.apply(got);
            }
            self.pending.extend_from_slice(got);
        }
        Ok(self.pending.drain(..n).collect())
    }

    /// Sends stream bytes (encrypted when RC4 was selected).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let mut out = bytes.to_vec();
        if let Some(c) = self.ciphers.as_mut() {
            c.encrypt.apply(&mut out);
        }
        self.s.write_all(&out)?;
        Ok(())
    }

    /// The trace and log words for how the connection is carried.
    pub fn describe(&self) -> &'static str {
        match self.mse {
            None => "plaintext (no MSE)",
            Some(Method::Rc4) => "encrypted (RC4)",
            Some(Method::Plain) => "plaintext after MSE",
        }
    }
}

/// Our randomness for one handshake. MSE is obfuscation against traffic
/// shaping, not secrecy against an attacker, so the process's fast PRNG is
/// enough; the pad is 0–512 bytes as the specification allows.
fn secrets() -> Secrets {
    let mut private = [0u8; 20];
    fastrand::fill(&mut private);
    let len = fastrand::usize(0..=mse::MAX_PAD);
    let mut pad = vec![0u8; len];
    fastrand::fill(&mut pad);
    Secrets { private, pad }
}

/// Dials side A of MSE on a connected socket for `info_hash`, offering
/// `offer`, with `ia` (our BitTorrent handshake) as the initial payload.
pub(super) fn initiate(
    mut s: TcpStream,
    deadline: Instant,
    info_hash: InfoHash,
    offer: Methods,
    ia: &[u8],
) -> Result<Link, ConnError> {
    let mut a = Initiator::new(info_hash, offer, secrets(), ia.to_vec());
    s.write_all(&a.take_output())?;
    let mut buf = vec![0u8; SETUP_READ];
    loop {
        let doing = format!("the encryption handshake (waiting for {})", a.waiting_for());
        let n = read_raw(&mut s, deadline, &mut buf, &doing)?;
        let status = a
            .feed(&buf[..n])
            .map_err(|e| ConnError::Handshake(format!("encryption handshake: {e}")))?;
        let out = a.take_output();
        if !out.is_empty() {
            s.write_all(&out)?;
        }
        if let Status::Done(e) = status {
            return Ok(Link::established(s, deadline, *e));
        }
    }
}

/// Answers side B of MSE: `first` are the bytes already read (which told
/// an encrypted handshake from a plain one), `served` the info hashes the
/// peer may ask for, `accept` the methods allowed.
pub(super) fn respond(
    mut s: TcpStream,
    deadline: Instant,
    first: &[u8],
    served: &[InfoHash],
    accept: Methods,
) -> Result<Link, ConnError> {
    let mut b = Receiver::new(served, accept, secrets());
    let mut status = b
        .feed(first)
        .map_err(|e| ConnError::Handshake(format!("encryption handshake: {e}")))?;
    let mut buf = vec![0u8; SETUP_READ];
    loop {
        let out = b.take_output();
        if !out.is_empty() {
            s.write_all(&out)?;
        }
        if let Status::Done(e) = status {
            return Ok(Link::established(s, deadline, *e));
        }
        let doing = format!("the encryption handshake (waiting for {})", b.waiting_for());
        let n = read_raw(&mut s, deadline, &mut buf, &doing)?;
        status = b
            .feed(&buf[..n])
            .map_err(|e| ConnError::Handshake(format!("encryption handshake: {e}")))?;
    }
}

/// Reads the first bytes of an accepted connection until they tell a plain
/// BitTorrent handshake from an encrypted one (at most 20 bytes, so that a
/// plain handshake is never read past).
pub(super) fn opening(
    s: &mut TcpStream,
    deadline: Instant,
) -> Result<(Opening, Vec<u8>), ConnError> {
    let mut first = [0u8; 20];
    let mut got = 0;
    loop {
        let n = read_raw(s, deadline, &mut first[got..], "the handshake")?;
        got += n;
        match mse::classify(&first[..got]) {
            Opening::Unknown => {}
            o => return Ok((o, first[..got].to_vec())),
        }
    }
}
