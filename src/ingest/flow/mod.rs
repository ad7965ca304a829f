//! Flow: TCP segments -> ordered byte streams. Tracks every connection, decides client and
//! server once, reassembles both directions (out-of-order, retransmission, overlap,
//! sequence wrap), and reports holes the capture never filled as gaps instead of stitching
//! bytes across them. State is bounded: connection cap, idle timeout, out-of-order caps.

pub mod skew;
pub mod table;
pub mod tcp;
#[cfg(test)]
mod tests;

pub use table::FlowTable;

use crate::model::{ConnId, Direction, Endpoint, TcpSummary, Timestamp};

/// What the first payload bytes of one side say about that side's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleHint {
    /// These bytes open a conversation (an HTTP request line, a TLS ClientHello...).
    Client,
    /// These bytes answer one (an HTTP status line, a TLS ServerHello...).
    Server,
    Unknown,
}

/// Classifies a side's first payload; supplied by the protocol layer so that the flow
/// stage can decide roles once, without a backward edge.
pub type RoleProbe = fn(&[u8]) -> RoleHint;

/// The consumer's answer to an event: whether it still wants this connection's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    Keep,
    /// Stop delivering `Data` for this connection (still counted, still closed).
    Ignore,
}

#[derive(Clone, Copy, Debug)]
pub enum EventKind<'a> {
    /// Roles decided; always the connection's first event.
    Opened { client: Endpoint, server: Endpoint },
    /// In-order bytes. `ts` is the capture time of the segment that carried them;
    /// `stall_ns` is set when that segment ended a sender stall that long (its sender
    /// waited for an ACK, see [`tcp`]).
    Data {
        dir: Direction,
        bytes: &'a [u8],
        stall_ns: Option<i64>,
    },
    /// `len` bytes of this direction were never captured.
    Gap { dir: Direction, len: u64 },
    /// This direction ended (FIN reached in order, or RST).
    End { dir: Direction },
    /// The connection's record is complete; always its last event.
    Closed(&'a TcpSummary),
}

#[derive(Clone, Copy, Debug)]
pub struct StreamEvent<'a> {
    pub conn: ConnId,
    pub ts: Timestamp,
    pub kind: EventKind<'a>,
}

#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    /// Live connections at once; beyond it the least recently active is evicted.
    pub max_connections: usize,
    /// A connection with no packet for this long (capture time) is closed and reported.
    pub idle_timeout_ns: i64,
    /// Out-of-order bytes buffered per direction before the hole is declared a gap.
    pub max_ooo_bytes_per_direction: usize,
    /// Out-of-order bytes buffered across all connections.
    pub max_ooo_bytes_total: usize,
    /// How long a closed connection's 5-tuple is remembered so late ACKs and
    /// retransmitted FINs do not open a phantom connection.
    pub closed_linger_ns: i64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_connections: 100_000,
            idle_timeout_ns: 300_000_000_000,
            max_ooo_bytes_per_direction: 256 << 10,
            max_ooo_bytes_total: 64 << 20,
            closed_linger_ns: 5_000_000_000,
        }
    }
}
