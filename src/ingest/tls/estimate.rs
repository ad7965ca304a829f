//! What a TLS connection's record stream tells without keys: request/response turns.
//!
//! HTTP/1.1 inside TLS alternates: the client's application-data records (a request),
//! then the server's (its response), then the client's again. A *turn* is a client burst
//! followed by a server burst; on HTTP/1.1 each is one request (pipelining, rare between
//! services, would merge several into one). Per turn: the time from the client burst's
//! last record to the server burst's first (the estimate of linkrank's `latency_ms`,
//! request last byte -> response first byte), from the client burst's first record to the
//! server burst's last (`latency_total_ms`), and the plaintext bytes each way (record
//! bodies minus the suite's per-record overhead).
//!
//! HTTP/2 (ALPN `h2` selected, or offered in TLS 1.3 where the selection is encrypted)
//! interleaves streams in both directions: bursts are *rounds*, not requests. Its reuse
//! (one connection, its duration), bytes and rounds are counted; requests, routes,
//! statuses and headers cannot be told.
//!
//! The handshake's own encrypted records are skipped: TLS 1.2 sends it as handshake
//! records (only application-data records count), TLS 1.3 as application data (the
//! server's first flight, before the client's first application-data record, and that
//! record itself, the client's Finished). Post-handshake messages (TLS 1.3 session
//! tickets) join the server burst they travel in, except in TLS 1.3 before the first
//! answer: a server record sent before any client request (a ticket) gives the ticket
//! size, and records of that size that come while the first request is being written
//! (OpenSSL sends a second ticket) are skipped, so they do not split the request in two.
//! Memory: a few integers per connection.

use crate::model::connection::TlsEstimate;
use crate::model::{Direction, Timestamp};

use super::APPLICATION_DATA;

/// Follows the application-data records of one connection.
#[derive(Debug, Default)]
pub struct TurnEstimator {
    /// The TLS 1.3 client Finished has been skipped (TLS 1.2: always true).
    started: bool,
    tls13: bool,
    /// Direction of the burst in progress.
    burst: Option<Direction>,
    /// The client burst waiting for its answer: first and last record times, bytes.
    req_first: Timestamp,
    req_last: Timestamp,
    req_bytes: u64,
    /// The server burst answering it: first and last record times, bytes.
    resp_first: Timestamp,
    resp_last: Timestamp,
    resp_bytes: u64,
    /// A client burst was seen whose answer has not finished.
    open: bool,
    turns: u32,
    ttfb_sum: i64,
    total_sum: i64,
    req_total: u64,
    resp_total: u64,
    /// TLS 1.3: the record length of the server's first unasked record (a session
    /// ticket, sent after the client's Finished).
    ticket_len: Option<usize>,
}

impl TurnEstimator {
    /// `tls13`: the version the ServerHello chose is TLS 1.3.
    pub fn start(&mut self, tls13: bool) {
        self.tls13 = tls13;
        self.started = !tls13;
    }

    /// One record header (`len`: body bytes, `overhead`: of those, the suite's own).
    pub fn record(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        ctype: u8,
        len: usize,
        overhead: usize,
    ) {
        if ctype != APPLICATION_DATA {
            return;
        }
        let plain = len.saturating_sub(overhead) as u64;
        if !self.started {
            // TLS 1.3: the server's encrypted flight, then the client's Finished.
            if dir == Direction::ClientToServer {
                self.started = true;
            }
            return;
        }
        match dir {
            Direction::ClientToServer => {
                if self.burst != Some(dir) {
                    if self.open && self.resp_bytes > 0 {
                        self.close_turn();
                    }
                    if !self.open {
                        self.req_first = ts;
                        self.req_bytes = 0;
                        self.open = true;
                    }
                }
                self.req_last = ts;
                self.req_bytes += plain;
            }
            Direction::ServerToClient => {
                if !self.open {
                    // Server data nobody asked for (tickets, HTTP/2 SETTINGS): not a turn.
                    if self.tls13 && self.turns == 0 && self.ticket_len.is_none() {
                        self.ticket_len = Some(len);
                    }
                    self.burst = Some(dir);
                    return;
                }
                if self.turns == 0 && self.resp_bytes == 0 && self.ticket_len == Some(len) {
                    // Another ticket of the same size, sent while the first request was
                    // still being written (OpenSSL sends two): not an answer, and the
                    // client's records around it are one request.
                    return;
                }
                if self.burst != Some(dir) && self.resp_bytes == 0 {
                    self.resp_first = ts;
                }
                self.resp_last = ts;
                self.resp_bytes += plain;
            }
        }
        self.burst = Some(dir);
    }

    fn close_turn(&mut self) {
        self.turns += 1;
        self.ttfb_sum += self.resp_first.since(self.req_last).max(0);
        self.total_sum += self.resp_last.since(self.req_first).max(0);
        self.req_total += self.req_bytes;
        self.resp_total += self.resp_bytes;
        self.open = false;
        self.req_bytes = 0;
        self.resp_bytes = 0;
    }

    /// The estimate at the connection's end. `h2`: HTTP/2 was selected (or may have been:
    /// offered in TLS 1.3); `h2_certain`: it was selected in clear (TLS 1.2).
    pub fn finish(mut self, h2: bool, h2_certain: bool) -> Option<TlsEstimate> {
        if self.open && self.resp_bytes > 0 {
            self.close_turn();
        }
        if self.turns == 0 {
            return None;
        }
        let n = i64::from(self.turns);
        // TLS 1.3 hides the end of the handshake and carries tickets and key updates as
        // application data too; HTTP/2 only offered (TLS 1.3) may or may not be what ran.
        let confidence = match (h2, h2_certain, self.tls13) {
            (false, _, false) => "high",
            (false, _, true) | (true, true, _) => "medium",
            (true, false, _) => "low",
        };
        Some(TlsEstimate {
            mode: if h2 { "h2_rounds" } else { "http1_turns" },
            turns: self.turns,
            requests: (!h2).then_some(self.turns),
            ttfb_ns: self.ttfb_sum / n,
            total_ns: self.total_sum / n,
            req_bytes: self.req_total,
            resp_bytes: self.resp_total,
            confidence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Direction = Direction::ClientToServer;
    const S: Direction = Direction::ServerToClient;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn alternating_bursts_are_turns_with_their_times_and_bytes() {
        let mut e = TurnEstimator::default();
        e.start(false);
        e.record(C, t(0), 22, 40, 24); // encrypted Finished: not application data
        e.record(C, t(10), 23, 124, 24);
        e.record(S, t(15), 23, 1024, 24);
        e.record(S, t(16), 23, 524, 24);
        e.record(C, t(30), 23, 224, 24);
        e.record(S, t(40), 23, 124, 24);
        let x = e.finish(false, false).unwrap();
        assert_eq!((x.turns, x.requests), (2, Some(2)));
        assert_eq!(x.ttfb_ns, 7_500_000, "(5 + 10) / 2 ms");
        assert_eq!(x.total_ns, 8_000_000, "(6 + 10) / 2 ms");
        assert_eq!((x.req_bytes, x.resp_bytes), (300, 1600));
        assert_eq!(x.confidence, "high");
    }

    #[test]
    fn tls13_skips_the_server_flight_and_client_finished_and_unasked_tickets() {
        let mut e = TurnEstimator::default();
        e.start(true);
        e.record(S, t(0), 23, 2000, 17); // EncryptedExtensions .. Finished
        e.record(C, t(1), 23, 53, 17); // client Finished
        e.record(S, t(2), 23, 200, 17); // a session ticket before any request
        e.record(C, t(3), 23, 117, 17); // request headers
        e.record(S, t(3), 23, 200, 17); // the second ticket, in the middle of the request
        e.record(C, t(4), 23, 67, 17); // request body
        e.record(S, t(5), 23, 217, 17);
        let x = e.finish(false, false).unwrap();
        assert_eq!((x.turns, x.req_bytes, x.resp_bytes), (1, 150, 200));
        assert_eq!(x.confidence, "medium");
    }

    #[test]
    fn h2_gives_rounds_not_requests_and_no_turn_gives_none() {
        let mut e = TurnEstimator::default();
        e.start(false);
        e.record(C, t(0), 23, 100, 24);
        e.record(S, t(1), 23, 100, 24);
        let x = e.finish(true, true).unwrap();
        assert_eq!((x.mode, x.requests, x.turns), ("h2_rounds", None, 1));
        let mut e = TurnEstimator::default();
        e.start(false);
        e.record(C, t(0), 23, 100, 24);
        assert!(e.finish(false, false).is_none(), "a request never answered");
    }
}
