//! Batched UDP receive and send for the DNS receive loop: many datagrams
//! per system call (`recvmmsg`/`sendmmsg` on Linux).
//!
//! Owns: the per-socket datagram slots (buffers and peer addresses), the
//! replies queued for one batch, and the two system calls. Must not look
//! inside packets (server.rs and hot.rs do).
//!
//! Why: a hot answer costs a few microseconds of our own work, so under
//! load the per-datagram system calls (entry, file lookup, readiness
//! bookkeeping) were most of the time spent per query. Reading every
//! queued datagram with one call and writing all their replies with one
//! more leaves the per-datagram cost to the network stack itself.
//! Elsewhere (no batched calls) a batch is one datagram, read and written
//! with the ordinary calls.

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams read per receive call. Under load the socket queue holds many
/// queries; a batch this size keeps the per-call cost small without
/// holding one socket's replies back long.
#[cfg(target_os = "linux")]
pub const BATCH: usize = 32;
#[cfg(not(target_os = "linux"))]
pub const BATCH: usize = 1;
/// A slot holds the largest datagram, as the one-at-a-time loop's buffer did.
const SLOT_BYTES: usize = 65535;

/// Receive slots and queued replies of one socket.
pub struct Batch {
    /// `BATCH` slots of `SLOT_BYTES` in one allocation (large enough to be
    /// mapped on demand: only the pages datagrams land in become resident).
    data: Vec<u8>,
    lens: [usize; BATCH],
    peers: [Option<SocketAddr>; BATCH],
    #[cfg(target_os = "linux")]
    raw: linux::Raw,
    /// Replies queued for sending: bytes, and the slot whose sender gets them.
    out: Vec<Vec<u8>>,
    out_slot: Vec<usize>,
    out_len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            data: vec![0u8; BATCH * SLOT_BYTES],
            lens: [0; BATCH],
            peers: [None; BATCH],
            #[cfg(target_os = "linux")]
            raw: linux::Raw::default(),
            out: Vec::new(),
            out_slot: Vec::new(),
            out_len: 0,
        }
    }
}

impl Batch {
    /// Reads the datagrams already queued on `socket` (at least one, at most
    /// `BATCH`) without waiting; `WouldBlock` when there are none (tokio
    /// then waits for readability again).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.out_len = 0;
        socket.try_io(Interest::READABLE, || self.recv_now(socket))
    }

    #[cfg(target_os = "linux")]
    fn recv_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let n = self.raw.recv(socket.as_raw_fd(), &mut self.data, SLOT_BYTES, &mut self.lens)?;
        for i in 0..n {
            if let Some(p) = self.peers.get_mut(i) {
                *p = self.raw.peer(i);
            }
        }
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let buf = self.data.get_mut(..SLOT_BYTES).unwrap_or_default();
        let (len, peer) = socket.try_recv_from(buf)?;
        self.lens[0] = len;
        self.peers[0] = Some(peer);
        Ok(1)
    }

    /// Datagram `i` of the last receive and its sender (None when the
    /// address was of no family we know).
    pub fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let len = self.lens.get(i).copied().unwrap_or(0).min(SLOT_BYTES);
        let start = i * SLOT_BYTES;
        (self.data.get(start..start + len).unwrap_or_default(), self.peers.get(i).copied().flatten())
    }

    /// Queues `reply` for the sender of datagram `slot`.
    pub fn queue_reply(&mut self, slot: usize, reply: &[u8]) {
        if self.out.len() <= self.out_len {
            self.out.push(Vec::with_capacity(512));
            self.out_slot.push(0);
        }
        if let (Some(buf), Some(s)) = (self.out.get_mut(self.out_len), self.out_slot.get_mut(self.out_len)) {
            buf.clear();
            buf.extend_from_slice(reply);
            *s = slot;
            self.out_len += 1;
        }
    }

    /// Sends every queued reply: as many as the socket takes at once, the
    /// rest one by one, waiting for room as the one-at-a-time loop did. A
    /// reply that fails is logged by `failed` and skipped.
    pub async fn flush(&mut self, socket: &UdpSocket, failed: impl Fn(Option<SocketAddr>, &io::Error)) {
        let mut sent = 0;
        #[cfg(target_os = "linux")]
        while sent < self.out_len {
            use std::os::fd::AsRawFd;
            let (out, slots) = (&self.out, &self.out_slot);
            let pending = (out.get(sent..self.out_len), slots.get(sent..self.out_len));
            let (Some(bufs), Some(to)) = pending else { break };
            let raw = &mut self.raw;
            match socket.try_io(Interest::WRITABLE, || raw.send(socket.as_raw_fd(), bufs, to)) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // The first pending reply failed (its destination, not
                    // the socket): skip it, as a failed send_to is skipped.
                    let slot = slots.get(sent).copied().unwrap_or(0);
                    failed(self.peers.get(slot).copied().flatten(), &e);
                    sent += 1;
                }
            }
        }
        // Whatever is left waits for room, one datagram at a time.
        for k in sent..self.out_len {
            let (Some(buf), Some(&slot)) = (self.out.get(k), self.out_slot.get(k)) else { continue };
            let Some(peer) = self.peers.get(slot).copied().flatten() else { continue };
            if let Err(e) = socket.send_to(buf, peer).await {
                failed(Some(peer), &e);
            }
        }
        self.out_len = 0;
    }
}

#[cfg(target_os = "linux")]
mod linux {
    //! The `recvmmsg`/`sendmmsg` calls. The headers point into the
    //! `Batch`'s buffers and into `Raw` itself, so they are rebuilt before
    //! every call rather than kept (nothing self-referential survives a
    //! move).

    use std::io;
    use std::net::SocketAddr;
    use std::os::fd::RawFd;

    use super::BATCH;

    pub struct Raw {
        addrs: [libc::sockaddr_storage; BATCH],
        addr_lens: [libc::socklen_t; BATCH],
        iovs: [libc::iovec; BATCH],
        hdrs: [libc::mmsghdr; BATCH],
    }

    // SAFETY: the raw pointers inside the headers are rebuilt before every
    // call and only dereferenced by the kernel during it; between calls they
    // are dead values, so moving `Raw` to another thread is harmless.
    unsafe impl Send for Raw {}

    impl Default for Raw {
        fn default() -> Self {
            // SAFETY: all four are plain C structs/arrays for which all-zero
            // bytes are a valid (empty) value.
            unsafe { std::mem::zeroed() }
        }
    }

    const STORAGE_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

    impl Raw {
        /// Reads up to `BATCH` datagrams into consecutive `slot`-byte slots
        /// of `data`; fills `lens` and the peer addresses.
        pub fn recv(
            &mut self,
            fd: RawFd,
            data: &mut [u8],
            slot: usize,
            lens: &mut [usize; BATCH],
        ) -> io::Result<usize> {
            let slots = (data.len() / slot).min(BATCH);
            let base = data.as_mut_ptr();
            // Raw pointers taken once: the headers keep them across the loop.
            let (addrs, iovs) = (self.addrs.as_mut_ptr(), self.iovs.as_mut_ptr());
            for (i, (hdr, alen)) in
                self.hdrs.iter_mut().zip(self.addr_lens.iter_mut()).take(slots).enumerate()
            {
                // SAFETY: i < slots <= BATCH, so the element pointers are in
                // bounds of their arrays and [i*slot, (i+1)*slot) of `data`.
                let (iov, addr) = unsafe { (iovs.add(i), addrs.add(i)) };
                unsafe {
                    (*iov).iov_base = base.add(i * slot).cast();
                    (*iov).iov_len = slot;
                }
                *alen = STORAGE_LEN;
                hdr.msg_hdr = header(addr.cast(), STORAGE_LEN, iov);
                hdr.msg_len = 0;
            }
            // SAFETY: the first `slots` headers point at live buffers of the
            // stated sizes (`data`, `self.addrs`, `self.iovs`) that outlive
            // the call; the socket is non-blocking so the call never waits.
            let n = unsafe {
                libc::recvmmsg(fd, self.hdrs.as_mut_ptr(), slots as libc::c_uint, 0, std::ptr::null_mut())
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = (n as usize).min(slots);
            for i in 0..n {
                if let (Some(len), Some(hdr), Some(alen)) =
                    (lens.get_mut(i), self.hdrs.get(i), self.addr_lens.get_mut(i))
                {
                    *len = (hdr.msg_len as usize).min(slot);
                    *alen = hdr.msg_hdr.msg_namelen;
                }
            }
            Ok(n)
        }

        /// The sender of datagram `i` of the last `recv`.
        pub fn peer(&self, i: usize) -> Option<SocketAddr> {
            let (addr, len) = (self.addrs.get(i)?, *self.addr_lens.get(i)? as usize);
            let storage: *const libc::sockaddr_storage = addr;
            match i32::from(addr.ss_family) {
                libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
                    // SAFETY: the kernel wrote a sockaddr_in (family and
                    // length checked); the storage is large and aligned enough.
                    let a = unsafe { &*storage.cast::<libc::sockaddr_in>() };
                    let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
                }
                libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
                    // SAFETY: as above, for a sockaddr_in6.
                    let a = unsafe { &*storage.cast::<libc::sockaddr_in6>() };
                    let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                        ip,
                        u16::from_be(a.sin6_port),
                        a.sin6_flowinfo,
                        a.sin6_scope_id,
                    )))
                }
                _ => None,
            }
        }

        /// Sends `bufs[k]` to the sender of slot `to[k]`, as many as the
        /// socket takes in one call; returns how many went.
        pub fn send(&mut self, fd: RawFd, bufs: &[Vec<u8>], to: &[usize]) -> io::Result<usize> {
            let count = bufs.len().min(to.len()).min(BATCH);
            let (addrs, iovs) = (self.addrs.as_mut_ptr(), self.iovs.as_mut_ptr());
            let mut ready = 0;
            for ((buf, &slot), hdr) in bufs.iter().zip(to).zip(self.hdrs.iter_mut()).take(count) {
                let Some(&alen) = self.addr_lens.get(slot) else { break };
                // SAFETY: `slot` indexes `addr_lens`, which has BATCH entries
                // like `addrs`; `ready` < count <= BATCH.
                let (iov, addr) = unsafe { (iovs.add(ready), addrs.add(slot)) };
                unsafe {
                    (*iov).iov_base = buf.as_ptr().cast_mut().cast();
                    (*iov).iov_len = buf.len();
                }
                hdr.msg_hdr = header(addr.cast(), alen, iov);
                hdr.msg_len = 0;
                ready += 1;
            }
            if ready == 0 {
                return Ok(0);
            }
            // SAFETY: the first `ready` headers point at the reply buffers
            // (only read by the kernel) and at peer addresses the kernel
            // wrote, all alive for the call; the socket is non-blocking.
            let n = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), ready as libc::c_uint, 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok((n as usize).min(ready))
        }
    }

    fn header(name: *mut libc::c_void, name_len: libc::socklen_t, iov: *mut libc::iovec) -> libc::msghdr {
        // SAFETY: msghdr is a plain C struct; all-zero is a valid empty value
        // (it has private padding fields on some targets, hence no literal).
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        h.msg_name = name;
        h.msg_namelen = name_len;
        h.msg_iov = iov;
        h.msg_iovlen = 1;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn pair() -> (UdpSocket, UdpSocket) {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        (server, client)
    }

    /// Reads at least `want` datagrams (several calls if the kernel hands
    /// them out in smaller batches), echoing each reversed to its sender.
    async fn echo(server: &UdpSocket, batch: &mut Batch, want: usize) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut got = Vec::new();
        while got.len() < want {
            tokio::time::timeout(Duration::from_secs(5), server.readable()).await.unwrap().unwrap();
            let n = match batch.recv(server) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            };
            assert!((1..=BATCH).contains(&n));
            for i in 0..n {
                let (bytes, peer) = batch.datagram(i);
                let (bytes, peer) = (bytes.to_vec(), peer.unwrap());
                let reply: Vec<u8> = bytes.iter().rev().copied().collect();
                batch.queue_reply(i, &reply);
                got.push((bytes, peer));
            }
            batch.flush(server, |_, e| panic!("send failed: {e}")).await;
        }
        got
    }

    #[tokio::test]
    async fn reads_queued_datagrams_in_batches_and_answers_each_sender() {
        let (server, client) = pair().await;
        let (_, other) = pair().await;
        let to = server.local_addr().unwrap();
        let total = BATCH * 2 + 3;
        for k in 0..total {
            let from = if k % 2 == 0 { &client } else { &other };
            from.send_to(format!("query-{k}").as_bytes(), to).await.unwrap();
        }
        let mut batch = Box::<Batch>::default();
        let got = echo(&server, &mut batch, total).await;
        assert_eq!(got.len(), total);
        for (k, (bytes, peer)) in got.iter().enumerate() {
            assert_eq!(bytes, format!("query-{k}").as_bytes());
            let from = if k % 2 == 0 { &client } else { &other };
            assert_eq!(*peer, from.local_addr().unwrap());
        }
        // Each sender gets the replies to its own queries, in order.
        let mut buf = [0u8; 64];
        for k in (0..total).step_by(2) {
            let n =
                tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf)).await.unwrap().unwrap();
            let want: Vec<u8> = format!("query-{k}").bytes().rev().collect();
            assert_eq!(&buf[..n], want.as_slice());
        }
    }

    #[tokio::test]
    async fn keeps_the_largest_datagram_whole() {
        let (server, client) = pair().await;
        let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
        client.send_to(&big, server.local_addr().unwrap()).await.unwrap();
        client.send_to(b"small", server.local_addr().unwrap()).await.unwrap();
        let mut batch = Box::<Batch>::default();
        let got = echo(&server, &mut batch, 2).await;
        assert_eq!(got[0].0, big);
        assert_eq!(got[1].0, b"small");
    }

    #[tokio::test]
    async fn an_empty_queue_is_would_block() {
        let (server, _client) = pair().await;
        let mut batch = Box::<Batch>::default();
        // Nothing sent: WouldBlock, which sends the loop back to waiting.
        let e = batch.recv(&server).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
