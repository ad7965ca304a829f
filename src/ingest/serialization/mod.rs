//! Serialization cost: what the JSON bodies of each (client, server, route, direction) cost
//! and what the same documents would cost as protobuf.
//!
//! The HTTP stage hands every finished body to a [`Sampler`]: JSON bodies (decoded from
//! gzip/deflate first) are kept in memory, bounded, and every other body is counted by kind.
//! At the end of the run [`Sampler::finish`] infers a protobuf schema per key
//! ([`schema`]), encodes the kept documents with it, times JSON parsing and protobuf
//! decoding, and returns one [`PayloadRow`] per key: sizes and counts only. No body value
//! ever leaves memory: neither the documents nor the inferred schema (whose names are
//! synthetic) reach a record, a log line or an error.

pub mod calibration;
mod drift;
pub mod json;
pub mod schema;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use json::Json;
use prost_reflect::DynamicMessage;

use crate::model::{Coverage, Direction, Exchange};
use schema::Schema;

/// Bounds of the sampler (see docs/engine.md).
#[derive(Clone, Copy, Debug)]
pub struct SamplerConfig {
    /// Largest decoded JSON body kept; larger ones are counted as `oversized`.
    pub max_body_bytes: usize,
    /// Documents kept per key (a reservoir sample of the key's JSON bodies).
    pub max_docs_per_key: usize,
    /// Document bytes kept across all keys.
    pub max_total_bytes: usize,
    /// Keys tracked; bodies of further keys are counted in `Coverage` only.
    pub max_keys: usize,
    /// CPU time spent timing parse and decode, for the whole run.
    pub cpu_budget: Duration,
    /// Infer enums for low-cardinality strings (see [`schema`]); off, such strings stay
    /// `string`, as in a .proto that does not use enums.
    pub infer_enums: bool,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            max_body_bytes: 256 << 10,
            max_docs_per_key: 32,
            max_total_bytes: 64 << 20,
            max_keys: 4096,
            cpu_budget: Duration::from_secs(2),
            infer_enums: true,
        }
    }
}

/// Timing per key: repeat until this much time was spent, or `MAX_ROUNDS` rounds.
const MIN_TIMING: Duration = Duration::from_millis(2);
const MAX_ROUNDS: u32 = 50;

/// What a body's media type says it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    Xml,
    Multipart,
    Text,
    Other,
    Empty,
}

impl BodyKind {
    /// The kind of a body from its Content-Type and length; None for a message without
    /// body and without Content-Type (a GET, a 204: no payload at all).
    pub fn of(content_type: Option<&str>, len: u64) -> Option<BodyKind> {
        let Some(ct) = content_type else {
            return (len > 0).then_some(BodyKind::Other);
        };
        if len == 0 {
            return Some(BodyKind::Empty);
        }
        let mt = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        Some(if is_json_media_type(&mt) {
            BodyKind::Json
        } else if mt == "application/x-www-form-urlencoded" {
            BodyKind::Form
        } else if mt.ends_with("/xml") || mt.ends_with("+xml") {
            BodyKind::Xml
        } else if mt.starts_with("multipart/") {
            BodyKind::Multipart
        } else if mt.starts_with("text/") {
            BodyKind::Text
        } else {
            BodyKind::Other
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            BodyKind::Json => "json",
            BodyKind::Form => "form",
            BodyKind::Xml => "xml",
            BodyKind::Multipart => "multipart",
            BodyKind::Text => "text",
            BodyKind::Other => "other",
            BodyKind::Empty => "empty",
        }
    }
}

fn is_json_media_type(mt: &str) -> bool {
    mt == "application/json" || mt == "text/json" || mt.ends_with("+json")
}

/// Whether a Content-Type value names JSON (`application/json`, `text/json`, `*/*+json`).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let mt = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        is_json_media_type(&mt)
    })
}

/// The bytes of one JSON body the sampler admitted, as they stream in (decoded), up to the
/// per-body cap. Only admitted bodies are copied: see [`Sampler::admit`].
#[derive(Debug)]
pub struct Capture {
    key: SampleKey,
    rank: BodyRank,
    buf: Vec<u8>,
    cap: usize,
    oversized: bool,
}

impl Capture {
    pub fn push(&mut self, b: &[u8]) {
        if self.oversized {
            return;
        }
        if self.buf.len() + b.len() > self.cap {
            self.oversized = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(b);
    }
}

/// Which messages' bodies are pooled together.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SampleKey {
    pub client_ip: IpAddr,
    pub server_ip: IpAddr,
    pub server_port: u16,
    pub method: String,
    pub route: String,
    /// `request` or `response`.
    pub direction: &'static str,
}

/// A body's place in its key's sample: the bodies with the lowest ranks are kept (a
/// bottom-k sample). The priority is a hash of the body's identity, so which bodies are
/// kept does not depend on the order they finish in, nor on how the connections were
/// shared among threads: samplers merge exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BodyRank {
    priority: u64,
    conn: u64,
    index: u32,
    direction: u8,
}

impl BodyRank {
    pub fn of(ex: &Exchange, dir: Direction) -> BodyRank {
        let direction = dir.index() as u8;
        let id = ex.conn.0 ^ (u64::from(ex.index) << 40) ^ (u64::from(direction) << 63);
        BodyRank {
            priority: splitmix(splitmix(id) ^ ex.conn.0.rotate_left(17)),
            conn: ex.conn.0,
            index: ex.index,
            direction,
        }
    }
}

impl SampleKey {
    pub fn of(ex: &Exchange, dir: Direction) -> SampleKey {
        SampleKey {
            client_ip: ex.client.ip,
            server_ip: ex.server.ip,
            server_port: ex.server.port,
            method: ex.method.clone().unwrap_or_default(),
            route: ex.route.clone().unwrap_or_default(),
            direction: match dir {
                Direction::ClientToServer => "request",
                Direction::ServerToClient => "response",
            },
        }
    }
}

/// What the HTTP stage says about one finished body.
pub enum Offer {
    /// An admitted JSON body, whole (decoded).
    Json(Box<Capture>),
    /// An admitted JSON body that could not be kept: cut by a gap or the end, or
    /// undecodable.
    AdmittedLost,
    /// An admitted body that turned out empty: counted as that kind, not as JSON.
    AdmittedNotJson(BodyKind),
    /// A JSON body that was never admitted because it cannot be measured (a coding we do
    /// not undo, such as br).
    JsonLost,
    /// Any other body, by kind.
    Other(BodyKind),
}

struct Doc {
    rank: BodyRank,
    bytes: Vec<u8>,
}

/// One key's sample and counts. Every JSON body counted in `bodies` is either kept in
/// `docs` or dropped, so the dropped count is `bodies - docs.len()`.
#[derive(Default)]
struct KeyState {
    /// At most `max_docs_per_key`, in no particular order.
    docs: Vec<Doc>,
    bodies: u64,
    oversized: u64,
    other: BTreeMap<&'static str, u64>,
}

impl KeyState {
    /// The kept document with the highest rank (the first to go) and its place.
    fn worst(&self) -> Option<(usize, BodyRank)> {
        self.docs
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.rank))
            .max_by_key(|&(_, r)| r)
    }

    fn dropped(&self) -> u64 {
        self.bodies.saturating_sub(self.docs.len() as u64)
    }
}

/// The sampler's counters, merged into [`Coverage`] at the end of the run (`kept` and
/// `dropped` are derived from the keys' states).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SamplerCounts {
    pub kept: u64,
    pub dropped: u64,
    pub oversized: u64,
    pub memory_cap_hits: u64,
    pub keys_over_cap: u64,
}

/// Keeps a bounded sample of JSON bodies per key; see the module docs.
///
/// Sampling is a bottom-k sample per key: every body gets a pseudo-random rank from its
/// identity (connection, exchange, direction, see [`BodyRank`]) and the `max_docs_per_key`
/// lowest ranks are kept, a uniform sample without replacement in which late bodies stand
/// the same chance as early ones. It does not depend on arrival order, so the samplers of
/// several threads [`merge`](Sampler::merge) into exactly the one sample a single thread
/// would have kept. Past the total memory bound a body is only kept by replacing one of
/// its key's documents, never by growing (and then the sample depends on the order).
pub struct Sampler {
    cfg: SamplerConfig,
    keys: BTreeMap<SampleKey, KeyState>,
    held: usize,
    counts: SamplerCounts,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new(SamplerConfig::default())
    }
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Sampler {
        Sampler {
            cfg,
            keys: BTreeMap::new(),
            held: 0,
            counts: SamplerCounts::default(),
        }
    }

    /// Counts a JSON body about to stream in and decides, now, whether the sample may keep
    /// it; only then does the body get a [`Capture`] that copies its bytes. A body ranked
    /// below the key's worst kept document (or any while the key has room) is admitted;
    /// the bodies the sample will not keep, most of them on a busy link, are never copied.
    pub fn admit(&mut self, key: SampleKey, rank: BodyRank) -> Option<Box<Capture>> {
        if !self.keys.contains_key(&key) && self.keys.len() >= self.cfg.max_keys {
            self.counts.keys_over_cap += 1;
            self.counts.dropped += 1;
            return None;
        }
        let max = self.cfg.max_docs_per_key;
        // The key is cloned only for its first body: `entry` would clone it for every one.
        let st = match self.keys.get_mut(&key) {
            Some(st) => st,
            None => self.keys.entry(key.clone()).or_default(),
        };
        st.bodies += 1;
        if st.docs.len() >= max && st.worst().is_none_or(|(_, w)| rank > w) {
            return None;
        }
        Some(Box::new(Capture {
            key,
            rank,
            buf: Vec::new(),
            cap: self.cfg.max_body_bytes,
            oversized: false,
        }))
    }

    /// Bytes of documents held.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    pub fn counts(&self) -> SamplerCounts {
        let mut c = self.counts;
        c.kept = self.keys.values().map(|k| k.docs.len() as u64).sum();
        c.dropped += self.keys.values().map(KeyState::dropped).sum::<u64>();
        c
    }

    /// Adds the sample and counts of another sampler that saw other connections (another
    /// thread's). The result keeps the bodies one sampler fed everything would have kept,
    /// unless a bound (memory, keys) was reached.
    pub fn merge(&mut self, other: Sampler) {
        self.counts.dropped += other.counts.dropped;
        self.counts.memory_cap_hits += other.counts.memory_cap_hits;
        self.counts.keys_over_cap += other.counts.keys_over_cap;
        self.counts.oversized += other.counts.oversized;
        for (key, theirs) in other.keys {
            if !self.keys.contains_key(&key) && self.keys.len() >= self.cfg.max_keys {
                self.counts.keys_over_cap += 1;
                self.counts.dropped += theirs.bodies;
                continue;
            }
            let max = self.cfg.max_docs_per_key;
            let st = self.keys.entry(key).or_default();
            st.bodies += theirs.bodies;
            st.oversized += theirs.oversized;
            for (kind, n) in theirs.other {
                *st.other.entry(kind).or_default() += n;
            }
            self.held -= st.docs.iter().map(|d| d.bytes.len()).sum::<usize>();
            st.docs.extend(theirs.docs);
            st.docs.sort_unstable_by_key(|d| d.rank);
            st.docs.truncate(max);
            // The lowest ranks first, as far as the memory bound allows.
            let mut held = self.held;
            st.docs.retain(|d| {
                let fits = held + d.bytes.len() <= self.cfg.max_total_bytes;
                if fits {
                    held += d.bytes.len();
                } else {
                    self.counts.memory_cap_hits += 1;
                }
                fits
            });
            self.held = held;
        }
    }

    /// Takes one finished body: an admitted one (see [`Sampler::admit`]) or one counted
    /// only.
    pub fn offer(&mut self, key: SampleKey, offer: Offer) {
        let cap = match offer {
            // Counted in `bodies` when admitted; not kept, so dropped.
            Offer::AdmittedLost => return,
            Offer::AdmittedNotJson(kind) => {
                if let Some(st) = self.keys.get_mut(&key) {
                    st.bodies = st.bodies.saturating_sub(1);
                    *st.other.entry(kind.as_str()).or_default() += 1;
                }
                return;
            }
            Offer::JsonLost | Offer::Other(_) => {
                if !self.keys.contains_key(&key) && self.keys.len() >= self.cfg.max_keys {
                    self.counts.keys_over_cap += 1;
                    if matches!(offer, Offer::JsonLost) {
                        self.counts.dropped += 1;
                    }
                    return;
                }
                let st = self.keys.entry(key).or_default();
                match offer {
                    Offer::Other(kind) => *st.other.entry(kind.as_str()).or_default() += 1,
                    _ => st.bodies += 1,
                }
                return;
            }
            Offer::Json(c) => c,
        };
        let Capture {
            key,
            rank,
            buf,
            oversized,
            ..
        } = *cap;
        let max = self.cfg.max_docs_per_key;
        let Some(st) = self.keys.get_mut(&key) else {
            return;
        };
        if oversized {
            st.oversized += 1;
            self.counts.oversized += 1;
            return;
        }
        // Bodies finish out of order: the sample may have filled with lower ranks since
        // this one was admitted; else it takes a free place or the worst one's.
        let slot = if st.docs.len() < max {
            None
        } else {
            match st.worst() {
                Some((i, w)) if rank < w => Some(i),
                _ => return,
            }
        };
        let freed = slot
            .and_then(|j| st.docs.get(j))
            .map_or(0, |d| d.bytes.len());
        if self.held - freed + buf.len() > self.cfg.max_total_bytes {
            self.counts.memory_cap_hits += 1;
            return;
        }
        self.held = self.held - freed + buf.len();
        let doc = Doc { rank, bytes: buf };
        match slot.and_then(|j| st.docs.get_mut(j)) {
            Some(old) => *old = doc,
            None => st.docs.push(doc),
        }
    }

    /// Infers, encodes and times every key's documents; one row per key, in key order.
    /// Adds the sampler's counters to `cov`.
    pub fn finish(self, cov: &mut Coverage) -> Vec<PayloadRow> {
        self.finish_with_samples(cov).0
    }

    /// [`Sampler::finish`], also handing back each key's parsed documents (in memory
    /// only: the migration kit infers its messages from them and round-trips them through
    /// the generated .proto; nothing of a document is written).
    pub fn finish_with_samples(self, cov: &mut Coverage) -> (Vec<PayloadRow>, Vec<KeySamples>) {
        let mut counts = self.counts();
        let mut budget = self.cfg.cpu_budget;
        // The generic codecs the samples are timed with, against generated code: once per
        // run, when there is something to time.
        let ratios = (!budget.is_zero() && self.keys.values().any(|k| !k.docs.is_empty()))
            .then(calibration::ratios)
            .flatten();
        let mut rows = Vec::with_capacity(self.keys.len());
        let mut samples = Vec::with_capacity(self.keys.len());
        for (key, st) in self.keys {
            let (row, docs, invalid) = key_row(key, st, self.cfg.infer_enums, &mut budget, ratios);
            counts.kept -= invalid;
            counts.dropped += invalid;
            samples.push(KeySamples {
                key: row.key.clone(),
                docs,
                bodies: row.bodies,
                not_json: invalid,
                non_json_bodies: row.non_json_bodies,
            });
            rows.push(row);
        }
        cov.json_bodies_sampled += counts.kept;
        cov.json_bodies_dropped += counts.dropped;
        cov.json_bodies_oversized += counts.oversized;
        cov.json_sample_memory_cap_hits += counts.memory_cap_hits + counts.keys_over_cap;
        (rows, samples)
    }
}

/// The kept documents of one key, parsed, with what was seen beside them. Held in memory
/// for the report stage's migration kit; never written.
#[derive(Clone, Debug)]
pub struct KeySamples {
    pub key: SampleKey,
    pub docs: Vec<Json>,
    /// JSON bodies seen (kept or not).
    pub bodies: u64,
    /// Kept bodies labelled JSON that did not parse as JSON.
    pub not_json: u64,
    /// Bodies of other kinds (form, XML, text, empty...).
    pub non_json_bodies: u64,
}

/// One row of the `payloads` table: what one key's bodies cost (sizes and counts only).
#[derive(Clone, Debug, PartialEq)]
pub struct PayloadRow {
    pub key: SampleKey,
    /// JSON bodies seen (kept or not).
    pub bodies: u64,
    /// Documents kept and measured.
    pub samples: u64,
    pub sampled_json_bytes: u64,
    pub sampled_protobuf_bytes: u64,
    /// gzip sizes of all the samples (as JSON, and as protobuf); None without samples.
    pub sampled_json_gzip_bytes: Option<u64>,
    pub sampled_protobuf_gzip_bytes: Option<u64>,
    pub json_parse_ns_per_byte: Option<f64>,
    pub protobuf_decode_ns_per_byte: Option<f64>,
    pub schema_fields: u32,
    /// Integers beyond 2^53 in the sampled documents.
    pub unsafe_integers: u64,
    /// Key paths whose values change JSON type across the samples.
    pub type_conflicts: u32,
    pub non_json_bodies: u64,
    /// `kind:count` pairs, comma-separated, by kind name.
    pub non_json_kinds: String,
    pub oversized: u64,
    pub dropped: u64,
}

/// The row of one key, its parsed documents, and how many kept documents turned out not
/// to be JSON.
fn key_row(
    key: SampleKey,
    st: KeyState,
    infer_enums: bool,
    budget: &mut Duration,
    ratios: Option<calibration::CodecRatios>,
) -> (PayloadRow, Vec<Json>, u64) {
    let dropped = st.dropped();
    // In rank order: the schema numbers fields as the documents show them.
    let mut kept = st.docs;
    kept.sort_unstable_by_key(|d| d.rank);
    let mut raw = Vec::with_capacity(kept.len());
    let mut docs = Vec::with_capacity(kept.len());
    let mut invalid = 0;
    for d in kept {
        match Json::parse(&d.bytes) {
            Ok(v) => {
                docs.push(v);
                raw.push(d);
            }
            Err(_) => invalid += 1,
        }
    }
    let non_json_bodies = st.other.values().sum();
    let non_json_kinds = st
        .other
        .iter()
        .map(|(k, n)| format!("{k}:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut row = PayloadRow {
        key,
        bodies: st.bodies,
        samples: docs.len() as u64,
        sampled_json_bytes: raw.iter().map(|d| d.bytes.len() as u64).sum(),
        sampled_protobuf_bytes: 0,
        sampled_json_gzip_bytes: None,
        sampled_protobuf_gzip_bytes: None,
        json_parse_ns_per_byte: None,
        protobuf_decode_ns_per_byte: None,
        schema_fields: 0,
        unsafe_integers: 0,
        type_conflicts: 0,
        non_json_bodies,
        non_json_kinds,
        oversized: st.oversized,
        dropped: dropped + invalid,
    };
    if docs.is_empty() {
        return (row, docs, invalid);
    }
    let risks = drift::scan(&docs);
    row.unsafe_integers = risks.unsafe_integers;
    row.type_conflicts = risks.type_conflicts;
    let schema = Schema::infer_with(&docs, infer_enums);
    row.schema_fields = u32::try_from(schema.field_count()).unwrap_or(u32::MAX);
    let Ok(desc) = schema.root_descriptor() else {
        return (row, docs, invalid);
    };
    let encoded: Vec<Vec<u8>> = docs
        .iter()
        .map(|d| prost::Message::encode_to_vec(&schema.message(&desc, d)))
        .collect();
    row.sampled_protobuf_bytes = encoded.iter().map(|e| e.len() as u64).sum();
    // Every sample, compressed on the wire or not: what gzip would make of this key's
    // documents, for links that do not compress yet as much as for those that do.
    row.sampled_json_gzip_bytes = Some(raw.iter().map(|d| gzip_len(&d.bytes)).sum());
    row.sampled_protobuf_gzip_bytes = Some(encoded.iter().map(|e| gzip_len(e)).sum());
    let json_bytes: Vec<&[u8]> = raw.iter().map(|d| d.bytes.as_slice()).collect();
    // Timed with the generic codecs (the schema is only known at run time), then scaled
    // to what generated code takes (`calibration`); untimed without a calibration.
    row.json_parse_ns_per_byte = time_per_byte(budget, &json_bytes, |b| {
        black_box(serde_json::from_slice::<serde_json::Value>(b).is_ok());
    })
    .zip(ratios)
    .map(|(t, r)| t * r.json_typed_over_value);
    let pb: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    row.protobuf_decode_ns_per_byte = time_per_byte(budget, &pb, |b| {
        black_box(DynamicMessage::decode(desc.clone(), b).is_ok());
    })
    .zip(ratios)
    .map(|(t, r)| t * r.protobuf_generated_over_dynamic);
    (row, docs, invalid)
}

/// Gzip size at level 6 (what servers commonly use).
pub fn gzip_len(b: &[u8]) -> u64 {
    let mut e = GzEncoder::new(Vec::new(), Compression::new(6));
    if e.write_all(b).is_err() {
        return 0;
    }
    e.finish().map_or(0, |v| v.len() as u64)
}

/// Runs `f` over every buffer, round after round, until `MIN_TIMING` was spent or
/// `MAX_ROUNDS` rounds ran; ns per byte, or None once the run's budget is spent.
fn time_per_byte(budget: &mut Duration, bufs: &[&[u8]], f: impl Fn(&[u8])) -> Option<f64> {
    let bytes: usize = bufs.iter().map(|b| b.len()).sum();
    if budget.is_zero() || bytes == 0 {
        return None;
    }
    let start = Instant::now();
    let mut rounds = 0u32;
    loop {
        for b in bufs {
            f(b);
        }
        rounds += 1;
        let spent = start.elapsed();
        if spent >= MIN_TIMING || rounds >= MAX_ROUNDS || spent >= *budget {
            break;
        }
    }
    let spent = start.elapsed();
    *budget = budget.saturating_sub(spent);
    Some(spent.as_nanos() as f64 / (f64::from(rounds) * bytes as f64))
}

/// splitmix64: a small fixed-seed generator for the reservoir (no crate needed for this).
fn splitmix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
