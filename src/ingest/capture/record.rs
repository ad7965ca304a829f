//! Record framing checked before pcap-parser sees a record. Knowing the declared length of
//! the next record first means the parser is only ever called on a complete record, so
//! "incomplete" never needs interpreting (end of file vs. a length field that lies), and a
//! length that no writer produces is refused before the buffer grows for it.

/// Largest packet accepted, as Wireshark (WTAP_MAX_PACKET_SIZE_STANDARD).
pub const MAX_CAPLEN: u32 = 262_144;
/// Largest pcapng block accepted; the read buffer grows up to this for one block.
pub const MAX_BLOCK: usize = 16 << 20;
/// Bytes of a pcap record header (ts_sec, ts_frac, caplen, origlen).
pub const PCAP_RECORD_HEADER: usize = 16;

const SHB_TYPE: u32 = 0x0A0D_0D0A;
/// pcapng "Packet Block", obsoleted by the EPB but still written by old tools.
pub const OBSOLETE_PACKET_BLOCK: u32 = 2;

fn u32_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn u16_at(data: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let b: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

/// Total length of the pcap record at the start of `data`: `Ok(None)` when even its header
/// is not in `data` yet, `Err` when the header is impossible.
pub fn pcap_record_len(data: &[u8], big_endian: bool) -> Result<Option<usize>, String> {
    let Some(caplen) = u32_at(data, 8, big_endian) else {
        return Ok(None);
    };
    if caplen > MAX_CAPLEN {
        return Err(format!(
            "record claims a {caplen}-byte packet, more than the {MAX_CAPLEN}-byte maximum"
        ));
    }
    Ok(Some(PCAP_RECORD_HEADER + caplen as usize))
}

/// Total length of the pcapng block at the start of `data`, read in the section's byte order
/// (or, for a section header, in the order its byte-order magic gives).
pub fn pcapng_block_len(data: &[u8], section_big_endian: bool) -> Result<Option<usize>, String> {
    let Some(block_type) = u32_at(data, 0, false) else {
        return Ok(None);
    };
    let big_endian = if block_type == SHB_TYPE {
        match data.get(8..12) {
            None => return Ok(None),
            Some([0x4d, 0x3c, 0x2b, 0x1a]) => false,
            Some([0x1a, 0x2b, 0x3c, 0x4d]) => true,
            Some(_) => return Err("section header with a bad byte-order magic".to_string()),
        }
    } else {
        section_big_endian
    };
    let Some(len) = u32_at(data, 4, big_endian) else {
        return Ok(None);
    };
    if len < 12 || len % 4 != 0 {
        return Err(format!("impossible block length {len}"));
    }
    if len as usize > MAX_BLOCK {
        return Err(format!(
            "block length {len} over the {MAX_BLOCK}-byte limit"
        ));
    }
    Ok(Some(len as usize))
}

/// The fields of an obsolete pcapng Packet Block, from the block body (after the length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObsoletePacket {
    pub if_id: u16,
    pub ts_units: u64,
    pub caplen: u32,
    pub origlen: u32,
    /// Offset of the packet data within the body.
    pub data_at: usize,
}

/// Parses a Packet Block body (pcap-parser returns it as an unknown block).
pub fn obsolete_packet(body: &[u8], big_endian: bool) -> Result<ObsoletePacket, String> {
    let short = || "packet block too short for its header".to_string();
    let if_id = u16_at(body, 0, big_endian).ok_or_else(short)?;
    let ts_high = u32_at(body, 4, big_endian).ok_or_else(short)?;
    let ts_low = u32_at(body, 8, big_endian).ok_or_else(short)?;
    let caplen = u32_at(body, 12, big_endian).ok_or_else(short)?;
    let origlen = u32_at(body, 16, big_endian).ok_or_else(short)?;
    let data_at = 20;
    if caplen > MAX_CAPLEN || data_at + caplen as usize > body.len() {
        return Err(format!(
            "packet block caplen {caplen} larger than the block"
        ));
    }
    Ok(ObsoletePacket {
        if_id,
        ts_units: (u64::from(ts_high) << 32) | u64::from(ts_low),
        caplen,
        origlen,
        data_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_record_lengths() {
        let mut hdr = [0u8; 16];
        hdr[8..12].copy_from_slice(&60u32.to_le_bytes());
        assert_eq!(pcap_record_len(&hdr, false), Ok(Some(76)));
        assert_eq!(pcap_record_len(&hdr[..11], false), Ok(None));
        hdr[8..12].copy_from_slice(&60u32.to_be_bytes());
        assert_eq!(pcap_record_len(&hdr, true), Ok(Some(76)));
        hdr[8..12].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
        assert!(pcap_record_len(&hdr, false).is_err());
        hdr[8..12].copy_from_slice(&MAX_CAPLEN.to_le_bytes());
        assert_eq!(
            pcap_record_len(&hdr, false),
            Ok(Some(16 + MAX_CAPLEN as usize))
        );
    }

    #[test]
    fn pcapng_block_lengths() {
        // EPB header, little-endian section
        let epb = [6, 0, 0, 0, 32, 0, 0, 0];
        assert_eq!(pcapng_block_len(&epb, false), Ok(Some(32)));
        assert_eq!(pcapng_block_len(&epb[..7], false), Ok(None));
        // same bytes in a big-endian section: 0x20000000, over the limit
        assert!(pcapng_block_len(&epb, true).is_err());
        assert!(pcapng_block_len(&[6, 0, 0, 0, 8, 0, 0, 0], false).is_err());
        assert!(pcapng_block_len(&[6, 0, 0, 0, 34, 0, 0, 0], false).is_err());
        // a big-endian SHB inside a little-endian section uses its own byte order
        let shb_be = [0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d];
        assert_eq!(pcapng_block_len(&shb_be, false), Ok(Some(28)));
        assert_eq!(pcapng_block_len(&shb_be[..10], false), Ok(None));
        let shb_bad = [0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 1, 2, 3, 4];
        assert!(pcapng_block_len(&shb_bad, false).is_err());
    }

    #[test]
    fn obsolete_packet_block_body() {
        let mut body = vec![];
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(&3u32.to_le_bytes());
        body.extend_from_slice(&9u32.to_le_bytes());
        body.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0]);
        let p = obsolete_packet(&body, false).unwrap();
        assert_eq!(
            p,
            ObsoletePacket {
                if_id: 1,
                ts_units: (1 << 32) | 2,
                caplen: 3,
                origlen: 9,
                data_at: 20
            }
        );
        body[12..16].copy_from_slice(&5u32.to_le_bytes());
        assert!(obsolete_packet(&body, false).is_err());
        assert!(obsolete_packet(&body[..10], false).is_err());
    }
}
