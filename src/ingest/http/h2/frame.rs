//! HTTP/2 frame headers (RFC 9113 §4.1) and the checks that tell frames from other bytes.

/// Bytes of a frame header.
pub(crate) const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE default and the largest a peer may set (RFC 9113 §6.5.2).
pub(crate) const DEFAULT_MAX_FRAME: u32 = 16_384;
pub(crate) const LARGEST_MAX_FRAME: u32 = (1 << 24) - 1;

pub(crate) const DATA: u8 = 0x0;
pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const PRIORITY: u8 = 0x2;
pub(crate) const RST_STREAM: u8 = 0x3;
pub(crate) const SETTINGS: u8 = 0x4;
pub(crate) const PUSH_PROMISE: u8 = 0x5;
pub(crate) const PING: u8 = 0x6;
pub(crate) const GOAWAY: u8 = 0x7;
pub(crate) const WINDOW_UPDATE: u8 = 0x8;
pub(crate) const CONTINUATION: u8 = 0x9;

pub(crate) const END_STREAM: u8 = 0x1;
pub(crate) const ACK: u8 = 0x1;
pub(crate) const END_HEADERS: u8 = 0x4;
pub(crate) const PADDED: u8 = 0x8;
pub(crate) const PRIORITY_FLAG: u8 = 0x20;

/// One frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Reads the 9 bytes at the start of `b` (at least [`HEADER_LEN`] long).
    pub(crate) fn parse(b: &[u8; HEADER_LEN]) -> Head {
        Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5] & 0x7f, b[6], b[7], b[8]]),
        }
    }

    /// The first 9 bytes of `b` as a header, if there are 9.
    pub(crate) fn peek(b: &[u8]) -> Option<Head> {
        b.get(..HEADER_LEN)
            .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
            .map(Head::parse)
    }

    /// Whether these 9 bytes could be a frame header a real peer sent, within a frame
    /// size of `max_frame`: a known type, flags that type defines, the stream id its type
    /// requires (0 or not 0), the reserved bit clear, and the fixed lengths of the fixed
    /// frames. Unknown frame types are legal (RFC 9113 §4.1) but are refused here, where
    /// the question is whether bytes are HTTP/2 at all.
    pub(crate) fn plausible(b: &[u8], max_frame: u32) -> bool {
        let Some(h) = Head::peek(b) else {
            return false;
        };
        if b[5] & 0x80 != 0 || h.len > max_frame {
            return false;
        }
        let on_stream = h.stream != 0;
        let (flags, stream_ok, len_ok) = match h.kind {
            DATA => (END_STREAM | PADDED, on_stream, true),
            HEADERS => (
                END_STREAM | END_HEADERS | PADDED | PRIORITY_FLAG,
                on_stream,
                h.len > 0,
            ),
            PRIORITY => (0, on_stream, h.len == 5),
            RST_STREAM => (0, on_stream, h.len == 4),
            SETTINGS => (
                ACK,
                !on_stream,
                h.len % 6 == 0 && (h.flags & ACK == 0 || h.len == 0),
            ),
            PUSH_PROMISE => (END_HEADERS | PADDED, on_stream, h.len >= 4),
            PING => (ACK, !on_stream, h.len == 8),
            GOAWAY => (0, !on_stream, h.len >= 8),
            WINDOW_UPDATE => (0, true, h.len == 4),
            CONTINUATION => (END_HEADERS, on_stream, true),
            _ => return false,
        };
        h.flags & !flags == 0 && stream_ok && len_ok
    }
}

/// How `b` reads as frames laid end to end from its start: the number of plausible frame
/// headers met (at most `limit`; the last frame may run past `b`'s end), and whether the
/// frames end exactly at `b`'s end. Used to find frames in a stream that did not start with
/// the connection preface (a capture that began mid-connection, or after a gap).
pub(crate) fn walk(b: &[u8], max_frame: u32, limit: usize) -> (usize, bool) {
    let mut pos = 0usize;
    let mut seen = 0;
    // Each pass moves `pos` forward by at least a header's 9 bytes.
    while seen < limit {
        let rest = &b[pos..];
        if rest.is_empty() {
            return (seen, true);
        }
        match Head::peek(rest) {
            Some(h) if Head::plausible(rest, max_frame) => {
                seen += 1;
                let next = pos + HEADER_LEN + h.len as usize;
                if next > b.len() {
                    return (seen, false);
                }
                pos = next;
            }
            _ => return (seen, false),
        }
    }
    (seen, pos == b.len())
}

/// RFC 9113 §7 error codes by name.
pub(crate) fn error_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(len: u32, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
        let mut v = len.to_be_bytes()[1..].to_vec();
        v.push(kind);
        v.push(flags);
        v.extend_from_slice(&stream.to_be_bytes());
        v
    }

    #[test]
    fn parse_reads_all_fields_and_drops_the_reserved_bit() {
        let mut b = head(0x01_02_03, HEADERS, 0x25, 7);
        b[5] |= 0x80;
        let h = Head::peek(&b).unwrap();
        assert_eq!(
            h,
            Head {
                len: 0x010203,
                kind: HEADERS,
                flags: 0x25,
                stream: 7
            }
        );
        assert!(!Head::plausible(&b, LARGEST_MAX_FRAME), "reserved bit set");
        assert!(Head::peek(&b[..8]).is_none());
    }

    #[test]
    fn plausibility_by_type() {
        let m = DEFAULT_MAX_FRAME;
        assert!(Head::plausible(&head(6, SETTINGS, 0, 0), m));
        assert!(Head::plausible(&head(0, SETTINGS, ACK, 0), m));
        assert!(
            !Head::plausible(&head(6, SETTINGS, ACK, 0), m),
            "ACK with a body"
        );
        assert!(
            !Head::plausible(&head(7, SETTINGS, 0, 0), m),
            "not a multiple of 6"
        );
        assert!(!Head::plausible(&head(6, SETTINGS, 0, 1), m), "on a stream");
        assert!(Head::plausible(&head(8, PING, ACK, 0), m));
        assert!(!Head::plausible(&head(9, PING, 0, 0), m));
        assert!(Head::plausible(&head(4, WINDOW_UPDATE, 0, 0), m));
        assert!(Head::plausible(&head(4, WINDOW_UPDATE, 0, 3), m));
        assert!(Head::plausible(&head(100, DATA, END_STREAM | PADDED, 1), m));
        assert!(!Head::plausible(&head(100, DATA, END_HEADERS, 1), m));
        assert!(
            !Head::plausible(&head(100, DATA, 0, 0), m),
            "DATA on stream 0"
        );
        assert!(
            !Head::plausible(&head(m + 1, DATA, 0, 1), m),
            "over the max frame"
        );
        assert!(!Head::plausible(&head(0, HEADERS, END_HEADERS, 1), m));
        assert!(!Head::plausible(&head(4, 0x0a, 0, 1), m), "unknown type");
        assert!(!Head::plausible(b"GET / HTTP/1.1\r\n", m));
    }

    #[test]
    fn walks_count_plausible_frames_end_to_end() {
        let m = DEFAULT_MAX_FRAME;
        let mut b = head(4, WINDOW_UPDATE, 0, 0);
        b.extend_from_slice(&[0, 0, 1, 0]);
        b.extend(head(8, PING, 0, 0));
        b.extend_from_slice(&[0; 8]);
        assert_eq!(walk(&b, m, 8), (2, true));
        assert_eq!(walk(&b, m, 1), (1, false));
        // A third frame cut short still counts, and the walk does not end exactly.
        let mut c = b.clone();
        c.extend(head(100, DATA, 0, 1));
        c.extend_from_slice(&[0; 10]);
        assert_eq!(walk(&c, m, 8), (3, false));
        // One byte off: nothing.
        assert_eq!(walk(&b[1..], m, 8), (0, false));
        // Bytes after the frames that are no frame header.
        let mut d = b.clone();
        d.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(walk(&d, m, 8), (2, false));
        assert_eq!(walk(&[], m, 8), (0, true));
    }
}
