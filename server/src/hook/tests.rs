//! Each format with its issuer's own request: the event it makes (checked by a real pipeline),
//! and the exact response for add, override, remove, no change, deny, failure, timeout and each
//! command the format cannot carry.

use std::sync::OnceLock;
use std::time::Duration;

use claimsmith_engine::{
    Command, Denied, Outcome, Pipeline, RuleFailed, RuleFailure, RuleStatus, RuleTrace, TokenKind,
};
use serde_json::{Map, Value, json};

use super::*;

fn fixture(path: &str) -> Vec<u8> {
    let file = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        Pipeline::builder()
            .build()
            .expect("an empty pipeline builds")
    })
}

/// The request, its event checked by the engine as the server will check it.
fn read(format: IssuerFormat, path: &str) -> HookRequest {
    read_bytes(format, &fixture(path))
}

fn read_bytes(format: IssuerFormat, body: &[u8]) -> HookRequest {
    let request = match format.request(body) {
        Ok(request) => request,
        Err(reply) => panic!("{} refused its request: {reply:?}", format.name()),
    };
    if let Err(e) = pipeline().event_from_value(request.event_json()) {
        panic!("{} made an event the engine refuses: {e}", format.name());
    }
    request
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn trace(rule: &str, commands: Vec<Command>) -> RuleTrace {
    RuleTrace {
        rule: rule.into(),
        status: RuleStatus::Applied,
        commands,
        fuel_used: 0,
        peak_memory_bytes: 0,
        duration: Duration::ZERO,
    }
}

fn set(token: TokenKind, name: &str, value: Value) -> Command {
    Command::SetClaim {
        token,
        name: name.into(),
        value,
    }
}

/// An outcome whose claims come from rule `claims`.
fn claims(id: Value, access: Value) -> Outcome {
    let id = map(id);
    let access = map(access);
    let mut commands = Vec::new();
    for (k, v) in &id {
        commands.push(set(TokenKind::IdToken, k, v.clone()));
    }
    for (k, v) in &access {
        commands.push(set(TokenKind::AccessToken, k, v.clone()));
    }
    Outcome {
        id_token: id,
        access_token: access,
        rules: vec![trace("claims", commands)],
        ..Outcome::default()
    }
}

fn removing(id: &[&str], access: &[&str]) -> Outcome {
    let mut commands = Vec::new();
    for name in id {
        commands.push(Command::RemoveClaim {
            token: TokenKind::IdToken,
            name: (*name).into(),
        });
    }
    for name in access {
        commands.push(Command::RemoveClaim {
            token: TokenKind::AccessToken,
            name: (*name).into(),
        });
    }
    Outcome {
        id_token_removed: id.iter().map(|s| s.to_string()).collect(),
        access_token_removed: access.iter().map(|s| s.to_string()).collect(),
        rules: vec![trace("trim", commands)],
        ..Outcome::default()
    }
}

fn scope_added() -> Outcome {
    Outcome {
        scopes_added: vec!["admin".into()],
        rules: vec![trace(
            "scopes",
            vec![Command::AddScope {
                scope: "admin".into(),
            }],
        )],
        ..Outcome::default()
    }
}

fn scope_removed() -> Outcome {
    Outcome {
        scopes_removed: vec!["openid".into()],
        rules: vec![trace(
            "scopes",
            vec![Command::RemoveScope {
                scope: "openid".into(),
            }],
        )],
        ..Outcome::default()
    }
}

fn mfa() -> Outcome {
    Outcome {
        mfa: vec!["any".into()],
        rules: vec![trace(
            "step-up",
            vec![Command::EnableMfa {
                provider: "any".into(),
                allow_remember_browser: false,
            }],
        )],
        ..Outcome::default()
    }
}

fn metadata(app: bool, key: &str, value: Value) -> Outcome {
    let command = if app {
        Command::SetAppMetadata {
            key: key.into(),
            value: value.clone(),
        }
    } else {
        Command::SetUserMetadata {
            key: key.into(),
            value: value.clone(),
        }
    };
    let mut outcome = Outcome {
        rules: vec![trace("remember", vec![command])],
        ..Outcome::default()
    };
    let updates = Map::from_iter([(key.to_owned(), value)]);
    if app {
        outcome.app_metadata = updates;
    } else {
        outcome.user_metadata = updates;
    }
    outcome
}

fn denied() -> Denied {
    Denied {
        rule: "gate".into(),
        reason: "not on the list".into(),
        rules: Vec::new(),
    }
}

const DENIED: &str = "rule `gate` denied the login: not on the list";

fn failed() -> RuleFailed {
    RuleFailed {
        rule: "loop".into(),
        cause: RuleFailure::FuelExhausted { limit: 1000 },
        rules: Vec::new(),
    }
}

const FAILED: &str =
    "rule `loop` exceeded its instruction budget (fuel limit 1000); the login fails closed";

fn busy() -> RuleFailed {
    RuleFailed {
        rule: "loop".into(),
        cause: RuleFailure::Capacity("all 16 slots busy".into()),
        rules: Vec::new(),
    }
}

fn respond(format: IssuerFormat, request: &HookRequest, outcome: &Outcome) -> Reply {
    format.respond(request, Verdict::Outcome(outcome))
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body: Some(body),
    }
}

const ROLES: &str = "https://e.test/roles";
const TENANT: &str = "https://e.test/tenant";

// ---- Shared pieces --------------------------------------------------------------------------

#[test]
fn names_and_config_spelling() {
    for (format, name) in [
        (IssuerFormat::Hydra, "hydra"),
        (IssuerFormat::Okta, "okta"),
        (IssuerFormat::Supabase, "supabase"),
        (IssuerFormat::Zitadel, "zitadel"),
        (IssuerFormat::Cognito, "cognito"),
    ] {
        assert_eq!(format.name(), name);
        let parsed: IssuerFormat = serde_json::from_value(json!(name)).unwrap();
        assert_eq!(parsed, format);
    }
}

#[test]
fn every_format_names_the_bad_part_of_a_body() {
    for format in [
        IssuerFormat::Hydra,
        IssuerFormat::Okta,
        IssuerFormat::Supabase,
        IssuerFormat::Zitadel,
        IssuerFormat::Cognito,
    ] {
        let Err(reply) = format.request(b"{not json") else {
            panic!("{} took bad JSON", format.name());
        };
        assert!(
            reply.body.unwrap().to_string().contains("not JSON"),
            "{}",
            format.name()
        );
        let Err(reply) = format.request(b"[1]") else {
            panic!("{} took an array", format.name());
        };
        assert!(
            reply.body.unwrap().to_string().contains("JSON object"),
            "{}",
            format.name()
        );
    }
}

#[test]
fn a_request_of_one_format_is_not_answered_by_another() {
    let request = read(IssuerFormat::Supabase, "supabase/custom-access-token.json");
    let reply = respond(IssuerFormat::Hydra, &request, &Outcome::default());
    assert_eq!(reply.status, 500);
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_from_unix(1_726_153_600), "2024-09-12T15:06:40Z");
    assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
}

// ---- Hydra ----------------------------------------------------------------------------------

const HYDRA: IssuerFormat = IssuerFormat::Hydra;

fn hydra() -> HookRequest {
    read(HYDRA, "hydra/token-hook.json")
}

#[test]
fn hydra_event() {
    let event = hydra().event_json();
    assert_eq!(event["user"]["user_id"], "foo");
    assert_eq!(event["client"]["client_id"], "app-client");
    assert_eq!(
        event["transaction"]["requested_scopes"],
        json!(["offline", "openid", "hydra.*"])
    );
    assert_eq!(event["transaction"]["protocol"], "oauth2-refresh-token");
    assert_eq!(event["transaction"]["nonce"], Value::Null);
    assert_eq!(event["resource_server"], Value::Null);
    assert_eq!(
        event["request"]["query"],
        json!({"grant_type": "refresh_token"})
    );
    assert_eq!(
        event["issuer_claims"]["id_token"],
        json!({"iss": "http://localhost:4444/", "sub": "foo", "aud": ["app-client"], "acr": "1", "hooked": "legacy"})
    );
    assert_eq!(
        event["issuer_claims"]["access_token"],
        json!({"hooked": "legacy"})
    );
}

#[test]
fn hydra_event_defaults_audience_and_legacy_refresh_hook() {
    // client_credentials: no subject, so the client is the user; an audience is the API.
    let body = json!({"session": {"extra": {}, "id_token": {"id_token_claims": {"ext": {}}}},
        "request": {"client_id": "m2m", "granted_scopes": ["read"], "granted_audience": ["https://api.test"],
                    "grant_types": ["client_credentials"], "payload": {}}});
    let event = read_bytes(HYDRA, body.to_string().as_bytes()).event_json();
    assert_eq!(event["user"]["user_id"], "m2m");
    assert_eq!(event["resource_server"]["identifier"], "https://api.test");
    assert_eq!(event["transaction"]["requested_scopes"], json!(["read"]));
    assert_eq!(
        event["transaction"]["protocol"],
        "oauth2-client-credentials"
    );
    let legacy = json!({"subject": "foo", "session": {"extra": {"a": 1}},
        "requester": {"client_id": "app", "granted_scopes": ["openid"], "granted_audience": [], "grant_types": ["refresh_token"]},
        "client_id": "app", "granted_scopes": ["openid"], "granted_audience": []});
    let request = read_bytes(HYDRA, legacy.to_string().as_bytes());
    assert_eq!(request.event_json()["user"]["user_id"], "foo");
    assert_eq!(request.event_json()["client"]["client_id"], "app");
    let outcome = claims(json!({}), json!({ROLES: ["admin"]}));
    assert_eq!(
        respond(HYDRA, &request, &outcome),
        reply(
            200,
            json!({"session": {"access_token": {"a": 1, ROLES: ["admin"]}, "id_token": {}}})
        )
    );
    // Nothing at all but a session: the documented defaults.
    let bare = read_bytes(HYDRA, br#"{"session": {}}"#).event_json();
    assert_eq!(bare["client"]["client_id"], "hydra");
    assert_eq!(bare["user"]["user_id"], "hydra");
}

#[test]
fn hydra_time_claims_are_seconds_and_the_assertion_never_reaches_rules() {
    // fosite sends the ID token's times as Go `time.Time` (RFC 3339; the zero time when unset),
    // and the jwt-bearer `assertion` in the request's form.
    let body = json!({"session": {"id_token": {"subject": "foo", "id_token_claims": {
            "sub": "foo", "amr": ["pwd"], "auth_time": "2024-05-14T12:30:21Z",
            "iat": "2024-05-14T12:30:22+02:00", "exp": "0001-01-01T00:00:00Z", "ext": {}}}},
        "request": {"client_id": "app", "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
            "payload": {"grant_type": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
                        "assertion": ["eyJhbGciOiJSUzI1NiJ9.e30.c2ln"]}}});
    let event = read_bytes(HYDRA, body.to_string().as_bytes()).event_json();
    assert_eq!(
        event["authentication"]["methods"],
        json!([{"name": "pwd", "timestamp": null, "auth_time": 1_715_689_821}])
    );
    assert_eq!(
        event["issuer_claims"]["id_token"]["auth_time"],
        1_715_689_821
    );
    assert_eq!(event["issuer_claims"]["id_token"]["iat"], 1_715_682_622);
    assert!(
        event["issuer_claims"]["id_token"].get("exp").is_none(),
        "{event}"
    );
    assert_eq!(
        event["request"]["query"],
        json!({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"})
    );
    assert!(
        !event.to_string().contains("eyJhbGciOiJSUzI1NiJ9"),
        "{event}"
    );
}

#[test]
fn hydra_bad_requests_name_the_field() {
    assert_eq!(
        HYDRA.request(br#"{"request": {}}"#).err(),
        Some(reply(
            400,
            json!({"error": "invalid_request", "error_description": "request field `session` is required"})
        ))
    );
    let Err(reply) = HYDRA.request(br#"{"session": {"extra": [1]}}"#) else {
        panic!()
    };
    assert_eq!(
        reply.body.unwrap()["error_description"],
        "request field `session.extra` must be an object, found an array"
    );
    let Err(reply) = HYDRA.request(br#"{"session": {}, "request": {"granted_scopes": [1]}}"#)
    else {
        panic!()
    };
    assert_eq!(
        reply.body.unwrap()["error_description"],
        "request field `request.granted_scopes[0]` must be a string, found a number"
    );
}

#[test]
fn hydra_add_override_remove() {
    let request = hydra();
    let add = claims(json!({TENANT: "t1"}), json!({ROLES: ["admin"]}));
    assert_eq!(
        respond(HYDRA, &request, &add),
        reply(
            200,
            json!({"session": {
                "access_token": {"hooked": "legacy", ROLES: ["admin"]},
                "id_token": {"hooked": "legacy", TENANT: "t1"}}})
        )
    );
    let over = claims(json!({}), json!({"hooked": "new"}));
    assert_eq!(
        respond(HYDRA, &request, &over),
        reply(
            200,
            json!({"session": {"access_token": {"hooked": "new"}, "id_token": {"hooked": "legacy"}}})
        )
    );
    let remove = removing(&["hooked"], &[]);
    assert_eq!(
        respond(HYDRA, &request, &remove),
        reply(
            200,
            json!({"session": {"access_token": {"hooked": "legacy"}, "id_token": {}}})
        )
    );
}

#[test]
fn hydra_no_change_is_204() {
    let request = hydra();
    let none = Reply {
        status: 204,
        body: None,
    };
    assert_eq!(respond(HYDRA, &request, &Outcome::default()), none);
    // Setting what is already there, or removing what is not, changes nothing either.
    let same = claims(json!({"hooked": "legacy"}), json!({"hooked": "legacy"}));
    assert_eq!(respond(HYDRA, &request, &same), none);
    assert_eq!(respond(HYDRA, &request, &removing(&[], &["absent"])), none);
}

#[test]
fn hydra_refusals() {
    let request = hydra();
    assert_eq!(
        HYDRA.respond(&request, Verdict::Denied(&denied())),
        reply(
            403,
            json!({"error": "access_denied", "error_description": DENIED})
        )
    );
    assert_eq!(
        HYDRA.respond(&request, Verdict::Failed(&failed())),
        reply(
            500,
            json!({"error": "server_error", "error_description": FAILED})
        )
    );
    assert_eq!(
        HYDRA.respond(&request, Verdict::Failed(&busy())).status,
        503
    );
    assert_eq!(
        HYDRA.respond(&request, Verdict::Timeout),
        reply(
            503,
            json!({"error": "temporarily_unavailable", "error_description": TIMEOUT_MESSAGE})
        )
    );
    assert_eq!(
        HYDRA.error(401, "unauthorized"),
        reply(
            401,
            json!({"error": "unauthorized", "error_description": "unauthorized"})
        )
    );
    assert_eq!(HYDRA.error(503, "busy").status, 503);
}

#[test]
fn hydra_cannot_carry() {
    let request = hydra();
    let cases = [
        (
            scope_added(),
            "rule `scopes` adds scope `admin`, but Hydra's token hook cannot change scopes; the login fails closed",
        ),
        (
            scope_removed(),
            "rule `scopes` removes scope `openid`, but Hydra's token hook cannot change scopes; the login fails closed",
        ),
        (
            mfa(),
            "rule `step-up` asks for multi-factor authentication (`any`), but Hydra's token hook cannot ask for multi-factor authentication; the login fails closed",
        ),
        (
            metadata(true, "plan", json!("pro")),
            "rule `remember` updates app_metadata `plan`, but Hydra keeps no user metadata the token hook could update; the login fails closed",
        ),
        (
            metadata(false, "theme", json!("dark")),
            "rule `remember` updates user_metadata `theme`, but Hydra keeps no user metadata the token hook could update; the login fails closed",
        ),
        (
            removing(&["acr"], &[]),
            "rule `trim` removes ID-token claim `acr`, but Hydra's token hook can remove only the claims it sent under `ext`; the login fails closed",
        ),
    ];
    for (outcome, message) in cases {
        assert_eq!(
            respond(HYDRA, &request, &outcome),
            reply(
                500,
                json!({"error": "server_error", "error_description": message})
            )
        );
    }
}

// ---- Okta -----------------------------------------------------------------------------------

const OKTA: IssuerFormat = IssuerFormat::Okta;

fn okta() -> HookRequest {
    read(OKTA, "okta/token-inline-hook.json")
}

fn okta_error(message: &str) -> Reply {
    reply(200, json!({"error": {"errorSummary": message}}))
}

#[test]
fn okta_event() {
    let event = okta().event_json();
    assert_eq!(event["user"]["user_id"], "00uq8tMo3zV0OfJON0g3");
    assert_eq!(event["user"]["email"], "webmaster@clouditude.net");
    assert_eq!(event["user"]["name"], "Add-Min O'Cloudy Tud");
    assert_eq!(event["user"]["given_name"], "Add-Min");
    assert_eq!(event["user"]["family_name"], "O'Cloudy Tud");
    assert_eq!(event["client"]["client_id"], "customClientIdNative");
    assert_eq!(event["client"]["name"], "Native client");
    assert_eq!(event["resource_server"]["identifier"], "api://default");
    assert_eq!(
        event["transaction"]["requested_scopes"],
        json!(["email", "openid", "profile"])
    );
    assert_eq!(
        event["transaction"]["redirect_uri"],
        "https://httpbin.org/get"
    );
    assert_eq!(event["transaction"]["nonce"], "asf");
    assert_eq!(event["transaction"]["locale"], "en");
    assert_eq!(event["request"]["ip"], "127.0.0.1");
    assert_eq!(event["request"]["hostname"], "example.okta.com");
    assert_eq!(
        event["request"]["query"]["redirect_uri"],
        "https://httpbin.org/get"
    );
    assert_eq!(event["request"]["query"]["scope"], "openid profile email");
    assert_eq!(
        event["authentication"]["methods"],
        json!([{"name": "pwd", "timestamp": null, "auth_time": 1547594229}])
    );
    assert_eq!(event["connection"]["strategy"], "okta");
    assert_eq!(
        event["issuer_claims"]["access_token"]["cid"],
        "customClientIdNative"
    );
    assert_eq!(event["issuer_claims"]["id_token"]["nonce"], "asf");
}

#[test]
fn okta_bad_requests_are_200_errors_naming_the_field() {
    assert_eq!(
        OKTA.request(br#"{"eventType": "com.okta.oauth2.tokens.transform"}"#)
            .err(),
        Some(okta_error("request field `data` is required"))
    );
    assert_eq!(
        OKTA.request(br#"{"data": {"access": {"claims": "x"}}}"#)
            .err(),
        Some(okta_error(
            "request field `data.access.claims` must be an object, found a string"
        ))
    );
    assert_eq!(
        OKTA.request(br#"{"eventType": "com.okta.user.pre-registration", "data": {}}"#)
            .err()
            .map(|r| r.status),
        Some(200)
    );
}

#[test]
fn okta_add_replace_remove() {
    let request = okta();
    let add = claims(json!({TENANT: "t1"}), json!({ROLES: ["admin"]}));
    assert_eq!(
        respond(OKTA, &request, &add),
        reply(
            200,
            json!({"commands": [
                {"type": "com.okta.identity.patch", "value": [
                    {"op": "add", "path": "/claims/https:~1~1e.test~1tenant", "value": "t1"}]},
                {"type": "com.okta.access.patch", "value": [
                    {"op": "add", "path": "/claims/https:~1~1e.test~1roles", "value": ["admin"]}]}]})
        )
    );
    let over = claims(
        json!({"name": "Ada"}),
        json!({"firstName": "Ada", "a~b": 1}),
    );
    assert_eq!(
        respond(OKTA, &request, &over),
        reply(
            200,
            json!({"commands": [
                {"type": "com.okta.identity.patch", "value": [
                    {"op": "replace", "path": "/claims/name", "value": "Ada"}]},
                {"type": "com.okta.access.patch", "value": [
                    {"op": "add", "path": "/claims/a~0b", "value": 1},
                    {"op": "replace", "path": "/claims/firstName", "value": "Ada"}]}]})
        )
    );
    let remove = removing(&["email", "absent"], &["firstName"]);
    assert_eq!(
        respond(OKTA, &request, &remove),
        reply(
            200,
            json!({"commands": [
                {"type": "com.okta.identity.patch", "value": [{"op": "remove", "path": "/claims/email"}]},
                {"type": "com.okta.access.patch", "value": [{"op": "remove", "path": "/claims/firstName"}]}]})
        )
    );
}

#[test]
fn okta_no_change_and_tokens_not_minted() {
    let request = okta();
    let none = reply(200, json!({"commands": []}));
    assert_eq!(respond(OKTA, &request, &Outcome::default()), none);
    let same = claims(json!({"nonce": "asf"}), json!({"ver": 1}));
    assert_eq!(respond(OKTA, &request, &same), none);
    // client_credentials: no ID token, so no identity patch (Okta refuses one).
    let mut body = fixture_json("okta/token-inline-hook.json");
    body["data"].as_object_mut().unwrap().remove("identity");
    let m2m = read_bytes(OKTA, body.to_string().as_bytes());
    let add = claims(json!({TENANT: "t1"}), json!({ROLES: ["admin"]}));
    assert_eq!(
        respond(OKTA, &m2m, &add),
        reply(
            200,
            json!({"commands": [{"type": "com.okta.access.patch", "value": [
                {"op": "add", "path": "/claims/https:~1~1e.test~1roles", "value": ["admin"]}]}]})
        )
    );
}

#[test]
fn okta_refusals_are_all_200_errors() {
    let request = okta();
    assert_eq!(
        OKTA.respond(&request, Verdict::Denied(&denied())),
        okta_error(DENIED)
    );
    assert_eq!(
        OKTA.respond(&request, Verdict::Failed(&failed())),
        okta_error(FAILED)
    );
    assert_eq!(
        OKTA.respond(&request, Verdict::Timeout),
        okta_error(TIMEOUT_MESSAGE)
    );
    for status in [400, 401, 413, 500, 503] {
        assert_eq!(
            OKTA.error(status, "unauthorized"),
            okta_error("unauthorized")
        );
    }
    for (outcome, message) in [
        (
            scope_added(),
            "rule `scopes` adds scope `admin`, but Okta's token inline hook cannot change scopes; the login fails closed",
        ),
        (
            scope_removed(),
            "rule `scopes` removes scope `openid`, but Okta's token inline hook cannot change scopes; the login fails closed",
        ),
        (
            mfa(),
            "rule `step-up` asks for multi-factor authentication (`any`), but Okta's token inline hook cannot ask for multi-factor authentication; the login fails closed",
        ),
        (
            metadata(false, "theme", json!("dark")),
            "rule `remember` updates user_metadata `theme`, but Okta's token inline hook cannot update the user's profile; the login fails closed",
        ),
    ] {
        assert_eq!(respond(OKTA, &request, &outcome), okta_error(message));
    }
}

// ---- Supabase -------------------------------------------------------------------------------

const SUPABASE: IssuerFormat = IssuerFormat::Supabase;

fn supabase() -> HookRequest {
    read(SUPABASE, "supabase/custom-access-token.json")
}

fn supabase_claims() -> Map<String, Value> {
    map(fixture_json("supabase/custom-access-token.json")["claims"].clone())
}

fn supabase_error(code: u16, message: &str) -> Reply {
    reply(
        200,
        json!({"error": {"http_code": code, "message": message}}),
    )
}

#[test]
fn supabase_event() {
    let event = supabase().event_json();
    assert_eq!(
        event["user"]["user_id"],
        "8ccaa7af-909f-44e7-84cb-67cdccb56be6"
    );
    assert_eq!(event["user"]["email"], Value::Null);
    assert_eq!(
        event["client"]["client_id"],
        "d7c5d2f1-9f8e-4c55-8a7b-0e6f3c2a1b90"
    );
    assert_eq!(event["resource_server"]["identifier"], "authenticated");
    assert_eq!(event["authorization"]["roles"], json!(["authenticated"]));
    assert_eq!(event["transaction"]["protocol"], "anonymous");
    assert_eq!(event["request"]["ip"], "203.0.113.7");
    assert_eq!(
        event["authentication"]["methods"],
        json!([{"name": "anonymous", "timestamp": null, "auth_time": 1715686621}])
    );
    assert_eq!(event["issuer_claims"]["access_token"]["aal"], "aal1");
    assert_eq!(event["issuer_claims"]["id_token"]["aal"], "aal1");
    // A password login with a profile; no client_id: the documented default.
    let body = json!({"user_id": "u1", "claims": {"aud": "authenticated", "sub": "u1", "email": "ada@example.com",
        "phone": "", "role": "authenticated", "app_metadata": {"provider": "email", "plan": "pro"},
        "user_metadata": {"name": "Ada", "email_verified": true}},
        "authentication_method": "token_refresh"});
    let event = read_bytes(SUPABASE, body.to_string().as_bytes()).event_json();
    assert_eq!(event["client"]["client_id"], "supabase");
    assert_eq!(event["user"]["email"], "ada@example.com");
    assert_eq!(event["user"]["email_verified"], true);
    assert_eq!(event["user"]["name"], "Ada");
    assert_eq!(event["user"]["app_metadata"]["plan"], "pro");
    assert_eq!(event["connection"]["strategy"], "email");
    assert_eq!(event["transaction"]["protocol"], "oauth2-refresh-token");
}

#[test]
fn supabase_bad_requests_name_the_field() {
    assert_eq!(
        SUPABASE.request(br#"{"user_id": "u1"}"#).err(),
        Some(reply(
            400,
            json!({"error": {"http_code": 400, "message": "request field `claims` is required"}})
        ))
    );
    let Err(reply) = SUPABASE.request(br#"{"claims": {"amr": [{"method": 1}]}}"#) else {
        panic!()
    };
    assert_eq!(
        reply.body.unwrap()["error"]["message"],
        "request field `claims.amr[0].method` must be a string, found a number"
    );
}

#[test]
fn supabase_add_override_remove_no_change() {
    let request = supabase();
    let mut expected = supabase_claims();
    expected.insert(ROLES.into(), json!(["admin"]));
    let add = claims(json!({ROLES: ["admin"]}), json!({ROLES: ["admin"]}));
    assert_eq!(
        respond(SUPABASE, &request, &add),
        reply(200, json!({ "claims": expected }))
    );
    let mut expected = supabase_claims();
    expected.insert("client_id".into(), json!("other"));
    let over = claims(json!({}), json!({"client_id": "other"}));
    assert_eq!(
        respond(SUPABASE, &request, &over),
        reply(200, json!({ "claims": expected }))
    );
    let mut expected = supabase_claims();
    expected.remove("client_id");
    assert_eq!(
        respond(
            SUPABASE,
            &request,
            &removing(&["client_id"], &["client_id"])
        ),
        reply(200, json!({ "claims": expected }))
    );
    let unchanged = reply(200, json!({ "claims": supabase_claims() }));
    assert_eq!(respond(SUPABASE, &request, &Outcome::default()), unchanged);
    // A required claim set to the value it has is no change.
    let same = claims(json!({}), json!({"role": "authenticated"}));
    assert_eq!(respond(SUPABASE, &request, &same), unchanged);
}

#[test]
fn supabase_refusals() {
    let request = supabase();
    assert_eq!(
        SUPABASE.respond(&request, Verdict::Denied(&denied())),
        supabase_error(403, DENIED)
    );
    assert_eq!(
        SUPABASE.respond(&request, Verdict::Failed(&failed())),
        supabase_error(500, FAILED)
    );
    assert_eq!(
        SUPABASE.respond(&request, Verdict::Timeout),
        supabase_error(503, TIMEOUT_MESSAGE)
    );
    assert_eq!(
        SUPABASE.error(401, "unauthorized"),
        reply(
            401,
            json!({"error": {"http_code": 401, "message": "unauthorized"}})
        )
    );
}

#[test]
fn answers_larger_than_okta_or_supabase_take_fail_closed() {
    // Okta refuses a response of 256 KB or more, Supabase one over 200 KiB, and both then go on
    // without the rules' claims: claimsmith answers with the format's error instead.
    let big = |bytes: usize| claims(json!({}), json!({TENANT: "x".repeat(bytes)}));
    let okta = okta();
    let fits = respond(OKTA, &okta, &big(250_000));
    assert!(fits.body.as_ref().unwrap().get("commands").is_some());
    let over = respond(OKTA, &okta, &big(256_000));
    assert_eq!(over.status, 200);
    let summary = over.body.unwrap()["error"]["errorSummary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        summary.contains("over the 255999 bytes okta takes"),
        "{summary}"
    );
    let supabase = supabase();
    let fits = respond(SUPABASE, &supabase, &big(200_000));
    assert!(fits.body.as_ref().unwrap().get("claims").is_some());
    let over = respond(SUPABASE, &supabase, &big(205_000));
    assert_eq!(over.body.as_ref().unwrap()["error"]["http_code"], 500);
    let message = over.body.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("over the 204800 bytes supabase takes"),
        "{message}"
    );
}

#[test]
fn supabase_cannot_carry() {
    let request = supabase();
    let cases = [
        (
            claims(json!({}), json!({"role": "admin"})),
            "rule `claims` sets claim `role`, but Supabase's required claims cannot be changed by the hook; the login fails closed",
        ),
        (
            claims(json!({}), json!({"app_metadata": "x"})),
            "rule `claims` sets claim `app_metadata`, but Supabase requires that claim to be an object; the login fails closed",
        ),
        (
            claims(json!({}), json!({"amr": {}})),
            "rule `claims` sets claim `amr`, but Supabase requires that claim to be an array; the login fails closed",
        ),
        (
            removing(&[], &["email"]),
            "rule `trim` removes claim `email`, but Supabase requires it in every access token; the login fails closed",
        ),
        (
            claims(json!({TENANT: "t1"}), json!({})),
            "rule `claims` sets ID-token claim `https://e.test/tenant`, but Supabase issues only the access token, so an ID-token claim must be set on the access token with the same value; the login fails closed",
        ),
        (
            claims(json!({TENANT: "t1"}), json!({TENANT: "t2"})),
            "rule `claims` sets ID-token claim `https://e.test/tenant`, but Supabase issues only the access token, so an ID-token claim must be set on the access token with the same value; the login fails closed",
        ),
        (
            removing(&["client_id"], &[]),
            "rule `trim` removes ID-token claim `client_id`, but Supabase issues only the access token, so a claim removed from the ID token must be removed from the access token too; the login fails closed",
        ),
        (
            scope_added(),
            "rule `scopes` adds scope `admin`, but Supabase's access token hook cannot change scopes; the login fails closed",
        ),
        (
            mfa(),
            "rule `step-up` asks for multi-factor authentication (`any`), but Supabase's access token hook cannot ask for multi-factor authentication; the login fails closed",
        ),
        (
            metadata(true, "plan", json!("pro")),
            "rule `remember` updates app_metadata `plan`, but Supabase's access token hook cannot update the user (and updating the user from the hook deadlocks the sign-in); the login fails closed",
        ),
    ];
    for (outcome, message) in cases {
        assert_eq!(
            respond(SUPABASE, &request, &outcome),
            supabase_error(500, message)
        );
    }
}

// ---- Zitadel --------------------------------------------------------------------------------

const ZITADEL: IssuerFormat = IssuerFormat::Zitadel;

fn zitadel_error(code: u16, message: &str) -> Reply {
    reply(
        200,
        json!({"forwardedStatusCode": code, "forwardedErrorMessage": message}),
    )
}

#[test]
fn zitadel_event() {
    let request = read(ZITADEL, "zitadel/preaccesstoken.json");
    let event = &request.event_json();
    assert_eq!(event["user"]["user_id"], "384212440227381765");
    assert_eq!(event["user"]["email"], "admin@admin.localhost");
    assert_eq!(event["user"]["email_verified"], true);
    assert_eq!(event["user"]["name"], "Zitadel Admin");
    assert_eq!(event["user"]["given_name"], "Zitadel");
    assert_eq!(event["user"]["updated_at"], "2024-09-12T15:06:40Z");
    assert_eq!(event["user"]["user_metadata"], json!({"key": "value"}));
    assert_eq!(event["user"]["app_metadata"], json!({"key": "value"}));
    assert_eq!(event["client"]["client_id"], "384212440228430341@admin");
    assert_eq!(event["authorization"]["roles"], json!(["role"]));
    assert_eq!(
        event["organization"],
        json!({"id": "384212440226791941", "name": "admin", "display_name": null,
               "metadata": {"primary_domain": "admin.localhost"}})
    );
    assert_eq!(
        event["issuer_claims"]["access_token"]["email"],
        "admin@admin.localhost"
    );
    assert_eq!(event["issuer_claims"]["id_token"], json!({}));
    let userinfo = read(ZITADEL, "zitadel/preuserinfo.json").event_json();
    assert_eq!(userinfo["issuer_claims"]["access_token"], json!({}));
    assert_eq!(
        userinfo["issuer_claims"]["id_token"]["sub"],
        "384212440227381765"
    );
}

#[test]
fn zitadel_bad_requests_name_the_field() {
    assert_eq!(
        ZITADEL
            .request(br#"{"function": "function/postauthentication"}"#)
            .err(),
        Some(reply(
            400,
            json!({"forwardedStatusCode": 400, "forwardedErrorMessage":
                "request field `function` must be `preaccesstoken` or `preuserinfo`, found `postauthentication`"})
        ))
    );
    let Err(reply) = ZITADEL.request(br#"{"userinfo": {}}"#) else {
        panic!()
    };
    assert_eq!(
        reply.body.unwrap()["forwardedErrorMessage"],
        "request field `function` is required"
    );
    let Err(reply) = ZITADEL.request(
        br#"{"function": "preaccesstoken", "user_metadata": [{"key": "k", "value": "%%"}]}"#,
    ) else {
        panic!()
    };
    assert_eq!(
        reply.body.unwrap()["forwardedErrorMessage"],
        "request field `user_metadata[0].value` must be base64"
    );
}

#[test]
fn zitadel_appends_to_the_functions_token_only() {
    let access = read(ZITADEL, "zitadel/preaccesstoken.json");
    let userinfo = read(ZITADEL, "zitadel/preuserinfo.json");
    let add = claims(json!({TENANT: "t1"}), json!({ROLES: ["admin"]}));
    assert_eq!(
        respond(ZITADEL, &access, &add),
        reply(
            200,
            json!({"append_claims": [{"key": ROLES, "value": ["admin"]}]})
        )
    );
    assert_eq!(
        respond(ZITADEL, &userinfo, &add),
        reply(
            200,
            json!({"append_claims": [{"key": TENANT, "value": "t1"}]})
        )
    );
}

#[test]
fn zitadel_no_change_and_metadata() {
    let request = read(ZITADEL, "zitadel/preaccesstoken.json");
    assert_eq!(
        respond(ZITADEL, &request, &Outcome::default()),
        reply(200, json!({}))
    );
    // The same value as the token has, or removing an absent claim: nothing to do.
    let same = claims(json!({}), json!({"email": "admin@admin.localhost"}));
    assert_eq!(respond(ZITADEL, &request, &same), reply(200, json!({})));
    assert_eq!(
        respond(ZITADEL, &request, &removing(&[], &["absent"])),
        reply(200, json!({}))
    );
    let mut both = metadata(false, "theme", json!("dark"));
    both.app_metadata.insert("logins".into(), json!(5));
    assert_eq!(
        respond(ZITADEL, &request, &both),
        reply(
            200,
            json!({"set_user_metadata": [
                {"key": "logins", "value": "NQ=="},
                {"key": "theme", "value": "ZGFyaw=="}]})
        )
    );
}

#[test]
fn zitadel_refusals() {
    let request = read(ZITADEL, "zitadel/preaccesstoken.json");
    assert_eq!(
        ZITADEL.respond(&request, Verdict::Denied(&denied())),
        zitadel_error(403, DENIED)
    );
    assert_eq!(
        ZITADEL.respond(&request, Verdict::Failed(&failed())),
        zitadel_error(500, FAILED)
    );
    assert_eq!(
        ZITADEL.respond(&request, Verdict::Timeout),
        zitadel_error(503, TIMEOUT_MESSAGE)
    );
    assert_eq!(
        ZITADEL.error(401, "unauthorized"),
        reply(
            401,
            json!({"forwardedStatusCode": 401, "forwardedErrorMessage": "unauthorized"})
        )
    );
}

#[test]
fn zitadel_cannot_carry() {
    let request = read(ZITADEL, "zitadel/preaccesstoken.json");
    let mut conflict = metadata(false, "k", json!("a"));
    conflict.app_metadata.insert("k".into(), json!("b"));
    conflict.rules[0].commands.insert(
        0,
        Command::SetAppMetadata {
            key: "k".into(),
            value: json!("b"),
        },
    );
    let cases = [
        (
            claims(json!({}), json!({"email": "other@example.com"})),
            "rule `claims` sets claim `email`, but Zitadel's actions can only add claims, not override one; the login fails closed",
        ),
        (
            claims(json!({}), json!({"urn:zitadel:iam:org:id": "x"})),
            "rule `claims` sets claim `urn:zitadel:iam:org:id`, but Zitadel silently skips claims under `urn:zitadel:iam`; the login fails closed",
        ),
        (
            removing(&[], &["email"]),
            "rule `trim` removes claim `email`, but Zitadel's actions cannot remove a claim; the login fails closed",
        ),
        (
            metadata(true, "plan", Value::Null),
            "rule `remember` updates app_metadata `plan`, but Zitadel's `set_user_metadata` cannot delete a key; the login fails closed",
        ),
        (
            conflict,
            "rule `remember` updates user_metadata `k`, but Zitadel keeps one metadata list and app_metadata sets the same key to another value; the login fails closed",
        ),
        (
            scope_added(),
            "rule `scopes` adds scope `admin`, but Zitadel's actions cannot change scopes; the login fails closed",
        ),
        (
            mfa(),
            "rule `step-up` asks for multi-factor authentication (`any`), but Zitadel's actions cannot ask for multi-factor authentication; the login fails closed",
        ),
    ];
    for (outcome, message) in cases {
        assert_eq!(
            respond(ZITADEL, &request, &outcome),
            zitadel_error(500, message)
        );
    }
    // The ID token's claims are checked in preuserinfo.
    let userinfo = read(ZITADEL, "zitadel/preuserinfo.json");
    assert_eq!(
        respond(ZITADEL, &userinfo, &removing(&["email"], &[])),
        zitadel_error(
            500,
            "rule `trim` removes claim `email`, but Zitadel's actions cannot remove a claim; the login fails closed"
        )
    );
}

// ---- Cognito --------------------------------------------------------------------------------

const COGNITO: IssuerFormat = IssuerFormat::Cognito;

fn cognito() -> HookRequest {
    read(COGNITO, "cognito/v2-authentication.json")
}

fn cognito_echo(details: Value) -> Reply {
    let mut event = fixture_json("cognito/v2-authentication.json");
    event["response"] = json!({ "claimsAndScopeOverrideDetails": details });
    reply(200, event)
}

#[test]
fn cognito_event() {
    let event = cognito().event_json();
    assert_eq!(
        event["user"]["user_id"],
        "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
    );
    assert_eq!(event["user"]["email"], "alice@example.com");
    assert_eq!(event["user"]["email_verified"], true);
    assert_eq!(event["user"]["given_name"], "Alice");
    assert_eq!(event["user"]["app_metadata"], json!({"tenant": "acme"}));
    assert_eq!(event["user"]["groups"], json!(["g1"]));
    assert_eq!(event["client"]["client_id"], "1example23456789");
    assert_eq!(event["client"]["metadata"], json!({"k": "v"}));
    assert_eq!(
        event["transaction"]["requested_scopes"],
        json!(["openid", "aws.cognito.signin.user.admin"])
    );
    assert_eq!(
        event["transaction"]["protocol"],
        "TokenGeneration_Authentication"
    );
    assert_eq!(event["connection"]["id"], "us-east-1_ABC");
    assert_eq!(
        event["issuer_claims"]["id_token"]["email"],
        "alice@example.com"
    );
    let m2m = read(COGNITO, "cognito/v3-client-credentials.json").event_json();
    assert_eq!(m2m["user"]["user_id"], "m2mclient123");
    assert_eq!(m2m["transaction"]["protocol"], "oauth2-client-credentials");
}

#[test]
fn cognito_bad_requests_name_the_field() {
    let mut v1 = fixture_json("cognito/v2-authentication.json");
    v1["version"] = json!("1");
    let Err(reply) = COGNITO.request(v1.to_string().as_bytes()) else {
        panic!()
    };
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body.unwrap(),
        json!({"errorType": "BadRequest", "errorMessage":
            "request field `version` must be \"2\" or \"3\" (configure the trigger's event version as V2_0 or V3_0), found \"1\""})
    );
    let Err(reply) =
        COGNITO.request(br#"{"version": "2", "request": {"userAttributes": {"n": 1}}}"#)
    else {
        panic!()
    };
    assert_eq!(
        reply.body.unwrap()["errorMessage"],
        "request field `request.userAttributes.n` must be a string, found a number"
    );
}

#[test]
fn cognito_add_override_suppress_scopes() {
    let request = cognito();
    let mut outcome = claims(
        json!({TENANT: "t1", "email": "a@b.c"}),
        json!({ROLES: ["a", "b"]}),
    );
    outcome.id_token_removed = vec!["given_name".into()];
    outcome.access_token_removed = vec!["username".into()];
    outcome.scopes_added = vec!["api/read".into()];
    outcome.scopes_removed = vec!["aws.cognito.signin.user.admin".into()];
    assert_eq!(
        respond(COGNITO, &request, &outcome),
        cognito_echo(json!({
            "idTokenGeneration": {"claimsToAddOrOverride": {TENANT: "t1", "email": "a@b.c"},
                                  "claimsToSuppress": ["given_name"]},
            "accessTokenGeneration": {"claimsToAddOrOverride": {ROLES: ["a", "b"]},
                                      "claimsToSuppress": ["username"],
                                      "scopesToAdd": ["api/read"],
                                      "scopesToSuppress": ["aws.cognito.signin.user.admin"]}}))
    );
    assert_eq!(
        respond(COGNITO, &request, &removing(&["email"], &[])),
        cognito_echo(json!({"idTokenGeneration": {"claimsToSuppress": ["email"]}}))
    );
}

#[test]
fn cognito_no_change_echoes_the_event() {
    let request = cognito();
    assert_eq!(
        respond(COGNITO, &request, &Outcome::default()),
        reply(200, fixture_json("cognito/v2-authentication.json"))
    );
}

#[test]
fn cognito_v3_client_credentials_has_no_id_token() {
    let request = read(COGNITO, "cognito/v3-client-credentials.json");
    let mut outcome = claims(json!({TENANT: "t1"}), json!({ROLES: ["svc"]}));
    outcome.scopes_added = vec!["api/write".into()];
    let mut expected = fixture_json("cognito/v3-client-credentials.json");
    expected["response"] = json!({"claimsAndScopeOverrideDetails": {"accessTokenGeneration": {
        "claimsToAddOrOverride": {ROLES: ["svc"]}, "scopesToAdd": ["api/write"]}}});
    assert_eq!(respond(COGNITO, &request, &outcome), reply(200, expected));
}

#[test]
fn cognito_refusals() {
    let request = cognito();
    let lambda = |status, kind, message: &str| {
        reply(status, json!({"errorType": kind, "errorMessage": message}))
    };
    assert_eq!(
        COGNITO.respond(&request, Verdict::Denied(&denied())),
        lambda(403, "AccessDenied", DENIED)
    );
    assert_eq!(
        COGNITO.respond(&request, Verdict::Failed(&failed())),
        lambda(500, "RuleFailed", FAILED)
    );
    assert_eq!(
        COGNITO.respond(&request, Verdict::Failed(&busy())).status,
        503
    );
    assert_eq!(
        COGNITO.respond(&request, Verdict::Timeout),
        lambda(504, "Timeout", TIMEOUT_MESSAGE)
    );
    assert_eq!(
        COGNITO.error(401, "unauthorized"),
        lambda(401, "Unauthorized", "unauthorized")
    );
    for (outcome, message) in [
        (
            mfa(),
            "rule `step-up` asks for multi-factor authentication (`any`), but Cognito's pre token generation trigger cannot ask for multi-factor authentication; the login fails closed",
        ),
        (
            metadata(false, "theme", json!("dark")),
            "rule `remember` updates user_metadata `theme`, but Cognito's pre token generation trigger cannot update the user's attributes; the login fails closed",
        ),
    ] {
        assert_eq!(
            respond(COGNITO, &request, &outcome),
            lambda(500, "RuleFailed", message)
        );
    }
}

// ---- ABI version 4: authentication requests, session expiry, the login's time ---------------

fn authentication_request(command: Command) -> Outcome {
    let request = match &command {
        Command::ChallengeWith {
            factor,
            additional_factors,
        } => claimsmith_engine::AuthenticationRequest::ChallengeWith {
            factor: factor.clone(),
            additional_factors: additional_factors.clone(),
        },
        Command::ChallengeWithAny { factors } => {
            claimsmith_engine::AuthenticationRequest::ChallengeWithAny {
                factors: factors.clone(),
            }
        }
        Command::EnrollWith {
            factor,
            additional_factors,
        } => claimsmith_engine::AuthenticationRequest::EnrollWith {
            factor: factor.clone(),
            additional_factors: additional_factors.clone(),
        },
        other => panic!("{other:?}"),
    };
    Outcome {
        authentication: vec![request],
        rules: vec![trace("adaptive", vec![command])],
        ..Outcome::default()
    }
}

fn session_expiry(idle: bool) -> Outcome {
    let (command, session) = if idle {
        (
            Command::SetSessionIdleExpiresAt {
                idle_expires_at: 1_796_405_400_000,
            },
            claimsmith_engine::SessionRequest {
                idle_expires_at: Some(1_796_405_400_000),
                ..Default::default()
            },
        )
    } else {
        (
            Command::SetSessionExpiresAt {
                expires_at: 1_796_405_400_000,
            },
            claimsmith_engine::SessionRequest {
                expires_at: Some(1_796_405_400_000),
                ..Default::default()
            },
        )
    };
    Outcome {
        session,
        rules: vec![trace("timeout", vec![command])],
        ..Outcome::default()
    }
}

#[test]
fn every_format_fails_closed_on_authentication_requests_and_session_expiry_naming_rule_and_command()
{
    let factor = claimsmith_engine::Factor::new;
    let formats = [
        (HYDRA, "hydra/token-hook.json", "Hydra's token hook"),
        (
            OKTA,
            "okta/token-inline-hook.json",
            "Okta's token inline hook",
        ),
        (
            IssuerFormat::Supabase,
            "supabase/custom-access-token.json",
            "Supabase's access token hook",
        ),
        (
            IssuerFormat::Zitadel,
            "zitadel/preaccesstoken.json",
            "Zitadel's actions",
        ),
        (
            IssuerFormat::Cognito,
            "cognito/v2-authentication.json",
            "Cognito's pre token generation trigger",
        ),
    ];
    for (format, path, issuer) in formats {
        let request = read(format, path);
        let cases = [
            (
                authentication_request(Command::ChallengeWith {
                    factor: factor("otp"),
                    additional_factors: vec![factor("email")],
                }),
                format!(
                    "rule `adaptive` asks for an authentication challenge (`challenge_with`), but {issuer} cannot ask for an authentication challenge or enrollment"
                ),
            ),
            (
                authentication_request(Command::ChallengeWithAny {
                    factors: vec![factor("otp"), factor("phone")],
                }),
                "(`challenge_with_any`)".to_owned(),
            ),
            (
                authentication_request(Command::EnrollWith {
                    factor: factor("otp"),
                    additional_factors: vec![],
                }),
                "(`enroll_with`)".to_owned(),
            ),
            (
                session_expiry(false),
                format!(
                    "rule `timeout` sets the session's expiry (`set_session_expires_at`), but {issuer} cannot set the session's expiry"
                ),
            ),
            (
                session_expiry(true),
                "(`set_session_idle_expires_at`)".to_owned(),
            ),
        ];
        for (outcome, expected) in cases {
            let reply = respond(format, &request, &outcome);
            let body = reply
                .body
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default();
            assert!(
                body.contains(&expected) && body.contains("the login fails closed"),
                "{}: {body}",
                format.name()
            );
            // Never the success answer of the same login.
            assert_ne!(
                reply,
                respond(format, &request, &Outcome::default()),
                "{}",
                format.name()
            );
        }
    }
}

#[test]
fn okta_and_supabase_carry_the_login_time_and_session_of_their_requests() {
    let okta = okta().event_json();
    assert_eq!(
        okta["login_time"],
        json!(claimsmith_sdk::time::parse_rfc3339("2019-01-15T23:20:47.000Z").unwrap())
    );
    assert_eq!(okta["session"]["id"], "102Qoe7t5PcRnSxr8j3I8I6pA");
    assert_eq!(okta["session"]["created_at"], "2019-01-15T23:17:09.000Z");
    assert_eq!(okta["session"]["expires_at"], "2019-01-16T01:20:46.000Z");
    assert_eq!(
        okta["session"]["authenticated_at"],
        "2019-01-15T23:17:09.000Z"
    );
    let supabase = read(IssuerFormat::Supabase, "supabase/custom-access-token.json").event_json();
    assert_eq!(supabase["login_time"], json!(1_735_689_600_000u64));
    assert_eq!(
        supabase["session"]["id"],
        "4b938a09-5372-4177-a314-cfa292099ea2"
    );
    // No time in the request: the host's clock, chosen when the engine makes the event.
    let hydra = hydra().event_json();
    assert!(hydra.get("login_time").is_none(), "{hydra}");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let event = pipeline().event_from_value(hydra).unwrap();
    assert!(event.login_time() >= before);
    // Cognito's groups.
    let cognito = read(IssuerFormat::Cognito, "cognito/v2-authentication.json").event_json();
    assert_eq!(cognito["user"]["groups"], json!(["g1"]));
}

/// Every path to a member of `value` (object keys and array indexes), the root excluded.
fn member_paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let members: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, member) in members {
        at.push(key);
        out.push(at.clone());
        member_paths(member, at, out);
        at.pop();
    }
}

/// `value` with the member at `path` replaced (`Some`) or removed (`None`).
fn with_member(value: &Value, path: &[String], new: Option<&Value>) -> Value {
    let mut copy = value.clone();
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut copy;
    for key in parents {
        at = match at {
            Value::Object(map) => map.get_mut(key).unwrap(),
            Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    match (at, new) {
        (Value::Object(map), Some(new)) => {
            map.insert(last.clone(), new.clone());
        }
        (Value::Object(map), None) => {
            map.remove(last);
        }
        (Value::Array(items), Some(new)) => items[last.parse::<usize>().unwrap()] = new.clone(),
        (Value::Array(items), None) => {
            items.remove(last.parse::<usize>().unwrap());
        }
        _ => unreachable!(),
    }
    copy
}

#[test]
fn hydra_typed_reader_agrees_with_the_general_reader() {
    // The typed reader (the usual path) either gives exactly what the general reader gives, or
    // leaves the request to it: over the fixtures and every member of them replaced by each
    // kind of JSON value, or removed.
    let legacy = json!({"subject": "foo", "session": {"extra": {"a": 1}, "client_id": "s"},
        "requester": {"client_id": "app", "client": {"client_name": "App", "metadata": {"m": "1"}},
                      "granted_scopes": ["openid"], "granted_audience": ["https://api"], "grant_types": ["refresh_token"]},
        "client_id": "app", "granted_scopes": ["openid"], "granted_audience": []});
    let full = json!({"session": {"id_token": {"id_token_claims": {"sub": "u", "aud": ["c"], "nonce": "n",
            "amr": ["pwd", "otp"], "auth_time": 17, "ext": {"email": "a@b.example", "email_verified": "true", "name": "A"}},
            "subject": ""}, "extra": {"x": [1]}},
        "request": {"client_id": "", "client": {"client_name": "", "metadata": {}}, "requested_scopes": ["a"],
            "granted_scopes": ["b"], "grant_types": ["authorization_code"], "payload": {"k": ["1", "2"], "j": ["3"]}},
        "granted_scopes": ["c"], "requester": {"client_id": "ignored"}});
    let bases = [fixture_json("hydra/token-hook.json"), legacy, full];
    let kinds = [
        json!(null),
        json!(""),
        json!("text"),
        json!(7),
        json!(true),
        json!([]),
        json!(["x"]),
        json!([1]),
        json!({}),
        json!({"ext": 1}),
        json!({"sub": ["s"]}),
    ];
    let mut typed = 0;
    let mut bodies = Vec::new();
    for base in &bases {
        bodies.push(base.clone());
        let mut paths = Vec::new();
        member_paths(base, &mut Vec::new(), &mut paths);
        for path in &paths {
            bodies.push(with_member(base, path, None));
            for kind in &kinds {
                bodies.push(with_member(base, path, Some(kind)));
            }
        }
    }
    for body in &bodies {
        let text = body.to_string();
        let general = hydra::request(&At::root(body).unwrap());
        if let Some(fast) = hydra::request_typed(text.as_bytes()) {
            typed += 1;
            assert_eq!(general.as_ref().ok(), Some(&fast), "{text}");
        }
        // Whichever reader answers, the request reads as the general reader reads it.
        match (HYDRA.request(text.as_bytes()), general) {
            (Ok(read), Ok((event, _))) => assert_eq!(read.event, event, "{text}"),
            (Err(reply), Err(fault)) => {
                assert_eq!(reply.body.unwrap()["error_description"], fault, "{text}")
            }
            (read, general) => panic!("{text}: {:?} against {general:?}", read.is_ok()),
        }
    }
    // The fixtures themselves, and most of their variants, take the typed path.
    for base in &bases {
        assert!(
            hydra::request_typed(base.to_string().as_bytes()).is_some(),
            "{base}"
        );
    }
    assert!(typed * 2 > bodies.len(), "{typed} of {}", bodies.len());
    // A duplicate key is left to the general reader, where the last one counts.
    let twice = br#"{"session": {"client_id": "a", "client_id": "b"}}"#;
    assert!(hydra::request_typed(twice).is_none());
    assert_eq!(read_bytes(HYDRA, twice).event.client.client_id, "b");
}
