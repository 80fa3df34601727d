//! JWS signing with the private key parsed once, at load: `jsonwebtoken::encode` parses the PEM
//! key again on every call, which for RSA and Ed25519 costs more than the signature itself.
//! Produces the same compact JWS (`base64url(header).base64url(claims).base64url(signature)`);
//! the key's load-time self-test verifies the first token it signs with the public JWK.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};

/// A parsed private key, ready to sign under one algorithm.
pub struct Signer {
    alg: Algorithm,
    key: ParsedKey,
    rng: SystemRandom,
}

enum ParsedKey {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Signer {
    /// Parse the PEM private key for `alg`; `None` if this fast path does not take its encoding
    /// (the caller then signs through `jsonwebtoken`).
    pub fn from_pem(alg: Algorithm, pem: &[u8]) -> Option<Signer> {
        let block = pem::parse(pem).ok()?;
        let der = block.contents();
        let pkcs1 = block.tag() == "RSA PRIVATE KEY";
        let rsa = |encoding: &'static dyn signature::RsaEncoding| {
            let pair = if pkcs1 {
                RsaKeyPair::from_der(der)
            } else {
                RsaKeyPair::from_pkcs8(der)
            };
            pair.ok().map(|pair| ParsedKey::Rsa(pair, encoding))
        };
        let ecdsa = |alg: &'static signature::EcdsaSigningAlgorithm| {
            EcdsaKeyPair::from_pkcs8(alg, der)
                .or_else(|_| EcdsaKeyPair::from_private_key_der(alg, der))
                .ok()
                .map(ParsedKey::Ecdsa)
        };
        let key = match alg {
            Algorithm::RS256 => rsa(&signature::RSA_PKCS1_SHA256)?,
            Algorithm::RS384 => rsa(&signature::RSA_PKCS1_SHA384)?,
            Algorithm::RS512 => rsa(&signature::RSA_PKCS1_SHA512)?,
            Algorithm::PS256 => rsa(&signature::RSA_PSS_SHA256)?,
            Algorithm::PS384 => rsa(&signature::RSA_PSS_SHA384)?,
            Algorithm::PS512 => rsa(&signature::RSA_PSS_SHA512)?,
            Algorithm::ES256 => ecdsa(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)?,
            Algorithm::ES384 => ecdsa(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)?,
            Algorithm::EdDSA => {
                ParsedKey::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?)
            }
            _ => return None,
        };
        Some(Signer {
            alg,
            key,
            rng: SystemRandom::new(),
        })
    }

    /// The compact JWS of `claims` under `header`, whose `alg` is set to this key's.
    pub fn sign<T: serde::Serialize>(
        &self,
        mut header: Header,
        claims: &T,
    ) -> Result<String, String> {
        header.alg = self.alg;
        let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut token = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.signature(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn signature(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let failed = |_| "the signing operation failed".to_owned();
        match &self.key {
            ParsedKey::Rsa(pair, encoding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &self.rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            ParsedKey::Ecdsa(pair) => Ok(pair
                .sign(&self.rng, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            ParsedKey::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}
