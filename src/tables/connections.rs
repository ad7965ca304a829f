//! The `connections` table: one row per TCP connection.

use polars::prelude::*;

use super::columns;
use crate::model::Connection;
use crate::model::Symbols;

/// Column name, polars type, meaning (checked against `docs/tables.md` by a test).
pub const COLUMNS: &[(&str, &str, &str)] = &[
    (columns::CONN_ID, "u64", "connection id, unique within one run"),
    (
        columns::CLIENT_IP,
        "str",
        "client IP address (the SYN sender; else the side that sent a request)",
    ),
    (columns::CLIENT_PORT, "u32", "client TCP port"),
    (columns::SERVER_IP, "str", "server IP address"),
    (columns::SERVER_PORT, "u32", "server TCP port"),
    (
        columns::FIRST_NS,
        "i64",
        "capture time of the first packet, ns since the Unix epoch",
    ),
    (columns::LAST_NS, "i64", "capture time of the last packet"),
    (columns::SYN_NS, "i64?", "capture time of the client's SYN"),
    (columns::SYN_ACK_NS, "i64?", "capture time of the server's SYN-ACK"),
    (
        columns::ACK_NS,
        "i64?",
        "capture time of the client's ACK completing the handshake",
    ),
    (
        columns::HANDSHAKE_SEEN,
        "bool",
        "SYN, SYN-ACK and ACK were all captured",
    ),
    (
        columns::ROLES_INFERRED,
        "bool",
        "no SYN was seen: client and server were inferred from the payload or ports",
    ),
    (
        columns::HANDSHAKE_RTT_NS,
        "i64?",
        "SYN -> ACK: the handshake round trip seen from the capture point",
    ),
    (
        columns::SERVER_RTT_NS,
        "i64?",
        "SYN -> SYN-ACK: capture point to server and back",
    ),
    (
        columns::CLIENT_RTT_NS,
        "i64?",
        "SYN-ACK -> ACK: capture point to client and back",
    ),
    (
        columns::PROTOCOL,
        "str",
        "`http/1.0`, `http/1.1`, `tls`, `http2`, `other` or `empty` (no payload)",
    ),
    (
        columns::UPGRADED_TO,
        "str?",
        "protocol the connection left HTTP/1 for (`websocket`, `h2c`, `tunnel`, ...)",
    ),
    (columns::EXCHANGES, "u32", "HTTP exchanges carried"),
    (
        columns::MALFORMED_MESSAGES,
        "u32",
        "HTTP messages that could not be parsed",
    ),
    (columns::C2S_PACKETS, "u64", "packets client -> server"),
    (columns::S2C_PACKETS, "u64", "packets server -> client"),
    (
        columns::C2S_BYTES,
        "u64",
        "TCP payload bytes client -> server, each byte counted once",
    ),
    (
        columns::S2C_BYTES,
        "u64",
        "TCP payload bytes server -> client, each byte counted once",
    ),
    (
        columns::C2S_RETRANSMITTED_BYTES,
        "u64",
        "payload bytes client -> server sent again",
    ),
    (
        columns::S2C_RETRANSMITTED_BYTES,
        "u64",
        "payload bytes server -> client sent again",
    ),
    (
        columns::C2S_OUT_OF_ORDER_SEGMENTS,
        "u64",
        "segments client -> server that arrived ahead of a hole",
    ),
    (
        columns::S2C_OUT_OF_ORDER_SEGMENTS,
        "u64",
        "segments server -> client that arrived ahead of a hole",
    ),
    (
        columns::C2S_GAPS,
        "u64",
        "holes in the client -> server stream the capture never filled",
    ),
    (columns::S2C_GAPS, "u64", "holes in the server -> client stream"),
    (
        columns::C2S_GAP_BYTES,
        "u64",
        "bytes client -> server the capture missed",
    ),
    (
        columns::S2C_GAP_BYTES,
        "u64",
        "bytes server -> client the capture missed",
    ),
    (
        columns::CAPTURE_DUPLICATES,
        "u64",
        "copies of this connection's packets seen on another interface or file",
    ),
    (
        columns::ONE_SIDED,
        "bool",
        "only one direction's packets were captured",
    ),
    (
        columns::CLOSE,
        "str",
        "`fin`, `rst`, `idle_eviction`, `capacity_eviction` or `end_of_capture`",
    ),
    (
        columns::TLS_SNI,
        "str?",
        "server name (SNI) of the client's TLS ClientHello, lower-case",
    ),
    (
        columns::TLS_ALPN,
        "str?",
        "ALPN protocols the ClientHello offered, comma-separated in offered order (`h2,http/1.1`)",
    ),
    (
        columns::TLS_VERSION,
        "str?",
        "TLS version the ServerHello chose (`TLS 1.3` from supported_versions, else `TLS 1.2`, ...)",
    ),
    (
        columns::TLS_CIPHER,
        "str?",
        "cipher suite the ServerHello chose, IANA name (`TLS_AES_256_GCM_SHA384`) or hex (`0x1302`)",
    ),
    (
        columns::TLS_ALPN_SELECTED,
        "str?",
        "ALPN protocol the ServerHello selected (TLS 1.2; encrypted in 1.3, so null)",
    ),
    (
        columns::TLS_RESUMED,
        "bool?",
        "session resumed: TLS 1.2 echoed session id or abbreviated handshake, TLS 1.3 pre_shared_key",
    ),
    (
        columns::TLS_TICKET_OFFERED,
        "bool?",
        "the ClientHello offered a session ticket (non-empty) or a pre_shared_key",
    ),
    (
        columns::TLS_CERT_BYTES,
        "u64?",
        "bytes of Certificate handshake messages in clear (TLS 1.2; null in 1.3, encrypted)",
    ),
    (
        columns::TLS_HANDSHAKE_NS,
        "i64?",
        "ClientHello's first byte -> handshake end (1.2: server Finished; 1.3: client's first application data)",
    ),
    (
        columns::TLS_HANDSHAKE_BYTES,
        "u64?",
        "TLS record bytes of both directions from the ClientHello to the handshake end",
    ),
    (
        columns::TLS_DECRYPTION,
        "str?",
        "TLS connections: `decrypted` when the key log's secrets opened the records (the exchanges then have `tls_decrypted`), else why not: `no_key`, `unsupported_suite`, `no_handshake`, `auth_failed`, `gap`, `malformed`, `memory`",
    ),
    (
        columns::TLS_EST_MODE,
        "str?",
        "TLS connections with request/response turns in their records: `http1_turns` (each turn one HTTP/1.1 request) or `h2_rounds` (HTTP/2 selected, or offered in TLS 1.3 where the choice is encrypted: rounds, not requests); null when no turn was seen (see `docs/links.md`, estimates without keys)",
    ),
    (
        columns::TLS_EST_TURNS,
        "u32?",
        "client bursts of application-data records answered by a server burst",
    ),
    (
        columns::TLS_EST_REQUESTS,
        "u32?",
        "estimated requests: the turns, in `http1_turns` mode; null for HTTP/2",
    ),
    (
        columns::TLS_EST_TTFB_NS,
        "i64?",
        "mean over the turns of client burst's last record -> server burst's first record, ns (estimates `latency_ms`)",
    ),
    (
        columns::TLS_EST_TOTAL_NS,
        "i64?",
        "mean over the turns of client burst's first record -> server burst's last record, ns (estimates `latency_total_ms`)",
    ),
    (
        columns::TLS_EST_REQ_BYTES,
        "u64?",
        "plaintext bytes of the client bursts (record bodies minus the suite's tag, nonce and type; CBC suites: record bodies)",
    ),
    (
        columns::TLS_EST_RESP_BYTES,
        "u64?",
        "plaintext bytes of the server bursts",
    ),
    (
        columns::TLS_EST_CONFIDENCE,
        "str?",
        "`high` (TLS 1.2, HTTP/1.1), `medium` (TLS 1.3 HTTP/1.1, or HTTP/2 selected in clear), `low` (HTTP/2 only offered in TLS 1.3)",
    ),
    (
        columns::C2S_ZERO_WINDOWS,
        "u64?",
        "segments client -> server advertising a zero receive window (SYN, FIN and RST not counted): the client could take no more; null in tables written before it was counted",
    ),
    (
        columns::S2C_ZERO_WINDOWS,
        "u64?",
        "segments server -> client advertising a zero receive window: the server could take no more",
    ),
    (
        columns::C2S_RETRANSMISSION_TIMEOUTS,
        "u64?",
        "client -> server retransmissions sent by the retransmission timer: repeated bytes after the client sent no payload for at least 200 ms (keep-alives not counted); null in tables written before it was counted",
    ),
    (
        columns::S2C_RETRANSMISSION_TIMEOUTS,
        "u64?",
        "server -> client retransmissions sent by the retransmission timer",
    ),
    (
        columns::C2S_RTO_WAIT_NS,
        "u64?",
        "how long the client was silent before each of its timer retransmissions, summed: what the retransmission timer cost its requests",
    ),
    (
        columns::S2C_RTO_WAIT_NS,
        "u64?",
        "how long the server was silent before each of its timer retransmissions, summed",
    ),
    (
        columns::C2S_ZERO_WINDOW_NS,
        "u64?",
        "how long the client kept its receive window at zero (first zero-window segment -> next open window, or its last packet), summed: the server could send nothing meanwhile",
    ),
    (
        columns::S2C_ZERO_WINDOW_NS,
        "u64?",
        "how long the server kept its receive window at zero, summed: the client could send nothing meanwhile",
    ),
    (
        columns::MSS,
        "u32?",
        "the smaller of the two SYNs' MSS options (the largest segment either side may send); null when neither SYN carried one or no SYN was seen",
    ),
    (columns::H2_FOUND_BY, "str?", "how HTTP/2 was found: `preface` (prior knowledge), `upgrade` (h2c after a 101) or `frames` (frames found in a connection captured mid-way)"),
    (columns::H2_STREAMS, "u32?", "HTTP/2 streams seen (each an exchange)"),
    (columns::H2_STREAMS_EVICTED, "u32?", "streams given up because the connection had too many open (`max_h2_streams`), emitted as truncated"),
    (columns::H2_FRAMES_DATA, "u64?", "DATA frames, both ways"),
    (columns::H2_FRAMES_HEADERS, "u64?", "HEADERS frames"),
    (columns::H2_FRAMES_PRIORITY, "u64?", "PRIORITY frames"),
    (columns::H2_FRAMES_RST_STREAM, "u64?", "RST_STREAM frames"),
    (columns::H2_FRAMES_SETTINGS, "u64?", "SETTINGS frames (acknowledgements included)"),
    (columns::H2_FRAMES_PUSH_PROMISE, "u64?", "PUSH_PROMISE frames"),
    (columns::H2_FRAMES_PING, "u64?", "PING frames (acknowledgements included)"),
    (columns::H2_FRAMES_GOAWAY, "u64?", "GOAWAY frames"),
    (columns::H2_FRAMES_WINDOW_UPDATE, "u64?", "WINDOW_UPDATE frames"),
    (columns::H2_FRAMES_CONTINUATION, "u64?", "CONTINUATION frames"),
    (columns::H2_FRAMES_UNKNOWN, "u64?", "frames of types RFC 9113 does not define (skipped)"),
    (columns::H2_CLIENT_HEADER_TABLE_SIZE, "u32?", "SETTINGS_HEADER_TABLE_SIZE the client announced (last seen)"),
    (columns::H2_SERVER_HEADER_TABLE_SIZE, "u32?", "SETTINGS_HEADER_TABLE_SIZE the server announced"),
    (columns::H2_CLIENT_MAX_FRAME_SIZE, "u32?", "SETTINGS_MAX_FRAME_SIZE the client announced"),
    (columns::H2_SERVER_MAX_FRAME_SIZE, "u32?", "SETTINGS_MAX_FRAME_SIZE the server announced"),
    (columns::H2_GOAWAY_ERROR, "str?", "error code of the last GOAWAY (`NO_ERROR`, `PROTOCOL_ERROR`, ...)"),
    (columns::H2_GOAWAY_REFUSED, "u32?", "streams a GOAWAY refused (opened above its last stream id)"),
    (columns::H2_HPACK_UNKNOWN_FIELDS, "u64?", "header fields naming an HPACK entry the capture never saw inserted"),
    (columns::H2_HPACK_ERRORS, "u64?", "header blocks HPACK could not decode"),
    (columns::H2_HEADER_BLOCKS_DROPPED, "u64?", "header blocks not decoded: over the header size bound, or broken by a frame of another stream"),
    (columns::H2_FRAME_ERRORS, "u64?", "frames that break the protocol or whose payload could not be kept (skipped)"),
    (columns::H2_LATE_FRAMES, "u64?", "frames for streams already ended or never opened (skipped)"),
    (columns::H2_SYNC_LOST, "u64?", "times a direction lost its place in the frames (a gap across a frame boundary, a bad frame header)"),
    (columns::H2_UNSYNCED_BYTES, "u64?", "bytes passed over while looking for frames"),
];

#[derive(Default)]
pub struct ConnectionColumns {
    conn_id: Vec<u64>,
    client_ip: Vec<u32>,
    client_port: Vec<u32>,
    server_ip: Vec<u32>,
    server_port: Vec<u32>,
    first_ns: Vec<i64>,
    last_ns: Vec<i64>,
    syn_ns: Vec<Option<i64>>,
    syn_ack_ns: Vec<Option<i64>>,
    ack_ns: Vec<Option<i64>>,
    handshake_seen: Vec<bool>,
    roles_inferred: Vec<bool>,
    handshake_rtt_ns: Vec<Option<i64>>,
    server_rtt_ns: Vec<Option<i64>>,
    client_rtt_ns: Vec<Option<i64>>,
    protocol: Vec<u32>,
    upgraded_to: Vec<Option<u32>>,
    exchanges: Vec<u32>,
    malformed_messages: Vec<u32>,
    c2s_packets: Vec<u64>,
    s2c_packets: Vec<u64>,
    c2s_bytes: Vec<u64>,
    s2c_bytes: Vec<u64>,
    c2s_retransmitted_bytes: Vec<u64>,
    s2c_retransmitted_bytes: Vec<u64>,
    c2s_out_of_order_segments: Vec<u64>,
    s2c_out_of_order_segments: Vec<u64>,
    c2s_gaps: Vec<u64>,
    s2c_gaps: Vec<u64>,
    c2s_gap_bytes: Vec<u64>,
    s2c_gap_bytes: Vec<u64>,
    capture_duplicates: Vec<u64>,
    one_sided: Vec<bool>,
    close: Vec<u32>,
    tls_sni: Vec<Option<u32>>,
    tls_alpn: Vec<Option<u32>>,
    tls_version: Vec<Option<u32>>,
    tls_cipher: Vec<Option<u32>>,
    tls_alpn_selected: Vec<Option<u32>>,
    tls_resumed: Vec<Option<bool>>,
    tls_ticket_offered: Vec<Option<bool>>,
    tls_cert_bytes: Vec<Option<u64>>,
    tls_handshake_ns: Vec<Option<i64>>,
    tls_handshake_bytes: Vec<Option<u64>>,
    tls_decryption: Vec<Option<u32>>,
    tls_est_mode: Vec<Option<u32>>,
    tls_est_turns: Vec<Option<u32>>,
    tls_est_requests: Vec<Option<u32>>,
    tls_est_ttfb_ns: Vec<Option<i64>>,
    tls_est_total_ns: Vec<Option<i64>>,
    tls_est_req_bytes: Vec<Option<u64>>,
    tls_est_resp_bytes: Vec<Option<u64>>,
    tls_est_confidence: Vec<Option<u32>>,
    c2s_zero_windows: Vec<Option<u64>>,
    s2c_zero_windows: Vec<Option<u64>>,
    c2s_retransmission_timeouts: Vec<Option<u64>>,
    s2c_retransmission_timeouts: Vec<Option<u64>>,
    c2s_rto_wait_ns: Vec<Option<u64>>,
    s2c_rto_wait_ns: Vec<Option<u64>>,
    c2s_zero_window_ns: Vec<Option<u64>>,
    s2c_zero_window_ns: Vec<Option<u64>>,
    mss: Vec<Option<u32>>,
    h2: super::h2::H2ConnectionColumns,
}

impl ConnectionColumns {
    pub fn len(&self) -> usize {
        self.conn_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conn_id.is_empty()
    }

    pub fn push(&mut self, c: &Connection, strings: &mut Symbols) {
        let t = &c.tcp;
        let (up, down) = (&t.client_to_server, &t.server_to_client);
        self.conn_id.push(t.conn.0);
        self.client_ip.push(strings.intern_ip(t.client.ip));
        self.client_port.push(u32::from(t.client.port));
        self.server_ip.push(strings.intern_ip(t.server.ip));
        self.server_port.push(u32::from(t.server.port));
        self.first_ns.push(t.first_packet.nanos());
        self.last_ns.push(t.last_packet.nanos());
        self.syn_ns.push(t.syn.map(|x| x.nanos()));
        self.syn_ack_ns.push(t.syn_ack.map(|x| x.nanos()));
        self.ack_ns.push(t.handshake_ack.map(|x| x.nanos()));
        self.handshake_seen.push(t.handshake_seen);
        self.roles_inferred.push(t.roles_inferred);
        self.handshake_rtt_ns.push(t.handshake_rtt_ns());
        self.server_rtt_ns.push(t.server_rtt_ns());
        self.client_rtt_ns.push(t.client_rtt_ns());
        self.protocol.push(strings.intern(c.protocol.as_str()));
        self.upgraded_to
            .push(strings.intern_opt(c.upgraded_to.as_deref()));
        self.exchanges.push(c.exchanges);
        self.malformed_messages.push(c.malformed_messages);
        self.c2s_packets.push(up.packets);
        self.s2c_packets.push(down.packets);
        self.c2s_bytes.push(up.bytes);
        self.s2c_bytes.push(down.bytes);
        self.c2s_retransmitted_bytes.push(up.retransmitted_bytes);
        self.s2c_retransmitted_bytes.push(down.retransmitted_bytes);
        self.c2s_out_of_order_segments
            .push(up.out_of_order_segments);
        self.s2c_out_of_order_segments
            .push(down.out_of_order_segments);
        self.c2s_gaps.push(up.gaps);
        self.s2c_gaps.push(down.gaps);
        self.c2s_gap_bytes.push(up.gap_bytes);
        self.s2c_gap_bytes.push(down.gap_bytes);
        self.capture_duplicates
            .push(up.capture_duplicates + down.capture_duplicates);
        self.one_sided.push(t.one_sided());
        self.close.push(strings.intern(t.close.as_str()));
        self.tls_sni.push(strings.intern_opt(c.tls_sni.as_deref()));
        self.tls_alpn
            .push(strings.intern_opt(c.tls_alpn.as_deref()));
        let h = &c.tls_handshake;
        self.tls_version
            .push(strings.intern_opt(h.version.as_deref()));
        self.tls_cipher
            .push(strings.intern_opt(h.cipher.as_deref()));
        self.tls_alpn_selected
            .push(strings.intern_opt(h.alpn_selected.as_deref()));
        self.tls_resumed.push(h.resumed);
        self.tls_ticket_offered.push(h.ticket_offered);
        self.tls_cert_bytes.push(h.cert_bytes);
        self.tls_handshake_ns.push(h.handshake_ns);
        self.tls_handshake_bytes.push(h.handshake_bytes);
        self.tls_decryption
            .push(strings.intern_opt(c.tls_decryption));
        let e = c.tls_estimate.as_deref();
        self.tls_est_mode
            .push(strings.intern_opt(e.map(|e| e.mode)));
        self.tls_est_turns.push(e.map(|e| e.turns));
        self.tls_est_requests.push(e.and_then(|e| e.requests));
        self.tls_est_ttfb_ns.push(e.map(|e| e.ttfb_ns));
        self.tls_est_total_ns.push(e.map(|e| e.total_ns));
        self.tls_est_req_bytes.push(e.map(|e| e.req_bytes));
        self.tls_est_resp_bytes.push(e.map(|e| e.resp_bytes));
        self.tls_est_confidence
            .push(strings.intern_opt(e.map(|e| e.confidence)));
        // Nullable only for tables written before these were counted.
        self.c2s_zero_windows.push(Some(up.zero_windows));
        self.s2c_zero_windows.push(Some(down.zero_windows));
        self.c2s_retransmission_timeouts
            .push(Some(up.retransmission_timeouts));
        self.s2c_retransmission_timeouts
            .push(Some(down.retransmission_timeouts));
        self.c2s_rto_wait_ns.push(Some(up.rto_wait_ns));
        self.s2c_rto_wait_ns.push(Some(down.rto_wait_ns));
        self.c2s_zero_window_ns.push(Some(up.zero_window_ns));
        self.s2c_zero_window_ns.push(Some(down.zero_window_ns));
        let mss = match (up.mss, down.mss) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.mss.push(mss.map(u32::from));
        self.h2.push(c);
    }

    pub fn into_frame(self, strings: &Symbols) -> PolarsResult<DataFrame> {
        let height = self.conn_id.len();
        let mut columns = vec![
            Column::new(columns::CONN_ID.into(), self.conn_id),
            Column::new(columns::CLIENT_IP.into(), strings.resolve(self.client_ip)),
            Column::new(columns::CLIENT_PORT.into(), self.client_port),
            Column::new(columns::SERVER_IP.into(), strings.resolve(self.server_ip)),
            Column::new(columns::SERVER_PORT.into(), self.server_port),
            Column::new(columns::FIRST_NS.into(), self.first_ns),
            Column::new(columns::LAST_NS.into(), self.last_ns),
            Column::new(columns::SYN_NS.into(), self.syn_ns),
            Column::new(columns::SYN_ACK_NS.into(), self.syn_ack_ns),
            Column::new(columns::ACK_NS.into(), self.ack_ns),
            Column::new(columns::HANDSHAKE_SEEN.into(), self.handshake_seen),
            Column::new(columns::ROLES_INFERRED.into(), self.roles_inferred),
            Column::new(columns::HANDSHAKE_RTT_NS.into(), self.handshake_rtt_ns),
            Column::new(columns::SERVER_RTT_NS.into(), self.server_rtt_ns),
            Column::new(columns::CLIENT_RTT_NS.into(), self.client_rtt_ns),
            Column::new(columns::PROTOCOL.into(), strings.resolve(self.protocol)),
            Column::new(
                columns::UPGRADED_TO.into(),
                strings.resolve_opt(self.upgraded_to),
            ),
            Column::new(columns::EXCHANGES.into(), self.exchanges),
            Column::new(columns::MALFORMED_MESSAGES.into(), self.malformed_messages),
            Column::new(columns::C2S_PACKETS.into(), self.c2s_packets),
            Column::new(columns::S2C_PACKETS.into(), self.s2c_packets),
            Column::new(columns::C2S_BYTES.into(), self.c2s_bytes),
            Column::new(columns::S2C_BYTES.into(), self.s2c_bytes),
            Column::new(
                columns::C2S_RETRANSMITTED_BYTES.into(),
                self.c2s_retransmitted_bytes,
            ),
            Column::new(
                columns::S2C_RETRANSMITTED_BYTES.into(),
                self.s2c_retransmitted_bytes,
            ),
            Column::new(
                columns::C2S_OUT_OF_ORDER_SEGMENTS.into(),
                self.c2s_out_of_order_segments,
            ),
            Column::new(
                columns::S2C_OUT_OF_ORDER_SEGMENTS.into(),
                self.s2c_out_of_order_segments,
            ),
            Column::new(columns::C2S_GAPS.into(), self.c2s_gaps),
            Column::new(columns::S2C_GAPS.into(), self.s2c_gaps),
            Column::new(columns::C2S_GAP_BYTES.into(), self.c2s_gap_bytes),
            Column::new(columns::S2C_GAP_BYTES.into(), self.s2c_gap_bytes),
            Column::new(columns::CAPTURE_DUPLICATES.into(), self.capture_duplicates),
            Column::new(columns::ONE_SIDED.into(), self.one_sided),
            Column::new(columns::CLOSE.into(), strings.resolve(self.close)),
            Column::new(columns::TLS_SNI.into(), strings.resolve_opt(self.tls_sni)),
            Column::new(columns::TLS_ALPN.into(), strings.resolve_opt(self.tls_alpn)),
            Column::new(
                columns::TLS_VERSION.into(),
                strings.resolve_opt(self.tls_version),
            ),
            Column::new(
                columns::TLS_CIPHER.into(),
                strings.resolve_opt(self.tls_cipher),
            ),
            Column::new(
                columns::TLS_ALPN_SELECTED.into(),
                strings.resolve_opt(self.tls_alpn_selected),
            ),
            Column::new(columns::TLS_RESUMED.into(), self.tls_resumed),
            Column::new(columns::TLS_TICKET_OFFERED.into(), self.tls_ticket_offered),
            Column::new(columns::TLS_CERT_BYTES.into(), self.tls_cert_bytes),
            Column::new(columns::TLS_HANDSHAKE_NS.into(), self.tls_handshake_ns),
            Column::new(
                columns::TLS_HANDSHAKE_BYTES.into(),
                self.tls_handshake_bytes,
            ),
            Column::new(
                columns::TLS_DECRYPTION.into(),
                strings.resolve_opt(self.tls_decryption),
            ),
            Column::new(
                columns::TLS_EST_MODE.into(),
                strings.resolve_opt(self.tls_est_mode),
            ),
            Column::new(columns::TLS_EST_TURNS.into(), self.tls_est_turns),
            Column::new(columns::TLS_EST_REQUESTS.into(), self.tls_est_requests),
            Column::new(columns::TLS_EST_TTFB_NS.into(), self.tls_est_ttfb_ns),
            Column::new(columns::TLS_EST_TOTAL_NS.into(), self.tls_est_total_ns),
            Column::new(columns::TLS_EST_REQ_BYTES.into(), self.tls_est_req_bytes),
            Column::new(columns::TLS_EST_RESP_BYTES.into(), self.tls_est_resp_bytes),
            Column::new(
                columns::TLS_EST_CONFIDENCE.into(),
                strings.resolve_opt(self.tls_est_confidence),
            ),
            Column::new(columns::C2S_ZERO_WINDOWS.into(), self.c2s_zero_windows),
            Column::new(columns::S2C_ZERO_WINDOWS.into(), self.s2c_zero_windows),
            Column::new(
                columns::C2S_RETRANSMISSION_TIMEOUTS.into(),
                self.c2s_retransmission_timeouts,
            ),
            Column::new(
                columns::S2C_RETRANSMISSION_TIMEOUTS.into(),
                self.s2c_retransmission_timeouts,
            ),
            Column::new(columns::C2S_RTO_WAIT_NS.into(), self.c2s_rto_wait_ns),
            Column::new(columns::S2C_RTO_WAIT_NS.into(), self.s2c_rto_wait_ns),
            Column::new(columns::C2S_ZERO_WINDOW_NS.into(), self.c2s_zero_window_ns),
            Column::new(columns::S2C_ZERO_WINDOW_NS.into(), self.s2c_zero_window_ns),
            Column::new(columns::MSS.into(), self.mss),
        ];
        columns.extend(self.h2.into_columns());
        DataFrame::new(height, columns)
    }
}
