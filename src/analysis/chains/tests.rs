//! Hand-built call lists: every expected parent, depth and flag below follows from the
//! times written next to it (ms), not from running the code.

use super::*;

/// Builds a call list with named services (the names are the addresses).
#[derive(Default)]
struct Calls {
    set: CallSet,
}

impl Calls {
    /// A call `client -> server` on connection `conn` with times (ms):
    /// request first/last byte, response first/last byte.
    fn add(&mut self, client: &str, server: &str, conn: u64, route: &str, t: [f64; 4]) -> u32 {
        self.add_full(client, server, conn, route, t, Some(200), None)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_full(
        &mut self,
        client: &str,
        server: &str,
        conn: u64,
        route: &str,
        t: [f64; 4],
        status: Option<u16>,
        trace: Option<u128>,
    ) -> u32 {
        let client: std::net::SocketAddr = client.parse().unwrap();
        let server: std::net::SocketAddr = server.parse().unwrap();
        let ns = |v: f64| Some((v * 1e6) as i64);
        let s = &mut self.set.symbols;
        let call = Call {
            conn_id: conn,
            index: 0,
            client,
            server,
            client_service: s.intern(&client.ip().to_string()),
            server_service: s.intern(&server.ip().to_string()),
            method: Some(s.intern("GET")),
            route: Some(s.intern(route)),
            status,
            req_first: ns(t[0]),
            req_last: ns(t[1]),
            resp_first: ns(t[2]),
            resp_last: ns(t[3]),
            trace_id: trace,
            parent_span_id: None,
            span_id: None,
            kind: CallKind::Http,
            req_body: None,
        };
        self.set.calls.push(call);
        (self.set.calls.len() - 1) as u32
    }

    fn run(&self) -> (Inference, Forest) {
        infer(&self.set, &ChainConfig::default())
    }
}

fn parent(inf: &Inference, i: u32) -> Option<u32> {
    inf.edges[i as usize].map(|e| e.parent)
}

const EDGE: &str = "10.0.0.1:5000";
const A: &str = "10.0.0.2:80";
const A_OUT: &str = "10.0.0.2:4000";
const B: &str = "10.0.0.3:80";
const B_OUT: &str = "10.0.0.3:4000";
const C: &str = "10.0.0.4:80";
const D: &str = "10.0.0.5:80";

#[test]
fn nested_windows_make_a_chain_three_deep_all_critical() {
    let mut c = Calls::default();
    let r = c.add(EDGE, A, 1, "/a", [0.0, 1.0, 50.0, 51.0]);
    let ab = c.add(A_OUT, B, 2, "/b", [5.0, 6.0, 40.0, 41.0]);
    let bc = c.add(B_OUT, C, 3, "/c", [10.0, 11.0, 30.0, 31.0]);
    let (inf, f) = c.run();
    assert_eq!(parent(&inf, r), None);
    assert_eq!(parent(&inf, ab), Some(r));
    assert_eq!(parent(&inf, bc), Some(ab));
    assert_eq!(f.roots, vec![r]);
    let depths: Vec<u32> = f.facts.iter().map(|x| x.depth).collect();
    assert_eq!(depths, vec![1, 2, 3]);
    assert!(f.facts.iter().all(|x| x.critical));
    assert_eq!(f.tree_depth(r), 3);
    // A serves 1..50 (49 ms) and waits on B 5..41 (36 ms): own 13 ms.
    assert_eq!(f.facts[r as usize].waiting_ns, Some(36_000_000));
    assert_eq!(f.facts[r as usize].own_ns, Some(13_000_000));
    assert_eq!(inf.edges[ab as usize].unwrap().confidence, 1.0);
}

#[test]
fn concurrent_requests_pick_the_tightest_fit() {
    let mut c = Calls::default();
    let long = c.add(EDGE, A, 1, "/x", [0.0, 1.0, 100.0, 101.0]);
    let short = c.add("10.0.0.9:5001", A, 2, "/x", [10.0, 11.0, 30.0, 31.0]);
    let child = c.add(A_OUT, B, 3, "/b", [15.0, 16.0, 25.0, 26.0]);
    let (inf, _) = c.run();
    assert_eq!(parent(&inf, child), Some(short));
    assert_ne!(parent(&inf, child), Some(long));
    // Both windows enclose the child and share a route, so the likelihood is
    // 1 / (window ms + 0.1) / (gap ms + 0.1); windows carry 1 ms of tolerance each side
    // (long 0..101, short 10..31), gaps run from the last request byte (14 and 4 ms).
    let short_l = 1.0 / (21.1 * 4.1);
    let long_l = 1.0 / (101.1 * 14.1);
    let conf = inf.edges[child as usize].unwrap().confidence;
    assert!((conf - short_l / (short_l + long_l)).abs() < 1e-6, "{conf}");
    assert_eq!(inf.stats.ambiguous, 1);
}

#[test]
fn route_affinity_learned_from_unambiguous_calls_beats_a_tighter_window() {
    let mut c = Calls::default();
    // Alone: /x calls /xx, /y calls /yy, each with one candidate.
    let x0 = c.add(EDGE, A, 1, "/x", [0.0, 1.0, 20.0, 21.0]);
    let xx0 = c.add(A_OUT, B, 2, "/xx", [5.0, 6.0, 10.0, 11.0]);
    let y0 = c.add(EDGE, A, 1, "/y", [30.0, 31.0, 50.0, 51.0]);
    let yy0 = c.add(A_OUT, B, 2, "/yy", [35.0, 36.0, 40.0, 41.0]);
    // Overlapping: /x (long window) and /y (tight window) both enclose a /xx call.
    let x1 = c.add(EDGE, A, 1, "/x", [200.0, 201.0, 300.0, 301.0]);
    let _y1 = c.add("10.0.0.9:5001", A, 4, "/y", [210.0, 211.0, 260.0, 261.0]);
    let xx1 = c.add(A_OUT, B, 2, "/xx", [220.0, 221.0, 230.0, 231.0]);
    let (inf, _) = c.run();
    assert_eq!(parent(&inf, xx0), Some(x0));
    assert_eq!(parent(&inf, yy0), Some(y0));
    assert_eq!(parent(&inf, xx1), Some(x1));
    assert_eq!(inf.edges[xx1 as usize].unwrap().confidence, 1.0);
}

#[test]
fn equal_windows_tie_to_the_lower_row_with_half_confidence() {
    let mut c = Calls::default();
    let r1 = c.add(EDGE, A, 1, "/x", [0.0, 1.0, 50.0, 51.0]);
    let _r2 = c.add("10.0.0.9:5001", A, 2, "/x", [0.0, 1.0, 50.0, 51.0]);
    let child = c.add(A_OUT, B, 3, "/b", [10.0, 11.0, 20.0, 21.0]);
    let (inf, _) = c.run();
    assert_eq!(parent(&inf, child), Some(r1));
    assert_eq!(inf.edges[child as usize].unwrap().confidence, 0.5);
}

/// Ten /x requests at A, 100 ms apart, each with one /b call whose lead (last request
/// byte to call) and tail (call answered to A answering) are 1 ms +- 0.2 ms: the
/// handler's rhythm. Two more /x requests overlap (P1 arrives first) and make one call
/// each, c1 (earlier start) for P1, c2 for P2, both inside both windows.
fn look_alike_pair() -> (Calls, [u32; 4]) {
    let mut c = Calls::default();
    for k in 0..10u32 {
        let t0 = 100.0 * f64::from(k);
        let jitter = 0.2 * (f64::from(k % 5) - 2.0);
        let lead = 1.0 + jitter;
        let tail = 1.0 - jitter;
        let client = format!("10.0.0.1:{}", 6000 + k);
        c.add(
            &client,
            A,
            1000 + u64::from(k),
            "/x",
            [t0, t0 + 1.0, t0 + 12.0, t0 + 12.5],
        );
        let s = t0 + 1.0 + lead;
        let e = t0 + 12.0 - tail;
        c.add(
            A_OUT,
            B,
            2000 + u64::from(k),
            "/b",
            [s, s + 0.1, e - 0.1, e],
        );
    }
    let t = 5000.0;
    let p1 = c.add(
        "10.0.0.1:7001",
        A,
        3001,
        "/x",
        [t, t + 1.0, t + 12.0, t + 12.5],
    );
    let p2 = c.add(
        "10.0.0.1:7002",
        A,
        3002,
        "/x",
        [t + 0.5, t + 1.5, t + 13.5, t + 14.0],
    );
    // c1 -> P1: lead 1.6 ms, tail 1.0 ms; c2 -> P2: lead 1.5 ms, tail 1.0 ms.
    let c1 = c.add(A_OUT, B, 3003, "/b", [t + 2.6, t + 2.7, t + 10.9, t + 11.0]);
    let c2 = c.add(A_OUT, B, 3004, "/b", [t + 3.0, t + 3.1, t + 12.4, t + 12.5]);
    (c, [p1, p2, c1, c2])
}

/// The per-call rules give c1 to the latest arrival P2 (gap 1.1 ms against 1.6 ms, equal
/// windows), then c2 to P1 (P2 already made its one /b call and is waiting on it). Read
/// whole, that leaves P2 answering 2.5 ms after c1 and P1 answering before c2 was
/// answered: far off the learned 1 ms rhythm (scale 0.3 ms: MAD 0.2 x 1.4826). The joint
/// refinement swaps them back: leads 1.6 and 1.5 ms, both tails 1.0 ms.
#[test]
fn refinement_gives_look_alike_requests_the_calls_that_fit_their_rhythm() {
    let (c, [p1, p2, c1, c2]) = look_alike_pair();
    let (inf, f) = c.run();
    assert_eq!(parent(&inf, c1), Some(p1));
    assert_eq!(parent(&inf, c2), Some(p2));
    assert_eq!(inf.stats.refined, 2, "{:?}", inf.stats);
    assert_eq!(inf.stats.refine_skipped, 0);
    for k in [c1, c2] {
        let e = inf.edges[k as usize].unwrap();
        assert_eq!(e.source, EdgeSource::Timing);
        assert!(e.confidence > 0.5 && e.confidence <= 1.0, "{e:?}");
        assert_eq!(f.facts[k as usize].depth, 2);
    }
}

/// With fewer than 8 requests of the route showing the rhythm, the rules' choice stands.
#[test]
fn refinement_needs_a_learned_rhythm() {
    let mut c = Calls::default();
    let t = 0.0;
    let _p1 = c.add(
        "10.0.0.1:7001",
        A,
        3001,
        "/x",
        [t, t + 1.0, t + 12.0, t + 12.5],
    );
    let p2 = c.add(
        "10.0.0.1:7002",
        A,
        3002,
        "/x",
        [t + 0.5, t + 1.5, t + 13.5, t + 14.0],
    );
    let c1 = c.add(A_OUT, B, 3003, "/b", [t + 2.6, t + 2.7, t + 10.9, t + 11.0]);
    let (inf, _) = c.run();
    assert_eq!(parent(&inf, c1), Some(p2), "tightest gap, as the rules say");
    assert_eq!(inf.stats.refined, 0);
}

#[test]
fn fire_and_forget_late_start_late_answer_and_202() {
    let mut c = Calls::default();
    let r = c.add(EDGE, A, 1, "/notify", [0.0, 1.0, 10.0, 11.0]);
    // Started 3 ms after A answered: background work of r.
    let bg = c.add(A_OUT, B, 2, "/audit", [13.0, 14.0, 30.0, 31.0]);
    let r2 = c.add(EDGE, A, 1, "/enqueue", [100.0, 101.0, 110.0, 111.0]);
    let accepted = c.add_full(
        A_OUT,
        B,
        3,
        "/jobs",
        [102.0, 103.0, 104.0, 105.0],
        Some(202),
        None,
    );
    let r3 = c.add(EDGE, A, 1, "/x", [200.0, 201.0, 210.0, 211.0]);
    // Answered after A had answered: not waited for.
    let outlived = c.add(A_OUT, B, 4, "/slow", [202.0, 203.0, 240.0, 241.0]);
    let r4 = c.add(EDGE, A, 1, "/y", [300.0, 301.0, 310.0, 311.0]);
    let waited = c.add(A_OUT, B, 5, "/ok", [302.0, 303.0, 305.0, 306.0]);
    let (inf, f) = c.run();
    assert_eq!(parent(&inf, bg), Some(r));
    assert!(inf.edges[bg as usize].unwrap().late);
    assert_eq!(parent(&inf, accepted), Some(r2));
    assert_eq!(parent(&inf, outlived), Some(r3));
    assert_eq!(parent(&inf, waited), Some(r4));
    assert!(f.facts[bg as usize].fire_and_forget);
    assert!(f.facts[accepted as usize].fire_and_forget);
    assert!(f.facts[outlived as usize].fire_and_forget);
    assert!(!f.facts[waited as usize].fire_and_forget);
    // A child answered after its parent answered is not on the critical path.
    assert!(!f.facts[outlived as usize].critical);
    assert!(!f.facts[bg as usize].critical);
    assert!(f.facts[waited as usize].critical);
    assert_eq!(inf.stats.late, 1);
}

#[test]
fn sequential_same_route_is_n_plus_one_parallel_is_not() {
    let mut c = Calls::default();
    let r = c.add(EDGE, A, 1, "/orders", [0.0, 1.0, 100.0, 101.0]);
    let seq: Vec<u32> = (0..4)
        .map(|k| {
            let s = 5.0 + 20.0 * k as f64;
            c.add(A_OUT, B, 2, "/items/{id}", [s, s + 1.0, s + 10.0, s + 11.0])
        })
        .collect();
    let r2 = c.add(EDGE, A, 3, "/details", [200.0, 201.0, 300.0, 301.0]);
    let par: Vec<u32> = (0..4)
        .map(|k| {
            c.add(
                &format!("10.0.0.2:{}", 4100 + k),
                B,
                10 + k as u64,
                "/items/{id}",
                [205.0, 206.0, 250.0, 251.0],
            )
        })
        .collect();
    let (inf, f) = c.run();
    for &s in &seq {
        assert_eq!(parent(&inf, s), Some(r));
        assert!(f.facts[s as usize].n_plus_one);
        assert!(!f.facts[s as usize].parallel);
        assert!(f.facts[s as usize].critical);
    }
    for &p in &par {
        assert_eq!(parent(&inf, p), Some(r2));
        assert!(!f.facts[p as usize].n_plus_one);
        assert!(f.facts[p as usize].parallel);
    }
    // Four identical parallel calls: only one lies on the critical path.
    assert_eq!(
        par.iter()
            .filter(|&&p| f.facts[p as usize].critical)
            .count(),
        1
    );
}

#[test]
fn parallel_fan_out_puts_only_the_slowest_child_on_the_critical_path() {
    let mut c = Calls::default();
    let r = c.add(EDGE, A, 1, "/fan", [0.0, 1.0, 100.0, 101.0]);
    let b = c.add("10.0.0.2:4001", B, 2, "/b", [5.0, 6.0, 15.0, 16.0]);
    let cc = c.add("10.0.0.2:4002", C, 3, "/c", [5.0, 6.0, 25.0, 26.0]);
    let d = c.add("10.0.0.2:4003", D, 4, "/d", [5.0, 6.0, 90.0, 91.0]);
    let (inf, f) = c.run();
    for x in [b, cc, d] {
        assert_eq!(parent(&inf, x), Some(r));
        assert!(f.facts[x as usize].parallel);
    }
    assert!(f.facts[d as usize].critical);
    assert!(!f.facts[b as usize].critical);
    assert!(!f.facts[cc as usize].critical);
    assert_eq!(f.critical_path(r, &c.set.calls), vec![r, d]);
    // Waiting is the union 5..91 = 86 ms of the 99 ms window.
    assert_eq!(f.facts[r as usize].waiting_ns, Some(86_000_000));
}

#[test]
fn one_payload_posted_to_several_services_is_a_same_payload_fan_out() {
    let mut c = Calls::default();
    let r = c.add(EDGE, A, 1, "/order", [0.0, 1.0, 100.0, 101.0]);
    // a POSTs the same 512-byte event to b and c; d gets a different body.
    let b = c.add("10.0.0.2:4001", B, 2, "/events", [5.0, 6.0, 15.0, 16.0]);
    let cc = c.add("10.0.0.2:4002", C, 3, "/events", [17.0, 18.0, 25.0, 26.0]);
    let d = c.add("10.0.0.2:4003", D, 4, "/events", [30.0, 31.0, 40.0, 41.0]);
    let post = c.set.symbols.intern("POST");
    for (i, body) in [(b, 512), (cc, 512), (d, 300)] {
        c.set.calls[i as usize].method = Some(post);
        c.set.calls[i as usize].req_body = Some(body);
    }
    let (inf, _) = c.run();
    for x in [b, cc, d] {
        assert_eq!(parent(&inf, x), Some(r));
    }
    let a = analyze_calls(&c.set, &ChainConfig::default());
    let share = |server: &str| {
        a.links[&("10.0.0.2".to_string(), server.to_string())].same_payload_fanout_share
    };
    assert_eq!(share("10.0.0.3"), Some(1.0));
    assert_eq!(share("10.0.0.4"), Some(1.0));
    assert_eq!(share("10.0.0.5"), Some(0.0));
}

#[test]
fn traceparent_overrides_timing_and_agreement_is_counted() {
    let mut c = Calls::default();
    let t1 = 0x1111_u128;
    let t2 = 0x2222_u128;
    let long = c.add_full(
        EDGE,
        A,
        1,
        "/x",
        [0.0, 1.0, 100.0, 101.0],
        Some(200),
        Some(t1),
    );
    let _short = c.add_full(
        "10.0.0.9:5001",
        A,
        2,
        "/x",
        [10.0, 11.0, 30.0, 31.0],
        Some(200),
        Some(t2),
    );
    // Timing alone would choose the tighter /x; the ids say the long one.
    let child = c.add_full(
        A_OUT,
        B,
        3,
        "/b",
        [15.0, 16.0, 25.0, 26.0],
        Some(200),
        Some(t1),
    );
    let (inf, _) = c.run();
    let e = inf.edges[child as usize].unwrap();
    assert_eq!(e.parent, long);
    assert_eq!(e.source, EdgeSource::Traceparent);
    assert_eq!(e.confidence, 1.0);
    assert_eq!(inf.stats.ids_checked, 1);
    assert_eq!(inf.stats.ids_agreed, 0);
}

#[test]
fn a_call_from_a_serving_address_without_parent_is_an_orphan() {
    let mut c = Calls::default();
    let r = c.add(EDGE, A, 1, "/a", [0.0, 1.0, 10.0, 11.0]);
    // A calls B at 500 ms, long after it answered: no candidate.
    let o = c.add(A_OUT, B, 2, "/b", [500.0, 501.0, 510.0, 511.0]);
    let (inf, f) = c.run();
    assert_eq!(parent(&inf, o), None);
    assert_eq!(f.roots, vec![r]);
    assert_eq!(f.orphans, vec![o]);
    assert_eq!(f.facts[o as usize].depth, 0);
}

#[test]
fn missing_times_and_empty_input_do_not_panic() {
    let (inf, f) = infer(&CallSet::default(), &ChainConfig::default());
    assert!(inf.edges.is_empty() && f.roots.is_empty());
    let mut c = Calls::default();
    let r = c.add(EDGE, A, 1, "/a", [0.0, 1.0, 10.0, 11.0]);
    let x = c.add(A_OUT, B, 2, "/b", [2.0, 3.0, 5.0, 6.0]);
    c.set.calls[x as usize].req_first = None;
    c.set.calls[x as usize].req_last = None;
    c.set.calls[r as usize].resp_first = None;
    let a = analyze_calls(&c.set, &ChainConfig::default());
    assert_eq!(a.run.calls, 2);
}

#[test]
fn link_summary_counts_depth_critical_share_and_calls_per_parent() {
    let mut c = Calls::default();
    // Three roots; A calls B twice sequentially under the first and third, once under
    // the second.
    c.add(EDGE, A, 1, "/a", [0.0, 1.0, 50.0, 51.0]);
    c.add(A_OUT, B, 2, "/b", [5.0, 6.0, 10.0, 11.0]);
    c.add(A_OUT, B, 2, "/b", [20.0, 21.0, 30.0, 31.0]);
    c.add(EDGE, A, 1, "/a", [100.0, 101.0, 150.0, 151.0]);
    c.add(A_OUT, B, 2, "/b", [105.0, 106.0, 110.0, 111.0]);
    c.add(EDGE, A, 1, "/a", [200.0, 201.0, 250.0, 251.0]);
    c.add(A_OUT, B, 2, "/b", [205.0, 206.0, 210.0, 211.0]);
    c.add(A_OUT, B, 2, "/b", [220.0, 221.0, 230.0, 231.0]);
    let a = analyze_calls(&c.set, &ChainConfig::default());
    let ab = &a.links[&("10.0.0.2".to_string(), "10.0.0.3".to_string())];
    assert_eq!(ab.max_depth, Some(2));
    assert_eq!(ab.calls_per_parent.mean, Some(5.0 / 3.0));
    assert_eq!(ab.calls_per_parent.max, Some(2));
    assert_eq!(ab.critical_path_share.roots, Some(1.0));
    // Roots 1 and 3: (6 + 11) ms of 51; root 2: 6 ms of 51: 40/153.
    let lat = ab.critical_path_share.latency.unwrap();
    assert!((lat - 40.0 / 153.0).abs() < 1e-9, "{lat}");
    assert_eq!(ab.parallel_share, Some(0.0));
    assert_eq!(a.run.roots, 3);
    assert_eq!(a.run.tree_depths.len(), 1);
    assert_eq!(
        (a.run.tree_depths[0].depth, a.run.tree_depths[0].roots),
        (2, 3)
    );
    let top = &a.run.top_root_routes[0];
    assert_eq!(top.roots, 3);
    let path = top.critical_path.as_ref().unwrap();
    // Roots 1 and 3 share the path /a, /b, /b.
    assert_eq!((path.roots, path.hops.len()), (2, 3));
    assert_eq!(path.hops[2].mean_ms, Some(11.0));
}

#[test]
fn clock_offsets_beyond_the_tolerance_mark_chains_unreliable() {
    let mut a = analyze_calls(&CallSet::default(), &ChainConfig::default());
    assert!(a.run.reliable);
    a.check_clocks([("a.pcap", 0), ("b.pcap", 900_000)]);
    assert!(a.run.reliable);
    a.check_clocks([("b.pcap", -37_000_000)]);
    assert!(!a.run.reliable);
    assert!(a
        .run
        .unreliable_reason
        .as_deref()
        .unwrap()
        .contains("-37.0 ms"));
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    /// Any times (extreme values included), addresses from a small pool so that calls
    /// meet, optional trace ids and statuses.
    fn call() -> impl Strategy<Value = (u8, u8, u8, [Option<i64>; 4], Option<u8>, bool)> {
        let t = prop_oneof![
            4 => (0i64..200_000_000).prop_map(Some),
            1 => Just(None),
            1 => any::<i64>().prop_map(Some),
        ];
        (
            0u8..4,
            0u8..4,
            0u8..3,
            [t.clone(), t.clone(), t.clone(), t],
            proptest::option::of(0u8..3),
            any::<bool>(),
        )
    }

    proptest! {
        #[test]
        fn any_call_list_gives_a_forest_without_panicking(
            rows in proptest::collection::vec(call(), 0..60)
        ) {
            let mut set = CallSet::default();
            for (i, (cl, sv, route, t, trace, opaque)) in rows.iter().enumerate() {
                let client: std::net::SocketAddr =
                    format!("10.0.0.{cl}:{}", 4000 + i).parse().unwrap();
                let server: std::net::SocketAddr = format!("10.0.0.{sv}:80").parse().unwrap();
                let s = &mut set.symbols;
                set.calls.push(Call {
                    conn_id: i as u64 % 7,
                    index: i as u32,
                    client,
                    server,
                    client_service: s.intern(&client.ip().to_string()),
                    server_service: s.intern(&server.ip().to_string()),
                    method: Some(s.intern("GET")),
                    route: Some(s.intern(&format!("/r{route}"))),
                    status: Some(if *route == 2 { 202 } else { 200 }),
                    req_first: t[0],
                    req_last: t[1],
                    resp_first: t[2],
                    resp_last: t[3],
                    trace_id: trace.map(|x| u128::from(x) + 1),
                    parent_span_id: None,
                    span_id: None,
                    kind: if *opaque { CallKind::Opaque } else { CallKind::Http },
                    req_body: None,
                });
            }
            let (inf, forest) = infer(&set, &ChainConfig::default());
            prop_assert_eq!(inf.edges.len(), set.calls.len());
            // Every call is in exactly one tree: following parents always ends at a top.
            for (i, e) in inf.edges.iter().enumerate() {
                let mut cur = i;
                let mut steps = 0;
                while let Some(p) = inf.edges[cur] {
                    prop_assert!(p.parent as usize != cur);
                    prop_assert!(p.confidence > 0.0 && p.confidence <= 1.0, "{:?}", p);
                    cur = p.parent as usize;
                    steps += 1;
                    prop_assert!(steps <= set.calls.len(), "cycle through call {}", i);
                }
                prop_assert_eq!(forest.facts[i].top as usize, cur);
                let _ = e;
            }
            prop_assert_eq!(
                forest.roots.len() + forest.orphans.len(),
                inf.edges.iter().filter(|e| e.is_none()).count()
            );
            let a = analyze_calls(&set, &ChainConfig::default());
            prop_assert_eq!(a.run.calls as usize, set.calls.len());
        }
    }
}

#[test]
fn the_share_weighs_the_tied_calls_checked_for_those_left_out() {
    // 100 untied calls, 90 agreed; 50 tied checked, 25 agreed; 150 tied left out.
    let stats = InferenceStats {
        ids_checked: 150,
        ids_agreed: 115,
        ids_tied_checked: 50,
        ids_tied_agreed: 25,
        ids_check_left_out: 150,
        ..Default::default()
    };
    let a = link_chain::IdAgreement::of(&stats);
    assert_eq!((a.checked, a.agreed, a.left_out), (150, 115, 150));
    // (90 + 0.5 * 200) / 300
    assert!((a.share.unwrap() - 190.0 / 300.0).abs() < 1e-12);
    let whole = link_chain::IdAgreement::of(&InferenceStats {
        ids_check_left_out: 0,
        ..stats
    });
    assert!((whole.share.unwrap() - 115.0 / 150.0).abs() < 1e-12);
}
