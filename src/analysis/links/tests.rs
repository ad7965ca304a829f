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
