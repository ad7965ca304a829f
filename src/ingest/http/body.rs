//! Body framing: Content-Length, chunked, close-delimited. Bytes are counted, never copied.

/// Longest chunk-size line (size + extensions) or trailer line we accept.
const MAX_LINE: u32 = 16 << 10;

/// Streaming chunked-transfer decoder (RFC 9112 §7.1). Hand-written because httparse only
/// parses a chunk-size line that is whole in one buffer, and ours may split anywhere.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chunked {
    st: CSt,
    size: u64,
    digits: u8,
    line: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum CSt {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    FinalLf,
    Done,
}

/// Broken chunk framing. `consumed` bytes of the buffer given to `feed` were framing or
/// data before the bad byte; they are still body bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkError {
    pub consumed: usize,
}

impl Chunked {
    /// Consumes framing and data from `b`, passing chunk data to `on_data`. Returns the bytes
    /// consumed and whether the body ended (the final CRLF after the trailers).
    pub(crate) fn feed<'a>(
        &mut self,
        b: &'a [u8],
        on_data: &mut impl FnMut(&'a [u8]),
    ) -> Result<(usize, bool), ChunkError> {
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match self.st {
                CSt::Data => {
                    let k = (b.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    on_data(&b[i..i + k]);
                    self.size -= k as u64;
                    i += k;
                    if self.size == 0 {
                        self.st = CSt::DataCr;
                    }
                    continue;
                }
                CSt::Size => match c {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.digits >= 16 {
                            return Err(ChunkError { consumed: i });
                        }
                        let d = (c as char).to_digit(16).unwrap_or(0) as u64;
                        self.size = self.size << 4 | d;
                        self.digits += 1;
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => self.st = CSt::Ext,
                    b'\r' if self.digits > 0 => self.st = CSt::SizeLf,
                    b'\n' if self.digits > 0 => self.size_line_done(),
                    _ => return Err(ChunkError { consumed: i }),
                },
                CSt::Ext => {
                    self.line += 1;
                    match c {
                        b'\r' => self.st = CSt::SizeLf,
                        b'\n' => self.size_line_done(),
                        _ if self.line > MAX_LINE => return Err(ChunkError { consumed: i }),
                        _ => {}
                    }
                }
                CSt::SizeLf => match c {
                    b'\n' => self.size_line_done(),
                    _ => return Err(ChunkError { consumed: i }),
                },
                CSt::DataCr => match c {
                    b'\r' => self.st = CSt::DataLf,
                    // Bare LF tolerated, as most parsers do.
                    b'\n' => self.next_chunk(),
                    _ => return Err(ChunkError { consumed: i }),
                },
                CSt::DataLf => match c {
                    b'\n' => self.next_chunk(),
                    _ => return Err(ChunkError { consumed: i }),
                },
                CSt::TrailerStart => match c {
                    b'\r' => self.st = CSt::FinalLf,
                    b'\n' => self.st = CSt::Done,
                    _ => {
                        self.line = 1;
                        self.st = CSt::Trailer;
                    }
                },
                CSt::Trailer => {
                    self.line += 1;
                    if c == b'\n' {
                        self.st = CSt::TrailerStart;
                    } else if self.line > MAX_LINE {
                        return Err(ChunkError { consumed: i });
                    }
                }
                CSt::FinalLf => match c {
                    b'\n' => self.st = CSt::Done,
                    _ => return Err(ChunkError { consumed: i }),
                },
                CSt::Done => return Ok((i, true)),
            }
            i += 1;
            if self.st == CSt::Done {
                return Ok((i, true));
            }
        }
        Ok((i, self.st == CSt::Done))
    }

    /// A capture gap of `len` bytes lying strictly inside chunk data can be skipped without
    /// losing the framing. Returns false when it would touch framing bytes.
    pub(crate) fn skip_data(&mut self, len: u64) -> bool {
        if self.st == CSt::Data && len < self.size {
            self.size -= len;
            true
        } else {
            false
        }
    }

    fn size_line_done(&mut self) {
        self.line = 0;
        self.st = if self.size == 0 {
            CSt::TrailerStart
        } else {
            CSt::Data
        };
    }

    fn next_chunk(&mut self) {
        self.st = CSt::Size;
        self.size = 0;
        self.digits = 0;
        self.line = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5;name=\"va;lue\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\nNEXT";

    fn run(parts: &[&[u8]]) -> Result<(usize, usize, bool), ChunkError> {
        let mut c = Chunked::default();
        let (mut consumed, mut data) = (0, 0);
        for p in parts {
            let (n, done) = c.feed(p, &mut |d: &[u8]| data += d.len())?;
            consumed += n;
            if done {
                return Ok((consumed, data, true));
            }
            assert_eq!(n, p.len());
        }
        Ok((consumed, data, false))
    }

    #[test]
    fn whole_and_every_split() {
        let framed = BODY.len() - 4; // "NEXT" is the next message
        assert_eq!(run(&[BODY]), Ok((framed, 31, true)));
        for i in 0..=BODY.len() {
            for j in i..=BODY.len() {
                let r = run(&[&BODY[..i], &BODY[i..j], &BODY[j..]]);
                assert_eq!(r, Ok((framed, 31, true)), "split at {i},{j}");
            }
        }
    }

    #[test]
    fn bare_lf_and_errors() {
        assert_eq!(run(&[b"3\nabc\n0\n\n"]), Ok((9, 3, true))); // 2 + 4 + 2 + 1
        assert!(run(&[b"zz\r\n"]).is_err());
        assert!(run(&[b"\r\n"]).is_err());
        // The size line and the data before the bad byte were consumed.
        assert_eq!(run(&[b"3\r\nabcX"]), Err(ChunkError { consumed: 6 }));
        assert!(run(&[b"11111111111111111\r\n"]).is_err());
        assert_eq!(run(&[b"ffffffffffffffff\r\nab"]), Ok((20, 2, false)));
    }

    #[test]
    fn gap_inside_data() {
        let mut c = Chunked::default();
        let (n, done) = c.feed(b"10\r\n0123", &mut |_| {}).unwrap();
        assert_eq!((n, done), (8, false));
        assert!(c.skip_data(10));
        assert!(!c.skip_data(2), "would swallow the CRLF");
        let (n, done) = c.feed(b"ef\r\n0\r\n\r\n", &mut |_| {}).unwrap();
        assert_eq!((n, done), (9, true));
    }
}
