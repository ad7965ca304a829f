//! Ingest: from capture and trace files to owned records, streaming, in the order the
//! data passes through: `capture` (files -> frames), `decode` (frames -> TCP segments and
//! UDP datagrams, tunnels and fragments undone), `flow` (segments -> ordered byte streams
//! per connection), `http` (streams -> exchanges and connection records), beside it `tls`
//! (handshakes), `dns` (answers), `serialization` (JSON samples and their protobuf
//! schema), `h2cost` (what the headers would cost as HTTP/2 and gRPC) and `hpack_static`
//! (the table both HPACK users share); and `traces` (trace files -> calls between
//! services).

pub mod capture;
pub mod decode;
pub mod flow;
pub mod http;
pub mod tls;
pub mod dns;
pub mod serialization;
pub mod h2cost;
pub(crate) mod hpack_static;
pub mod traces;
