//! Plain owned data passed between pipeline stages. No logic beyond small helpers.

pub mod connection;
pub mod coverage;
pub mod exchange;
pub mod ids;
pub mod symbols;
pub mod time;

pub use connection::{CloseReason, Connection, DirStats, H2Connection, L7Protocol, TcpSummary};
pub use coverage::{ClockCorrection, ClockOffset, Coverage, LiveCounters, OtlpReceiverCounters};
pub use exchange::{Completeness, Exchange, GrpcExchange, H2Exchange};
pub use ids::{ConnId, Direction, Endpoint, SourceId};
pub use symbols::{Sym, Symbols};
pub use time::Timestamp;
