//! The pure translation layer between the issuers' token-hook wire formats and the rules engine.
//!
//! For each [`IssuerFormat`]: [`IssuerFormat::request`] turns the issuer's request body into the
//! login event the rules read (JSON in the shape `Pipeline::event_from_value` takes) and keeps
//! what the response must echo or seed from it; [`IssuerFormat::respond`] turns how the login
//! ended into the issuer's response; [`IssuerFormat::error`] is the issuer's error response for a
//! request refused before the rules ran.
//!
//! Everything here fails closed: a command a format cannot carry (a scope change for Hydra, a
//! claim override for Zitadel, ...) answers with that format's error response naming the rule
//! and the cause, never a silent drop. No I/O here: the server does the HTTP, the auth
//! (`crate::auth`) and the deadline.
//!
//! One file per issuer; this one holds the shared pieces: the request reader that names the
//! field at fault, the login event builder helpers, and the checks of what a format can carry.

mod cognito;
mod hydra;
mod okta;
mod supabase;
mod zitadel;

use claimsmith_engine::{Command, Denied, Outcome, RuleFailed, RuleFailure};
use claimsmith_sdk::{Event, User};
use serde_json::{Map, Value};

/// The wire format of the issuer that calls a hook endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum IssuerFormat {
    /// Ory Hydra's `oauth2.token_hook` (and the legacy `oauth2.refresh_token_hook`).
    Hydra,
    /// Okta's token inline hook (`com.okta.oauth2.tokens.transform`).
    Okta,
    /// Supabase Auth's custom access token hook, HTTP variant.
    Supabase,
    /// Zitadel Actions v2, functions `preaccesstoken` and `preuserinfo`.
    Zitadel,
    /// AWS Cognito's pre token generation trigger, V2_0 and V3_0 events, through a Lambda shim.
    Cognito,
}

/// A response: HTTP status and a JSON body (None = no body, e.g. Hydra's 204).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
        }
    }
}

/// The issuer's request turned into claimsmith's login event (JSON in the shape
/// `Pipeline::event_from_value` takes), plus whatever the response must echo or seed from it.
pub(crate) struct HookRequest {
    /// The login event for the rules (`configuration` and `secrets` unset: each rule gets its
    /// own; `login_time` 0 when the request carries no time: the host's clock).
    pub event: Event,
    state: State,
}

#[cfg(test)]
impl HookRequest {
    /// The event as JSON, as `Pipeline::event_from_value` takes it.
    pub(crate) fn event_json(&self) -> Value {
        event_value(self.event.clone())
    }
}

/// What each format keeps from the request for its response.
enum State {
    Hydra(hydra::State),
    Okta(okta::State),
    Supabase(supabase::State),
    Zitadel(zitadel::State),
    Cognito(cognito::State),
}

/// How the login ended, for the response.
pub(crate) enum Verdict<'a> {
    /// The rules ran to the end.
    Outcome(&'a Outcome),
    /// A rule denied the login.
    Denied(&'a Denied),
    /// A rule failed and fails the login closed.
    Failed(&'a RuleFailed),
    /// claimsmith's own request deadline passed before the rules finished.
    Timeout,
}

/// The text a format's response gives for a timeout.
const TIMEOUT_MESSAGE: &str =
    "claimsmith's request deadline passed before the rules finished; the login fails closed";

impl IssuerFormat {
    /// The format's name, as in the config: `hydra`, `okta`, `supabase`, `zitadel`, `cognito`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            IssuerFormat::Hydra => "hydra",
            IssuerFormat::Okta => "okta",
            IssuerFormat::Supabase => "supabase",
            IssuerFormat::Zitadel => "zitadel",
            IssuerFormat::Cognito => "cognito",
        }
    }

    /// The issuer's name as its vendor writes it, for messages.
    pub(crate) fn title(self) -> &'static str {
        match self {
            IssuerFormat::Hydra => "Ory Hydra",
            IssuerFormat::Okta => "Okta",
            IssuerFormat::Supabase => "Supabase Auth",
            IssuerFormat::Zitadel => "Zitadel",
            IssuerFormat::Cognito => "Cognito",
        }
    }

    /// How long the issuer waits for the hook's answer, where that is fixed
    /// (docs/hooks.md): Hydra 30 s an attempt, Okta 3 s, Supabase and Cognito 5 s. Zitadel's
    /// is each target's own `timeout`. An answer after it is never read: Okta then issues the
    /// token without the rules' claims (it fails open), the others refuse it.
    pub(crate) fn issuer_timeout(self) -> Option<std::time::Duration> {
        let seconds = match self {
            IssuerFormat::Hydra => 30,
            IssuerFormat::Okta => 3,
            IssuerFormat::Supabase | IssuerFormat::Cognito => 5,
            IssuerFormat::Zitadel => return None,
        };
        Some(std::time::Duration::from_secs(seconds))
    }

    /// Parse the issuer's request body (already authenticated, size-capped). Err: the format's
    /// 400 reply, naming the field at fault.
    pub(crate) fn request(self, body: &[u8]) -> Result<HookRequest, Reply> {
        // Hydra's request, the one the benchmarks time, is read straight into its typed shape;
        // what that reader refuses is read again below, naming the field at fault.
        if self == IssuerFormat::Hydra
            && let Some((event, state)) = hydra::request_typed(body)
        {
            return Ok(HookRequest {
                event,
                state: State::Hydra(state),
            });
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| self.error(400, &format!("request body is not JSON: {e}")))?;
        let root = At::root(&value).map_err(|fault| self.error(400, &fault))?;
        let parsed = match self {
            IssuerFormat::Hydra => hydra::request(&root).map(|(e, s)| (e, State::Hydra(s))),
            IssuerFormat::Okta => okta::request(&root).map(|(e, s)| (e, State::Okta(s))),
            IssuerFormat::Supabase => {
                supabase::request(&root).map(|(e, s)| (e, State::Supabase(s)))
            }
            IssuerFormat::Zitadel => zitadel::request(&root).map(|(e, s)| (e, State::Zitadel(s))),
            IssuerFormat::Cognito => cognito::request(&root).map(|(e, s)| (e, State::Cognito(s))),
        };
        let (event, state) = parsed.map_err(|fault| self.error(400, &fault))?;
        Ok(HookRequest { event, state })
    }

    /// The issuer's response. Fails closed: a denial, a failure, a timeout, or a command this
    /// format cannot carry answers with this format's denial/error response naming the rule and
    /// the cause. Never a silent drop.
    pub(crate) fn respond(self, request: &HookRequest, verdict: Verdict<'_>) -> Reply {
        let refusal = match verdict {
            Verdict::Outcome(outcome) => {
                let result = match (self, &request.state) {
                    (IssuerFormat::Hydra, State::Hydra(s)) => hydra::respond(s, outcome),
                    (IssuerFormat::Okta, State::Okta(s)) => okta::respond(s, outcome),
                    (IssuerFormat::Supabase, State::Supabase(s)) => supabase::respond(s, outcome),
                    (IssuerFormat::Zitadel, State::Zitadel(s)) => zitadel::respond(s, outcome),
                    (IssuerFormat::Cognito, State::Cognito(s)) => cognito::respond(s, outcome),
                    _ => {
                        return self.error(
                            500,
                            "claimsmith error: the request was read by another hook format",
                        );
                    }
                };
                match result {
                    Ok(reply) => match self.over_limit(&reply) {
                        None => return reply,
                        Some(refusal) => refusal,
                    },
                    Err(refusal) => refusal,
                }
            }
            Verdict::Denied(denied) => Refusal::Denied(denied.to_string()),
            Verdict::Failed(failed) => Refusal::Failed {
                message: format!("{failed}; the login fails closed"),
                transient: matches!(failed.cause, RuleFailure::Capacity(_)),
            },
            Verdict::Timeout => Refusal::Timeout(TIMEOUT_MESSAGE.to_owned()),
        };
        match self {
            IssuerFormat::Hydra => hydra::refuse(refusal),
            IssuerFormat::Okta => okta::refuse(refusal),
            IssuerFormat::Supabase => supabase::refuse(refusal),
            IssuerFormat::Zitadel => zitadel::refuse(refusal),
            IssuerFormat::Cognito => cognito::refuse(refusal),
        }
    }

    /// A refusal when `reply` is larger than the issuer takes: Okta refuses a response of 256 KB
    /// or more and Supabase one over 200 KiB (`payloadLimit`), and both then go on without the
    /// rules' claims (Okta issues the original token). Sizes are counted, not copied.
    fn over_limit(self, reply: &Reply) -> Option<Refusal> {
        let limit = match self {
            IssuerFormat::Okta => OKTA_RESPONSE_BYTES,
            IssuerFormat::Supabase => SUPABASE_RESPONSE_BYTES,
            _ => return None,
        };
        let body = reply.body.as_ref()?;
        let mut counted = ByteCount(0);
        serde_json::to_writer(&mut counted, body).ok()?;
        (counted.0 > limit).then(|| Refusal::Failed {
            message: format!(
                "the answer would be {} bytes, over the {limit} bytes {} takes; the login fails closed",
                counted.0,
                self.name()
            ),
            transient: false,
        })
    }

    /// This format's error response for a request claimsmith refuses before the rules run
    /// (400 bad body or event, 401 auth, 413, 503 overload, 500), in the format's error shape.
    /// Okta's is always a 200 with an `error` object, since Okta issues the token unmodified
    /// on any other status (it fails open).
    pub(crate) fn error(self, status: u16, message: &str) -> Reply {
        match self {
            IssuerFormat::Hydra => hydra::error(status, message),
            IssuerFormat::Okta => okta::error(message),
            IssuerFormat::Supabase => supabase::error(status, message),
            IssuerFormat::Zitadel => zitadel::error(status, message),
            IssuerFormat::Cognito => cognito::error(status, message),
        }
    }
}

/// The largest response Okta takes: "must be under 256 KB" (counted here as 256,000 bytes, the
/// stricter reading).
const OKTA_RESPONSE_BYTES: usize = 256_000 - 1;

/// The largest response Supabase Auth takes (`payloadLimit = 200*1024`).
const SUPABASE_RESPONSE_BYTES: usize = 200 * 1024;

/// A writer that only counts what is written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why the login gets no tokens, before a format words it.
#[derive(Debug)]
enum Refusal {
    /// A rule denied it.
    Denied(String),
    /// A rule failed, or asked for something the format cannot carry.
    Failed {
        message: String,
        /// Whether trying again may work (no sandbox slot was free).
        transient: bool,
    },
    /// The deadline passed.
    Timeout(String),
}

impl Refusal {
    /// The HTTP status the refusal stands for: 403 a denial, 500 a failure, 503 when trying
    /// again may work (no free sandbox slot, the deadline).
    fn status(&self) -> u16 {
        match self {
            Refusal::Denied(_) => 403,
            Refusal::Failed {
                transient: false, ..
            } => 500,
            Refusal::Failed {
                transient: true, ..
            }
            | Refusal::Timeout(_) => 503,
        }
    }

    fn message(&self) -> &str {
        match self {
            Refusal::Denied(m) | Refusal::Timeout(m) => m,
            Refusal::Failed { message, .. } => message,
        }
    }

    /// A command the format cannot carry: the rule that gave it, what it asked, and why not.
    fn cannot_carry(rule: &str, what: &str, why: &str) -> Refusal {
        Refusal::Failed {
            message: format!("rule `{rule}` {what}, but {why}; the login fails closed"),
            transient: false,
        }
    }
}

/// The event as the JSON `Pipeline::event_from_value` takes, without the per-rule members.
#[cfg(test)]
fn event_value(event: Event) -> Value {
    let mut value = serde_json::to_value(event).expect("an Event always serializes");
    if let Value::Object(map) = &mut value {
        map.remove("configuration");
        map.remove("secrets");
        // No time in the request: the host's clock, which version 1 rules do not see either.
        if map.get("login_time") == Some(&Value::from(0)) {
            map.remove("login_time");
        }
    }
    value
}

// ---- What a format cannot carry -------------------------------------------------------------

/// The last rule whose commands match, for naming it in an error.
fn rule_of(outcome: &Outcome, matches: impl Fn(&Command) -> bool) -> String {
    outcome
        .rules
        .iter()
        .rev()
        .find(|trace| trace.commands.iter().any(&matches))
        .map(|trace| trace.rule.clone())
        .unwrap_or_else(|| "(unknown)".to_owned())
}

/// Refuse a scope change: `issuer` cannot change scopes.
/// What a format cannot carry, each kind with the reason given when a rule asks for it: `None`
/// for what the format does carry.
struct Uncarried {
    scopes: Option<&'static str>,
    mfa: Option<&'static str>,
    authentication: Option<&'static str>,
    session: Option<&'static str>,
    metadata: Option<&'static str>,
}

impl Uncarried {
    /// Refuse the outcome (fail closed, naming the rule) if it asks for anything of these.
    fn check(&self, outcome: &Outcome) -> Result<(), Refusal> {
        if let Some(why) = self.scopes {
            no_scope_changes(outcome, why)?;
        }
        if let Some(why) = self.mfa {
            no_mfa(outcome, why)?;
        }
        if let Some(why) = self.authentication {
            no_authentication(outcome, why)?;
        }
        if let Some(why) = self.session {
            no_session(outcome, why)?;
        }
        if let Some(why) = self.metadata {
            no_metadata(outcome, why)?;
        }
        Ok(())
    }
}

fn no_scope_changes(outcome: &Outcome, why: &str) -> Result<(), Refusal> {
    if let Some(scope) = outcome.scopes_added.first() {
        let rule = rule_of(
            outcome,
            |c| matches!(c, Command::AddScope { scope: s } if s == scope),
        );
        return Err(Refusal::cannot_carry(
            &rule,
            &format!("adds scope `{scope}`"),
            why,
        ));
    }
    if let Some(scope) = outcome.scopes_removed.first() {
        let rule = rule_of(
            outcome,
            |c| matches!(c, Command::RemoveScope { scope: s } if s == scope),
        );
        return Err(Refusal::cannot_carry(
            &rule,
            &format!("removes scope `{scope}`"),
            why,
        ));
    }
    Ok(())
}

/// Refuse an MFA request.
fn no_mfa(outcome: &Outcome, why: &str) -> Result<(), Refusal> {
    if let Some(provider) = outcome.mfa.first() {
        let rule = rule_of(
            outcome,
            |c| matches!(c, Command::EnableMfa { provider: p, .. } if p == provider),
        );
        return Err(Refusal::cannot_carry(
            &rule,
            &format!("asks for multi-factor authentication (`{provider}`)"),
            why,
        ));
    }
    Ok(())
}

/// Refuse an authentication challenge or enrollment (`api.authentication`).
fn no_authentication(outcome: &Outcome, why: &str) -> Result<(), Refusal> {
    if let Some(request) = outcome.authentication.first() {
        let op = request.op();
        let rule = rule_of(outcome, |c| c.op() == op);
        return Err(Refusal::cannot_carry(
            &rule,
            &format!("asks for an authentication challenge (`{op}`)"),
            why,
        ));
    }
    Ok(())
}

/// Refuse a session expiry (`api.session`).
fn no_session(outcome: &Outcome, why: &str) -> Result<(), Refusal> {
    let op = match (outcome.session.expires_at, outcome.session.idle_expires_at) {
        (Some(_), _) => "set_session_expires_at",
        (None, Some(_)) => "set_session_idle_expires_at",
        (None, None) => return Ok(()),
    };
    let rule = rule_of(outcome, |c| c.op() == op);
    Err(Refusal::cannot_carry(
        &rule,
        &format!("sets the session's expiry (`{op}`)"),
        why,
    ))
}

/// The login's time from a request's RFC 3339 field, milliseconds since the epoch; `0` (the
/// host's clock) when the field is absent.
fn login_time_text(at: &At<'_>, key: &str) -> Result<u64, String> {
    match at.str(key)? {
        None => Ok(0),
        Some(text) => claimsmith_sdk::time::parse_rfc3339(text)
            .and_then(|ms| u64::try_from(ms).ok())
            .ok_or_else(|| {
                format!(
                    "request field `{}` is not an RFC 3339 time: `{text}`",
                    at.path(key)
                )
            }),
    }
}

/// Refuse metadata updates.
fn no_metadata(outcome: &Outcome, why: &str) -> Result<(), Refusal> {
    if let Some(key) = outcome.app_metadata.keys().next() {
        let rule = rule_of(
            outcome,
            |c| matches!(c, Command::SetAppMetadata { key: k, .. } if k == key),
        );
        return Err(Refusal::cannot_carry(
            &rule,
            &format!("updates app_metadata `{key}`"),
            why,
        ));
    }
    if let Some(key) = outcome.user_metadata.keys().next() {
        let rule = rule_of(
            outcome,
            |c| matches!(c, Command::SetUserMetadata { key: k, .. } if k == key),
        );
        return Err(Refusal::cannot_carry(
            &rule,
            &format!("updates user_metadata `{key}`"),
            why,
        ));
    }
    Ok(())
}

/// The rule that set claim `name` on `token`.
fn rule_setting(outcome: &Outcome, token: claimsmith_engine::TokenKind, name: &str) -> String {
    rule_of(
        outcome,
        |c| matches!(c, Command::SetClaim { token: t, name: n, .. } if *t == token && n == name),
    )
}

/// The rule that removed claim `name` from `token`.
fn rule_removing(outcome: &Outcome, token: claimsmith_engine::TokenKind, name: &str) -> String {
    rule_of(
        outcome,
        |c| matches!(c, Command::RemoveClaim { token: t, name: n } if *t == token && n == name),
    )
}

// ---- Reading the request, naming the field at fault -----------------------------------------

/// An object of the request, with its dotted path for error messages.
struct At<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> At<'a> {
    /// The request body, which must be an object.
    fn root(value: &'a Value) -> Result<At<'a>, String> {
        match value {
            Value::Object(map) => Ok(At {
                path: String::new(),
                map,
            }),
            other => Err(format!(
                "request body must be a JSON object, found {}",
                kind(other)
            )),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn wrong(&self, key: &str, wanted: &str, found: &Value) -> String {
        format!(
            "request field `{}` must be {wanted}, found {}",
            self.path(key),
            kind(found)
        )
    }

    /// A member, `None` when absent or `null`.
    fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A member that must be there.
    fn required<T>(&self, key: &str, got: Result<Option<T>, String>) -> Result<T, String> {
        got?.ok_or_else(|| format!("request field `{}` is required", self.path(key)))
    }

    /// A string member; empty strings count as absent.
    fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(key, "a string", other)),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.str(key)?.map(str::to_owned))
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong(key, "true or false", other)),
        }
    }

    fn i64(&self, key: &str) -> Result<Option<i64>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(other) => Err(self.wrong(key, "an integer", other)),
        }
    }

    /// An object member.
    fn obj(&self, key: &str) -> Result<Option<At<'a>>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(At {
                path: self.path(key),
                map,
            })),
            Some(other) => Err(self.wrong(key, "an object", other)),
        }
    }

    /// An object member as a plain map (claims, metadata).
    fn map(&self, key: &str) -> Result<Option<&'a Map<String, Value>>, String> {
        Ok(self.obj(key)?.map(|at| at.map))
    }

    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.wrong(key, "an array", other)),
        }
    }

    /// An array of strings; absent or `null` is empty.
    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        Ok(self.opt_strings(key)?.unwrap_or_default())
    }

    /// An array of strings, `None` when absent or `null`.
    fn opt_strings(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "request field `{}[{i}]` must be a string, found {}",
                    self.path(key),
                    kind(other)
                )),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// The objects of an array member, each with its path.
    fn objects(&self, key: &str) -> Result<Vec<At<'a>>, String> {
        let Some(items) = self.array(key)? else {
            return Ok(Vec::new());
        };
        let path = self.path(key);
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(At {
                    path: format!("{path}[{i}]"),
                    map,
                }),
                other => Err(format!(
                    "request field `{path}[{i}]` must be an object, found {}",
                    kind(other)
                )),
            })
            .collect()
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---- Building the event ---------------------------------------------------------------------

/// The standard OpenID Connect profile claims in `claims` into `user`, where the user does not
/// have them yet. Booleans may come as `"true"`/`"false"` (Cognito's attributes are strings);
/// `updated_at` as seconds since the epoch (OIDC) or a string.
fn profile_from_claims(user: &mut User, claims: &Map<String, Value>) {
    let text = |key: &str| {
        claims
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let flag = |key: &str| match claims.get(key) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s == "true" => Some(true),
        Some(Value::String(s)) if s == "false" => Some(false),
        _ => None,
    };
    fill(&mut user.email, text("email"));
    fill(&mut user.name, text("name"));
    fill(&mut user.nickname, text("nickname"));
    fill(&mut user.given_name, text("given_name"));
    fill(&mut user.family_name, text("family_name"));
    fill(&mut user.picture, text("picture"));
    fill(&mut user.phone_number, text("phone_number"));
    if let Some(verified) = flag("email_verified") {
        user.email_verified |= verified;
    }
    if let Some(verified) = flag("phone_number_verified") {
        user.phone_verified |= verified;
    }
    let updated = match claims.get("updated_at") {
        Some(Value::Number(n)) => n.as_i64().map(rfc3339_from_unix),
        Some(Value::String(s)) if !s.is_empty() => Some(match s.parse::<i64>() {
            Ok(secs) => rfc3339_from_unix(secs),
            Err(_) => s.clone(),
        }),
        _ => None,
    };
    fill(&mut user.updated_at, updated);
    if user.groups.is_empty()
        && let Some(Value::Array(groups)) = claims.get("groups")
    {
        user.groups = groups
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
}

/// Set `slot` from `value` unless it is set already.
fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// The first non-empty value.
fn first_of<const N: usize>(candidates: [Option<String>; N]) -> Option<String> {
    candidates.into_iter().flatten().find(|s| !s.is_empty())
}

/// A claim that is a string, or an array whose first member is one (`aud`).
fn first_str(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .find(|s| !s.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

/// Auth0's `transaction.protocol` for an OAuth grant type (Auth0's names where it has one),
/// else the grant type itself.
fn protocol_for_grant(grant: &str) -> String {
    match grant {
        "authorization_code" => "oidc-basic-profile",
        "refresh_token" => "oauth2-refresh-token",
        "password" => "oauth2-password",
        "client_credentials" => "oauth2-client-credentials",
        "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => "oauth2-device-code",
        "urn:ietf:params:oauth:grant-type:token-exchange" => "oauth2-token-exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => "oauth2-jwt-bearer",
        other => other,
    }
    .to_owned()
}

/// Space-separated scopes.
fn split_scopes(scope: &str) -> Vec<String> {
    scope.split_whitespace().map(str::to_owned).collect()
}

/// Seconds since the epoch as RFC 3339 in UTC (`2024-05-14T12:30:21Z`).
fn rfc3339_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests;
