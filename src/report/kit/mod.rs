//! The migration kit: what each recommendation needs to start, generated from the
//! evidence (docs/kit.md). Written to `<out>/kit/`:
//! - `proto/<service>.proto` for the gRPC links ([`proto`], one service per callee),
//!   with `proto/buf.yaml` (the lint rules relaxed, and why);
//! - `asyncapi.yaml` for the broker links ([`asyncapi`]);
//! - `mesh/<client>-<server>.yaml` for the mesh links ([`mesh`]);
//! - `README.md`: each file, in the order of the plan's waves ([`readme`]).
//!
//! A report-stage artefact: it reads the ranked links, the plan, the names and the JSON
//! samples kept in memory by the sampler, and writes files; no earlier record changes.

pub mod asyncapi;
pub mod mesh;
pub mod names;
pub mod proto;
mod readme;
pub mod roundtrip;
pub mod shape;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::analysis::identity::Naming;
use crate::analysis::plan::Plan;
use crate::analysis::rank::Ranked;
use crate::analysis::recommend::Target;
use crate::ingest::serialization::KeySamples;
use proto::{BodyMapping, BodySamples};

/// The directory under the report's output directory.
pub const DIR: &str = "kit";

/// What the kit was built from.
pub struct KitInput<'a> {
    pub links: &'a [Ranked],
    pub plan: Option<&'a Plan>,
    pub naming: &'a Naming,
    pub samples: &'a [KeySamples],
    /// The sampler's enum rule was on (`--no-enums` turns it off).
    pub infer_enums: bool,
    /// Write a .proto for every HTTP link the plan keeps too (`--kit-all`).
    pub all_http: bool,
    /// Retries a mesh makes on a transient failure (the cost model's `mesh_retries`, as
    /// the decisions used it).
    pub mesh_retries: u32,
    /// Names of the inputs, for the files' headers.
    pub source: String,
    /// Query parameter names seen per (server, method, route) ([`query_names`]).
    pub query_names: QueryNames,
}

/// Query parameter names per (server name, method, route).
pub type QueryNames = BTreeMap<(String, String, String), BTreeSet<String>>;

/// The query parameter names of every route, from the exchanges table's `query_names`
/// (names only; the table holds no value).
pub fn query_names(
    exchanges: &polars::prelude::DataFrame,
    naming: &Naming,
) -> polars::prelude::PolarsResult<QueryNames> {
    use crate::tables::columns;
    use polars::prelude::DataType;
    let mut out = QueryNames::new();
    if exchanges.height() == 0
        || !exchanges
            .get_column_names()
            .iter()
            .any(|n| n.as_str() == columns::QUERY_NAMES)
    {
        return Ok(out);
    }
    let ip = exchanges.column(columns::SERVER_IP)?.str()?;
    let port = exchanges
        .column(columns::SERVER_PORT)?
        .cast(&DataType::UInt32)?;
    let port = port.u32()?;
    let method = exchanges.column(columns::METHOD)?.str()?;
    let route = exchanges.column(columns::ROUTE)?.str()?;
    let names = exchanges.column(columns::QUERY_NAMES)?.str()?;
    for i in 0..exchanges.height() {
        let (Some(q), Some(ip), Some(port), Some(m), Some(r)) = (
            names.get(i),
            ip.get(i),
            port.get(i),
            method.get(i),
            route.get(i),
        ) else {
            continue;
        };
        let Ok(ip) = ip.parse() else { continue };
        let server = naming.server(ip, port as u16).name;
        out.entry((server, m.to_owned(), r.to_owned()))
            .or_default()
            .extend(q.split(',').map(str::to_owned));
    }
    Ok(out)
}

/// The round trip of one route direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTrip {
    pub service: String,
    pub rpc: String,
    pub method: String,
    pub route: String,
    /// `request` or `response`.
    pub direction: &'static str,
    /// Why there is no schema (then no round trip).
    pub stub: Option<String>,
    pub tally: roundtrip::Tally,
}

/// The kit: its files (relative to `kit/`) and what they hold.
#[derive(Clone, Debug, Default)]
pub struct Kit {
    /// Relative path -> text, in writing order.
    pub files: Vec<(String, String)>,
    /// Per link (`client`, `server`): the kit files it needs.
    pub by_link: BTreeMap<(String, String), Vec<String>>,
    pub round_trips: Vec<RouteTrip>,
    /// Generated .proto files protox could not compile (a bug if ever non-empty).
    pub compile_errors: Vec<(String, String)>,
}

/// The `kit` object of links.json (docs/links.md): where the kit is, each link's files,
/// and the round trip of every route direction.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KitSummary {
    /// `kit/README.md`, relative to the report directory.
    pub readme: String,
    pub links: Vec<KitLink>,
    pub round_trips: Vec<KitRoundTrip>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct KitLink {
    pub client: String,
    pub server: String,
    /// Paths relative to the report directory (`kit/proto/orders.proto`).
    pub files: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct KitRoundTrip {
    pub service: String,
    pub rpc: String,
    pub method: String,
    pub route: String,
    pub direction: &'static str,
    /// Sampled JSON bodies tried, and those given back equal.
    pub samples: usize,
    pub round_tripped: usize,
    /// Why no schema was inferred (a stub message); null when one was.
    pub stub: Option<String>,
}

impl Kit {
    /// The links.json summary; None for an empty kit.
    pub fn summary(&self) -> Option<KitSummary> {
        (!self.is_empty()).then(|| KitSummary {
            readme: format!("{DIR}/README.md"),
            links: self
                .by_link
                .iter()
                .map(|((c, s), files)| KitLink {
                    client: c.clone(),
                    server: s.clone(),
                    files: files.iter().map(|f| format!("{DIR}/{f}")).collect(),
                })
                .collect(),
            round_trips: self
                .round_trips
                .iter()
                .map(|t| KitRoundTrip {
                    service: t.service.clone(),
                    rpc: t.rpc.clone(),
                    method: t.method.clone(),
                    route: t.route.clone(),
                    direction: t.direction,
                    samples: t.tally.samples,
                    round_tripped: t.tally.passed,
                    stub: t.stub.clone(),
                })
                .collect(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The kit files of one link (empty when it needs none).
    pub fn files_of(&self, client: &str, server: &str) -> &[String] {
        self.by_link
            .get(&(client.to_owned(), server.to_owned()))
            .map_or(&[], Vec::as_slice)
    }
}

/// One observed route of a callee, with its samples from every client the kit covers.
#[derive(Default)]
pub(crate) struct RouteAcc<'a> {
    pub clients: BTreeSet<String>,
    pub requests: u64,
    pub request: BodySamples<'a>,
    pub response: BodySamples<'a>,
}

/// Routes of a set of links, by callee, then (method, route), with their samples.
pub(crate) type Routes<'a> = BTreeMap<String, BTreeMap<(String, String), RouteAcc<'a>>>;

/// The routes of the links `want` selects, and their samples.
pub(crate) fn routes_of<'a>(input: &KitInput<'a>, want: impl Fn(&Ranked) -> bool) -> Routes<'a> {
    let mut out: Routes<'a> = BTreeMap::new();
    let mut pairs = BTreeSet::new();
    for r in input.links.iter().filter(|r| want(r)) {
        pairs.insert((r.link.client.clone(), r.link.server.clone()));
        let svc = out.entry(r.link.server.clone()).or_default();
        for route in &r.link.routes {
            let (Some(m), Some(p)) = (&route.method, &route.route) else {
                continue;
            };
            let acc = svc.entry((m.clone(), p.clone())).or_default();
            acc.clients.insert(r.link.client.clone());
            acc.requests += route.http.requests;
        }
    }
    for s in input.samples {
        let k = &s.key;
        let client = input.naming.client(k.client_ip).name;
        let server = input.naming.server(k.server_ip, k.server_port).name;
        if !pairs.contains(&(client.clone(), server.clone())) || k.method.is_empty() {
            continue;
        }
        let acc = out
            .entry(server)
            .or_default()
            .entry((k.method.clone(), k.route.clone()))
            .or_default();
        acc.clients.insert(client);
        let b = if k.direction == "request" {
            &mut acc.request
        } else {
            &mut acc.response
        };
        b.docs.extend(s.docs.iter());
        b.json_bodies += s.bodies;
        b.not_json += s.not_json;
        b.other_bodies += s.non_json_bodies;
    }
    out
}

/// A file-name stem from a service name (`payments-api` -> `payments_api`).
pub fn file_stem(service: &str) -> String {
    let w = names::words(service).join("_");
    if w.is_empty() || w.starts_with(|c: char| c.is_ascii_digit()) {
        format!("svc_{w}")
    } else {
        w
    }
}

/// Builds the kit of a run (nothing for a run whose links all keep HTTP).
pub fn build(input: &KitInput<'_>) -> Kit {
    let mut kit = Kit::default();
    let wants_proto = |r: &Ranked| {
        let t = r.assessment.recommendation.target;
        t == Target::Grpc
            || (input.all_http && t == Target::Keep && r.link.protocol.starts_with("http"))
    };
    let grpc = routes_of(input, wants_proto);
    for (service, routes) in &grpc {
        let (path, text, trips, err) = proto_file(input, service, routes);
        if let Some(e) = err {
            kit.compile_errors.push((path.clone(), e));
        }
        kit.round_trips.extend(trips);
        kit.files.push((path, text));
    }
    if !grpc.is_empty() {
        kit.files
            .push(("proto/buf.yaml".to_owned(), BUF_YAML.to_owned()));
        // The googleapis files the bindings import, so that the kit compiles on its own.
        for (name, text) in [
            ("proto/google/api/annotations.proto", roundtrip::ANNOTATIONS),
            ("proto/google/api/http.proto", roundtrip::HTTP),
            ("proto/google/api/LICENSE", GOOGLEAPIS_LICENSE),
        ] {
            kit.files.push((name.to_owned(), text.to_owned()));
        }
    }
    for r in input.links {
        let (c, s) = (&r.link.client, &r.link.server);
        let files: Vec<String> = match r.assessment.recommendation.target {
            _ if wants_proto(r) => vec![format!("proto/{}.proto", file_stem(s))],
            Target::Broker => vec![asyncapi::FILE.to_owned()],
            Target::Mesh => vec![mesh::file_name(c, s)],
            Target::Grpc | Target::Keep => Vec::new(),
        };
        if !files.is_empty() {
            kit.by_link.insert((c.clone(), s.clone()), files);
        }
    }
    if let Some(doc) = asyncapi::document(input) {
        kit.files.push((asyncapi::FILE.to_owned(), doc));
    }
    for (name, text) in mesh::files(input) {
        kit.files.push((name, text));
    }
    if !kit.files.is_empty() {
        let readme = readme::render(input, &kit);
        kit.files.push(("README.md".to_owned(), readme));
    }
    kit
}

/// Writes the kit under `out/kit/` (nothing when empty). An earlier run's kit there is
/// removed first, so that no stale file survives.
pub fn write(out: &Path, kit: &Kit) -> anyhow::Result<()> {
    let dir = out.join(DIR);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    for (rel, text) in &kit.files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// `buf lint`'s configuration for the generated files: the STANDARD rules, less those
/// the kit breaks on purpose.
const BUF_YAML: &str = "\
# buf lint configuration of the generated .proto files (linkrank's migration kit).
# STANDARD rules, except:
# - PACKAGE_DIRECTORY_MATCH, DIRECTORY_SAME_PACKAGE: the files sit side by side in
#   kit/proto/ (one per callee, each its own package) rather than in <package>/v1/
#   directories; move them there when you adopt them.
# - ENUM_VALUE_UPPER_SNAKE_CASE, ENUM_VALUE_PREFIX: enum value names are the JSON
#   symbols seen on the wire (as sent, not prefixed with the enum's name), because the proto3 JSON
#   mapping reads and writes enum values by name: other names would break the old
#   JSON clients behind grpc-gateway or Envoy's transcoder.
# google/ holds the googleapis files the bindings import (Apache 2.0, LICENSE there):
# not ours to lint.
version: v2
lint:
  use:
    - STANDARD
  except:
    - PACKAGE_DIRECTORY_MATCH
    - DIRECTORY_SAME_PACKAGE
    - ENUM_VALUE_UPPER_SNAKE_CASE
    - ENUM_VALUE_PREFIX
  ignore:
    - google
";

const GOOGLEAPIS_LICENSE: &str = include_str!("../../../third_party/googleapis/LICENSE");

/// One callee's .proto, its round trips, and the compile error if any.
fn proto_file(
    input: &KitInput<'_>,
    service: &str,
    routes: &BTreeMap<(String, String), RouteAcc<'_>>,
) -> (String, String, Vec<RouteTrip>, Option<String>) {
    let stem = file_stem(service);
    let package = format!("{stem}.v1");
    let svc_name = format!("{}Service", names::pascal(&stem));
    let mut rpcs = String::new();
    let mut messages = String::new();
    let mut uses_struct = false;
    let mut taken = BTreeSet::new();
    // (rpc, method, route, direction, message, mapping, docs, stub)
    let mut planned = Vec::new();
    for ((method, route), acc) in routes {
        let rn = names::route_name(method, route);
        let mut rpc = rn.rpc.clone();
        if !taken.insert(rpc.clone()) {
            rpc = format!("{rpc}{}", names::pascal(&method.to_ascii_lowercase()));
            let mut n = 2;
            while !taken.insert(rpc.clone()) {
                rpc = format!("{}{n}", rn.rpc);
                n += 1;
            }
        }
        let mut extra: Vec<(String, String)> = rn
            .params
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    format!(
                        "path parameter `{{{p}}}` of `{}` (a string in the URL)",
                        rn.http_path
                    ),
                )
            })
            .collect();
        let query = input
            .query_names
            .get(&(service.to_owned(), method.clone(), route.clone()));
        for q in query.into_iter().flatten() {
            extra.push((
                names::snake(q),
                format!("query parameter `{q}` (its name as seen; values are not kept)"),
            ));
        }
        let what = |d: &str| format!("`{method} {route}` {d} bodies");
        let req = proto::body_message(
            &format!("{rpc}Request"),
            &what("request"),
            &acc.request,
            &extra,
            input.infer_enums,
        );
        let resp = proto::body_message(
            &format!("{rpc}Response"),
            &what("response"),
            &acc.response,
            &[],
            input.infer_enums,
        );
        uses_struct |= req.uses_struct || resp.uses_struct;
        let clients: Vec<&str> = acc.clients.iter().map(String::as_str).collect();
        let _ = writeln!(
            rpcs,
            "  // {method} {route}: {} request(s) seen, from {}.",
            acc.requests,
            clients.join(", ")
        );
        let _ = writeln!(rpcs, "  rpc {rpc}({}) returns ({}) {{", req.name, resp.name);
        let _ = writeln!(rpcs, "    option (google.api.http) = {{");
        let verb = method.to_ascii_lowercase();
        match verb.as_str() {
            "get" | "put" | "post" | "delete" | "patch" => {
                let _ = writeln!(rpcs, "      {verb}: {}", proto::quote(&rn.http_path));
            }
            _ => {
                let _ = writeln!(
                    rpcs,
                    "      custom: {{ kind: {} path: {} }}",
                    proto::quote(method),
                    proto::quote(&rn.http_path)
                );
            }
        }
        match &req.mapping {
            BodyMapping::Message => {
                let _ = writeln!(rpcs, "      body: \"*\"");
            }
            BodyMapping::Field(f) => {
                let _ = writeln!(rpcs, "      body: {}", proto::quote(f));
            }
            BodyMapping::None => {}
        }
        if let BodyMapping::Field(f) = &resp.mapping {
            let _ = writeln!(rpcs, "      response_body: {}", proto::quote(f));
        }
        let _ = writeln!(rpcs, "    }};");
        let _ = writeln!(rpcs, "  }}");
        for (m, dir, body) in [
            (&req, "request", &acc.request),
            (&resp, "response", &acc.response),
        ] {
            messages.push('\n');
            messages.push_str(&m.text);
            planned.push((
                rpc.clone(),
                method.clone(),
                route.clone(),
                dir,
                m.name.clone(),
                m.mapping.clone(),
                body.docs.clone(),
                m.stub_reason.clone(),
            ));
        }
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "// The routes of `{service}` that the rollout plan moves to gRPC, as linkrank saw \
         them in {}.\n// Generated from the sampled JSON bodies (field names and types \
         only; no value of a body, header or query).\n// Field numbers are those the \
         protobuf sizes in the report were measured with: commonest keys first.\n// Each \
         rpc's google.api.http binding serves the old JSON clients unchanged through \
         grpc-gateway or Envoy's gRPC-JSON transcoder.",
        input.source
    );
    let _ = writeln!(text, "syntax = \"proto3\";\n\npackage {package};\n");
    let _ = writeln!(text, "import \"google/api/annotations.proto\";");
    if uses_struct {
        let _ = writeln!(text, "import \"google/protobuf/struct.proto\";");
    }
    let _ = writeln!(text, "\nservice {svc_name} {{");
    text.push_str(&rpcs);
    let _ = writeln!(text, "}}");
    text.push_str(&messages);
    let name = format!("{stem}.proto");
    let path = format!("proto/{name}");
    let pool = roundtrip::compile(&name, &text);
    let mut trips = Vec::new();
    for (rpc, method, route, dir, msg, mapping, docs, stub) in planned {
        let tally = match (&pool, &stub) {
            (Ok(pool), None) => {
                roundtrip::round_trip(pool, &format!("{package}.{msg}"), &mapping, &docs)
            }
            _ => roundtrip::Tally::default(),
        };
        trips.push(RouteTrip {
            service: service.to_owned(),
            rpc,
            method,
            route,
            direction: dir,
            stub,
            tally,
        });
    }
    (path, text, trips, pool.err())
}
