//! Signing keys: PKCS#8 PEM files loaded and checked against their algorithm, the public JWKS,
//! and key generation for set-up. Asymmetric algorithms only: HMAC would let every holder of
//! the secret forge tokens.

use std::path::Path;
use std::sync::Arc;

use std::path::PathBuf;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm as Jwa, DecodingKey, EncodingKey, Header, Validation};

use crate::signer::Signer;

/// The algorithms a key may use.
const SUPPORTED: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// A JWS signing algorithm a key may use: asymmetric only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// The algorithm's JWS name (`RS256`, `EdDSA`...).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    fn of(jwa: Jwa) -> Algorithm {
        match jwa {
            Jwa::RS384 => Algorithm::RS384,
            Jwa::RS512 => Algorithm::RS512,
            Jwa::PS256 => Algorithm::PS256,
            Jwa::PS384 => Algorithm::PS384,
            Jwa::PS512 => Algorithm::PS512,
            Jwa::ES256 => Algorithm::ES256,
            Jwa::ES384 => Algorithm::ES384,
            Jwa::EdDSA => Algorithm::EdDSA,
            // `parse_alg` lets no other algorithm through.
            _ => Algorithm::RS256,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = KeyError;

    /// Parse a JWS name, refusing HMAC and `none`.
    fn from_str(alg: &str) -> Result<Algorithm, KeyError> {
        parse_alg(alg).map(Algorithm::of)
    }
}

/// A signing key that cannot be loaded, generated or used; names the file or algorithm.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// An HMAC algorithm (or `none`) was asked for.
    #[error(
        "{0} is refused: with a shared secret every holder of it can forge tokens; use one of {list}",
        list = SUPPORTED.join(", ")
    )]
    Refused(String),
    /// Not an algorithm claimsmith signs with.
    #[error("unknown algorithm {0:?}; use one of {list}", list = SUPPORTED.join(", "))]
    UnknownAlgorithm(String),
    /// The key file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key is not a private key for its algorithm, or too weak.
    #[error("{}: {problem}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Key generation failed.
    #[error("cannot generate a {0} key")]
    Generate(Algorithm),
    /// Signing a token failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A private key with its id, algorithm and public JWK.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Jwa,
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
fn parse_alg(alg: &str) -> Result<Jwa, KeyError> {
    if alg.to_ascii_uppercase().starts_with("HS") {
        return Err(KeyError::Refused(alg.to_owned()));
    }
    if !SUPPORTED.contains(&alg) {
        return Err(KeyError::UnknownAlgorithm(alg.to_owned()));
    }
    alg.parse::<Jwa>()
        .map_err(|_| KeyError::UnknownAlgorithm(alg.to_owned()))
}

impl SigningKey {
    /// Load `path` as a private key for `alg`, and prove it signs and verifies under that alg.
    pub fn load(kid: &str, alg: &str, path: &Path) -> Result<SigningKey, KeyError> {
        let alg = parse_alg(alg)?;
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        SigningKey::from_pem(kid, alg, &pem).map_err(|problem| KeyError::Unusable {
            path: path.to_owned(),
            problem,
        })
    }

    /// A key from PEM bytes.
    fn from_pem(kid: &str, alg: Jwa, pem: &[u8]) -> Result<SigningKey, String> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("PUBLIC KEY-----") && !text.contains("PRIVATE KEY-----") {
            return Err("is a public key; the issuer needs the private key (PKCS#8 PEM)".into());
        }
        let not_for = |e: jsonwebtoken::errors::Error| {
            format!("is not a {alg:?} private key in PEM form: {e}")
        };
        let encoding = match alg {
            Jwa::RS256 | Jwa::RS384 | Jwa::RS512 | Jwa::PS256 | Jwa::PS384 | Jwa::PS512 => {
                EncodingKey::from_rsa_pem(pem).map_err(not_for)?
            }
            Jwa::ES256 | Jwa::ES384 => EncodingKey::from_ec_pem(pem).map_err(not_for)?,
            Jwa::EdDSA => EncodingKey::from_ed_pem(pem).map_err(not_for)?,
            other => return Err(format!("{other:?} is not supported")),
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg)
            .map_err(|e| format!("does not fit {alg:?}: {e}"))?;
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            let bits = modulus_bits(&rsa.n);
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
        let token = self
            .sign(&Header::new(self.alg), &serde_json::json!({"probe": true}))
            .map_err(|e| e.to_string())?;
        let decoding = DecodingKey::from_jwk(&self.jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(self.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Sign `claims` under `header` (its `alg` and `kid` are set from this key).
    pub(crate) fn sign<T: serde::Serialize>(
        &self,
        header: &Header,
        claims: &T,
    ) -> Result<String, KeyError> {
        let mut header = header.clone();
        header.alg = self.alg;
        header.kid = Some(self.kid.clone());
        match &self.signer {
            Some(signer) => signer.sign(header, claims),
            None => {
                jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
            }
        }
        .map_err(KeyError::Sign)
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
        Algorithm::of(self.alg)
    }

    /// The public JWK (no private parameters).
    fn jwk(&self) -> &Jwk {
        &self.jwk
    }
}

/// The bits of a JWK's RSA modulus (unpadded base64url, big-endian, no leading zero byte):
/// its bytes less the first byte's leading zero bits, so a 2047-bit key counts 2047.
fn modulus_bits(b64url: &str) -> usize {
    use base64::Engine as _;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64url.trim_end_matches('='))
        .unwrap_or_default();
    let Some(at) = n.iter().position(|&b| b != 0) else {
        return 0;
    };
    (n.len() - at) * 8 - n[at].leading_zeros() as usize
}

/// The keys of a config: the first signs, all are published.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// A key set; `None` if `keys` is empty, a `kid` is empty or two keys share one (a
    /// verifier picks the key by its `kid`, RFC 7517 section 4.5).
    pub fn new(keys: Vec<SigningKey>) -> Option<KeySet> {
        let named = keys.iter().enumerate().all(|(i, key)| {
            !key.kid.trim().is_empty() && keys[..i].iter().all(|k| k.kid != key.kid)
        });
        (!keys.is_empty() && named).then_some(KeySet { keys })
    }

    /// Load every `[[keys]]` entry of a checked config.
    pub fn from_config(config: &crate::Config) -> Result<KeySet, crate::ConfigError> {
        let mut keys: Vec<SigningKey> = Vec::new();
        for (i, key) in config.keys.iter().enumerate() {
            // Checked here too, as a config may be built in code rather than read from a file.
            let kid_error = |message: &str| crate::ConfigError::Invalid {
                path: config.path.clone(),
                field: format!("keys[{i}].kid"),
                message: message.to_owned(),
            };
            if key.kid.trim().is_empty() {
                return Err(kid_error("must not be empty"));
            }
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(kid_error(&format!("duplicate key id {:?}", key.kid)));
            }
            keys.push(
                SigningKey::load(&key.kid, &key.alg, &key.private_key).map_err(|error| {
                    crate::ConfigError::Invalid {
                        path: config.path.clone(),
                        field: format!("keys[{i}]"),
                        message: error.to_string(),
                    }
                })?,
            );
        }
        KeySet::new(keys).ok_or_else(|| crate::ConfigError::Invalid {
            path: config.path.clone(),
            field: "keys".into(),
            message: "no signing key".into(),
        })
    }

    /// The key that signs new tokens.
    pub fn signing(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// Every key.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The public JWKS, for `/.well-known/jwks.json`: `{"keys": [..]}`, no private parameters.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&Jwk> = self.keys.iter().map(SigningKey::jwk).collect();
        serde_json::json!({ "keys": keys })
    }
}

/// Generate a new private key for `alg` as PKCS#8 PEM (RSA keys are 2048 bits; ES256 uses
/// P-256, ES384 P-384, EdDSA Ed25519).
pub fn generate_pem(alg: &str) -> Result<String, KeyError> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair,
    };
    let jwa = parse_alg(alg)?;
    let failed = |_| KeyError::Generate(Algorithm::of(jwa));
    let der: Vec<u8> = match jwa {
        Jwa::RS256 | Jwa::RS384 | Jwa::RS512 | Jwa::PS256 | Jwa::PS384 | Jwa::PS512 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(failed)?;
            let der: Pkcs8V1Der<'static> = pair.as_der().map_err(failed)?;
            der.as_ref().to_vec()
        }
        Jwa::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|p| p.to_pkcs8v1())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        Jwa::ES384 => EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING)
            .and_then(|p| p.to_pkcs8v1())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        Jwa::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        _ => return Err(KeyError::UnknownAlgorithm(alg.to_owned())),
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
        assert!(SigningKey::from_pem("k", Jwa::ES256, es384.as_bytes()).is_err());
        let ed = generate_pem("EdDSA").unwrap();
        assert!(SigningKey::from_pem("k", Jwa::RS256, ed.as_bytes()).is_err());
    }

    #[test]
    fn hmac_is_refused_with_the_reason() {
        let err = parse_alg("HS256").unwrap_err().to_string();
        assert!(err.contains("forge"), "{err}");
        assert!("HS256".parse::<Algorithm>().is_err());
        assert_eq!("EdDSA".parse::<Algorithm>().unwrap(), Algorithm::EdDSA);
        assert!(parse_alg("none").is_err());
    }

    #[test]
    fn an_rsa_modulus_counts_its_bits_not_its_bytes() {
        use base64::Engine as _;
        let encode = |n: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n);
        let mut n = vec![0xff_u8; 256];
        assert_eq!(modulus_bits(&encode(&n)), 2048);
        n[0] = 0x7f; // a 2047-bit key: 256 bytes, the top bit clear
        assert_eq!(modulus_bits(&encode(&n)), 2047);
        n[0] = 0x01;
        assert_eq!(modulus_bits(&encode(&n)), 2041);
        assert_eq!(modulus_bits(&encode(&n[1..])), 2040);
        assert_eq!(modulus_bits(""), 0);
    }

    #[test]
    fn a_key_set_needs_a_kid_on_every_key_and_no_kid_twice() {
        let pem = generate_pem("EdDSA").unwrap();
        let key = |kid: &str| SigningKey::from_pem(kid, Jwa::EdDSA, pem.as_bytes()).unwrap();
        assert!(KeySet::new(vec![key("a"), key("b")]).is_some());
        assert!(KeySet::new(vec![key("a"), key("a")]).is_none());
        assert!(KeySet::new(vec![key(" ")]).is_none());
        assert!(KeySet::new(Vec::new()).is_none());
    }
}
