//! AWS Cognito's pre token generation trigger, V2_0 and V3_0 events.
//!
//! Cognito invokes a Lambda, not a URL: a thin Lambda shim (docs/hooks.md) posts the event to
//! `claimsmith serve` and returns the answer. The answer is the event echoed back with
//! `response.claimsAndScopeOverrideDetails` filled: per token `claimsToAddOrOverride` and
//! `claimsToSuppress`, and for the access token `scopesToAdd` / `scopesToSuppress`. Cognito is the
//! one issuer here that can change scopes. MFA requests and metadata (user attribute) updates
//! cannot be carried and fail closed. A refusal is a non-2xx status with a Lambda-style
//! `{"errorType":..,"errorMessage":..}` body: the shim throws `errorMessage`, and Cognito fails
//! the sign-in with it.

use claimsmith_engine::Outcome;
use claimsmith_sdk::{Client, Connection, Event, IssuerClaims, User};
use serde_json::{Map, Value, json};

use super::{At, Refusal, Reply, Uncarried, first_of, profile_from_claims};

/// The event to echo, and whether it mints an ID token at all.
pub(super) struct State {
    event: Value,
    client_credentials: bool,
}

/// Default `client.client_id` when the event names no app client.
const DEFAULT_CLIENT: &str = "cognito";

pub(super) fn request(root: &At<'_>) -> Result<(Event, State), String> {
    let version = match root.value("version") {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("request field `version` must be a string".to_owned()),
        None => return Err("request field `version` is required".to_owned()),
    };
    if version != "2" && version != "3" {
        return Err(format!(
            "request field `version` must be \"2\" or \"3\" (configure the trigger's event version as V2_0 or V3_0), found \"{version}\""
        ));
    }
    let trigger = root.string("triggerSource")?.unwrap_or_default();
    let client_credentials = trigger == "TokenGeneration_ClientCredentials";
    let request = root.required("request", root.obj("request"))?;
    let attributes = request.obj("userAttributes")?;
    let mut attribute_map = Map::new();
    if let Some(attributes) = &attributes {
        for (name, value) in attributes.map {
            match value {
                Value::String(_) => {}
                other => {
                    return Err(attributes.wrong(name, "a string", other));
                }
            }
            attribute_map.insert(name.clone(), value.clone());
        }
    }
    let client_id = match root.obj("callerContext")? {
        Some(caller) => caller.string("clientId")?,
        None => None,
    }
    .unwrap_or_else(|| DEFAULT_CLIENT.to_owned());
    let user_id = first_of([
        attribute_map
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned),
        root.string("userName")?,
    ])
    .unwrap_or_else(|| client_id.clone());

    let mut user = User {
        user_id,
        ..User::default()
    };
    profile_from_claims(&mut user, &attribute_map);
    for (name, value) in &attribute_map {
        if let Some(custom) = name.strip_prefix("custom:") {
            user.app_metadata.insert(custom.to_owned(), value.clone());
        }
    }
    if let Some(groups) = request.obj("groupConfiguration")? {
        user.groups = groups.strings("groupsToOverride")?;
    }

    let pool = root.string("userPoolId")?.unwrap_or_default();
    let mut event = Event {
        user,
        client: Client {
            client_id,
            metadata: request.map("clientMetadata")?.cloned().unwrap_or_default(),
            ..Client::default()
        },
        connection: Connection {
            id: pool.clone(),
            name: pool,
            strategy: "cognito".to_owned(),
            metadata: Map::new(),
        },
        issuer_claims: IssuerClaims {
            id_token: attribute_map,
            access_token: Map::new(),
        },
        ..Event::default()
    };
    event.transaction.requested_scopes = request.strings("scopes")?;
    event.transaction.protocol = match trigger.as_str() {
        "" => None,
        "TokenGeneration_RefreshTokens" => Some("oauth2-refresh-token".to_owned()),
        "TokenGeneration_ClientCredentials" => Some("oauth2-client-credentials".to_owned()),
        other => Some(other.to_owned()),
    };
    let echo = Value::Object(root.map.clone());
    Ok((
        event,
        State {
            event: echo,
            client_credentials,
        },
    ))
}

const WHY_AUTHENTICATION: &str = "Cognito's pre token generation trigger cannot ask for an authentication challenge or enrollment";
const WHY_SESSION: &str = "Cognito's pre token generation trigger cannot set the session's expiry";
const WHY_MFA: &str =
    "Cognito's pre token generation trigger cannot ask for multi-factor authentication";
const WHY_METADATA: &str =
    "Cognito's pre token generation trigger cannot update the user's attributes";

const UNCARRIED: Uncarried = Uncarried {
    scopes: None,
    mfa: Some(WHY_MFA),
    authentication: Some(WHY_AUTHENTICATION),
    session: Some(WHY_SESSION),
    metadata: Some(WHY_METADATA),
};

pub(super) fn respond(state: &State, outcome: &Outcome) -> Result<Reply, Refusal> {
    UNCARRIED.check(outcome)?;
    let mut details = Map::new();
    // A client-credentials event mints no ID token: there is none to put its claims in.
    if !state.client_credentials {
        let id = generation(&outcome.id_token, &outcome.id_token_removed);
        if !id.is_empty() {
            details.insert("idTokenGeneration".into(), Value::Object(id));
        }
    }
    let mut access = generation(&outcome.access_token, &outcome.access_token_removed);
    if !outcome.scopes_added.is_empty() {
        access.insert("scopesToAdd".into(), json!(outcome.scopes_added));
    }
    if !outcome.scopes_removed.is_empty() {
        access.insert("scopesToSuppress".into(), json!(outcome.scopes_removed));
    }
    if !access.is_empty() {
        details.insert("accessTokenGeneration".into(), Value::Object(access));
    }
    let mut event = state.event.clone();
    if !details.is_empty() {
        event["response"] = json!({ "claimsAndScopeOverrideDetails": details });
    }
    Ok(Reply::json(200, event))
}

/// One token's `*TokenGeneration` object, without empty members.
fn generation(set: &Map<String, Value>, removed: &[String]) -> Map<String, Value> {
    let mut generation = Map::new();
    if !set.is_empty() {
        generation.insert("claimsToAddOrOverride".into(), Value::Object(set.clone()));
    }
    if !removed.is_empty() {
        generation.insert("claimsToSuppress".into(), json!(removed));
    }
    generation
}

pub(super) fn refuse(refusal: Refusal) -> Reply {
    let (status, kind) = match &refusal {
        Refusal::Denied(_) => (403, "AccessDenied"),
        Refusal::Failed {
            transient: false, ..
        } => (500, "RuleFailed"),
        Refusal::Failed {
            transient: true, ..
        } => (503, "Unavailable"),
        Refusal::Timeout(_) => (504, "Timeout"),
    };
    lambda_error(status, kind, refusal.message())
}

pub(super) fn error(status: u16, message: &str) -> Reply {
    let kind = match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        413 => "PayloadTooLarge",
        503 => "Unavailable",
        _ => "InternalError",
    };
    lambda_error(status, kind, message)
}

fn lambda_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(status, json!({"errorType": kind, "errorMessage": message}))
}
