//! The `linkrank` binary: parse arguments, run, turn errors into exit codes (the one place
//! they are mapped).
//!
//! Exit codes: 0 success (input faults such as a capture cut short are warnings on
//! stderr), 1 an input is missing, unreadable or not a capture, 2 bad arguments,
//! 3 the outputs could not be written, 4 `diff --fail-if-regressed` found a regression.

use std::process::ExitCode;

use clap::Parser;
use linkrank::app::{self, AnalyzeConfig, RunError};
use linkrank::cli::{Cli, Command};
use linkrank::diff::{self, DiffStatus};
use linkrank::report::{summary, terminal};

fn main() -> ExitCode {
    install_panic_report();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => match args.into_config() {
            Ok(config) => analyze(&config),
            Err(msg) => return usage_error(&msg),
        },
        Command::Diff(args) => match args.into_config() {
            Ok(config) => diff::run(&config).map(|status| match status {
                DiffStatus::Clean => ExitCode::SUCCESS,
                DiffStatus::Regressed => ExitCode::from(4),
            }),
            Err(msg) => return usage_error(&msg),
        },
        Command::Watch(args) => match args.into_config() {
            Ok(config) => watch(&config),
            Err(msg) => return usage_error(&msg),
        },
        Command::Fleet(args) => return fleet::fleet(args),
        Command::FleetScheduler(args) => return fleet::scheduler(args),
        Command::FleetExecutor(args) => return fleet::executor(args),
    };
    match result {
        Ok(code) => code,
        Err(RunError::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(RunError::Output(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

/// `linkrank watch`: windows until a signal or `--duration`; the reports are in DIR.
#[cfg(feature = "live")]
fn watch(config: &app::WatchConfig) -> Result<ExitCode, RunError> {
    let windows = app::watch::watch(config)?;
    if !config.analyze.quiet {
        println!(
            "{} windows written to {}",
            windows.len(),
            config.analyze.out.join("windows").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Without the `live` feature the arguments are refused before this is reached.
#[cfg(not(feature = "live"))]
fn watch(_config: &app::WatchConfig) -> Result<ExitCode, RunError> {
    Err(RunError::Input(anyhow::anyhow!(
        "watch needs a linkrank built with the `live` feature"
    )))
}

/// `linkrank fleet` and the Ballista processes (feature `fleet`).
#[cfg(feature = "fleet")]
mod fleet {
    use std::process::ExitCode;

    use linkrank::app::RunError;
    use linkrank::cli::{ExecutorArgs, FleetArgs, SchedulerArgs};

    pub fn fleet(args: FleetArgs) -> ExitCode {
        let config = match args.into_config() {
            Ok(c) => c,
            Err(msg) => return super::usage_error(&msg),
        };
        match linkrank::app::fleet::fleet(&config) {
            Ok(outcome) => {
                if !config.quiet {
                    let f = &outcome.result.figures;
                    println!(
                        "fleet: {} nodes, {} exchanges ({} rows), {} connections ({} rows), \
                         {} links; reports in {}",
                        f.nodes.len(),
                        f.exchanges,
                        f.exchange_rows,
                        f.connections,
                        f.connection_rows,
                        outcome.ranked.len(),
                        config.out.display()
                    );
                }
                if outcome.partial.partial {
                    eprintln!(
                        "warning: partial result, no slice from: {}",
                        outcome.partial.missing_nodes.join(", ")
                    );
                }
                ExitCode::SUCCESS
            }
            Err(RunError::Input(e)) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
            Err(RunError::Output(e)) => {
                eprintln!("error: {e:#}");
                ExitCode::from(3)
            }
        }
    }

    pub fn scheduler(args: SchedulerArgs) -> ExitCode {
        report(linkrank::fleet::cluster::run_scheduler(
            &args.host, args.port,
        ))
    }

    pub fn executor(args: ExecutorArgs) -> ExitCode {
        match args.into_config() {
            Ok(c) => report(linkrank::fleet::cluster::run_executor(&c)),
            Err(msg) => super::usage_error(&msg),
        }
    }

    fn report(r: anyhow::Result<()>) -> ExitCode {
        match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// Without the `fleet` feature the commands say how to get them.
#[cfg(not(feature = "fleet"))]
mod fleet {
    use std::process::ExitCode;

    fn refuse() -> ExitCode {
        super::usage_error(
            "fleet needs a linkrank built with the `fleet` feature \
             (cargo build --features fleet; DataFusion and Ballista)",
        )
    }

    pub fn fleet(_: linkrank::cli::FleetArgs) -> ExitCode {
        refuse()
    }

    pub fn scheduler(_: linkrank::cli::SchedulerArgs) -> ExitCode {
        refuse()
    }

    pub fn executor(_: linkrank::cli::ExecutorArgs) -> ExitCode {
        refuse()
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

/// `linkrank analyze`: runs, then prints the warnings and (unless quiet) the summary.
fn analyze(config: &AnalyzeConfig) -> Result<ExitCode, RunError> {
    let outcome = app::analyze(config)?;
    if config.timings {
        eprint!("{}", outcome.timings.table());
    }
    for w in &outcome.coverage.input_warnings {
        eprintln!(
            "warning: {w}; the packets before it were analysed, the rest of that file was not"
        );
    }
    for e in outcome.traces.iter().flat_map(|t| &t.errors) {
        eprintln!("warning: {e}; the spans before it were analysed");
    }
    if !config.quiet {
        // A run of trace files alone has no capture to account for.
        let captured = outcome.inputs.iter().any(|i| i.packets > 0) || outcome.traces.is_none();
        if captured {
            print!(
                "{}",
                summary::render(
                    &outcome.inputs,
                    &outcome.coverage,
                    &outcome.figures,
                    &outcome.out_dir
                )
            );
        }
        if let Some(t) = &outcome.traces {
            print!("{}", t.render_terminal());
        }
        print!(
            "{}",
            terminal::render(
                &outcome.ranked,
                config.top,
                &outcome.out_dir,
                outcome.capture_seconds
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A panic is a bug: besides the usual message, name the packet being processed so that a
/// user can send a reproducer (`editcap -r FILE one.pcap N` cuts that packet out).
fn install_panic_report() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        match linkrank::ingest::capture::position::describe() {
            Some(at) => eprintln!(
                "linkrank hit a bug while processing {at}. Please report it with that file, \
                 or the packets up to that one (editcap -r FILE out.pcap 1-N), as a reproducer."
            ),
            None => eprintln!("linkrank hit a bug; please report it with the inputs of this run."),
        }
    }));
}
