//! AES-256-GCM for setting values: a fresh random nonce on every write, and the setting's name
//! as associated data, so a ciphertext moved to another setting's row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::SettingsError;
use crate::config::Secret;

/// Encrypts and decrypts setting values.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
    fingerprint: String,
}

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        Cipher {
            aead: Aes256Gcm::new(key.into()),
            fingerprint: hex::encode(&digest[..4]),
        }
    }

    /// The first 8 hex characters of the key's SHA-256: tells keys apart without revealing them.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `base64(nonce || ciphertext || tag)`; a fresh nonce each call.
    pub fn encrypt(&self, name: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .aead
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .expect("AES-GCM encryption does not fail for small inputs");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        STANDARD.encode(out)
    }

    pub fn decrypt(&self, name: &str, stored: &str) -> Result<Secret, SettingsError> {
        let bad = || SettingsError::Undecryptable(name.to_string());
        let raw = STANDARD.decode(stored).map_err(|_| bad())?;
        if raw.len() < 12 {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| bad())?;
        let plain = self
            .aead
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_with_a_fresh_nonce_and_binds_the_name() {
        let c = Cipher::new(&[7u8; 32]);
        let a = c.encrypt("twilio.auth_token", "s3cr3t");
        let b = c.encrypt("twilio.auth_token", "s3cr3t");
        assert_ne!(a, b, "a fresh nonce each write");
        assert!(!a.contains("s3cr3t"));
        assert_eq!(
            c.decrypt("twilio.auth_token", &a).unwrap().expose(),
            "s3cr3t"
        );
        assert!(
            c.decrypt("stripe.secret_key", &a).is_err(),
            "bound to its setting's name"
        );
        assert!(
            Cipher::new(&[8u8; 32])
                .decrypt("twilio.auth_token", &a)
                .is_err(),
            "another key cannot read it"
        );
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_hide_them() {
        let (a, b) = (Cipher::new(&[1u8; 32]), Cipher::new(&[2u8; 32]));
        assert_eq!(a.fingerprint().len(), 8);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!a.fingerprint().contains("0101"));
    }
}
