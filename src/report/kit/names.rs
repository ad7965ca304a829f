//! Names in the kit: protobuf identifiers from JSON keys and service names, and rpc names
//! from observed routes in the style of Google's API design guide (standard methods Get,
//! List, Create, Update, Delete; a custom verb for an action route).
//!
//! Hand-written: the rules are small and specific to templated routes (`/orders/{id}`),
//! which no naming crate knows.

/// Path segments that name an API or its version rather than a resource.
const NOISE_SEGMENTS: &[&str] = &["api", "rest", "v1", "v2", "v3", "v4", "internal"];

/// Words of an identifier: runs of ASCII letters and digits, split at case changes
/// (`orderId` -> `order`, `id`).
pub fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `lower_snake_case`, a valid protobuf field name (`field_` before a leading digit).
pub fn snake(s: &str) -> String {
    let w = words(s).join("_");
    if w.is_empty() {
        "field".to_owned()
    } else if w.starts_with(|c: char| c.is_ascii_digit()) {
        format!("field_{w}")
    } else {
        w
    }
}

/// `PascalCase`, a valid protobuf type name (`T` before a leading digit).
pub fn pascal(s: &str) -> String {
    let p: String = words(s)
        .iter()
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    if p.is_empty() {
        "Value".to_owned()
    } else if p.starts_with(|c: char| c.is_ascii_digit()) {
        format!("T{p}")
    } else {
        p
    }
}

/// `UPPER_SNAKE_CASE` of a type name.
pub fn upper_snake(s: &str) -> String {
    words(s).join("_").to_ascii_uppercase()
}

/// The lowerCamelCase JSON name protobuf gives a field name by default.
pub fn default_json_name(field: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in field.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Nouns ending in `s` that name one thing (a GET of one is a Get, not a List).
const SINGULAR_S: &[&str] = &[
    "details",
    "status",
    "settings",
    "stats",
    "metrics",
    "analytics",
    "address",
    "progress",
    "access",
    "news",
    "bonus",
    "canvas",
    "alias",
    "census",
    "virus",
    "basis",
    "analysis",
];

/// A naive English singular (`orders` -> `order`, `entries` -> `entry`).
pub fn singular(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if SINGULAR_S.iter().any(|w| lower.ends_with(w)) || lower.ends_with("us") {
        return s.to_owned();
    }
    if let Some(x) = s.strip_suffix("ies") {
        format!("{x}y")
    } else if s.ends_with("sses") {
        s[..s.len() - 2].to_owned()
    } else if s.ends_with('s') && !s.ends_with("ss") && s.len() > 1 {
        s[..s.len() - 1].to_owned()
    } else {
        s.to_owned()
    }
}

/// An observed route as the kit sees it: its variables named, its rpc named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteName {
    /// `GetOrder`, `ListOrders`, `CreateCharge`...
    pub rpc: String,
    /// One field name per `{id}` of the route, in order.
    pub params: Vec<String>,
    /// The route with each `{id}` replaced by `{<param>}` (a `google.api.http` path).
    pub http_path: String,
}

/// Names an observed route (`method` and a templated `route`).
pub fn route_name(method: &str, route: &str) -> RouteName {
    // (segment, is a variable)
    let segs: Vec<(&str, bool)> = route
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| (s, s == "{id}"))
        .collect();
    let mut params = Vec::new();
    let mut path = String::new();
    for (i, (s, var)) in segs.iter().enumerate() {
        path.push('/');
        if *var {
            let base = i
                .checked_sub(1)
                .and_then(|j| segs.get(j))
                .filter(|(p, v)| !v && !NOISE_SEGMENTS.contains(p))
                .map_or_else(|| "id".to_owned(), |(p, _)| snake(&singular(p)) + "_id");
            let mut name = base.clone();
            let mut n = 2;
            while params.contains(&name) {
                name = format!("{base}_{n}");
                n += 1;
            }
            path.push('{');
            path.push_str(&name);
            path.push('}');
            params.push(name);
        } else {
            path.push_str(s);
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    let literals: Vec<&str> = segs
        .iter()
        .filter(|(s, v)| !v && !NOISE_SEGMENTS.contains(s))
        .map(|(s, _)| *s)
        .collect();
    let ends_in_var = segs.last().is_some_and(|(_, v)| *v);
    let last = literals.last().copied().unwrap_or("root");
    // The resource a trailing literal belongs to: `/orders/{id}/details` -> Order.
    let owner = || {
        let n = segs.len();
        if n >= 3 && segs[n - 2].1 && !segs[n - 3].1 {
            pascal(&singular(segs[n - 3].0))
        } else {
            String::new()
        }
    };
    let m = method.to_ascii_uppercase();
    let rpc = match (m.as_str(), ends_in_var) {
        ("GET" | "HEAD", true) => format!("Get{}", pascal(&singular(last))),
        ("GET" | "HEAD", false) if last.ends_with('s') && singular(last) != last => {
            format!("List{}{}", owner(), pascal(last))
        }
        ("GET" | "HEAD", false) => format!("Get{}{}", owner(), pascal(last)),
        ("POST", false) if owner().is_empty() => format!("Create{}", pascal(&singular(last))),
        // A literal after a resource id: an action on it (`POST /orders/{id}/cancel`).
        ("POST", false) => format!("{}{}", pascal(last), owner()),
        ("POST", true) => format!("Post{}", pascal(&singular(last))),
        ("PUT" | "PATCH", _) => format!("Update{}{}", owner(), pascal(&singular(last))),
        ("DELETE", _) => format!("Delete{}{}", owner(), pascal(&singular(last))),
        (other, _) => format!("{}{}", pascal(&other.to_ascii_lowercase()), pascal(last)),
    };
    RouteName {
        rpc,
        params,
        http_path: path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_names_follow_the_standard_methods() {
        let n = |m, r| route_name(m, r).rpc;
        assert_eq!(n("GET", "/orders/{id}"), "GetOrder");
        assert_eq!(n("GET", "/orders"), "ListOrders");
        assert_eq!(n("POST", "/orders"), "CreateOrder");
        assert_eq!(n("POST", "/charges"), "CreateCharge");
        assert_eq!(n("GET", "/orders/{id}/details"), "GetOrderDetails");
        assert_eq!(n("GET", "/api/orders/{id}"), "GetOrder");
        assert_eq!(n("POST", "/orders/{id}/cancel"), "CancelOrder");
        assert_eq!(n("DELETE", "/orders/{id}"), "DeleteOrder");
        assert_eq!(n("PATCH", "/users/{id}"), "UpdateUser");
        assert_eq!(n("GET", "/users/{id}/risk"), "GetUserRisk");
        assert_eq!(n("GET", "/categories/{id}"), "GetCategory");
        assert_eq!(n("GET", "/orders/{id}/items"), "ListOrderItems");
    }

    #[test]
    fn path_variables_are_named_after_their_collection() {
        let r = route_name("GET", "/orders/{id}/items/{id}");
        assert_eq!(r.params, vec!["order_id", "item_id"]);
        assert_eq!(r.http_path, "/orders/{order_id}/items/{item_id}");
        let r = route_name("GET", "/{id}/{id}");
        assert_eq!(r.params, vec!["id", "id_2"]);
    }

    #[test]
    fn identifiers_from_keys() {
        assert_eq!(snake("orderId"), "order_id");
        assert_eq!(snake("order_id"), "order_id");
        assert_eq!(snake("Content-Type"), "content_type");
        assert_eq!(snake("3d"), "field_3d");
        assert_eq!(pascal("shipping_address"), "ShippingAddress");
        assert_eq!(default_json_name("order_id"), "orderId");
        assert_eq!(upper_snake("OrderStatus"), "ORDER_STATUS");
        assert_eq!(singular("addresses"), "address");
    }
}
