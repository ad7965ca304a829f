//! Decode: frame -> TCP segment (or UDP datagram, for DNS). Link layers (Ethernet, SLL, SLL2, raw IP, BSD null),
//! VLAN/QinQ, MPLS, IPv4/IPv6 with extension headers, IPv4 fragment reassembly within a
//! bound, and the overlay tunnels of Kubernetes (VXLAN, Geneve, IP-in-IP, GRE) unwrapped
//! so that the innermost TCP endpoints are measured. Uses etherparse; no allocation on the
//! common path.

mod defrag;
mod link;
mod tunnel;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use etherparse::{LaxIpSlice, TcpSlice, UdpSlice};

use crate::ingest::capture::{Frame, LinkType};
use crate::model::{Coverage, Endpoint, SourceId, Timestamp};
use defrag::{Defrag, FragKey, Fragment};
use link::{ETH_IPV4, ETH_IPV6, ETH_MPLS_MC, ETH_MPLS_UC};

/// TCP flags byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// One TCP segment with its innermost endpoints. `payload` borrows the frame (or the
/// defragmenter's buffer for a reassembled IPv4 datagram).
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub ts: Timestamp,
    pub source: SourceId,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// The MSS option of a SYN (read on SYNs only: no other segment carries it).
    pub mss: Option<u16>,
    /// Captured payload bytes (may be shorter than `wire_len` when snaplen cut the frame).
    pub payload: &'a [u8],
    /// Payload length on the wire, from the IP length fields.
    pub wire_len: u32,
}

/// One UDP datagram with its innermost endpoints (tunnels already unwrapped). Borrowed
/// like [`Segment`]; handed on only so that DNS answers can be read.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    pub ts: Timestamp,
    pub source: SourceId,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// Captured UDP payload bytes.
    pub payload: &'a [u8],
    /// The snaplen cut the datagram: `payload` is shorter than on the wire.
    pub truncated: bool,
}

/// What a frame carried, at its innermost transport layer.
#[derive(Clone, Copy, Debug)]
pub enum Packet<'a> {
    Tcp(Segment<'a>),
    Udp(Datagram<'a>),
}

/// Bounds of the decoder's own state.
#[derive(Clone, Copy, Debug)]
pub struct DecodeConfig {
    /// Datagrams being reassembled at once.
    pub max_fragment_datagrams: usize,
    /// Bytes held in incomplete datagrams at once.
    pub max_fragment_bytes: usize,
    /// Incomplete datagrams older than this (capture time) are dropped.
    pub fragment_timeout_ns: i64,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            max_fragment_datagrams: 1024,
            max_fragment_bytes: 8 << 20,
            fragment_timeout_ns: 30_000_000_000,
        }
    }
}

pub struct Decoder {
    config: DecodeConfig,
    defrag: Defrag,
}

/// Tunnels unwrapped in one frame at most; deeper nesting is counted as a decode error.
const MAX_TUNNEL_DEPTH: u32 = 4;

const IP_IPIP: u8 = 4;
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;
const IP_IPV6: u8 = 41;
const IP_GRE: u8 = 47;

/// What comes next while walking down a frame's layers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Next<'a> {
    /// An Ethernet II frame.
    Ethernet(&'a [u8]),
    /// A payload identified by an EtherType.
    Ether(u16, &'a [u8]),
    /// An IPv4 or IPv6 packet (version nibble first).
    Ip(&'a [u8]),
}

/// Why a frame yields no segment; each maps to one coverage counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    NonIp,
    NonTcp,
    Error,
    TcpMalformed,
    /// A fragment held for reassembly or dropped; already counted by the defragmenter.
    Fragment,
}

impl Decoder {
    pub fn new(config: DecodeConfig) -> Self {
        Decoder {
            defrag: Defrag::new(&config),
            config,
        }
    }

    pub fn config(&self) -> &DecodeConfig {
        &self.config
    }

    /// IPv4 datagrams waiting for more fragments.
    pub fn pending_fragment_datagrams(&self) -> usize {
        self.defrag.pending()
    }

    /// End of input: the datagrams still incomplete are dropped and counted.
    pub fn finish(&mut self, cov: &mut Coverage) {
        self.defrag.clear(cov);
    }

    /// The TCP segment in `frame`, or None (counted in `cov`: non-IP, non-TCP, malformed,
    /// a fragment still waiting for its siblings...).
    pub fn decode<'a>(&'a mut self, frame: &Frame<'a>, cov: &mut Coverage) -> Option<Segment<'a>> {
        match self.decode_packet(frame, cov)? {
            Packet::Tcp(segment) => Some(segment),
            Packet::Udp(_) => None,
        }
    }

    /// The TCP segment or UDP datagram (not a tunnel's) in `frame`, or None (counted as
    /// for [`Decoder::decode`]). A UDP datagram still counts as `non_tcp`, so the packet
    /// counters mean the same whichever method is called.
    pub fn decode_packet<'a>(
        &'a mut self,
        frame: &Frame<'a>,
        cov: &mut Coverage,
    ) -> Option<Packet<'a>> {
        self.defrag.expire(frame.ts.nanos(), cov);
        let data = frame.data;
        let start = match frame.link {
            LinkType::Ethernet => Ok(Next::Ethernet(data)),
            LinkType::Null => link::null(data, false),
            LinkType::Loop => link::null(data, true),
            LinkType::RawIp => link::raw_ip(data),
            LinkType::Ipv4 => Ok(Next::Ether(ETH_IPV4, data)),
            LinkType::Ipv6 => Ok(Next::Ether(ETH_IPV6, data)),
            LinkType::LinuxSll => link::linux_sll(data),
            LinkType::LinuxSll2 => link::linux_sll2(data),
            LinkType::Other(_) => {
                cov.unsupported_link += 1;
                return None;
            }
        };
        let mut walk = Walk {
            defrag: Some(&mut self.defrag),
            frame,
            cov: &mut *cov,
            tunnels: 0,
        };
        match start.and_then(|next| walk.run(next)) {
            Ok(packet) => {
                match packet {
                    Packet::Tcp(_) => cov.tcp_segments += 1,
                    Packet::Udp(_) => cov.non_tcp += 1,
                }
                Some(packet)
            }
            Err(stop) => {
                match stop {
                    Stop::NonIp => cov.non_ip += 1,
                    Stop::NonTcp => cov.non_tcp += 1,
                    Stop::Error => cov.decode_errors += 1,
                    Stop::TcpMalformed => cov.tcp_malformed += 1,
                    Stop::Fragment => {}
                }
                None
            }
        }
    }
}

/// One frame's walk down its layers. The defragmenter is lent once: after a datagram
/// is reassembled its bytes borrow the defragmenter, so fragments nested inside a
/// reassembled datagram (a fragmented tunnel inside a fragmented tunnel) are dropped.
struct Walk<'a, 'f, 'c> {
    defrag: Option<&'a mut Defrag>,
    frame: &'f Frame<'a>,
    cov: &'c mut Coverage,
    tunnels: u32,
}

impl<'a> Walk<'a, '_, '_> {
    fn run(&mut self, mut next: Next<'a>) -> Result<Packet<'a>, Stop> {
        let mut vlan_tags = 0;
        loop {
            next = match next {
                Next::Ethernet(bytes) => link::ethernet(bytes)?,
                Next::Ether(ETH_IPV4 | ETH_IPV6, bytes) => Next::Ip(bytes),
                Next::Ether(ETH_MPLS_UC | ETH_MPLS_MC, bytes) => link::mpls(bytes)?,
                Next::Ether(t, bytes) if link::is_vlan(t) => {
                    vlan_tags += 1;
                    if vlan_tags > link::max_vlan_tags() {
                        return Err(Stop::Error);
                    }
                    link::vlan(bytes)?
                }
                Next::Ether(..) => return Err(Stop::NonIp),
                Next::Ip(bytes) => match self.ip(bytes)? {
                    Inner::Packet(packet) => return Ok(packet),
                    Inner::Tunnel(inner) => {
                        self.tunnels += 1;
                        if self.tunnels > MAX_TUNNEL_DEPTH {
                            return Err(Stop::Error);
                        }
                        self.cov.tunnels_unwrapped += 1;
                        inner
                    }
                },
            };
        }
    }

    /// One IP layer: TCP or plain UDP ends the walk, tunnels continue it.
    fn ip(&mut self, bytes: &'a [u8]) -> Result<Inner<'a>, Stop> {
        let (ip, ext_err) = LaxIpSlice::from_slice(bytes).map_err(|_| Stop::Error)?;
        if ext_err.is_some() {
            return Err(Stop::Error);
        }
        let (src, dst) = (ip.source_addr(), ip.destination_addr());
        let p = ip.payload();
        let proto = p.ip_number.0;
        let (payload, wire_len) = if p.fragmented {
            self.cov.ip_fragments += 1;
            let reassembled = match &ip {
                LaxIpSlice::Ipv4(v4) if !p.incomplete => {
                    let h = v4.header();
                    let frag = Fragment {
                        key: FragKey {
                            src,
                            dst,
                            id: u32::from(h.identification()),
                            proto,
                        },
                        offset: usize::from(h.fragments_offset().byte_offset()),
                        more: h.more_fragments(),
                        data: p.payload,
                        ts: self.frame.ts.nanos(),
                    };
                    match self.defrag.take() {
                        Some(defrag) => defrag.push(frag, self.cov),
                        None => {
                            self.cov.ip_fragments_dropped += 1;
                            None
                        }
                    }
                }
                // IPv6 fragments are rare (no on-path fragmentation, PMTUD): counted and
                // dropped. So are IPv4 fragments cut by the snaplen.
                _ => {
                    self.cov.ip_fragments_dropped += 1;
                    None
                }
            };
            let payload = reassembled.ok_or(Stop::Fragment)?;
            (payload, payload.len())
        } else if p.incomplete {
            // Cut by the snaplen: the IP length field still tells the length on the wire.
            let header_len = (p.payload.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize);
            let claimed = match &ip {
                LaxIpSlice::Ipv4(v4) => usize::from(v4.header().total_len()),
                LaxIpSlice::Ipv6(v6) => 40 + usize::from(v6.header().payload_length()),
            };
            (p.payload, claimed.saturating_sub(header_len))
        } else {
            (p.payload, p.payload.len())
        };
        match proto {
            IP_TCP => self
                .tcp(src, dst, payload, wire_len)
                .map(|s| Inner::Packet(Packet::Tcp(s))),
            IP_IPIP | IP_IPV6 => Ok(Inner::Tunnel(Next::Ip(payload))),
            IP_GRE => tunnel::gre(payload).map(Inner::Tunnel),
            IP_UDP => {
                let udp = UdpSlice::from_slice_lax(payload).map_err(|_| Stop::NonTcp)?;
                let inner = udp.payload();
                match udp.destination_port() {
                    tunnel::VXLAN_PORT | tunnel::VXLAN_LINUX_PORT => {
                        tunnel::vxlan(inner).map(Inner::Tunnel)
                    }
                    tunnel::GENEVE_PORT => tunnel::geneve(inner).map(Inner::Tunnel),
                    dst_port => Ok(Inner::Packet(Packet::Udp(Datagram {
                        ts: self.frame.ts,
                        source: self.frame.source,
                        src: Endpoint::new(src, udp.source_port()),
                        dst: Endpoint::new(dst, dst_port),
                        payload: inner,
                        truncated: wire_len > payload.len(),
                    }))),
                }
            }
            _ => Err(Stop::NonTcp),
        }
    }

    /// `wire_ip_payload`: the IP payload's length on the wire.
    fn tcp(
        &self,
        src: IpAddr,
        dst: IpAddr,
        bytes: &'a [u8],
        wire_ip_payload: usize,
    ) -> Result<Segment<'a>, Stop> {
        // Checksums are not verified: offload leaves them wrong in local captures.
        let tcp = TcpSlice::from_slice(bytes).map_err(|_| Stop::TcpMalformed)?;
        let header = tcp.header_slice();
        let wire_len = wire_ip_payload
            .checked_sub(header.len())
            .ok_or(Stop::TcpMalformed)?;
        Ok(Segment {
            ts: self.frame.ts,
            source: self.frame.source,
            src: Endpoint::new(src, tcp.source_port()),
            dst: Endpoint::new(dst, tcp.destination_port()),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: TcpFlags(header.get(13).copied().unwrap_or(0)),
            window: tcp.window_size(),
            mss: if tcp.syn() { syn_mss(&tcp) } else { None },
            payload: tcp.payload(),
            wire_len: u32::try_from(wire_len).unwrap_or(u32::MAX),
        })
    }
}

enum Inner<'a> {
    Packet(Packet<'a>),
    Tunnel(Next<'a>),
}

/// The MSS option of a SYN; malformed options end the search without an error (the rest of
/// the segment is still good).
fn syn_mss(tcp: &TcpSlice<'_>) -> Option<u16> {
    tcp.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
        _ => None,
    })
}
