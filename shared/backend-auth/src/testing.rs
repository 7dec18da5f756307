//! Keys and assertions for tests (feature `testing`): what a provider's system does on
//! its side, so tests in every crate sign assertions the same way.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::JWT_BEARER;

/// A backend client's private key with its `kid` and algorithm.
pub struct ClientKey {
    pub kid: String,
    pub alg: Algorithm,
    key: EncodingKey,
}

impl ClientKey {
    /// A fresh RSA-2048 key for RS384.
    pub fn rs384(kid: &str) -> ClientKey {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let der = pair.as_der().expect("PKCS#8 export");
        let key = EncodingKey::from_rsa_pem(pem(der.as_ref()).as_bytes()).expect("RSA PEM");
        ClientKey {
            kid: kid.to_owned(),
            alg: Algorithm::RS384,
            key,
        }
    }

    /// A fresh P-384 key for ES384.
    pub fn es384(kid: &str) -> ClientKey {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .expect("EC key generation");
        let key = EncodingKey::from_ec_pem(pem(doc.as_ref()).as_bytes()).expect("EC PEM");
        ClientKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES384,
            key,
        }
    }

    /// The public key as a JWK (with `kid`, `alg`, `use` = `sig`).
    pub fn public_jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).expect("public JWK");
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk
    }

    /// A JWKS holding only this key.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public_jwk()],
        }
    }

    /// Signs `claims` with this key, `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        self.sign_with_header(header, claims)
    }

    /// Signs `claims` under a header the test builds (to try forbidden headers).
    pub fn sign_with_header(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.key).expect("signing")
    }

    /// A valid assertion for `client_id` at `token_endpoint`, living `lifetime` seconds.
    pub fn assertion(&self, client_id: &str, token_endpoint: &str, lifetime: i64) -> String {
        self.sign(&assertion_claims(client_id, token_endpoint, lifetime))
    }
}

/// A fresh P-384 private key in PEM, as an operator's key file holds it.
pub fn es384_private_pem() -> String {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
        .expect("EC key generation");
    pem(doc.as_ref())
}

/// The claims of a client assertion: `iss` = `sub` = client, `aud`, `exp`, a fresh `jti`.
pub fn assertion_claims(client_id: &str, token_endpoint: &str, lifetime: i64) -> Value {
    let now = fhir::clock::unix_now();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "exp": now + lifetime,
        "iat": now,
        "jti": secrets::random_b64(16).ok(),
    })
}

/// The form body of a client-credentials token request.
pub fn token_form(assertion: &str, scope: &str) -> String {
    let mut form = String::new();
    for (name, value) in [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
        ("scope", scope),
    ] {
        if !form.is_empty() {
            form.push('&');
        }
        form.push_str(name);
        form.push('=');
        form.push_str(&percent_encode(value));
    }
    form
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str("-----END PRIVATE KEY-----\n");
    text
}
