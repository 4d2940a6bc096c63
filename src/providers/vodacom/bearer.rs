//! The bearer of every OpenAPI call: `base64(RSA_PKCS1_v1_5_encrypt(public key, text))`, where
//! the text is the API key (for `getSession/`) or the session id (for everything else) and the
//! key is the portal's base64 DER SubjectPublicKeyInfo. PKCS#1 v1.5 is randomised: the bearer
//! differs on every call.

use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};

/// The portal's public key, parsed once.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerKey {
    key: RsaPublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the public key is not base64: {0}")]
    Base64(String),
    #[error("the public key is not a DER SubjectPublicKeyInfo RSA key: {0}")]
    Der(String),
    #[error("could not encrypt the bearer: {0}")]
    Encrypt(String),
}

impl std::fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerKey(RSA {} bits)", self.bits())
    }
}

impl BearerKey {
    /// The key as the portal shows it: base64 of the DER SubjectPublicKeyInfo (whitespace and
    /// PEM armour lines are ignored, so a pasted PEM works too).
    pub fn parse(base64_der: &str) -> Result<Self, KeyError> {
        let text: String = base64_der
            .lines()
            .filter(|l| !l.trim_start().starts_with("-----"))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| KeyError::Base64(e.to_string()))?;
        let key =
            RsaPublicKey::from_public_key_der(&der).map_err(|e| KeyError::Der(e.to_string()))?;
        Ok(BearerKey { key })
    }

    /// Size of the modulus in bits (the sandbox key has 4096).
    pub fn bits(&self) -> usize {
        self.key.size() * 8
    }

    /// `base64(PKCS#1 v1.5 encrypt(text))`: the value after `Bearer `.
    pub fn encrypt(&self, text: &str) -> Result<String, KeyError> {
        let mut rng = rsa::rand_core::OsRng;
        let sealed = self
            .key
            .encrypt(&mut rng, Pkcs1v15Encrypt, text.as_bytes())
            .map_err(|e| KeyError::Encrypt(e.to_string()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_the_reason() {
        assert!(matches!(
            BearerKey::parse("not base64!"),
            Err(KeyError::Base64(_))
        ));
        assert!(matches!(BearerKey::parse("AAAA"), Err(KeyError::Der(_))));
    }
}
