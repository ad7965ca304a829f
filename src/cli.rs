//! Command-line arguments (clap derive) and their validation into the typed settings of
//! each command (`app::AnalyzeConfig`, `diff::DiffConfig`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::config::{DEFAULT_ROUTES, DEFAULT_SAMPLES_PER_ROUTE, DEFAULT_TOP};
use crate::app::AnalyzeConfig;
use crate::diff::{self, DiffConfig, Format};
use crate::ingest::flow::FlowConfig;
use crate::ingest::traces;

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
    Diff(DiffArgs),
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

    /// Spans held in open traces at once (all trace files); past it the least recently
    /// extended traces are built early (counted as evicted). The chains read every trace
    /// while their calls are under 2/5 of this, else a sample of whole traces that size.
    #[arg(long, default_value_t = traces::Limits::default().max_open_spans, value_name = "SPANS")]
    pub trace_window: usize,

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

    /// Print the wall time of each stage on stderr and write it to timings.json.
    #[arg(long)]
    pub timings: bool,

    /// JSON bodies kept per route and direction to infer a protobuf schema and measure
    /// the protobuf size and CPU (a reservoir sample; more is slower and more exact).
    #[arg(long, default_value_t = DEFAULT_SAMPLES_PER_ROUTE, value_name = "N")]
    pub samples_per_route: usize,

    /// Infer no protobuf enums: low-cardinality strings stay `string`, as in a .proto
    /// that does not use enums.
    #[arg(long)]
    pub no_enums: bool,

    /// Links shown in the terminal table (all are in the reports).
    #[arg(long, default_value_t = DEFAULT_TOP, value_name = "N")]
    pub top: usize,

    /// Routes listed per link in the reports.
    #[arg(long, default_value_t = DEFAULT_ROUTES, value_name = "N")]
    pub routes: usize,

    /// Print nothing but errors and warnings.
    #[arg(long, short)]
    pub quiet: bool,
}

impl AnalyzeArgs {
    /// The run's settings: `AnalyzeConfig::for_inputs` with the flags applied.
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
        if self.trace_window == 0 {
            return Err("--trace-window must be at least 1".into());
        }
        let mut config = AnalyzeConfig::for_inputs(self.inputs);
        if let Some(out) = self.out {
            config.out = out;
        }
        config.flow = FlowConfig {
            max_connections: self.max_connections,
            idle_timeout_ns: (self.idle_timeout * 1e9) as i64,
            max_ooo_bytes_per_direction: self.max_ooo_bytes,
            max_ooo_bytes_total: self.max_ooo_total_bytes.max(self.max_ooo_bytes),
            ..config.flow
        };
        config.traces.max_open_spans = self.trace_window;
        if let Some(file) = &self.cost_config {
            config.cost.apply_file(file).map_err(|e| e.to_string())?;
        }
        for assignment in &self.set {
            config
                .cost
                .apply_assignment(assignment)
                .map_err(|e| e.to_string())?;
        }
        // The services files named, then those found beside the inputs.
        let beside = std::mem::take(&mut config.services);
        config.services = self.services;
        if !self.no_auto_services {
            for found in beside {
                if !config.services.contains(&found) {
                    config.services.push(found);
                }
            }
        }
        config.http.sampler.max_docs_per_key = self.samples_per_route;
        config.http.sampler.infer_enums = !self.no_enums;
        config.k8s = self.k8s;
        config.top = self.top;
        config.routes = self.routes;
        config.reproducible = self.reproducible;
        config.timings = self.timings;
        config.quiet = self.quiet;
        Ok(config)
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier analysis: a report folder of `linkrank analyze`, or a capture or trace
    /// file analysed on the fly.
    #[arg(value_name = "BEFORE")]
    pub before: PathBuf,
    /// The later analysis, as BEFORE.
    #[arg(value_name = "AFTER")]
    pub after: PathBuf,
    /// Exit with code 4 when a link regressed by more than PCT (p95 latency up more than
    /// PCT % with p < 0.05, or 5xx share up more than PCT percentage points).
    #[arg(long, value_name = "PCT")]
    pub fail_if_regressed: Option<f64>,
    /// Output folder for diff.md and diff.json [default: reports/diff-<before>-<after>/]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl DiffArgs {
    pub fn into_config(self) -> Result<DiffConfig, String> {
        if let Some(p) = self.fail_if_regressed {
            if !(p.is_finite() && p >= 0.0) {
                return Err(format!(
                    "--fail-if-regressed must be a non-negative number, not {p}"
                ));
            }
        }
        let out = self
            .out
            .unwrap_or_else(|| diff::default_out_dir(&self.before, &self.after));
        Ok(DiffConfig {
            before: self.before,
            after: self.after,
            fail_if_regressed: self.fail_if_regressed,
            out,
            format: self.format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_zero_idle_timeout() {
        let cli =
            Cli::try_parse_from(["linkrank", "analyze", "--idle-timeout", "0", "a.pcap"]).unwrap();
        let Command::Analyze(args) = cli.command else {
            panic!("not analyze")
        };
        assert!(args.into_config().unwrap_err().contains("--idle-timeout"));
    }

    /// `diff` analyses a capture with `AnalyzeConfig::for_inputs`: the same settings as
    /// `linkrank analyze` without flags.
    #[test]
    fn the_typed_defaults_are_the_command_lines() {
        let inputs = ["captures/prod.pcap", "fixtures/keepalive.pcap"];
        let cli = Cli::try_parse_from(["linkrank", "analyze", inputs[0], inputs[1]]).unwrap();
        let Command::Analyze(args) = cli.command else {
            panic!("not analyze")
        };
        let parsed = args.into_config().unwrap();
        let typed = AnalyzeConfig::for_inputs(inputs.iter().map(PathBuf::from).collect());
        assert_eq!(format!("{parsed:?}"), format!("{typed:?}"));
        let flagged =
            Cli::try_parse_from(["linkrank", "analyze", "--routes", "3", inputs[0]]).unwrap();
        let Command::Analyze(args) = flagged.command else {
            panic!("not analyze")
        };
        assert_ne!(
            format!("{:?}", args.into_config().unwrap()),
            format!("{typed:?}"),
            "a flag shows in the comparison"
        );
    }
}
