//! Signing keys: PKCS#8 PEM files loaded and checked against their algorithm, the public JWKS,
//! and key generation for set-up. Asymmetric algorithms only: HMAC would let every holder of
//! the secret forge tokens.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::signer::Signer;

/// The algorithms a key may use.
pub const SUPPORTED: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// A private key with its id, algorithm and public JWK.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    /// The key parsed once for signing; `None` falls back to `jsonwebtoken::encode`.
    signer: Option<Arc<Signer>>,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Parse an algorithm name, refusing HMAC and `none`.
pub fn parse_alg(alg: &str) -> Result<Algorithm, String> {
    if alg.to_ascii_uppercase().starts_with("HS") {
        return Err(format!(
            "{alg} is refused: with a shared secret every holder of it can forge tokens; use one of {}",
            SUPPORTED.join(", ")
        ));
    }
    if !SUPPORTED.contains(&alg) {
        return Err(format!(
            "unknown algorithm {alg:?}; use one of {}",
            SUPPORTED.join(", ")
        ));
    }
    alg.parse::<Algorithm>().map_err(|e| format!("{alg}: {e}"))
}

impl SigningKey {
    /// Load `path` as a private key for `alg`, and prove it signs and verifies under that alg.
    pub fn load(kid: &str, alg: &str, path: &Path) -> Result<SigningKey, String> {
        let alg = parse_alg(alg)?;
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        SigningKey::from_pem(kid, alg, &pem).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A key from PEM bytes.
    pub fn from_pem(kid: &str, alg: Algorithm, pem: &[u8]) -> Result<SigningKey, String> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("PUBLIC KEY-----") && !text.contains("PRIVATE KEY-----") {
            return Err("is a public key; the issuer needs the private key (PKCS#8 PEM)".into());
        }
        let not_for = |e: jsonwebtoken::errors::Error| {
            format!("is not a {alg:?} private key in PEM form: {e}")
        };
        let encoding = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem).map_err(not_for)?,
            Algorithm::ES256 | Algorithm::ES384 => {
                EncodingKey::from_ec_pem(pem).map_err(not_for)?
            }
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).map_err(not_for)?,
            other => return Err(format!("{other:?} is not supported")),
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg)
            .map_err(|e| format!("does not fit {alg:?}: {e}"))?;
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            let bits = base64_len(&rsa.n) * 8;
            if bits < 2048 {
                return Err(format!(
                    "RSA key of {bits} bits is too weak; use 2048 bits or more"
                ));
            }
        }
        let key = SigningKey {
            kid: kid.to_owned(),
            alg,
            encoding,
            signer: Signer::from_pem(alg, pem).map(Arc::new),
            jwk,
        };
        key.self_test()
            .map_err(|e| format!("does not fit {alg:?}: {e}"))?;
        Ok(key)
    }

    /// Sign and verify a probe token, so a key that does not fit its algorithm (a P-384 key
    /// for ES256) fails at load, not at the first login.
    fn self_test(&self) -> Result<(), String> {
        let token = self.sign(&Header::new(self.alg), &serde_json::json!({"probe": true}))?;
        let decoding = DecodingKey::from_jwk(&self.jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(self.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Sign `claims` under `header` (its `alg` and `kid` are set from this key).
    pub fn sign<T: serde::Serialize>(&self, header: &Header, claims: &T) -> Result<String, String> {
        let mut header = header.clone();
        header.alg = self.alg;
        header.kid = Some(self.kid.clone());
        match &self.signer {
            Some(signer) => signer.sign(header, claims),
            None => {
                jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
            }
        }
    }

    /// Whether signing uses the key parsed at load (true for every key `keygen` writes).
    pub fn is_preparsed(&self) -> bool {
        self.signer.is_some()
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The algorithm's JWS name (`RS256`, `EdDSA`...).
    pub fn alg_name(&self) -> String {
        format!("{:?}", self.alg)
    }

    /// The public JWK (no private parameters).
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }
}

/// Decoded length of unpadded base64url (JWK moduli carry no leading zero byte).
fn base64_len(b64url: &str) -> usize {
    b64url.trim_end_matches('=').len() * 3 / 4
}

/// The keys of a config: the first signs, all are published.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// A key set; `keys` must not be empty.
    pub fn new(keys: Vec<SigningKey>) -> Option<KeySet> {
        (!keys.is_empty()).then_some(KeySet { keys })
    }

    /// The key that signs new tokens.
    pub fn signing(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// Every key.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The public JWKS, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

/// Generate a new private key for `alg` as PKCS#8 PEM (RSA keys are 2048 bits; ES256 uses
/// P-256, ES384 P-384, EdDSA Ed25519).
pub fn generate_pem(alg: &str) -> Result<String, String> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair,
    };
    let failed = |_| format!("cannot generate a {alg} key");
    let der: Vec<u8> = match parse_alg(alg)? {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(failed)?;
            let der: Pkcs8V1Der<'static> = pair.as_der().map_err(failed)?;
            der.as_ref().to_vec()
        }
        Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|p| p.to_pkcs8v1())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        Algorithm::ES384 => EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING)
            .and_then(|p| p.to_pkcs8v1())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        other => return Err(format!("{other:?} is not supported")),
    };
    Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_for_their_algorithm_and_sign() {
        for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
            let pem = generate_pem(alg).unwrap();
            let key = SigningKey::from_pem("k", parse_alg(alg).unwrap(), pem.as_bytes()).unwrap();
            assert_eq!(key.jwk().common.key_id.as_deref(), Some("k"));
            // Loading already signed with the parsed key and verified with the public JWK.
            assert!(
                key.is_preparsed(),
                "{alg} signs with the key parsed at load"
            );
        }
    }

    #[test]
    fn a_key_for_another_algorithm_is_refused() {
        let es384 = generate_pem("ES384").unwrap();
        assert!(SigningKey::from_pem("k", Algorithm::ES256, es384.as_bytes()).is_err());
        let ed = generate_pem("EdDSA").unwrap();
        assert!(SigningKey::from_pem("k", Algorithm::RS256, ed.as_bytes()).is_err());
    }

    #[test]
    fn hmac_is_refused_with_the_reason() {
        let err = parse_alg("HS256").unwrap_err();
        assert!(err.contains("forge"), "{err}");
        assert!(parse_alg("none").is_err());
    }
}
