//! Ory Hydra's `oauth2.token_hook` (and the legacy `oauth2.refresh_token_hook`, same response).
//!
//! Hydra sends its whole session plus the token request. It **replaces** the access token's
//! custom claims with `session.access_token` and the ID token's with `session.id_token`, so the
//! response carries the complete maps: seeded from `session.extra` and
//! `session.id_token.id_token_claims.ext`, the rules' claims added or overridden, removed claims
//! left out. 204 leaves the session untouched; 403 is `access_denied`; any other status is
//! `server_error` (Hydra retries 5xx other than 501 up to twice). Scopes, audience and MFA cannot
//! be changed and there is no metadata store: such commands fail closed.

use claimsmith_engine::{Outcome, TokenKind};
use claimsmith_sdk::{
    Authentication, AuthenticationMethod, Client, Event, IssuerClaims, ResourceServer, User,
};
use serde_json::{Map, Value, json};

use super::{
    At, Refusal, Reply, Uncarried, first_of, first_str, profile_from_claims, protocol_for_grant,
    rule_removing,
};

/// What the response is seeded from.
pub(super) struct State {
    /// `session.extra`: the access token's custom claims now.
    access: Map<String, Value>,
    /// `session.id_token.id_token_claims.ext`: the ID token's custom claims now.
    id_ext: Map<String, Value>,
    /// The ID token's other claims (`iss`, `sub`, `acr`, ...), which the hook cannot change.
    id_fixed: Map<String, Value>,
}

/// Default `client.client_id` when Hydra names no client.
const DEFAULT_CLIENT: &str = "hydra";

pub(super) fn request(root: &At<'_>) -> Result<(Event, State), String> {
    let session = root.required("session", root.obj("session"))?;
    // The token hook sends `request`; the legacy refresh hook sends `requester` and a few
    // members at the top level.
    let request = match root.obj("request")? {
        Some(request) => Some(request),
        None => root.obj("requester")?,
    };
    let id_token = session.obj("id_token")?;
    let claims_at = match &id_token {
        Some(id_token) => id_token.obj("id_token_claims")?,
        None => None,
    };
    let mut id_fixed = Map::new();
    let mut id_ext = Map::new();
    if let Some(claims) = &claims_at {
        id_ext = claims.map("ext")?.cloned().unwrap_or_default();
        for (name, value) in claims.map {
            let empty = match value {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(items) => items.is_empty(),
                _ => false,
            };
            if name != "ext" && !empty {
                id_fixed.insert(name.clone(), value.clone());
            }
        }
    }
    let access = session.map("extra")?.cloned().unwrap_or_default();

    let req_str = |key: &str| match &request {
        Some(r) => r.string(key),
        None => Ok(None),
    };
    let req_strings = |key: &str| match &request {
        Some(r) => r.opt_strings(key),
        None => Ok(None),
    };
    let client_id = first_of([
        req_str("client_id")?,
        root.string("client_id")?,
        session.string("client_id")?,
        first_str(id_fixed.get("aud")),
    ])
    .unwrap_or_else(|| DEFAULT_CLIENT.to_owned());
    let subject = first_of([
        match &id_token {
            Some(t) => t.string("subject")?,
            None => None,
        },
        claims_at
            .as_ref()
            .map(|c| c.string("sub"))
            .transpose()?
            .flatten(),
        root.string("subject")?,
    ]);
    // client_credentials: Hydra's subject is the client itself.
    let user_id = subject.unwrap_or_else(|| client_id.clone());

    let mut client = Client {
        client_id,
        ..Client::default()
    };
    if let Some(r) = &request
        && let Some(c) = r.obj("client")?
    {
        client.name = c.string("client_name")?;
        client.metadata = c.map("metadata")?.cloned().unwrap_or_default();
    }

    let requested = match req_strings("requested_scopes")? {
        Some(scopes) => scopes,
        None => match req_strings("granted_scopes")? {
            Some(scopes) => scopes,
            None => root.strings("granted_scopes")?,
        },
    };
    let audience = match req_strings("granted_audience")? {
        Some(aud) => aud,
        None => root.strings("granted_audience")?,
    };
    let grant_types = req_strings("grant_types")?.unwrap_or_default();

    let mut user = User {
        user_id,
        ..User::default()
    };
    profile_from_claims(&mut user, &id_ext);

    let mut event = Event {
        user,
        client,
        resource_server: audience
            .into_iter()
            .find(|a| !a.is_empty())
            .map(|identifier| ResourceServer { identifier }),
        issuer_claims: IssuerClaims {
            id_token: {
                let mut all = id_fixed.clone();
                all.extend(id_ext.clone());
                all
            },
            access_token: access.clone(),
        },
        ..Event::default()
    };
    event.transaction.requested_scopes = requested;
    event.transaction.protocol = grant_types.first().map(|g| protocol_for_grant(g));
    event.transaction.nonce = first_str(id_fixed.get("nonce"));
    event.request.method = Some("POST".to_owned());
    if let Some(r) = &request
        && let Some(payload) = r.obj("payload")?
    {
        for (name, values) in payload.map {
            // The token request's form, `assertion` already taken out by Hydra.
            let value = match values {
                Value::Array(items) if items.len() == 1 => items[0].clone(),
                other => other.clone(),
            };
            event.request.query.insert(name.clone(), value);
        }
    }
    if let Some(Value::Array(amr)) = id_fixed.get("amr") {
        let auth_time = id_fixed.get("auth_time").and_then(Value::as_i64);
        event.authentication = Some(Authentication {
            risk_assessment: None,
            methods: amr
                .iter()
                .filter_map(Value::as_str)
                .map(|name| AuthenticationMethod {
                    name: name.to_owned(),
                    timestamp: None,
                    auth_time,
                })
                .collect(),
        });
    }
    Ok((
        event,
        State {
            access,
            id_ext,
            id_fixed,
        },
    ))
}

const WHY_SCOPES: &str = "Hydra's token hook cannot change scopes";
const WHY_AUTHENTICATION: &str =
    "Hydra's token hook cannot ask for an authentication challenge or enrollment";
const WHY_SESSION: &str = "Hydra's token hook cannot set the session's expiry";
const WHY_MFA: &str = "Hydra's token hook cannot ask for multi-factor authentication";
const WHY_METADATA: &str = "Hydra keeps no user metadata the token hook could update";

const UNCARRIED: Uncarried = Uncarried {
    scopes: Some(WHY_SCOPES),
    mfa: Some(WHY_MFA),
    authentication: Some(WHY_AUTHENTICATION),
    session: Some(WHY_SESSION),
    metadata: Some(WHY_METADATA),
};

pub(super) fn respond(state: &State, outcome: &Outcome) -> Result<Reply, Refusal> {
    UNCARRIED.check(outcome)?;
    for name in &outcome.id_token_removed {
        if state.id_fixed.contains_key(name) && !state.id_ext.contains_key(name) {
            return Err(Refusal::cannot_carry(
                &rule_removing(outcome, TokenKind::IdToken, name),
                &format!("removes ID-token claim `{name}`"),
                "Hydra's token hook can remove only the claims it sent under `ext`",
            ));
        }
    }
    let merge = |seed: &Map<String, Value>, set: &Map<String, Value>, removed: &[String]| {
        let mut map = seed.clone();
        for name in removed {
            map.remove(name);
        }
        map.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        map
    };
    let access = merge(
        &state.access,
        &outcome.access_token,
        &outcome.access_token_removed,
    );
    let id = merge(&state.id_ext, &outcome.id_token, &outcome.id_token_removed);
    if access == state.access && id == state.id_ext {
        return Ok(Reply {
            status: 204,
            body: None,
        });
    }
    Ok(Reply::json(
        200,
        json!({"session": {"access_token": access, "id_token": id}}),
    ))
}

pub(super) fn refuse(refusal: Refusal) -> Reply {
    match &refusal {
        // Hydra turns a 403 into `access_denied`; the body is for logs only.
        Refusal::Denied(_) => oauth_error(403, "access_denied", refusal.message()),
        Refusal::Failed {
            transient: false, ..
        } => oauth_error(500, "server_error", refusal.message()),
        Refusal::Failed {
            transient: true, ..
        }
        | Refusal::Timeout(_) => oauth_error(503, "temporarily_unavailable", refusal.message()),
    }
}

pub(super) fn error(status: u16, message: &str) -> Reply {
    let code = match status {
        400 | 413 => "invalid_request",
        401 => "unauthorized",
        503 => "temporarily_unavailable",
        _ => "server_error",
    };
    oauth_error(status, code, message)
}

fn oauth_error(status: u16, code: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": code, "error_description": description}),
    )
}
