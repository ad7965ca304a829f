//! The validated settings of one `analyze` run, and the defaults the command line and
//! `diff` (which analyses captures on the fly) share.

use std::path::{Path, PathBuf};

use crate::analysis::cost::CostConstants;
use crate::ingest::capture::live::LiveConfig;
use crate::ingest::decode::DecodeConfig;
use crate::ingest::flow::FlowConfig;
use crate::ingest::http::HttpConfig;
use crate::ingest::serialization::SamplerConfig;

/// JSON bodies kept per route and direction for the protobuf schema and measures.
pub const DEFAULT_SAMPLES_PER_ROUTE: usize = 32;
/// Links shown in the terminal table.
pub const DEFAULT_TOP: usize = 10;
/// `fleet --tolerance` by default, ms.
pub const DEFAULT_FLEET_TOLERANCE_MS: f64 = 50.0;
/// Routes listed per link in the reports.
pub const DEFAULT_ROUTES: usize = 10;

/// Validated settings of one `analyze` run.
#[derive(Clone, Debug)]
pub struct AnalyzeConfig {
    pub inputs: Vec<PathBuf>,
    /// Capture from network interfaces (`--interface`) instead of reading capture files.
    pub live: Option<LiveConfig>,
    pub out: PathBuf,
    pub decode: DecodeConfig,
    pub flow: FlowConfig,
    pub http: HttpConfig,
    /// Bounds of the trace readers and assembler (`--trace-window`).
    pub traces: crate::ingest::traces::Limits,
    /// Services files: those given, then those found beside the captures.
    pub services: Vec<PathBuf>,
    pub k8s: Vec<PathBuf>,
    pub top: usize,
    pub routes: usize,
    /// Cost-model constants in force (defaults, then the file, then `--set`).
    pub cost: CostConstants,
    pub reproducible: bool,
    /// Print the time of each stage and write it to `timings.json`.
    pub timings: bool,
    /// Threads for the flow and protocol stages (see `PipelineConfig::threads`).
    pub threads: usize,
    /// Also write the .proto of the HTTP links the plan keeps (`--kit-all`).
    pub kit_all: bool,
    pub quiet: bool,
    /// TLS key log files (NSS format) to decrypt TLS connections with.
    pub keylog: Vec<PathBuf>,
    /// Export the links as OpenTelemetry metrics (and the run as spans) to this OTLP/HTTP
    /// base URL (feature `otel`).
    pub otlp_endpoint: Option<String>,
    /// Receive traces over OTLP on this address (feature `otel`).
    pub otlp_listen: Option<OtlpListen>,
    /// Also write the node's slice of a fleet (`--fleet-out`, docs/fleet.md).
    pub fleet_out: Option<crate::fleet::slice::SliceConfig>,
}

/// Spans the OTLP receiver queues by default: at about 1 KiB a decoded span (with its
/// attributes), some 64 MiB.
pub const DEFAULT_QUEUE_SPANS: u64 = 65_536;

/// The OTLP receiver's settings (`--otlp-listen`).
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpListen {
    pub addr: std::net::SocketAddr,
    /// Bound of the queue between the receiver and the analysis, spans.
    pub queue_spans: u64,
    /// Without a live capture: stop receiving after this long (else at a signal).
    pub duration: Option<std::time::Duration>,
}

/// One thread per core, as the system reports them (1 when it cannot tell).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl AnalyzeConfig {
    /// `linkrank analyze INPUTS...` with every default: the output folder named after the
    /// first input, and the services files found beside the inputs.
    pub fn for_inputs(inputs: Vec<PathBuf>) -> AnalyzeConfig {
        let out = inputs
            .first()
            .map_or_else(|| default_out_dir(Path::new("run")), |p| default_out_dir(p));
        let mut services: Vec<PathBuf> = Vec::new();
        for found in inputs.iter().filter_map(|i| services_beside(i)) {
            if !services.contains(&found) {
                services.push(found);
            }
        }
        AnalyzeConfig {
            inputs,
            live: None,
            out,
            decode: DecodeConfig::default(),
            flow: FlowConfig::default(),
            traces: Default::default(),
            http: HttpConfig {
                sampler: SamplerConfig {
                    max_docs_per_key: DEFAULT_SAMPLES_PER_ROUTE,
                    ..SamplerConfig::default()
                },
                ..HttpConfig::default()
            },
            services,
            k8s: Vec::new(),
            top: DEFAULT_TOP,
            routes: DEFAULT_ROUTES,
            cost: CostConstants::default(),
            reproducible: false,
            timings: false,
            threads: default_threads(),
            kit_all: false,
            quiet: false,
            keylog: Vec::new(),
            otlp_endpoint: None,
            otlp_listen: None,
            fleet_out: None,
        }
    }
}

/// Validated settings of one `watch` run; `analyze.live` holds the capture's.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    pub analyze: AnalyzeConfig,
    pub window: std::time::Duration,
    /// Windows whose reports are kept.
    pub history: usize,
}

/// Windows of `watch` by default, seconds.
pub const DEFAULT_WINDOW_SECS: f64 = 60.0;
/// Windows whose reports `watch` keeps by default.
pub const DEFAULT_HISTORY: usize = 10;

/// `<dir>/<stem>.services.yaml` beside a capture, when that file exists.
pub fn services_beside(input: &Path) -> Option<PathBuf> {
    let name = input.file_name()?.to_string_lossy().into_owned();
    let stem = name.split('.').next().filter(|s| !s.is_empty())?;
    let candidate = input.with_file_name(format!("{stem}.services.yaml"));
    candidate.is_file().then_some(candidate)
}

/// `reports/<stem>/`, where the stem drops every extension (`prod.pcap.gz` -> `prod`).
pub fn default_out_dir(first_input: &Path) -> PathBuf {
    let name = first_input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("run");
    PathBuf::from("reports").join(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_out_dir_drops_every_extension() {
        assert_eq!(
            default_out_dir(Path::new("captures/prod.pcap.gz")),
            PathBuf::from("reports/prod")
        );
        assert_eq!(
            default_out_dir(Path::new("/x/node-a.pcapng")),
            PathBuf::from("reports/node-a")
        );
    }
}
