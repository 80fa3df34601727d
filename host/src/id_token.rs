//! The ID token's claims (OpenID Connect Core 1.0, section 2): who logged in, for which client,
//! the profile and email claims the requested scopes allow, then the rules' custom claims.

use serde_json::{Map, Value, json};

use claimsmith_sdk::Event;

/// Build the ID token claims for `event` at `now` (seconds since the epoch).
pub fn claims(
    issuer: &str,
    event: &Event,
    custom: &Map<String, Value>,
    now: u64,
    ttl: u64,
) -> Map<String, Value> {
    let user = &event.user;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer));
    claims.insert("sub".into(), json!(user.user_id));
    claims.insert("aud".into(), json!(event.client.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + ttl));
    if let Some(nonce) = &event.transaction.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    super::access_token::authentication_claims(event, &mut claims);
    if let Some(org) = &event.organization {
        claims.insert("org_id".into(), json!(org.id));
        if !org.name.is_empty() {
            claims.insert("org_name".into(), json!(org.name));
        }
    }
    let scopes = &event.transaction;
    if scopes.requested("profile") {
        let profile = [
            ("name", &user.name),
            ("nickname", &user.nickname),
            ("given_name", &user.given_name),
            ("family_name", &user.family_name),
            ("picture", &user.picture),
        ];
        for (name, value) in profile {
            if let Some(value) = value {
                claims.insert(name.into(), json!(value));
            }
        }
        // OIDC Core 5.1: seconds since the epoch, a number. The event carries it as Auth0
        // does, an RFC 3339 string (or the seconds as text); anything else is left out.
        if let Some(updated_at) = user.updated_at.as_deref().and_then(|text| {
            super::access_token::rfc3339_seconds(text).or_else(|| text.parse::<i64>().ok())
        }) {
            claims.insert("updated_at".into(), json!(updated_at));
        }
    }
    if scopes.requested("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    if scopes.requested("phone")
        && let Some(phone) = &user.phone_number
    {
        claims.insert("phone_number".into(), json!(phone));
        claims.insert("phone_number_verified".into(), json!(user.phone_verified));
    }
    for (name, value) in custom {
        claims.insert(name.clone(), value.clone());
    }
    claims
}
