//! `linkrank diff BEFORE AFTER`: compares two analyses link by link (matched by client
//! and server name): latency percentiles with a Mann-Whitney U test on the per-exchange
//! latencies, bytes and new TCP connections per request, 5xx share, protocol and
//! sync/async changes, links seen on one side only. See docs/diff.md.

pub mod load;
pub mod render;
pub mod stats;

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::Serialize;

use crate::app::RunError;
use load::{Side, SideLink};
use stats::MannWhitney;

pub const SCHEMA: &str = "linkrank.diff/v1";
/// Significance level of the latency test.
pub const ALPHA: f64 = 0.05;

/// What `diff` prints on stdout (both files are always written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table of the links, for a terminal.
    #[default]
    Table,
    /// diff.md.
    Md,
    /// diff.json.
    Json,
}

/// Validated settings of one `diff` run.
#[derive(Clone, Debug)]
pub struct DiffConfig {
    pub before: PathBuf,
    pub after: PathBuf,
    /// Regression threshold in % (latency) and percentage points (5xx share).
    pub fail_if_regressed: Option<f64>,
    /// Folder for diff.md and diff.json.
    pub out: PathBuf,
    pub format: Format,
}

/// How a `diff` run ended, when it could compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffStatus {
    /// No link regressed past the threshold (or none was given).
    Clean,
    /// Some link regressed past `--fail-if-regressed`.
    Regressed,
}

/// A before and an after value of one measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Change {
    pub before: Option<f64>,
    pub after: Option<f64>,
    /// after - before.
    pub change: Option<f64>,
    /// (after - before) / before in %, when before > 0.
    pub change_pct: Option<f64>,
}

impl Change {
    pub fn of(before: Option<f64>, after: Option<f64>) -> Self {
        let change = before.zip(after).map(|(b, a)| a - b);
        let change_pct = before
            .zip(change)
            .and_then(|(b, d)| (b > 0.0).then(|| d / b * 100.0));
        Change {
            before,
            after,
            change,
            change_pct,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyChange {
    pub p50: Change,
    pub p95: Change,
    pub p99: Change,
}

/// The latency test of one link, with its effect (median change).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencyTest {
    pub test: &'static str,
    #[serde(flatten)]
    pub result: MannWhitney,
    pub median_before_ms: Option<f64>,
    pub median_after_ms: Option<f64>,
    pub median_change_ms: Option<f64>,
    pub significant: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Values<T> {
    pub before: Option<T>,
    pub after: Option<T>,
    pub changed: bool,
}

impl<T: PartialEq + Clone> Values<T> {
    fn of(before: Option<T>, after: Option<T>) -> Self {
        let changed = matches!((&before, &after), (Some(b), Some(a)) if b != a);
        Values {
            before,
            after,
            changed,
        }
    }
}

/// Where a link was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Both,
    BeforeOnly,
    AfterOnly,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkDiff {
    pub client: String,
    pub server: String,
    pub presence: Presence,
    /// links.json's `protocol` (`http/1.0`, `http/1.1`, `http2`, `tls`, ...).
    pub protocol: Values<String>,
    /// `sync` or `async` (traced calls whose caller did not wait: async_share >= 0.5);
    /// null without traces.
    pub mode: Values<String>,
    pub requests: Change,
    pub latency_ms: LatencyChange,
    pub latency_test: Option<LatencyTest>,
    pub bytes_per_request: Change,
    /// New TCP connections (SYN captured), in all: the only handshake figure of a link
    /// whose HTTP is not visible (TLS).
    pub tcp_handshakes: Change,
    /// New TCP connections (SYN captured) per request.
    pub handshakes_per_request: Change,
    /// Share of requests answered 5xx, in % (change in percentage points).
    pub error_rate_pct: Change,
    /// Why the link counts as regressed under `--fail-if-regressed` (empty otherwise).
    pub regressions: Vec<String>,
    /// A link that moved to gRPC: what the before analysis projected against what the
    /// after capture measured.
    pub grpc_prediction: Option<GrpcPrediction>,
}

/// The gRPC projection of the before side checked against the after side, per request:
/// `before` is the projection, `after` the measure, and `change_pct` the projection's
/// error relative to it ((measured - projected) / projected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct GrpcPrediction {
    pub header_bytes_per_request: Change,
    pub body_bytes_per_request: Change,
    pub bytes_per_request: Change,
}

/// Set when the link left another protocol for gRPC and both figures are known.
fn grpc_prediction(before: &SideLink, after: &SideLink) -> Option<GrpcPrediction> {
    let grpc = |l: &SideLink| l.protocol.as_deref() == Some("grpc");
    if grpc(before) || !grpc(after) {
        return None;
    }
    let (h, b) = (
        before.projected_grpc_header_bytes?,
        before.projected_protobuf_body_bytes?,
    );
    let (mh, mb) = (
        after.header_bytes_per_request?,
        after.body_bytes_per_request?,
    );
    Some(GrpcPrediction {
        header_bytes_per_request: Change::of(Some(h), Some(mh)),
        body_bytes_per_request: Change::of(Some(b), Some(mb)),
        bytes_per_request: Change::of(Some(h + b), Some(mh + mb)),
    })
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideInfo {
    pub source: String,
    /// `report` (a folder of `linkrank analyze`) or `analysed` (a file analysed on the fly).
    pub kind: &'static str,
    pub links: usize,
}

/// The whole comparison: what `diff.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub schema: &'static str,
    pub generator: String,
    pub before: SideInfo,
    pub after: SideInfo,
    pub alpha: f64,
    pub fail_if_regressed_pct: Option<f64>,
    /// `client -> server` of every regressed link.
    pub regressed: Vec<String>,
    pub links: Vec<LinkDiff>,
}

fn ratio(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    let (a, b) = (a?, b?);
    (b > 0).then(|| a as f64 / b as f64)
}

fn mode(l: &SideLink) -> Option<String> {
    l.async_share
        .map(|s| if s >= 0.5 { "async" } else { "sync" }.to_owned())
}

fn link_diff(before: Option<&SideLink>, after: Option<&SideLink>) -> LinkDiff {
    let pick =
        |f: &dyn Fn(&SideLink) -> Option<f64>| Change::of(before.and_then(f), after.and_then(f));
    let any = before.or(after);
    let test = match (before, after) {
        (Some(b), Some(a)) => stats::mann_whitney(&b.latencies, &a.latencies).map(|r| {
            let mb = stats::median(&mut b.latencies.clone());
            let ma = stats::median(&mut a.latencies.clone());
            LatencyTest {
                test: "mann-whitney-u",
                result: r,
                median_before_ms: mb,
                median_after_ms: ma,
                median_change_ms: mb.zip(ma).map(|(b, a)| a - b),
                significant: r.p_value < ALPHA,
            }
        }),
        _ => None,
    };
    LinkDiff {
        client: any.map(|l| l.client.clone()).unwrap_or_default(),
        server: any.map(|l| l.server.clone()).unwrap_or_default(),
        presence: match (before, after) {
            (Some(_), Some(_)) => Presence::Both,
            (Some(_), None) => Presence::BeforeOnly,
            _ => Presence::AfterOnly,
        },
        protocol: Values::of(
            before.and_then(|l| l.protocol.clone()),
            after.and_then(|l| l.protocol.clone()),
        ),
        mode: Values::of(before.and_then(mode), after.and_then(mode)),
        requests: pick(&|l| l.requests.map(|r| r as f64)),
        latency_ms: LatencyChange {
            p50: pick(&|l| l.latency_ms[0]),
            p95: pick(&|l| l.latency_ms[1]),
            p99: pick(&|l| l.latency_ms[2]),
        },
        latency_test: test,
        bytes_per_request: pick(&|l| l.bytes_per_request),
        tcp_handshakes: pick(&|l| l.tcp_handshakes.map(|n| n as f64)),
        handshakes_per_request: pick(&|l| ratio(l.tcp_handshakes, l.requests)),
        error_rate_pct: pick(&|l| ratio(l.status_5xx, l.requests).map(|r| r * 100.0)),
        regressions: Vec::new(),
        grpc_prediction: before.zip(after).and_then(|(b, a)| grpc_prediction(b, a)),
    }
}

/// Why `link` regressed by more than `pct` (docs/diff.md): its p95 latency rose by more
/// than `pct` % while the test shows after slower with p < 0.05, or its 5xx share rose by
/// more than `pct` percentage points. Links on one side only never regress.
pub fn regressions(link: &LinkDiff, pct: f64) -> Vec<String> {
    let mut why = Vec::new();
    if link.presence != Presence::Both {
        return why;
    }
    if let (Some(rise), Some(t)) = (link.latency_ms.p95.change_pct, &link.latency_test) {
        if rise > pct && t.significant && t.result.prob_after_slower > 0.5 {
            why.push(format!(
                "p95 latency {:.1}% higher (p = {:.3}, n {} -> {})",
                rise, t.result.p_value, t.result.n_before, t.result.n_after
            ));
        }
    }
    if let Some(rise) = link.error_rate_pct.change {
        if rise > pct {
            why.push(format!("5xx share {rise:.1} percentage points higher"));
        }
    }
    why
}

/// Compares two sides; with `fail_pct`, marks the regressed links.
pub fn compare(before: &Side, after: &Side, fail_pct: Option<f64>) -> Diff {
    let key = |l: &SideLink| (l.client.clone(), l.server.clone());
    let mut links: Vec<LinkDiff> = before
        .links
        .iter()
        .map(|b| link_diff(Some(b), after.links.iter().find(|a| key(a) == key(b))))
        .collect();
    links.extend(
        after
            .links
            .iter()
            .filter(|a| !before.links.iter().any(|b| key(a) == key(b)))
            .map(|a| link_diff(None, Some(a))),
    );
    let mut regressed = Vec::new();
    if let Some(pct) = fail_pct {
        for l in &mut links {
            l.regressions = regressions(l, pct);
            if !l.regressions.is_empty() {
                regressed.push(format!("{} -> {}", l.client, l.server));
            }
        }
    }
    let info = |s: &Side| SideInfo {
        source: s.source.display().to_string(),
        kind: if s.analysed { "analysed" } else { "report" },
        links: s.links.len(),
    };
    Diff {
        schema: SCHEMA,
        generator: format!("linkrank {}", env!("CARGO_PKG_VERSION")),
        before: info(before),
        after: info(after),
        alpha: ALPHA,
        fail_if_regressed_pct: fail_pct,
        regressed,
        links,
    }
}

/// `reports/diff-<before stem>-<after stem>/`.
pub fn default_out_dir(before: &Path, after: &Path) -> PathBuf {
    let stem = |p: &Path| {
        crate::app::default_out_dir(p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into())
    };
    PathBuf::from("reports").join(format!("diff-{}-{}", stem(before), stem(after)))
}

/// Writes diff.md and diff.json into `dir`.
pub fn write(dir: &Path, diff: &Diff) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let md = dir.join("diff.md");
    std::fs::write(&md, render::markdown(diff))
        .with_context(|| format!("{}: cannot write", md.display()))?;
    let js = dir.join("diff.json");
    std::fs::write(&js, serde_json::to_string_pretty(diff)? + "\n")
        .with_context(|| format!("{}: cannot write", js.display()))?;
    Ok(())
}

/// The `diff` command: loads both sides, writes diff.md and diff.json, prints the chosen
/// format and names each regressed link on stderr.
pub fn run(config: &DiffConfig) -> Result<DiffStatus, RunError> {
    let mut sides = Vec::with_capacity(2);
    for (path, label) in [(&config.before, "before"), (&config.after, "after")] {
        sides.push(load::load(path, label).map_err(|e| match e {
            RunError::Input(e) => RunError::Input(e.context(label)),
            RunError::Output(e) => RunError::Output(e.context(label)),
        })?);
    }
    let [before, after] = &sides[..] else {
        unreachable!("two sides were loaded")
    };
    let diff = compare(before, after, config.fail_if_regressed);
    write(&config.out, &diff).map_err(RunError::Output)?;
    match config.format {
        Format::Table => print!("{}", render::terminal(&diff, &config.out)),
        Format::Md => print!("{}", render::markdown(&diff)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&diff).map_err(|e| RunError::Output(e.into()))?
        ),
    }
    for r in &diff.regressed {
        eprintln!("regressed: {r}");
    }
    Ok(if diff.regressed.is_empty() {
        DiffStatus::Clean
    } else {
        DiffStatus::Regressed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(before: &[f64], after: &[f64], err: (u64, u64)) -> LinkDiff {
        let side = |lat: &[f64], e: u64| SideLink {
            client: "a".into(),
            server: "b".into(),
            protocol: Some("http/1.1".into()),
            requests: Some(100),
            tcp_handshakes: Some(100),
            status_5xx: Some(e),
            latency_ms: [None, Some(lat.iter().cloned().fold(0.0, f64::max)), None],
            latencies: lat.to_vec(),
            ..SideLink::default()
        };
        link_diff(Some(&side(before, err.0)), Some(&side(after, err.1)))
    }

    #[test]
    fn a_slower_p95_regresses_only_past_the_threshold_and_when_significant() {
        let before: Vec<f64> = (1..=30).map(f64::from).collect();
        let after: Vec<f64> = before.iter().map(|v| v * 1.5).collect();
        let l = link(&before, &after, (0, 0));
        // p95 (here the max) 30 -> 45: +50 %.
        assert!((l.latency_ms.p95.change_pct.unwrap() - 50.0).abs() < 1e-9);
        assert!(l.latency_test.unwrap().significant);
        assert_eq!(regressions(&l, 40.0).len(), 1);
        assert!(regressions(&l, 50.0).is_empty(), "more than PCT, not equal");
        // The same shift the other way is an improvement, never a regression.
        assert!(regressions(&link(&after, &before, (0, 0)), 0.0).is_empty());
        // A large p95 rise without a significant shift does not count: only one value moved.
        let mut tail = before.clone();
        tail[29] = 90.0;
        let l = link(&before, &tail, (0, 0));
        assert!(!l.latency_test.unwrap().significant);
        assert!(regressions(&l, 10.0).is_empty());
    }

    #[test]
    fn error_rate_rise_is_in_percentage_points() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        // 2 -> 5 of 100 requests: +3 points.
        let l = link(&v, &v, (2, 5));
        assert_eq!(l.error_rate_pct.change, Some(3.0));
        assert_eq!(regressions(&l, 2.5).len(), 1);
        assert!(regressions(&l, 3.0).is_empty());
        assert!(regressions(&link(&v, &v, (5, 2)), 0.0).is_empty());
    }

    #[test]
    fn a_link_on_one_side_never_regresses() {
        let side = SideLink {
            client: "a".into(),
            server: "b".into(),
            requests: Some(10),
            status_5xx: Some(10),
            ..SideLink::default()
        };
        let l = link_diff(None, Some(&side));
        assert_eq!(l.presence, Presence::AfterOnly);
        assert!(regressions(&l, 0.0).is_empty());
    }

    #[test]
    fn change_is_relative_to_a_positive_before() {
        let c = Change::of(Some(2.0), Some(3.0));
        assert_eq!((c.change, c.change_pct), (Some(1.0), Some(50.0)));
        assert_eq!(Change::of(Some(0.0), Some(3.0)).change_pct, None);
        assert_eq!(Change::of(None, Some(3.0)).change, None);
    }
}

#[cfg(test)]
mod mode_tests {
    use super::*;

    #[test]
    fn a_move_to_a_broker_and_to_http2_are_changes() {
        let side = |protocol: &str, async_share: Option<f64>| SideLink {
            client: "orders".into(),
            server: "notifications".into(),
            protocol: Some(protocol.into()),
            async_share,
            ..SideLink::default()
        };
        let l = link_diff(
            Some(&side("http/1.1", Some(0.1))),
            Some(&side("http2", Some(0.9))),
        );
        assert!(l.protocol.changed);
        assert_eq!(
            (l.mode.before.as_deref(), l.mode.after.as_deref()),
            (Some("sync"), Some("async"))
        );
        assert!(l.mode.changed);
        // Unknown on one side (no traces): not a change.
        let l = link_diff(
            Some(&side("http/1.1", None)),
            Some(&side("http/1.1", Some(0.9))),
        );
        assert!(!l.mode.changed && !l.protocol.changed);
    }
}
