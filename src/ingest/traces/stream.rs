//! Streaming over big JSON documents with serde visitors: the elements of one array are
//! handed to a callback one at a time, so memory holds one element, never the document.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// Deserializes a JSON array, calling `f` on each element as it is parsed.
pub(crate) struct EachElement<'f, T, F> {
    pub f: &'f mut F,
    _t: PhantomData<fn() -> T>,
}

impl<'f, T, F> EachElement<'f, T, F> {
    pub fn new(f: &'f mut F) -> Self {
        EachElement { f, _t: PhantomData }
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> DeserializeSeed<'de> for EachElement<'_, T, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> Visitor<'de> for EachElement<'_, T, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(x) = seq.next_element::<T>()? {
            (self.f)(x);
        }
        Ok(())
    }
    // `null` where an array was expected: nothing to stream.
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Deserializes a JSON object, streaming the array under one of `keys` through `f` and
/// skipping every other member; an object under a `wrappers` key (Jaeger's
/// `{"result": {...}}`) is searched the same way. Returns whether the key was present.
pub(crate) struct KeyedArray<'f, T, F> {
    pub keys: &'static [&'static str],
    pub wrappers: &'static [&'static str],
    pub f: &'f mut F,
    _t: PhantomData<fn() -> T>,
}

impl<'f, T, F> KeyedArray<'f, T, F> {
    pub fn new(keys: &'static [&'static str], f: &'f mut F) -> Self {
        KeyedArray {
            keys,
            wrappers: &[],
            f,
            _t: PhantomData,
        }
    }

    /// Also looks inside the object under each of `wrappers`.
    pub fn within(mut self, wrappers: &'static [&'static str]) -> Self {
        self.wrappers = wrappers;
        self
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> DeserializeSeed<'de> for KeyedArray<'_, T, F> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> Visitor<'de> for KeyedArray<'_, T, F> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with {:?}", self.keys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.keys.contains(&k.as_ref()) {
                map.next_value_seed(EachElement::<T, F>::new(self.f))?;
                found = true;
            } else if self.wrappers.contains(&k.as_ref()) {
                // One level: a wrapper inside a wrapper is not a shape any tool writes.
                found |= map.next_value_seed(KeyedArray::<T, F>::new(self.keys, self.f))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Longest JSON string or number in a streamed document. serde_json holds a string (and
/// the digits of a long number) whole while it parses it, so without this bound one
/// value of a gigabyte would cost that much memory; 16 MiB is far beyond any attribute an
/// SDK exports.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 << 20;

/// Counts bytes so coverage can report them for streamed documents, and fails the read
/// when one string or number token grows past `max_token`.
pub(crate) struct CountingReader<R> {
    inner: R,
    n: u64,
    max_token: usize,
    /// Bytes of the token being read (0 between tokens).
    token: usize,
    in_string: bool,
    escaped: bool,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R, max_token: usize) -> Self {
        CountingReader {
            inner,
            n: 0,
            max_token,
            token: 0,
            in_string: false,
            escaped: false,
        }
    }

    /// Follows strings (with escapes) and bare tokens over `bytes`; true once a token is
    /// over the bound.
    fn over_bound(&mut self, bytes: &[u8]) -> bool {
        for &c in bytes {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if c == b'\\' {
                    self.escaped = true;
                } else if c == b'"' {
                    self.in_string = false;
                    self.token = 0;
                    continue;
                }
                self.token += 1;
            } else {
                match c {
                    b'"' => {
                        self.in_string = true;
                        self.token = 0;
                    }
                    b'{' | b'}' | b'[' | b']' | b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => {
                        self.token = 0
                    }
                    _ => self.token += 1,
                }
            }
            if self.token > self.max_token {
                return true;
            }
        }
        false
    }
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        if self.over_bound(&buf[..k]) {
            return Err(std::io::Error::other(format!(
                "a JSON string or number longer than {} bytes",
                self.max_token
            )));
        }
        Ok(k)
    }
}

pub(crate) type DocDeserializer<'r, R> =
    serde_json::Deserializer<serde_json::de::IoRead<&'r mut CountingReader<R>>>;

/// Runs `body` over one JSON document read from `r` (it streams what it wants and
/// returns whether the expected content was there), then, unless `more` (other documents
/// may follow), checks nothing follows; errors go to `ing` with line and column, and what
/// was read before them is kept. Returns false after an error.
pub(crate) fn json_document<R: std::io::Read>(
    r: R,
    file: &std::path::Path,
    ing: &mut super::assemble::Ingest,
    missing: &str,
    more: bool,
    body: impl FnOnce(
        &mut DocDeserializer<'_, R>,
        &mut super::assemble::Ingest,
    ) -> serde_json::Result<bool>,
) -> bool {
    use super::error::{Location, TraceError};
    let mut counted = CountingReader::new(r, MAX_TOKEN_BYTES);
    let mut de = serde_json::Deserializer::from_reader(&mut counted);
    ing.coverage().documents += 1;
    let res = body(&mut de, ing).and_then(|found| {
        if more {
            Ok(found)
        } else {
            de.end().map(|()| found)
        }
    });
    let ok = match res {
        Ok(true) => true,
        Ok(false) => {
            ing.error(TraceError::malformed(file, Location::File, missing));
            true
        }
        Err(e) => {
            ing.coverage().malformed_documents += 1;
            ing.error(TraceError::from_json(file, None, &e));
            false
        }
    };
    drop(de);
    ing.coverage().bytes += counted.n;
    ok
}

/// `json_document` over JSON documents that follow one another (pretty-printed requests
/// appended to one file, a gRPC-gateway stream of `{"result": ...}` chunks), until the
/// end of the file or the first document in error.
pub(crate) fn json_documents<R: std::io::BufRead>(
    mut r: R,
    file: &std::path::Path,
    ing: &mut super::assemble::Ingest,
    missing: &str,
    mut body: impl FnMut(
        &mut DocDeserializer<'_, &mut R>,
        &mut super::assemble::Ingest,
    ) -> serde_json::Result<bool>,
) -> std::io::Result<()> {
    loop {
        // Whitespace between documents; serde_json reads no byte past a document's
        // closing brace, so the next one starts here.
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let at_doc = ws < buf.len();
            r.consume(ws);
            ing.coverage().bytes += ws as u64;
            if at_doc {
                break;
            }
        }
        if !json_document(&mut r, file, ing, missing, true, &mut body) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn read_all(doc: &[u8], max: usize) -> std::io::Result<u64> {
        let mut r = CountingReader::new(doc, max);
        let mut buf = [0u8; 3];
        loop {
            match r.read(&mut buf)? {
                0 => return Ok(r.n),
                _ => continue,
            }
        }
    }

    #[test]
    fn long_strings_and_numbers_fail_the_read_short_ones_pass() {
        assert_eq!(
            read_all(br#"{"a": "12345", "b": [1, 2.5]}"#, 5).unwrap(),
            29
        );
        assert!(read_all(br#"{"a": "123456"}"#, 5).is_err());
        assert!(read_all(br#"{"a": 1234567}"#, 5).is_err());
        // An escaped quote does not end the string; structure inside a string is text.
        assert!(read_all(br#"{"a": "1\"2,4"}"#, 5).is_err());
        assert_eq!(read_all(br#"{"a": "1\"2"}"#, 5).unwrap(), 13);
        // Whitespace between tokens is not a token, however long.
        assert!(read_all(format!("[{}1]", " ".repeat(100)).as_bytes(), 5).is_ok());
    }
}
