//! Trace ids from request headers (W3C `traceparent`, B3, `X-Request-Id`), for HTTP/1 and
//! HTTP/2 alike. Privacy: only the ids leave, never another part of a value.

/// The trace ids of a request's headers, whatever their order: W3C `traceparent`, else
/// B3 (single header, else the `X-B3-TraceId` and `X-B3-SpanId` pair), else
/// `X-Request-Id`. Shared by HTTP/1 and HTTP/2.
#[derive(Default)]
pub(crate) struct TraceHeaders {
    traceparent: Option<(String, String)>,
    b3: Option<(String, String)>,
    b3_trace: Option<String>,
    b3_span: Option<String>,
    request_id: Option<String>,
}

impl TraceHeaders {
    /// One header; returns whether its name is one of the trace headers.
    pub(crate) fn offer(&mut self, name: &str, value: &str) -> bool {
        if name.eq_ignore_ascii_case("traceparent") {
            if self.traceparent.is_none() {
                self.traceparent = traceparent(value);
            }
        } else if name.eq_ignore_ascii_case("b3") {
            if self.b3.is_none() {
                self.b3 = b3_single(value);
            }
        } else if name.eq_ignore_ascii_case("x-b3-traceid") {
            self.b3_trace = b3_trace_id(value);
        } else if name.eq_ignore_ascii_case("x-b3-spanid") {
            self.b3_span = b3_span_id(value);
        } else if name.eq_ignore_ascii_case("x-request-id") {
            if self.request_id.is_none() {
                self.request_id = request_trace_id(value);
            }
        } else {
            return false;
        }
        true
    }

    /// (trace id, caller's span id) by the precedence above.
    pub(crate) fn finish(self) -> Option<(String, Option<String>)> {
        self.traceparent
            .or(self.b3)
            .or_else(|| self.b3_trace.zip(self.b3_span))
            .map(|(t, s)| (t, Some(s)))
            .or_else(|| self.request_id.map(|t| (t, None)))
    }
}

/// A B3 trace id: 16 or 32 lower-case hex digits, not all zero; a 64-bit id is
/// zero-extended to 128 bits as Zipkin does.
fn b3_trace_id(v: &str) -> Option<String> {
    let v = v.trim();
    let hex = v.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if !hex || !(v.len() == 16 || v.len() == 32) || v.bytes().all(|c| c == b'0') {
        return None;
    }
    Some(format!("{v:0>32}"))
}

/// A B3 span id: 16 lower-case hex digits, not all zero.
fn b3_span_id(v: &str) -> Option<String> {
    let v = v.trim();
    let hex = v.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    (hex && v.len() == 16 && !v.bytes().all(|c| c == b'0')).then(|| v.to_owned())
}

/// B3 single header `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`; a bare
/// sampling decision (`0`, `1`, `d`) carries no ids.
fn b3_single(v: &str) -> Option<(String, String)> {
    let mut parts = v.trim().split('-');
    let trace = b3_trace_id(parts.next()?)?;
    let span = b3_span_id(parts.next()?)?;
    Some((trace, span))
}

/// `X-Request-Id` as a trace id: proxies (nginx `$request_id`, Envoy) copy it from a
/// request to the calls made for it. A UUID or 32-hex value is used as it is; any other
/// value is hashed (FNV-1a, 128 bits) so that its text never reaches a table.
fn request_trace_id(v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > 200 {
        return None;
    }
    let hex: String = v.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        let hex = hex.to_ascii_lowercase();
        return (!hex.bytes().all(|c| c == b'0')).then_some(hex);
    }
    // FNV-1a 128 (no crate needed for one hash of a short id).
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in v.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    (h != 0).then(|| format!("{h:032x}"))
}

/// W3C Trace Context `traceparent`: `version-traceid-parentid-flags`, lower-case hex.
/// Version ff is invalid; all-zero ids are invalid; later versions may append `-fields`.
pub(crate) fn traceparent(v: &str) -> Option<(String, String)> {
    let b = v.as_bytes();
    let lower_hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (ver, trace, parent, flags) = (&b[..2], &b[3..35], &b[36..52], &b[53..55]);
    if !(lower_hex(ver) && lower_hex(trace) && lower_hex(parent) && lower_hex(flags)) {
        return None;
    }
    if ver == b"ff" || (ver == b"00" && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
        return None;
    }
    let zero = |s: &[u8]| s.iter().all(|&c| c == b'0');
    if zero(trace) || zero(parent) {
        return None;
    }
    Some((v[3..35].to_owned(), v[36..52].to_owned()))
}
