//! The size of what one HPACK encoder would write, with the choices real HTTP/2 stacks
//! make.
//!
//! An encoder encodes what it is told: these choices are ours, taken from nghttp2 and the
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

use std::collections::VecDeque;
use std::hash::Hasher;
use std::sync::LazyLock;

use rustc_hash::FxHashMap;

use crate::ingest::hpack_static::STATIC_TABLE;

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

/// A static-table name's (value, index) entries, lowest index first.
type StaticEntries = Vec<(&'static [u8], usize)>;

/// The static table by name.
static STATIC_BY_NAME: LazyLock<FxHashMap<&'static [u8], StaticEntries>> = LazyLock::new(|| {
    let mut m: FxHashMap<&'static [u8], StaticEntries> = FxHashMap::default();
    for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
        m.entry(n.as_bytes())
            .or_default()
            .push((v.as_bytes(), i + 1));
    }
    m
});

/// One dynamic-table entry, the number of its insertion and the hashes it is found by.
struct Entry {
    /// The name, then the value.
    field: Vec<u8>,
    name_len: usize,
    seq: u64,
    field_hash: u64,
    name_hash: u64,
}

impl Entry {
    fn name(&self) -> &[u8] {
        self.field.get(..self.name_len).unwrap_or_default()
    }

    fn is(&self, name: &[u8], value: &[u8]) -> bool {
        self.field.split_at(self.name_len) == (name, value)
    }

    /// RFC 7541 §4.1 size.
    fn size(&self) -> usize {
        self.field.len() + ENTRY_OVERHEAD
    }
}

/// Evicted buffers kept for the next insertions: most fields fit this many octets, and
/// a full table evicts about as many buffers as it takes (at most
/// `SPARE_BUFFERS * SPARE_CAPACITY` octets beside the table per encoder).
const SPARE_BUFFERS: usize = 8;
const SPARE_CAPACITY: usize = 256;

/// The octets an HPACK encoder writes for each field, without writing them.
///
/// The replay runs four encoders for every exchange and needs only sizes, while the
/// HPACK crates write the octets and search their tables linearly (httlib-hpack also
/// copies every name and value, and Huffman-codes them). This one decides exactly as
/// httlib-hpack's encoder with `BEST_FORMAT` does (`Table::find`: the first full match
/// in index order, else the first name match; static entries before dynamic ones,
/// newest dynamic entry first) and keeps the same table (RFC 7541 §4.4 eviction), with
/// hash maps from field and name to their newest entry. The tests check it octet count
/// for octet count against httlib-hpack.
pub struct Hpack {
    huffman: bool,
    /// Dynamic table, oldest entry at the front.
    entries: VecDeque<Entry>,
    /// RFC 7541 §4.1 size of the dynamic table.
    size: usize,
    /// Insertions so far; the newest entry's `seq` is `inserted - 1`.
    inserted: u64,
    /// The newest entry of each field hash ([`field_hash`]) and of each name hash: keyed
    /// by hash, so that a lookup neither copies nor allocates a key. Two fields (or
    /// names) with one hash share a slot, which holds the newest of them; a lookup that
    /// finds another field there scans the table (see [`Hpack::newest`]). A slot is
    /// emptied when its entry is evicted: entries leave oldest first, so no entry with
    /// that hash is left, and an empty slot means the field is not in the table.
    by_field: FxHashMap<u64, u64>,
    by_name: FxHashMap<u64, u64>,
    /// Buffers of evicted entries, reused by the next insertions: in a full table every
    /// insertion evicts, and without them each would allocate and free a buffer.
    spare: Vec<Vec<u8>>,
    /// Tests: every field and name hashes alike, so that every lookup takes the scan.
    #[cfg(test)]
    collide: bool,
}

/// A field's hash in `by_field`: the name's length, the name, the value.
fn field_hash(name: &[u8], value: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write_usize(name.len());
    h.write(name);
    h.write(value);
    h.finish()
}

fn name_hash(name: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(name);
    h.finish()
}

/// What the table offers a field.
enum Found {
    /// Name and value: the field is one index.
    Field(usize),
    /// The name only.
    Name(usize),
    None,
}

impl Hpack {
    pub fn new(huffman: bool) -> Self {
        Hpack {
            huffman,
            entries: VecDeque::new(),
            size: 0,
            inserted: 0,
            by_field: FxHashMap::default(),
            by_name: FxHashMap::default(),
            spare: Vec::new(),
            #[cfg(test)]
            collide: false,
        }
    }

    /// An encoder whose fields and names all share one hash (tests of the scan).
    #[cfg(test)]
    pub(crate) fn colliding(huffman: bool) -> Self {
        Hpack {
            collide: true,
            ..Hpack::new(huffman)
        }
    }

    fn field_hash(&self, name: &[u8], value: &[u8]) -> u64 {
        #[cfg(test)]
        if self.collide {
            return 0;
        }
        field_hash(name, value)
    }

    fn name_hash(&self, name: &[u8]) -> u64 {
        #[cfg(test)]
        if self.collide {
            return 0;
        }
        name_hash(name)
    }

    /// Empties the dynamic table: the encoder is then in a new one's state, with the
    /// entries' buffers kept as spares (up to the usual bound) and the maps' capacity.
    pub fn clear(&mut self) {
        while let Some(old) = self.entries.pop_front() {
            self.keep(old.field);
        }
        self.by_field.clear();
        self.by_name.clear();
        self.size = 0;
        self.inserted = 0;
    }

    /// Octets the dynamic table holds (RFC 7541 §4.1 size, at most [`TABLE_SIZE`]).
    pub fn held_bytes(&self) -> usize {
        self.size
    }

    /// The octets of one field's representation; an indexed field enters the table.
    pub fn field(&mut self, name: &[u8], value: &[u8], index: Index) -> usize {
        let entry = name.len() + value.len() + ENTRY_OVERHEAD;
        let index = if index == Index::Yes && entry > TABLE_SIZE * 3 / 4 {
            Index::No
        } else {
            index
        };
        // Literal forms: 6-bit index prefix with incremental indexing, 4-bit otherwise.
        let prefix = if index == Index::Yes { 6 } else { 4 };
        let octets = match self.find(name, value) {
            Found::Field(i) => return integer_len(i, 7),
            Found::Name(i) => integer_len(i, prefix) + self.string_len(value),
            Found::None => 1 + self.string_len(name) + self.string_len(value),
        };
        if index == Index::Yes {
            self.insert(name, value);
        }
        octets
    }

    /// Octets of a string literal: Huffman-coded where that is shorter.
    fn string_len(&self, s: &[u8]) -> usize {
        if self.huffman && huffman_shorter(s) {
            string_len(huffman_len(s))
        } else {
            string_len(s.len())
        }
    }

    fn find(&mut self, name: &[u8], value: &[u8]) -> Found {
        let statics = STATIC_BY_NAME.get(name);
        if let Some(&(_, i)) = statics.and_then(|e| e.iter().find(|(v, _)| *v == value)) {
            return Found::Field(i);
        }
        let slot = self.by_field.get(&self.field_hash(name, value)).copied();
        if let Some(seq) = self.newest(slot, |e| e.is(name, value)) {
            return Found::Field(self.dynamic_index(seq));
        }
        if let Some(&(_, i)) = statics.and_then(|e| e.first()) {
            return Found::Name(i);
        }
        let slot = self.by_name.get(&self.name_hash(name)).copied();
        match self.newest(slot, |e| e.name() == name) {
            Some(seq) => Found::Name(self.dynamic_index(seq)),
            None => Found::None,
        }
    }

    /// The newest entry that `is` accepts, given the `seq` its hash slot holds: that
    /// entry when it is the one (always but for a hash collision), else the newest in a
    /// scan of the table; none when the slot is empty.
    fn newest(&self, slot: Option<u64>, is: impl Fn(&Entry) -> bool) -> Option<u64> {
        let seq = slot?;
        let first = self.inserted - self.entries.len() as u64;
        let entry = self
            .entries
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)?;
        if is(entry) {
            return Some(seq);
        }
        self.entries.iter().rev().find(|e| is(e)).map(|e| e.seq)
    }

    /// The index of the dynamic entry inserted `seq`-th: 62 is the newest.
    fn dynamic_index(&self, seq: u64) -> usize {
        STATIC_TABLE.len() + 1 + (self.inserted - 1 - seq) as usize
    }

    /// Only called for a field the table lacks (`find` found no full match).
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let seq = self.inserted;
        self.inserted += 1;
        self.size += name.len() + value.len() + ENTRY_OVERHEAD;
        let (field_hash, name_hash) = (self.field_hash(name, value), self.name_hash(name));
        self.by_field.insert(field_hash, seq);
        self.by_name.insert(name_hash, seq);
        let mut field = self.spare.pop().unwrap_or_default();
        field.clear();
        field.extend_from_slice(name);
        field.extend_from_slice(value);
        self.entries.push_back(Entry {
            field,
            name_len: name.len(),
            seq,
            field_hash,
            name_hash,
        });
        // An entry larger than the table empties it, itself included (RFC 7541 §4.4).
        while self.size > TABLE_SIZE {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.size -= old.size();
            if self.by_field.get(&old.field_hash) == Some(&old.seq) {
                self.by_field.remove(&old.field_hash);
            }
            if self.by_name.get(&old.name_hash) == Some(&old.seq) {
                self.by_name.remove(&old.name_hash);
            }
            self.keep(old.field);
        }
    }

    /// Keeps an emptied buffer for reuse, if it is small and the spares are few.
    fn keep(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && buf.capacity() <= SPARE_CAPACITY {
            self.spare.push(buf);
        }
    }
}

/// Whether the Huffman coding of `s` is shorter than the raw string, as h2 and nghttp2
/// decide. The length comes from the bit lengths of httlib-huffman's own code table
/// (RFC 7541 Appendix B), without encoding.
fn huffman_shorter(s: &[u8]) -> bool {
    !s.is_empty() && string_len(huffman_len(s)) < string_len(s.len())
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
