//! Reading the `links.json` document: every field may be null or missing (a TLS link has
//! no HTTP measures, a link only spans showed has no handshakes), so each read is an
//! `Option` and the page prints `-` for what is unknown.

use serde_json::Value;

/// The value at `path`, if every step exists.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    Some(cur)
}

/// A finite number at `path`.
pub fn num(v: &Value, path: &[&str]) -> Option<f64> {
    at(v, path)?.as_f64().filter(|x| x.is_finite())
}

/// A string at `path`, `""` when absent.
pub fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The array at `path`, empty when absent.
pub fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// `12.3` or `-`.
pub fn fmt(v: Option<f64>, decimals: usize) -> String {
    crate::report::fmt_opt(v, decimals)
}

/// A share as a percentage, or `-`.
pub fn pct(v: Option<f64>) -> String {
    crate::report::fmt_pct(v)
}

/// A scalar JSON value as display text (objects and arrays are not expected here).
pub fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Request rate of a link: requests/s when HTTP is visible, else connections/s over the
/// capture (an opaque TLS link still has a measurable load).
pub fn rate(link: &Value, capture_seconds: Option<f64>) -> (Option<f64>, &'static str) {
    if let Some(r) = num(link, &["requests_per_s", "mean"]) {
        return (Some(r), "requests/s");
    }
    let conns = num(link, &["connections"]);
    match (conns, capture_seconds) {
        (Some(c), Some(s)) if s > 0.0 => (Some(c / s), "connections/s"),
        _ => (None, "requests/s"),
    }
}

/// The colour of a recommended target (also used by the legend and the table badges).
pub fn target_colour(target: &str) -> &'static str {
    match target {
        "grpc" => "#2563eb",
        "broker" => "#d97706",
        "mesh" => "#7c3aed",
        "keep" => "#6b7280",
        _ => "#111827",
    }
}

/// The targets in legend order.
pub const TARGETS: [&str; 4] = ["grpc", "broker", "mesh", "keep"];
