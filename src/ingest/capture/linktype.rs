//! Link-layer types linkrank decodes, from the pcap LINKTYPE_* registry.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1)
    Ethernet,
    /// LINKTYPE_NULL (0): 4-byte address family in the capturing host's byte order.
    Null,
    /// LINKTYPE_LOOP (108): 4-byte address family, big-endian.
    Loop,
    /// LINKTYPE_RAW (101), and the old DLT_RAW values 12/14: an IPv4 or IPv6 header first.
    RawIp,
    /// LINKTYPE_IPV4 (228)
    Ipv4,
    /// LINKTYPE_IPV6 (229)
    Ipv6,
    /// LINKTYPE_LINUX_SLL (113): Linux cooked capture v1.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2.
    LinuxSll2,
    /// Anything else, kept so it can be counted and reported.
    Other(u32),
}

impl LinkType {
    pub fn from_linktype(value: u32) -> LinkType {
        match value {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }
}
