//! Record protection: the key schedules (TLS 1.2 PRF and key expansion, TLS 1.3
//! HKDF-Expand-Label) and AEAD record decryption, over RustCrypto primitives.
//!
//! Supported suites: TLS 1.3 AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; TLS 1.2 ECDHE
//! (and RSA/DHE key exchange, which change nothing once the master secret is known) with
//! AES-128/256-GCM and ChaCha20-Poly1305. CBC and CCM suites are reported as unsupported.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

use super::keylog::Secret;

/// AEAD tag length of every supported suite.
pub const TAG_LEN: usize = 16;
/// TLS 1.2 GCM explicit nonce carried in front of each record's ciphertext.
const EXPLICIT_NONCE_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

/// What a negotiated cipher suite needs for decryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    pub aead: Aead,
    pub hash: Hash,
}

impl Aead {
    fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::ChaCha20Poly1305 => 32,
        }
    }
}

impl Hash {
    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// The suite of IANA id `id` under `version` (0x0304 for TLS 1.3), if supported.
pub fn suite(version: u16, id: u16) -> Option<Suite> {
    use Aead::*;
    use Hash::*;
    let (aead, hash) = if version >= 0x0304 {
        match id {
            0x1301 => (Aes128Gcm, Sha256),
            0x1302 => (Aes256Gcm, Sha384),
            0x1303 => (ChaCha20Poly1305, Sha256),
            _ => return None,
        }
    } else if version == 0x0303 {
        match id {
            // ECDHE-ECDSA / ECDHE-RSA / DHE-RSA / RSA with AES-128-GCM-SHA256.
            0xc02b | 0xc02f | 0x009e | 0x009c => (Aes128Gcm, Sha256),
            // ... with AES-256-GCM-SHA384.
            0xc02c | 0xc030 | 0x009f | 0x009d => (Aes256Gcm, Sha384),
            // ECDHE-RSA / ECDHE-ECDSA / DHE-RSA with ChaCha20-Poly1305 (RFC 7905).
            0xcca8..=0xccaa => (ChaCha20Poly1305, Sha256),
            _ => return None,
        }
    } else {
        return None;
    };
    Some(Suite { aead, hash })
}

/// HMAC-based P_hash of the TLS 1.2 PRF (RFC 5246 §5). The PRF is a construction over
/// HMAC that no maintained crate exposes on its own; HMAC itself is RustCrypto's.
fn p_hash<M: Mac + KeyInit + Clone>(secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let Ok(base) = <M as Mac>::new_from_slice(secret) else {
        return;
    };
    let mac = |parts: &[&[u8]]| {
        let mut m = base.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes()
    };
    let mut seed_all: Vec<&[u8]> = vec![label];
    seed_all.extend_from_slice(seed);
    let mut a = mac(&seed_all).to_vec();
    let mut done = 0;
    while done < out.len() {
        let mut parts: Vec<&[u8]> = vec![&a];
        parts.extend_from_slice(&seed_all);
        let block = mac(&parts);
        let k = block.len().min(out.len() - done);
        out[done..done + k].copy_from_slice(&block[..k]);
        done += k;
        a = mac(&[&a]).to_vec();
    }
}

/// TLS 1.2 PRF(secret, label, seed) into `out`.
pub fn prf12(hash: Hash, secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    match hash {
        Hash::Sha256 => p_hash::<Hmac<Sha256>>(secret, label, seed, out),
        Hash::Sha384 => p_hash::<Hmac<Sha384>>(secret, label, seed, out),
    }
}

/// HKDF-Expand-Label(secret, label, "", len) of RFC 8446 §7.1.
fn expand_label(hash: Hash, secret: &[u8], label: &[u8], out: &mut [u8]) -> Option<()> {
    let full_len = 6 + label.len();
    let mut info = Vec::with_capacity(4 + full_len);
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push(full_len as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    match hash {
        Hash::Sha256 => Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, out)
            .ok(),
        Hash::Sha384 => Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, out)
            .ok(),
    }
}

/// The keys of one direction of one connection, with its record sequence number.
pub struct RecordKeys {
    cipher: CipherImpl,
    /// TLS 1.3 and ChaCha20 in 1.2: the 12-byte IV; GCM in 1.2: the 4-byte salt.
    iv: [u8; 12],
    tls13: bool,
    seq: u64,
    /// TLS 1.3: the traffic secret, for KeyUpdate.
    secret: Option<Secret>,
    suite: Suite,
}

enum CipherImpl {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl std::fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordKeys({:?}, seq {})", self.suite, self.seq)
    }
}

/// The record failed authentication (wrong key, or not the record the keys are for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthFailed;

impl RecordKeys {
    fn new(suite: Suite, key: &[u8], iv: &[u8], tls13: bool, secret: Option<Secret>) -> Self {
        let cipher = match suite.aead {
            Aead::Aes128Gcm => CipherImpl::Aes128(Box::new(
                Aes128Gcm::new_from_slice(key).expect("16-byte key"),
            )),
            Aead::Aes256Gcm => CipherImpl::Aes256(Box::new(
                Aes256Gcm::new_from_slice(key).expect("32-byte key"),
            )),
            Aead::ChaCha20Poly1305 => CipherImpl::ChaCha(Box::new(
                ChaCha20Poly1305::new_from_slice(key).expect("32-byte key"),
            )),
        };
        let mut v = [0u8; 12];
        v[..iv.len()].copy_from_slice(iv);
        RecordKeys {
            cipher,
            iv: v,
            tls13,
            seq: 0,
            secret,
            suite,
        }
    }

    /// TLS 1.3 keys from a traffic secret.
    pub fn tls13(suite: Suite, secret: Secret) -> Option<RecordKeys> {
        let s = secret.as_bytes();
        if s.len() != suite.hash.len() {
            return None;
        }
        let mut key = [0u8; 32];
        let key = &mut key[..suite.aead.key_len()];
        let mut iv = [0u8; 12];
        expand_label(suite.hash, s, b"key", key)?;
        expand_label(suite.hash, s, b"iv", &mut iv)?;
        Some(RecordKeys::new(suite, key, &iv, true, Some(secret)))
    }

    /// TLS 1.2 keys of both directions (client, server) from the master secret.
    pub fn tls12(
        suite: Suite,
        master: &Secret,
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> (RecordKeys, RecordKeys) {
        let k = suite.aead.key_len();
        let iv = match suite.aead {
            Aead::ChaCha20Poly1305 => 12,
            _ => 4,
        };
        let mut block = [0u8; 2 * (32 + 12)];
        let block = &mut block[..2 * (k + iv)];
        prf12(
            suite.hash,
            master.as_bytes(),
            b"key expansion",
            &[server_random, client_random],
            block,
        );
        let (ck, rest) = block.split_at(k);
        let (sk, rest) = rest.split_at(k);
        let (civ, siv) = rest.split_at(iv);
        (
            RecordKeys::new(suite, ck, civ, false, None),
            RecordKeys::new(suite, sk, siv, false, None),
        )
    }

    /// TLS 1.3 KeyUpdate: the next generation of this direction's traffic secret.
    pub fn update(&self) -> Option<RecordKeys> {
        let secret = self.secret?;
        let mut next = [0u8; 48];
        let next = &mut next[..self.suite.hash.len()];
        expand_label(self.suite.hash, secret.as_bytes(), b"traffic upd", next)?;
        RecordKeys::tls13(self.suite, Secret::from_bytes(next)?)
    }

    /// Protects one record of type `ctype` as a sender with these keys would (TLS 1.2 GCM:
    /// the sequence number as the explicit nonce, as OpenSSL does) and returns it, header
    /// included. linkrank only reads; this is the inverse of [`Self::open`] for its tests
    /// and the decryption benchmark (bench/tls_decrypt).
    pub fn seal(&mut self, ctype: u8, plain: &[u8]) -> Vec<u8> {
        let mut nonce = self.iv;
        let seq = self.seq.to_be_bytes();
        let explicit = !self.tls13 && self.suite.aead != Aead::ChaCha20Poly1305;
        if explicit {
            nonce[4..].copy_from_slice(&seq);
        } else {
            for i in 0..8 {
                nonce[4 + i] ^= seq[i];
            }
        }
        let mut body = plain.to_vec();
        let (outer, len) = if self.tls13 {
            body.push(ctype);
            (23, body.len() + TAG_LEN)
        } else {
            (
                ctype,
                plain.len() + TAG_LEN + if explicit { EXPLICIT_NONCE_LEN } else { 0 },
            )
        };
        let header = [outer, 3, 3, (len >> 8) as u8, len as u8];
        let mut aad = Vec::with_capacity(13);
        if self.tls13 {
            aad.extend_from_slice(&header);
        } else {
            aad.extend_from_slice(&seq);
            aad.extend_from_slice(&[ctype, 3, 3]);
            aad.extend_from_slice(&(plain.len() as u16).to_be_bytes());
        }
        let sealed = match &self.cipher {
            CipherImpl::Aes128(c) => c.encrypt_in_place(&nonce.into(), &aad, &mut body),
            CipherImpl::Aes256(c) => c.encrypt_in_place(&nonce.into(), &aad, &mut body),
            CipherImpl::ChaCha(c) => c.encrypt_in_place(&nonce.into(), &aad, &mut body),
        };
        sealed.expect("a record under 2^14 bytes always seals");
        self.seq = self.seq.wrapping_add(1);
        let mut out = header.to_vec();
        if explicit {
            out.extend_from_slice(&seq);
        }
        out.extend_from_slice(&body);
        out
    }

    /// Decrypts one record (`header`: its 5 bytes, `body`: the protected bytes, replaced by
    /// the plaintext). TLS 1.3: the inner content type is split off and returned with the
    /// plaintext length; TLS 1.2: the outer type is returned.
    pub fn open(&mut self, header: [u8; 5], body: &mut Vec<u8>) -> Result<u8, AuthFailed> {
        let mut nonce = self.iv;
        let seq = self.seq.to_be_bytes();
        let mut aad = [0u8; 13];
        let aad: &[u8] = if self.tls13 {
            for i in 0..8 {
                nonce[4 + i] ^= seq[i];
            }
            aad[..5].copy_from_slice(&header);
            &aad[..5]
        } else {
            let explicit = self.suite.aead != Aead::ChaCha20Poly1305;
            if explicit {
                let e = body.get(..EXPLICIT_NONCE_LEN).ok_or(AuthFailed)?;
                nonce[4..].copy_from_slice(e);
                body.drain(..EXPLICIT_NONCE_LEN);
            } else {
                for i in 0..8 {
                    nonce[4 + i] ^= seq[i];
                }
            }
            let plain_len = body.len().checked_sub(TAG_LEN).ok_or(AuthFailed)? as u16;
            aad[..8].copy_from_slice(&seq);
            aad[8..11].copy_from_slice(&header[..3]);
            aad[11..].copy_from_slice(&plain_len.to_be_bytes());
            &aad[..]
        };
        let ok = match &self.cipher {
            CipherImpl::Aes128(c) => c.decrypt_in_place(&nonce.into(), aad, body),
            CipherImpl::Aes256(c) => c.decrypt_in_place(&nonce.into(), aad, body),
            CipherImpl::ChaCha(c) => c.decrypt_in_place(&nonce.into(), aad, body),
        };
        ok.map_err(|_| AuthFailed)?;
        self.seq = self.seq.wrapping_add(1);
        if !self.tls13 {
            return Ok(header[0]);
        }
        // TLSInnerPlaintext: content, the real type, then zero padding.
        let end = body.iter().rposition(|&b| b != 0).ok_or(AuthFailed)?;
        let ty = body[end];
        body.truncate(end);
        Ok(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The TLS 1.2 PRF vector posted to the TLS working group list (P_SHA256).
    #[test]
    fn prf_sha256_matches_the_published_vector() {
        let mut out = [0u8; 100];
        prf12(
            Hash::Sha256,
            &hex("9bbe436ba940f017b17652849a71db35"),
            b"test label",
            &[&hex("a0ba9f936cda311827a6f796ffd5198c")],
            &mut out,
        );
        assert_eq!(
            out.to_vec(),
            hex(
                "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a\
                 6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab\
                 4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701\
                 87347b66"
            )
        );
    }

    /// RFC 8448 §3: the server's handshake key and IV from its handshake traffic secret.
    #[test]
    fn hkdf_expand_label_matches_rfc8448() {
        let secret = hex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
        let mut key = [0u8; 16];
        let mut iv = [0u8; 12];
        expand_label(Hash::Sha256, &secret, b"key", &mut key).unwrap();
        expand_label(Hash::Sha256, &secret, b"iv", &mut iv).unwrap();
        assert_eq!(key.to_vec(), hex("3fce516009c21727d0f2e4e86ee403bc"));
        assert_eq!(iv.to_vec(), hex("5d313eb2671276ee13000b30"));
    }

    #[test]
    fn a_tampered_record_fails_authentication_and_keeps_the_sequence() {
        let suite = suite(0x0304, 0x1301).unwrap();
        let secret = Secret::from_bytes(&[7u8; 32]).unwrap();
        let mut k = RecordKeys::tls13(suite, secret).unwrap();
        let mut body = vec![0u8; 40];
        assert_eq!(k.open([23, 3, 3, 0, 40], &mut body), Err(AuthFailed));
        assert_eq!(k.seq, 0);
    }

    /// Records sealed with the keys of each suite open again, in sequence, with the
    /// content type; a flipped bit or a skipped record fails.
    #[test]
    fn every_suite_round_trips_records_in_sequence() {
        let cr = [1u8; 32];
        let sr = [2u8; 32];
        let master = Secret::from_bytes(&[3u8; 48]).unwrap();
        let mut pairs: Vec<(RecordKeys, RecordKeys)> = Vec::new();
        for id in [0x1301, 0x1302, 0x1303] {
            let s = suite(0x0304, id).unwrap();
            let secret = Secret::from_bytes(&vec![9u8; s.hash.len()]).unwrap();
            let k = || RecordKeys::tls13(s, secret).unwrap();
            pairs.push((k(), k()));
        }
        for id in [0xc02f, 0xc030, 0xcca8] {
            let s = suite(0x0303, id).unwrap();
            let (c1, _) = RecordKeys::tls12(s, &master, &cr, &sr);
            let (c2, _) = RecordKeys::tls12(s, &master, &cr, &sr);
            pairs.push((c1, c2));
        }
        for (mut tx, mut rx) in pairs {
            for (i, msg) in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"", &[7u8; 3000]]
                .iter()
                .enumerate()
            {
                let rec = tx.seal(23, msg);
                let header: [u8; 5] = rec[..5].try_into().unwrap();
                let mut body = rec[5..].to_vec();
                assert_eq!(
                    rx.open(header, &mut body),
                    Ok(23),
                    "{:?} record {i}",
                    tx.suite
                );
                assert_eq!(&body[..], *msg);
            }
            let mut rec = tx.seal(23, b"x");
            let last = rec.len() - 1;
            rec[last] ^= 1;
            let header: [u8; 5] = rec[..5].try_into().unwrap();
            assert_eq!(rx.open(header, &mut rec[5..].to_vec()), Err(AuthFailed));
            let _skipped = tx.seal(23, b"y");
            let rec = tx.seal(23, b"z");
            let header: [u8; 5] = rec[..5].try_into().unwrap();
            // The sequence number is in the nonce (1.3, ChaCha20) or the additional data
            // (1.2): a record out of sequence never opens.
            assert_eq!(rx.open(header, &mut rec[5..].to_vec()), Err(AuthFailed));
        }
    }

    #[test]
    fn key_update_changes_the_keys() {
        let s = suite(0x0304, 0x1301).unwrap();
        let secret = Secret::from_bytes(&[5u8; 32]).unwrap();
        let mut old = RecordKeys::tls13(s, secret).unwrap();
        let mut new = old.update().unwrap();
        let rec = new.seal(23, b"after the update");
        let header: [u8; 5] = rec[..5].try_into().unwrap();
        assert_eq!(old.open(header, &mut rec[5..].to_vec()), Err(AuthFailed));
        let mut fresh = RecordKeys::tls13(s, secret).unwrap().update().unwrap();
        assert_eq!(fresh.open(header, &mut rec[5..].to_vec()), Ok(23));
    }

    #[test]
    fn unsupported_suites_are_none() {
        assert!(suite(0x0303, 0xc013).is_none(), "CBC");
        assert!(suite(0x0304, 0x1304).is_none(), "CCM");
        assert!(suite(0x0302, 0xc02f).is_none(), "GCM needs TLS 1.2");
        assert_eq!(suite(0x0303, 0xc030).unwrap().hash, Hash::Sha384);
    }
}
