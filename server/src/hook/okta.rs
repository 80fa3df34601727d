//! Okta's token inline hook (`com.okta.oauth2.tokens.transform`, custom authorization servers).
//!
//! Okta sends a CloudEvents envelope whose `data` holds the login context and the claims of the
//! ID token (`data.identity`) and access token (`data.access`) it is about to mint. The response
//! is JSON Patch commands per token: `com.okta.identity.patch` / `com.okta.access.patch` with
//! `add` for a claim the token does not have, `replace` for one it has, `remove`. Claim names are
//! JSON Pointer segments (RFC 6901: `~` → `~0`, `/` → `~1`), so a namespaced claim
//! `https://example.com/roles` is the path `/claims/https:~1~1example.com~1roles`.
//!
//! Okta fails open: on any status other than 200, on a timeout, or on a patch it refuses, it
//! issues the original token. So every refusal here, including the server's own 400/401/503,
//! is a 200 with `{"error":{"errorSummary":..}}`, the one answer that stops the token. Scope
//! changes, MFA and metadata updates cannot be carried and fail closed likewise.

use claimsmith_engine::Outcome;
use claimsmith_sdk::{
    Authentication, AuthenticationMethod, Client, Connection, Event, IssuerClaims, ResourceServer,
    Session, User,
};
use serde_json::{Map, Value, json};

use super::{
    At, Refusal, Reply, Uncarried, first_of, first_str, profile_from_claims, protocol_for_grant,
    split_scopes,
};

/// The tokens' claims as Okta sent them; `None` for a token it does not mint in this request.
pub(super) struct State {
    identity: Option<Map<String, Value>>,
    access: Option<Map<String, Value>>,
}

/// Default `client.client_id` when Okta names no client.
const DEFAULT_CLIENT: &str = "okta";

pub(super) fn request(root: &At<'_>) -> Result<(Event, State), String> {
    if let Some(kind) = root.str("eventType")?
        && kind != "com.okta.oauth2.tokens.transform"
    {
        return Err(format!(
            "request field `eventType` must be `com.okta.oauth2.tokens.transform` (a token inline hook), found `{kind}`"
        ));
    }
    let data = root.required("data", root.obj("data"))?;
    let context = data.obj("context")?;
    let identity_at = data.obj("identity")?;
    let access_at = data.obj("access")?;
    let identity = match &identity_at {
        Some(at) => Some(at.map("claims")?.cloned().unwrap_or_default()),
        None => None,
    };
    let access = match &access_at {
        Some(at) => Some(at.map("claims")?.cloned().unwrap_or_default()),
        None => None,
    };
    let id_claims = identity.clone().unwrap_or_default();
    let at_claims = access.clone().unwrap_or_default();
    let claim = |claims: &Map<String, Value>, key: &str| first_str(claims.get(key));

    let (mut user_at, mut protocol, mut req, mut session) = (None, None, None, None);
    if let Some(context) = &context {
        user_at = context.obj("user")?;
        protocol = context.obj("protocol")?;
        req = context.obj("request")?;
        session = context.obj("session")?;
    }
    let (mut proto_req, mut proto_client) = (None, None);
    if let Some(protocol) = &protocol {
        proto_req = protocol.obj("request")?;
        proto_client = protocol.obj("client")?;
    }
    let profile = match &user_at {
        Some(u) => u.obj("profile")?,
        None => None,
    };

    let client_id = first_of([
        proto_client
            .as_ref()
            .map(|c| c.string("id"))
            .transpose()?
            .flatten(),
        proto_req
            .as_ref()
            .map(|r| r.string("client_id"))
            .transpose()?
            .flatten(),
        claim(&at_claims, "cid"),
        claim(&id_claims, "aud"),
    ])
    .unwrap_or_else(|| DEFAULT_CLIENT.to_owned());
    let user_id = first_of([
        user_at
            .as_ref()
            .map(|u| u.string("id"))
            .transpose()?
            .flatten(),
        claim(&id_claims, "sub"),
        claim(&at_claims, "uid"),
        session
            .as_ref()
            .map(|s| s.string("userId"))
            .transpose()?
            .flatten(),
        // client_credentials: the access token's subject is the client.
        claim(&at_claims, "sub"),
    ])
    .unwrap_or_else(|| client_id.clone());

    let mut user = User {
        user_id,
        ..User::default()
    };
    profile_from_claims(&mut user, &id_claims);
    if let Some(profile) = &profile {
        super::fill(&mut user.given_name, profile.string("firstName")?);
        super::fill(&mut user.family_name, profile.string("lastName")?);
        super::fill(&mut user.email, profile.string("email")?);
        super::fill(&mut user.nickname, profile.string("nickName")?);
        if user.name.is_none()
            && let (Some(first), Some(last)) = (&user.given_name, &user.family_name)
        {
            user.name = Some(format!("{first} {last}"));
        }
    }
    if user.groups.is_empty() {
        profile_from_claims(&mut user, &at_claims);
    }

    let mut client = Client {
        client_id,
        ..Client::default()
    };
    if let Some(c) = &proto_client {
        client.name = c.string("name")?;
        if let Some(kind) = c.string("type")? {
            client.metadata.insert("type".into(), Value::String(kind));
        }
    }

    let scopes = match &access_at {
        Some(at) => at.map("scopes")?.map(|s| s.keys().cloned().collect()),
        None => None,
    };
    let requested = match scopes {
        Some(scopes) => scopes,
        None => match &proto_req {
            Some(r) => r.str("scope")?.map(split_scopes).unwrap_or_default(),
            None => Vec::new(),
        },
    };

    let mut event = Event {
        user,
        client,
        resource_server: claim(&at_claims, "aud").map(|identifier| ResourceServer { identifier }),
        issuer_claims: IssuerClaims {
            id_token: id_claims.clone(),
            access_token: at_claims.clone(),
        },
        ..Event::default()
    };
    event.transaction.requested_scopes = requested;
    event.transaction.nonce = claim(&id_claims, "nonce");
    if let Some(r) = &proto_req {
        event.transaction.protocol = match r.value("grant_type") {
            Some(grant) => first_str(Some(grant)).map(|g| protocol_for_grant(&g)),
            None => None,
        };
        event.transaction.redirect_uri = r.string("redirect_uri")?;
        if let Some(acr) = r.str("acr_values")? {
            event.transaction.acr_values = split_scopes(acr);
        }
    }
    if let Some(profile) = &profile {
        event.transaction.locale = profile.string("locale")?;
    }
    if let Some(r) = &req {
        event.request.ip = r.string("ipAddress")?;
        event.request.method = r.string("method")?;
        event.request.geoip = r.value("geographicalContext").cloned();
        if let Some(url) = r.obj("url")?
            && let Some(url) = url.str("value")?
        {
            let (host, query) = split_url(url);
            event.request.hostname = host;
            event.request.query = query;
        }
    }
    let amr: Vec<String> = match id_claims.get("amr") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => match &session {
            Some(s) => s
                .strings("amr")?
                .into_iter()
                .map(|m| m.to_lowercase())
                .collect(),
            None => Vec::new(),
        },
    };
    if !amr.is_empty() {
        let auth_time = id_claims.get("auth_time").and_then(Value::as_i64);
        event.authentication = Some(Authentication {
            risk_assessment: None,
            methods: amr
                .into_iter()
                .map(|name| AuthenticationMethod {
                    name,
                    timestamp: None,
                    auth_time,
                })
                .collect(),
        });
    }
    if let Some(s) = &session
        && let Some(idp) = s.obj("idp")?
    {
        let kind = idp.string("type")?.unwrap_or_default();
        event.connection = Connection {
            id: idp.string("id")?.unwrap_or_default(),
            name: kind.clone(),
            strategy: kind.to_lowercase(),
            metadata: Map::new(),
        };
    }
    event.login_time = super::login_time_text(root, "eventTime")?;
    if let Some(s) = &session {
        let verified = |key: &str| s.string(key);
        let (password, factor) = (
            verified("lastPasswordVerification")?,
            verified("lastFactorVerification")?,
        );
        event.session = Some(Session {
            id: s.string("id")?.unwrap_or_default(),
            created_at: s.string("createdAt")?,
            expires_at: s.string("expiresAt")?,
            // The later of the two verifications: RFC 3339 in UTC sorts as text.
            authenticated_at: match (password, factor) {
                (Some(p), Some(f)) => Some(p.max(f)),
                (p, f) => p.or(f),
            },
            ..Session::default()
        });
    }
    Ok((event, State { identity, access }))
}

/// The host and the decoded query parameters of a URL.
fn split_url(url: &str) -> (Option<String>, Map<String, Value>) {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = after_scheme
        .split(['/', '?', '#'])
        .next()
        .filter(|h| !h.is_empty())
        .map(str::to_owned);
    let mut query = Map::new();
    if let Some((_, q)) = url.split_once('?') {
        let q = q.split('#').next().unwrap_or_default();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            query.insert(percent_decode(name), Value::String(percent_decode(value)));
        }
    }
    (host, query)
}

fn percent_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const WHY_SCOPES: &str = "Okta's token inline hook cannot change scopes";
const WHY_AUTHENTICATION: &str =
    "Okta's token inline hook cannot ask for an authentication challenge or enrollment";
const WHY_SESSION: &str = "Okta's token inline hook cannot set the session's expiry (its `/token/lifetime/expiration` bounds the access token, not the session)";
const WHY_MFA: &str = "Okta's token inline hook cannot ask for multi-factor authentication";
const WHY_METADATA: &str = "Okta's token inline hook cannot update the user's profile";

const UNCARRIED: Uncarried = Uncarried {
    scopes: Some(WHY_SCOPES),
    mfa: Some(WHY_MFA),
    authentication: Some(WHY_AUTHENTICATION),
    session: Some(WHY_SESSION),
    metadata: Some(WHY_METADATA),
};

pub(super) fn respond(state: &State, outcome: &Outcome) -> Result<Reply, Refusal> {
    UNCARRIED.check(outcome)?;
    let mut commands = Vec::new();
    // A token Okta does not mint in this request takes no command (Okta refuses one for a
    // token that was not requested): there is no such token to put the claims in.
    for (kind, claims, set, removed) in [
        (
            "com.okta.identity.patch",
            &state.identity,
            &outcome.id_token,
            &outcome.id_token_removed,
        ),
        (
            "com.okta.access.patch",
            &state.access,
            &outcome.access_token,
            &outcome.access_token_removed,
        ),
    ] {
        let Some(claims) = claims else { continue };
        let mut ops = Vec::new();
        for (name, value) in set {
            match claims.get(name) {
                Some(current) if current == value => {}
                Some(_) => ops.push(json!({"op": "replace", "path": path(name), "value": value})),
                None => ops.push(json!({"op": "add", "path": path(name), "value": value})),
            }
        }
        for name in removed {
            if claims.contains_key(name) {
                ops.push(json!({"op": "remove", "path": path(name)}));
            }
        }
        if !ops.is_empty() {
            commands.push(json!({"type": kind, "value": ops}));
        }
    }
    Ok(Reply::json(200, json!({ "commands": commands })))
}

/// The JSON Pointer to a claim.
fn path(name: &str) -> String {
    format!("/claims/{}", name.replace('~', "~0").replace('/', "~1"))
}

pub(super) fn refuse(refusal: Refusal) -> Reply {
    error(refusal.message())
}

/// Always a 200: Okta issues the token unmodified on any other status.
pub(super) fn error(message: &str) -> Reply {
    Reply::json(200, json!({"error": {"errorSummary": message}}))
}
