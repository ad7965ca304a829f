//! One HPACK encoder (httlib-hpack) with the choices real HTTP/2 stacks make.
//!
//! httlib-hpack encodes what it is told: these choices are ours, taken from nghttp2 and the
//! Rust `h2` crate so that sizes match what they would send:
//! - Huffman per string only where it is shorter than the plain octets (both stacks).
//! - Incremental indexing, except for values that change per message or are secret:
//!   `:path` (HTTP/2 only, see [`Index`]), `age`, `content-length`, `etag`,
//!   `if-modified-since`, `if-none-match`, `location`, `cookie`, `set-cookie` (without
//!   indexing) and `authorization`, `proxy-authorization` (never indexed). Like nghttp2,
//!   an entry larger than 3/4 of the table is not indexed.
//!
//! Privacy: the dynamic table holds the values it indexes in memory while the connection
//! lives (that is what HPACK is); secrets are never indexed, and nothing is ever read back.

use httlib_hpack::Encoder;

/// SETTINGS_HEADER_TABLE_SIZE default (RFC 9113 §6.5.2).
pub const TABLE_SIZE: usize = 4096;

/// HPACK entry overhead (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// How a field may be represented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    Yes,
    No,
    Never,
}

/// The representation real stacks pick for a (lower-case) name. `path_indexed`: gRPC
/// stacks index `:path` (a method's path repeats), generic HTTP/2 stacks do not.
pub fn policy(name: &[u8], path_indexed: bool) -> Index {
    match name {
        b":path" if path_indexed => Index::Yes,
        b"authorization" | b"proxy-authorization" => Index::Never,
        b":path" | b"age" | b"content-length" | b"etag" | b"if-modified-since"
        | b"if-none-match" | b"location" | b"cookie" | b"set-cookie" => Index::No,
        _ => Index::Yes,
    }
}

/// An encoder and the size its dynamic table is known to stay within.
pub struct Hpack {
    enc: Encoder<'static>,
    huffman: bool,
    /// Upper bound of the dynamic table's size (RFC 7541 §4.1 octets), for the memory
    /// budget: the crate does not expose the table.
    held: usize,
}

impl Hpack {
    pub fn new(huffman: bool) -> Self {
        Hpack {
            enc: Encoder::with_dynamic_size(TABLE_SIZE as u32),
            huffman,
            held: 0,
        }
    }

    /// Table octets this encoder may hold.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Appends one field's representation to `out`.
    pub fn field(
        &mut self,
        name: &[u8],
        value: &[u8],
        index: Index,
        out: &mut Vec<u8>,
    ) -> Result<(), httlib_hpack::EncoderError> {
        let entry = name.len() + value.len() + ENTRY_OVERHEAD;
        let index = if index == Index::Yes && entry > TABLE_SIZE * 3 / 4 {
            Index::No
        } else {
            index
        };
        let mut flags = Encoder::BEST_FORMAT;
        flags |= match index {
            Index::Yes => Encoder::WITH_INDEXING,
            Index::Never => Encoder::NEVER_INDEXED,
            Index::No => 0,
        };
        if self.huffman && self.huffman_shorter(name) {
            flags |= Encoder::HUFFMAN_NAME;
        }
        if self.huffman && self.huffman_shorter(value) {
            flags |= Encoder::HUFFMAN_VALUE;
        }
        let start = out.len();
        self.enc
            .encode((name.to_vec(), value.to_vec(), flags), out)?;
        // `01xxxxxx`: a literal with incremental indexing, so the entry went into the table.
        if out.get(start).is_some_and(|b| b & 0xc0 == 0x40) {
            self.held = (self.held + entry).min(TABLE_SIZE);
        }
        Ok(())
    }

    /// Whether the Huffman form of `s` is shorter than its plain form, as nghttp2 and h2
    /// decide. The Huffman length comes from the crate itself: a literal without indexing
    /// with an empty name on a scratch encoder is `00 00` followed by the string.
    /// Whether the Huffman coding of `s` is shorter than the raw string, as h2 and nghttp2
    /// decide. The length comes from the bit lengths of httlib-huffman's own code table
    /// (RFC 7541 Appendix B), without encoding: this runs for every header of every
    /// exchange, twice (HTTP/2 and gRPC replays).
    fn huffman_shorter(&self, s: &[u8]) -> bool {
        !s.is_empty() && string_len(huffman_len(s)) < string_len(s.len())
    }
}

/// Bytes of the Huffman coding of `s` (RFC 7541 §5.2: padded to a whole byte).
fn huffman_len(s: &[u8]) -> usize {
    let table = &httlib_huffman::encoder::table::ENCODE_TABLE;
    let bits: usize = s
        .iter()
        .map(|&b| table.get(usize::from(b)).map_or(30, |e| usize::from(e.0)))
        .sum();
    bits.div_ceil(8)
}

fn string_len(n: usize) -> usize {
    n + integer_len(n, 7)
}

/// Octets of an HPACK integer with an `prefix`-bit prefix (RFC 7541 §5.1).
fn integer_len(n: usize, prefix: u32) -> usize {
    let max = (1usize << prefix) - 1;
    if n < max {
        return 1;
    }
    let mut rest = n - max;
    let mut len = 2;
    while rest >= 128 {
        rest >>= 7;
        len += 1;
    }
    len
}
