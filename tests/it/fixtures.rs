//! linkrank against the repository's own real captures (fixtures/, made by
//! fixtures/scripts/make_all.sh), compared with the figures tshark gave for each one
//! (fixtures/expected/*.json, written by fixtures/scripts/expected.sh).

use crate::common::*;
use linkrank::ingest::http::route;
use serde_json::Value;

fn expected(name: &str) -> Value {
    let path = repo(&format!("fixtures/expected/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing"))
}

/// Our requests as (method, route), in the order their last byte was captured (tshark's
/// frame order). Ties (pipelined requests in one segment) keep their order on the
/// connection.
fn requests_in_capture_order(t: &linkrank::tables::Tables) -> Vec<(String, String)> {
    let x = &t.exchanges;
    let mut rows: Vec<((i64, u64, u64), String, String)> = strs(x, "method")
        .into_iter()
        .zip(strs(x, "route"))
        .zip(
            i64s(x, "req_last_ns")
                .into_iter()
                .zip(u64s(x, "conn_id"))
                .zip(u64s(x, "index")),
        )
        .filter_map(|((m, r), ((t, c), i))| Some(((t?, c?, i?), m?, r.unwrap_or_default())))
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, m, r)| (m, r)).collect()
}

/// tshark's requests as (method, route template of its URI), in frame order.
fn tshark_requests(exp: &Value) -> Vec<(String, String)> {
    exp["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let uri = r["uri"].as_str().unwrap();
            (
                r["method"].as_str().unwrap().to_owned(),
                route::template(uri),
            )
        })
        .collect()
}

/// What every fixture must agree with tshark on. Returns the tables for further checks.
fn check_against_tshark(file: &str) -> linkrank::tables::Tables {
    let name = file.split('.').next().unwrap();
    let exp = expected(name);
    let (t, cov) = analyse(&[repo(&format!("fixtures/{file}"))]);
    let c = &t.connections;

    assert_eq!(cov.packets, n(&exp, "packets"), "{file}: packets");
    assert_eq!(
        cov.tcp_segments,
        n(&exp, "tcp_segments"),
        "{file}: TCP segments"
    );
    assert_eq!(
        c.height() as u64,
        n(&exp, "tcp_conversations"),
        "{file}: connections"
    );
    let syns = i64s(c, "syn_ns").iter().filter(|s| s.is_some()).count() as u64;
    assert_eq!(
        syns,
        n(&exp, "syn"),
        "{file}: connections whose SYN was seen"
    );

    let ours = requests_in_capture_order(&t);
    let theirs = tshark_requests(&exp);
    assert_eq!(
        ours, theirs,
        "{file}: requests (method, route) in capture order"
    );
    assert_eq!(
        ours.len() as u64,
        n(&exp, "http_requests"),
        "{file}: request count"
    );

    // Payload bytes each way: linkrank counts each byte once; tshark sums tcp.len, which
    // equals that when nothing was retransmitted (true of every fixture).
    assert_eq!(n(&exp, "retransmissions"), 0, "{file}: fixture assumption");
    let bytes = &exp["tcp_payload_bytes"];
    assert_eq!(
        sum(c, "c2s_bytes"),
        n(bytes, "client_to_server"),
        "{file}: client->server bytes"
    );
    assert_eq!(
        sum(c, "s2c_bytes"),
        n(bytes, "server_to_client"),
        "{file}: server->client bytes"
    );
    t
}

/// Statuses of final responses in response order, plus the 1xx count.
fn statuses(t: &linkrank::tables::Tables) -> (Vec<u64>, u64) {
    let x = &t.exchanges;
    let mut rows: Vec<(i64, u64)> = u64s(x, "status")
        .into_iter()
        .zip(i64s(x, "resp_first_ns"))
        .filter_map(|(s, t)| Some((t?, s?)))
        .collect();
    rows.sort();
    (
        rows.into_iter().map(|r| r.1).collect(),
        sum(x, "interim_responses"),
    )
}

fn tshark_statuses(name: &str) -> Vec<u64> {
    expected(name)["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_u64().unwrap())
        .collect()
}

/// On a complete HTTP connection every payload byte belongs to a header block or a body.
fn assert_bytes_all_accounted(t: &linkrank::tables::Tables) {
    let x = &t.exchanges;
    let c = &t.connections;
    assert_eq!(
        sum(x, "req_header_bytes") + sum(x, "req_body_bytes"),
        sum(c, "c2s_bytes"),
        "client bytes = headers + bodies"
    );
    assert_eq!(
        sum(x, "resp_header_bytes") + sum(x, "resp_body_bytes"),
        sum(c, "s2c_bytes"),
        "server bytes = headers + bodies"
    );
}

fn all_complete(t: &linkrank::tables::Tables) {
    let c = strs(&t.exchanges, "completeness");
    assert!(c.iter().all(|c| c.as_deref() == Some("complete")), "{c:?}");
}

#[test]
fn keepalive_one_connection_many_exchanges() {
    let t = check_against_tshark("keepalive.pcap");
    assert_eq!(statuses(&t).0, tshark_statuses("keepalive"));
    assert_eq!(u64s(&t.connections, "exchanges"), vec![Some(7)]);
    assert!(bools(&t.connections, "handshake_seen")[0]);
    assert_eq!(
        strs(&t.connections, "protocol")[0].as_deref(),
        Some("http/1.1")
    );
    assert_eq!(strs(&t.connections, "close")[0].as_deref(), Some("fin"));
    all_complete(&t);
    assert_bytes_all_accounted(&t);
    // The HEAD response declares a length but carries no body.
    let x = &t.exchanges;
    let head = strs(x, "method")
        .iter()
        .position(|m| m.as_deref() == Some("HEAD"))
        .unwrap();
    assert_eq!(u64s(x, "resp_body_bytes")[head], Some(0));
    // Exchanges are numbered along the connection.
    let mut idx: Vec<u64> = u64s(x, "index").into_iter().flatten().collect();
    idx.sort();
    assert_eq!(idx, (0..7).collect::<Vec<_>>());
}

#[test]
fn new_connection_per_request() {
    let t = check_against_tshark("new_conn_per_request.pcap");
    assert_eq!(statuses(&t).0, tshark_statuses("new_conn_per_request"));
    assert!(u64s(&t.connections, "exchanges")
        .iter()
        .all(|e| *e == Some(1)));
    // Every connection paid a handshake whose RTT is SYN -> ACK, positive on loopback-ish veth.
    assert!(i64s(&t.connections, "handshake_rtt_ns")
        .iter()
        .all(|r| matches!(r, Some(r) if *r > 0)));
    all_complete(&t);
    assert_bytes_all_accounted(&t);
}

#[test]
fn pipelined_requests_pair_in_order() {
    let t = check_against_tshark("pipelined.pcap");
    assert_eq!(statuses(&t).0.len(), 4);
    all_complete(&t);
    assert_bytes_all_accounted(&t);
    // All four requests arrived in one segment: same first-byte time, and each response
    // starts no earlier than the request it answers.
    let x = &t.exchanges;
    let firsts: Vec<i64> = i64s(x, "req_first_ns").into_iter().flatten().collect();
    assert!(firsts.iter().all(|f| *f == firsts[0]), "{firsts:?}");
    for (rq, rs) in i64s(x, "req_last_ns").iter().zip(i64s(x, "resp_first_ns")) {
        assert!(rs.unwrap() >= rq.unwrap());
    }
}

#[test]
fn chunked_bodies_are_measured_without_framing() {
    let t = check_against_tshark("chunked.pcap");
    assert_eq!(statuses(&t).0, tshark_statuses("chunked"));
    all_complete(&t);
    assert_bytes_all_accounted(&t);
    let x = &t.exchanges;
    let chunked = bools(x, "chunked_response");
    assert!(chunked.iter().any(|c| *c));
    for ((c, wire), len) in chunked
        .iter()
        .zip(u64s(x, "resp_body_bytes"))
        .zip(u64s(x, "resp_body_len"))
    {
        if *c {
            assert!(
                wire.unwrap() > len.unwrap(),
                "chunk framing adds bytes on the wire"
            );
        } else {
            assert_eq!(wire, len);
        }
    }
    // tshark's de-chunked body sizes ("File Data: N bytes", one per message with a body).
    let mut theirs = tshark_verbose_sizes("fixtures/chunked.pcap", "File Data: ");
    let mut ours: Vec<u64> = u64s(x, "req_body_len")
        .into_iter()
        .chain(u64s(x, "resp_body_len"))
        .flatten()
        .filter(|n| *n > 0)
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs);
}

/// The byte counts tshark prints after `label` in its verbose output, in frame order.
fn tshark_verbose_sizes(file: &str, label: &str) -> Vec<u64> {
    let file = repo(file);
    let out = tshark(&["-r", file.to_str().unwrap(), "-Y", "http", "-V"]);
    out.lines()
        .filter_map(|l| l.trim().strip_prefix(label))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn expect_100_continue_counts_interim_responses() {
    let t = check_against_tshark("expect_100.pcap");
    let (finals, interim) = statuses(&t);
    let tshark_all = tshark_statuses("expect_100");
    assert_eq!(
        finals.len() as u64 + interim,
        tshark_all.len() as u64,
        "tshark counts 1xx as responses"
    );
    assert_eq!(
        interim,
        tshark_all.iter().filter(|c| **c == 100).count() as u64
    );
    assert_eq!(
        bools(&t.exchanges, "expect_continue")
            .iter()
            .filter(|b| **b)
            .count() as u64,
        interim
    );
    all_complete(&t);
    assert_bytes_all_accounted(&t);
}

#[test]
fn gzip_bodies_have_decoded_lengths() {
    let t = check_against_tshark("gzip.pcap");
    all_complete(&t);
    assert_bytes_all_accounted(&t);
    let x = &t.exchanges;
    let enc = strs(x, "resp_content_encoding");
    let decoded = u64s(x, "resp_body_decoded_len");
    let len = u64s(x, "resp_body_len");
    let mut gz = 0;
    for i in 0..x.height() {
        if enc[i].as_deref() == Some("gzip") {
            gz += 1;
            assert!(decoded[i].unwrap() > len[i].unwrap(), "JSON compresses");
        } else {
            assert_eq!(decoded[i], None, "no decoded length without an encoding");
        }
    }
    assert_eq!(gz, 2, "fixtures/README: two gzip responses, two plain");
    // tshark: "Content-encoded entity body (gzip): <sent> bytes -> <decoded> bytes".
    let file = repo("fixtures/gzip.pcap");
    let out = tshark(&["-r", file.to_str().unwrap(), "-Y", "http", "-V"]);
    let mut theirs: Vec<(u64, u64)> = out
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Content-encoded entity body (gzip): ")
        })
        .map(|rest| {
            let nums: Vec<u64> = rest.split(' ').filter_map(|w| w.parse().ok()).collect();
            (nums[0], nums[1])
        })
        .collect();
    let mut ours: Vec<(u64, u64)> = len
        .into_iter()
        .zip(decoded)
        .filter_map(|(l, d)| Some((l?, d?)))
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(
        ours, theirs,
        "decoded lengths equal tshark's uncompressed bodies"
    );
}

#[test]
fn large_body_over_many_segments() {
    let t = check_against_tshark("large_body.pcap");
    all_complete(&t);
    assert_bytes_all_accounted(&t);
    let max_body = u64s(&t.exchanges, "resp_body_bytes")
        .into_iter()
        .flatten()
        .max()
        .unwrap();
    assert!(max_body > 100_000, "{max_body}");
}

#[test]
fn lost_segment_is_a_gap_of_its_exact_length() {
    let t = check_against_tshark("lost_segment.pcap");
    let full = expected("large_body")["tcp_payload_bytes"]["server_to_client"]
        .as_u64()
        .unwrap();
    let seen = expected("lost_segment")["tcp_payload_bytes"]["server_to_client"]
        .as_u64()
        .unwrap();
    let c = &t.connections;
    assert_eq!(sum(c, "s2c_gaps"), 1);
    assert_eq!(
        sum(c, "s2c_gap_bytes"),
        full - seen,
        "the removed frame's payload"
    );
    assert_eq!(sum(c, "c2s_gaps"), 0);
    // The gap fell inside a Content-Length body: the exchange keeps its full size and is
    // marked, and the exchange after it is found intact. tshark cannot reassemble the
    // damaged response and so reports one response fewer (1); linkrank reports both.
    let x = &t.exchanges;
    let comp = strs(x, "completeness");
    assert_eq!(
        comp.iter().filter(|c| c.as_deref() == Some("gap")).count(),
        1,
        "{comp:?}"
    );
    assert_eq!(
        comp.iter()
            .filter(|c| c.as_deref() == Some("complete"))
            .count(),
        1,
        "{comp:?}"
    );
    assert_eq!(u64s(x, "status").iter().filter(|s| s.is_some()).count(), 2);
    let big = u64s(
        &expected_tables("large_body.pcap").exchanges,
        "resp_body_bytes",
    );
    let mut a: Vec<u64> = big.into_iter().flatten().collect();
    let mut b: Vec<u64> = u64s(x, "resp_body_bytes").into_iter().flatten().collect();
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "body sizes include the lost bytes, as in the undamaged capture"
    );
}

fn expected_tables(file: &str) -> linkrank::tables::Tables {
    analyse(&[repo(&format!("fixtures/{file}"))]).0
}

#[test]
fn midstream_capture_infers_roles() {
    let t = check_against_tshark("midstream.pcap");
    let c = &t.connections;
    assert_eq!(bools(c, "handshake_seen"), vec![false]);
    assert_eq!(bools(c, "roles_inferred"), vec![true]);
    // Same client and server as the full capture it was cut from.
    let full = expected_tables("keepalive.pcap");
    assert_eq!(strs(c, "server_ip"), strs(&full.connections, "server_ip"));
    assert_eq!(
        u64s(c, "server_port"),
        u64s(&full.connections, "server_port")
    );
    // The first response lost its request (removed with the handshake).
    let comp = strs(&t.exchanges, "completeness");
    assert_eq!(
        comp.iter()
            .filter(|c| c.as_deref() == Some("response_only"))
            .count(),
        1
    );
    assert_eq!(statuses(&t).0, tshark_statuses("midstream"));
}

#[test]
fn ipv6() {
    let t = check_against_tshark("ipv6.pcap");
    assert!(strs(&t.connections, "server_ip")
        .iter()
        .all(|ip| ip.as_deref() == Some("::1")));
    all_complete(&t);
}

#[test]
fn vlan_tagged_frames() {
    let t = check_against_tshark("vlan.pcap");
    all_complete(&t);
}

#[test]
fn linux_cooked_v1_and_v2() {
    let a = check_against_tshark("sll.pcap");
    let b = check_against_tshark("sll2.pcap");
    all_complete(&a);
    all_complete(&b);
}

#[test]
fn pcapng_with_two_interfaces() {
    let t = check_against_tshark("two_interfaces.pcapng");
    all_complete(&t);
}

#[test]
fn nanosecond_timestamps_keep_their_precision() {
    let t = check_against_tshark("nanosecond.pcap");
    let file = repo("fixtures/nanosecond.pcap");
    let first = tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-c",
        "1",
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
    ]);
    let (s, frac) = first.trim().split_once('.').unwrap();
    let ns: i64 = s.parse::<i64>().unwrap() * 1_000_000_000
        + format!("{frac:0<9}")[..9].parse::<i64>().unwrap();
    let firsts = i64s(&t.connections, "first_ns");
    assert_eq!(firsts.iter().flatten().min(), Some(&ns));
}

#[test]
fn truncated_capture_is_analysed_up_to_the_cut() {
    let (t, cov) = analyse(&[repo("fixtures/truncated.pcap")]);
    let exp = expected("truncated");
    assert_eq!(cov.packets, n(&exp, "packets"));
    assert_eq!(cov.input_warnings.len(), 1);
    assert!(
        cov.input_warnings[0].contains("truncated.pcap") && cov.input_warnings[0].contains("byte"),
        "{:?}",
        cov.input_warnings
    );
    let methods = strs(&t.exchanges, "method").into_iter().flatten().count() as u64;
    assert_eq!(methods, n(&exp, "http_requests"));
    let statuses = u64s(&t.exchanges, "status").into_iter().flatten().count() as u64;
    assert_eq!(statuses, n(&exp, "http_responses"));
}

#[test]
fn merged_captures_equal_the_sum_of_their_parts() {
    let parts = ["keepalive.pcap", "ipv6.pcap", "two_interfaces.pcapng"];
    let paths: Vec<_> = parts
        .iter()
        .map(|p| repo(&format!("fixtures/{p}")))
        .collect();
    let (t, cov) = analyse(&paths);
    let mut packets = 0;
    let mut exchanges = 0;
    for p in &parts {
        let e = expected(p.split('.').next().unwrap());
        packets += n(&e, "packets");
        exchanges += n(&e, "http_requests");
    }
    assert_eq!(cov.packets, packets);
    assert_eq!(t.exchanges.height() as u64, exchanges);
    let ids: std::collections::BTreeSet<u64> = u64s(&t.connections, "conn_id")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        ids.len(),
        t.connections.height(),
        "connection ids unique across files"
    );
}

/// The frames of a tunnelled capture, read by tshark with flannel's port decoded as VXLAN.
fn tshark_vxlan_fields(file: &str, filter: &str, field: &str) -> Vec<String> {
    let file = repo(file);
    tshark(&[
        "-n",
        "-r",
        file.to_str().unwrap(),
        "-d",
        "udp.port==8472,vxlan",
        "-Y",
        filter,
        "-T",
        "fields",
        "-e",
        field,
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// A capture on a Kubernetes node's underlay with a flannel-style VXLAN overlay whose
/// MTU (1500) leaves no room for the 50 bytes of VXLAN/UDP/IPv4: every full-size inner
/// segment crosses the underlay as two outer IPv4 fragments (fixtures/README.md). Not
/// `check_against_tshark`: here frames, fragments and inner segments are different
/// numbers. tshark (IPv4 reassembly on, 8472 decoded as VXLAN) gives the inner figures.
#[test]
fn vxlan_overlay_with_fragmented_outer_packets() {
    let file = "fixtures/vxlan_fragments.pcap";
    let exp = expected("vxlan_fragments");
    let ov = &exp["overlay"];
    let (t, cov) = analyse(&[repo(file)]);
    let c = &t.connections;

    // The fixture shows what it claims: fragments, all of them reassembled by tshark.
    let datagrams = n(ov, "reassembled_datagrams");
    assert!(datagrams > 0 && n(ov, "ip_fragments") > datagrams, "{ov}");
    assert_eq!(n(ov, "fragments_in_reassembled"), n(ov, "ip_fragments"));

    // Frame accounting. A fragment frame is counted in ip_fragments; the one completing
    // its datagram also yields the inner TCP segment. So every frame is one inner
    // segment or one fragment still waiting: packets = segments + fragments - datagrams.
    assert_eq!(cov.packets, n(&exp, "packets"));
    assert_eq!(cov.ip_fragments, n(ov, "ip_fragments"));
    assert_eq!(
        cov.ip_fragments_reassembled,
        n(ov, "fragments_in_reassembled")
    );
    assert_eq!(cov.ip_fragments_dropped, 0);
    assert_eq!(cov.tcp_segments, n(ov, "inner_tcp_segments"));
    assert_eq!(cov.packets, cov.tcp_segments + cov.ip_fragments - datagrams);
    assert_eq!(
        (
            cov.non_ip,
            cov.non_tcp,
            cov.decode_errors,
            cov.tcp_malformed
        ),
        (0, 0, 0, 0)
    );
    // One VXLAN header per whole or reassembled outer datagram.
    assert!(cov.tunnels_unwrapped > 0);
    assert_eq!(cov.tunnels_unwrapped, n(ov, "vxlan_frames"));

    // The connection is between the overlay endpoints, never the nodes' underlay IPs.
    assert_eq!(c.height() as u64, n(&exp, "tcp_conversations"));
    let servers: Vec<String> = strs(c, "server_ip")
        .into_iter()
        .zip(u64s(c, "server_port"))
        .map(|(ip, port)| format!("{}:{}", ip.unwrap(), port.unwrap()))
        .collect();
    let theirs: Vec<String> = ov["server_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(servers, theirs);
    // tshark lists outer then inner ip.src; the client is the inner source of the SYN.
    let syn_src = tshark_vxlan_fields(file, "tcp.flags.syn==1 && tcp.flags.ack==0", "ip.src");
    let clients: Vec<String> = syn_src
        .iter()
        .map(|l| l.rsplit(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        strs(c, "client_ip")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        clients
    );
    let underlay: Vec<&str> = ov["underlay_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for ip in strs(c, "client_ip").iter().chain(&strs(c, "server_ip")) {
        assert!(!underlay.contains(&ip.as_deref().unwrap()), "{ip:?}");
    }
    assert!(bools(c, "handshake_seen")[0]);

    // Inner segments each way, as tshark decodes them after reassembly.
    let ports = tshark_vxlan_fields(file, "tcp", "tcp.dstport");
    let to_server = ports.iter().filter(|p| p.as_str() == "8088").count() as u64;
    assert_eq!(
        (sum(c, "c2s_packets"), sum(c, "s2c_packets")),
        (to_server, ports.len() as u64 - to_server)
    );

    // The same HTTP exchanges and inner payload bytes as tshark, with no gaps.
    assert_eq!(requests_in_capture_order(&t), tshark_requests(&exp));
    assert_eq!(statuses(&t), (tshark_statuses("vxlan_fragments"), 0));
    assert_eq!(t.exchanges.height() as u64, n(&exp, "http_responses"));
    assert_eq!(n(&exp, "retransmissions"), 0, "fixture assumption");
    let bytes = &ov["inner_payload_bytes"];
    assert_eq!(sum(c, "c2s_bytes"), n(bytes, "client_to_server"));
    assert_eq!(sum(c, "s2c_bytes"), n(bytes, "server_to_client"));
    assert_eq!((cov.gaps, cov.gap_bytes), (0, 0));
    assert_eq!(sum(c, "c2s_gaps") + sum(c, "s2c_gaps"), 0);
    all_complete(&t);
    assert_bytes_all_accounted(&t);
    // Full-size inner segments really were there: a response body over 20 KB.
    let max_body = u64s(&t.exchanges, "resp_body_bytes")
        .into_iter()
        .flatten()
        .max()
        .unwrap();
    assert!(max_body > 20_000, "{max_body}");
}
