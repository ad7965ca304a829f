//! Trace and span ids as JSON writes them: hex, or base64.
//!
//! OTLP/JSON says ids are hex strings, but protobuf's canonical JSON mapping writes a
//! `bytes` field as base64, and that is what protobuf's own `json_format`, Tempo's test
//! data, Jaeger's protojson and older exporters write. The two are told apart by length
//! and alphabet: an id of `n` bytes is `2n` hex digits, while its base64 is
//! `4 * ceil(n / 3)` characters padded (24 for a trace id, 12 for a span id) or
//! `ceil(4n / 3)` without padding (22 and 11), so no string of the right size can be
//! both. Hand-written around the base64 crate: the rule is the length test, a few lines.

use base64::alphabet;
use base64::engine::general_purpose::GeneralPurpose;
use base64::engine::{DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine;

const NOT_HEX: u8 = 0xff;
/// Value of each byte as a hex digit (either case), else `NOT_HEX`: a table lookup is
/// cheaper than `char::to_digit` on the 48 id digits of every span.
const HEX_DIGIT: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut i = 0;
    while i < 16 {
        let lower = b"0123456789abcdef"[i];
        t[lower as usize] = i as u8;
        t[lower.to_ascii_uppercase() as usize] = i as u8;
        i += 1;
    }
    t
};

/// Padding optional, as protobuf's JSON parsers accept it.
const CONFIG: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
/// protobuf's JSON parsers also take the URL-safe alphabet (`-` and `_`).
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);

/// `s` as hex the way opentelemetry-proto reads it (`const_hex::decode`: even length, an
/// optional `0x`, either case): `None` if it is not hex, else the value when it has exactly
/// `n` bytes, `Some(None)` when it has another length.
fn hex(s: &[u8], n: usize) -> Option<Option<u128>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digits = match s {
        [b'0', b'x' | b'X', rest @ ..] => rest,
        _ => s,
    };
    let mut v = 0u128;
    for &c in digits {
        let d = HEX_DIGIT[usize::from(c)];
        if d == NOT_HEX {
            return None;
        }
        v = v.wrapping_shl(4) | u128::from(d);
    }
    Some((digits.len() == 2 * n).then_some(v))
}

/// `s` as base64 of exactly `n` bytes (either alphabet, padded or not), else `None`.
pub fn base64_id(s: &[u8], n: usize) -> Option<u128> {
    let padded = n.div_ceil(3) * 4;
    let unpadded = (4 * n).div_ceil(3);
    if !(unpadded..=padded).contains(&s.len()) || n > 16 {
        return None;
    }
    let mut buf = [0u8; 18];
    let got = STANDARD
        .decode_slice(s, &mut buf)
        .or_else(|_| URL_SAFE.decode_slice(s, &mut buf))
        .ok()?;
    (got == n).then(|| {
        buf[..n]
            .iter()
            .fold(0u128, |a, &b| (a << 8) | u128::from(b))
    })
}

/// A bytes id of `n` bytes (16: trace, 8: span) from OTLP-style JSON: hex of exactly `2n`
/// digits, else base64 of exactly `n` bytes. `None` when it is neither hex nor such base64
/// (a malformed id: opentelemetry-proto rejects the document); `Some(None)` for hex of
/// another length (the empty string included), which the readers count as a span
/// without a valid id.
pub fn bytes_id(s: &[u8], n: usize) -> Option<Option<u128>> {
    match hex(s, n) {
        Some(Some(v)) => Some(Some(v)),
        other => base64_id(s, n).map(Some).or(other),
    }
}

/// A Jaeger or Zipkin id: hex of up to 32 digits (the Jaeger UI drops leading zeros, a
/// 64-bit id has 16), else base64 of 8 or 16 bytes (Jaeger's model protojson, Zipkin's
/// proto3 JSON). `None` if neither.
pub fn text_id(s: &str) -> Option<u128> {
    parse_hex(s).or_else(|| {
        let b = s.as_bytes();
        base64_id(b, 16).or_else(|| base64_id(b, 8))
    })
}

/// Hex of 1 to 32 digits (either case, no prefix or sign).
pub fn parse_hex(s: &str) -> Option<u128> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    s.bytes()
        .try_fold(0u128, |v, c| match HEX_DIGIT[usize::from(c)] {
            NOT_HEX => None,
            d => Some((v << 4) | u128::from(d)),
        })
}

/// Big-endian id bytes (OTLP protobuf) to an integer; `None` unless exactly `len` bytes
/// (16 for traces, 8 for spans).
pub fn id_from_bytes(b: &[u8], len: usize) -> Option<u128> {
    if b.len() != len {
        return None;
    }
    Some(b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python's `base64.b64encode(bytes.fromhex(h))`, written out: the oracle.
    const CASES: [(&str, &str); 4] = [
        (
            "0102030405060708090a0b0c0d0e0f10",
            "AQIDBAUGBwgJCgsMDQ4PEA==",
        ),
        (
            "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0",
            "//79/Pv6+fj39vX08/Lx8A==",
        ),
        ("1112131415161718", "ERITFBUWFxg="),
        ("fbff000000000001", "+/8AAAAAAAE="),
    ];

    #[test]
    fn hex_and_base64_of_one_id_give_one_value() {
        for (h, b) in CASES {
            let n = h.len() / 2;
            let want = u128::from_str_radix(h, 16).unwrap();
            assert_eq!(bytes_id(h.as_bytes(), n), Some(Some(want)), "{h}");
            assert_eq!(bytes_id(b.as_bytes(), n), Some(Some(want)), "{b}");
            // Without padding, and in the URL-safe alphabet.
            let bare = b.trim_end_matches('=');
            assert_eq!(bytes_id(bare.as_bytes(), n), Some(Some(want)), "{bare}");
            let url = b.replace('+', "-").replace('/', "_");
            assert_eq!(bytes_id(url.as_bytes(), n), Some(Some(want)), "{url}");
            assert_eq!(text_id(b), Some(want), "{b}");
            assert_eq!(text_id(h), Some(want), "{h}");
        }
    }

    #[test]
    fn lengths_tell_hex_from_base64() {
        // 22 hex digits are 11 bytes, not a trace id; as base64 they are 16 bytes.
        let s = b"0123456789abcdef01234A";
        assert_eq!(hex(s, 16), Some(None));
        assert!(bytes_id(s, 16).unwrap().is_some());
        // Hex of another length stays a (counted) bad id, as opentelemetry-proto has it.
        assert_eq!(bytes_id(b"abcd", 8), Some(None));
        assert_eq!(bytes_id(b"", 8), Some(None));
        // Neither: the document is malformed.
        assert_eq!(bytes_id(b"zz", 8), None);
        assert_eq!(bytes_id(b"AQIDBAUGBwgJCgsMDQ4PEA==", 8), None);
        assert_eq!(bytes_id(b"ERITFBUWFxg=", 16), None);
        assert_eq!(parse_hex("00ff"), Some(255));
        assert_eq!(parse_hex("+ff"), None);
        assert_eq!(parse_hex(&"f".repeat(33)), None);
    }
}
