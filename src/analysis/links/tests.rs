use super::frame::is_json;
use super::*;

#[test]
fn json_media_types() {
    assert!(is_json(Some("application/json")));
    assert!(is_json(Some("Application/JSON")));
    assert!(is_json(Some("application/problem+json")));
    assert!(is_json(Some("application/vnd.api+json")));
    assert!(!is_json(Some("application/x-ndjson2")));
    assert!(!is_json(Some("text/html")));
    assert!(!is_json(None));
}

#[test]
fn counts_sort_by_requests_then_value_and_keep_the_top() {
    let m = BTreeMap::from([
        ("b".to_string(), 3u64),
        ("a".to_string(), 3),
        ("c".to_string(), 9),
        ("d".to_string(), 1),
    ]);
    let v = sorted_counts(m, 3);
    let got: Vec<(&str, u64)> = v.iter().map(|c| (c.value.as_str(), c.count)).collect();
    assert_eq!(got, [("c", 9), ("a", 3), ("b", 3)]);
}

/// Four exchanges on one link: a response stall of 40 ms, one of 44 ms on an exchange whose
/// request also stalled 10 ms, and two without stall; its connection saw three zero
/// windows and one retransmission timeout.
#[test]
fn stalls_zero_windows_and_timeouts_per_link() {
    use crate::analysis::identity::Naming;
    use crate::ingest::http::Record;
    use crate::model::*;
    use crate::tables::{columns, TableBuilder};
    use polars::prelude::{Column, DataType};
    use std::net::{IpAddr, Ipv4Addr};

    const MS: i64 = 1_000_000;
    let client = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
    let server = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 8080);
    let mut b = TableBuilder::default();
    let stalls = [
        (None, Some(40 * MS)),
        (Some(10 * MS), Some(44 * MS)),
        (None, None),
        (None, None),
    ];
    for (i, (req, resp)) in stalls.into_iter().enumerate() {
        let mut x = Exchange::new(ConnId(0), i as u32, client, server);
        x.method = Some("GET".into());
        x.route = Some("/users/{id}".into());
        x.status = Some(200);
        x.req_stall_ns = req;
        x.resp_stall_ns = resp;
        b.push(Record::Exchange(x));
    }
    let tcp = TcpSummary {
        conn: ConnId(0),
        client,
        server,
        first_packet: Timestamp(0),
        last_packet: Timestamp(1_000 * MS),
        syn: None,
        syn_ack: None,
        handshake_ack: None,
        handshake_seen: false,
        roles_inferred: true,
        client_to_server: DirStats {
            packets: 9,
            bytes: 400,
            zero_windows: 1,
            ..Default::default()
        },
        server_to_client: DirStats {
            packets: 9,
            bytes: 900,
            zero_windows: 2,
            retransmission_timeouts: 1,
            ..Default::default()
        },
        close: CloseReason::Fin,
    };
    b.push(Record::Connection(Connection {
        tcp,
        protocol: L7Protocol::Http11,
        upgraded_to: None,
        exchanges: 4,
        malformed_messages: 0,
        tls_sni: None,
        tls_alpn: None,
        tls_handshake: Default::default(),
        tls_decryption: None,
        tls_estimate: None,
        h2: None,
    }));
    let mut tables = b.finish().unwrap();
    let set = measure(&tables, &Naming::default(), 10).unwrap();
    assert_eq!(set.links.len(), 1);
    let l = &set.links[0];
    let h = l.http.as_ref().unwrap();
    // Percentiles interpolate linearly, as polars does.
    let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 1e-9);
    assert_eq!(h.stalled_requests, 2);
    let r = h.response_stalls;
    assert_eq!(r.stalled, 2);
    assert!(near(r.p50_ms, 42.0) && near(r.p95_ms, 43.8), "{r:?}");
    assert_eq!(h.request_stalls.stalled, 1);
    assert!(near(h.request_stalls.p50_ms, 10.0));
    // Per request: 40, 54, 0, 0 ms.
    let c = h.stall_ms;
    assert!(
        near(c.mean, 23.5) && near(c.p50, 20.0) && near(c.p99, 53.58),
        "{c:?}"
    );
    assert_eq!(
        (l.zero_window_events, l.retransmission_timeouts),
        (Some(3), Some(1))
    );
    let route = &l.routes[0].http;
    assert_eq!(route.stalled_requests, 2);

    // Connections read from tables written before the counts existed: unknown, not 0.
    for c in [
        columns::C2S_ZERO_WINDOWS,
        columns::S2C_ZERO_WINDOWS,
        columns::C2S_RETRANSMISSION_TIMEOUTS,
        columns::S2C_RETRANSMISSION_TIMEOUTS,
    ] {
        let height = tables.connections.height();
        tables
            .connections
            .with_column(Column::full_null(c.into(), height, &DataType::UInt64))
            .unwrap();
    }
    let l = &measure(&tables, &Naming::default(), 10).unwrap().links[0];
    assert_eq!(
        (l.zero_window_events, l.retransmission_timeouts),
        (None, None)
    );
}

/// The fold of the HTTP link and route measures against polars' group-by over the whole
/// frame.
mod fold {
    use std::path::PathBuf;

    use polars::prelude::*;

    use crate::analysis::identity::{self, NameSources, Observed};
    use crate::analysis::links::fold::http::ROUTE_KEY;
    use crate::analysis::links::fold::{in_blocks, roll_up, ConnFold, HttpFold, PeriodicFold};
    use crate::analysis::links::frame::{
        connections_frame, exchanges_frame, name_rows, Derivation,
    };
    use crate::analysis::links::group_by_reference::{
        aggregate_connections, aggregate_http, periodic_failures,
    };
    use crate::analysis::links::measure::{
        connection_measures, folded_conn_parts, folded_parts, http_measures,
    };
    use crate::analysis::links::samples::EXACT_SAMPLES;
    use crate::app::{run_captures, PipelineConfig};
    use crate::tables::columns;

    /// The tables of a capture of the repository and the names of their endpoints.
    fn named_tables(capture: &str) -> (crate::tables::Tables, identity::Naming) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(capture);
        let (_, rows, _) = run_captures(&[path], PipelineConfig::default(), None).unwrap();
        let tables = rows.finish().unwrap();
        let observed = Observed::from_tables(&tables.exchanges, &tables.connections, None).unwrap();
        let naming = identity::resolve(&NameSources::default(), &observed);
        (tables, naming)
    }

    /// `a` and `b` alike, numbers within `tol` of each other relative to their size.
    fn same(a: &serde_json::Value, b: &serde_json::Value, tol: f64, at: &str) {
        use serde_json::Value as V;
        match (a, b) {
            (V::Number(x), V::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!(
                    (x - y).abs() <= tol * x.abs().max(y.abs()).max(1e-9),
                    "{at}: {x} vs {y}"
                );
            }
            (V::Object(x), V::Object(y)) => {
                assert_eq!(
                    x.keys().collect::<Vec<_>>(),
                    y.keys().collect::<Vec<_>>(),
                    "{at}"
                );
                for (k, v) in x {
                    same(v, &y[k], tol, &format!("{at}.{k}"));
                }
            }
            (V::Array(x), V::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (i, (v, w)) in x.iter().zip(y).enumerate() {
                    same(v, w, tol, &format!("{at}[{i}]"));
                }
            }
            _ => assert_eq!(a, b, "{at}"),
        }
    }

    /// The measures whose percentiles a sketch gives, and the column each is read from.
    const SKETCHED: [(&str, &str); 5] = [
        ("latency_ms", columns::TTFB_MS),
        ("latency_total_ms", columns::TOTAL_MS),
        ("stall_ms", columns::STALL_MS),
        ("request_stalls", columns::REQ_STALL_MS),
        ("response_stalls", columns::RESP_STALL_MS),
    ];

    /// The group's values of `column`, sorted (nulls left out).
    fn group_values(ex: &DataFrame, key: &[Option<String>], column: &str) -> Vec<f64> {
        let rows = (0..ex.height()).filter(|&i| {
            ROUTE_KEY
                .iter()
                .zip(key)
                .all(|(c, k)| ex.column(c).unwrap().str().unwrap().get(i) == k.as_deref())
        });
        let c = ex.column(column).unwrap().cast(&DataType::Float64).unwrap();
        let c = c.f64().unwrap();
        let mut v: Vec<f64> = rows.filter_map(|i| c.get(i)).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Each percentile of `ours` (a sketch's) is within 1% of the values either side of
    /// its rank among the group's `values`: what DDSketch promises. The exact figure
    /// interpolates between those two, so at a sparse tail the two can differ by more.
    fn within_rank(ours: &serde_json::Value, exact: &serde_json::Value, values: &[f64], at: &str) {
        for (q, name) in [(0.50, "p50"), (0.95, "p95"), (0.99, "p99")] {
            let (Some(got), Some(_)) = (ours.get(name), exact.get(name)) else {
                continue;
            };
            assert_eq!(got.is_null(), exact[name].is_null(), "{at}.{name}");
            let Some(got) = got.as_f64() else { continue };
            let pos = q * (values.len() - 1) as f64;
            let (lo, hi) = (values[pos.floor() as usize], values[pos.ceil() as usize]);
            let slack = 0.0101 * lo.abs().max(hi.abs());
            assert!(
                got >= lo - slack && got <= hi + slack,
                "{at}.{name}: {got} not in {lo}..{hi}"
            );
        }
    }

    /// The fold, fed in blocks of several sizes, gives every link's and route's figures
    /// as one polars group-by over the whole frame does, on real captures (HTTP/1.1 with
    /// stalls and retries, HTTP/2, gRPC): exactly while a group's latencies are kept
    /// exactly, within the sketch's 1% past that (the bound is lowered here so that the
    /// fixtures' groups pass it).
    #[test]
    fn the_fold_measures_what_a_group_by_over_the_whole_frame_measures() {
        let captures = [
            "captures/prod.pcap",
            "fixtures/grpc_vs_json.pcap",
            "fixtures/h2/grpc_kinds.pcap",
            "fixtures/h2/h2c_prior_nginx.pcap",
            "fixtures/keepalive.pcap",
        ];
        let (mut sketched, mut found_periodic) = (0, 0);
        for capture in captures {
            let (tables, naming) = named_tables(capture);
            let names = name_rows(&tables.exchanges, &naming).unwrap();
            let ex = exchanges_frame(&tables.exchanges, &tables.connections, &names).unwrap();
            assert!(ex.height() > 0, "{capture}");
            for (block, bound) in [(7, 40), (1000, EXACT_SAMPLES), (usize::MAX, 300)] {
                // Derived and folded a block at a time, as `measure` does.
                let derivation =
                    Derivation::new(&tables.exchanges, &tables.connections, &names).unwrap();
                let mut fold = HttpFold::with_exact_samples(bound);
                let mut periodic = PeriodicFold::default();
                let mut offset = 0;
                while offset < derivation.rows() {
                    let b = derivation.block(offset, block).unwrap();
                    fold.add(&b).unwrap();
                    periodic.add(&b).unwrap();
                    offset = offset.saturating_add(block);
                }
                let want_periodic = periodic_failures(&ex).unwrap();
                assert_eq!(periodic.periodic(), want_periodic, "{capture}");
                found_periodic += want_periodic.len();
                let routes = fold.finish();
                for (width, groups) in [(2, roll_up(&routes, 2)), (4, routes.clone())] {
                    let (agg, counts) = folded_parts(groups);
                    let got = http_measures(&agg, &counts, Some(10.0)).unwrap();
                    let want = aggregate_http(&ex, &ROUTE_KEY[..width], Some(10.0)).unwrap();
                    assert_eq!(
                        got.keys().collect::<Vec<_>>(),
                        want.keys().collect::<Vec<_>>()
                    );
                    for (key, m) in &got {
                        let at = format!("{capture} {key:?}");
                        let mut a = serde_json::to_value(m).unwrap();
                        let mut b = serde_json::to_value(&want[key]).unwrap();
                        if m.requests as usize > bound {
                            sketched += 1;
                            for (field, column) in SKETCHED {
                                let (ours, exact) = (a[field].take(), b[field].take());
                                let values = group_values(&ex, &key[..], column);
                                within_rank(&ours, &exact, &values, &format!("{at}.{field}"));
                            }
                        }
                        same(&a, &b, 1e-9, &at);
                    }
                }
            }
        }
        // The demo's busiest links pass the exact bound, so the sketch is checked too; its
        // payments route fails every n-th request.
        assert!(sketched > 0);
        assert!(found_periodic > 0);
    }

    /// The connection fold gives every link's connection figures (handshakes, TLS,
    /// resets, retransmissions, zero windows, gaps, requests per connection) as one polars
    /// group-by over the whole frame does, on real captures; the bound on exact samples
    /// is lowered so that the sketch is checked on the demo's busiest links.
    #[test]
    fn the_connection_fold_measures_what_a_group_by_over_the_whole_frame_measures() {
        let captures = [
            "captures/prod.pcap",
            "fixtures/tls/tls13.pcap",
            "fixtures/tls_sni.pcap",
            "fixtures/transport/transport.pcap",
            "fixtures/lost_segment.pcap",
            "fixtures/new_conn_per_request.pcap",
        ];
        let mut sketched = 0;
        for capture in captures {
            let (tables, naming) = named_tables(capture);
            let names = name_rows(&tables.connections, &naming).unwrap();
            let cn = connections_frame(&tables.connections, &names).unwrap();
            assert!(cn.height() > 0, "{capture}");
            let want = aggregate_connections(&cn).unwrap();
            for (block, bound) in [(3, 4), (64, EXACT_SAMPLES), (usize::MAX, 10)] {
                let mut fold = ConnFold::with_exact_samples(bound);
                in_blocks(&cn, block, |b| fold.add(b)).unwrap();
                let (agg, counts) = folded_conn_parts(fold.finish());
                let got = connection_measures(&agg, &counts).unwrap();
                assert_eq!(
                    got.keys().collect::<Vec<_>>(),
                    want.keys().collect::<Vec<_>>()
                );
                for (key, m) in &got {
                    let at = format!("{capture} {key:?}");
                    let mut a = serde_json::to_value(m).unwrap();
                    let mut b = serde_json::to_value(&want[key]).unwrap();
                    let rows = group_rows(&cn, key);
                    // Percentiles a sketch gave: within 1% of the values at their rank.
                    for (field, column, scale, n) in [
                        ("handshake_rtt_ms", columns::HANDSHAKE_RTT_NS, 1e6, rows.0),
                        ("tls_ms", columns::TLS_HANDSHAKE_NS, 1e6, rows.1),
                        ("per_connection", columns::EXCHANGES, 1.0, rows.2),
                    ] {
                        if n > bound {
                            sketched += 1;
                            let values = link_values(&cn, key, column, scale);
                            let (ours, exact) = (a[field].take(), b[field].take());
                            within_rank(&ours, &exact, &values, &format!("{at}.{field}"));
                            if field == "per_connection" {
                                for f in ["mean", "max", "single_request_connections"] {
                                    same(&ours[f], &exact[f], 1e-9, &format!("{at}.{f}"));
                                }
                            }
                        }
                    }
                    same(&a, &b, 1e-9, &at);
                }
            }
        }
        assert!(sketched > 0);
    }

    /// Per link: connections with a handshake RTT, with a TLS handshake time, carrying
    /// HTTP.
    fn group_rows(cn: &DataFrame, key: &(String, String)) -> (usize, usize, usize) {
        let count = |column: &str, scale: f64| link_values(cn, key, column, scale).len();
        (
            count(columns::HANDSHAKE_RTT_NS, 1e6),
            count(columns::TLS_HANDSHAKE_NS, 1e6),
            count(columns::EXCHANGES, 1.0),
        )
    }

    /// A link's values of `column` divided by `scale`, sorted (nulls left out; for
    /// `exchanges`, only connections that carried HTTP).
    fn link_values(cn: &DataFrame, key: &(String, String), column: &str, scale: f64) -> Vec<f64> {
        let of = |c: &str, i: usize| {
            cn.column(c)
                .unwrap()
                .str()
                .unwrap()
                .get(i)
                .map(str::to_owned)
        };
        let c = cn.column(column).unwrap().cast(&DataType::Float64).unwrap();
        let c = c.f64().unwrap();
        let mut v: Vec<f64> = (0..cn.height())
            .filter(|&i| {
                of(columns::CLIENT, i).as_deref() == Some(key.0.as_str())
                    && of(columns::SERVER, i).as_deref() == Some(key.1.as_str())
            })
            .filter_map(|i| c.get(i).map(|x| x / scale))
            .filter(|&x| column != columns::EXCHANGES || x > 0.0)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }
}
