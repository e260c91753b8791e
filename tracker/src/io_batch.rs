//! Batched datagram I/O: up to [`BATCH`] datagrams per system call.
//!
//! On Linux this is `recvmmsg`/`sendmmsg`, which halves the tracker's cost per
//! request under load (the per-call overhead dominates for small datagrams).
//! Elsewhere it falls back to one `recv_from`/`send_to` per datagram with the
//! same interface. Buffers are allocated once per worker and reused.

use std::io;
use std::net::SocketAddr;

use minitorrent_common::tracker_proto::MAX_DATAGRAM_SIZE;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// One receive slot: a byte more than the largest datagram we accept, so an
/// oversized one shows up as too large instead of silently cut.
const SLOT: usize = MAX_DATAGRAM_SIZE + 1;

#[cfg(target_os = "linux")]
pub use linux::{RecvBatch, SendBatch};

#[cfg(not(target_os = "linux"))]
pub use portable::{RecvBatch, SendBatch};

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    /// Datagrams received by one `recvmmsg` call.
    pub struct RecvBatch {
        bufs: Vec<u8>,
        lens: [usize; BATCH],
        addrs: Box<[libc::sockaddr_storage; BATCH]>,
        addr_lens: [libc::socklen_t; BATCH],
        count: usize,
    }

    /// Replies queued for one `sendmmsg` call.
    pub struct SendBatch {
        outs: Vec<Vec<u8>>,
        addrs: Box<[libc::sockaddr_storage; BATCH]>,
        addr_lens: [libc::socklen_t; BATCH],
        count: usize,
        /// Replies the kernel refused (full buffer, unreachable, ...).
        pub dropped: u64,
    }

    impl Default for RecvBatch {
        fn default() -> RecvBatch {
            RecvBatch {
                // Zeroed memory comes lazily from the OS: only touched pages
                // become resident.
                bufs: vec![0; BATCH * SLOT],
                lens: [0; BATCH],
                // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
                addrs: Box::new(unsafe { zeroed() }),
                addr_lens: [0; BATCH],
                count: 0,
            }
        }
    }

    impl RecvBatch {
        /// Receives up to BATCH datagrams without blocking. Returns how many
        /// (`WouldBlock` when there were none).
        pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
            // SAFETY: all-zero iovec/mmsghdr are valid; every pointer set below
            // points into buffers owned by `self` that outlive the call and are
            // not otherwise accessed during it.
            let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
            let base = self.bufs.as_mut_ptr();
            for i in 0..BATCH {
                iovs[i].iov_base = unsafe { base.add(i * SLOT) }.cast();
                iovs[i].iov_len = SLOT;
                let h = &mut hdrs[i].msg_hdr;
                h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_iov = &mut iovs[i];
                h.msg_iovlen = 1;
            }
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                self.count = 0;
                return Err(io::Error::last_os_error());
            }
            self.count = n as usize;
            for (i, h) in hdrs.iter().take(self.count).enumerate() {
                self.lens[i] = h.msg_len as usize;
                if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    // Cut to SLOT bytes: the decoder reports it as too large.
                    self.lens[i] = SLOT;
                }
                self.addr_lens[i] = h.msg_hdr.msg_namelen;
            }
            Ok(self.count)
        }

        /// Datagram `i` of the last `recv`: its source and bytes.
        pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
            if i >= self.count {
                return None;
            }
            let addr = to_socket_addr(&self.addrs[i])?;
            Some((addr, &self.bufs[i * SLOT..i * SLOT + self.lens[i]]))
        }
    }

    fn to_socket_addr(st: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(st.ss_family) {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
                let a =
                    unsafe { &*(st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
                let a =
                    unsafe { &*(st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    impl Default for SendBatch {
        fn default() -> SendBatch {
            SendBatch {
                outs: (0..BATCH).map(|_| Vec::with_capacity(2048)).collect(),
                // SAFETY: as above.
                addrs: Box::new(unsafe { zeroed() }),
                addr_lens: [0; BATCH],
                count: 0,
                dropped: 0,
            }
        }
    }

    impl SendBatch {
        /// The buffer for the next reply (empty). Call [`commit`](Self::commit)
        /// to queue it; otherwise it is reused.
        pub fn next_buf(&mut self) -> &mut Vec<u8> {
            let b = &mut self.outs[self.count];
            b.clear();
            b
        }

        /// Queues the reply written into `next_buf` for the source of datagram
        /// `i` of `from`, sending the batch first when it is full.
        pub fn commit(&mut self, from: &RecvBatch, i: usize, socket: &impl AsRawFd) {
            self.addrs[self.count] = from.addrs[i];
            self.addr_lens[self.count] = from.addr_lens[i];
            self.count += 1;
            if self.count == BATCH {
                self.flush(socket);
            }
        }

        /// Sends every queued reply. A reply the kernel refuses is dropped:
        /// UDP peers retry.
        pub fn flush(&mut self, socket: &impl AsRawFd) {
            let count = self.count;
            self.count = 0;
            if count == 0 {
                return;
            }
            // SAFETY: as in RecvBatch::recv; the pointers target `self.outs`
            // and `self.addrs`, untouched during the call.
            let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
            for i in 0..count {
                iovs[i].iov_base = self.outs[i].as_mut_ptr().cast();
                iovs[i].iov_len = self.outs[i].len();
                let h = &mut hdrs[i].msg_hdr;
                h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = self.addr_lens[i];
                h.msg_iov = &mut iovs[i];
                h.msg_iovlen = 1;
            }
            let mut sent = 0;
            while sent < count {
                let n = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        hdrs[sent..].as_mut_ptr(),
                        (count - sent) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n > 0 {
                    sent += n as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => {
                        self.dropped += (count - sent) as u64;
                        return;
                    }
                    _ => {
                        // This one reply failed (e.g. unreachable); go on.
                        log::debug!("reply not sent: {e}");
                        self.dropped += 1;
                        sent += 1;
                    }
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod portable {
    use super::*;
    use mio::net::UdpSocket;

    pub struct RecvBatch {
        buf: Vec<u8>,
        len: usize,
        addr: Option<SocketAddr>,
    }

    pub struct SendBatch {
        out: Vec<u8>,
        pub dropped: u64,
    }

    impl Default for RecvBatch {
        fn default() -> RecvBatch {
            RecvBatch {
                buf: vec![0; SLOT],
                len: 0,
                addr: None,
            }
        }
    }

    impl RecvBatch {
        pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
            let (n, addr) = socket.recv_from(&mut self.buf)?;
            self.len = n;
            self.addr = Some(addr);
            Ok(1)
        }

        pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
            match (i, self.addr) {
                (0, Some(a)) => Some((a, &self.buf[..self.len])),
                _ => None,
            }
        }
    }

    impl Default for SendBatch {
        fn default() -> SendBatch {
            SendBatch {
                out: Vec::with_capacity(2048),
                dropped: 0,
            }
        }
    }

    impl SendBatch {
        pub fn next_buf(&mut self) -> &mut Vec<u8> {
            self.out.clear();
            &mut self.out
        }

        pub fn commit(&mut self, from: &RecvBatch, i: usize, socket: &UdpSocket) {
            if let Some((addr, _)) = from.get(i) {
                if socket.send_to(&self.out, addr).is_err() {
                    self.dropped += 1;
                }
            }
        }

        pub fn flush(&mut self, _socket: &UdpSocket) {}
    }
}

/// A read or write that only timed out, would block or was interrupted: try
/// again (the caller checks its own deadline).
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
