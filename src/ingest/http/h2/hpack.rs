//! HPACK decoding (RFC 7541) for a passive reader: one [`Decoder`] per direction of a
//! connection, tolerant of a dynamic table the capture never saw being filled.
//!
//! Hand-written table logic: the HPACK crates (`httlib-hpack`, `hpack`, `fluke-hpack`,
//! `loona-hpack`) stop a header block at the first index their table does not hold, and
//! their tables cannot stand for entries inserted before the capture began. A capture that
//! starts mid-connection needs both: a field that names such an entry is reported as
//! unknown and decoding goes on. Huffman strings are decoded by `httlib-huffman`.
//!
//! The dynamic table is the entries this decoder saw inserted (newest first), followed by
//! an unknown tail of entries inserted before the capture (or before a lost header
//! block). New entries always land at index 62 and push older ones back, so the learned
//! entries keep their right indexes whatever the tail holds; an index past them names the
//! tail, and is unknown. Eviction drops the oldest entries first, so the tail goes before
//! any learned entry, and a learned entry is evicted exactly when the learned entries
//! alone exceed the table's size. An entry whose name was unknown has an unknown size: it
//! counts as its smallest possible size (a 1-byte name), which may keep an entry the peer
//! already evicted, never drop one it still holds; an encoder never names an entry it
//! evicted, so keeping one too long changes no decoded field.
//!
//! Privacy: the table holds the values the peer indexed while the connection lives (that is
//! what HPACK is); callers keep only allowlisted values.

use std::collections::VecDeque;

use crate::ingest::hpack_static::STATIC_TABLE;
use httlib_huffman::DecoderSpeed;

/// SETTINGS_HEADER_TABLE_SIZE default (RFC 9113 §6.5.2).
pub(crate) const DEFAULT_TABLE_SIZE: usize = 4096;
/// The largest dynamic table kept, whatever a peer announces: a larger table keeps its
/// oldest entries only up to this size (later references to them are unknown).
pub(crate) const MAX_TABLE_SIZE: usize = 64 << 10;
/// RFC 7541 §4.1 per-entry overhead.
const ENTRY_OVERHEAD: usize = 32;

/// Why a header block could not be decoded to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HpackError {
    /// An integer or string runs past the block's end, or an integer is too large.
    Truncated,
    /// Index 0, or a Huffman string that does not decode.
    Invalid,
    /// A dynamic table size update above the size SETTINGS allowed, or not at the start.
    BadSizeUpdate,
}

/// What one header block held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlockStats {
    pub fields: u32,
    /// Fields whose name (and value, for an indexed field) is an entry this decoder never
    /// saw inserted.
    pub unknown: u32,
    /// Decoded size of the known fields: name + value + 32 each (RFC 9113 §6.5.2's
    /// header list size).
    pub decoded_bytes: u64,
}

/// One decoded field; `None` where the table entry it names is unknown.
pub(crate) struct Field<'a> {
    pub name: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

struct Entry {
    /// `None`: the literal named an unknown entry.
    name: Option<Box<[u8]>>,
    value: Box<[u8]>,
}

impl Entry {
    /// RFC 7541 §4.1 size; an unknown name counts as one byte (the smallest it could be).
    fn size(&self) -> usize {
        self.name.as_ref().map_or(1, |n| n.len()) + self.value.len() + ENTRY_OVERHEAD
    }
}

/// The decoding state of one direction of a connection.
pub(crate) struct Decoder {
    entries: VecDeque<Entry>,
    /// Sum of `entries`' sizes.
    size: usize,
    /// The table's maximum size as the encoder last set it (or the default).
    max_size: usize,
    /// The largest size the decoder's SETTINGS allow (what a size update may ask for).
    settings_max: usize,
    /// The table may hold entries this decoder never saw (mid-connection start or a lost
    /// header block).
    pub(crate) unknown_tail: bool,
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Decoder {
    /// `from_start`: the connection was seen from its first byte (the table is empty).
    pub(crate) fn new(from_start: bool) -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            settings_max: if from_start {
                DEFAULT_TABLE_SIZE
            } else {
                // SETTINGS may have raised it before the capture: accept any update.
                MAX_TABLE_SIZE
            },
            unknown_tail: !from_start,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    /// Bytes the table and scratch buffers hold.
    pub(crate) fn held_bytes(&self) -> usize {
        self.size + self.name_buf.capacity() + self.value_buf.capacity()
    }

    /// The decoding side announced SETTINGS_HEADER_TABLE_SIZE. A size update may name
    /// any size announced so far: the encoder may still be answering an earlier SETTINGS.
    pub(crate) fn set_settings_max(&mut self, n: u32) {
        self.settings_max = self.settings_max.max((n as usize).min(MAX_TABLE_SIZE));
    }

    /// Forgets every learned entry: the table holds entries the capture did not see (a
    /// header block was lost or could not be decoded).
    pub(crate) fn desync(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.unknown_tail = true;
        self.settings_max = self.settings_max.max(MAX_TABLE_SIZE);
        self.name_buf = Vec::new();
        self.value_buf = Vec::new();
    }

    /// Decodes one whole header block, calling `on_field` per field in order. On an error
    /// the fields before it were reported; the table is then out of step with the
    /// encoder's, so it is forgotten ([`Decoder::desync`]).
    pub(crate) fn decode(
        &mut self,
        block: &[u8],
        mut on_field: impl FnMut(Field<'_>),
    ) -> Result<BlockStats, HpackError> {
        let mut stats = BlockStats::default();
        let r = self.decode_inner(block, &mut stats, &mut on_field);
        if r.is_err() {
            self.desync();
        }
        r.map(|()| stats)
    }

    fn decode_inner(
        &mut self,
        block: &[u8],
        stats: &mut BlockStats,
        on_field: &mut impl FnMut(Field<'_>),
    ) -> Result<(), HpackError> {
        let mut pos = 0;
        let mut fields_seen = false;
        // Each pass consumes at least the representation's first byte.
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                let (index, n) = integer(&block[pos..], 7)?;
                pos += n;
                let (name, value) = lookup(&self.entries, index)?;
                stats.fields += 1;
                match (name, value) {
                    (Some(name), Some(value)) => {
                        stats.decoded_bytes += (name.len() + value.len() + ENTRY_OVERHEAD) as u64;
                        on_field(Field {
                            name: Some(name),
                            value: Some(value),
                        });
                    }
                    _ => {
                        stats.unknown += 1;
                        on_field(Field {
                            name: None,
                            value: None,
                        });
                    }
                }
                fields_seen = true;
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update: only before the first field (RFC 7541 §4.2).
                let (size, n) = integer(&block[pos..], 5)?;
                pos += n;
                if fields_seen || size > self.settings_max as u64 {
                    return Err(HpackError::BadSizeUpdate);
                }
                self.max_size = (size as usize).min(MAX_TABLE_SIZE);
                self.evict(0);
            } else {
                // Literal: with incremental indexing (01), without (0000) or never (0001).
                let (prefix, index_it) = if b & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let (index, n) = integer(&block[pos..], prefix)?;
                pos += n;
                let mut name_known = true;
                if index == 0 {
                    pos += string(&block[pos..], &mut self.name_buf)?;
                } else {
                    let (name, _) = lookup(&self.entries, index)?;
                    self.name_buf.clear();
                    match name {
                        Some(name) => self.name_buf.extend_from_slice(name),
                        None => name_known = false,
                    }
                }
                pos += string(&block[pos..], &mut self.value_buf)?;
                stats.fields += 1;
                if name_known {
                    stats.decoded_bytes +=
                        (self.name_buf.len() + self.value_buf.len() + ENTRY_OVERHEAD) as u64;
                } else {
                    stats.unknown += 1;
                }
                on_field(Field {
                    name: name_known.then_some(&self.name_buf[..]),
                    value: Some(&self.value_buf[..]),
                });
                if index_it {
                    let entry = Entry {
                        name: name_known.then(|| self.name_buf.as_slice().into()),
                        value: self.value_buf.as_slice().into(),
                    };
                    self.insert(entry);
                }
                fields_seen = true;
            }
        }
        Ok(())
    }

    fn insert(&mut self, e: Entry) {
        let size = e.size();
        if size > self.max_size {
            // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
            self.entries.clear();
            self.size = 0;
            self.unknown_tail = false;
            return;
        }
        self.evict(size);
        self.size += size;
        self.entries.push_front(e);
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.entries.pop_back() {
                Some(old) => self.size -= old.size(),
                None => break,
            }
        }
        if self.max_size == 0 {
            self.unknown_tail = false;
        }
    }
}

/// A table entry's name and value, `None` where unknown.
type EntryRef<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Name and value of a table index; `None` for a dynamic entry this decoder never saw.
fn lookup(entries: &VecDeque<Entry>, index: u64) -> Result<EntryRef<'_>, HpackError> {
    match index {
        0 => Err(HpackError::Invalid),
        1..=61 => {
            let (n, v) = STATIC_TABLE[index as usize - 1];
            Ok((Some(n.as_bytes()), Some(v.as_bytes())))
        }
        _ => {
            let k = usize::try_from(index - 62).unwrap_or(usize::MAX);
            Ok(match entries.get(k) {
                Some(e) => (e.name.as_deref(), Some(&e.value[..])),
                None => (None, None),
            })
        }
    }
}

/// RFC 7541 §5.1 integer with an `n`-bit prefix: (value, bytes used). Values past 2^32,
/// and more than 5 continuation bytes (zero-padded ones included), are refused: no real
/// block needs them, and they would overflow the arithmetic.
fn integer(b: &[u8], n: u32) -> Result<(u64, usize), HpackError> {
    let first = *b.first().ok_or(HpackError::Truncated)?;
    let max = (1u64 << n) - 1;
    let mut v = u64::from(first) & max;
    if v < max {
        return Ok((v, 1));
    }
    let mut shift = 0;
    for (i, &c) in b.iter().enumerate().skip(1).take(5) {
        v += u64::from(c & 0x7f) << shift;
        if v > u64::from(u32::MAX) {
            return Err(HpackError::Truncated);
        }
        if c & 0x80 == 0 {
            return Ok((v, i + 1));
        }
        shift += 7;
    }
    Err(HpackError::Truncated)
}

/// RFC 7541 §5.2 string literal into `out`: bytes used.
fn string(b: &[u8], out: &mut Vec<u8>) -> Result<usize, HpackError> {
    let huffman = b.first().is_some_and(|c| c & 0x80 != 0);
    let (len, n) = integer(b, 7)?;
    let end = n
        .checked_add(usize::try_from(len).map_err(|_| HpackError::Truncated)?)
        .filter(|&e| e <= b.len())
        .ok_or(HpackError::Truncated)?;
    out.clear();
    let raw = &b[n..end];
    if huffman {
        httlib_huffman::decode(raw, out, DecoderSpeed::FiveBits)
            .map_err(|_| HpackError::Invalid)?;
    } else {
        out.extend_from_slice(raw);
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::h2cost::tests::hex;

    type Decoded = Vec<(Option<String>, Option<String>)>;

    fn run(d: &mut Decoder, block: &[u8]) -> (Decoded, Result<BlockStats, HpackError>) {
        let mut out = Vec::new();
        let r = d.decode(block, |f| {
            out.push((
                f.name.map(|n| String::from_utf8_lossy(n).into_owned()),
                f.value.map(|v| String::from_utf8_lossy(v).into_owned()),
            ))
        });
        (out, r)
    }

    fn pair(n: &str, v: &str) -> (Option<String>, Option<String>) {
        (Some(n.to_owned()), Some(v.to_owned()))
    }

    /// RFC 7541 C.4: three requests with Huffman coding, one decoder.
    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = Decoder::new(true);
        let (f, r) = run(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        assert_eq!(
            f,
            vec![
                pair(":method", "GET"),
                pair(":scheme", "http"),
                pair(":path", "/"),
                pair(":authority", "www.example.com"),
            ]
        );
        assert_eq!(r.unwrap().unknown, 0);
        assert_eq!(d.size, 57);
        let (f, _) = run(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(f[3], pair(":authority", "www.example.com"));
        assert_eq!(f[4], pair("cache-control", "no-cache"));
        assert_eq!(d.size, 110);
        let (f, _) = run(
            &mut d,
            &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        );
        assert_eq!(f[2], pair(":path", "/index.html"));
        assert_eq!(f[3], pair(":authority", "www.example.com"));
        assert_eq!(f[4], pair("custom-key", "custom-value"));
        assert_eq!(d.size, 164);
    }

    /// RFC 7541 C.5: responses with a 256-byte table, so entries are evicted.
    #[test]
    fn rfc7541_c5_eviction() {
        let mut d = Decoder::new(true);
        d.max_size = 256;
        run(
            &mut d,
            &hex(
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                 6c65 2e63 6f6d",
            ),
        )
        .1
        .unwrap();
        assert_eq!(d.size, 222);
        let (f, _) = run(&mut d, &hex("4803 3330 37c1 c0bf"));
        assert_eq!(f[0], pair(":status", "307"));
        assert_eq!(f[1], pair("cache-control", "private"));
        assert_eq!(f[3], pair("location", "https://www.example.com"));
        assert_eq!(d.size, 222);
        assert_eq!(d.entries.len(), 4);
    }

    /// A table the capture never saw filled: indexes past the learned entries are unknown,
    /// decoding goes on, and entries learned afterwards are indexed right although older
    /// unknown ones sit behind them.
    #[test]
    fn unknown_entries_are_reported_and_learning_continues() {
        let mut d = Decoder::new(false);
        // 0xbe = index 62 (unknown), then literal with indexing `x-a: 1` (new name).
        let mut block = vec![0xbe, 0x40, 3];
        block.extend_from_slice(b"x-a");
        block.extend_from_slice(&[1, b'1']);
        // Literal without indexing, name = index 63 (unknown), value "v".
        block.extend_from_slice(&[0x0f, 63 - 15, 1, b'v']);
        let (f, r) = run(&mut d, &block);
        let r = r.unwrap();
        assert_eq!(r.fields, 3);
        assert_eq!(r.unknown, 2);
        assert_eq!(f[0], (None, None));
        assert_eq!(f[1], pair("x-a", "1"));
        assert_eq!(f[2], (None, Some("v".into())));
        // Next block: 62 is now `x-a: 1`; 63 is still unknown (the old 62).
        let (f, r) = run(&mut d, &[0xbe, 0xbf]);
        assert_eq!(f[0], pair("x-a", "1"));
        assert_eq!(f[1], (None, None));
        assert_eq!(r.unwrap().unknown, 1);
        // Literal with indexing whose name is unknown: inserted with an unknown name,
        // and `x-a` moves to 63.
        let (f, _) = run(&mut d, &[0x40 | 0x3f, 64 - 63, 1, b'z']);
        assert_eq!(f[0], (None, Some("z".into())));
        // Indexed, that entry is unknown as a field (its name is), and `x-a` is at 63.
        let (f, r) = run(&mut d, &[0xbe, 0xbf]);
        assert_eq!(f[0], (None, None));
        assert_eq!(f[1], pair("x-a", "1"));
        assert_eq!(r.unwrap().unknown, 1);
    }

    #[test]
    fn size_updates_evict_and_are_bounded_by_settings() {
        let mut d = Decoder::new(true);
        let mut block = vec![0x40, 1, b'a', 1, b'b'];
        run(&mut d, &block).1.unwrap();
        assert_eq!(d.size, 34);
        // Size update to 0 empties the table.
        let (_, r) = run(&mut d, &[0x20]);
        r.unwrap();
        assert_eq!(d.entries.len(), 0);
        // Above the SETTINGS maximum (4096) is refused, and the table is forgotten.
        let (_, r) = run(&mut d, &[0x3f, 0xe2, 0x1f]);
        assert_eq!(r, Err(HpackError::BadSizeUpdate));
        assert!(d.unknown_tail);
        // A size update after a field is refused too.
        let mut d = Decoder::new(true);
        block.push(0x20);
        assert_eq!(run(&mut d, &block).1, Err(HpackError::BadSizeUpdate));
    }

    #[test]
    fn malformed_blocks_are_errors_never_panics() {
        for block in [
            &[0x80][..],                                     // index 0
            &[0xff][..],                                     // integer cut
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..], // too large
            &[
                0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ][..], // zero-padded
            &[0x40, 5, b'a'][..],                            // string cut
            &[0x40, 0x81, 0xff][..],                         // bad Huffman (EOS padding too long)
        ] {
            let mut d = Decoder::new(true);
            assert!(run(&mut d, block).1.is_err(), "{block:?}");
        }
    }

    #[test]
    fn an_entry_larger_than_the_table_empties_it() {
        let mut d = Decoder::new(true);
        d.max_size = 40;
        run(&mut d, &[0x40, 1, b'a', 1, b'b']).1.unwrap();
        assert_eq!(d.entries.len(), 1);
        run(
            &mut d,
            &[
                0x40, 1, b'a', 8, b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7',
            ],
        )
        .1
        .unwrap();
        assert_eq!(d.entries.len(), 0);
    }
}
