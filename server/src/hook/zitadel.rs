//! Zitadel Actions v2: a `restCall` target bound to the function `preaccesstoken` (the JWT access
//! token) or `preuserinfo` (the ID token and the userinfo response).
//!
//! Zitadel sends the user, their metadata, org and grants, the application's client id, and the
//! token's claims so far (`userinfo`). The response can only **append** claims
//! (`append_claims`, refused by Zitadel when the key is already there, skipped silently under
//! `urn:zitadel:iam`) and write user metadata (`set_user_metadata`, values base64). So a claim
//! override, a claim removal, a reserved `urn:zitadel:iam` key, a metadata deletion, a scope
//! change or an MFA request cannot be carried and fail closed. Each call is for one token: the
//! rules' claims for the other token are applied when Zitadel calls the other function. A denial
//! is a 200 with `forwardedStatusCode: 403`; it stops the login only when the target has
//! `interruptOnError: true` (otherwise Zitadel fails open).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use claimsmith_engine::{Command, Outcome, TokenKind};
use claimsmith_sdk::{Client, Event, IssuerClaims, Organization, User};
use serde_json::{Map, Value, json};

use super::{
    At, Refusal, Reply, Uncarried, first_of, first_str, profile_from_claims, rule_of,
    rule_removing, rule_setting, split_scopes,
};

/// Which function called, and so which token the response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    PreAccessToken,
    PreUserinfo,
}

/// The function and the claims its token already has.
pub(super) struct State {
    function: Function,
    claims: Map<String, Value>,
}

/// Default `client.client_id` when Zitadel names no application.
const DEFAULT_CLIENT: &str = "zitadel";

/// Zitadel skips appended claims under this prefix without an error.
const RESERVED_PREFIX: &str = "urn:zitadel:iam";

pub(super) fn request(root: &At<'_>) -> Result<(Event, State), String> {
    let function = root.required("function", root.str("function"))?;
    let function = match function.strip_prefix("function/").unwrap_or(function) {
        "preaccesstoken" => Function::PreAccessToken,
        "preuserinfo" => Function::PreUserinfo,
        other => {
            return Err(format!(
                "request field `function` must be `preaccesstoken` or `preuserinfo`, found `{other}`"
            ));
        }
    };
    let claims = root.map("userinfo")?.cloned().unwrap_or_default();
    let user_at = root.obj("user")?;
    let human = match &user_at {
        Some(u) => u.obj("human")?,
        None => None,
    };
    let machine = match &user_at {
        Some(u) => u.obj("machine")?,
        None => None,
    };
    let client_id = first_of([
        match root.obj("application")? {
            Some(app) => app.string("client_id")?,
            None => None,
        },
        first_str(claims.get("client_id")),
        first_str(claims.get("azp")),
    ])
    .unwrap_or_else(|| DEFAULT_CLIENT.to_owned());
    let user_id = first_of([
        user_at
            .as_ref()
            .map(|u| u.string("id"))
            .transpose()?
            .flatten(),
        first_str(claims.get("sub")),
    ])
    .unwrap_or_else(|| client_id.clone());

    let mut user = User {
        user_id,
        ..User::default()
    };
    if let Some(h) = &human {
        user.given_name = h.string("first_name")?;
        user.family_name = h.string("last_name")?;
        user.nickname = h.string("nick_name")?;
        user.name = h.string("display_name")?;
        user.email = h.string("email")?;
        user.email_verified = h.bool("is_email_verified")?.unwrap_or(false);
        user.phone_number = h.string("phone")?;
        user.phone_verified = h.bool("is_phone_verified")?.unwrap_or(false);
    }
    if let Some(m) = &machine {
        super::fill(&mut user.name, m.string("name")?);
    }
    profile_from_claims(&mut user, &claims);

    // One metadata list in Zitadel: shown as both of Auth0's metadata objects.
    let mut metadata = Map::new();
    for entry in root.objects("user_metadata")? {
        let key = entry.required("key", entry.string("key"))?;
        let value = match entry.str("value")? {
            None => Value::String(String::new()),
            Some(encoded) => match STANDARD.decode(encoded) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => Value::String(text),
                    Err(_) => Value::String(encoded.to_owned()),
                },
                Err(_) => {
                    return Err(format!(
                        "request field `{}.value` must be base64",
                        entry.path
                    ));
                }
            },
        };
        metadata.insert(key, value);
    }
    user.app_metadata = metadata.clone();
    user.user_metadata = metadata;

    let mut event = Event {
        user,
        client: Client {
            client_id,
            ..Client::default()
        },
        issuer_claims: match function {
            Function::PreAccessToken => IssuerClaims {
                access_token: claims.clone(),
                ..IssuerClaims::default()
            },
            Function::PreUserinfo => IssuerClaims {
                id_token: claims.clone(),
                ..IssuerClaims::default()
            },
        },
        ..Event::default()
    };
    for grant in root.objects("user_grants")? {
        for role in grant.strings("roles")? {
            if !event.authorization.roles.contains(&role) {
                event.authorization.roles.push(role);
            }
        }
    }
    if let Some(org) = root.obj("org")? {
        let mut organization = Organization {
            id: org.string("id")?.unwrap_or_default(),
            name: org.string("name")?.unwrap_or_default(),
            ..Organization::default()
        };
        if let Some(domain) = org.string("primary_domain")? {
            organization
                .metadata
                .insert("primary_domain".into(), Value::String(domain));
        }
        event.organization = Some(organization);
    }
    // Not sent today (zitadel#12524); read if a later Zitadel adds it.
    if let Some(request) = root.obj("request")? {
        event.transaction.requested_scopes = match request.value("scope") {
            Some(Value::String(s)) => split_scopes(s),
            Some(_) => request.strings("scope")?,
            None => Vec::new(),
        };
    }
    Ok((event, State { function, claims }))
}

const WHY_SCOPES: &str = "Zitadel's actions cannot change scopes";
const WHY_AUTHENTICATION: &str =
    "Zitadel's actions cannot ask for an authentication challenge or enrollment";
const WHY_SESSION: &str = "Zitadel's actions cannot set the session's expiry";
const WHY_MFA: &str = "Zitadel's actions cannot ask for multi-factor authentication";

const UNCARRIED: Uncarried = Uncarried {
    scopes: Some(WHY_SCOPES),
    mfa: Some(WHY_MFA),
    authentication: Some(WHY_AUTHENTICATION),
    session: Some(WHY_SESSION),
    metadata: None,
};

pub(super) fn respond(state: &State, outcome: &Outcome) -> Result<Reply, Refusal> {
    UNCARRIED.check(outcome)?;
    let (token, set, removed) = match state.function {
        Function::PreAccessToken => (
            TokenKind::AccessToken,
            &outcome.access_token,
            &outcome.access_token_removed,
        ),
        Function::PreUserinfo => (
            TokenKind::IdToken,
            &outcome.id_token,
            &outcome.id_token_removed,
        ),
    };
    let existing = |name: &str| state.claims.get(name).filter(|v| !v.is_null());
    let mut append = Vec::new();
    for (name, value) in set {
        let why = if name.starts_with(RESERVED_PREFIX) {
            Some("Zitadel silently skips claims under `urn:zitadel:iam`")
        } else {
            match existing(name) {
                Some(current) if current == value => continue,
                Some(_) => Some("Zitadel's actions can only add claims, not override one"),
                None => None,
            }
        };
        if let Some(why) = why {
            return Err(Refusal::cannot_carry(
                &rule_setting(outcome, token, name),
                &format!("sets claim `{name}`"),
                why,
            ));
        }
        append.push(json!({"key": name, "value": value}));
    }
    for name in removed {
        if existing(name).is_some() {
            return Err(Refusal::cannot_carry(
                &rule_removing(outcome, token, name),
                &format!("removes claim `{name}`"),
                "Zitadel's actions cannot remove a claim",
            ));
        }
    }
    let mut metadata = Map::new();
    for (from_app, updates) in [
        (true, &outcome.app_metadata),
        (false, &outcome.user_metadata),
    ] {
        for (key, value) in updates {
            let rule = || {
                rule_of(outcome, |c| match c {
                    Command::SetAppMetadata { key: k, .. } => from_app && k == key,
                    Command::SetUserMetadata { key: k, .. } => !from_app && k == key,
                    _ => false,
                })
            };
            let what = format!(
                "updates {} `{key}`",
                if from_app {
                    "app_metadata"
                } else {
                    "user_metadata"
                }
            );
            if value.is_null() {
                return Err(Refusal::cannot_carry(
                    &rule(),
                    &what,
                    "Zitadel's `set_user_metadata` cannot delete a key",
                ));
            }
            if metadata.get(key).is_some_and(|v| v != value) {
                return Err(Refusal::cannot_carry(
                    &rule(),
                    &what,
                    "Zitadel keeps one metadata list and app_metadata sets the same key to another value",
                ));
            }
            metadata.insert(key.clone(), value.clone());
        }
    }
    let mut body = Map::new();
    if !append.is_empty() {
        body.insert("append_claims".into(), Value::Array(append));
    }
    if !metadata.is_empty() {
        let entries = metadata
            .iter()
            .map(|(key, value)| {
                let bytes = match value {
                    Value::String(s) => s.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                json!({"key": key, "value": STANDARD.encode(bytes)})
            })
            .collect();
        body.insert("set_user_metadata".into(), Value::Array(entries));
    }
    Ok(Reply::json(200, Value::Object(body)))
}

pub(super) fn refuse(refusal: Refusal) -> Reply {
    // 4xx is forwarded as that error; anything else becomes PreconditionFailed, message kept.
    let code = refusal.status();
    Reply::json(
        200,
        json!({"forwardedStatusCode": code, "forwardedErrorMessage": refusal.message()}),
    )
}

pub(super) fn error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"forwardedStatusCode": status, "forwardedErrorMessage": message}),
    )
}
