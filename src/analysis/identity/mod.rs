//! Service identity: which service each endpoint of the capture is.
//!
//! A server endpoint (IP and listening port) and a client (IP: the ephemeral port never
//! names anything) each get one name, chosen by precedence from every source that has
//! one, and the source is kept:
//!
//! 1. the services file (`--services`, or `<capture stem>.services.yaml`): a listener, a
//!    host, the longest network, then a hostname matched to DNS answers, Host and SNI;
//! 2. trace files given with the capture: the `service.name` of the spans matched to the
//!    endpoint's exchanges (see `crate::analysis::join`), the most frequent;
//! 3. the Kubernetes inventory (`--k8s`): pod workload, Service ClusterIP, Endpoints;
//! 4. DNS answers in the capture (the name the clients asked for most often);
//! 5. the HTTP Host header the server was addressed by (the most frequent);
//! 6. the TLS SNI (the most frequent);
//! 7. for a client only: the name of its own listeners, when they all agree;
//! 8. the address: `ip:port` for a server, `ip` for a client.
//!
//! When a lower source names an endpoint differently from the chosen name, the pair is a
//! [`Conflict`], listed in the report. Names agree when equal or when one is the other's
//! first DNS label (`users` and `users.internal`).

mod hostname;
pub mod k8s;
pub mod observed;
pub mod services_file;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

pub use hostname::{names_agree, normalise_hostname, service_of_hostname};
pub use k8s::{K8sError, K8sInventory};
pub use observed::{Listener, Observed, Tally};
pub use services_file::{ServicesFile, ServicesFileError};

/// Where a name came from, in precedence order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameSource {
    ServicesFile,
    /// `service.name` of the spans joined to the endpoint's exchanges.
    Traces,
    K8s,
    Dns,
    Host,
    Sni,
    /// A client named after its own listeners.
    Listener,
    Fallback,
}

impl NameSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            NameSource::ServicesFile => "services-file",
            NameSource::Traces => "traces",
            NameSource::K8s => "k8s",
            NameSource::Dns => "dns",
            NameSource::Host => "host",
            NameSource::Sni => "sni",
            NameSource::Listener => "listener",
            NameSource::Fallback => "fallback",
        }
    }
}

/// A name and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Named {
    pub name: String,
    pub source: NameSource,
}

/// Two sources disagree about one endpoint; `chosen` won by precedence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// `ip:port` of a server endpoint, or `ip` of a client.
    pub endpoint: String,
    pub role: &'static str,
    pub chosen: Named,
    pub other: Named,
}

/// The configured name sources (files given on the command line).
#[derive(Clone, Debug, Default)]
pub struct NameSources {
    pub services: Vec<ServicesFile>,
    pub k8s: Vec<K8sInventory>,
    /// Service names the joined spans give server endpoints and client addresses.
    pub traces: TraceNames,
}

/// What spans joined to exchanges say about the endpoints (see `crate::analysis::join`).
#[derive(Clone, Debug, Default)]
pub struct TraceNames {
    pub servers: BTreeMap<Listener, Tally>,
    pub clients: BTreeMap<IpAddr, Tally>,
}

/// Every endpoint's name.
#[derive(Clone, Debug, Default)]
pub struct Naming {
    pub servers: BTreeMap<Listener, Named>,
    pub clients: BTreeMap<IpAddr, Named>,
    pub conflicts: Vec<Conflict>,
}

impl Naming {
    /// The name of a server endpoint (the fallback when it was never observed).
    pub fn server(&self, ip: IpAddr, port: u16) -> Named {
        self.servers
            .get(&(ip, port))
            .cloned()
            .unwrap_or_else(|| fallback_server(ip, port))
    }

    pub fn client(&self, ip: IpAddr) -> Named {
        self.clients.get(&ip).cloned().unwrap_or_else(|| Named {
            name: ip.to_string(),
            source: NameSource::Fallback,
        })
    }

    /// Number of endpoints named by each source, for the report.
    pub fn source_counts(&self) -> BTreeMap<NameSource, u64> {
        let mut m = BTreeMap::new();
        for n in self.servers.values().chain(self.clients.values()) {
            *m.entry(n.source).or_default() += 1;
        }
        m
    }
}

fn fallback_server(ip: IpAddr, port: u16) -> Named {
    Named {
        name: std::net::SocketAddr::new(ip, port).to_string(),
        source: NameSource::Fallback,
    }
}

pub(crate) use crate::config_error::strip_location;

/// Names one source may offer for one endpoint (the rest are not listed as conflicts).
const NAMES_PER_SOURCE: usize = 5;

/// Names every endpoint `observed` saw.
pub fn resolve(sources: &NameSources, observed: &Observed) -> Naming {
    let mut naming = Naming::default();
    for &(ip, port) in &observed.servers {
        let mut candidates = address_candidates(sources, observed, ip, Some(port));
        let listener = (ip, port);
        for (tally, source) in [
            (observed.host_names.get(&listener), NameSource::Host),
            (observed.sni_names.get(&listener), NameSource::Sni),
        ] {
            // Most frequent first: it names the listener; the others are listed as
            // conflicts (a listener known under several names).
            for name in tally
                .into_iter()
                .flat_map(|t| t.names())
                .take(NAMES_PER_SOURCE)
            {
                candidates.push(Named {
                    name: service_of_hostname(name),
                    source,
                });
            }
        }
        // Hostnames in a services file also match the Host and SNI the server answered to.
        for file in &sources.services {
            let hosts = [&observed.host_names, &observed.sni_names];
            for tally in hosts.iter().filter_map(|m| m.get(&listener)) {
                for h in tally.names() {
                    for m in file.match_hostname(h) {
                        candidates.push(Named {
                            name: m.service.to_owned(),
                            source: NameSource::ServicesFile,
                        });
                    }
                }
            }
        }
        candidates.push(fallback_server(ip, port));
        let chosen = choose(
            candidates,
            &std::net::SocketAddr::new(ip, port).to_string(),
            "server",
            &mut naming.conflicts,
        );
        naming.servers.insert(listener, chosen);
    }
    for &ip in &observed.clients {
        let mut candidates = address_candidates(sources, observed, ip, None);
        let mut own: Vec<&Named> = naming
            .servers
            .range((ip, 0)..=(ip, u16::MAX))
            .map(|(_, n)| n)
            .filter(|n| n.source != NameSource::Fallback)
            .collect();
        own.dedup_by(|a, b| a.name == b.name);
        if let [only] = own.as_slice() {
            candidates.push(Named {
                name: only.name.clone(),
                source: NameSource::Listener,
            });
        }
        candidates.push(Named {
            name: ip.to_string(),
            source: NameSource::Fallback,
        });
        let chosen = choose(candidates, &ip.to_string(), "client", &mut naming.conflicts);
        naming.clients.insert(ip, chosen);
    }
    naming
}

/// Names from the sources that know addresses: the services file (addresses, then its
/// hostnames matched through DNS), the cluster inventory, then DNS answers.
fn address_candidates(
    sources: &NameSources,
    observed: &Observed,
    ip: IpAddr,
    port: Option<u16>,
) -> Vec<Named> {
    let mut out = Vec::new();
    for file in &sources.services {
        for m in file.match_address(ip, port) {
            out.push(Named {
                name: m.service.to_owned(),
                source: NameSource::ServicesFile,
            });
        }
        for h in observed.dns_all_names.get(&ip).into_iter().flatten() {
            for m in file.match_hostname(h) {
                out.push(Named {
                    name: m.service.to_owned(),
                    source: NameSource::ServicesFile,
                });
            }
        }
    }
    let traced = match port {
        Some(port) => sources.traces.servers.get(&(ip, port)),
        None => sources.traces.clients.get(&ip),
    };
    // Most frequent first: one endpoint seen under two service names is a conflict.
    for name in traced
        .into_iter()
        .flat_map(|t| t.names())
        .take(NAMES_PER_SOURCE)
    {
        out.push(Named {
            name: name.to_owned(),
            source: NameSource::Traces,
        });
    }
    for inv in &sources.k8s {
        if let Some(n) = inv.name_of(ip, port) {
            out.push(Named {
                name: n.name.clone(),
                source: NameSource::K8s,
            });
        }
    }
    let asked = observed.dns_query_names.get(&ip);
    for name in asked
        .into_iter()
        .flat_map(|t| t.names())
        .take(NAMES_PER_SOURCE)
    {
        out.push(Named {
            name: service_of_hostname(name),
            source: NameSource::Dns,
        });
    }
    out
}

/// The first candidate by precedence (stable within a source); every disagreeing other
/// candidate (except the address fallback, which always differs) becomes a conflict.
fn choose(
    mut candidates: Vec<Named>,
    endpoint: &str,
    role: &'static str,
    conflicts: &mut Vec<Conflict>,
) -> Named {
    candidates.sort_by_key(|c| c.source);
    let chosen = candidates.remove(0);
    let mut reported: Vec<&str> = Vec::new();
    for other in &candidates {
        if other.source == NameSource::Fallback
            || other.source == NameSource::Listener
            || names_agree(&other.name, &chosen.name)
            || reported.contains(&other.name.as_str())
        {
            continue;
        }
        reported.push(&other.name);
        conflicts.push(Conflict {
            endpoint: endpoint.to_owned(),
            role,
            chosen: chosen.clone(),
            other: other.clone(),
        });
    }
    chosen
}

#[cfg(test)]
mod tests;
