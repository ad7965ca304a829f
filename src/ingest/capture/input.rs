//! The byte stream under pcap-parser: a plain file or a gzip decoder, with the sniffed head
//! replayed first. Hand-written because pcap-parser needs two things `Read` combinators
//! do not give: each `read` fills the whole buffer (its readers parse the header from a
//! single first read, and a short read of a decoder would look like a partial header),
//! and a read error must not be lost (pcap-parser maps it to a bare `ReadError`), so the
//! error is kept here and the stream reports end of input instead.

use std::io::{self, Read};
use std::sync::{Arc, OnceLock};

use super::sniff::SNIFF_LEN;

/// A read error kept for the owner of the stream, shared because pcap-parser owns the
/// reader once built.
pub type ReadFault = Arc<OnceLock<io::Error>>;

pub struct FillRead {
    inner: Box<dyn Read + Send>,
    head: [u8; SNIFF_LEN],
    head_len: usize,
    head_pos: usize,
    fault: ReadFault,
    ended: bool,
}

impl FillRead {
    /// `fault` receives the first read error; several layers (file, decoder) may share it.
    pub fn new(inner: Box<dyn Read + Send>, fault: ReadFault) -> Self {
        FillRead {
            inner,
            head: [0; SNIFF_LEN],
            head_len: 0,
            head_pos: 0,
            fault,
            ended: false,
        }
    }

    /// Reads the first `SNIFF_LEN` bytes (fewer at end of input) and keeps them to be
    /// replayed by `read`. Errors are returned directly: nothing has been parsed yet.
    pub fn peek_head(&mut self) -> io::Result<&[u8]> {
        while self.head_len < SNIFF_LEN {
            match self.inner.read(&mut self.head[self.head_len..]) {
                Ok(0) => break,
                Ok(n) => self.head_len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.head[..self.head_len])
    }
}

impl Read for FillRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        if self.head_pos < self.head_len {
            let take = (self.head_len - self.head_pos).min(buf.len());
            buf[..take].copy_from_slice(&self.head[self.head_pos..self.head_pos + take]);
            self.head_pos += take;
            n = take;
        }
        while n < buf.len() && !self.ended {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => self.ended = true,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Keep the first error; what was read before it is still delivered.
                    let _ = self.fault.set(e);
                    self.ended = true;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most 3 bytes per call, then fails.
    struct Dribble(Vec<u8>, usize);
    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
            }
            let k = buf.len().min(3).min(self.0.len() - self.1);
            buf[..k].copy_from_slice(&self.0[self.1..self.1 + k]);
            self.1 += k;
            Ok(k)
        }
    }

    #[test]
    fn replays_head_fills_buffer_and_keeps_error() {
        let data: Vec<u8> = (0u8..40).collect();
        let fault = ReadFault::default();
        let mut r = FillRead::new(Box::new(Dribble(data.clone(), 0)), Arc::clone(&fault));
        assert_eq!(r.peek_head().unwrap(), &data[..SNIFF_LEN]);
        let mut buf = [0u8; 64];
        let n = r.read(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &data[..],
            "one read returns everything, head included"
        );
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert_eq!(
            fault.get().map(|e| e.kind()),
            Some(io::ErrorKind::UnexpectedEof)
        );
    }
}
