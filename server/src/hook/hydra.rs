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

/// The ID-token claims fosite sends as RFC 3339 times (`time.Time`), not NumericDates.
const TIME_CLAIMS: [&str; 4] = ["exp", "iat", "rat", "auth_time"];

/// Token-request parameters that are credentials, kept from rules: Hydra passes the jwt-bearer
/// `assertion`; the others are kept back too, should a Hydra ever pass them.
const CREDENTIAL_PARAMETERS: [&str; 7] = [
    "assertion",
    "client_assertion",
    "client_secret",
    "code",
    "code_verifier",
    "password",
    "refresh_token",
];

/// What the response is seeded from.
#[cfg_attr(test, derive(Debug, PartialEq))]
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

/// What the event and the response are made from: the members of Hydra's request that claimsmith
/// reads, in Hydra's shape. Read straight from the body by serde when it can
/// ([`request_typed`]), else from the parsed JSON by the reader that names the field at fault
/// ([`request`]); either way the same [`event`] makes the login event from it.
#[derive(serde::Deserialize)]
struct Body {
    session: Option<Session>,
    /// The token hook's token request.
    request: Option<Requester>,
    /// The legacy refresh hook's token request (used when `request` is absent).
    requester: Option<Requester>,
    /// The legacy refresh hook's top-level members.
    client_id: Option<String>,
    subject: Option<String>,
    granted_scopes: Option<Vec<String>>,
    granted_audience: Option<Vec<String>>,
}

#[derive(Default, serde::Deserialize)]
struct Session {
    id_token: Option<IdToken>,
    extra: Option<Map<String, Value>>,
    client_id: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct IdToken {
    /// Every claim of the ID token, `ext` (its custom claims) among them.
    id_token_claims: Option<Map<String, Value>>,
    subject: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct Requester {
    client_id: Option<String>,
    client: Option<HydraClient>,
    requested_scopes: Option<Vec<String>>,
    granted_scopes: Option<Vec<String>>,
    granted_audience: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    payload: Option<Map<String, Value>>,
}

#[derive(Default, serde::Deserialize)]
struct HydraClient {
    client_name: Option<String>,
    metadata: Option<Map<String, Value>>,
}

/// Hydra's request read by serde straight into [`Body`], without building the whole JSON tree
/// first: the usual path. `None` for anything it is not sure of (a member of the wrong type, a
/// duplicate key, a missing session), which [`request`] then reads and names.
pub(super) fn request_typed(body: &[u8]) -> Option<(Event, State)> {
    let body: Body = serde_json::from_slice(body).ok()?;
    // What serde cannot see: the general reader's checks inside the ID token's claims.
    let claims = body
        .session
        .as_ref()?
        .id_token
        .as_ref()
        .and_then(|t| t.id_token_claims.as_ref());
    if let Some(claims) = claims {
        let ext_ok = matches!(
            claims.get("ext"),
            None | Some(Value::Null | Value::Object(_))
        );
        let sub_ok = matches!(
            claims.get("sub"),
            None | Some(Value::Null | Value::String(_))
        );
        if !ext_ok || !sub_ok {
            return None;
        }
    }
    Some(event(body))
}

/// Hydra's request read from its parsed JSON, naming the member at fault.
pub(super) fn request(root: &At<'_>) -> Result<(Event, State), String> {
    read(root).map(event)
}

/// [`Body`] from the parsed JSON: each member checked as Hydra sends it, the first wrong one
/// named.
fn read(root: &At<'_>) -> Result<Body, String> {
    let session = root.required("session", root.obj("session"))?;
    // The token hook sends `request`; the legacy refresh hook sends `requester` and a few
    // members at the top level.
    let (key, request) = match root.obj("request")? {
        Some(request) => ("request", Some(request)),
        None => ("requester", root.obj("requester")?),
    };
    let id_token = match session.obj("id_token")? {
        Some(id_token) => {
            let id_token_claims = match id_token.obj("id_token_claims")? {
                Some(claims) => {
                    claims.map("ext")?;
                    claims.str("sub")?;
                    Some(claims.map.clone())
                }
                None => None,
            };
            Some(IdToken {
                id_token_claims,
                subject: id_token.string("subject")?,
            })
        }
        None => None,
    };
    let requester = match &request {
        Some(r) => Some(Requester {
            client_id: r.string("client_id")?,
            client: match r.obj("client")? {
                Some(c) => Some(HydraClient {
                    client_name: c.string("client_name")?,
                    metadata: c.map("metadata")?.cloned(),
                }),
                None => None,
            },
            requested_scopes: r.opt_strings("requested_scopes")?,
            granted_scopes: r.opt_strings("granted_scopes")?,
            granted_audience: r.opt_strings("granted_audience")?,
            grant_types: r.opt_strings("grant_types")?,
            payload: r.map("payload")?.cloned(),
        }),
        None => None,
    };
    let (request, requester) = match key {
        "request" => (requester, None),
        _ => (None, requester),
    };
    Ok(Body {
        session: Some(Session {
            id_token,
            extra: session.map("extra")?.cloned(),
            client_id: session.string("client_id")?,
        }),
        request,
        requester,
        client_id: root.string("client_id")?,
        subject: root.string("subject")?,
        granted_scopes: root.opt_strings("granted_scopes")?,
        granted_audience: root.opt_strings("granted_audience")?,
    })
}

/// The login event, and what the response is seeded from, made from Hydra's request.
fn event(body: Body) -> (Event, State) {
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let session = body.session.unwrap_or_default();
    let request = body.request.or(body.requester);
    let (subject, claims) = match session.id_token {
        Some(t) => (t.subject, t.id_token_claims),
        None => (None, None),
    };
    let mut id_fixed = Map::new();
    let mut id_ext = Map::new();
    if let Some(mut claims) = claims {
        if let Some(Value::Object(ext)) = claims.remove("ext") {
            id_ext = ext;
        }
        for (name, mut value) in claims {
            // fosite's `IDTokenClaims` has these as Go `time.Time`: RFC 3339 text, and
            // `0001-01-01T00:00:00Z` when unset. Rules see them as JWT NumericDates.
            if TIME_CLAIMS.contains(&name.as_str())
                && let Value::String(text) = &value
            {
                value = claimsmith_sdk::time::parse_rfc3339(text)
                    .map(|ms| ms.div_euclid(1000))
                    .filter(|seconds| *seconds > 0)
                    .map_or(Value::Null, Value::from);
            }
            let empty = match &value {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(items) => items.is_empty(),
                _ => false,
            };
            if !empty {
                id_fixed.insert(name, value);
            }
        }
    }
    let access = session.extra.unwrap_or_default();
    let mut request = request.unwrap_or_default();

    let client_id = first_of([
        request.client_id.take(),
        body.client_id,
        session.client_id,
        first_str(id_fixed.get("aud")),
    ])
    .unwrap_or_else(|| DEFAULT_CLIENT.to_owned());
    let subject = first_of([subject, first_str(id_fixed.get("sub")), body.subject]);
    // client_credentials: Hydra's subject is the client itself.
    let user_id = subject.unwrap_or_else(|| client_id.clone());

    let mut client = Client {
        client_id,
        ..Client::default()
    };
    if let Some(c) = request.client {
        client.name = nonempty(c.client_name);
        client.metadata = c.metadata.unwrap_or_default();
    }

    let requested = match request.requested_scopes {
        Some(scopes) => scopes,
        None => match request.granted_scopes {
            Some(scopes) => scopes,
            None => body.granted_scopes.unwrap_or_default(),
        },
    };
    let audience = match request.granted_audience {
        Some(aud) => aud,
        None => body.granted_audience.unwrap_or_default(),
    };
    let grant_types = request.grant_types.unwrap_or_default();

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
    for (name, values) in request.payload.unwrap_or_default() {
        // The token request's form as Hydra keeps it (`Sanitize`: `grant_type` and the
        // jwt-bearer `assertion`). The assertion is a bearer credential: rules never see it.
        if CREDENTIAL_PARAMETERS.contains(&name.as_str()) {
            continue;
        }
        let value = match values {
            Value::Array(mut items) if items.len() == 1 => items.remove(0),
            other => other,
        };
        event.request.query.insert(name, value);
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
    (
        event,
        State {
            access,
            id_ext,
            id_fixed,
        },
    )
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
