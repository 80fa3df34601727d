//! How an issuer proves a hook call is its own, checked before the body is read as JSON.
//!
//! - [`HookAuth::ApiKey`]: a static key in a header or a cookie (Ory Hydra's `auth.type:
//!   api_key`, Okta's `Authorization` header or custom header, a Cognito Lambda shim's header).
//! - [`HookAuth::StandardWebhooks`]: `webhook-id`, `webhook-timestamp`, `webhook-signature` with
//!   HMAC-SHA256 over `id.timestamp.body`, base64 (Supabase Auth). Several secrets for rotation;
//!   the signature header may list several signatures, space- or comma-separated (Supabase joins
//!   its with `", "`, the spec with spaces).
//! - [`HookAuth::ZitadelSignature`]: `ZITADEL-Signature: t=<unix>,v1=<hex HMAC-SHA256 over
//!   "t.body">` (also accepted as `X-ZITADEL-Signature`, the name Zitadel's proto documents).
//!
//! Every comparison is constant-time; timestamps must be within 5 minutes of `now` (Zitadel's
//! own verifier allows 300 s too). Why a check failed ([`AuthFailure`]) is for logs only: the
//! 401 body never says which.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from now, either way.
const TOLERANCE: Duration = Duration::from_secs(300);

/// The most signatures one request may carry (a rotation lists two or three). More is refused
/// as malformed before any HMAC is computed.
const MAX_SIGNATURES: usize = 16;

/// The length of an HMAC-SHA256: a signature of any other length cannot match and is skipped.
const SIGNATURE_BYTES: usize = 32;

/// A hook endpoint's authentication.
pub(crate) enum HookAuth {
    /// Anyone may call (for a hook behind its own authenticating proxy).
    None,
    /// A static key in a header or a cookie.
    ApiKey {
        /// Where the key is sent.
        place: KeyPlace,
        /// The key.
        value: Secret,
    },
    /// Standard Webhooks signatures (Supabase).
    StandardWebhooks {
        /// The decoded key bytes; several for rotation.
        secrets: Vec<Secret>,
    },
    /// Zitadel's signature header.
    ZitadelSignature {
        /// The target's `signingKey`, as its bytes (Zitadel does not decode it).
        signing_key: Secret,
    },
}

/// Where an API key is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyPlace {
    /// In this header.
    Header(http::HeaderName),
    /// In this cookie.
    Cookie(String),
}

/// Secret bytes: never printed (`Debug` shows `[REDACTED]`, there is no `Display`).
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// A hook's auth settings cannot be used; never shows a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthSetupError {
    /// A key or secret is empty.
    #[error("the {0} is empty")]
    Empty(&'static str),
    /// The header or cookie name is not a valid one.
    #[error("`{0}` is not a valid {1} name")]
    BadName(String, &'static str),
    /// A Standard Webhooks secret is not `whsec_<base64>` (optionally after `v1,`).
    #[error(
        "Standard Webhooks secret number {index} is not `whsec_<base64>` or `v1,whsec_<base64>`: {reason}"
    )]
    BadSecret {
        /// Which secret, from 1.
        index: usize,
        /// What is wrong (never the secret).
        reason: &'static str,
    },
    /// No secret given.
    #[error("Standard Webhooks needs at least one secret")]
    NoSecrets,
}

/// Why a request was refused. Internal: the 401 body never says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// The key, cookie or signature headers are not there.
    Missing,
    /// The API key is not the configured one.
    Mismatch,
    /// No signature matches.
    BadSignature,
    /// The signed timestamp is more than 5 minutes from now.
    StaleTimestamp,
    /// A header is there but unreadable.
    Malformed,
}

impl AuthFailure {
    /// What failed, for the server's log (never a secret, never what the caller sent).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "the key, cookie or signature headers are missing",
            AuthFailure::Mismatch => "the API key does not match",
            AuthFailure::BadSignature => "no signature matches",
            AuthFailure::StaleTimestamp => "the signed timestamp is more than 5 minutes from now",
            AuthFailure::Malformed => "a key or signature header is unreadable",
        }
    }
}

impl HookAuth {
    /// An API key in the header `name`.
    pub(crate) fn api_key_header(name: &str, value: String) -> Result<Self, AuthSetupError> {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| AuthSetupError::BadName(name.to_owned(), "header"))?;
        Ok(HookAuth::ApiKey {
            place: KeyPlace::Header(name),
            value: non_empty(value, "API key")?,
        })
    }

    /// An API key in the cookie `name`.
    pub(crate) fn api_key_cookie(name: &str, value: String) -> Result<Self, AuthSetupError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !valid {
            return Err(AuthSetupError::BadName(name.to_owned(), "cookie"));
        }
        Ok(HookAuth::ApiKey {
            place: KeyPlace::Cookie(name.to_owned()),
            value: non_empty(value, "API key")?,
        })
    }

    /// Standard Webhooks secrets, each `whsec_<base64>` or Supabase's `v1,whsec_<base64>`; a
    /// value may hold several separated by `|`, as Supabase's setting does.
    pub(crate) fn standard_webhooks(secrets: Vec<String>) -> Result<Self, AuthSetupError> {
        let mut keys = Vec::new();
        for secret in secrets.iter().flat_map(|s| s.split('|')) {
            let index = keys.len() + 1;
            let text = secret.trim();
            let text = text.strip_prefix("v1,").unwrap_or(text);
            if text.starts_with("v1a,") || text.starts_with("whpk_") || text.starts_with("whsk_") {
                return Err(AuthSetupError::BadSecret {
                    index,
                    reason: "asymmetric (v1a) secrets are not supported",
                });
            }
            let encoded = text.strip_prefix("whsec_").unwrap_or(text);
            if encoded.is_empty() {
                return Err(AuthSetupError::Empty("Standard Webhooks secret"));
            }
            let bytes = STANDARD
                .decode(encoded)
                .map_err(|_| AuthSetupError::BadSecret {
                    index,
                    reason: "not valid base64",
                })?;
            if bytes.is_empty() {
                return Err(AuthSetupError::Empty("Standard Webhooks secret"));
            }
            keys.push(Secret(bytes));
        }
        if keys.is_empty() {
            return Err(AuthSetupError::NoSecrets);
        }
        Ok(HookAuth::StandardWebhooks { secrets: keys })
    }

    /// Zitadel's per-target signing key, used as its bytes.
    pub(crate) fn zitadel_signature(signing_key: String) -> Result<Self, AuthSetupError> {
        Ok(HookAuth::ZitadelSignature {
            signing_key: non_empty(signing_key, "Zitadel signing key")?,
        })
    }

    /// The scheme's name: `none`, `api_key`, `standard_webhooks`, `zitadel_signature`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            HookAuth::None => "none",
            HookAuth::ApiKey { .. } => "api_key",
            HookAuth::StandardWebhooks { .. } => "standard_webhooks",
            HookAuth::ZitadelSignature { .. } => "zitadel_signature",
        }
    }

    /// What the headers alone can show, before the body is read: the whole check for a key (or
    /// none); for a signature, that its headers are there, well-formed and within the
    /// tolerance of `now`, kept for [`HookAuth::verify_body`] to check the signature once the
    /// body is read.
    pub(crate) fn verify_headers(
        &self,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Result<HeaderCheck, AuthFailure> {
        match self {
            HookAuth::None => Ok(HeaderCheck::Done),
            HookAuth::ApiKey { place, value } => {
                let given = match place {
                    KeyPlace::Header(name) => single_header(headers, name.as_str())?,
                    KeyPlace::Cookie(name) => cookie(headers, name)?,
                };
                if same_key(given, value.bytes()) {
                    Ok(HeaderCheck::Done)
                } else {
                    Err(AuthFailure::Mismatch)
                }
            }
            HookAuth::StandardWebhooks { .. } => {
                let id = single_header(headers, "webhook-id")?;
                let timestamp = single_header(headers, "webhook-timestamp")?;
                let signatures = single_header(headers, "webhook-signature")?;
                let seconds = parse_seconds(timestamp)?;
                let signatures = standard_signatures(signatures)?;
                check_time(seconds, now)?;
                // Signed: `id.timestamp.body`.
                Ok(HeaderCheck::Signed {
                    prefix: [id, b".", timestamp, b"."].concat(),
                    signatures,
                })
            }
            HookAuth::ZitadelSignature { .. } => {
                let header = zitadel_signature_header(headers)?;
                let (timestamp, signatures) = zitadel_header(header)?;
                check_time(parse_seconds(timestamp)?, now)?;
                // Signed: `timestamp.body`.
                Ok(HeaderCheck::Signed {
                    prefix: [timestamp, b"."].concat(),
                    signatures,
                })
            }
        }
    }

    /// Finish what [`HookAuth::verify_headers`] began: a signature over the raw body.
    pub(crate) fn verify_body(&self, check: HeaderCheck, body: &[u8]) -> Result<(), AuthFailure> {
        let HeaderCheck::Signed {
            mut prefix,
            signatures,
        } = check
        else {
            return Ok(());
        };
        prefix.extend_from_slice(body);
        match self {
            HookAuth::StandardWebhooks { secrets } => {
                any_signature(secrets.iter(), &prefix, &signatures)
            }
            HookAuth::ZitadelSignature { signing_key } => {
                any_signature(std::iter::once(signing_key), &prefix, &signatures)
            }
            HookAuth::None | HookAuth::ApiKey { .. } => Err(AuthFailure::BadSignature),
        }
    }

    /// Check a request's headers and raw body at time `now`: both steps at once.
    #[cfg(test)]
    pub(crate) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), AuthFailure> {
        let check = self.verify_headers(headers, now)?;
        self.verify_body(check, body)
    }
}

/// What a request's headers showed: all there is to check, or a signature's signed prefix and
/// signatures, for the body.
pub(crate) enum HeaderCheck {
    /// Nothing more to check.
    Done,
    /// The signed text before the body, and the signatures to compare.
    Signed {
        prefix: Vec<u8>,
        signatures: Vec<Vec<u8>>,
    },
}

/// Zitadel's signature header, under either of its names.
fn zitadel_signature_header(headers: &HeaderMap) -> Result<&[u8], AuthFailure> {
    match single_header(headers, "zitadel-signature") {
        Err(AuthFailure::Missing) => single_header(headers, "x-zitadel-signature"),
        other => other,
    }
}

fn non_empty(value: String, what: &'static str) -> Result<Secret, AuthSetupError> {
    if value.is_empty() {
        Err(AuthSetupError::Empty(what))
    } else {
        Ok(Secret(value.into_bytes()))
    }
}

/// The one value of a header; two values are malformed.
fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h [u8], AuthFailure> {
    let mut values = headers.get_all(name).iter();
    let first = values.next().ok_or(AuthFailure::Missing)?;
    if values.next().is_some() {
        return Err(AuthFailure::Malformed);
    }
    Ok(first.as_bytes())
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h [u8], AuthFailure> {
    let mut found = None;
    for header in headers.get_all(http::header::COOKIE) {
        for pair in header.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                continue;
            };
            if &pair[..eq] == name.as_bytes() {
                if found.is_some() {
                    return Err(AuthFailure::Malformed);
                }
                let value = pair[eq + 1..].trim_ascii();
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                found = Some(value);
            }
        }
    }
    found.ok_or(AuthFailure::Missing)
}

/// Constant-time key comparison that does not leak the key's length either: the SHA-256 of
/// both sides are compared.
fn same_key(given: &[u8], expected: &[u8]) -> bool {
    let given = digest::digest(&digest::SHA256, given);
    let expected = digest::digest(&digest::SHA256, expected);
    bool::from(given.as_ref().ct_eq(expected.as_ref()))
}

fn parse_seconds(text: &[u8]) -> Result<u64, AuthFailure> {
    std::str::from_utf8(text)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or(AuthFailure::Malformed)
}

fn check_time(seconds: u64, now: SystemTime) -> Result<(), AuthFailure> {
    // A time the clock cannot hold is as far from now as any.
    let signed = UNIX_EPOCH
        .checked_add(Duration::from_secs(seconds))
        .ok_or(AuthFailure::StaleTimestamp)?;
    let off = match now.duration_since(signed) {
        Ok(past) => past,
        Err(future) => future.duration(),
    };
    if off > TOLERANCE {
        Err(AuthFailure::StaleTimestamp)
    } else {
        Ok(())
    }
}

/// The `v1` signatures of a `webhook-signature` header, decoded. Accepts the spec's
/// space-separated list (`v1,<b64> v1,<b64>`), Supabase's `", "`-joined one, and a plain comma
/// list; other versions (`v1a`) are skipped.
fn standard_signatures(header: &[u8]) -> Result<Vec<Vec<u8>>, AuthFailure> {
    let text = std::str::from_utf8(header).map_err(|_| AuthFailure::Malformed)?;
    let mut parts = text
        .split([' ', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let mut signatures = Vec::new();
    let mut entries = 0;
    while let Some(version) = parts.next() {
        let Some(signature) = parts.next() else {
            return Err(AuthFailure::Malformed);
        };
        entries += 1;
        if entries > MAX_SIGNATURES {
            return Err(AuthFailure::Malformed);
        }
        if version == "v1"
            && let Ok(bytes) = STANDARD.decode(signature)
        {
            signatures.push(bytes);
        }
    }
    if signatures.is_empty() {
        return Err(AuthFailure::Malformed);
    }
    Ok(signatures)
}

/// `t=<unix>,v1=<hex>[,v1=<hex>..]`: the timestamp text and the decoded signatures. Unknown
/// parts and undecodable signatures are skipped, as Zitadel's own verifier does. More than
/// [`MAX_SIGNATURES`] parts is malformed.
fn zitadel_header(header: &[u8]) -> Result<(&[u8], Vec<Vec<u8>>), AuthFailure> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for (index, part) in header.split(|b| *b == b',').enumerate() {
        if index > MAX_SIGNATURES {
            return Err(AuthFailure::Malformed);
        }
        let part = part.trim_ascii();
        let Some(eq) = part.iter().position(|b| *b == b'=') else {
            return Err(AuthFailure::Malformed);
        };
        let (name, value) = (&part[..eq], &part[eq + 1..]);
        match name {
            b"t" => timestamp = Some(value),
            b"v1" => {
                if let Some(bytes) = hex(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(AuthFailure::Malformed)?;
    if signatures.is_empty() {
        return Err(AuthFailure::BadSignature);
    }
    Ok((timestamp, signatures))
}

fn hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let digit = |b: u8| (b as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

/// Whether any signature is the HMAC-SHA256 of `signed` under any secret (constant-time).
/// One HMAC per secret, whatever the number of signatures: the body is hashed once each.
fn any_signature<'s>(
    secrets: impl Iterator<Item = &'s Secret>,
    signed: &[u8],
    signatures: &[Vec<u8>],
) -> Result<(), AuthFailure> {
    let mut ok = false;
    for secret in secrets {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.bytes());
        let expected = hmac::sign(&key, signed);
        for signature in signatures {
            // Every pair is compared, so the time does not say which one matched.
            if signature.len() == SIGNATURE_BYTES {
                ok |= bool::from(expected.as_ref().ct_eq(signature.as_slice()));
            }
        }
    }
    if ok {
        Ok(())
    } else {
        Err(AuthFailure::BadSignature)
    }
}

#[cfg(test)]
mod tests;
