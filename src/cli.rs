//! Command-line arguments (clap derive) and their validation into the typed settings of
//! each command (`app::AnalyzeConfig`, `diff::DiffConfig`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::config::{
    OtlpListen, DEFAULT_HISTORY, DEFAULT_QUEUE_SPANS, DEFAULT_ROUTES, DEFAULT_SAMPLES_PER_ROUTE,
    DEFAULT_TOP, DEFAULT_WINDOW_SECS,
};
use crate::app::{AnalyzeConfig, WatchConfig};
use crate::diff::{self, DiffConfig, Format};
use crate::ingest::capture::live::{LiveConfig, DEFAULT_SNAPLEN, DEFAULT_WRITE_MAX_BYTES};
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

// Parsed once per run: the size of the larger variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse captures (pcap, pcapng, gzip-compressed or not), trace files (OTLP JSON or
    /// protobuf, Jaeger JSON, Zipkin v2 JSON) and tables written by earlier runs
    /// (exchanges.parquet, connections.parquet); write the ranked reports.
    Analyze(AnalyzeArgs),
    /// Compare two analyses (report folders, or captures analysed on the fly) link by
    /// link: latency with a significance test, bytes, handshakes, errors, protocol.
    Diff(DiffArgs),
    /// Capture live from network interfaces without end, in windows: every window's
    /// reports are written into DIR/windows/NNNNNN/ (atomically) and DIR/links.json is
    /// the latest window's. Needs a build with the `live` feature and CAP_NET_RAW.
    Watch(WatchArgs),
    /// Fold the slices that `analyze --fleet-out` wrote on every node of a fleet with
    /// DataFusion (embedded, or on a Ballista cluster) and rank the fleet's links as
    /// `analyze` does (docs/fleet.md). Needs a build with the `fleet` feature.
    Fleet(FleetArgs),
    /// A Ballista scheduler for `fleet --engine df://HOST:PORT` (feature `fleet`).
    #[command(hide = true)]
    FleetScheduler(SchedulerArgs),
    /// A Ballista executor serving a `fleet-scheduler` (feature `fleet`).
    #[command(hide = true)]
    FleetExecutor(ExecutorArgs),
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Fleet folders: each holds the `table=...` folders `analyze --fleet-out` writes.
    #[arg(required = true, value_name = "DIR")]
    pub inputs: Vec<PathBuf>,

    /// Where the query runs: `local` (DataFusion in this process) or a Ballista
    /// scheduler, `df://HOST:PORT`.
    #[arg(long, default_value = "local", value_name = "ENGINE")]
    pub engine: String,

    /// Output folder of the reports. Default: reports/fleet.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Two nodes' views of one exchange match when their times are this close (clock
    /// skew plus network), ms.
    #[arg(long, default_value_t = crate::app::config::DEFAULT_FLEET_TOLERANCE_MS, value_name = "MS")]
    pub tolerance: f64,

    /// A node that should have sent a slice; may be repeated. Missing ones are listed
    /// and the result is flagged partial.
    #[arg(long = "expect-node", value_name = "NAME")]
    pub expect_nodes: Vec<String>,

    /// Partitions each stage of the plan is split into (DataFusion's
    /// `target_partitions`). Default: the cores here, or Ballista's 16 on a cluster;
    /// each partition of each stage is one task, so a small fleet runs faster with few.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub partitions: Option<u32>,

    /// Where the fleet writes the folded views it reads many times (Parquet, deleted
    /// when done). Default: the system's temporary folder. On a cluster it must be
    /// storage that every executor and this machine reach, as the slices are.
    #[arg(long, value_name = "DIR")]
    pub stage: Option<PathBuf>,

    /// Cost-model constants file (YAML), as for `analyze`.
    #[arg(long, value_name = "FILE")]
    pub cost_config: Option<PathBuf>,

    /// Routes listed per link in the reports, as for `analyze`.
    #[arg(long, default_value_t = DEFAULT_ROUTES, value_name = "N")]
    pub routes: usize,

    /// Print nothing but errors and warnings.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 50050)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Arrow Flight port (shuffle data).
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// gRPC port (tasks).
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,
    /// The scheduler, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:50050")]
    pub scheduler: String,
    /// Tasks run at once.
    #[arg(long, default_value_t = 1)]
    pub slots: usize,
    /// Folder for shuffle files.
    #[arg(long)]
    pub work_dir: Option<String>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Captures, trace files and/or Parquet tables of earlier runs, told apart by their
    /// content; captures are merged in time order, spans joined to the exchanges.
    #[arg(required_unless_present_any = ["interface", "otlp_listen"], value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Capture live from this network interface (libpcap; needs CAP_NET_RAW and a build
    /// with the `live` feature); may be repeated. Ends on Ctrl-C or SIGTERM, after
    /// --duration or after --packets, then writes the reports.
    #[arg(long, value_name = "IF")]
    pub interface: Vec<String>,

    /// Live capture, or the OTLP receiver without one: stop after this many seconds.
    #[arg(long, value_name = "SECS", conflicts_with = "packets")]
    pub duration: Option<f64>,

    /// Live capture: stop after this many packets.
    #[arg(long, value_name = "N", requires = "interface")]
    pub packets: Option<u64>,

    /// Live capture: a libpcap filter expression (as tcpdump takes), on every interface.
    #[arg(long, value_name = "FILTER", requires = "interface")]
    pub bpf: Option<String>,

    /// Live capture: bytes kept of each packet.
    #[arg(long, default_value_t = DEFAULT_SNAPLEN, value_name = "N", requires = "interface")]
    pub snaplen: u32,

    /// Live capture: also write the packets analysed to this pcapng file.
    #[arg(long, value_name = "FILE.pcapng", requires = "interface")]
    pub write: Option<PathBuf>,

    /// Size bound of the --write file; packets beyond it are not written (counted).
    #[arg(long, default_value_t = DEFAULT_WRITE_MAX_BYTES, value_name = "BYTES", requires = "write")]
    pub write_max_bytes: u64,

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

    /// Threads that read connections (besides the one reading the files); the reports
    /// are the same whatever the number. Default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,

    /// JSON bodies kept per route and direction to infer a protobuf schema and measure
    /// the protobuf size and CPU (a uniform sample; more is slower and more exact).
    #[arg(long, default_value_t = DEFAULT_SAMPLES_PER_ROUTE, value_name = "N")]
    pub samples_per_route: usize,

    /// Infer no protobuf enums: low-cardinality strings stay `string`, as in a .proto
    /// that does not use enums.
    #[arg(long)]
    pub no_enums: bool,

    /// Write the migration kit's .proto for every HTTP link, not only those the plan
    /// moves to gRPC (to compare with an existing service, or to plan ahead).
    #[arg(long)]
    pub kit_all: bool,

    /// Links shown in the terminal table (all are in the reports).
    #[arg(long, default_value_t = DEFAULT_TOP, value_name = "N")]
    pub top: usize,

    /// Routes listed per link in the reports.
    #[arg(long, default_value_t = DEFAULT_ROUTES, value_name = "N")]
    pub routes: usize,

    /// Print nothing but errors and warnings.
    #[arg(long, short)]
    pub quiet: bool,

    /// Also write this node's slice of a fleet into DIR, partitioned by node and time
    /// window (Parquet; `linkrank fleet DIR` folds the slices, docs/fleet.md).
    #[arg(long, value_name = "DIR")]
    pub fleet_out: Option<PathBuf>,

    /// The node's name in the fleet slice. Default: the host name.
    #[arg(long, value_name = "NAME", requires = "fleet_out")]
    pub node: Option<String>,

    /// The node's own address (may be repeated). Default: the address every captured
    /// connection has at one end.
    #[arg(long = "node-ip", value_name = "IP", requires = "fleet_out")]
    pub node_ips: Vec<std::net::IpAddr>,

    /// Width of the fleet slice's time windows, seconds.
    #[arg(long, default_value_t = crate::fleet::slice::DEFAULT_WINDOW_SECS, value_name = "SECS")]
    pub fleet_window: u64,

    /// TLS key log (NSS format, as SSLKEYLOGFILE writes it) to decrypt TLS connections
    /// with; may be repeated. pcapng Decryption Secrets Blocks in the captures are used too.
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<PathBuf>,

    #[command(flatten)]
    pub otlp: OtlpArgs,
}

/// The OTLP flags of `analyze` and `watch`.
#[derive(Debug, Args)]
pub struct OtlpArgs {
    /// Export the links as OpenTelemetry metrics (the servicegraph connector's and
    /// linkrank's own, docs/otel.md) and the run as spans to this OTLP/HTTP base URL
    /// (e.g. http://127.0.0.1:4318); OTEL_EXPORTER_OTLP_* variables apply. `watch`
    /// exports every window. Needs a build with the `otel` feature.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Receive traces over OTLP/gRPC and OTLP/HTTP (`POST /v1/traces`) on this address
    /// (e.g. 127.0.0.1:4317), as a Collector's exporter sends them; the spans join the
    /// analysis as trace files do (under `watch`, the window they arrive in). Runs as
    /// long as the live capture, else until --duration or Ctrl-C/SIGTERM; its port is
    /// left out of the live capture. Needs a build with the `otel` feature.
    #[arg(long, value_name = "ADDR")]
    pub otlp_listen: Option<std::net::SocketAddr>,

    /// Spans the OTLP receiver queues for the analysis; requests that find it full are
    /// answered with a partial success counting the spans rejected.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QUEUE_SPANS)]
    pub otlp_queue_spans: u64,
}

impl OtlpArgs {
    /// The export URL and the receiver's settings, each refused by a build without the
    /// `otel` feature.
    fn into_parts(self) -> Result<(Option<String>, Option<OtlpListen>), String> {
        needs_otel(self.otlp_endpoint.as_deref())?;
        let listen = otlp_listen(self.otlp_listen, self.otlp_queue_spans)?;
        Ok((self.otlp_endpoint, listen))
    }
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
        if self.duration.is_some() && self.interface.is_empty() && self.otlp.otlp_listen.is_none() {
            return Err("--duration needs --interface or --otlp-listen".into());
        }
        let live = self.live_config()?.map(|mut live| {
            live.bpf = without_receiver(live.bpf.take(), self.otlp.otlp_listen);
            live
        });
        let (otlp_endpoint, otlp_listen) = self.otlp.into_parts()?;
        let mut config = AnalyzeConfig::for_inputs(self.inputs);
        if let Some(listen) = otlp_listen {
            if config.inputs.is_empty() && live.is_none() {
                config.out = crate::app::default_out_dir(std::path::Path::new("otlp"));
            }
            config.otlp_listen = Some(OtlpListen {
                // The live capture's own --duration ends both.
                duration: if live.is_none() {
                    positive_secs("--duration", self.duration)?
                } else {
                    None
                },
                ..listen
            });
        }
        if let Some(live) = live {
            if config.inputs.is_empty() {
                let first = live.interfaces.first().map_or("live", String::as_str);
                config.out = crate::app::default_out_dir(std::path::Path::new(first));
            }
            config.live = Some(live);
        }
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
        config.kit_all = self.kit_all;
        config.k8s = self.k8s;
        config.top = self.top;
        config.routes = self.routes;
        config.reproducible = self.reproducible;
        config.timings = self.timings;
        if let Some(n) = self.threads {
            config.threads = usize::from(n);
            config.traces.threads = usize::from(n);
        }
        config.quiet = self.quiet;
        config.keylog = self.keylog;
        config.otlp_endpoint = otlp_endpoint;
        if let Some(dir) = self.fleet_out {
            let node = match self.node {
                Some(n) => n,
                None => host_name()?,
            };
            crate::fleet::slice::check_node_name(&node)?;
            if self.fleet_window == 0 {
                return Err("--fleet-window must be at least 1 s".into());
            }
            config.fleet_out = Some(crate::fleet::slice::SliceConfig {
                dir,
                node,
                node_ips: self.node_ips,
                window_secs: self.fleet_window,
            });
        }
        Ok(config)
    }
}

impl AnalyzeArgs {
    /// The live-capture settings, when `--interface` was given.
    fn live_config(&self) -> Result<Option<LiveConfig>, String> {
        if self.interface.is_empty() {
            return Ok(None);
        }
        needs_live()?;
        let duration = positive_secs("--duration", self.duration)?;
        if self.packets == Some(0) {
            return Err("--packets must be at least 1".into());
        }
        if self.snaplen == 0 {
            return Err("--snaplen must be at least 1".into());
        }
        Ok(Some(LiveConfig {
            duration,
            packets: self.packets,
            bpf: self.bpf.clone(),
            snaplen: self.snaplen,
            write: self.write.clone(),
            write_max_bytes: self.write_max_bytes,
            ..LiveConfig::new(self.interface.clone())
        }))
    }
}

#[cfg(feature = "fleet")]
impl FleetArgs {
    /// The run's settings.
    pub fn into_config(self) -> Result<crate::app::fleet::FleetConfig, String> {
        let engine: crate::fleet::engine::Engine = self.engine.parse()?;
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(format!(
                "--tolerance must be a number of ms, 0 or more, not {}",
                self.tolerance
            ));
        }
        let mut cost = crate::analysis::cost::CostConstants::default();
        if let Some(file) = &self.cost_config {
            cost.apply_file(file).map_err(|e| e.to_string())?;
        }
        Ok(crate::app::fleet::FleetConfig {
            inputs: self.inputs,
            out: self.out.unwrap_or_else(|| PathBuf::from("reports/fleet")),
            query: crate::fleet::engine::QueryConfig {
                engine,
                tolerance_ns: (self.tolerance * 1e6) as i64,
                partitions: self.partitions.map(|p| p as usize),
                stage: self.stage,
            },
            expect_nodes: self.expect_nodes,
            cost,
            routes: self.routes,
            quiet: self.quiet,
        })
    }
}

#[cfg(feature = "fleet")]
impl ExecutorArgs {
    pub fn into_config(self) -> Result<crate::fleet::cluster::ExecutorConfig, String> {
        let (host, port) = self
            .scheduler
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("--scheduler {}: expected HOST:PORT", self.scheduler))?;
        Ok(crate::fleet::cluster::ExecutorConfig {
            host: self.host,
            port: self.port,
            grpc_port: self.grpc_port,
            scheduler_host: host,
            scheduler_port: port,
            slots: self.slots,
            work_dir: self.work_dir,
        })
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
fn host_name() -> Result<String, String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "--node NAME is needed: the host name could not be read".into())
}

/// Refuses live capture in a build without the `live` feature.
fn needs_live() -> Result<(), String> {
    if cfg!(feature = "live") {
        Ok(())
    } else {
        Err(
            "--interface needs live capture, which this linkrank was built without \
             (build with `cargo build --features live`; it needs libpcap)"
                .into(),
        )
    }
}

/// Refuses `--otlp-endpoint` in a build without the `otel` feature.
fn needs_otel(endpoint: Option<&str>) -> Result<(), String> {
    if endpoint.is_some() && !cfg!(feature = "otel") {
        return Err(
            "--otlp-endpoint needs OpenTelemetry export, which this linkrank was \
             built without (build with `cargo build --features otel`)"
                .into(),
        );
    }
    Ok(())
}

/// The capture filter with the OTLP receiver's own port left out: the exporters' requests
/// to linkrank are not traffic between the services, and the join by time could pair
/// spans with them. A receiver on port 0 (any free port) has no port to leave out
/// before it binds; its filter stays as asked.
fn without_receiver(bpf: Option<String>, listen: Option<std::net::SocketAddr>) -> Option<String> {
    match (bpf, listen.map(|a| a.port()).filter(|&p| p != 0)) {
        (bpf, None) => bpf,
        (None, Some(port)) => Some(format!("not tcp port {port}")),
        (Some(f), Some(port)) => Some(format!("({f}) and not tcp port {port}")),
    }
}

/// `--otlp-listen` and its queue bound, refused in a build without the `otel` feature.
fn otlp_listen(
    addr: Option<std::net::SocketAddr>,
    queue_spans: u64,
) -> Result<Option<OtlpListen>, String> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    if !cfg!(feature = "otel") {
        return Err(
            "--otlp-listen needs the OTLP receiver, which this linkrank was built \
                    without (build with `cargo build --features otel`)"
                .into(),
        );
    }
    if queue_spans == 0 {
        return Err("--otlp-queue-spans must be at least 1".into());
    }
    Ok(Some(OtlpListen {
        addr,
        queue_spans,
        duration: None,
    }))
}

/// A positive number of seconds given to `flag`, as a duration.
fn positive_secs(flag: &str, secs: Option<f64>) -> Result<Option<std::time::Duration>, String> {
    match secs {
        Some(s) if !(s.is_finite() && s > 0.0) => Err(format!(
            "{flag} must be a positive number of seconds, not {s}"
        )),
        Some(s) => Ok(Some(std::time::Duration::from_secs_f64(s))),
        None => Ok(None),
    }
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Network interface to capture on; may be repeated.
    #[arg(long, required = true, value_name = "IF")]
    pub interface: Vec<String>,

    /// Length of a window, seconds.
    #[arg(long, default_value_t = DEFAULT_WINDOW_SECS, value_name = "SECS")]
    pub window: f64,

    /// Output folder [default: reports/watch/]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Windows whose reports are kept (older ones are deleted).
    #[arg(long, default_value_t = DEFAULT_HISTORY, value_name = "N")]
    pub history: usize,

    /// Stop after this many seconds (default: on Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// A libpcap filter expression, on every interface.
    #[arg(long, value_name = "FILTER")]
    pub bpf: Option<String>,

    /// Bytes kept of each packet.
    #[arg(long, default_value_t = DEFAULT_SNAPLEN, value_name = "N")]
    pub snaplen: u32,

    /// Services file (as for analyze); may be repeated.
    #[arg(long, value_name = "FILE")]
    pub services: Vec<PathBuf>,

    #[command(flatten)]
    pub otlp: OtlpArgs,

    /// Print nothing but errors and warnings (no progress line).
    #[arg(long, short)]
    pub quiet: bool,
}

impl WatchArgs {
    pub fn into_config(self) -> Result<WatchConfig, String> {
        positive_secs("--window", Some(self.window))?;
        if self.history == 0 {
            return Err("--history must be at least 1".into());
        }
        needs_live()?;
        let receiver = self.otlp.otlp_listen;
        let (otlp_endpoint, otlp_listen) = self.otlp.into_parts()?;
        let mut analyze = AnalyzeConfig::for_inputs(Vec::new());
        analyze.live = Some(LiveConfig {
            duration: positive_secs("--duration", self.duration)?,
            bpf: without_receiver(self.bpf, receiver),
            snaplen: self.snaplen.max(1),
            ..LiveConfig::new(self.interface)
        });
        analyze.services = self.services;
        analyze.otlp_endpoint = otlp_endpoint;
        analyze.otlp_listen = otlp_listen;
        analyze.quiet = self.quiet;
        analyze.out = self.out.unwrap_or_else(|| PathBuf::from("reports/watch"));
        Ok(WatchConfig {
            analyze,
            window: std::time::Duration::from_secs_f64(self.window),
            history: self.history,
        })
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

    fn analyze_args(args: &[&str]) -> AnalyzeArgs {
        let cli = Cli::try_parse_from(["linkrank", "analyze"].iter().chain(args)).unwrap();
        let Command::Analyze(args) = cli.command else {
            panic!("not analyze")
        };
        args
    }

    /// `--otlp-listen` needs no FILE; `--duration` then bounds the receiver. A build
    /// without `otel` refuses it clearly.
    #[test]
    fn otlp_listen_needs_no_file_and_takes_the_duration() {
        let r = analyze_args(&["--otlp-listen", "127.0.0.1:4317", "--duration", "2"]).into_config();
        match (cfg!(feature = "otel"), r) {
            (true, Ok(c)) => {
                let l = c.otlp_listen.unwrap();
                assert_eq!(l.addr.port(), 4317);
                assert_eq!(l.duration, Some(std::time::Duration::from_secs(2)));
                assert_eq!(l.queue_spans, DEFAULT_QUEUE_SPANS);
            }
            (false, Err(e)) => assert!(e.contains("--features otel"), "{e}"),
            (built_with_otel, other) => panic!("otel feature {built_with_otel}: {other:?}"),
        }
        assert!(Cli::try_parse_from(["linkrank", "analyze", "--otlp-listen", "nonsense"]).is_err());
    }

    /// The receiver's own port is left out of a live capture, with or without a filter
    /// of the user's; a receiver on port 0 leaves the filter as asked.
    #[test]
    fn a_live_capture_leaves_the_receivers_port_out() {
        let listen = Some("127.0.0.1:4317".parse().unwrap());
        assert_eq!(
            without_receiver(Some("tcp".into()), listen).as_deref(),
            Some("(tcp) and not tcp port 4317")
        );
        assert_eq!(
            without_receiver(None, listen).as_deref(),
            Some("not tcp port 4317")
        );
        let any = Some("0.0.0.0:0".parse().unwrap());
        assert_eq!(
            without_receiver(Some("udp".into()), any).as_deref(),
            Some("udp")
        );
        assert_eq!(
            without_receiver(Some("udp".into()), None).as_deref(),
            Some("udp")
        );
        if cfg!(all(feature = "live", feature = "otel")) {
            let args = [
                "--interface",
                "lo",
                "--bpf",
                "udp",
                "--otlp-listen",
                "127.0.0.1:4318",
            ];
            let config = analyze_args(&args).into_config().unwrap();
            assert_eq!(
                config.live.unwrap().bpf.as_deref(),
                Some("(udp) and not tcp port 4318")
            );
        }
    }

    /// `--interface` needs no FILE; it is refused (clearly) by a build without `live`.
    #[test]
    fn interface_flags_become_a_live_config() {
        let args = analyze_args(&[
            "--interface",
            "veth0",
            "--interface",
            "lo",
            "--packets",
            "25",
            "--bpf",
            "tcp",
            "--write",
            "w.pcapng",
        ]);
        match (cfg!(feature = "live"), args.into_config()) {
            (true, Ok(config)) => {
                let live = config.live.unwrap();
                assert_eq!(live.interfaces, ["veth0", "lo"]);
                assert_eq!(live.packets, Some(25));
                assert_eq!(live.bpf.as_deref(), Some("tcp"));
                assert_eq!(config.out, PathBuf::from("reports/veth0"));
            }
            (false, Err(e)) => assert!(e.contains("--features live"), "{e}"),
            (built_with_live, other) => panic!("live feature {built_with_live}: {other:?}"),
        }
        let e = analyze_args(&["--duration", "3", "a.pcap"])
            .into_config()
            .unwrap_err();
        assert!(
            e.contains("--duration needs --interface or --otlp-listen"),
            "{e}"
        );
        assert!(Cli::try_parse_from([
            "linkrank",
            "analyze",
            "--interface",
            "lo",
            "--duration",
            "3",
            "--packets",
            "9"
        ])
        .is_err());
        if cfg!(feature = "live") {
            let e = analyze_args(&["--interface", "lo", "--duration", "0"])
                .into_config()
                .unwrap_err();
            assert!(e.contains("--duration"), "{e}");
        }
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
