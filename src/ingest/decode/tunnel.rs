//! Overlay tunnel headers, by hand (etherparse parses none of them): VXLAN, Geneve, GRE.
//! Each returns what follows the header; IP-in-IP needs no header of its own.

use super::link::ETH_BRIDGED;
use super::{Next, Stop};

pub(crate) const VXLAN_PORT: u16 = 4789;
/// Linux kernel's pre-IANA VXLAN port, still the default of flannel.
pub(crate) const VXLAN_LINUX_PORT: u16 = 8472;
pub(crate) const GENEVE_PORT: u16 = 6081;

/// ERSPAN type II and III ride on GRE with these protocol types; not decoded.
const ETH_ERSPAN_2: u16 = 0x88BE;
const ETH_ERSPAN_3: u16 = 0x22EB;

/// VXLAN (RFC 7348): 8-byte header with the I flag, then an Ethernet frame.
pub(crate) fn vxlan(data: &[u8]) -> Result<Next<'_>, Stop> {
    let Some((header, inner)) = data.split_first_chunk::<8>() else {
        return Err(Stop::Error);
    };
    if header[0] & 0x08 == 0 {
        return Err(Stop::Error);
    }
    Ok(Next::Ethernet(inner))
}

/// Geneve (RFC 8926): 8 bytes + options (6-bit length in 4-byte words), then the
/// protocol type says what follows (0x6558 Ethernet, else an EtherType).
pub(crate) fn geneve(data: &[u8]) -> Result<Next<'_>, Stop> {
    let Some(header) = data.first_chunk::<8>() else {
        return Err(Stop::Error);
    };
    if header[0] >> 6 != 0 {
        return Err(Stop::Error); // unknown version
    }
    let len = 8 + usize::from(header[0] & 0x3F) * 4;
    let inner = data.get(len..).ok_or(Stop::Error)?;
    Ok(ether_or_bridged(
        u16::from_be_bytes([header[2], header[3]]),
        inner,
    ))
}

/// GRE (RFC 2784/2890), version 0: the C, K and S flags each add 4 bytes to the 4-byte
/// base header. Routing (R, RFC 1701) and version 1 (PPTP) are not decoded.
pub(crate) fn gre(data: &[u8]) -> Result<Next<'_>, Stop> {
    let Some(header) = data.first_chunk::<4>() else {
        return Err(Stop::Error);
    };
    let flags = header[0];
    if flags & 0x40 != 0 || header[1] & 0x07 != 0 {
        return Err(Stop::NonTcp);
    }
    let len = 4 + 4 * [0x80u8, 0x20, 0x10]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count();
    let inner = data.get(len..).ok_or(Stop::Error)?;
    match u16::from_be_bytes([header[2], header[3]]) {
        ETH_ERSPAN_2 | ETH_ERSPAN_3 => Err(Stop::NonTcp),
        proto => Ok(ether_or_bridged(proto, inner)),
    }
}

fn ether_or_bridged(proto: u16, inner: &[u8]) -> Next<'_> {
    if proto == ETH_BRIDGED {
        Next::Ethernet(inner)
    } else {
        Next::Ether(proto, inner)
    }
}
