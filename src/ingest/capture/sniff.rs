//! Format detection from the first bytes of a file. File names are never trusted: real
//! captures named `.pcap` are often pcapng, and compressed ones keep their inner name.

use std::fmt::Write as _;

/// How many leading bytes `sniff` needs to decide (pcapng needs its byte-order magic).
pub const SNIFF_LEN: usize = 12;

/// What the leading bytes say the stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Gzip,
    Pcap { nanos: bool, big_endian: bool },
    PcapNg { big_endian: bool },
    Unknown,
}

/// Classifies a stream by its first bytes (at least `SNIFF_LEN` of them unless the stream is
/// shorter).
pub fn sniff(head: &[u8]) -> Sniffed {
    if head.starts_with(&[0x1f, 0x8b]) {
        return Sniffed::Gzip;
    }
    let Some(magic) = head.get(..4) else {
        return Sniffed::Unknown;
    };
    match magic {
        [0xa1, 0xb2, 0xc3, 0xd4] => Sniffed::Pcap {
            nanos: false,
            big_endian: true,
        },
        [0xd4, 0xc3, 0xb2, 0xa1] => Sniffed::Pcap {
            nanos: false,
            big_endian: false,
        },
        [0xa1, 0xb2, 0x3c, 0x4d] => Sniffed::Pcap {
            nanos: true,
            big_endian: true,
        },
        [0x4d, 0x3c, 0xb2, 0xa1] => Sniffed::Pcap {
            nanos: true,
            big_endian: false,
        },
        // The SHB type is a palindrome; the byte-order magic after the length tells the order.
        [0x0a, 0x0d, 0x0d, 0x0a] => match head.get(8..12) {
            Some([0x4d, 0x3c, 0x2b, 0x1a]) => Sniffed::PcapNg { big_endian: false },
            Some([0x1a, 0x2b, 0x3c, 0x4d]) => Sniffed::PcapNg { big_endian: true },
            _ => Sniffed::Unknown,
        },
        _ => Sniffed::Unknown,
    }
}

/// The first bytes as lowercase hex for error messages (capped: it may be anything).
pub fn hex_prefix(head: &[u8]) -> String {
    if head.is_empty() {
        return "(empty file)".to_string();
    }
    let mut s = String::with_capacity(3 * SNIFF_LEN);
    for (i, b) in head.iter().take(SNIFF_LEN).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_magics_both_orders_and_resolutions() {
        let cases: [([u8; 4], bool, bool); 4] = [
            ([0xd4, 0xc3, 0xb2, 0xa1], false, false),
            ([0xa1, 0xb2, 0xc3, 0xd4], false, true),
            ([0x4d, 0x3c, 0xb2, 0xa1], true, false),
            ([0xa1, 0xb2, 0x3c, 0x4d], true, true),
        ];
        for (magic, nanos, big_endian) in cases {
            let mut head = magic.to_vec();
            head.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0]);
            assert_eq!(
                sniff(&head),
                Sniffed::Pcap { nanos, big_endian },
                "{magic:02x?}"
            );
        }
    }

    #[test]
    fn pcapng_byte_order_magic() {
        let le = [0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a];
        let be = [0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d];
        assert_eq!(sniff(&le), Sniffed::PcapNg { big_endian: false });
        assert_eq!(sniff(&be), Sniffed::PcapNg { big_endian: true });
        // SHB type with a wrong byte-order magic is not a capture.
        let bad = [0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        assert_eq!(sniff(&bad), Sniffed::Unknown);
        // Too short to carry the byte-order magic.
        assert_eq!(sniff(&le[..8]), Sniffed::Unknown);
    }

    #[test]
    fn gzip_and_garbage() {
        assert_eq!(sniff(&[0x1f, 0x8b, 0x08, 0x00]), Sniffed::Gzip);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniffed::Unknown);
        assert_eq!(sniff(&[]), Sniffed::Unknown);
        assert_eq!(sniff(&[0xd4, 0xc3, 0xb2]), Sniffed::Unknown);
        // Kuznetzov's modified pcap and other near misses are refused.
        assert_eq!(
            sniff(&[0x34, 0xcd, 0xb2, 0xa1, 0, 0, 0, 0]),
            Sniffed::Unknown
        );
    }

    #[test]
    fn hex_prefix_is_capped() {
        assert_eq!(hex_prefix(b"GET "), "47 45 54 20");
        assert_eq!(hex_prefix(&[0u8; 100]).split(' ').count(), SNIFF_LEN);
        assert_eq!(hex_prefix(&[]), "(empty file)");
    }
}
