//! Names the traffic itself carries, gathered from the tables: DNS answers (address ->
//! the names that resolved to it), Host headers and TLS SNI (server endpoint -> names).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use polars::prelude::*;

use super::hostname::normalise_hostname;
use crate::tables::columns;

/// A server endpoint: the listener's address and port.
pub type Listener = (IpAddr, u16);

/// Names with how often each was seen, most frequent first (ties by name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally(Vec<(String, u64)>);

impl Tally {
    pub fn from_counts(counts: BTreeMap<String, u64>) -> Tally {
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Tally(v)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }
    /// Adds `count` sightings of `name`, keeping the order.
    pub fn with(mut self, name: &str, count: u64) -> Tally {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += count,
            None => self.0.push((name.to_owned(), count)),
        }
        self.0
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self
    }
}

/// Everything the capture says about names, and which endpoints it saw.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub servers: BTreeSet<Listener>,
    pub clients: BTreeSet<IpAddr>,
    /// Per address: the names clients asked for that resolved to it (the query name),
    /// most asked first.
    pub dns_query_names: HashMap<IpAddr, Tally>,
    /// Per address: every name on the way to it (query, CNAME targets, owner names), for
    /// matching the hostnames of a services file.
    pub dns_all_names: HashMap<IpAddr, BTreeSet<String>>,
    pub host_names: HashMap<Listener, Tally>,
    pub sni_names: HashMap<Listener, Tally>,
}

impl Observed {
    /// Reads the tables; a column absent from older tables (`tls_sni`, the `dns` table)
    /// simply contributes nothing.
    pub fn from_tables(
        exchanges: &DataFrame,
        connections: &DataFrame,
        dns: Option<&DataFrame>,
    ) -> PolarsResult<Observed> {
        let mut obs = Observed::default();
        for df in [connections, exchanges] {
            let cip = df.column(columns::CLIENT_IP)?.str()?;
            let sip = df.column(columns::SERVER_IP)?.str()?;
            let sport = df.column(columns::SERVER_PORT)?.u32()?;
            for ((c, s), p) in cip.iter().zip(sip.iter()).zip(sport.iter()) {
                if let Some(c) = c.and_then(|c| c.parse::<IpAddr>().ok()) {
                    obs.clients.insert(c);
                }
                if let (Some(s), Some(p)) = (s.and_then(|s| s.parse::<IpAddr>().ok()), p) {
                    obs.servers.insert((s, p as u16));
                }
            }
        }
        obs.host_names = per_listener(exchanges, columns::HOST)?;
        if connections
            .get_column_names()
            .iter()
            .any(|c| c.as_str() == columns::TLS_SNI)
        {
            obs.sni_names = per_listener(connections, columns::TLS_SNI)?;
        }
        if let Some(dns) = dns {
            obs.read_dns(dns)?;
        }
        Ok(obs)
    }

    fn read_dns(&mut self, dns: &DataFrame) -> PolarsResult<()> {
        let query = dns.column(columns::QUERY)?.str()?;
        let name = dns.column(columns::NAME)?.str()?;
        let kind = dns.column(columns::TYPE)?.str()?;
        let answer = dns.column(columns::ANSWER)?.str()?;
        // Every name met while resolving each query (the CNAME chain).
        let mut chain: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut resolved: Vec<(String, IpAddr)> = Vec::new();
        for i in 0..dns.height() {
            let (Some(q), Some(n), Some(k), Some(a)) =
                (query.get(i), name.get(i), kind.get(i), answer.get(i))
            else {
                continue;
            };
            let Some(q) = normalise_hostname(q) else {
                continue;
            };
            let names = chain.entry(q.clone()).or_default();
            names.insert(q.clone());
            names.extend(normalise_hostname(n));
            match k {
                "CNAME" => {
                    names.extend(normalise_hostname(a));
                }
                "A" | "AAAA" => {
                    if let Ok(ip) = a.parse::<IpAddr>() {
                        resolved.push((q, ip));
                    }
                }
                _ => {}
            }
        }
        let mut counts: HashMap<IpAddr, BTreeMap<String, u64>> = HashMap::new();
        for (q, ip) in resolved {
            *counts.entry(ip).or_default().entry(q.clone()).or_default() += 1;
            if let Some(names) = chain.get(&q) {
                self.dns_all_names
                    .entry(ip)
                    .or_default()
                    .extend(names.iter().cloned());
            }
        }
        self.dns_query_names = counts
            .into_iter()
            .map(|(ip, c)| (ip, Tally::from_counts(c)))
            .collect();
        Ok(())
    }
}

/// Normalised hostnames in `column`, counted per server endpoint.
fn per_listener(df: &DataFrame, column: &str) -> PolarsResult<HashMap<Listener, Tally>> {
    let sip = df.column(columns::SERVER_IP)?.str()?;
    let sport = df.column(columns::SERVER_PORT)?.u32()?;
    let values = df.column(column)?.str()?;
    let mut counts: HashMap<Listener, BTreeMap<String, u64>> = HashMap::new();
    for ((s, p), v) in sip.iter().zip(sport.iter()).zip(values.iter()) {
        let (Some(s), Some(p), Some(v)) = (s, p, v) else {
            continue;
        };
        let (Ok(ip), Some(h)) = (s.parse::<IpAddr>(), normalise_hostname(v)) else {
            continue;
        };
        *counts
            .entry((ip, p as u16))
            .or_default()
            .entry(h)
            .or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(|(k, c)| (k, Tally::from_counts(c)))
        .collect())
}
