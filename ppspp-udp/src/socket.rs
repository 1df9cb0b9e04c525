//! The UDP socket: binding with large buffers, batched receive (`recvmmsg`, GRO) and batched
//! send (GSO) through the `quinn-udp` crate, and the kernel's drop counter.
//!
//! Everything here is shared by the blocking [`Driver`](crate::Driver) and the tokio
//! driver: they differ only in how they wait for the socket to become ready.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
#[cfg(unix)]
use std::os::fd::AsFd;

use bytes::Bytes;
use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};

/// The largest datagram the socket layer accepts from the engine or the network.
pub(crate) const MAX_DATAGRAM: usize = 65_535;
/// The most bytes one GSO send carries.
const MAX_GSO_BYTES: usize = 64_000;

/// Socket settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// The receive buffer size asked of the kernel (`SO_RCVBUF`), in bytes. Default 8 MiB:
    /// the default of about 200 KiB overflows within a few milliseconds of a fast transfer.
    pub recv_buffer: usize,
    /// The send buffer size (`SO_SNDBUF`), in bytes. Default 4 MiB.
    pub send_buffer: usize,
    /// Let the IP layer fragment datagrams larger than the path MTU (needed for chunks
    /// larger than about 1,400 bytes off loopback). Default false: datagrams carry the
    /// don't-fragment bit and the engine fits them into 1,472 bytes.
    pub allow_fragmentation: bool,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            recv_buffer: 8 << 20,
            send_buffer: 4 << 20,
            allow_fragmentation: false,
        }
    }
}

/// Counters of the socket layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent (each GSO segment counts).
    pub datagrams_out: u64,
    /// Receive system calls that returned data.
    pub recv_calls: u64,
    /// Send system calls.
    pub send_calls: u64,
    /// Datagrams dropped because a send failed with an error other than "would block".
    pub send_errors: u64,
    /// Receive errors that were skipped (e.g. ICMP reports of unreachable peers).
    pub recv_errors: u64,
    /// Datagrams the kernel dropped on this socket because its receive buffer was full, when
    /// the system tells (Linux: `/proc/net/udp`).
    pub kernel_drops: Option<u64>,
    /// The receive buffer size the kernel granted.
    pub recv_buffer: usize,
    /// The send buffer size the kernel granted.
    pub send_buffer: usize,
}

/// Opens a non-blocking UDP socket bound to `addr` with the buffer sizes of `cfg`. An IPv6
/// wildcard address also accepts IPv4 (dual stack) where the system allows it.
pub(crate) fn bind(addr: SocketAddr, cfg: &SocketConfig) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Best effort: some systems only do IPv6-only sockets.
        let _ = socket.set_only_v6(false);
    }
    // Best effort too: the kernel caps these at net.core.{r,w}mem_max, which is fine.
    let _ = socket.set_recv_buffer_size(cfg.recv_buffer);
    let _ = socket.set_send_buffer_size(cfg.send_buffer);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Batched datagram I/O on one socket (any socket type: std, mio or tokio).
pub(crate) struct BatchIo {
    state: UdpSocketState,
    /// `BATCH_SIZE` receive slots of `slot` bytes each.
    recv_buf: Vec<u8>,
    slot: usize,
    meta: Vec<RecvMeta>,
    send: SendBatch,
    pub(crate) stats: SocketStats,
    /// The socket's inode, to find its drop counter.
    #[cfg(target_os = "linux")]
    inode: Option<u64>,
}

impl std::fmt::Debug for BatchIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchIo")
            .field("gso", &self.state.max_gso_segments())
            .field("gro", &self.state.gro_segments())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl BatchIo {
    /// Sets up batched I/O on `socket` (which it makes non-blocking).
    #[cfg(unix)]
    pub(crate) fn new<S: AsFd>(socket: &S, cfg: &SocketConfig) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(socket))?;
        if cfg.allow_fragmentation {
            // quinn-udp sets the don't-fragment mode; undo it for large datagrams.
            allow_fragmentation(socket)?;
        }
        let slot = (state.gro_segments().max(1) * 1500).clamp(MAX_DATAGRAM, 1 << 17);
        let sref = socket2::SockRef::from(socket);
        let stats = SocketStats {
            recv_buffer: sref.recv_buffer_size().unwrap_or(0),
            send_buffer: sref.send_buffer_size().unwrap_or(0),
            ..SocketStats::default()
        };
        #[cfg(target_os = "linux")]
        let inode = {
            use std::os::fd::AsRawFd;
            let fd = socket.as_fd().as_raw_fd();
            socket_inode(fd)
        };
        Ok(Self {
            send: SendBatch::new(state.max_gso_segments()),
            state,
            recv_buf: vec![0; slot * BATCH_SIZE],
            slot,
            meta: vec![RecvMeta::default(); BATCH_SIZE],
            stats,
            #[cfg(target_os = "linux")]
            inode,
        })
    }

    /// Receives one batch of datagrams and hands each to `f` (source, payload). Returns how
    /// many datagrams were delivered; `Err(WouldBlock)` when none were waiting.
    #[cfg(unix)]
    pub(crate) fn recv<S: AsFd>(
        &mut self,
        socket: &S,
        mut f: impl FnMut(SocketAddr, Bytes),
    ) -> io::Result<usize> {
        let n = {
            let mut slices: Vec<IoSliceMut<'_>> = self
                .recv_buf
                .chunks_mut(self.slot)
                .map(IoSliceMut::new)
                .collect();
            match self
                .state
                .recv(UdpSockRef::from(socket), &mut slices, &mut self.meta)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    // An ICMP report about an earlier send: nothing to deliver.
                    self.stats.recv_errors += 1;
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
        };
        self.stats.recv_calls += 1;
        let mut count = 0;
        for (i, meta) in self.meta.iter().take(n).enumerate() {
            let start = i * self.slot;
            let len = meta.len.min(self.slot);
            // One allocation per receive slot; each datagram is a zero-copy slice of it.
            let whole = Bytes::copy_from_slice(&self.recv_buf[start..start + len]);
            let stride = if meta.stride == 0 { len } else { meta.stride };
            let mut off = 0;
            while off < len {
                let end = (off + stride).min(len);
                f(meta.addr, whole.slice(off..end));
                count += 1;
                off = end;
            }
        }
        self.stats.datagrams_in += count as u64;
        Ok(count)
    }

    /// The buffer the next outgoing datagram is written into, or `None` when a send batch
    /// must be flushed first.
    pub(crate) fn send_slot(&mut self) -> Option<&mut [u8]> {
        self.send.slot()
    }

    /// Records the datagram just written into [`BatchIo::send_slot`].
    pub(crate) fn commit(&mut self, destination: SocketAddr, size: usize) {
        self.send.commit(destination, size);
    }

    /// Whether datagrams are waiting to be sent.
    pub(crate) fn has_pending(&self) -> bool {
        self.send.count > 0 || self.send.extra.is_some()
    }

    /// Sends everything batched. `Err(WouldBlock)` leaves the rest for the next call.
    #[cfg(unix)]
    pub(crate) fn flush<S: AsFd>(&mut self, socket: &S) -> io::Result<()> {
        loop {
            if self.send.count > 0 {
                let seg = self.send.seg;
                let t = Transmit {
                    destination: self.send.dest,
                    ecn: None,
                    contents: &self.send.buf[..self.send.len],
                    segment_size: (self.send.count > 1).then_some(seg),
                    src_ip: None,
                };
                match self.state.try_send(UdpSockRef::from(socket), &t) {
                    Ok(()) => {
                        self.stats.send_calls += 1;
                        self.stats.datagrams_out += self.send.count as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                    Err(_) => {
                        // UDP is unreliable anyway: the engine retransmits what is lost.
                        self.stats.send_calls += 1;
                        self.stats.send_errors += self.send.count as u64;
                    }
                }
                self.send.sent();
                self.send.max_segments = self.state.max_gso_segments().max(1);
            }
            if self.send.extra.is_none() {
                return Ok(());
            }
            self.send.promote_extra();
        }
    }

    /// Refreshes and returns the counters.
    pub(crate) fn stats(&mut self) -> SocketStats {
        #[cfg(target_os = "linux")]
        {
            self.stats.kernel_drops = self.inode.and_then(kernel_drops);
        }
        self.stats
    }
}

/// Datagrams to one destination, all of one size but the last (a GSO batch), plus at most
/// one datagram that did not fit the batch.
struct SendBatch {
    buf: Vec<u8>,
    /// Bytes of the batch.
    len: usize,
    dest: SocketAddr,
    seg: usize,
    count: usize,
    /// A segment shorter than `seg` ended the batch.
    closed: bool,
    max_segments: usize,
    /// A datagram for another batch: destination, offset in `buf`, size.
    extra: Option<(SocketAddr, usize, usize)>,
}

impl SendBatch {
    fn new(max_segments: usize) -> Self {
        Self {
            buf: vec![0; MAX_GSO_BYTES + MAX_DATAGRAM],
            len: 0,
            dest: SocketAddr::from(([0, 0, 0, 0], 0)),
            seg: 0,
            count: 0,
            closed: false,
            max_segments: max_segments.max(1),
            extra: None,
        }
    }

    fn slot(&mut self) -> Option<&mut [u8]> {
        if self.extra.is_some()
            || self.closed
            || self.count >= self.max_segments
            || self.len + self.seg > MAX_GSO_BYTES
        {
            return None;
        }
        Some(&mut self.buf[self.len..self.len + MAX_DATAGRAM])
    }

    fn commit(&mut self, dest: SocketAddr, size: usize) {
        if self.count == 0 {
            self.dest = dest;
            self.seg = size;
            self.len = size;
            self.count = 1;
            self.closed = false;
        } else if dest == self.dest && size <= self.seg && self.len + size <= MAX_GSO_BYTES {
            self.len += size;
            self.count += 1;
            self.closed = size < self.seg;
        } else {
            self.extra = Some((dest, self.len, size));
        }
    }

    fn sent(&mut self) {
        self.len = 0;
        self.count = 0;
        self.closed = false;
    }

    fn promote_extra(&mut self) {
        if let Some((dest, from, size)) = self.extra.take() {
            self.buf.copy_within(from..from + size, 0);
            self.len = 0;
            self.count = 0;
            self.commit(dest, size);
        }
    }
}

/// Lets the kernel fragment datagrams larger than the path MTU (`IP_PMTUDISC_DONT`).
#[cfg(target_os = "linux")]
fn allow_fragmentation<S: AsFd>(socket: &S) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = socket.as_fd().as_raw_fd();
    let v4 = socket2::SockRef::from(socket).local_addr()?.is_ipv4();
    let value: libc::c_int = libc::IP_PMTUDISC_DONT;
    let opts: &[(libc::c_int, libc::c_int)] = if v4 {
        &[(libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)]
    } else {
        // A dual-stack socket sends IPv4 too.
        &[
            (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
            (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
        ]
    };
    for &(level, name) in opts {
        // SAFETY: `fd` is an open socket borrowed for this call; the option value points to a
        // live c_int whose size is passed along, as setsockopt(2) requires.
        let r = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&raw const value).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // On an IPv6 socket the IPv4 option is best effort (an IPv6-only socket refuses it).
        let required = v4 || level == libc::IPPROTO_IPV6;
        if r != 0 && required {
            return Err(io::Error::last_os_error());
        }
    }
    if !v4 {
        // IPv6 has no fragmentation by routers, only by the sender: also clear DONTFRAG.
        let zero: libc::c_int = 0;
        // SAFETY: as above.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_DONTFRAG,
                (&raw const zero).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    Ok(())
}

/// Elsewhere, fragmentation is left as the system sets it.
#[cfg(not(target_os = "linux"))]
fn allow_fragmentation<S: AsFd>(_socket: &S) -> io::Result<()> {
    Ok(())
}

/// The inode of socket `fd`, from `/proc/self/fd` (Linux).
#[cfg(target_os = "linux")]
fn socket_inode(fd: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// The `drops` column of the socket with `inode` in `/proc/net/udp` or `/proc/net/udp6`.
#[cfg(target_os = "linux")]
fn kernel_drops(inode: u64) -> Option<u64> {
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
            if cols.len() >= 13 && cols[9].parse::<u64>().ok() == Some(inode) {
                return cols[12].parse().ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_equal_sizes_and_one_short_tail() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut s = SendBatch::new(64);
        for _ in 0..3 {
            assert!(s.slot().is_some());
            s.commit(a, 1000);
        }
        s.commit(a, 500);
        assert_eq!((s.count, s.len, s.seg), (4, 3500, 1000));
        assert!(s.slot().is_none(), "a short segment closes the batch");
        s.sent();
        s.commit(a, 1000);
        assert!(s.slot().is_some());
        s.slot().unwrap()[..7].copy_from_slice(b"elephan");
        s.commit(b, 7);
        assert_eq!(s.extra, Some((b, 1000, 7)));
        assert!(s.slot().is_none());
        s.sent();
        s.promote_extra();
        assert_eq!((s.count, s.len, s.dest), (1, 7, b));
        assert_eq!(&s.buf[..7], b"elephan");
    }

    #[test]
    fn loopback_round_trip_with_batches() {
        let cfg = SocketConfig::default();
        let rx = bind("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
        let tx = bind("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
        let mut rio = BatchIo::new(&rx, &cfg).unwrap();
        let mut tio = BatchIo::new(&tx, &cfg).unwrap();
        let to = rx.local_addr().unwrap();
        let mut sent = 0u32;
        for i in 0..100u32 {
            let size = if i % 10 == 9 { 300 } else { 1200 };
            if tio.send_slot().is_none() {
                tio.flush(&tx).unwrap();
            }
            let slot = tio.send_slot().unwrap();
            slot[..4].copy_from_slice(&i.to_be_bytes());
            tio.commit(to, size);
            sent += 1;
        }
        tio.flush(&tx).unwrap();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < sent as usize && std::time::Instant::now() < deadline {
            match rio.recv(&rx, |_, d| got.push(d)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len(), 100);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(&d[..4], &(i as u32).to_be_bytes());
            assert_eq!(d.len(), if i % 10 == 9 { 300 } else { 1200 });
        }
        assert!(tio.stats().datagrams_out == 100);
        assert!(rio.stats().recv_buffer >= 200_000);
    }
}
