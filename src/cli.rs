//! Command-line arguments (clap derive) and their validation into a run configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cost::CostConstants;
use crate::decode::DecodeConfig;
use crate::flow::FlowConfig;
use crate::http::HttpConfig;
use crate::serialization::SamplerConfig;

#[derive(Debug, Parser)]
#[command(
    name = "linkrank",
    version,
    about = "Rank service-to-service HTTP links by what migrating them off HTTP/1.1 + JSON would gain, measured from packet captures and distributed traces"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse captures (pcap, pcapng, gzip-compressed or not), trace files (OTLP JSON or
    /// protobuf, Jaeger JSON, Zipkin v2 JSON) and tables written by earlier runs
    /// (exchanges.parquet, connections.parquet); write the ranked reports.
    Analyze(AnalyzeArgs),
    /// Compare two analyses (report folders, or captures analysed on the fly) link by
    /// link: latency with a significance test, bytes, handshakes, errors, protocol.
    Diff(crate::diff::DiffArgs),
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Captures, trace files and/or Parquet tables of earlier runs, told apart by their
    /// content; captures are merged in time order, spans joined to the exchanges.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Output folder [default: reports/<stem of the first input>/]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Live TCP connections tracked at once; beyond it the least recently active is evicted.
    #[arg(long, default_value_t = FlowConfig::default().max_connections, value_name = "N")]
    pub max_connections: usize,

    /// Seconds (capture time) without a packet after which a connection is closed.
    #[arg(long, default_value_t = FlowConfig::default().idle_timeout_ns as f64 / 1e9, value_name = "SECS")]
    pub idle_timeout: f64,

    /// Out-of-order bytes buffered per connection direction before a hole becomes a gap.
    #[arg(long, default_value_t = FlowConfig::default().max_ooo_bytes_per_direction, value_name = "BYTES")]
    pub max_ooo_bytes: usize,

    /// Out-of-order bytes buffered across all connections.
    #[arg(long, default_value_t = FlowConfig::default().max_ooo_bytes_total, value_name = "BYTES")]
    pub max_ooo_total_bytes: usize,

    /// Services file (YAML: service -> IPs, CIDRs, IP:port listeners, hostnames); may be
    /// repeated. `<capture stem>.services.yaml` beside a capture is read too.
    #[arg(long, value_name = "FILE")]
    pub services: Vec<PathBuf>,

    /// Do not read `<capture stem>.services.yaml` files beside the captures.
    #[arg(long)]
    pub no_auto_services: bool,

    /// Kubernetes inventory: the output of `kubectl get pods,services,endpoints -A -o json`;
    /// may be repeated.
    #[arg(long, value_name = "FILE")]
    pub k8s: Vec<PathBuf>,

    /// Cost-model constants file (YAML: `constants: {name: value}`); see docs/cost-model.md.
    #[arg(long, value_name = "FILE")]
    pub cost_config: Option<PathBuf>,

    /// Override one cost-model constant (after --cost-config); may be repeated.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,

    /// Take CPU costs from the cost-model constants instead of timing the sampled bodies,
    /// so that two runs on the same input write identical reports.
    #[arg(long)]
    pub reproducible: bool,

    /// JSON bodies kept per route and direction to infer a protobuf schema and measure
    /// the protobuf size and CPU (a reservoir sample; more is slower and more exact).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub samples_per_route: usize,

    /// Infer no protobuf enums: low-cardinality strings stay `string`, as in a .proto
    /// that does not use enums.
    #[arg(long)]
    pub no_enums: bool,

    /// Links shown in the terminal table (all are in the reports).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,

    /// Routes listed per link in the reports.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub routes: usize,

    /// Print nothing but errors and warnings.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Validated settings of one `analyze` run.
#[derive(Clone, Debug)]
pub struct AnalyzeConfig {
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub decode: DecodeConfig,
    pub flow: FlowConfig,
    pub http: HttpConfig,
    /// Services files: those given, then those found beside the captures.
    pub services: Vec<PathBuf>,
    pub k8s: Vec<PathBuf>,
    pub top: usize,
    pub routes: usize,
    /// Cost-model constants in force (defaults, then the file, then `--set`).
    pub cost: CostConstants,
    pub reproducible: bool,
    pub quiet: bool,
}

impl AnalyzeArgs {
    pub fn into_config(self) -> Result<AnalyzeConfig, String> {
        if !(self.idle_timeout.is_finite() && self.idle_timeout > 0.0) {
            return Err(format!(
                "--idle-timeout must be a positive number of seconds, not {}",
                self.idle_timeout
            ));
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        let out = self.out.unwrap_or_else(|| default_out_dir(&self.inputs[0]));
        let flow = FlowConfig {
            max_connections: self.max_connections,
            idle_timeout_ns: (self.idle_timeout * 1e9) as i64,
            max_ooo_bytes_per_direction: self.max_ooo_bytes,
            max_ooo_bytes_total: self.max_ooo_total_bytes.max(self.max_ooo_bytes),
            ..FlowConfig::default()
        };
        let mut cost = CostConstants::default();
        if let Some(file) = &self.cost_config {
            cost.apply_file(file).map_err(|e| e.to_string())?;
        }
        for assignment in &self.set {
            cost.apply_assignment(assignment)
                .map_err(|e| e.to_string())?;
        }
        let mut services = self.services;
        if !self.no_auto_services {
            for found in self.inputs.iter().filter_map(|i| services_beside(i)) {
                if !services.contains(&found) {
                    services.push(found);
                }
            }
        }
        Ok(AnalyzeConfig {
            inputs: self.inputs,
            out,
            decode: DecodeConfig::default(),
            flow,
            http: HttpConfig {
                sampler: SamplerConfig {
                    max_docs_per_key: self.samples_per_route,
                    infer_enums: !self.no_enums,
                    ..SamplerConfig::default()
                },
                ..HttpConfig::default()
            },
            services,
            k8s: self.k8s,
            top: self.top,
            routes: self.routes,
            cost,
            reproducible: self.reproducible,
            quiet: self.quiet,
        })
    }
}

/// `<dir>/<stem>.services.yaml` beside a capture, when that file exists.
pub fn services_beside(input: &std::path::Path) -> Option<PathBuf> {
    let name = input.file_name()?.to_string_lossy().into_owned();
    let stem = name.split('.').next().filter(|s| !s.is_empty())?;
    let candidate = input.with_file_name(format!("{stem}.services.yaml"));
    candidate.is_file().then_some(candidate)
}

/// `reports/<stem>/`, where the stem drops every extension (`prod.pcap.gz` -> `prod`).
pub fn default_out_dir(first_input: &std::path::Path) -> PathBuf {
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
    use std::path::Path;

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

    #[test]
    fn rejects_a_zero_idle_timeout() {
        let cli =
            Cli::try_parse_from(["linkrank", "analyze", "--idle-timeout", "0", "a.pcap"]).unwrap();
        let Command::Analyze(args) = cli.command else {
            panic!("not analyze")
        };
        assert!(args.into_config().unwrap_err().contains("--idle-timeout"));
    }
}
