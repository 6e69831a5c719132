//! Gossip encryption: the keyring and the sealed envelope around every UDP
//! packet and every stream frame.
//!
//! Envelope: `b'E' | version (1) | nonce (24 bytes) | ciphertext | tag (16)`,
//! sealed with XChaCha20-Poly1305 under the primary key, with a fresh random
//! 192-bit nonce per message (random nonces are safe at this size). The
//! associated data is the two header bytes plus a channel byte (`u` for UDP
//! packets, `s` for stream frames), so a packet cannot be replayed as a
//! stream frame. Keys are base64 of 16, 24 or 32 bytes: 32-byte keys are
//! used as they are; 16- and 24-byte keys are stretched to 32 bytes with
//! HKDF-SHA256 (no salt, info `consul-rs gossip key v1`), never padded.
//! Decryption tries every installed key, primary first.
//!
//! Owns: key material, the envelope format and the plaintext policy
//! (`encrypt_verify_incoming` / `encrypt_verify_outgoing`). Must not do IO.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// First byte of an encrypted packet or frame.
pub const ENVELOPE_MAGIC: u8 = b'E';
pub const ENVELOPE_VERSION: u8 = 1;
pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes the envelope adds to a message.
pub const ENVELOPE_OVERHEAD: usize = 2 + NONCE_LEN + TAG_LEN;
/// HKDF info for stretching 16/24-byte keys.
const HKDF_INFO: &[u8] = b"consul-rs gossip key v1";

/// Which channel a message travels on (bound into the associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Packet,
    Stream,
}

impl Channel {
    fn tag(self) -> u8 {
        match self {
            Channel::Packet => b'u',
            Channel::Stream => b's',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("no installed keys could decrypt the message")]
    NoKeyDecrypts,
    #[error("encrypted message received but gossip encryption is not enabled on this node")]
    NotConfigured,
    #[error("plaintext message refused: gossip encryption is required (encrypt_verify_incoming)")]
    PlaintextRefused,
    #[error("message too short for the encryption envelope")]
    Truncated,
    #[error("unsupported encryption envelope version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown message type {0:#04x}")]
    BadMagic(u8),
    #[error("encryption failed")]
    SealFailed,
}

/// Why a gossip key or a keyring operation was refused. The texts are the
/// ones operators see (keyring HTTP answers, start-up errors) and Consul's
/// where it has one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyringError {
    #[error("Invalid key: failed to decode base64: {0}")]
    Base64(#[source] base64::DecodeError),
    #[error("Invalid key: key size must be 16, 24 or 32 bytes (got {0})")]
    Size(usize),
    #[error("failed to derive the gossip key: {0}")]
    Derive(#[source] hkdf::InvalidLength),
    #[error("Invalid key: bad key length")]
    CipherKeyLength,
    #[error("keyring is empty")]
    Empty,
    #[error("Requested key is not in the keyring")]
    NotInstalled,
    #[error("Removing the primary key is not allowed")]
    RemovePrimary,
}

/// Decodes a base64 gossip key and checks its size.
pub fn decode_key(b64: &str) -> Result<Vec<u8>, KeyringError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(KeyringError::Base64)?;
    match bytes.len() {
        16 | 24 | 32 => Ok(bytes),
        n => Err(KeyringError::Size(n)),
    }
}

/// The 32-byte cipher key for a 16, 24 or 32-byte gossip key.
pub fn derive_key(raw: &[u8]) -> Result<[u8; 32], KeyringError> {
    let mut out = [0u8; 32];
    match raw.len() {
        32 => out.copy_from_slice(raw),
        16 | 24 => {
            let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, raw);
            hk.expand(HKDF_INFO, &mut out).map_err(KeyringError::Derive)?;
        }
        n => return Err(KeyringError::Size(n)),
    }
    Ok(out)
}

struct Key {
    /// Canonical base64 of the key as the operator gave it.
    b64: String,
    cipher: XChaCha20Poly1305,
}

/// Installed keys, primary first.
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Keyring").field("keys", &self.keys.len()).finish()
    }
}

fn make_key(b64: &str) -> Result<Key, KeyringError> {
    let raw = decode_key(b64)?;
    let derived = derive_key(&raw)?;
    let cipher = XChaCha20Poly1305::new_from_slice(&derived).map_err(|_| KeyringError::CipherKeyLength)?;
    Ok(Key { b64: base64::engine::general_purpose::STANDARD.encode(&raw), cipher })
}

fn canonical(b64: &str) -> Result<String, KeyringError> {
    decode_key(b64).map(|raw| base64::engine::general_purpose::STANDARD.encode(raw))
}

impl Keyring {
    /// A keyring from base64 keys, the first being primary. Duplicates are
    /// dropped; an empty list is an error.
    pub fn new(keys: &[String]) -> Result<Keyring, KeyringError> {
        let mut ring = Keyring { keys: Vec::new() };
        for k in keys {
            let key = make_key(k)?;
            if !ring.keys.iter().any(|x| x.b64 == key.b64) {
                ring.keys.push(key);
            }
        }
        if ring.keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(ring)
    }

    /// Base64 keys, primary first.
    pub fn keys(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.b64.clone()).collect()
    }

    pub fn primary(&self) -> Option<String> {
        self.keys.first().map(|k| k.b64.clone())
    }

    /// Adds a key (not primary). Installing an installed key is a no-op.
    pub fn install(&mut self, b64: &str) -> Result<(), KeyringError> {
        let key = make_key(b64)?;
        if !self.keys.iter().any(|k| k.b64 == key.b64) {
            self.keys.push(key);
        }
        Ok(())
    }

    /// Makes an installed key the primary (the one we encrypt with).
    pub fn use_key(&mut self, b64: &str) -> Result<(), KeyringError> {
        let want = canonical(b64)?;
        let pos = self.keys.iter().position(|k| k.b64 == want).ok_or(KeyringError::NotInstalled)?;
        let key = self.keys.remove(pos);
        self.keys.insert(0, key);
        Ok(())
    }

    /// Removes a secondary key. Removing a key that is not installed is a
    /// no-op; removing the primary is refused.
    pub fn remove(&mut self, b64: &str) -> Result<(), KeyringError> {
        let want = canonical(b64)?;
        if self.keys.first().is_some_and(|k| k.b64 == want) {
            return Err(KeyringError::RemovePrimary);
        }
        self.keys.retain(|k| k.b64 != want);
        Ok(())
    }

    /// Seals `plaintext` with the primary key.
    pub fn seal(&self, plaintext: &[u8], channel: Channel) -> Result<Vec<u8>, CryptoError> {
        let key = self.keys.first().ok_or(CryptoError::SealFailed)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = [ENVELOPE_MAGIC, ENVELOPE_VERSION, channel.tag()];
        let ct = key
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| CryptoError::SealFailed)?;
        let mut out = Vec::with_capacity(2 + NONCE_LEN + ct.len());
        out.push(ENVELOPE_MAGIC);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens an envelope with whichever installed key fits.
    pub fn open(&self, bytes: &[u8], channel: Channel) -> Result<Vec<u8>, CryptoError> {
        if bytes.len() < ENVELOPE_OVERHEAD {
            return Err(CryptoError::Truncated);
        }
        let (header, rest) = bytes.split_at(2);
        if header.first() != Some(&ENVELOPE_MAGIC) {
            return Err(CryptoError::BadMagic(header.first().copied().unwrap_or(0)));
        }
        let version = header.get(1).copied().unwrap_or(0);
        if version != ENVELOPE_VERSION {
            return Err(CryptoError::UnsupportedVersion(version));
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(nonce);
        let nonce = XNonce::from(n);
        let aad = [ENVELOPE_MAGIC, ENVELOPE_VERSION, channel.tag()];
        for key in &self.keys {
            if let Ok(pt) = key.cipher.decrypt(&nonce, Payload { msg: ct, aad: &aad }) {
                return Ok(pt);
            }
        }
        Err(CryptoError::NoKeyDecrypts)
    }
}

/// The keyring plus the plaintext policy, as the transport applies it.
#[derive(Debug)]
pub struct Crypto {
    pub keyring: Option<Keyring>,
    /// Refuse plaintext input when a keyring is installed.
    pub verify_incoming: bool,
    /// Encrypt output when a keyring is installed.
    pub verify_outgoing: bool,
}

impl Crypto {
    pub fn plaintext() -> Crypto {
        Crypto { keyring: None, verify_incoming: true, verify_outgoing: true }
    }

    pub fn encrypted(&self) -> bool {
        self.keyring.is_some()
    }

    /// What goes on the wire for `plaintext`.
    pub fn wrap(&self, plaintext: Vec<u8>, channel: Channel) -> Result<Vec<u8>, CryptoError> {
        match &self.keyring {
            Some(k) if self.verify_outgoing => k.seal(&plaintext, channel),
            _ => Ok(plaintext),
        }
    }

    /// The plaintext of bytes from the wire, by the policy.
    pub fn unwrap(&self, bytes: &[u8], channel: Channel) -> Result<Vec<u8>, CryptoError> {
        match bytes.first() {
            Some(&ENVELOPE_MAGIC) => match &self.keyring {
                Some(k) => k.open(bytes, channel),
                None => Err(CryptoError::NotConfigured),
            },
            Some(&crate::gossip::codec::PLAINTEXT_MAGIC) => {
                if self.keyring.is_some() && self.verify_incoming {
                    Err(CryptoError::PlaintextRefused)
                } else {
                    Ok(bytes.to_vec())
                }
            }
            Some(b) => Err(CryptoError::BadMagic(*b)),
            None => Err(CryptoError::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K16: &str = "EXz7LFN8hpQ4id8EDYiFoQ==";
    const K32: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    const K24: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";

    #[test]
    fn key_sizes_and_derivation() {
        assert!(decode_key("YWJj").unwrap_err().to_string().contains("16, 24 or 32"));
        assert!(decode_key("!!").is_err());
        let d16 = derive_key(&decode_key(K16).unwrap()).unwrap();
        let raw16 = decode_key(K16).unwrap();
        assert_ne!(&d16[..16], &raw16[..], "16-byte keys are stretched, not padded");
        assert_ne!(&d16[16..], &[0u8; 16]);
        assert_eq!(derive_key(&decode_key(K32).unwrap()).unwrap().to_vec(), decode_key(K32).unwrap());
        assert_eq!(derive_key(&decode_key(K24).unwrap()).unwrap().len(), 32);
    }

    #[test]
    fn seal_open_and_rotation() {
        let mut a = Keyring::new(&[K16.to_string()]).unwrap();
        let b = Keyring::new(&[K32.to_string()]).unwrap();
        let sealed = a.seal(b"hello node-1", Channel::Packet).unwrap();
        assert_eq!(sealed.len(), 12 + ENVELOPE_OVERHEAD);
        assert!(!sealed.windows(6).any(|w| w == b"node-1"));
        assert_eq!(a.open(&sealed, Channel::Packet).unwrap(), b"hello node-1");
        assert_eq!(b.open(&sealed, Channel::Packet), Err(CryptoError::NoKeyDecrypts));
        assert_eq!(
            a.open(&sealed, Channel::Stream),
            Err(CryptoError::NoKeyDecrypts),
            "channel is authenticated"
        );
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert_eq!(a.open(&flipped, Channel::Packet), Err(CryptoError::NoKeyDecrypts));
        assert_eq!(a.open(&sealed[..20], Channel::Packet), Err(CryptoError::Truncated));
        // Two seals of the same text differ (random nonces).
        assert_ne!(a.seal(b"x", Channel::Packet).unwrap(), a.seal(b"x", Channel::Packet).unwrap());

        a.install(K32).unwrap();
        assert_eq!(a.keys().len(), 2);
        assert_eq!(a.remove(K16).unwrap_err().to_string(), "Removing the primary key is not allowed");
        assert_eq!(
            a.use_key("AAECAwQFBgcICQoLDA0ODw==").unwrap_err().to_string(),
            "Requested key is not in the keyring"
        );
        a.use_key(K32).unwrap();
        assert_eq!(a.primary().unwrap(), K32);
        let new = a.seal(b"rotated", Channel::Stream).unwrap();
        assert_eq!(b.open(&new, Channel::Stream).unwrap(), b"rotated");
        a.remove(K16).unwrap();
        assert_eq!(a.keys(), vec![K32.to_string()]);
        assert_eq!(a.open(&sealed, Channel::Packet), Err(CryptoError::NoKeyDecrypts));
    }

    #[test]
    fn plaintext_policy() {
        let ring = || Some(Keyring::new(&[K32.to_string()]).unwrap());
        let strict = Crypto { keyring: ring(), verify_incoming: true, verify_outgoing: true };
        let lax = Crypto { keyring: ring(), verify_incoming: false, verify_outgoing: false };
        let none = Crypto::plaintext();
        let plain = b"G\x01abc".to_vec();
        assert_eq!(strict.unwrap(&plain, Channel::Packet), Err(CryptoError::PlaintextRefused));
        assert_eq!(lax.unwrap(&plain, Channel::Packet).unwrap(), plain);
        assert_eq!(
            lax.wrap(plain.clone(), Channel::Packet).unwrap(),
            plain,
            "verify_outgoing=false sends plaintext"
        );
        let sealed = strict.wrap(plain.clone(), Channel::Packet).unwrap();
        assert_eq!(lax.unwrap(&sealed, Channel::Packet).unwrap(), plain, "lax still opens sealed input");
        assert_eq!(none.unwrap(&sealed, Channel::Packet), Err(CryptoError::NotConfigured));
        assert_eq!(none.unwrap(b"\x00zz", Channel::Packet), Err(CryptoError::BadMagic(0)));
        assert_eq!(none.unwrap(b"", Channel::Packet), Err(CryptoError::Truncated));
    }
}
