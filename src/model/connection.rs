//! One TCP connection: a row of the `connections` table.
//!
//! The flow stage fills [`TcpSummary`] (transport facts); the protocol stage adds what
//! the bytes turned out to be and how many exchanges they carried.

use super::{ConnId, Endpoint, Timestamp};

/// How a connection's record was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// FIN seen from both sides (or FIN from one and the flow then went quiet).
    Fin,
    Rst,
    /// No packet for longer than the idle timeout.
    IdleEvicted,
    /// Dropped to keep the flow table within its connection cap.
    CapacityEvicted,
    /// Still open when the input ended.
    EndOfCapture,
}

impl CloseReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Fin => "fin",
            CloseReason::Rst => "rst",
            CloseReason::IdleEvicted => "idle_eviction",
            CloseReason::CapacityEvicted => "capacity_eviction",
            CloseReason::EndOfCapture => "end_of_capture",
        }
    }
}

/// What a connection's byte stream carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L7Protocol {
    Http10,
    Http11,
    Tls,
    Http2,
    /// Bytes that are none of the above.
    Other,
    /// No payload at all was seen.
    Empty,
}

impl L7Protocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            L7Protocol::Http10 => "http/1.0",
            L7Protocol::Http11 => "http/1.1",
            L7Protocol::Tls => "tls",
            L7Protocol::Http2 => "http2",
            L7Protocol::Other => "other",
            L7Protocol::Empty => "empty",
        }
    }
}

/// Transport counters for one direction of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    pub packets: u64,
    /// Payload bytes delivered in order to the protocol stage (retransmissions excluded).
    pub bytes: u64,
    /// Payload bytes that repeated bytes already delivered.
    pub retransmitted_bytes: u64,
    pub retransmitted_segments: u64,
    /// Segments that arrived ahead of a hole and had to be buffered.
    pub out_of_order_segments: u64,
    /// Holes the capture never filled.
    pub gaps: u64,
    /// Bytes of the stream that the capture missed.
    pub gap_bytes: u64,
    /// Packets of this direction seen on another interface or input file (capture copies).
    pub capture_duplicates: u64,
    /// Segments of this direction advertising a zero receive window: its sender could
    /// take no more bytes (SYN, FIN and RST segments are not counted, as in Wireshark).
    pub zero_windows: u64,
    /// Retransmissions sent by the retransmission timer: segments repeating this
    /// direction's bytes after its sender was silent for at least
    /// [`RTO_SILENCE_NS`](crate::ingest::flow::tcp::RTO_SILENCE_NS).
    pub retransmission_timeouts: u64,
    /// How long the sender was silent before each of those retransmissions, summed: the
    /// time the retransmission timer cost this direction's messages.
    pub rto_wait_ns: u64,
    /// How long this direction kept its receive window at zero: from each first
    /// zero-window segment to its next segment with an open window (or its last packet),
    /// summed. Its peer could send nothing meanwhile.
    pub zero_window_ns: u64,
    /// The maximum segment size this direction's SYN advertised.
    pub mss: Option<u16>,
    pub fin: bool,
    pub rst: bool,
}

/// What the flow stage knows about a connection when it closes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpSummary {
    pub conn: ConnId,
    pub client: Endpoint,
    pub server: Endpoint,
    pub first_packet: Timestamp,
    pub last_packet: Timestamp,
    pub syn: Option<Timestamp>,
    pub syn_ack: Option<Timestamp>,
    /// The client's ACK completing the handshake.
    pub handshake_ack: Option<Timestamp>,
    /// SYN, SYN-ACK and ACK all seen.
    pub handshake_seen: bool,
    /// Roles were inferred from the payload (or ports) because no SYN was seen.
    pub roles_inferred: bool,
    pub client_to_server: DirStats,
    pub server_to_client: DirStats,
    pub close: CloseReason,
}

impl TcpSummary {
    /// SYN -> SYN-ACK: the round trip between the capture point and the server.
    pub fn server_rtt_ns(&self) -> Option<i64> {
        Some(self.syn_ack?.since(self.syn?))
    }
    /// SYN-ACK -> ACK: the round trip between the capture point and the client.
    pub fn client_rtt_ns(&self) -> Option<i64> {
        Some(self.handshake_ack?.since(self.syn_ack?))
    }
    /// SYN -> ACK: the full handshake round trip as seen from the capture point.
    pub fn handshake_rtt_ns(&self) -> Option<i64> {
        Some(self.handshake_ack?.since(self.syn?))
    }
    /// Only one direction's packets were seen (asymmetric routing or a one-way capture).
    pub fn one_sided(&self) -> bool {
        self.client_to_server.packets == 0 || self.server_to_client.packets == 0
    }

    /// The same connection with client and server the other way round (for a protocol
    /// stage that found the inferred roles wrong; the handshake times stay, they were not
    /// seen where roles are inferred).
    pub fn reversed(&self) -> TcpSummary {
        TcpSummary {
            client: self.server,
            server: self.client,
            client_to_server: self.server_to_client,
            server_to_client: self.client_to_server,
            ..self.clone()
        }
    }

    /// A SYN nobody answered (Zeek's `S0`): the client sent no payload, the capture
    /// saw no byte of it lost, and the server sent no packet at all.
    pub fn unanswered_attempt(&self) -> bool {
        self.syn.is_some()
            && self.syn_ack.is_none()
            && self.server_to_client.packets == 0
            && self.client_to_server.bytes == 0
            && self.client_to_server.gaps == 0
    }
}

/// A row of the connections table.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub tcp: TcpSummary,
    pub protocol: L7Protocol,
    /// Protocol the connection left HTTP/1 for (`websocket`, `h2c`, `tunnel`).
    pub upgraded_to: Option<String>,
    pub exchanges: u32,
    /// HTTP messages that could not be parsed (followed by a resynchronisation).
    pub malformed_messages: u32,
    /// The server name (SNI) of the client's TLS ClientHello, lower-cased.
    pub tls_sni: Option<String>,
    /// The ALPN protocols the ClientHello offered, comma-separated in offered order
    /// (`h2,http/1.1`).
    pub tls_alpn: Option<String>,
    /// What the rest of the cleartext TLS handshake showed (all null on non-TLS rows).
    pub tls_handshake: TlsHandshake,
    /// TLS connections: `decrypted` when the key log's secrets opened its records, else
    /// why not (`no_key`, `unsupported_suite`, `no_handshake`, `auth_failed`, `gap`,
    /// `malformed`, `memory`). None on other rows.
    pub tls_decryption: Option<&'static str>,
    /// TLS connections: request/response turns read off the record stream (see
    /// `crate::ingest::tls::estimate`); None when no turn was seen.
    pub tls_estimate: Option<Box<TlsEstimate>>,
    /// HTTP/2 counters of a connection that carried HTTP/2 (None otherwise).
    pub h2: Option<Box<H2Connection>>,
}

/// Frame types of RFC 9113 in type order; index 10 counts the others.
pub const H2_FRAME_TYPES: [&str; 11] = [
    "data",
    "headers",
    "priority",
    "rst_stream",
    "settings",
    "push_promise",
    "ping",
    "goaway",
    "window_update",
    "continuation",
    "unknown",
];

/// What the HTTP/2 reader counted on one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct H2Connection {
    /// `preface`, `upgrade` (h2c after a 101) or `frames` (found mid-connection).
    pub found_by: &'static str,
    /// Frames of each type, both directions, by [`H2_FRAME_TYPES`] index.
    pub frames: [u64; 11],
    pub streams: u32,
    /// Streams given up at the per-connection cap.
    pub streams_evicted: u32,
    /// Streams whose every header block was decoded with every field known.
    pub complete_header_streams: u32,
    /// SETTINGS_HEADER_TABLE_SIZE and SETTINGS_MAX_FRAME_SIZE each side announced
    /// (client, server), the last value seen.
    pub header_table_size: [Option<u32>; 2],
    pub max_frame_size: [Option<u32>; 2],
    pub rst_streams_by: [u64; 2],
    /// Error code of the last GOAWAY.
    pub goaway_error: Option<&'static str>,
    /// Streams a GOAWAY refused.
    pub goaway_refused: u32,
    pub hpack_unknown_fields: u64,
    pub hpack_errors: u64,
    pub header_blocks_dropped: u64,
    /// Frames that break the protocol or could not be kept (counted, skipped).
    pub frame_errors: u64,
    /// Frames for streams already ended or never opened (counted, skipped).
    pub late_frames: u64,
    pub sync_lost: u64,
    /// Bytes passed over while looking for frames.
    pub unsynced_bytes: u64,
}

impl H2Connection {
    pub fn count_frame(&mut self, kind: u8) {
        let i = usize::from(kind).min(10);
        self.frames[i] = self.frames[i].saturating_add(1);
    }
}

/// Facts of a TLS handshake read in clear from both directions; each is `None` where the
/// capture did not show it (encrypted in TLS 1.3, not captured, or not TLS at all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsHandshake {
    /// `TLS 1.3` (ServerHello supported_versions), else the ServerHello's version.
    pub version: Option<String>,
    /// IANA name of the chosen cipher suite, or `0x1302` when tls-parser does not know it.
    pub cipher: Option<String>,
    /// ALPN protocol the ServerHello selected (TLS 1.2 only; encrypted in 1.3).
    pub alpn_selected: Option<String>,
    /// Session resumed (TLS 1.2: same session id or abbreviated handshake; 1.3: PSK).
    pub resumed: Option<bool>,
    /// The ClientHello offered a session ticket or a pre-shared key.
    pub ticket_offered: Option<bool>,
    /// Bytes of Certificate handshake messages seen in clear (TLS 1.2).
    pub cert_bytes: Option<u64>,
    /// ClientHello's first byte -> handshake end (see docs/engine.md).
    pub handshake_ns: Option<i64>,
    /// TLS record bytes of both directions from the ClientHello to the handshake end.
    pub handshake_bytes: Option<u64>,
}

/// What a TLS connection's records show without keys (`crate::ingest::tls::estimate`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsEstimate {
    /// `http1_turns` (each turn a request) or `h2_rounds` (HTTP/2: rounds, not requests).
    pub mode: &'static str,
    /// Client bursts answered by a server burst.
    pub turns: u32,
    /// Estimated requests: the turns, for HTTP/1.1; None for HTTP/2.
    pub requests: Option<u32>,
    /// Mean time from a client burst's last record to the server burst's first, ns.
    pub ttfb_ns: i64,
    /// Mean time from a client burst's first record to the server burst's last, ns.
    pub total_ns: i64,
    /// Plaintext bytes of the turns' records (bodies minus the suite's overhead).
    pub req_bytes: u64,
    pub resp_bytes: u64,
    /// `high`, `medium` or `low` (see `docs/links.md`).
    pub confidence: &'static str,
}
