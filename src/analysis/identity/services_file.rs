//! The `--services` YAML file: service name -> the hosts, listeners, networks and
//! hostnames that are that service.
//!
//! ```yaml
//! services:
//!   gateway: ["10.0.1.10", "10.0.2.0/24"]      # IP or CIDR: the service's hosts
//!   auth: ["10.0.3.7:8443"]                      # IP:port: one listener
//!   orders: ["orders.shop.svc.cluster.local"]    # hostname: DNS answers, Host and SNI
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use super::hostname::normalise_hostname;

/// Why a services file could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ServicesFileError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a services file{at}: {message}")]
    Syntax {
        path: PathBuf,
        /// ` at line L column C (byte B)` when the parser knows where.
        at: String,
        message: String,
    },
    #[error("{path}: service `{service}`: `{entry}` is not an IP, CIDR, IP:port or hostname")]
    Entry {
        path: PathBuf,
        service: String,
        entry: String,
    },
}

/// One way a service is recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// One listener: only the server side of connections to this address and port.
    Listener(SocketAddr),
    Host(IpAddr),
    Network(IpNet),
    /// Lower-case, without a trailing dot or port.
    Hostname(String),
}

impl Matcher {
    /// How specific a match is: a listener beats a host, a host beats a network (longer
    /// prefixes beat shorter ones), and an address beats a hostname.
    fn specificity(&self) -> u32 {
        match self {
            Matcher::Listener(_) => 300,
            Matcher::Host(_) => 200,
            Matcher::Network(n) => 100 + u32::from(n.prefix_len()),
            Matcher::Hostname(_) => 0,
        }
    }

    pub fn parse(entry: &str) -> Option<Matcher> {
        let e = entry.trim();
        if let Ok(sa) = e.parse::<SocketAddr>() {
            return Some(Matcher::Listener(sa));
        }
        if let Ok(ip) = e.parse::<IpAddr>() {
            return Some(Matcher::Host(ip));
        }
        if e.contains('/') {
            return e.parse::<IpNet>().ok().map(|n| Matcher::Network(n.trunc()));
        }
        normalise_hostname(e).map(Matcher::Hostname)
    }
}

/// The parsed file: services in file order, each with its matchers.
#[derive(Clone, Debug, Default)]
pub struct ServicesFile {
    pub path: PathBuf,
    pub services: Vec<(String, Vec<Matcher>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// A mapping keeps the file's order of services (ties are broken by it).
    services: serde_norway::Mapping,
}

/// What the file says about one endpoint, best match first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMatch<'a> {
    pub service: &'a str,
    pub matcher: &'a Matcher,
}

impl ServicesFile {
    pub fn load(path: &Path) -> Result<ServicesFile, ServicesFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServicesFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<ServicesFile, ServicesFileError> {
        let raw: Raw = serde_norway::from_str(text).map_err(|e| {
            let (at, message) = crate::config_error::yaml_parts(&e);
            ServicesFileError::Syntax {
                path: path.to_path_buf(),
                at,
                message,
            }
        })?;
        let mut services = Vec::with_capacity(raw.services.len());
        for (key, value) in raw.services {
            let service = scalar_text(&key);
            let entries: Vec<String> = match value {
                serde_norway::Value::Sequence(items) => items.iter().map(scalar_text).collect(),
                // One entry need not be written as a list.
                other => vec![scalar_text(&other)],
            };
            let mut matchers = Vec::with_capacity(entries.len());
            for entry in entries {
                match Matcher::parse(&entry) {
                    Some(m) => matchers.push(m),
                    None => {
                        return Err(ServicesFileError::Entry {
                            path: path.to_path_buf(),
                            service,
                            entry,
                        })
                    }
                }
            }
            if service.is_empty() {
                return Err(ServicesFileError::Entry {
                    path: path.to_path_buf(),
                    service,
                    entry: "(a service needs a name)".into(),
                });
            }
            services.push((service, matchers));
        }
        Ok(ServicesFile {
            path: path.to_path_buf(),
            services,
        })
    }

    /// Services whose addresses match `ip` (and `port`, for a server endpoint), most
    /// specific first. Hostname matchers are matched by the caller against observed names.
    pub fn match_address(&self, ip: IpAddr, port: Option<u16>) -> Vec<FileMatch<'_>> {
        let mut found: Vec<FileMatch<'_>> = Vec::new();
        for (service, matchers) in &self.services {
            let best = matchers
                .iter()
                .filter(|m| match m {
                    Matcher::Listener(sa) => Some(sa.port()) == port && sa.ip() == ip,
                    Matcher::Host(h) => *h == ip,
                    Matcher::Network(n) => n.contains(&ip),
                    Matcher::Hostname(_) => false,
                })
                .max_by_key(|m| m.specificity());
            if let Some(matcher) = best {
                found.push(FileMatch { service, matcher });
            }
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.matcher.specificity()));
        found
    }

    /// Services that list `hostname` (already normalised).
    pub fn match_hostname<'a>(&'a self, hostname: &str) -> Vec<FileMatch<'a>> {
        let mut found = Vec::new();
        for (service, matchers) in &self.services {
            for m in matchers {
                if matches!(m, Matcher::Hostname(h) if h == hostname) {
                    found.push(FileMatch {
                        service,
                        matcher: m,
                    });
                }
            }
        }
        found
    }
}

/// A YAML scalar as the text it was written as (numbers and booleans too).
fn scalar_text(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Bool(b) => b.to_string(),
        serde_norway::Value::Null => String::new(),
        _ => "(a list or mapping)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn parse(text: &str) -> Result<ServicesFile, ServicesFileError> {
        ServicesFile::parse(Path::new("svc.yaml"), text)
    }

    #[test]
    fn parses_every_kind_of_entry() {
        let f = parse(
            "services:\n  gateway: [\"10.0.1.10\", \"10.0.2.0/24\"]\n  auth: [\"10.0.3.7:8443\", \"[fd00::7]:443\"]\n  orders: [\"Orders.Shop.svc.cluster.local.\"]\n",
        )
        .unwrap();
        let by_name: BTreeMap<_, _> = f.services.iter().cloned().collect();
        assert_eq!(
            by_name["gateway"],
            vec![
                Matcher::Host("10.0.1.10".parse().unwrap()),
                Matcher::Network("10.0.2.0/24".parse().unwrap())
            ]
        );
        assert_eq!(
            by_name["auth"],
            vec![
                Matcher::Listener("10.0.3.7:8443".parse().unwrap()),
                Matcher::Listener("[fd00::7]:443".parse().unwrap())
            ]
        );
        assert_eq!(
            by_name["orders"],
            vec![Matcher::Hostname("orders.shop.svc.cluster.local".into())]
        );
    }

    #[test]
    fn most_specific_address_match_comes_first() {
        let f = parse(
            "services:\n  net: [\"10.0.0.0/8\"]\n  subnet: [\"10.0.3.0/24\"]\n  host: [\"10.0.3.7\"]\n  auth: [\"10.0.3.7:8443\"]\n",
        )
        .unwrap();
        let ip: IpAddr = "10.0.3.7".parse().unwrap();
        let names = |port| {
            f.match_address(ip, port)
                .iter()
                .map(|m| m.service.to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Some(8443)), ["auth", "host", "subnet", "net"]);
        // The listener names only the server side of that port.
        assert_eq!(names(Some(80)), ["host", "subnet", "net"]);
        assert_eq!(names(None), ["host", "subnet", "net"]);
        assert!(f
            .match_address("192.0.2.1".parse().unwrap(), None)
            .is_empty());
    }

    #[test]
    fn a_bad_entry_names_the_file_service_and_entry() {
        let err = parse("services:\n  auth: [\"10.0.3.7:99999\"]\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("svc.yaml"), "{msg}");
        assert!(msg.contains("auth"), "{msg}");
        assert!(msg.contains("10.0.3.7:99999"), "{msg}");
    }

    #[test]
    fn a_syntax_error_gives_line_and_byte() {
        let err = parse("services:\n  auth: [\"10.0.3.7\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("svc.yaml: not a services file at line"),
            "{msg}"
        );
        assert!(msg.contains("(byte "), "{msg}");
        let err = parse("servicez:\n  a: []\n").unwrap_err();
        assert!(err.to_string().contains("servicez"), "{err}");
    }
}
