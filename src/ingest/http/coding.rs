//! Content-Encoding: stream a body through gzip/deflate decoders into a counting sink.
//!
//! Only the decoded *length* is kept; the decoded bytes are discarded as they are produced,
//! so memory stays at the decoders' fixed windows whatever the body size. The one exception
//! is a JSON body sampled for `crate::ingest::serialization`, whose decoded bytes are kept up to a
//! fixed cap.

use std::io::{self, Write};

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};

use crate::ingest::serialization::Capture;

/// Counts decoded bytes; fails once `cap` is exceeded (decompression-bomb guard).
#[derive(Debug)]
pub(crate) struct Counter {
    n: u64,
    cap: u64,
    /// A JSON body's decoded bytes, kept (bounded) for the serialization sampler.
    kept: Option<Box<Capture>>,
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.n += buf.len() as u64;
        if self.n > self.cap {
            return Err(io::Error::other("decoded body over cap"));
        }
        if let Some(k) = &mut self.kept {
            k.push(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A chain of decoders, outermost (last applied coding) first.
pub(crate) enum Decoder {
    Count(Counter),
    Gzip(Box<GzDecoder<Decoder>>),
    Zlib(Box<ZlibDecoder<Decoder>>),
    RawDeflate(Box<DeflateDecoder<Decoder>>),
    /// `deflate` whose wrapping is not known until the first byte: RFC 9110 says zlib, but
    /// some servers send raw deflate.
    DeflateUndecided(Box<Decoder>),
    /// Placeholder while a variant is being replaced.
    Poisoned,
}

/// Content codings undone at most (real responses apply one, rarely two).
const MAX_CODINGS: usize = 4;

impl Decoder {
    /// A decoder for a Content-Encoding list, or None when it is not gzip/deflate based
    /// (identity only, or a coding we do not decode such as br).
    pub(crate) fn for_codings<'a>(
        codings: impl Iterator<Item = &'a str>,
        cap: u64,
    ) -> Option<Decoder> {
        let mut dec = Decoder::Count(Counter {
            n: 0,
            cap,
            kept: None,
        });
        let mut any = false;
        // Codings are listed in the order applied: the last one must be undone first, so
        // it wraps the others. Each decoder holds a 32 KiB window: a hostile header naming
        // thousands of codings would cost that much per coding, so more than
        // `MAX_CODINGS` leave the body unmeasured.
        for (n, c) in codings.enumerate() {
            if n >= MAX_CODINGS {
                return None;
            }
            let c = c.trim();
            if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") {
                dec = Decoder::Gzip(Box::new(GzDecoder::new(dec)));
                any = true;
            } else if c.eq_ignore_ascii_case("deflate") {
                dec = Decoder::DeflateUndecided(Box::new(dec));
                any = true;
            } else if !(c.is_empty() || c.eq_ignore_ascii_case("identity")) {
                return None;
            }
        }
        any.then_some(dec)
    }

    /// Feeds compressed bytes. Bytes after the end of a compressed stream are ignored.
    pub(crate) fn feed(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            if n == 0 {
                break;
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Ends the stream; returns the decoded length, or an error if the stream was cut short
    /// or corrupt.
    pub(crate) fn finish(&mut self) -> io::Result<u64> {
        match self {
            Decoder::Count(c) => Ok(c.n),
            Decoder::Gzip(d) => {
                d.try_finish()?;
                d.get_mut().finish()
            }
            Decoder::Zlib(d) => {
                d.try_finish()?;
                d.get_mut().finish()
            }
            Decoder::RawDeflate(d) => {
                d.try_finish()?;
                d.get_mut().finish()
            }
            // No byte ever came: an empty body is not a valid deflate stream.
            Decoder::DeflateUndecided(_) | Decoder::Poisoned => {
                Err(io::Error::other("empty deflate body"))
            }
        }
    }
}

impl Decoder {
    /// The innermost sink, which sees the decoded bytes.
    fn counter(&mut self) -> Option<&mut Counter> {
        match self {
            Decoder::Count(c) => Some(c),
            Decoder::Gzip(d) => d.get_mut().counter(),
            Decoder::Zlib(d) => d.get_mut().counter(),
            Decoder::RawDeflate(d) => d.get_mut().counter(),
            Decoder::DeflateUndecided(d) => d.counter(),
            Decoder::Poisoned => None,
        }
    }

    /// Keeps the decoded bytes in `c` (for the serialization sampler).
    pub(crate) fn keep(&mut self, c: Box<Capture>) {
        if let Some(k) = self.counter() {
            k.kept = Some(c);
        }
    }

    /// The decoded bytes kept, after [`Decoder::finish`].
    pub(crate) fn take_kept(&mut self) -> Option<Box<Capture>> {
        self.counter()?.kept.take()
    }
}

impl Write for Decoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Decoder::DeflateUndecided(_) = self {
            let Some(&b0) = buf.first() else { return Ok(0) };
            let Decoder::DeflateUndecided(inner) = std::mem::replace(self, Decoder::Poisoned)
            else {
                return Err(io::Error::other("decoder state"));
            };
            // A zlib header's first byte has compression method 8 and a window <= 32K.
            *self = if b0 & 0x0f == 8 && b0 >> 4 <= 7 {
                Decoder::Zlib(Box::new(ZlibDecoder::new(*inner)))
            } else {
                Decoder::RawDeflate(Box::new(DeflateDecoder::new(*inner)))
            };
        }
        match self {
            Decoder::Count(c) => c.write(buf),
            Decoder::Gzip(d) => d.write(buf),
            Decoder::Zlib(d) => d.write(buf),
            Decoder::RawDeflate(d) => d.write(buf),
            Decoder::DeflateUndecided(_) | Decoder::Poisoned => {
                Err(io::Error::other("decoder state"))
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(codings: &str, body: &[u8], step: usize, cap: u64) -> Option<u64> {
        let mut d = Decoder::for_codings(codings.split(','), cap)?;
        for c in body.chunks(step) {
            d.feed(c).ok()?;
        }
        d.finish().ok()
    }

    #[test]
    fn gzip_in_pieces() {
        let text = "hello world ".repeat(1000);
        let body = gz(text.as_bytes());
        for step in [1, 7, 100, body.len()] {
            assert_eq!(
                decode("gzip", &body, step, u64::MAX),
                Some(text.len() as u64)
            );
        }
        assert_eq!(
            decode("x-gzip", &body, 3, u64::MAX),
            Some(text.len() as u64)
        );
    }

    #[test]
    fn stacked_gzip_and_identity() {
        let text = b"abcabcabcabc-stacked";
        let twice = gz(&gz(text));
        assert_eq!(
            decode("identity, gzip, identity, gzip", &twice, 5, u64::MAX),
            Some(20)
        );
    }

    #[test]
    fn deflate_zlib_and_raw() {
        let text = vec![b'z'; 5000];
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).unwrap();
        let z = z.finish().unwrap();
        let mut r = DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(&text).unwrap();
        let r = r.finish().unwrap();
        assert_eq!(decode("deflate", &z, 2, u64::MAX), Some(5000));
        assert_eq!(decode("deflate", &r, 2, u64::MAX), Some(5000));
    }

    #[test]
    fn unknown_truncated_corrupt_and_capped() {
        assert!(Decoder::for_codings(["br"].into_iter(), 10).is_none());
        assert!(Decoder::for_codings(["identity"].into_iter(), 10).is_none());
        let body = gz(&[7u8; 4000]);
        assert_eq!(decode("gzip", &body[..body.len() - 4], 9, u64::MAX), None);
        assert_eq!(decode("gzip", b"not gzip at all", 9, u64::MAX), None);
        assert_eq!(decode("gzip", &body, 9, 3999), None);
        assert_eq!(decode("gzip", &body, 9, 4000), Some(4000));
    }
}
