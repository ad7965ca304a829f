use std::sync::Arc;

use polars::prelude::*;

use super::*;

const MS: u64 = 1_000_000;

/// A call seen from both sides: client span [start, start + 10 ms], server span 1 ms
/// inside it.
fn call(caller: &str, callee: &str, trace: u128, client_span: u64, start: u64) -> SpanCall {
    SpanCall {
        trace_id: trace,
        client_span_id: Some(client_span),
        server_span_id: Some(client_span + 1000),
        server_parent_span_id: Some(client_span),
        client_port: None,
        caller: Arc::from(caller),
        callee: Arc::from(callee),
        kind: SpanCallKind::Sync,
        virtual_callee: false,
        broker: None,
        name: Arc::from("GET /orders/{id}"),
        method: Some(Arc::from("GET")),
        route: Some(Arc::from("/orders/{id}")),
        path: None,
        status_code: Some(200),
        error: false,
        client_start_ns: Some(start),
        client_end_ns: Some(start + 10 * MS),
        server_start_ns: Some(start + MS),
        server_end_ns: Some(start + 9 * MS),
        request_body_size: None,
        response_body_size: None,
        protocol_version: None,
        rpc_system: None,
        grpc_status: None,
        db_system: None,
        destination: None,
        rule: crate::ingest::traces::CallRule::ClientServer,
        skew_ns: 0,
        parent_call: None,
    }
}

struct Ex {
    client: &'static str,
    server: &'static str,
    method: &'static str,
    status: u32,
    start: i64,
    trace: Option<(u128, u64)>,
    port: u32,
}

fn table(rows: &[Ex]) -> DataFrame {
    let n = rows.len();
    df!(
        "conn_id" => (0..n as u64).collect::<Vec<_>>(),
        "index" => vec![0u32; n],
        "client_ip" => rows.iter().map(|r| r.client).collect::<Vec<_>>(),
        "server_ip" => rows.iter().map(|r| r.server).collect::<Vec<_>>(),
        "server_port" => vec![8080u32; n],
        "client_port" => rows.iter().map(|r| r.port).collect::<Vec<_>>(),
        "method" => rows.iter().map(|r| Some(r.method)).collect::<Vec<_>>(),
        "status" => rows.iter().map(|r| Some(r.status)).collect::<Vec<_>>(),
        "req_first_ns" => rows.iter().map(|r| Some(r.start)).collect::<Vec<_>>(),
        "req_last_ns" => rows.iter().map(|r| Some(r.start + 500_000)).collect::<Vec<_>>(),
        "resp_first_ns" => rows.iter().map(|r| Some(r.start + 9_500_000)).collect::<Vec<_>>(),
        "resp_last_ns" => rows.iter().map(|r| Some(r.start + 10_000_000)).collect::<Vec<_>>(),
        "trace_id" => rows.iter().map(|r| r.trace.map(|t| format!("{:032x}", t.0))).collect::<Vec<_>>(),
        "parent_span_id" => rows.iter().map(|r| r.trace.map(|t| format!("{:016x}", t.1))).collect::<Vec<_>>(),
    )
    .unwrap()
}

#[test]
fn traceparent_matches_the_client_span_or_the_server_spans_parent() {
    let mut calls = vec![
        call("gateway", "orders", 7, 0x11, 1_000 * MS),
        call("orders", "users", 7, 0x22, 1_002 * MS),
    ];
    // The caller of the second exported no span: only the server's parent id is left.
    calls[1].client_span_id = None;
    let ex = table(&[
        Ex {
            client: "10.0.0.1",
            server: "10.0.0.2",
            method: "GET",
            status: 200,
            start: 1_000_000_000,
            trace: Some((7, 0x11)),
            port: 40000,
        },
        Ex {
            client: "10.0.0.2",
            server: "10.0.0.3",
            method: "GET",
            status: 200,
            start: 1_002_000_000,
            trace: Some((7, 0x22)),
            port: 40000,
        },
        Ex {
            client: "10.0.0.2",
            server: "10.0.0.3",
            method: "GET",
            status: 200,
            start: 1_004_000_000,
            trace: Some((7, 0x99)),
            port: 40000,
        },
    ]);
    let j = join(&ex, &calls, &JoinConfig::default()).unwrap();
    assert_eq!(j.exchange_call[0], Some((0, MatchRule::Traceparent)));
    assert_eq!(j.exchange_call[1], Some((1, MatchRule::Traceparent)));
    assert_eq!(j.exchange_call[2], None);
    assert_eq!(j.stats.traceparent_unknown, 1);
    assert_eq!(j.stats.by_traceparent, 2);
    // Server span midpoint (start + 5 ms) = wire midpoint (start + 5 ms): no offset.
    assert_eq!(j.stats.clock_offset_ms, Some(0.0));
    let orders = j
        .names
        .servers
        .get(&("10.0.0.2".parse().unwrap(), 8080))
        .unwrap();
    assert_eq!(orders.names().next(), Some("orders"));
    let caller = j.names.clients.get(&"10.0.0.2".parse().unwrap()).unwrap();
    assert_eq!(caller.names().next(), Some("orders"));
    assert_eq!(j.stats.named_endpoints, 4);
}

#[test]
fn without_ids_the_offset_is_estimated_and_nearest_calls_are_matched() {
    // Trace clocks 25 ms ahead; calls 40 ms apart, exchanges in the same rhythm.
    let skew = 25 * MS;
    let calls: Vec<SpanCall> = (0..20u64)
        .map(|k| {
            call(
                "gateway",
                "orders",
                100 + u128::from(k),
                1 + k,
                1_000 * MS + k * 40 * MS + skew,
            )
        })
        .collect();
    let rows: Vec<Ex> = (0..20i64)
        .map(|k| Ex {
            client: "10.0.0.1",
            server: "10.0.0.2",
            method: "GET",
            status: 200,
            start: 1_000_000_000 + k * 40_000_000,
            trace: None,
            port: 40000,
        })
        .collect();
    let j = join(&table(&rows), &calls, &JoinConfig::default()).unwrap();
    assert_eq!(j.stats.by_time, 20);
    for (r, m) in j.exchange_call.iter().enumerate() {
        assert_eq!(*m, Some((r as u32, MatchRule::Time)), "exchange {r}");
    }
    assert_eq!(j.stats.clock_offset_ms, Some(25.0));
    assert_eq!(j.stats.exchange_coverage, Some(1.0));
}

#[test]
fn time_rule_never_pairs_different_methods_or_statuses() {
    let mut calls = vec![call("gateway", "orders", 1, 1, 1_000 * MS)];
    calls[0].method = Some(Arc::from("POST"));
    let rows = [Ex {
        client: "10.0.0.1",
        server: "10.0.0.2",
        method: "GET",
        status: 200,
        start: 1_000_000_000,
        trace: None,
        port: 40000,
    }];
    let j = join(&table(&rows), &calls, &JoinConfig::default()).unwrap();
    assert_eq!(j.stats.matched, 0);
    calls[0].method = Some(Arc::from("GET"));
    calls[0].status_code = Some(503);
    let j = join(&table(&rows), &calls, &JoinConfig::default()).unwrap();
    assert_eq!(j.stats.matched, 0);
    calls[0].status_code = Some(200);
    let j = join(&table(&rows), &calls, &JoinConfig::default()).unwrap();
    assert_eq!(j.stats.matched, 1);
}

#[test]
fn the_client_port_a_server_span_recorded_picks_the_connection() {
    // Two concurrent roots with no ids: timing alone would pair them crosswise.
    let mut calls = vec![
        call("user", "gateway", 1, 1, 1_000 * MS + 2 * MS),
        call("user", "gateway", 2, 2, 1_000 * MS),
    ];
    calls[0].client_port = Some(40001);
    calls[1].client_port = Some(40002);
    let rows = [
        Ex {
            client: "10.0.0.1",
            server: "10.0.0.2",
            method: "GET",
            status: 200,
            start: 1_000_000_000,
            trace: None,
            port: 40001,
        },
        Ex {
            client: "10.0.0.1",
            server: "10.0.0.2",
            method: "GET",
            status: 200,
            start: 1_002_000_000,
            trace: None,
            port: 40002,
        },
    ];
    let j = join(&table(&rows), &calls, &JoinConfig::default()).unwrap();
    assert_eq!(j.exchange_call[0], Some((0, MatchRule::Time)));
    assert_eq!(j.exchange_call[1], Some((1, MatchRule::Time)));
}
