//! A small reader for packet captures: classic libpcap files (either byte order, microsecond
//! or nanosecond timestamps) and pcapng files (Section Header, Interface Description,
//! Enhanced, Simple and the obsolete Packet blocks), and a dissector from link-layer frames
//! down to UDP datagrams (Ethernet with VLAN tags, Linux cooked SLL and SLL2, raw IPv4/IPv6,
//! BSD loopback; IPv4 and IPv6 with extension headers).
//!
//! Everything here reads untrusted bytes: every length is checked against what is there, no
//! buffer is sized from a length field, and nothing panics (a proptest feeds it random bytes).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Link-layer header types (tcpdump.org "LINKTYPE_" values) this module can dissect.
pub mod link_type {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet (also what Linux uses for captures on `lo`).
    pub const ETHERNET: u32 = 1;
    /// Raw IP (the value most systems write for DLT_RAW).
    pub const RAW: u32 = 101;
    /// Raw IP as some BSDs number DLT_RAW.
    pub const RAW_BSD_12: u32 = 12;
    /// Raw IP as OpenBSD numbers DLT_RAW.
    pub const RAW_BSD_14: u32 = 14;
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`tcpdump -i any` on older systems).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (`tcpdump -i any` on newer systems).
    pub const LINUX_SLL2: u32 = 276;
}

/// Why a file could not be read as a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureError {
    /// The file does not start with a pcap or pcapng magic number.
    NotACapture,
    /// The file ends in the middle of a header or record that starts at `offset`.
    Truncated {
        /// Byte offset of the header or record.
        offset: usize,
    },
    /// A structure at `offset` is malformed.
    Malformed {
        /// Byte offset of the structure.
        offset: usize,
        /// What is wrong with it.
        what: &'static str,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotACapture => f.write_str("not a pcap or pcapng file (unknown magic number)"),
            Self::Truncated { offset } => {
                write!(
                    f,
                    "capture truncated: the record at byte {offset} is incomplete"
                )
            }
            Self::Malformed { offset, what } => write!(f, "at byte {offset}: {what}"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// One captured frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Capture time: whole seconds since the Unix epoch.
    pub ts_sec: u64,
    /// Capture time: nanoseconds within the second.
    pub ts_nsec: u32,
    /// The link-layer header type of `data` (see [`link_type`]).
    pub link_type: u32,
    /// The bytes captured (possibly fewer than the frame had, see `orig_len`).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
}

/// The kind of capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Classic libpcap: one link type for the file; `nanos` says the sub-second unit.
    Pcap { link_type: u32, nanos: bool },
    /// pcapng.
    PcapNg,
}

/// An interface of a pcapng section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: u32,
    /// Timestamp resolution: `(base, exponent)`, units of base^-exponent seconds.
    tsresol: (u8, u8),
}

/// The frames of a capture file, in file order.
///
/// Made by [`Frames::new`]; yields each frame, and at the first structural error yields that
/// error and ends.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    format: Format,
    big_endian: bool,
    interfaces: Vec<Interface>,
    done: bool,
}

/// pcapng block types.
const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB_OBSOLETE: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// At most this many interfaces per pcapng section (a bound on memory from a hostile file).
const MAX_INTERFACES: usize = 4096;

fn u16_at(d: &[u8], at: usize, be: bool) -> Option<u16> {
    let b: [u8; 2] = d.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

fn u32_at(d: &[u8], at: usize, be: bool) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

impl<'a> Frames<'a> {
    /// Reads the file header of `data`, a whole capture file.
    pub fn new(data: &'a [u8]) -> Result<Self, CaptureError> {
        let magic = data.get(..4).ok_or(CaptureError::NotACapture)?;
        let (format, big_endian, pos) = match magic {
            [0xA1, 0xB2, 0xC3, 0xD4]
            | [0xD4, 0xC3, 0xB2, 0xA1]
            | [0xA1, 0xB2, 0x3C, 0x4D]
            | [0x4D, 0x3C, 0xB2, 0xA1] => {
                let be = magic[0] == 0xA1;
                let nanos = magic == [0xA1, 0xB2, 0x3C, 0x4D] || magic == [0x4D, 0x3C, 0xB2, 0xA1];
                let link_type = u32_at(data, 20, be)
                    .ok_or(CaptureError::Truncated { offset: 0 })?
                    & 0x0FFF_FFFF;
                let major = u16_at(data, 4, be).unwrap_or(0);
                if major != 2 {
                    return Err(CaptureError::Malformed {
                        offset: 4,
                        what: "unsupported pcap major version (not 2)",
                    });
                }
                (Format::Pcap { link_type, nanos }, be, 24)
            }
            [0x0A, 0x0D, 0x0D, 0x0A] => {
                // The byte order comes from the section header's byte-order magic.
                let bom = data
                    .get(8..12)
                    .ok_or(CaptureError::Truncated { offset: 0 })?;
                let be = match bom {
                    [0x1A, 0x2B, 0x3C, 0x4D] => true,
                    [0x4D, 0x3C, 0x2B, 0x1A] => false,
                    _ => {
                        return Err(CaptureError::Malformed {
                            offset: 8,
                            what: "bad pcapng byte-order magic",
                        });
                    }
                };
                (Format::PcapNg, be, 0)
            }
            _ => return Err(CaptureError::NotACapture),
        };
        Ok(Self {
            data,
            pos,
            format,
            big_endian,
            interfaces: Vec::new(),
            done: false,
        })
    }

    fn next_pcap(
        &mut self,
        link_type: u32,
        nanos: bool,
    ) -> Option<Result<Frame<'a>, CaptureError>> {
        let d = self.data;
        let at = self.pos;
        if at >= d.len() {
            return None;
        }
        let be = self.big_endian;
        let trunc = CaptureError::Truncated { offset: at };
        let (Some(sec), Some(frac), Some(incl), Some(orig)) = (
            u32_at(d, at, be),
            u32_at(d, at + 4, be),
            u32_at(d, at + 8, be),
            u32_at(d, at + 12, be),
        ) else {
            return Some(Err(trunc));
        };
        let start = at + 16;
        let Some(data) = start
            .checked_add(incl as usize)
            .and_then(|end| d.get(start..end))
        else {
            return Some(Err(trunc));
        };
        self.pos = start + data.len();
        let ts_nsec = if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        if ts_nsec >= 1_000_000_000 {
            return Some(Err(CaptureError::Malformed {
                offset: at + 4,
                what: "sub-second timestamp out of range",
            }));
        }
        Some(Ok(Frame {
            ts_sec: u64::from(sec),
            ts_nsec,
            link_type,
            data,
            orig_len: orig,
        }))
    }

    fn next_pcapng(&mut self) -> Option<Result<Frame<'a>, CaptureError>> {
        loop {
            let d = self.data;
            let at = self.pos;
            if at >= d.len() {
                return None;
            }
            let trunc = CaptureError::Truncated { offset: at };
            let Some(first4) = d.get(at..at + 4) else {
                return Some(Err(trunc));
            };
            if first4 == [0x0A, 0x0D, 0x0D, 0x0A] {
                // A new section: its own byte order and interfaces.
                self.big_endian = match d.get(at + 8..at + 12) {
                    Some([0x1A, 0x2B, 0x3C, 0x4D]) => true,
                    Some([0x4D, 0x3C, 0x2B, 0x1A]) => false,
                    Some(_) => {
                        return Some(Err(CaptureError::Malformed {
                            offset: at + 8,
                            what: "bad pcapng byte-order magic",
                        }));
                    }
                    None => return Some(Err(trunc)),
                };
                self.interfaces.clear();
            }
            let be = self.big_endian;
            let (Some(btype), Some(blen)) = (u32_at(d, at, be), u32_at(d, at + 4, be)) else {
                return Some(Err(trunc));
            };
            let blen = blen as usize;
            if blen < 12 || blen % 4 != 0 {
                return Some(Err(CaptureError::Malformed {
                    offset: at + 4,
                    what: "pcapng block length not a multiple of 4 of at least 12",
                }));
            }
            let Some(block) = at.checked_add(blen).and_then(|end| d.get(at..end)) else {
                return Some(Err(trunc));
            };
            if u32_at(block, blen - 4, be) != Some(blen as u32) {
                return Some(Err(CaptureError::Malformed {
                    offset: at + blen - 4,
                    what: "pcapng block lengths disagree",
                }));
            }
            self.pos = at + blen;
            // The block body, without the type, the two lengths.
            let body = &block[8..blen - 4];
            let malformed = |what| {
                Some(Err(CaptureError::Malformed {
                    offset: at + 8,
                    what,
                }))
            };
            match btype {
                SHB => {}
                IDB => {
                    let Some(lt) = u16_at(body, 0, be) else {
                        return malformed("interface description block too short");
                    };
                    if self.interfaces.len() >= MAX_INTERFACES {
                        return malformed("too many interfaces");
                    }
                    let tsresol = body
                        .get(8..)
                        .and_then(|opts| if_tsresol(opts, be))
                        .unwrap_or((10, 6));
                    self.interfaces.push(Interface {
                        link_type: u32::from(lt),
                        tsresol,
                    });
                }
                EPB | PB_OBSOLETE => {
                    let (iface, hi, lo, cap, orig) = if btype == EPB {
                        (
                            u32_at(body, 0, be).map(|i| i as usize),
                            u32_at(body, 4, be),
                            u32_at(body, 8, be),
                            u32_at(body, 12, be),
                            u32_at(body, 16, be),
                        )
                    } else {
                        (
                            u16_at(body, 0, be).map(usize::from),
                            u32_at(body, 4, be),
                            u32_at(body, 8, be),
                            u32_at(body, 12, be),
                            u32_at(body, 16, be),
                        )
                    };
                    let (Some(iface), Some(hi), Some(lo), Some(cap), Some(orig)) =
                        (iface, hi, lo, cap, orig)
                    else {
                        return malformed("packet block too short");
                    };
                    let Some(&interface) = self.interfaces.get(iface) else {
                        return malformed("packet block names an undeclared interface");
                    };
                    let Some(data) = 20usize
                        .checked_add(cap as usize)
                        .and_then(|end| body.get(20..end))
                    else {
                        return malformed("packet block's captured length exceeds the block");
                    };
                    let ts = (u64::from(hi) << 32) | u64::from(lo);
                    let (ts_sec, ts_nsec) = split_timestamp(ts, interface.tsresol);
                    return Some(Ok(Frame {
                        ts_sec,
                        ts_nsec,
                        link_type: interface.link_type,
                        data,
                        orig_len: orig,
                    }));
                }
                SPB => {
                    let Some(&interface) = self.interfaces.first() else {
                        return malformed("simple packet block before any interface");
                    };
                    let Some(orig) = u32_at(body, 0, be) else {
                        return malformed("simple packet block too short");
                    };
                    let rest = &body[4..];
                    let n = rest.len().min(orig as usize);
                    return Some(Ok(Frame {
                        ts_sec: 0,
                        ts_nsec: 0,
                        link_type: interface.link_type,
                        data: &rest[..n],
                        orig_len: orig,
                    }));
                }
                // Name resolution, statistics, custom and unknown blocks carry no packets.
                _ => {}
            }
        }
    }
}

/// Finds the `if_tsresol` option (code 9) in an interface's options.
fn if_tsresol(mut opts: &[u8], be: bool) -> Option<(u8, u8)> {
    loop {
        let code = u16_at(opts, 0, be)?;
        let len = usize::from(u16_at(opts, 2, be)?);
        if code == 0 {
            return None;
        }
        let value = opts.get(4..4 + len)?;
        if code == 9 && len == 1 {
            let v = value[0];
            return Some(if v & 0x80 != 0 {
                (2, v & 0x7F)
            } else {
                (10, v)
            });
        }
        opts = opts.get(4 + len.div_ceil(4) * 4..)?;
    }
}

/// Splits a timestamp counted in units of base^-exp seconds into seconds and nanoseconds.
fn split_timestamp(ts: u64, (base, exp): (u8, u8)) -> (u64, u32) {
    let ts = u128::from(ts);
    let units: u128 = if base == 2 {
        if exp >= 127 {
            return (0, 0);
        }
        1u128 << exp
    } else {
        match 10u128.checked_pow(u32::from(exp)) {
            Some(u) => u,
            None => return (0, 0),
        }
    };
    let sec = ts / units;
    let nsec = (ts % units) * 1_000_000_000 / units;
    (u64::try_from(sec).unwrap_or(u64::MAX), nsec as u32)
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.format {
            Format::Pcap { link_type, nanos } => self.next_pcap(link_type, nanos),
            Format::PcapNg => self.next_pcapng(),
        };
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// A UDP datagram found in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp<'a> {
    /// The sender.
    pub src: SocketAddr,
    /// The receiver.
    pub dst: SocketAddr,
    /// The UDP payload as captured.
    pub payload: &'a [u8],
    /// How long the payload was on the wire (the UDP length field); more than
    /// `payload.len()` when the capture cut the frame short.
    pub wire_len: usize,
}

/// What a frame turned out to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dissected<'a> {
    /// A UDP datagram.
    Udp(Udp<'a>),
    /// A fragment of a UDP datagram (IPv4 or IPv6); reassembly is not supported. The ports
    /// are known only for the first fragment.
    UdpFragment {
        /// The sender, if this is the first fragment.
        src: Option<SocketAddr>,
        /// The receiver, if this is the first fragment.
        dst: Option<SocketAddr>,
    },
    /// Something other than UDP over IP (ARP, TCP, ICMP, …), or a link type this module
    /// does not know.
    Other,
}

/// Why a frame that claims to carry IP could not be dissected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError(pub &'static str);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const IPPROTO_UDP: u8 = 17;

/// Finds the UDP datagram in a frame of the given link type.
pub fn dissect_frame(link: u32, frame: &[u8]) -> Result<Dissected<'_>, FrameError> {
    use self::link_type as lt;
    match link {
        lt::ETHERNET => {
            let mut at = 12;
            let mut ethertype =
                u16_at(frame, at, true).ok_or(FrameError("short Ethernet header"))?;
            // Up to two VLAN tags (802.1Q, 802.1ad).
            for _ in 0..2 {
                if ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
                    at += 4;
                    ethertype = u16_at(frame, at, true).ok_or(FrameError("short VLAN tag"))?;
                }
            }
            by_ethertype(ethertype, frame.get(at + 2..).unwrap_or(&[]))
        }
        lt::LINUX_SLL => {
            let proto = u16_at(frame, 14, true).ok_or(FrameError("short Linux SLL header"))?;
            by_ethertype(proto, frame.get(16..).unwrap_or(&[]))
        }
        lt::LINUX_SLL2 => {
            let proto = u16_at(frame, 0, true).ok_or(FrameError("short Linux SLL2 header"))?;
            if frame.len() < 20 {
                return Err(FrameError("short Linux SLL2 header"));
            }
            by_ethertype(proto, &frame[20..])
        }
        lt::RAW | lt::RAW_BSD_12 | lt::RAW_BSD_14 => match frame.first().map(|b| b >> 4) {
            Some(4) => ipv4(frame),
            Some(6) => ipv6(frame),
            _ => Err(FrameError(
                "raw IP frame with neither IPv4 nor IPv6 version",
            )),
        },
        lt::IPV4 => ipv4(frame),
        lt::IPV6 => ipv6(frame),
        lt::NULL | lt::LOOP => {
            let fam: [u8; 4] = frame
                .get(..4)
                .and_then(|f| f.try_into().ok())
                .ok_or(FrameError("short loopback header"))?;
            // NULL is in the capturing host's byte order; accept either.
            let fam = if link == lt::LOOP {
                u32::from_be_bytes(fam)
            } else if u32::from_le_bytes(fam) < 0x100 {
                u32::from_le_bytes(fam)
            } else {
                u32::from_be_bytes(fam)
            };
            let rest = &frame[4..];
            match fam {
                2 => ipv4(rest),
                // AF_INET6 differs between BSDs: 24, 28 and 30 are all in use.
                24 | 28 | 30 => ipv6(rest),
                _ => Ok(Dissected::Other),
            }
        }
        _ => Ok(Dissected::Other),
    }
}

fn by_ethertype(ethertype: u16, payload: &[u8]) -> Result<Dissected<'_>, FrameError> {
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(payload),
        ETHERTYPE_IPV6 => ipv6(payload),
        _ => Ok(Dissected::Other),
    }
}

fn ipv4(p: &[u8]) -> Result<Dissected<'_>, FrameError> {
    let short = FrameError("short IPv4 header");
    let first = *p.first().ok_or(short)?;
    if first >> 4 != 4 {
        return Err(FrameError("IPv4 header with another version"));
    }
    let ihl = usize::from(first & 0x0F) * 4;
    if ihl < 20 {
        return Err(FrameError("IPv4 header length below 20"));
    }
    if p.len() < ihl {
        return Err(short);
    }
    let total = usize::from(u16_at(p, 2, true).ok_or(short)?);
    if total < ihl {
        return Err(FrameError("IPv4 total length below the header length"));
    }
    let flags_frag = u16_at(p, 6, true).ok_or(short)?;
    let more_fragments = flags_frag & 0x2000 != 0;
    let offset = flags_frag & 0x1FFF;
    if p[9] != IPPROTO_UDP {
        return Ok(Dissected::Other);
    }
    let src = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
    // The IP payload: as much as was captured, at most what the header says.
    let end = total.min(p.len());
    let body = &p[ihl..end];
    if offset != 0 {
        return Ok(Dissected::UdpFragment {
            src: None,
            dst: None,
        });
    }
    if more_fragments {
        return Ok(first_fragment(src, dst, body));
    }
    udp(src, dst, body, total - ihl)
}

fn ipv6(p: &[u8]) -> Result<Dissected<'_>, FrameError> {
    let short = FrameError("short IPv6 header");
    if p.len() < 40 {
        return Err(short);
    }
    if p[0] >> 4 != 6 {
        return Err(FrameError("IPv6 header with another version"));
    }
    let payload_len = usize::from(u16_at(p, 4, true).ok_or(short)?);
    let src_b: [u8; 16] = p[8..24].try_into().map_err(|_| short)?;
    let dst_b: [u8; 16] = p[24..40].try_into().map_err(|_| short)?;
    let src = IpAddr::V6(Ipv6Addr::from(src_b));
    let dst = IpAddr::V6(Ipv6Addr::from(dst_b));
    let end = 40usize.saturating_add(payload_len).min(p.len());
    let mut body = &p[40..end];
    let mut wire_len = payload_len;
    let mut next = p[6];
    // Walk the extension headers (hop-by-hop, routing, destination options, fragment).
    for _ in 0..16 {
        match next {
            IPPROTO_UDP => return udp(src, dst, body, wire_len),
            0 | 43 | 60 => {
                let short = FrameError("short IPv6 extension header");
                let (&nh, &len8) = (body.first().ok_or(short)?, body.get(1).ok_or(short)?);
                let len = (usize::from(len8) + 1) * 8;
                body = body.get(len..).ok_or(short)?;
                wire_len = wire_len.saturating_sub(len);
                next = nh;
            }
            44 => {
                let short = FrameError("short IPv6 fragment header");
                let nh = *body.first().ok_or(short)?;
                let frag = u16_at(body, 2, true).ok_or(short)?;
                if nh != IPPROTO_UDP {
                    return Ok(Dissected::Other);
                }
                if frag >> 3 != 0 {
                    return Ok(Dissected::UdpFragment {
                        src: None,
                        dst: None,
                    });
                }
                return Ok(first_fragment(src, dst, body.get(8..).ok_or(short)?));
            }
            _ => return Ok(Dissected::Other),
        }
    }
    Err(FrameError("too many IPv6 extension headers"))
}

fn first_fragment<'a>(src: IpAddr, dst: IpAddr, body: &'a [u8]) -> Dissected<'a> {
    match (u16_at(body, 0, true), u16_at(body, 2, true)) {
        (Some(sp), Some(dp)) => Dissected::UdpFragment {
            src: Some(SocketAddr::new(src, sp)),
            dst: Some(SocketAddr::new(dst, dp)),
        },
        _ => Dissected::UdpFragment {
            src: None,
            dst: None,
        },
    }
}

/// Reads a UDP header; `wire_len` is the IP payload length the IP header claims.
fn udp<'a>(
    src: IpAddr,
    dst: IpAddr,
    body: &'a [u8],
    wire_len: usize,
) -> Result<Dissected<'a>, FrameError> {
    let short = FrameError("short UDP header");
    let sp = u16_at(body, 0, true).ok_or(short)?;
    let dp = u16_at(body, 2, true).ok_or(short)?;
    let len = usize::from(u16_at(body, 4, true).ok_or(short)?);
    if len < 8 {
        return Err(FrameError("UDP length below 8"));
    }
    if len > wire_len {
        return Err(FrameError("UDP length exceeds the IP payload"));
    }
    let end = len.min(body.len());
    Ok(Dissected::Udp(Udp {
        src: SocketAddr::new(src, sp),
        dst: SocketAddr::new(dst, dp),
        payload: body.get(8..end).unwrap_or(&[]),
        wire_len: len - 8,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eth_ipv4_udp(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let total = (20 + 8 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&1000u16.to_be_bytes());
        f.extend_from_slice(&2000u16.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn ethernet_ipv4_udp() {
        let f = eth_ipv4_udp(b"hello");
        let Dissected::Udp(u) = dissect_frame(link_type::ETHERNET, &f).unwrap() else {
            panic!("not UDP");
        };
        assert_eq!(u.src, "10.0.0.1:1000".parse().unwrap());
        assert_eq!(u.dst, "10.0.0.2:2000".parse().unwrap());
        assert_eq!(u.payload, b"hello");
        assert_eq!(u.wire_len, 5);
        // Ethernet padding after the IP datagram is not part of the payload.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 20]);
        assert_eq!(
            dissect_frame(link_type::ETHERNET, &padded),
            dissect_frame(link_type::ETHERNET, &f)
        );
        // Cut short by the snap length: the payload is what was captured.
        let Dissected::Udp(u) = dissect_frame(link_type::ETHERNET, &f[..f.len() - 2]).unwrap()
        else {
            panic!("not UDP");
        };
        assert_eq!((u.payload, u.wire_len), (&b"hel"[..], 5));
    }

    #[test]
    fn ipv6_with_a_hop_by_hop_header() {
        let payload = b"xy";
        let mut p = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
        let plen = (8 + 8 + payload.len()) as u16;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0, 10, 0, 0]);
        p.extend_from_slice(payload);
        let Dissected::Udp(u) = dissect_frame(link_type::IPV6, &p).unwrap() else {
            panic!("not UDP");
        };
        assert_eq!(u.src, "[::1]:4660".parse().unwrap());
        assert_eq!(u.payload, b"xy");
    }

    #[test]
    fn pcapng_timestamps_and_interfaces() {
        // SHB, IDB (Ethernet, if_tsresol = 10^-9), EPB.
        let mut f = Vec::new();
        let block = |f: &mut Vec<u8>, t: u32, body: &[u8]| {
            let len = (12 + body.len().div_ceil(4) * 4) as u32;
            f.extend_from_slice(&t.to_le_bytes());
            f.extend_from_slice(&len.to_le_bytes());
            f.extend_from_slice(body);
            f.resize(f.len() + (4 - body.len() % 4) % 4, 0);
            f.extend_from_slice(&len.to_le_bytes());
        };
        let mut shb = vec![0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0];
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        block(&mut f, SHB, &shb);
        let mut idb = vec![1, 0, 0, 0, 0, 0, 1, 0];
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        block(&mut f, IDB, &idb);
        let frame = eth_ipv4_udp(b"abc");
        let ts: u64 = 1_700_000_000_123_456_789;
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&frame);
        block(&mut f, EPB, &epb);
        let frames: Vec<_> = Frames::new(&f).unwrap().collect();
        assert_eq!(frames.len(), 1);
        let fr = frames[0].clone().unwrap();
        assert_eq!((fr.ts_sec, fr.ts_nsec), (1_700_000_000, 123_456_789));
        assert_eq!((fr.link_type, fr.data), (link_type::ETHERNET, &frame[..]));
        // Cut anywhere: an error or fewer frames, never a panic.
        for cut in 0..f.len() {
            let _ = Frames::new(&f[..cut]).map(|fs| fs.count());
        }
    }

    #[test]
    fn binary_fraction_timestamps() {
        assert_eq!(
            split_timestamp(3 << 20 | 1 << 19, (2, 20)),
            (3, 500_000_000)
        );
        assert_eq!(split_timestamp(5_000_001, (10, 6)), (5, 1000));
        assert_eq!(split_timestamp(7, (10, 200)), (0, 0));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(frames) = Frames::new(&bytes) {
                for f in frames.take(1000).flatten() {
                    let _ = dissect_frame(f.link_type, f.data);
                }
            }
            for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
                let _ = dissect_frame(lt, &bytes);
            }
        }

        #[test]
        fn random_bytes_after_a_valid_header_never_panic(
            ng in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut file = if ng {
                let mut h = vec![0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A];
                h.extend_from_slice(&[1, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
                h.extend_from_slice(&[28, 0, 0, 0]);
                h
            } else {
                let mut h = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0];
                h.extend_from_slice(&[0; 8]);
                h.extend_from_slice(&[0xFF, 0xFF, 0, 0, 1, 0, 0, 0]);
                h
            };
            file.extend_from_slice(&body);
            let frames = Frames::new(&file).expect("valid header");
            for f in frames.take(1000).flatten() {
                let _ = dissect_frame(f.link_type, f.data);
            }
        }
    }
}
