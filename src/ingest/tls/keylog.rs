//! TLS session secrets in the NSS key log format (what `SSLKEYLOGFILE` makes curl, browsers,
//! Go, Java agents and `openssl s_client -keylogfile` write; also the payload of a pcapng
//! Decryption Secrets Block of type `TLSK`).
//!
//! Each line is `LABEL <client_random hex> <secret hex>`; the client random (32 bytes) says
//! which connection the secret belongs to. Kept: `CLIENT_RANDOM` (TLS 1.2 master secret),
//! and the TLS 1.3 `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
//! `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`. Other labels (`EXPORTER_SECRET`,
//! `EARLY_EXPORTER_SECRET`, `CLIENT_EARLY_TRAFFIC_SECRET`, `RSA`) and comments are skipped.
//!
//! The secrets never leave this process: the types here implement no `Display` or
//! `Serialize`, and their `Debug` prints counts only.

use std::fmt;
use std::path::Path;

use rustc_hash::FxHashMap;

/// Client randoms remembered; a key log beyond it is counted, not kept (each entry is
/// at most a few hundred bytes, so this is a few hundred MiB at worst).
pub const MAX_SESSIONS: usize = 1 << 20;
/// Longest secret accepted (SHA-384 output, 48 bytes; the TLS 1.2 master secret is 48).
const MAX_SECRET: usize = 48;

/// One secret, at most [`MAX_SECRET`] bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    bytes: [u8; MAX_SECRET],
    len: u8,
}

impl Secret {
    fn from_hex(hex: &str) -> Option<Secret> {
        let mut bytes = [0u8; MAX_SECRET];
        let len = decode_hex(hex, &mut bytes)?;
        Some(Secret {
            bytes,
            len: len as u8,
        })
    }

    pub fn from_bytes(b: &[u8]) -> Option<Secret> {
        let mut bytes = [0u8; MAX_SECRET];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Secret {
            bytes,
            len: b.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.len)
    }
}

/// The secrets logged for one client random.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionSecrets {
    /// TLS 1.2 (and older) master secret.
    pub master: Option<Secret>,
    pub client_handshake: Option<Secret>,
    pub server_handshake: Option<Secret>,
    pub client_traffic: Option<Secret>,
    pub server_traffic: Option<Secret>,
}

/// Secrets by client random.
#[derive(Clone, Default)]
pub struct KeyLog {
    sessions: FxHashMap<[u8; 32], SessionSecrets>,
    /// Lines that looked like a known label but did not parse, or were over the bound.
    pub bad_lines: u64,
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyLog({} sessions)", self.sessions.len())
    }
}

/// A key log file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the key log {path}: {source}")]
pub struct KeyLogError {
    pub path: std::path::PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl KeyLog {
    pub fn new() -> KeyLog {
        KeyLog::default()
    }

    /// Reads a key log file (only the path given).
    pub fn read(path: &Path) -> Result<KeyLog, KeyLogError> {
        let text = std::fs::read(path).map_err(|source| KeyLogError {
            path: path.to_path_buf(),
            source,
        })?;
        let mut log = KeyLog::new();
        log.add(&text);
        Ok(log)
    }

    /// Adds the lines of a key log (file contents or a Decryption Secrets Block).
    pub fn add(&mut self, text: &[u8]) {
        for line in text.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                self.bad_lines += 1;
                continue;
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_ascii_whitespace();
            let (Some(label), Some(random), Some(secret)) =
                (parts.next(), parts.next(), parts.next())
            else {
                self.bad_lines += 1;
                continue;
            };
            let slot: fn(&mut SessionSecrets) -> &mut Option<Secret> = match label {
                "CLIENT_RANDOM" => |s| &mut s.master,
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => |s| &mut s.client_handshake,
                "SERVER_HANDSHAKE_TRAFFIC_SECRET" => |s| &mut s.server_handshake,
                "CLIENT_TRAFFIC_SECRET_0" => |s| &mut s.client_traffic,
                "SERVER_TRAFFIC_SECRET_0" => |s| &mut s.server_traffic,
                _ => continue,
            };
            let mut cr = [0u8; 32];
            let (Some(32), Some(secret)) = (decode_hex(random, &mut cr), Secret::from_hex(secret))
            else {
                self.bad_lines += 1;
                continue;
            };
            if !self.sessions.contains_key(&cr) && self.sessions.len() >= MAX_SESSIONS {
                self.bad_lines += 1;
                continue;
            }
            *slot(self.sessions.entry(cr).or_default()) = Some(secret);
        }
    }

    /// Adds another log's secrets (its entries win).
    pub fn merge(&mut self, other: &KeyLog) {
        for (cr, s) in &other.sessions {
            if self.sessions.len() < MAX_SESSIONS || self.sessions.contains_key(cr) {
                self.sessions.insert(*cr, *s);
            } else {
                self.bad_lines += 1;
            }
        }
        self.bad_lines += other.bad_lines;
    }

    /// The secrets of the connection whose ClientHello carried `client_random`.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&SessionSecrets> {
        self.sessions.get(client_random)
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions with at least one secret.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }
}

/// Decodes hex into `out`, returning the length; None when not hex or too long.
fn decode_hex(hex: &str, out: &mut [u8]) -> Option<usize> {
    let b = hex.as_bytes();
    if b.len() % 2 != 0 || b.len() / 2 > out.len() {
        return None;
    }
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi << 4 | lo) as u8;
    }
    Some(b.len() / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CR: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";

    #[test]
    fn reads_tls12_and_tls13_labels_and_skips_others() {
        let text = format!(
            "# comment\nCLIENT_RANDOM {CR} {m}\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {CR} {s}\n\
             SERVER_TRAFFIC_SECRET_0 {CR} {s}\nEXPORTER_SECRET {CR} {s}\n\n",
            m = "11".repeat(48),
            s = "22".repeat(32),
        );
        let mut log = KeyLog::new();
        log.add(text.as_bytes());
        assert_eq!(log.len(), 1);
        assert_eq!(log.bad_lines, 0);
        let mut cr = [0u8; 32];
        decode_hex(CR, &mut cr).unwrap();
        let s = log.get(&cr).unwrap();
        assert_eq!(s.master.unwrap().as_bytes(), &[0x11; 48]);
        assert_eq!(s.client_handshake.unwrap().as_bytes(), &[0x22; 32]);
        assert_eq!(s.server_traffic.unwrap().as_bytes(), &[0x22; 32]);
        assert!(s.server_handshake.is_none() && s.client_traffic.is_none());
    }

    #[test]
    fn bad_lines_are_counted_not_kept() {
        let mut log = KeyLog::new();
        log.add(b"CLIENT_RANDOM zz 11\nCLIENT_RANDOM 00\nCLIENT_RANDOM 0011 2233\n");
        assert_eq!(log.bad_lines, 3);
        assert!(log.is_empty());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let mut log = KeyLog::new();
        log.add(format!("CLIENT_RANDOM {CR} {}\n", "ab".repeat(48)).as_bytes());
        let shown = format!("{log:?} {:?}", log.sessions.values().next());
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }
}
