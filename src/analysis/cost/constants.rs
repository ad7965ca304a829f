//! The cost model's constants: each declared once with its default, its published range
//! and its source; overridable from a config file (`--cost-config`) or `--set NAME=VALUE`.
//! `docs/cost-model.md` lists them (a test keeps the two in step).

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Why an override was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConstantsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a cost-model file{at}: {message}")]
    Syntax {
        path: PathBuf,
        at: String,
        message: String,
    },
    #[error("{origin}: unknown cost-model constant `{name}` (known: {known})")]
    Unknown {
        origin: String,
        name: String,
        known: String,
    },
    #[error("{origin}: `{name}` must be a finite number >= 0, not `{value}`")]
    Value {
        origin: String,
        name: String,
        value: String,
    },
}

/// One constant, for documentation and validation.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Definition {
    pub name: &'static str,
    pub default: f64,
    /// The published range; the first score and the pessimistic figures take the end
    /// that saves least.
    pub low: f64,
    pub high: f64,
    pub unit: &'static str,
    pub meaning: &'static str,
    pub source: &'static str,
}

macro_rules! constants {
    ($( $field:ident = $default:expr, [$low:expr, $high:expr], $unit:expr, $meaning:expr, $source:expr; )*) => {
        /// The values in force for one run.
        #[derive(Clone, Copy, Debug, PartialEq, Serialize)]
        pub struct CostConstants {
            $( pub $field: f64, )*
        }

        impl Default for CostConstants {
            fn default() -> Self {
                CostConstants { $( $field: $default, )* }
            }
        }

        /// Every constant, in the order `docs/cost-model.md` lists them.
        pub const DEFINITIONS: &[Definition] = &[
            $( Definition {
                name: stringify!($field),
                default: $default,
                low: $low,
                high: $high,
                unit: $unit,
                meaning: $meaning,
                source: $source,
            }, )*
        ];

        impl CostConstants {
    /// Every savings constant the user left at its default moved to the end of its
    /// published range that saves least (cost model §2.7, S(low)). Which end that is
    /// depends on the formula a constant enters, so it is found by evaluating `gain`
    /// (the fleet's time, bytes and CPU saved) at both ends, one constant at a time.
    pub fn pessimistic_by(&self, mut gain: impl FnMut(&CostConstants) -> [f64; 3]) -> CostConstants {
        let mut k = *self;
        let base = gain(&k);
        // Each dimension relative to the values in force, so bytes do not outweigh ms.
        let weigh = |g: [f64; 3]| -> f64 {
            g.iter()
                .zip(base)
                .map(|(x, b)| if b.abs() > 0.0 { x / b.abs() } else { 0.0 })
                .sum()
        };
        for d in DEFINITIONS {
            let user_set = k.get(d.name).is_some_and(|v| v != d.default);
            if d.low >= d.high || user_set || THRESHOLDS.contains(&d.name) {
                continue;
            }
            let mut at = |v: f64| {
                let mut t = k;
                if let Some(slot) = t.slot(d.name) {
                    *slot = v;
                }
                (weigh(gain(&t)), t)
            };
            let (lo, klo) = at(d.low);
            let (hi, khi) = at(d.high);
            // A constant the savings do not depend on stays as it is.
            if lo < hi {
                k = klo;
            } else if hi < lo {
                k = khi;
            }
        }
        k
    }

            fn slot(&mut self, name: &str) -> Option<&mut f64> {
                match name {
                    $( stringify!($field) => Some(&mut self.$field), )*
                    _ => None,
                }
            }
        }
    };
}

constants! {
    tls12_full_extra_rtts = 2.0, [2.0, 2.0], "RTT",
        "round trips a full TLS 1.2 handshake adds to TCP's",
        "RFC 5246";
    tls12_resumed_extra_rtts = 1.0, [1.0, 1.0], "RTT",
        "round trips an abbreviated (resumed) TLS 1.2 handshake adds",
        "RFC 5246";
    tls13_extra_rtts = 1.0, [1.0, 1.0], "RTT",
        "round trips a TLS 1.3 handshake adds (full or PSK; 0-RTT not assumed)",
        "RFC 8446 §2";
    tls_unknown_extra_rtts = 1.0, [1.0, 2.0], "RTT",
        "round trips assumed when the TLS version was not seen (the pessimistic end)",
        "RFC 8446 §2, RFC 5246";
    tls_server_crypto_ms = 0.14, [0.14, 1.06], "ms",
        "server CPU per full handshake (ECDSA P-256 sign 0.14 ms .. RSA-2048 sign 1.06 ms, plus ECDHE)",
        "openssl speed, cost-model.md §5";
    tls_client_crypto_ms = 0.15, [0.15, 0.35], "ms",
        "client CPU per full handshake",
        "cost-model.md §2.1; jbp.io/2019/07/02/rustls-vs-openssl-handshake-performance.html";
    tls_resumed_crypto_ms = 0.12, [0.03, 0.2], "ms",
        "CPU per resumed handshake, both ends (4.9-8.2k/s TLS 1.3, 20-30k/s TLS 1.2 per core)",
        "jbp.io/2019/07/02/rustls-vs-openssl-handshake-performance.html";
    pooled_channels_per_pair = 1.0, [1.0, 1.0], "channels",
        "HTTP/2 channels a pooled client keeps per (client address, server listener)",
        "RFC 9113 (>= 100 concurrent streams per connection)";
    hpack_cold_ratio = 0.75, [0.4, 0.8], "ratio",
        "HTTP/2 / HTTP/1.1 header bytes when no header replay exists (cold connection)",
        "cost-model.md §2.2; RFC 7541";
    grpc_framing_bytes = 60.0, [60.0, 60.0], "B/call",
        "gRPC framing per unary call when no header replay exists (5 frames x 9 B + 2 x 5 B + ~1 B trailer)",
        "grpc PROTOCOL-HTTP2.md; RFC 9113";
    protobuf_size_ratio = 0.45, [0.2, 0.45], "ratio",
        "protobuf / JSON bytes for routes without samples",
        "djkoloski/rust_serialization_benchmark (0.20-0.42); cost-model.md §2.3";
    json_serialize_ns_per_byte = 2.4, [2.4, 3.9], "ns/B",
        "serde_json serialize cost (the sender's side; parsing is measured per run)",
        "djkoloski/rust_serialization_benchmark";
    json_parse_ns_per_byte = 3.3, [3.3, 6.1], "ns/B",
        "serde_json parse cost for routes without samples",
        "djkoloski/rust_serialization_benchmark";
    protobuf_speedup = 2.0, [2.0, 8.6], "x",
        "protobuf encode/decode speed-up over JSON for routes without samples (k)",
        "djkoloski/rust_serialization_benchmark; cost-model.md §2.4";
    external_effort = 5.0, [5.0, 5.0], "effort",
        "effort added when the caller is outside the captured system (browser, partner, load generator)",
        "cost-model.md §2.7";
    protobuf_encode_over_decode = 1.0, [0.5, 1.0], "ratio",
        "protobuf encode time / decode time (the sender's side, from the measured decode)",
        "djkoloski/rust_serialization_benchmark (encode 3.4-8.6x, decode 2.0-5.1x faster than JSON)";
    gzip_ns_per_byte = 25.0, [15.0, 50.0], "ns/B",
        "CPU to gzip (level 6) one byte and gunzip it, both ends together (compress 20-60 MB/s, decompress 300+ MB/s per core)",
        "lzbench zlib level 6; cost-model.md §6 (Cheaper fix)";
    min_gain_share = 0.02, [0.01, 0.05], "share",
        "below this share of the fleet's projected gain a link keeps HTTP (rule 1: lambda x S small)",
        "cost-model.md §3 rule 1";
    fire_and_forget_share = 0.8, [0.8, 0.8], "share",
        "share of a link's calls nobody waits for (answered after the parent, or 202/204) that makes it a broker link",
        "cost-model.md §3 rule 2a";
    same_payload_share = 0.5, [0.5, 0.5], "share",
        "share of a link's calls whose payload its caller also sent to another service for the same request, that makes it a broker (pub/sub) link",
        "cost-model.md §3 rule 2b";
    burst_ratio = 3.0, [3.0, 3.0], "x",
        "peak / mean request rate that, with 429 or 503 answers, makes a link a broker link",
        "cost-model.md §3 rule 2c";
    broker_publish_ms = 0.1, [0.1, 5.0], "ms",
        "caller's wait to publish a message (NATS core 0.1 ms .. Kafka/RabbitMQ p99 a few ms)",
        "cost-model.md §2.5";
    transient_error_share = 0.005, [0.005, 0.005], "share",
        "share of 5xx, 429 and unanswered requests from which a mesh's retries and outlier detection pay",
        "cost-model.md §3 rule 3";
    mesh_proxy_cores_per_krps = 0.2, [0.06, 0.5], "cores",
        "CPU of one sidecar proxy per 1000 requests/s (ztunnel 0.06 .. sidecar 0.5); a hop has two",
        "cost-model.md §2.6";
    mesh_retries = 2.0, [1.0, 3.0], "retries",
        "retries a mesh policy makes on a transient failure (r)",
        "cost-model.md §2.6";
    grpc_min_byte_share = 0.3, [0.3, 0.3], "share",
        "bytes gRPC saves over today's header + body bytes from which a synchronous link moves to gRPC",
        "cost-model.md §3 rule 4";
    cheaper_fix_share = 0.8, [0.8, 0.8], "share",
        "share of a link's gain one cheap mechanism (keep-alive, pooling, HTTP/2, gzip) must capture to be recommended instead",
        "cost-model.md §3";
    evidence_min_seconds = 10.0, [10.0, 10.0], "s",
        "capture span below which no change is advised: rates cannot be extrapolated from it",
        "judgement, cost-model.md §6 (Evidence)";
    evidence_min_requests = 30.0, [30.0, 30.0], "requests",
        "requests (connections where requests are not visible) below which no change is advised for a link",
        "judgement, cost-model.md §6 (Evidence)";
    floor_cores = 0.05, [0.05, 0.05], "cores",
        "CPU a change must save to be recommended (or pass another floor): below the 50-100 millicore steps containers are sized in",
        "judgement, cost-model.md §6 (Floors); Kubernetes CPU requests";
    floor_mbit_per_s = 1.0, [1.0, 1.0], "Mbit/s",
        "bandwidth a change must save to be recommended (or pass another floor): 0.1% of a 1 Gbit/s link",
        "judgement, cost-model.md §6 (Floors)";
    floor_ms_per_request = 1.0, [1.0, 1.0], "ms",
        "waiting a change must remove per request on the critical path to be recommended (or pass another floor): above the 0.1-0.5 ms of one data-centre round trip",
        "judgement, cost-model.md §6 (Floors)";
}

/// Decision thresholds: they say when a rule applies, not how much a link saves, so the
/// pessimistic ranking leaves them where they are.
pub const THRESHOLDS: &[&str] = &[
    "external_effort",
    "min_gain_share",
    "fire_and_forget_share",
    "same_payload_share",
    "burst_ratio",
    "transient_error_share",
    "grpc_min_byte_share",
    "cheaper_fix_share",
    "evidence_min_seconds",
    "evidence_min_requests",
    "floor_cores",
    "floor_mbit_per_s",
    "floor_ms_per_request",
];

impl CostConstants {
    /// Applies `name = value`, naming `origin` (a file or `--set`) in errors.
    pub fn set(&mut self, origin: &str, name: &str, value: &str) -> Result<(), ConstantsError> {
        let parsed = value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0);
        let Some(v) = parsed else {
            return Err(ConstantsError::Value {
                origin: origin.into(),
                name: name.into(),
                value: value.into(),
            });
        };
        match self.slot(name.trim()) {
            Some(slot) => {
                *slot = v;
                Ok(())
            }
            None => Err(ConstantsError::Unknown {
                origin: origin.into(),
                name: name.into(),
                known: DEFINITIONS
                    .iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Applies a YAML file `constants: {name: value, ...}`.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConstantsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConstantsError::Read {
            path: path.into(),
            source,
        })?;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            constants: serde_norway::Mapping,
        }
        let file: File = serde_norway::from_str(&text).map_err(|e| {
            let (at, message) = crate::config_error::yaml_parts(&e);
            ConstantsError::Syntax {
                path: path.into(),
                at,
                message,
            }
        })?;
        let origin = path.display().to_string();
        for (k, v) in file.constants {
            let name = k.as_str().unwrap_or("").to_owned();
            let value = match v {
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::String(s) => s,
                other => format!("{other:?}"),
            };
            self.set(&origin, &name, &value)?;
        }
        Ok(())
    }

    /// Applies `NAME=VALUE` from the command line.
    pub fn apply_assignment(&mut self, assignment: &str) -> Result<(), ConstantsError> {
        let (name, value) = assignment.split_once('=').unwrap_or((assignment, ""));
        self.set("--set", name, value)
    }

    /// The value of a constant by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        let mut copy = *self;
        copy.slot(name).map(|v| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_lie_in_their_published_ranges() {
        let c = CostConstants::default();
        for d in DEFINITIONS {
            assert!(d.low <= d.default && d.default <= d.high, "{}", d.name);
            assert_eq!(c.get(d.name), Some(d.default), "{}", d.name);
        }
    }

    #[test]
    fn overrides_from_the_command_line_and_a_file() {
        let mut c = CostConstants::default();
        c.apply_assignment("tls_server_crypto_ms=1.06").unwrap();
        assert_eq!(c.tls_server_crypto_ms, 1.06);
        let err = c
            .apply_assignment("tls_server_crypto=1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown cost-model constant `tls_server_crypto`"),
            "{err}"
        );
        assert!(err.contains("tls_server_crypto_ms"), "{err}");
        let err = c
            .apply_assignment("hpack_cold_ratio=-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a finite number >= 0"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cost.yaml");
        std::fs::write(
            &f,
            "constants:\n  protobuf_speedup: 4\n  hpack_cold_ratio: 0.5\n",
        )
        .unwrap();
        c.apply_file(&f).unwrap();
        assert_eq!((c.protobuf_speedup, c.hpack_cold_ratio), (4.0, 0.5));
        std::fs::write(&f, "constants:\n  nope: 4\n").unwrap();
        let err = c.apply_file(&f).unwrap_err().to_string();
        assert!(err.starts_with(&f.display().to_string()), "{err}");
        std::fs::write(&f, "constants: [\n").unwrap();
        let err = c.apply_file(&f).unwrap_err().to_string();
        assert!(err.contains("at line"), "{err}");
    }
}

#[cfg(test)]
mod pessimistic_tests {
    use super::*;

    #[test]
    fn each_constant_goes_to_the_end_that_saves_least_unless_the_user_set_it() {
        // Header bytes saved fall as the HPACK ratio rises; crypto saved rises with the
        // resumed-handshake cost; CPU saved rises with the protobuf speed-up.
        let gain = |k: &CostConstants| {
            [
                k.protobuf_speedup * 10.0,
                1000.0 * (1.0 - k.hpack_cold_ratio),
                k.tls_resumed_crypto_ms + k.tls_server_crypto_ms,
            ]
        };
        // Set by the user: stays.
        let k = CostConstants {
            tls_server_crypto_ms: 0.5,
            ..Default::default()
        };
        let low = k.pessimistic_by(gain);
        assert_eq!(low.hpack_cold_ratio, 0.8); // default 0.75: the high end saves least
        assert_eq!(low.tls_resumed_crypto_ms, 0.03); // default 0.12: the low end
        assert_eq!(low.protobuf_speedup, 2.0);
        assert_eq!(low.tls_server_crypto_ms, 0.5);
        // Constants the gain ignores, and thresholds, do not move.
        assert_eq!(low.json_parse_ns_per_byte, k.json_parse_ns_per_byte);
        assert_eq!(low.min_gain_share, k.min_gain_share);
    }
}

#[cfg(test)]
mod doc_tests {
    use super::DEFINITIONS;

    /// docs/cost-model.md lists every constant with its default, in order.
    #[test]
    fn the_document_lists_every_constant_and_its_default() {
        let doc = include_str!("../../../docs/cost-model.md");
        let rows: Vec<(String, f64)> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (
                    cells[1].trim_matches('`').to_owned(),
                    cells[2].parse().unwrap(),
                )
            })
            .collect();
        let defs: Vec<(String, f64)> = DEFINITIONS
            .iter()
            .map(|d| (d.name.to_owned(), d.default))
            .collect();
        assert_eq!(rows, defs);
    }
}
