//! Capture-quality counters: everything read, decoded, dropped, evicted or lost.
//!
//! Malformed input never aborts a stage; it increments a counter here, and every run
//! prints these counters so the reader knows how much of the traffic the figures cover.

use std::collections::BTreeMap;

/// Server endpoints named in `Coverage::unanswered_attempts_by_server` at most.
pub const MAX_UNANSWERED_SERVERS: usize = 1000;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    // capture
    pub files: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Frames shorter on disk than on the wire (snaplen).
    pub truncated_snaplen: u64,
    /// Frames whose link type linkrank does not decode.
    pub unsupported_link: u64,
    // decode
    pub non_ip: u64,
    pub non_tcp: u64,
    pub decode_errors: u64,
    pub tunnels_unwrapped: u64,
    pub ip_fragments: u64,
    pub ip_fragments_reassembled: u64,
    /// Fragments dropped: incomplete when they expired, or over the reassembly bound.
    pub ip_fragments_dropped: u64,
    pub tcp_segments: u64,
    /// TCP segments whose checksum or header lengths were inconsistent with the frame.
    pub tcp_malformed: u64,
    // flow
    pub connections: u64,
    pub connections_without_handshake: u64,
    pub one_sided_connections: u64,
    /// Connection attempts never answered: a SYN (and its retransmissions), no payload,
    /// nothing from the server. Counted here, not given a row of the connections table,
    /// so that a SYN flood or a scan cannot grow the tables; included in `connections`.
    pub unanswered_attempts: u64,
    /// The same by server endpoint (`ip:port`), for the `MAX_UNANSWERED_SERVERS` first
    /// servers seen; later ones are added under `other`.
    pub unanswered_attempts_by_server: BTreeMap<String, u64>,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub retransmitted_bytes: u64,
    pub capture_duplicates: u64,
    pub out_of_order_overflows: u64,
    pub evicted_idle: u64,
    pub evicted_capacity: u64,
    pub flushed_at_end: u64,
    /// Segments seen after a connection was closed and forgotten (late retransmissions).
    pub stray_segments: u64,
    // protocol
    pub connections_by_protocol: BTreeMap<&'static str, u64>,
    pub exchanges: u64,
    pub incomplete_exchanges: u64,
    pub malformed_http: u64,
    pub http_resyncs: u64,
    /// Partial header blocks dropped because all connections' header buffers together
    /// reached their bound.
    pub header_budget_overflows: u64,
    /// Connections whose HPACK replay (h2cost) was stopped to keep header memory within
    /// that bound; their later exchanges have no HTTP/2 or gRPC header figures.
    pub h2_replay_dropped: u64,
    /// HTTP/2 streams made into exchanges (their count is in `exchanges` too).
    pub h2_streams: u64,
    /// HTTP/2 streams given up because a connection had `max_h2_streams` open.
    pub h2_streams_evicted: u64,
    /// HPACK fields naming a table entry the capture never saw inserted (the capture
    /// began mid-connection, or a header block was lost): decoded as unknown.
    pub h2_hpack_unknown_fields: u64,
    /// Header blocks HPACK could not decode (the table is then forgotten).
    pub h2_hpack_errors: u64,
    /// Header blocks not decoded: over `max_header_bytes`, cut by a gap, or broken up.
    pub h2_header_blocks_dropped: u64,
    /// Times a direction lost its place in the frames (a gap across a frame boundary, a
    /// bad preface or frame header) and times it found frames again.
    pub h2_sync_lost: u64,
    pub h2_resyncs: u64,
    /// TLS connections whose ClientHello was read (SNI and ALPN taken from it).
    pub tls_client_hellos: u64,
    /// TLS connections whose client began with a handshake record but whose ClientHello
    /// could not be read: malformed, over the size bound, cut by a gap or by the end.
    pub tls_client_hello_unparsed: u64,
    /// TLS connections whose ServerHello was read (version, cipher suite; not counting
    /// HelloRetryRequests).
    pub tls_server_hellos: u64,
    /// TLS handshakes that resumed a session (TLS 1.2 session id or abbreviated
    /// handshake, TLS 1.3 pre-shared key).
    pub tls_handshakes_resumed: u64,
    /// TLS connections whose ClientHello was read but whose further handshake could not
    /// be: a malformed record or ServerHello, a gap, the memory bound.
    pub tls_handshake_unparsed: u64,
    /// TLS connections whose records were decrypted with the key log's secrets.
    pub tls_decrypted: u64,
    /// TLS connections not decrypted, by reason (`no_key`, `unsupported_suite`,
    /// `no_handshake`, `auth_failed`, `gap`, `malformed`, `memory`).
    pub tls_undecrypted: BTreeMap<&'static str, u64>,
    /// Lines of the key logs (file and capture blocks) that did not parse.
    pub tls_keylog_bad_lines: u64,
    /// pcapng Decryption Secrets Blocks holding a TLS key log, read.
    pub tls_secrets_blocks: u64,
    /// Such blocks dropped past the per-file bound on secrets.
    pub tls_secrets_blocks_dropped: u64,
    // dns
    /// DNS responses read (UDP port 53), whatever their rcode.
    pub dns_responses: u64,
    /// A, AAAA and CNAME answer records kept as rows of the `dns` table.
    pub dns_answers: u64,
    /// Answer records dropped because the `dns` table reached its row bound.
    pub dns_answers_dropped: u64,
    /// DNS responses that could not be parsed (malformed or cut by the snaplen).
    pub dns_malformed: u64,
    // serialization sampler (JSON bodies, see docs/engine.md)
    /// JSON bodies kept and measured in the `payloads` table.
    pub json_bodies_sampled: u64,
    /// JSON bodies not kept: not in the per-key sample, oversized, cut, undecodable,
    /// not valid JSON, or past the memory or key bound.
    pub json_bodies_dropped: u64,
    /// JSON bodies larger than the per-body bound (256 KiB decoded).
    pub json_bodies_oversized: u64,
    /// Bodies not kept because the sampler's total memory bound or key bound was reached.
    pub json_sample_memory_cap_hits: u64,
    /// Warnings about the inputs themselves (truncated file, corrupt record), one line each.
    pub input_warnings: Vec<String>,
    /// Clock offset of each capture source relative to another that saw the same
    /// connections (flow::skew); empty for a single source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clock_offsets: Vec<ClockOffset>,
    /// Shifts taken off each capture source's timestamps so that all sources share the
    /// first one's clock (a second pass over the captures; `clock_offsets` then hold
    /// what is left). Empty when no source was off by `skew::MIN_CORRECTION_NS`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clock_corrections: Vec<ClockCorrection>,
    /// libpcap's counters per interface of a live capture; empty when reading files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live: Vec<LiveCounters>,
    /// What the OTLP receiver (`--otlp-listen`) took and refused; absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_receiver: Option<OtlpReceiverCounters>,
}

/// The OTLP receiver's counters over a run (or one window of `watch`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OtlpReceiverCounters {
    /// The address listened on (OTLP/gRPC and OTLP/HTTP share it).
    pub listen: String,
    /// Export requests answered, over gRPC and over HTTP.
    pub grpc_requests: u64,
    pub http_requests: u64,
    /// Requests refused as malformed (gRPC INVALID_ARGUMENT, HTTP 400/413/415).
    pub bad_requests: u64,
    /// Spans queued for the analysis, and their encoded bytes.
    pub spans_accepted: u64,
    pub bytes_accepted: u64,
    /// Spans refused because the queue was full (answered as `rejected_spans` of an
    /// `ExportTracePartialSuccess`).
    pub spans_rejected: u64,
    /// The queue's bound, spans.
    pub queue_spans: u64,
}

/// What libpcap and the capture loop saw on one interface of a live capture.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveCounters {
    pub interface: String,
    /// Packets the kernel passed the filter (libpcap `ps_recv`).
    pub received: u64,
    /// Packets dropped because the capture buffer was full (libpcap `ps_drop`): linkrank
    /// did not read fast enough.
    pub dropped: u64,
    /// Packets dropped by the interface or its driver (libpcap `ps_ifdrop`).
    pub if_dropped: u64,
    /// Packets analysed from this interface, and their captured bytes.
    pub analysed: u64,
    pub bytes: u64,
    /// Packets received after the `--packets` limit was reached, not analysed.
    pub not_analysed: u64,
    /// Packets written to the `--write` pcapng, and those left out because its size
    /// bound was reached.
    pub written: u64,
    pub write_skipped: u64,
}

impl Coverage {
    /// Packets a live capture lost before linkrank saw them (kernel and interface drops).
    pub fn live_dropped(&self) -> u64 {
        self.live.iter().map(|l| l.dropped + l.if_dropped).sum()
    }
}

impl Coverage {
    /// Adds the counters of another part of the same run (another thread's connections,
    /// another stage's counters). Every field is named, so a new one cannot be forgotten.
    /// Clock offsets and corrections are the run's own, set once: `other`'s must be empty.
    pub fn add(&mut self, other: &Coverage) {
        let Coverage {
            files,
            packets,
            bytes,
            truncated_snaplen,
            unsupported_link,
            non_ip,
            non_tcp,
            decode_errors,
            tunnels_unwrapped,
            ip_fragments,
            ip_fragments_reassembled,
            ip_fragments_dropped,
            tcp_segments,
            tcp_malformed,
            connections,
            connections_without_handshake,
            one_sided_connections,
            unanswered_attempts,
            unanswered_attempts_by_server,
            gaps,
            gap_bytes,
            retransmitted_bytes,
            capture_duplicates,
            out_of_order_overflows,
            evicted_idle,
            evicted_capacity,
            flushed_at_end,
            stray_segments,
            connections_by_protocol,
            exchanges,
            incomplete_exchanges,
            malformed_http,
            http_resyncs,
            header_budget_overflows,
            h2_replay_dropped,
            h2_streams,
            h2_streams_evicted,
            h2_hpack_unknown_fields,
            h2_hpack_errors,
            h2_header_blocks_dropped,
            h2_sync_lost,
            h2_resyncs,
            tls_client_hellos,
            tls_client_hello_unparsed,
            tls_server_hellos,
            tls_handshakes_resumed,
            tls_handshake_unparsed,
            dns_responses,
            dns_answers,
            dns_answers_dropped,
            dns_malformed,
            json_bodies_sampled,
            json_bodies_dropped,
            json_bodies_oversized,
            json_sample_memory_cap_hits,
            input_warnings,
            clock_offsets,
            clock_corrections,
            tls_decrypted,
            tls_undecrypted,
            tls_keylog_bad_lines,
            tls_secrets_blocks,
            tls_secrets_blocks_dropped,
            live,
            otlp_receiver,
        } = other;
        self.live.extend(live.iter().cloned());
        // One receiver per run: set where the run ends, never by a stage's part.
        if self.otlp_receiver.is_none() {
            self.otlp_receiver.clone_from(otlp_receiver);
        }
        self.tls_decrypted += tls_decrypted;
        self.tls_keylog_bad_lines += tls_keylog_bad_lines;
        self.tls_secrets_blocks += tls_secrets_blocks;
        self.tls_secrets_blocks_dropped += tls_secrets_blocks_dropped;
        for (k, v) in tls_undecrypted {
            *self.tls_undecrypted.entry(k).or_default() += v;
        }
        self.files += files;
        self.packets += packets;
        self.bytes += bytes;
        self.truncated_snaplen += truncated_snaplen;
        self.unsupported_link += unsupported_link;
        self.non_ip += non_ip;
        self.non_tcp += non_tcp;
        self.decode_errors += decode_errors;
        self.tunnels_unwrapped += tunnels_unwrapped;
        self.ip_fragments += ip_fragments;
        self.ip_fragments_reassembled += ip_fragments_reassembled;
        self.ip_fragments_dropped += ip_fragments_dropped;
        self.tcp_segments += tcp_segments;
        self.tcp_malformed += tcp_malformed;
        self.connections += connections;
        self.connections_without_handshake += connections_without_handshake;
        self.one_sided_connections += one_sided_connections;
        self.unanswered_attempts += unanswered_attempts;
        self.gaps += gaps;
        self.gap_bytes += gap_bytes;
        self.retransmitted_bytes += retransmitted_bytes;
        self.capture_duplicates += capture_duplicates;
        self.out_of_order_overflows += out_of_order_overflows;
        self.evicted_idle += evicted_idle;
        self.evicted_capacity += evicted_capacity;
        self.flushed_at_end += flushed_at_end;
        self.stray_segments += stray_segments;
        self.exchanges += exchanges;
        self.incomplete_exchanges += incomplete_exchanges;
        self.malformed_http += malformed_http;
        self.http_resyncs += http_resyncs;
        self.header_budget_overflows += header_budget_overflows;
        self.h2_replay_dropped += h2_replay_dropped;
        self.h2_streams += h2_streams;
        self.h2_streams_evicted += h2_streams_evicted;
        self.h2_hpack_unknown_fields += h2_hpack_unknown_fields;
        self.h2_hpack_errors += h2_hpack_errors;
        self.h2_header_blocks_dropped += h2_header_blocks_dropped;
        self.h2_sync_lost += h2_sync_lost;
        self.h2_resyncs += h2_resyncs;
        self.tls_client_hellos += tls_client_hellos;
        self.tls_client_hello_unparsed += tls_client_hello_unparsed;
        self.tls_server_hellos += tls_server_hellos;
        self.tls_handshakes_resumed += tls_handshakes_resumed;
        self.tls_handshake_unparsed += tls_handshake_unparsed;
        self.dns_responses += dns_responses;
        self.dns_answers += dns_answers;
        self.dns_answers_dropped += dns_answers_dropped;
        self.dns_malformed += dns_malformed;
        self.json_bodies_sampled += json_bodies_sampled;
        self.json_bodies_dropped += json_bodies_dropped;
        self.json_bodies_oversized += json_bodies_oversized;
        self.json_sample_memory_cap_hits += json_sample_memory_cap_hits;
        for (k, v) in connections_by_protocol {
            *self.connections_by_protocol.entry(k).or_default() += v;
        }
        for (k, v) in unanswered_attempts_by_server {
            let by = &mut self.unanswered_attempts_by_server;
            let key = if by.contains_key(k) || by.len() < MAX_UNANSWERED_SERVERS {
                k.clone()
            } else {
                "other".to_owned()
            };
            *by.entry(key).or_default() += v;
        }
        self.input_warnings.extend(input_warnings.iter().cloned());
        debug_assert!(clock_offsets.is_empty() && clock_corrections.is_empty());
    }
}

/// A correction applied to one capture source's clock: each of its timestamps `t` was
/// read as `t - shift_ns`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClockCorrection {
    pub input: u16,
    pub interface: u32,
    pub shift_ns: i64,
    /// Deltas behind the estimate (the smallest along the chain of source pairs that
    /// links this source to the reference).
    pub pairs: u64,
}

/// The clock of one capture source (an input file and interface) against a reference
/// source, estimated from the first packets of connection directions both captured:
/// a timestamp `t` of the reference is `t + offset_ns` in this source.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClockOffset {
    pub input: u16,
    pub interface: u32,
    pub reference_input: u16,
    pub reference_interface: u32,
    /// `(median(c2s) + median(s2c)) / 2` of the deltas `t(this) - t(reference)`.
    pub offset_ns: i64,
    /// One-way delay between the two capture points, `(median(c2s) - median(s2c)) / 2`;
    /// null when only one direction had deltas (then `offset_ns` includes it).
    pub delay_ns: Option<i64>,
    /// The larger interquartile range of the two directions' deltas.
    pub spread_ns: i64,
    /// Deltas used (`c2s_pairs + s2c_pairs`).
    pub pairs: u64,
    pub c2s_pairs: u64,
    pub s2c_pairs: u64,
    /// Deltas not kept (over the per-pair bound).
    pub dropped: u64,
    /// Directions whose first copy here was not the reference's first packet.
    pub unmatched: u64,
}
