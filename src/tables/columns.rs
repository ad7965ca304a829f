//! The column names of every table, one constant each. The writers (`exchanges`,
//! `connections`, `dns`, `payloads`) and every reader name columns through these; a
//! column that two tables share (`conn_id`, the endpoints) has one name and one meaning.
//! Types and meanings are in each table's `COLUMNS` (and `docs/tables.md`).

// First listed by the `exchanges` table.
pub const CONN_ID: &str = "conn_id";
pub const INDEX: &str = "index";
pub const CLIENT_IP: &str = "client_ip";
pub const CLIENT_PORT: &str = "client_port";
pub const SERVER_IP: &str = "server_ip";
pub const SERVER_PORT: &str = "server_port";
pub const VERSION: &str = "version";
pub const METHOD: &str = "method";
pub const ROUTE: &str = "route";
pub const QUERY_NAMES: &str = "query_names";
pub const STATUS: &str = "status";
pub const REQ_FIRST_NS: &str = "req_first_ns";
pub const REQ_LAST_NS: &str = "req_last_ns";
pub const RESP_FIRST_NS: &str = "resp_first_ns";
pub const RESP_LAST_NS: &str = "resp_last_ns";
pub const REQ_HEADER_BYTES: &str = "req_header_bytes";
pub const REQ_BODY_BYTES: &str = "req_body_bytes";
pub const RESP_HEADER_BYTES: &str = "resp_header_bytes";
pub const RESP_BODY_BYTES: &str = "resp_body_bytes";
pub const REQ_BODY_LEN: &str = "req_body_len";
pub const RESP_BODY_LEN: &str = "resp_body_len";
pub const REQ_BODY_DECODED_LEN: &str = "req_body_decoded_len";
pub const RESP_BODY_DECODED_LEN: &str = "resp_body_decoded_len";
pub const REQ_CONTENT_TYPE: &str = "req_content_type";
pub const RESP_CONTENT_TYPE: &str = "resp_content_type";
pub const REQ_CONTENT_ENCODING: &str = "req_content_encoding";
pub const RESP_CONTENT_ENCODING: &str = "resp_content_encoding";
pub const HOST: &str = "host";
pub const TRACE_ID: &str = "trace_id";
pub const PARENT_SPAN_ID: &str = "parent_span_id";
pub const REQ_HEADER_NAMES: &str = "req_header_names";
pub const RESP_HEADER_NAMES: &str = "resp_header_names";
pub const INTERIM_RESPONSES: &str = "interim_responses";
pub const EXPECT_CONTINUE: &str = "expect_continue";
pub const CHUNKED_REQUEST: &str = "chunked_request";
pub const CHUNKED_RESPONSE: &str = "chunked_response";
pub const CLOSE_DELIMITED: &str = "close_delimited";
pub const UPGRADE: &str = "upgrade";
pub const COMPLETENESS: &str = "completeness";
pub const REQ_HEADER_BYTES_H2: &str = "req_header_bytes_h2";
pub const RESP_HEADER_BYTES_H2: &str = "resp_header_bytes_h2";
pub const REQ_HEADER_BYTES_GRPC: &str = "req_header_bytes_grpc";
pub const RESP_HEADER_BYTES_GRPC: &str = "resp_header_bytes_grpc";
pub const REQ_DATA_FRAME_BYTES_H2: &str = "req_data_frame_bytes_h2";
pub const RESP_DATA_FRAME_BYTES_H2: &str = "resp_data_frame_bytes_h2";
pub const REQ_STALL_NS: &str = "req_stall_ns";
pub const RESP_STALL_NS: &str = "resp_stall_ns";
pub const EXCHANGE_PROTOCOL: &str = "exchange_protocol";
pub const STREAM_ID: &str = "stream_id";
pub const REQ_HEADER_DECODED_BYTES: &str = "req_header_decoded_bytes";
pub const RESP_HEADER_DECODED_BYTES: &str = "resp_header_decoded_bytes";
pub const REQ_DATA_FRAMES: &str = "req_data_frames";
pub const RESP_DATA_FRAMES: &str = "resp_data_frames";
pub const PADDING_BYTES: &str = "padding_bytes";
pub const TRAILERS: &str = "trailers";
pub const HPACK_UNKNOWN_FIELDS: &str = "hpack_unknown_fields";
pub const HEADERS_COMPLETE: &str = "headers_complete";
pub const STREAM_ERROR: &str = "stream_error";
pub const GRPC_STATUS: &str = "grpc_status";
pub const GRPC_MESSAGE_SENT: &str = "grpc_message_sent";
pub const GRPC_ENCODING: &str = "grpc_encoding";
pub const REQ_GRPC_MESSAGES: &str = "req_grpc_messages";
pub const RESP_GRPC_MESSAGES: &str = "resp_grpc_messages";
pub const REQ_GRPC_MESSAGE_BYTES: &str = "req_grpc_message_bytes";
pub const RESP_GRPC_MESSAGE_BYTES: &str = "resp_grpc_message_bytes";
pub const GRPC_COMPRESSED_MESSAGES: &str = "grpc_compressed_messages";
pub const GRPC_CALL_KIND: &str = "grpc_call_kind";
pub const GRPC_TIMEOUT_NS: &str = "grpc_timeout_ns";

// First listed by the `connections` table.
pub const FIRST_NS: &str = "first_ns";
pub const LAST_NS: &str = "last_ns";
pub const SYN_NS: &str = "syn_ns";
pub const SYN_ACK_NS: &str = "syn_ack_ns";
pub const ACK_NS: &str = "ack_ns";
pub const HANDSHAKE_SEEN: &str = "handshake_seen";
pub const ROLES_INFERRED: &str = "roles_inferred";
pub const HANDSHAKE_RTT_NS: &str = "handshake_rtt_ns";
pub const SERVER_RTT_NS: &str = "server_rtt_ns";
pub const CLIENT_RTT_NS: &str = "client_rtt_ns";
pub const PROTOCOL: &str = "protocol";
pub const UPGRADED_TO: &str = "upgraded_to";
pub const EXCHANGES: &str = "exchanges";
pub const MALFORMED_MESSAGES: &str = "malformed_messages";
pub const C2S_PACKETS: &str = "c2s_packets";
pub const S2C_PACKETS: &str = "s2c_packets";
pub const C2S_BYTES: &str = "c2s_bytes";
pub const S2C_BYTES: &str = "s2c_bytes";
pub const C2S_RETRANSMITTED_BYTES: &str = "c2s_retransmitted_bytes";
pub const S2C_RETRANSMITTED_BYTES: &str = "s2c_retransmitted_bytes";
pub const C2S_OUT_OF_ORDER_SEGMENTS: &str = "c2s_out_of_order_segments";
pub const S2C_OUT_OF_ORDER_SEGMENTS: &str = "s2c_out_of_order_segments";
pub const C2S_GAPS: &str = "c2s_gaps";
pub const S2C_GAPS: &str = "s2c_gaps";
pub const C2S_GAP_BYTES: &str = "c2s_gap_bytes";
pub const S2C_GAP_BYTES: &str = "s2c_gap_bytes";
pub const CAPTURE_DUPLICATES: &str = "capture_duplicates";
pub const ONE_SIDED: &str = "one_sided";
pub const CLOSE: &str = "close";
pub const TLS_SNI: &str = "tls_sni";
pub const H2_FOUND_BY: &str = "h2_found_by";
pub const H2_STREAMS: &str = "h2_streams";
pub const H2_STREAMS_EVICTED: &str = "h2_streams_evicted";
pub const H2_FRAMES_DATA: &str = "h2_frames_data";
pub const H2_FRAMES_HEADERS: &str = "h2_frames_headers";
pub const H2_FRAMES_PRIORITY: &str = "h2_frames_priority";
pub const H2_FRAMES_RST_STREAM: &str = "h2_frames_rst_stream";
pub const H2_FRAMES_SETTINGS: &str = "h2_frames_settings";
pub const H2_FRAMES_PUSH_PROMISE: &str = "h2_frames_push_promise";
pub const H2_FRAMES_PING: &str = "h2_frames_ping";
pub const H2_FRAMES_GOAWAY: &str = "h2_frames_goaway";
pub const H2_FRAMES_WINDOW_UPDATE: &str = "h2_frames_window_update";
pub const H2_FRAMES_CONTINUATION: &str = "h2_frames_continuation";
pub const H2_FRAMES_UNKNOWN: &str = "h2_frames_unknown";
pub const H2_CLIENT_HEADER_TABLE_SIZE: &str = "h2_client_header_table_size";
pub const H2_SERVER_HEADER_TABLE_SIZE: &str = "h2_server_header_table_size";
pub const H2_CLIENT_MAX_FRAME_SIZE: &str = "h2_client_max_frame_size";
pub const H2_SERVER_MAX_FRAME_SIZE: &str = "h2_server_max_frame_size";
pub const H2_GOAWAY_ERROR: &str = "h2_goaway_error";
pub const H2_GOAWAY_REFUSED: &str = "h2_goaway_refused";
pub const H2_HPACK_UNKNOWN_FIELDS: &str = "h2_hpack_unknown_fields";
pub const H2_HPACK_ERRORS: &str = "h2_hpack_errors";
pub const H2_HEADER_BLOCKS_DROPPED: &str = "h2_header_blocks_dropped";
pub const H2_FRAME_ERRORS: &str = "h2_frame_errors";
pub const H2_LATE_FRAMES: &str = "h2_late_frames";
pub const H2_SYNC_LOST: &str = "h2_sync_lost";
pub const H2_UNSYNCED_BYTES: &str = "h2_unsynced_bytes";
pub const TLS_ALPN: &str = "tls_alpn";
pub const TLS_VERSION: &str = "tls_version";
pub const TLS_CIPHER: &str = "tls_cipher";
pub const TLS_ALPN_SELECTED: &str = "tls_alpn_selected";
pub const TLS_RESUMED: &str = "tls_resumed";
pub const TLS_TICKET_OFFERED: &str = "tls_ticket_offered";
pub const TLS_CERT_BYTES: &str = "tls_cert_bytes";
pub const TLS_DECRYPTION: &str = "tls_decryption";
pub const TLS_DECRYPTED: &str = "tls_decrypted";
pub const TLS_EST_MODE: &str = "tls_est_mode";
pub const TLS_EST_TURNS: &str = "tls_est_turns";
pub const TLS_EST_REQUESTS: &str = "tls_est_requests";
pub const TLS_EST_TTFB_NS: &str = "tls_est_ttfb_ns";
pub const TLS_EST_TOTAL_NS: &str = "tls_est_total_ns";
pub const TLS_EST_REQ_BYTES: &str = "tls_est_req_bytes";
pub const TLS_EST_RESP_BYTES: &str = "tls_est_resp_bytes";
pub const TLS_EST_CONFIDENCE: &str = "tls_est_confidence";
pub const TLS_HANDSHAKE_NS: &str = "tls_handshake_ns";
pub const TLS_HANDSHAKE_BYTES: &str = "tls_handshake_bytes";
pub const C2S_ZERO_WINDOWS: &str = "c2s_zero_windows";
pub const S2C_ZERO_WINDOWS: &str = "s2c_zero_windows";
pub const C2S_RETRANSMISSION_TIMEOUTS: &str = "c2s_retransmission_timeouts";
pub const S2C_RETRANSMISSION_TIMEOUTS: &str = "s2c_retransmission_timeouts";
pub const C2S_RTO_WAIT_NS: &str = "c2s_rto_wait_ns";
pub const S2C_RTO_WAIT_NS: &str = "s2c_rto_wait_ns";
pub const C2S_ZERO_WINDOW_NS: &str = "c2s_zero_window_ns";
pub const S2C_ZERO_WINDOW_NS: &str = "s2c_zero_window_ns";
pub const MSS: &str = "mss";

// First listed by the `dns` table.
pub const TS_NS: &str = "ts_ns";
pub const RESOLVER_IP: &str = "resolver_ip";
pub const QUERY: &str = "query";
pub const NAME: &str = "name";
pub const TYPE: &str = "type";
pub const ANSWER: &str = "answer";
pub const TTL: &str = "ttl";

// First listed by the `payloads` table.
pub const DIRECTION: &str = "direction";
pub const BODIES: &str = "bodies";
pub const SAMPLES: &str = "samples";
pub const SAMPLED_JSON_BYTES: &str = "sampled_json_bytes";
pub const SAMPLED_PROTOBUF_BYTES: &str = "sampled_protobuf_bytes";
pub const SAMPLED_JSON_GZIP_BYTES: &str = "sampled_json_gzip_bytes";
pub const SAMPLED_PROTOBUF_GZIP_BYTES: &str = "sampled_protobuf_gzip_bytes";
pub const JSON_PARSE_NS_PER_BYTE: &str = "json_parse_ns_per_byte";
pub const PROTOBUF_DECODE_NS_PER_BYTE: &str = "protobuf_decode_ns_per_byte";
pub const SCHEMA_FIELDS: &str = "schema_fields";
pub const UNSAFE_INTEGERS: &str = "unsafe_integers";
pub const TYPE_CONFLICTS: &str = "type_conflicts";
pub const NON_JSON_BODIES: &str = "non_json_bodies";
pub const NON_JSON_KINDS: &str = "non_json_kinds";
pub const OVERSIZED: &str = "oversized";
pub const DROPPED: &str = "dropped";

// Derived by `links` on the exchanges and connections frames while measuring; never
// written to a file.
/// The client service name.
pub const CLIENT: &str = "client";
/// The server service name.
pub const SERVER: &str = "server";
/// The name of the exchange's `grpc_status` (`OK`, `UNAVAILABLE`, ...).
pub const GRPC_STATUS_NAME: &str = "grpc_status_name";
/// The exchange carried a JSON body.
pub const JSON: &str = "json";
/// The exchange was the first on a connection whose handshake was seen.
pub const NEW_CONN: &str = "new_conn";
/// The exchange was not seen whole.
pub const INCOMPLETE: &str = "incomplete";
/// Body bytes (both directions) whose media type is JSON.
pub const JSON_BODY_BYTES: &str = "json_body_bytes";
/// The part of those sent without a content coding (what gzip could still shrink).
pub const JSON_IDENTITY_BODY_BYTES: &str = "json_identity_body_bytes";
/// The request carried an idempotency key header.
pub const IDEMPOTENCY_KEYED: &str = "idempotency_keyed";
/// The request carried forwarding headers (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`,
/// `Via`): its client is a proxy.
pub const FORWARDED: &str = "forwarded";
/// The response carried `Retry-After`.
pub const RETRY_AFTER: &str = "retry_after";
/// The exchange failed and its client sent the same request again; and that retry
/// succeeded.
pub const RETRIED_FAILURE: &str = "retried_failure";
pub const RECOVERED_FAILURE: &str = "recovered_failure";
pub const SLOW_START_MS: &str = "slow_start_ms";
pub const SLOW_START_RESPONSE: &str = "slow_start_response";
/// Header bytes of the exchanges whose header replay was complete, as sent, as HTTP/2
/// and as gRPC.
pub const REPLAY_H1_HEADER_BYTES: &str = "replay_h1_header_bytes";
pub const REPLAY_H2_HEADER_BYTES: &str = "replay_h2_header_bytes";
pub const REPLAY_GRPC_HEADER_BYTES: &str = "replay_grpc_header_bytes";
/// Capture second of the request (for the peak rate).
pub const SECOND: &str = "second";
/// Request last byte -> response first byte, and the whole exchange, in ms.
pub const TTFB_MS: &str = "ttfb_ms";
pub const TOTAL_MS: &str = "total_ms";
/// The request's and the response's stall in ms (null when none), and their sum (0 when
/// neither stalled): the time the exchange lost to its senders waiting for ACKs.
pub const REQ_STALL_MS: &str = "req_stall_ms";
pub const RESP_STALL_MS: &str = "resp_stall_ms";
pub const STALL_MS: &str = "stall_ms";
