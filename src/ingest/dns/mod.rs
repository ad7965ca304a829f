//! DNS: UDP datagrams to or from port 53 -> owned answer records (A, AAAA, CNAME) of the
//! successful responses, a name source for telling which service an address belongs to.
//! Parsed with simple-dns; queries are skipped on their header bits without parsing.
//! DNS over TCP (and mDNS on 5353) is not read.

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, PacketFlag, CLASS, RCODE};

use crate::ingest::decode::Datagram;
use crate::model::{Coverage, Timestamp};

pub const DNS_PORT: u16 = 53;

/// Bytes of the fixed DNS header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// Smallest question (root name, type, class) and resource record (root name, type,
/// class, TTL, rdlength): section counts that cannot fit in the datagram are refused
/// before the parser pre-allocates for them.
const MIN_QUESTION_LEN: usize = 5;
const MIN_RECORD_LEN: usize = 11;

/// The record types kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsType {
    A,
    Aaaa,
    Cname,
}

impl DnsType {
    pub const fn as_str(self) -> &'static str {
        match self {
            DnsType::A => "A",
            DnsType::Aaaa => "AAAA",
            DnsType::Cname => "CNAME",
        }
    }
}

/// One answer record of a successful response: a row of the `dns` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Capture time of the response.
    pub ts: Timestamp,
    /// The response's source: the resolver that answered.
    pub resolver: IpAddr,
    /// The response's destination: the client that asked.
    pub client: IpAddr,
    /// The first question's name, lower-case, without the trailing dot.
    pub query: String,
    /// The record's owner name, lower-case, without the trailing dot.
    pub name: String,
    pub rtype: DnsType,
    /// The address as text (A, AAAA) or the CNAME target, lower-case, no trailing dot.
    pub answer: String,
    pub ttl: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct DnsConfig {
    /// Answer rows kept in one run; later ones are counted and dropped.
    pub max_answers: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            max_answers: 1_000_000,
        }
    }
}

/// Why a DNS datagram yields no answers although it is a response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("shorter than a DNS header")]
    Short,
    #[error("section counts larger than the datagram")]
    Counts,
    #[error("cut by the snaplen")]
    Truncated,
    #[error("malformed DNS message: {0}")]
    Parse(String),
}

/// The DNS datagrams of a run -> answer rows, within a bound.
pub struct DnsStage {
    config: DnsConfig,
}

impl DnsStage {
    pub fn new(config: DnsConfig) -> Self {
        DnsStage { config }
    }

    /// A datagram to or from port 53.
    pub fn wants(d: &Datagram<'_>) -> bool {
        d.src.port == DNS_PORT || d.dst.port == DNS_PORT
    }

    /// Reads one datagram of port 53: a successful response's answers go to `out` (up to
    /// the bound), a malformed response is counted; queries are skipped.
    pub fn push(&mut self, d: &Datagram<'_>, cov: &mut Coverage, out: &mut impl FnMut(DnsAnswer)) {
        let mut answers = Vec::new();
        match parse_response(d, &mut answers) {
            Ok(false) => {}
            Ok(true) => {
                cov.dns_responses += 1;
                for a in answers {
                    if cov.dns_answers >= self.config.max_answers {
                        cov.dns_answers_dropped += 1;
                    } else {
                        cov.dns_answers += 1;
                        out(a);
                    }
                }
            }
            Err(_) => cov.dns_malformed += 1,
        }
    }
}

/// Parses `d` as a DNS message. Ok(false): not a response (a query); Ok(true): a
/// response, whose A/AAAA/CNAME answers were appended to `out` when its rcode is NOERROR.
pub fn parse_response(d: &Datagram<'_>, out: &mut Vec<DnsAnswer>) -> Result<bool, DnsError> {
    let b = d.payload;
    let header = b.first_chunk::<HEADER_LEN>().ok_or(DnsError::Short)?;
    if header[2] & 0x80 == 0 {
        return Ok(false); // QR = 0: a query
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([header[i], header[i + 1]]));
    let least = count(4) * MIN_QUESTION_LEN + (count(6) + count(8) + count(10)) * MIN_RECORD_LEN;
    if HEADER_LEN + least > b.len() {
        return Err(if d.truncated {
            DnsError::Truncated
        } else {
            DnsError::Counts
        });
    }
    let packet = Packet::parse(b).map_err(|e| {
        if d.truncated {
            DnsError::Truncated
        } else {
            DnsError::Parse(e.to_string())
        }
    })?;
    if !packet.has_flags(PacketFlag::RESPONSE) || packet.rcode() != RCODE::NoError {
        return Ok(true);
    }
    let query = packet
        .questions
        .first()
        .map(|q| name_text(&q.qname))
        .unwrap_or_default();
    for rr in &packet.answers {
        if rr.class != CLASS::IN {
            continue;
        }
        let (rtype, answer) = match &rr.rdata {
            RData::A(a) => (DnsType::A, Ipv4Addr::from(a.address).to_string()),
            RData::AAAA(a) => (DnsType::Aaaa, Ipv6Addr::from(a.address).to_string()),
            RData::CNAME(c) => (DnsType::Cname, name_text(&c.0)),
            _ => continue,
        };
        out.push(DnsAnswer {
            ts: d.ts,
            resolver: d.src.ip,
            client: d.dst.ip,
            query: query.clone(),
            name: name_text(&rr.name),
            rtype,
            answer,
            ttl: rr.ttl,
        });
    }
    Ok(true)
}

/// A name as text: labels joined by dots (no trailing dot), ASCII lower-cased; bytes
/// that are not UTF-8 become U+FFFD (the Display of simple-dns).
fn name_text(name: &Name<'_>) -> String {
    let mut s = name.to_string();
    s.make_ascii_lowercase();
    s
}
