//! The gRPC names an HTTP/1 exchange would have: a method path and a status code.

/// Longest method name kept: real ones are short verbs and nouns.
const MAX_METHOD: usize = 48;

/// A stable gRPC method path for an exchange: `/linkrank.<Service>/<Method>`, where
/// Service is the first label of the Host camel-cased (`orders-api.internal` ->
/// `OrdersApi`; `Service` when there is none or it is not a name) and Method the HTTP
/// method followed by the templated route camel-cased (`GET /orders/{id}` ->
/// `GetOrdersId`), cut at 48 characters. Only its length and letters matter for the
/// sizes; the same server and route give the same path, as one RPC method would.
pub fn grpc_path(host: Option<&str>, method: &str, route: Option<&str>) -> String {
    let label = host
        .map(|h| h.split([':', '.']).next().unwrap_or(""))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or("service");
    let mut path = String::from("/linkrank.");
    camel(label, &mut path, usize::MAX);
    path.push('/');
    let start = path.len();
    camel(&method.to_ascii_lowercase(), &mut path, start + MAX_METHOD);
    camel(route.unwrap_or(""), &mut path, start + MAX_METHOD);
    path
}

/// Appends the alphanumeric words of `s` capitalised, while `out` is shorter than `max`.
fn camel(s: &str, out: &mut String, max: usize) {
    for word in s.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if out.len() >= max {
                break;
            }
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out.truncate(max.min(out.len()));
}

/// The gRPC status code a gateway maps an HTTP status to (as grpc-gateway and Envoy's
/// grpc-http1 bridge do, inverted): 2xx OK, then the usual pairs, else UNKNOWN.
pub fn grpc_status(http: u16) -> u8 {
    match http {
        200..=299 => 0,
        400 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        429 => 8,
        499 => 1,
        500 => 13,
        501 => 12,
        503 => 14,
        504 => 4,
        _ => 2,
    }
}
