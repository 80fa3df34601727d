//! Supabase Auth's custom access token hook, HTTP variant (Standard Webhooks signed).
//!
//! Supabase sends the claims of the access token it is about to sign; the response's `claims`
//! object becomes the **whole** JWT body, checked against Supabase's minimum schema. So the
//! response is the request's claims with the rules' access-token claims added or overridden and
//! removed ones left out; the required claims (`aud, exp, iat, sub, email, phone, role, aal,
//! session_id, is_anonymous`) cannot be removed or changed. Supabase has no ID token: the access
//! token is also what the client reads, so a rule's ID-token claim must be on the access token
//! with the same value, or the login fails closed. A denial is a 200 with
//! `{"error":{"http_code":403,"message":..}}`; "no change" echoes the claims (a 204 fails
//! Supabase's schema check).

use claimsmith_engine::{Outcome, TokenKind};
use claimsmith_sdk::{
    Authentication, AuthenticationMethod, Client, Connection, Event, IssuerClaims, ResourceServer,
    Session, User,
};
use serde_json::{Map, Value, json};

use super::{
    At, Refusal, Reply, Uncarried, first_of, first_str, profile_from_claims, rule_removing,
    rule_setting, split_scopes,
};

/// The claims Supabase's `MinimumViableTokenSchema` requires.
const REQUIRED: [&str; 10] = [
    "aud",
    "exp",
    "iat",
    "sub",
    "email",
    "phone",
    "role",
    "aal",
    "session_id",
    "is_anonymous",
];

/// The request's claims, the response's starting point.
pub(super) struct State {
    claims: Map<String, Value>,
}

/// Default `client.client_id`: Supabase names a client only for its OAuth server's logins.
const DEFAULT_CLIENT: &str = "supabase";

pub(super) fn request(root: &At<'_>) -> Result<(Event, State), String> {
    let claims_at = root.required("claims", root.obj("claims"))?;
    let claims = claims_at.map.clone();
    let app_metadata = claims_at.map("app_metadata")?.cloned().unwrap_or_default();
    let user_metadata = claims_at.map("user_metadata")?.cloned().unwrap_or_default();

    let client_id = claims_at
        .string("client_id")?
        .unwrap_or_else(|| DEFAULT_CLIENT.to_owned());
    let user_id = first_of([root.string("user_id")?, claims_at.string("sub")?])
        .unwrap_or_else(|| client_id.clone());
    let mut user = User {
        user_id,
        email: claims_at.string("email")?,
        phone_number: claims_at.string("phone")?,
        ..User::default()
    };
    // OAuth sign-ups carry the provider's profile in user_metadata (name, picture,
    // email_verified, ...).
    profile_from_claims(&mut user, &user_metadata);
    if let Some(Value::Bool(verified)) = user_metadata.get("phone_verified") {
        user.phone_verified |= *verified;
    }
    user.app_metadata = app_metadata.clone();
    user.user_metadata = user_metadata;

    let mut event = Event {
        user,
        client: Client {
            client_id,
            ..Client::default()
        },
        resource_server: first_str(claims.get("aud"))
            .map(|identifier| ResourceServer { identifier }),
        // The one token is both what the API and what the client read.
        issuer_claims: IssuerClaims {
            id_token: claims.clone(),
            access_token: claims.clone(),
        },
        ..Event::default()
    };
    if let Some(role) = claims_at.string("role")? {
        event.authorization.roles.push(role);
    }
    if let Some(scope) = claims_at.str("scope")? {
        event.transaction.requested_scopes = split_scopes(scope);
    }
    if let Some(method) = root.str("authentication_method")? {
        event.transaction.protocol = Some(match method {
            "token_refresh" => "oauth2-refresh-token".to_owned(),
            other => other.to_owned(),
        });
    }
    if let Some(provider) = app_metadata.get("provider").and_then(Value::as_str) {
        event.connection = Connection {
            name: provider.to_owned(),
            strategy: provider.to_owned(),
            ..Connection::default()
        };
    }
    let methods = claims_at
        .objects("amr")?
        .into_iter()
        .map(|m| {
            Ok(AuthenticationMethod {
                name: m.string("method")?.unwrap_or_default(),
                timestamp: None,
                auth_time: m.i64("timestamp")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if !methods.is_empty() {
        event.authentication = Some(Authentication {
            methods,
            ..Authentication::default()
        });
    }
    if let Some(metadata) = root.obj("metadata")? {
        event.request.ip = metadata.string("ip_address")?;
        event.login_time = super::login_time_text(&metadata, "time")?;
    }
    if event.login_time == 0
        && let Some(iat) = claims_at.i64("iat")?
    {
        event.login_time = u64::try_from(iat).unwrap_or_default().saturating_mul(1000);
    }
    if let Some(id) = claims_at.string("session_id")? {
        event.session = Some(Session {
            id,
            ..Session::default()
        });
    }
    Ok((event, State { claims }))
}

const WHY_SCOPES: &str = "Supabase's access token hook cannot change scopes";
const WHY_AUTHENTICATION: &str =
    "Supabase's access token hook cannot ask for an authentication challenge or enrollment";
const WHY_SESSION: &str = "Supabase's access token hook cannot set the session's expiry (the access token's `exp` is a required claim the hook cannot change)";
const WHY_MFA: &str = "Supabase's access token hook cannot ask for multi-factor authentication";
const WHY_METADATA: &str = "Supabase's access token hook cannot update the user (and updating the user from the hook deadlocks the sign-in)";

const UNCARRIED: Uncarried = Uncarried {
    scopes: Some(WHY_SCOPES),
    mfa: Some(WHY_MFA),
    authentication: Some(WHY_AUTHENTICATION),
    session: Some(WHY_SESSION),
    metadata: Some(WHY_METADATA),
};

pub(super) fn respond(state: &State, outcome: &Outcome) -> Result<Reply, Refusal> {
    UNCARRIED.check(outcome)?;
    let mut claims = state.claims.clone();
    for name in &outcome.access_token_removed {
        if REQUIRED.contains(&name.as_str()) {
            return Err(Refusal::cannot_carry(
                &rule_removing(outcome, TokenKind::AccessToken, name),
                &format!("removes claim `{name}`"),
                "Supabase requires it in every access token",
            ));
        }
        claims.remove(name);
    }
    for (name, value) in &outcome.access_token {
        let why = if REQUIRED.contains(&name.as_str()) && state.claims.get(name) != Some(value) {
            Some("Supabase's required claims cannot be changed by the hook")
        } else {
            match name.as_str() {
                "app_metadata" | "user_metadata" if !value.is_object() => {
                    Some("Supabase requires that claim to be an object")
                }
                "amr" if !value.is_array() => Some("Supabase requires that claim to be an array"),
                _ => None,
            }
        };
        if let Some(why) = why {
            return Err(Refusal::cannot_carry(
                &rule_setting(outcome, TokenKind::AccessToken, name),
                &format!("sets claim `{name}`"),
                why,
            ));
        }
        claims.insert(name.clone(), value.clone());
    }
    const WHY_ID: &str = "Supabase issues only the access token, so an ID-token claim must be set on the access token with the same value";
    for (name, value) in &outcome.id_token {
        if claims.get(name) != Some(value) {
            return Err(Refusal::cannot_carry(
                &rule_setting(outcome, TokenKind::IdToken, name),
                &format!("sets ID-token claim `{name}`"),
                WHY_ID,
            ));
        }
    }
    for name in &outcome.id_token_removed {
        if claims.contains_key(name) {
            return Err(Refusal::cannot_carry(
                &rule_removing(outcome, TokenKind::IdToken, name),
                &format!("removes ID-token claim `{name}`"),
                "Supabase issues only the access token, so a claim removed from the ID token must be removed from the access token too",
            ));
        }
    }
    Ok(Reply::json(200, json!({ "claims": claims })))
}

pub(super) fn refuse(refusal: Refusal) -> Reply {
    // A 200 so that Supabase reads the error object and passes its message on.
    let code = refusal.status();
    Reply::json(
        200,
        json!({"error": {"http_code": code, "message": refusal.message()}}),
    )
}

pub(super) fn error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"http_code": status, "message": message}}),
    )
}
