//! `--otlp-endpoint`: the run's links as OpenTelemetry metrics, and the run itself as a
//! trace, sent over OTLP/HTTP (feature `otel`; docs/otel.md lists every metric).
//!
//! Two sets of metrics: the servicegraph connector's, under its names and labels, so that
//! a service-graph view draws linkrank's links unchanged, and linkrank's own per-link
//! measures and advice. The standard `OTEL_EXPORTER_OTLP_*` variables (headers, timeout,
//! compression, `http/protobuf` or `http/json`) apply; the endpoint given on the command
//! line is the base URL, `/v1/metrics` and `/v1/traces` are added to it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use crate::analysis::links::{ExchangeDuration, LinkKey};
use crate::analysis::rank::Ranked;

/// Bucket bounds of the duration histograms, seconds: the servicegraph connector's
/// defaults (2 ms to 15 s).
pub const LATENCY_BUCKETS_S: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

/// What one run hands to the exporter.
pub struct RunExport<'a> {
    pub links: &'a [Ranked],
    pub exchanges: &'a [ExchangeDuration],
    pub capture_seconds: Option<f64>,
    /// When the run started, and each stage's name and milliseconds in the order they
    /// ran (the `--timings` stages).
    pub started: SystemTime,
    pub stages: &'a [(&'static str, f64)],
    /// The span's name: `linkrank analyze` or `linkrank watch window`.
    pub run_name: &'static str,
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("linkrank")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

fn signal_url(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

/// The protocol of one signal: what `OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL` or
/// `OTEL_EXPORTER_OTLP_PROTOCOL` names (`http/protobuf` or `http/json`; gRPC is refused
/// with a clear message), else `http/protobuf`, the specification's default (the
/// exporter crate's own default is JSON once its `http-json` feature is on).
fn protocol(signal_var: &str) -> anyhow::Result<Protocol> {
    for var in [signal_var, "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        match std::env::var(var).as_deref() {
            Ok("http/protobuf") => return Ok(Protocol::HttpBinary),
            Ok("http/json") => return Ok(Protocol::HttpJson),
            Ok(other) if !other.is_empty() => anyhow::bail!(
                "{var}={other}: linkrank exports over OTLP/HTTP only (http/protobuf or http/json)"
            ),
            _ => {}
        }
    }
    Ok(Protocol::HttpBinary)
}

/// Sends the metrics and the run's spans to `endpoint`; returns once both were exported
/// (or failed: the error says which).
pub fn export(endpoint: &str, run: &RunExport<'_>) -> anyhow::Result<()> {
    let metrics = MetricExporter::builder()
        .with_http()
        .with_protocol(protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")?)
        .with_endpoint(signal_url(endpoint, "v1/metrics"))
        .build()
        .context("building the OTLP metric exporter")?;
    let meters = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics)
        .with_resource(resource())
        .build();
    record_metrics(&meters, run);
    let spans = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")?)
        .with_endpoint(signal_url(endpoint, "v1/traces"))
        .build()
        .context("building the OTLP span exporter")?;
    let tracers = SdkTracerProvider::builder()
        .with_simple_exporter(spans)
        .with_resource(resource())
        .build();
    record_spans(&tracers, run);
    let m = meters
        .shutdown()
        .map_err(|e| anyhow::anyhow!("exporting the metrics to {endpoint}: {e}"));
    let t = tracers
        .shutdown()
        .map_err(|e| anyhow::anyhow!("exporting the run's spans to {endpoint}: {e}"));
    m.and(t)
}

/// The servicegraph connector's `connection_type` label: empty for a direct call,
/// `messaging_system` for a link through a broker.
fn connection_type(r: &Ranked) -> &'static str {
    if r.link.broker.is_some() {
        "messaging_system"
    } else {
        ""
    }
}

fn record_metrics(provider: &SdkMeterProvider, run: &RunExport<'_>) {
    let meter = provider.meter("linkrank");
    let requests = meter
        .u64_counter("traces_service_graph_request_total")
        .with_description("Requests from client to server (servicegraph connector)")
        .build();
    let failed = meter
        .u64_counter("traces_service_graph_request_failed_total")
        .with_description("Failed requests from client to server: 5xx (servicegraph connector)")
        .build();
    let server_s = meter
        .f64_histogram("traces_service_graph_request_server_seconds")
        .with_unit("s")
        .with_boundaries(LATENCY_BUCKETS_S.to_vec())
        .build();
    let client_s = meter
        .f64_histogram("traces_service_graph_request_client_seconds")
        .with_unit("s")
        .with_boundaries(LATENCY_BUCKETS_S.to_vec())
        .build();
    let mut graph_labels: BTreeMap<LinkKey, [KeyValue; 3]> = BTreeMap::new();
    for r in run.links {
        let Some(http) = &r.link.http else { continue };
        if http.requests == 0 {
            continue;
        }
        let labels = [
            KeyValue::new("client", r.link.client.clone()),
            KeyValue::new("server", r.link.server.clone()),
            KeyValue::new("connection_type", connection_type(r)),
        ];
        requests.add(http.requests, &labels);
        failed.add(http.status.failed.unwrap_or(http.status.s5xx), &labels);
        graph_labels.insert((r.link.client.clone(), r.link.server.clone()), labels);
    }
    for e in run.exchanges {
        let Some(labels) = graph_labels.get(&e.link) else {
            continue;
        };
        if let Some(s) = e.client_s {
            client_s.record(s, labels);
        }
        if let Some(s) = e.server_s {
            server_s.record(s, labels);
        }
    }
    record_link_measures(&meter, run);
}

/// linkrank's own per-link gauges (docs/otel.md).
fn record_link_measures(meter: &opentelemetry::metrics::Meter, run: &RunExport<'_>) {
    let gauge = |name: &'static str, unit: &'static str, what: &'static str| {
        meter
            .f64_gauge(name)
            .with_unit(unit)
            .with_description(what)
            .build()
    };
    let score = gauge(
        "linkrank.link.score",
        "1",
        "Migration score (docs/ranking.md)",
    );
    let rank = gauge("linkrank.link.rank", "{rank}", "Rank of the link, 1 = best");
    let handshakes = gauge(
        "linkrank.link.handshake.rate",
        "{handshake}/s",
        "New TCP connections per second",
    );
    let header = gauge(
        "linkrank.link.request.header.size",
        "By",
        "Header bytes per request, both directions; state = now, http2 or grpc",
    );
    let body = gauge(
        "linkrank.link.request.body.size",
        "By",
        "Body bytes per request, both directions; state = now or protobuf",
    );
    let bytes_saved = gauge(
        "linkrank.link.savings.bytes.rate",
        "By/s",
        "Bytes per second the recommended target saves",
    );
    let cpu_saved = gauge(
        "linkrank.link.savings.cpu.rate",
        "ms/s",
        "CPU milliseconds per second saved",
    );
    let latency_saved = gauge(
        "linkrank.link.savings.latency.rate",
        "ms/s",
        "Request latency milliseconds per second saved",
    );
    let handshakes_saved = gauge(
        "linkrank.link.savings.handshake.rate",
        "{handshake}/s",
        "Handshakes per second saved",
    );
    let depth = gauge(
        "linkrank.link.chain.depth",
        "{call}",
        "Deepest call chain the link sits in",
    );
    let critical = gauge(
        "linkrank.link.critical_path.share",
        "1",
        "Share of the root requests' latency spent on this link",
    );
    for r in run.links {
        let l = &r.link;
        let target = r.assessment.recommendation.target.as_str();
        let attrs = [
            KeyValue::new("client", l.client.clone()),
            KeyValue::new("server", l.server.clone()),
            KeyValue::new("protocol", l.protocol.clone()),
            KeyValue::new("linkrank.target", target),
        ];
        score.record(r.score, &attrs);
        rank.record(f64::from(r.rank), &attrs);
        if let Some(secs) = run.capture_seconds.filter(|s| *s > 0.0) {
            handshakes.record(l.tcp_handshakes as f64 / secs, &attrs);
        }
        let s = &r.assessment.savings;
        let with_state = |state: &'static str| {
            let mut a = attrs.to_vec();
            a.push(KeyValue::new("state", state));
            a
        };
        for (state, v) in [
            ("now", s.header_bytes_per_request.now),
            ("http2", s.header_bytes_per_request.http2),
            ("grpc", s.header_bytes_per_request.grpc),
        ] {
            if let Some(v) = v {
                header.record(v, &with_state(state));
            }
        }
        for (state, v) in [
            ("now", s.body_bytes_per_request.now),
            ("protobuf", s.body_bytes_per_request.protobuf),
        ] {
            if let Some(v) = v {
                body.record(v, &with_state(state));
            }
        }
        for (g, v) in [
            (&bytes_saved, s.bytes_per_s_saved),
            (&cpu_saved, s.cpu_ms_per_s_saved),
            (&latency_saved, s.latency_ms_per_s_saved),
            (&handshakes_saved, s.handshakes_per_s_saved),
        ] {
            if let Some(v) = v {
                g.record(v, &attrs);
            }
        }
        if let Some(c) = &r.chain {
            if let Some(d) = c.max_depth {
                depth.record(f64::from(d), &attrs);
            }
            if let Some(share) = c.critical_path_share.latency {
                critical.record(share, &attrs);
            }
        }
    }
}

/// One span for the run, with a child per stage laid end to end from the run's start.
fn record_spans(provider: &SdkTracerProvider, run: &RunExport<'_>) {
    let tracer = provider.tracer("linkrank");
    let root = tracer
        .span_builder(run.run_name)
        .with_start_time(run.started)
        .with_attributes([KeyValue::new("linkrank.links", run.links.len() as i64)])
        .start(&tracer);
    let cx = Context::current_with_span(root);
    let mut at = run.started;
    for &(stage, ms) in run.stages {
        let end = at + Duration::from_secs_f64(ms.max(0.0) / 1e3);
        let mut span = tracer
            .span_builder(stage)
            .with_start_time(at)
            .start_with_context(&tracer, &cx);
        span.end_with_timestamp(end);
        at = end;
    }
    cx.span().end_with_timestamp(at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_urls_are_the_base_and_the_path() {
        assert_eq!(
            signal_url("http://127.0.0.1:4318/", "v1/metrics"),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            signal_url("http://c:4318", "v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
