//! HTTP/1.0 and 1.1 message framing and request/response pairing (httparse).
