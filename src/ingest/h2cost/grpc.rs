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
    let mut path = String::new();
    grpc_path_into(host, method, route, &mut path);
    path
}

/// [`grpc_path`] written into `path` (cleared first), which the replay reuses.
pub fn grpc_path_into(host: Option<&str>, method: &str, route: Option<&str>, path: &mut String) {
    let label = host
        .map(|h| h.split([':', '.']).next().unwrap_or(""))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or("service");
    path.clear();
    path.push_str("/linkrank.");
    camel(label, path, usize::MAX, Rest::AsIs);
    path.push('/');
    let start = path.len();
    camel(method, path, start + MAX_METHOD, Rest::Lower);
    camel(route.unwrap_or(""), path, start + MAX_METHOD, Rest::AsIs);
}

/// What [`camel`] does with the letters after a word's first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rest {
    AsIs,
    /// Lower-cased (the HTTP method: `GET` -> `Get`).
    Lower,
}

/// Appends the alphanumeric words of `s` capitalised, while `out` is shorter than `max`.
fn camel(s: &str, out: &mut String, max: usize, rest: Rest) {
    for word in s.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if out.len() >= max {
                break;
            }
            out.push(first.to_ascii_uppercase());
            match rest {
                Rest::AsIs => out.extend(chars),
                Rest::Lower => out.extend(chars.map(|c| c.to_ascii_lowercase())),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The path as first defined: the whole method lower-cased, then camel-cased.
    fn reference(host: Option<&str>, method: &str, route: Option<&str>) -> String {
        let label = host
            .map(|h| h.split([':', '.']).next().unwrap_or(""))
            .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
            .unwrap_or("service");
        let mut path = String::from("/linkrank.");
        camel(label, &mut path, usize::MAX, Rest::AsIs);
        path.push('/');
        let start = path.len();
        camel(
            &method.to_ascii_lowercase(),
            &mut path,
            start + MAX_METHOD,
            Rest::AsIs,
        );
        camel(
            route.unwrap_or(""),
            &mut path,
            start + MAX_METHOD,
            Rest::AsIs,
        );
        path
    }

    proptest::proptest! {
        /// Written into a reused buffer, the path is the reference's, whatever the method
        /// (one word or several, any case, longer than the cut) and route.
        #[test]
        fn the_reused_buffer_gives_the_reference_path(
            method in "[A-Za-z0-9_-]{0,60}",
            route in proptest::option::of("(/[a-z{}0-9]{0,12}){0,6}"),
            host in proptest::option::of("[a-z0-9.:-]{0,20}"),
        ) {
            let mut path = String::from("left over");
            grpc_path_into(host.as_deref(), &method, route.as_deref(), &mut path);
            proptest::prop_assert_eq!(&path, &reference(host.as_deref(), &method, route.as_deref()));
        }
    }
}
