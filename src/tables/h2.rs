//! The HTTP/2 and gRPC columns of the `exchanges` and `connections` tables: null on rows
//! that did not carry HTTP/2 (or gRPC), and in tables written before they existed.

use polars::prelude::*;

use super::columns;
use crate::ingest::http::h2::grpc;
use crate::model::connection::H2_FRAME_TYPES;
use crate::model::{Connection, Exchange};

/// The exchanges table's HTTP/2 and gRPC columns, in table order (documented in
/// `exchanges::COLUMNS`).
pub(crate) const EXCHANGE_NAMES: [&str; 21] = [
    columns::EXCHANGE_PROTOCOL,
    columns::STREAM_ID,
    columns::REQ_HEADER_DECODED_BYTES,
    columns::RESP_HEADER_DECODED_BYTES,
    columns::REQ_DATA_FRAMES,
    columns::RESP_DATA_FRAMES,
    columns::PADDING_BYTES,
    columns::TRAILERS,
    columns::HPACK_UNKNOWN_FIELDS,
    columns::HEADERS_COMPLETE,
    columns::STREAM_ERROR,
    columns::GRPC_STATUS,
    columns::GRPC_MESSAGE_SENT,
    columns::GRPC_ENCODING,
    columns::REQ_GRPC_MESSAGES,
    columns::RESP_GRPC_MESSAGES,
    columns::REQ_GRPC_MESSAGE_BYTES,
    columns::RESP_GRPC_MESSAGE_BYTES,
    columns::GRPC_COMPRESSED_MESSAGES,
    columns::GRPC_CALL_KIND,
    columns::GRPC_TIMEOUT_NS,
];

/// The connections table's HTTP/2 columns, in table order (`connections::COLUMNS`).
pub(crate) const CONNECTION_NAMES: [&str; 27] = [
    columns::H2_FOUND_BY,
    columns::H2_STREAMS,
    columns::H2_STREAMS_EVICTED,
    columns::H2_FRAMES_DATA,
    columns::H2_FRAMES_HEADERS,
    columns::H2_FRAMES_PRIORITY,
    columns::H2_FRAMES_RST_STREAM,
    columns::H2_FRAMES_SETTINGS,
    columns::H2_FRAMES_PUSH_PROMISE,
    columns::H2_FRAMES_PING,
    columns::H2_FRAMES_GOAWAY,
    columns::H2_FRAMES_WINDOW_UPDATE,
    columns::H2_FRAMES_CONTINUATION,
    columns::H2_FRAMES_UNKNOWN,
    columns::H2_CLIENT_HEADER_TABLE_SIZE,
    columns::H2_SERVER_HEADER_TABLE_SIZE,
    columns::H2_CLIENT_MAX_FRAME_SIZE,
    columns::H2_SERVER_MAX_FRAME_SIZE,
    columns::H2_GOAWAY_ERROR,
    columns::H2_GOAWAY_REFUSED,
    columns::H2_HPACK_UNKNOWN_FIELDS,
    columns::H2_HPACK_ERRORS,
    columns::H2_HEADER_BLOCKS_DROPPED,
    columns::H2_FRAME_ERRORS,
    columns::H2_LATE_FRAMES,
    columns::H2_SYNC_LOST,
    columns::H2_UNSYNCED_BYTES,
];

/// The exchanges' HTTP/2 and gRPC columns as they are built.
#[derive(Default)]
pub struct H2ExchangeColumns {
    protocol: Vec<Option<&'static str>>,
    u32s: [Vec<Option<u32>>; 8],
    u64s: [Vec<Option<u64>>; 5],
    bools: [Vec<Option<bool>>; 3],
    strs: [Vec<Option<String>>; 3],
    timeout: Vec<Option<i64>>,
}

impl H2ExchangeColumns {
    pub fn push(&mut self, x: &Exchange) {
        self.protocol.push(Some(x.protocol()));
        let h = x.h2.as_deref();
        let g = x.grpc.as_deref();
        let u32s = [
            h.map(|h| h.stream_id),
            h.map(|h| h.req_data_frames),
            h.map(|h| h.resp_data_frames),
            h.map(|h| h.unknown_fields),
            g.and_then(|g| g.status),
            g.map(|g| g.req_messages),
            g.map(|g| g.resp_messages),
            g.map(|g| g.compressed_messages),
        ];
        for (c, v) in self.u32s.iter_mut().zip(u32s) {
            c.push(v);
        }
        let u64s = [
            h.map(|h| h.req_header_decoded),
            h.map(|h| h.resp_header_decoded),
            h.map(|h| h.padding_bytes),
            g.map(|g| g.req_message_bytes),
            g.map(|g| g.resp_message_bytes),
        ];
        for (c, v) in self.u64s.iter_mut().zip(u64s) {
            c.push(v);
        }
        let bools = [
            h.map(|h| h.trailers),
            h.map(|h| h.headers_complete),
            g.map(|g| g.message_sent),
        ];
        for (c, v) in self.bools.iter_mut().zip(bools) {
            c.push(v);
        }
        let strs = [
            h.and_then(|h| h.error.clone()),
            g.and_then(|g| g.encoding.clone()),
            g.map(|g| grpc::call_kind(g).to_owned()),
        ];
        for (c, v) in self.strs.iter_mut().zip(strs) {
            c.push(v);
        }
        self.timeout.push(g.and_then(|g| g.timeout_ns));
    }

    /// The columns, in table order.
    pub fn into_columns(self) -> Vec<Column> {
        let [stream, req_df, resp_df, unknown, status, req_m, resp_m, compressed] = self.u32s;
        let [req_dec, resp_dec, padding, req_mb, resp_mb] = self.u64s;
        let [trailers, complete, message] = self.bools;
        let [error, encoding, kind] = self.strs;
        let mut names = EXCHANGE_NAMES.iter();
        let mut next = || -> PlSmallStr { names.next().copied().unwrap_or_default().into() };
        vec![
            Column::new(next(), self.protocol),
            Column::new(next(), stream),
            Column::new(next(), req_dec),
            Column::new(next(), resp_dec),
            Column::new(next(), req_df),
            Column::new(next(), resp_df),
            Column::new(next(), padding),
            Column::new(next(), trailers),
            Column::new(next(), unknown),
            Column::new(next(), complete),
            Column::new(next(), error),
            Column::new(next(), status),
            Column::new(next(), message),
            Column::new(next(), encoding),
            Column::new(next(), req_m),
            Column::new(next(), resp_m),
            Column::new(next(), req_mb),
            Column::new(next(), resp_mb),
            Column::new(next(), compressed),
            Column::new(next(), kind),
            Column::new(next(), self.timeout),
        ]
    }
}

/// The connections' HTTP/2 columns as they are built.
#[derive(Default)]
pub struct H2ConnectionColumns {
    found_by: Vec<Option<&'static str>>,
    streams: [Vec<Option<u32>>; 2],
    frames: [Vec<Option<u64>>; 11],
    settings: [Vec<Option<u32>>; 4],
    goaway_error: Vec<Option<&'static str>>,
    goaway_refused: Vec<Option<u32>>,
    counters: [Vec<Option<u64>>; 7],
}

impl H2ConnectionColumns {
    pub fn push(&mut self, c: &Connection) {
        let h = c.h2.as_deref();
        self.found_by.push(h.map(|h| h.found_by));
        self.streams[0].push(h.map(|h| h.streams));
        self.streams[1].push(h.map(|h| h.streams_evicted));
        for (i, col) in self.frames.iter_mut().enumerate() {
            col.push(h.map(|h| h.frames[i]));
        }
        let settings = [
            h.and_then(|h| h.header_table_size[0]),
            h.and_then(|h| h.header_table_size[1]),
            h.and_then(|h| h.max_frame_size[0]),
            h.and_then(|h| h.max_frame_size[1]),
        ];
        for (col, v) in self.settings.iter_mut().zip(settings) {
            col.push(v);
        }
        self.goaway_error.push(h.and_then(|h| h.goaway_error));
        self.goaway_refused.push(h.map(|h| h.goaway_refused));
        let counters = [
            h.map(|h| h.hpack_unknown_fields),
            h.map(|h| h.hpack_errors),
            h.map(|h| h.header_blocks_dropped),
            h.map(|h| h.frame_errors),
            h.map(|h| h.late_frames),
            h.map(|h| h.sync_lost),
            h.map(|h| h.unsynced_bytes),
        ];
        for (col, v) in self.counters.iter_mut().zip(counters) {
            col.push(v);
        }
    }

    /// The columns, in table order.
    pub fn into_columns(self) -> Vec<Column> {
        let mut names = CONNECTION_NAMES.iter();
        let mut next = || names.next().copied().unwrap_or_default();
        let mut out = vec![Column::new(next().into(), self.found_by)];
        for v in self.streams {
            out.push(Column::new(next().into(), v));
        }
        debug_assert_eq!(H2_FRAME_TYPES.len(), self.frames.len());
        for v in self.frames {
            out.push(Column::new(next().into(), v));
        }
        for v in self.settings {
            out.push(Column::new(next().into(), v));
        }
        out.push(Column::new(next().into(), self.goaway_error));
        out.push(Column::new(next().into(), self.goaway_refused));
        for v in self.counters {
            out.push(Column::new(next().into(), v));
        }
        out
    }
}
