//! A Ballista scheduler or executor in this process (`linkrank fleet-scheduler`,
//! `linkrank fleet-executor`): the libraries of the `ballista-scheduler` and
//! `ballista-executor` crates, so a cluster needs no other binary. Each runs until it is
//! killed.

use std::sync::Arc;

use anyhow::Context;

/// Ballista's own binaries run their runtime with 32 MB thread stacks (deep plans).
const STACK_BYTES: usize = 32 * 1024 * 1024;

/// Ballista's own log (`tracing`) on stderr: warnings, or what `LINKRANK_LOG` asks for
/// (`info`, `ballista_scheduler=debug`, ...).
fn log_to_stderr() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LINKRANK_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // Fails only when a subscriber is already set: that one is kept.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    log_to_stderr();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(STACK_BYTES)
        .build()
        .context("starting the async runtime")
}

/// Serves the scheduler's gRPC on `host:port` until killed.
pub fn run_scheduler(host: &str, port: u16) -> anyhow::Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    use ballista_scheduler::scheduler_process::start_server;
    runtime()?.block_on(async {
        let config = SchedulerConfig {
            bind_host: host.to_owned(),
            external_host: host.to_owned(),
            bind_port: port,
            ..SchedulerConfig::default()
        };
        let addr = format!("{host}:{port}")
            .parse()
            .with_context(|| format!("{host}:{port}: not an address to listen on"))?;
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| anyhow::anyhow!("starting the scheduler: {e}"))?;
        start_server(cluster, addr, Arc::new(config))
            .await
            .map_err(|e| anyhow::anyhow!("the scheduler stopped: {e}"))
    })
}

/// Where an executor listens and which scheduler it serves.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    pub host: String,
    /// Arrow Flight (shuffle data) port.
    pub port: u16,
    /// gRPC (tasks) port.
    pub grpc_port: u16,
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// Tasks run at once.
    pub slots: usize,
    /// Shuffle files.
    pub work_dir: Option<String>,
}

/// Runs an executor until killed.
pub fn run_executor(cfg: &ExecutorConfig) -> anyhow::Result<()> {
    use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
    runtime()?.block_on(async {
        let config = ExecutorProcessConfig {
            bind_host: cfg.host.clone(),
            external_host: Some(cfg.host.clone()),
            port: cfg.port,
            grpc_port: cfg.grpc_port,
            scheduler_host: cfg.scheduler_host.clone(),
            scheduler_port: cfg.scheduler_port,
            vcores: cfg.slots.max(1),
            work_dir: cfg.work_dir.clone(),
            ..ExecutorProcessConfig::default()
        };
        start_executor_process(Arc::new(config))
            .await
            .map_err(|e| anyhow::anyhow!("the executor stopped: {e}"))
    })
}
