//! Link layers and the EtherType-level encapsulations below them (VLAN, MPLS).

use etherparse::{Ethernet2Slice, SingleVlanSlice};

use super::{Next, Stop};

pub(crate) const ETH_IPV4: u16 = 0x0800;
pub(crate) const ETH_IPV6: u16 = 0x86DD;
pub(crate) const ETH_VLAN: u16 = 0x8100;
pub(crate) const ETH_QINQ: u16 = 0x88A8;
pub(crate) const ETH_QINQ_OLD: u16 = 0x9100;
pub(crate) const ETH_MPLS_UC: u16 = 0x8847;
pub(crate) const ETH_MPLS_MC: u16 = 0x8848;
/// Transparent Ethernet bridging (GRE, Geneve).
pub(crate) const ETH_BRIDGED: u16 = 0x6558;

/// More tags than any real network stacks; a loop guard.
const MAX_VLAN_TAGS: usize = 4;
const MAX_MPLS_LABELS: usize = 16;

/// Ethernet II (no FCS: capture files do not carry it).
pub(crate) fn ethernet(data: &[u8]) -> Result<Next<'_>, Stop> {
    let eth = Ethernet2Slice::from_slice_without_fcs(data).map_err(|_| Stop::Error)?;
    Ok(Next::Ether(eth.ether_type().0, eth.payload_slice()))
}

/// One 802.1Q / 802.1ad tag (called once per tag, so QinQ is two calls).
pub(crate) fn vlan(data: &[u8]) -> Result<Next<'_>, Stop> {
    let tag = SingleVlanSlice::from_slice(data).map_err(|_| Stop::Error)?;
    Ok(Next::Ether(tag.ether_type().0, tag.payload_slice()))
}

pub(crate) const fn is_vlan(ether_type: u16) -> bool {
    matches!(ether_type, ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD)
}

pub(crate) const fn max_vlan_tags() -> usize {
    MAX_VLAN_TAGS
}

/// MPLS label stack, by hand (etherparse has no MPLS): 4-byte entries up to the one with
/// the bottom-of-stack bit, then IPv4/IPv6 by the version nibble. Anything else (an
/// Ethernet pseudowire, with or without control word) is not decoded.
pub(crate) fn mpls(data: &[u8]) -> Result<Next<'_>, Stop> {
    let mut rest = data;
    for _ in 0..MAX_MPLS_LABELS {
        let Some((entry, tail)) = rest.split_first_chunk::<4>() else {
            return Err(Stop::Error);
        };
        rest = tail;
        if entry[2] & 0x01 != 0 {
            return match rest.first().map(|b| b >> 4) {
                Some(4 | 6) => Ok(Next::Ip(rest)),
                Some(_) => Err(Stop::NonIp),
                None => Err(Stop::Error),
            };
        }
    }
    Err(Stop::Error)
}

/// LINKTYPE_NULL / LINKTYPE_LOOP: a 4-byte address family. NULL is in the capturing
/// host's byte order, which the file does not say, so both orders are tried (the family
/// values are small, so only one order gives a known one). LOOP is big-endian.
pub(crate) fn null(data: &[u8], big_endian_only: bool) -> Result<Next<'_>, Stop> {
    let Some((family, payload)) = data.split_first_chunk::<4>() else {
        return Err(Stop::Error);
    };
    let be = u32::from_be_bytes(*family);
    let le = u32::from_le_bytes(*family);
    let known = |f: u32| matches!(f, 2 | 24 | 28 | 30);
    let family = if big_endian_only || known(be) { be } else { le };
    match family {
        2 => Ok(Next::Ether(ETH_IPV4, payload)),
        24 | 28 | 30 => Ok(Next::Ether(ETH_IPV6, payload)),
        _ => Err(Stop::NonIp),
    }
}

/// LINKTYPE_RAW and friends: the IP version nibble says which.
pub(crate) fn raw_ip(data: &[u8]) -> Result<Next<'_>, Stop> {
    match data.first().map(|b| b >> 4) {
        Some(4 | 6) => Ok(Next::Ip(data)),
        Some(_) => Err(Stop::NonIp),
        None => Err(Stop::Error),
    }
}

/// Linux cooked capture v1, 16-byte header with the protocol at offset 14. By hand: the
/// header is trivial, and etherparse's `LinuxSllSlice` rejects ARPHRD types it does not
/// know (e.g. ARPHRD_LOOPBACK, 772, which `tcpdump -i any` records for `lo`) while the
/// protocol field is an EtherType for all the IP-carrying ones.
pub(crate) fn linux_sll(data: &[u8]) -> Result<Next<'_>, Stop> {
    let Some((header, payload)) = data.split_first_chunk::<16>() else {
        return Err(Stop::Error);
    };
    Ok(Next::Ether(
        u16::from_be_bytes([header[14], header[15]]),
        payload,
    ))
}

/// Linux cooked capture v2, by hand (etherparse has no SLL2): 20-byte header, protocol
/// type (EtherType) first, then reserved, ifindex, ARPHRD, packet type, address length
/// and an 8-byte address.
pub(crate) fn linux_sll2(data: &[u8]) -> Result<Next<'_>, Stop> {
    let Some((header, payload)) = data.split_first_chunk::<20>() else {
        return Err(Stop::Error);
    };
    Ok(Next::Ether(
        u16::from_be_bytes([header[0], header[1]]),
        payload,
    ))
}
