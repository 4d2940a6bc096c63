use super::*;
use crate::providers::vodacom::BearerKey;

#[test]
fn the_public_key_is_the_private_keys_half_and_a_bearer_is_684_characters() {
    use rsa::pkcs8::DecodePrivateKey;
    let key = BearerKey::parse(PUBLIC_KEY).unwrap();
    assert_eq!(key.bits(), 4096);
    let bearer = key.encrypt(API_KEY).unwrap();
    assert_eq!(bearer.len(), 684);
    assert_ne!(
        bearer,
        key.encrypt(API_KEY).unwrap(),
        "PKCS#1 v1.5 is randomised"
    );
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(PRIVATE_KEY_PEM).unwrap();
    let sealed =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, bearer).unwrap();
    let plain = private.decrypt(rsa::Pkcs1v15Encrypt, &sealed).unwrap();
    assert_eq!(plain, API_KEY.as_bytes());
}
