//! The issuer: config, keys and rules loaded once; per login, the event in and signed tokens
//! (or a typed denial or failure) out.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Header;
use serde_json::{Map, Value, json};

use crate::config::{CacheSetting, Config, ttl_in_range};
use crate::error::{ConfigError, LoginFailure};
use crate::keys::{KeyError, KeySet};
use crate::{access_token, id_token};
use claimsmith_engine::{
    BuildError, Event, EventError, LoginError, LoginEvent, Outcome, Pipeline, Rule,
};

/// Tokens larger than this break common HTTP header limits; past it the login gets a warning.
pub const TOKEN_WARN_BYTES: usize = 8 * 1024;

/// A configured issuer. `Send + Sync`: build once, call [`Issuer::login`] from any thread.
#[derive(Debug)]
pub struct Issuer {
    config: Config,
    keys: KeySet,
    pipeline: Pipeline,
}

/// What a successful login gets.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The signed ID token.
    pub id_token: String,
    /// The signed access token, when the event names an API.
    pub access_token: Option<String>,
    /// The ID token's claims, as signed.
    pub id_token_claims: Map<String, Value>,
    /// The access token's claims, as signed.
    pub access_token_claims: Option<Map<String, Value>>,
    /// What the rules decided, with per-rule traces.
    pub outcome: Outcome,
    /// Things the issuer should know (token size, skipped rules).
    pub warnings: Vec<String>,
    /// Where the login's time went.
    pub timings: LoginTimings,
    /// The login's time, milliseconds since the epoch: what the rules read as
    /// `event.login_time`.
    pub login_time: u64,
}

impl Tokens {
    /// The login's answer as `claimsmith run` prints it and the `claimsmith` hook format
    /// returns it: `id_token`, `access_token` (when issued), the decoded `claims` of each,
    /// `scopes`, `app_metadata`, `user_metadata`, `mfa`, `mfa_allow_remember_browser`,
    /// `authentication` (the rules' challenges and enrollments, in order), `session` (the
    /// expiry asked for, ms since the epoch, or nulls), `login_time` (ms since the epoch), `logs`
    /// and `warnings`.
    pub fn to_json(&self) -> Value {
        let mut claims = json!({"id_token": self.id_token_claims});
        let mut output = json!({"id_token": self.id_token});
        if let (Some(token), Some(access)) = (&self.access_token, &self.access_token_claims) {
            output["access_token"] = json!(token);
            claims["access_token"] = json!(access);
        }
        let outcome = &self.outcome;
        output["claims"] = claims;
        output["scopes"] = json!(outcome.scopes);
        output["app_metadata"] = json!(outcome.app_metadata);
        output["user_metadata"] = json!(outcome.user_metadata);
        output["mfa"] = json!(outcome.mfa);
        output["mfa_allow_remember_browser"] = json!(outcome.mfa_allow_remember_browser);
        output["authentication"] = json!(outcome.authentication);
        output["session"] = json!(outcome.session);
        output["login_time"] = json!(self.login_time);
        output["logs"] = json!(outcome.logs);
        output["warnings"] = json!(self.warnings);
        output
    }
}

/// The latest time a token is signed at: 9999-12-31T23:59:59Z, seconds since the epoch. Past it
/// (or at the epoch itself, a clock that reads before 1970) no token is signed.
const LATEST_SIGNING_TIME: u64 = 253_402_300_799;

/// Seconds since the epoch, now (0 for a clock that reads before the epoch, which signs nothing).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Wall-clock time of one login's two phases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginTimings {
    /// Running every rule and applying its commands (the pipeline).
    pub rules: Duration,
    /// Building the claims and signing both tokens.
    pub minting: Duration,
    /// Running the shadow rules and comparing their decisions (not in `rules`).
    pub shadows: Duration,
}

impl Issuer {
    /// Load the config at `path`, its keys and every rule module.
    pub fn from_config_file(path: &Path) -> Result<Issuer, ConfigError> {
        Issuer::from_config(Config::load(path)?)
    }

    /// Load keys and rule modules for a checked config.
    pub fn from_config(config: Config) -> Result<Issuer, ConfigError> {
        let keys = KeySet::from_config(&config)?;
        let mut builder = Pipeline::builder()
            .sandbox(config.sandbox.clone())
            .namespaces(config.namespaces.clone())
            .max_claims_bytes(config.claims_bytes)
            .shadow_values(config.shadow_values);
        builder = match &config.cache {
            CacheSetting::Dir(dir) => builder.artifact_cache(dir),
            CacheSetting::Default(Some(dir)) => builder.artifact_cache_if_usable(dir),
            CacheSetting::Default(None) | CacheSetting::Off => builder,
        };
        for rule in &config.rules {
            builder = builder.rule_file(rule.spec.clone(), &rule.module);
        }
        let path = config.path.clone();
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.clone(),
            field: field.into(),
            message,
        };
        // A `Config` built by hand skips `Config::parse`'s checks: the lifetimes are checked
        // again, as the token's `exp` is computed from them.
        for (field, ttl) in [
            ("id_token_ttl", config.id_token_ttl),
            ("access_token_ttl", config.access_token_ttl),
        ] {
            ttl_in_range(ttl).map_err(|message| invalid(field, message))?;
        }
        let pipeline = builder.build().map_err(|error| match error {
            BuildError::Namespaces(message) => invalid("namespaces", message),
            BuildError::Engine(message) => invalid("limits", message),
            BuildError::ArtifactCache(message) => invalid("cache_dir", message),
            BuildError::Rule(source) => ConfigError::Rule {
                path: path.clone(),
                source,
            },
        })?;
        Ok(Issuer {
            config,
            keys,
            pipeline,
        })
    }

    /// Run a login given as JSON bytes.
    pub fn login_json(&self, event: &[u8]) -> Result<Tokens, LoginFailure> {
        self.login(&self.event_from_json(event)?)
    }

    /// Parse and check a login event from JSON bytes (the required fields, each struct an
    /// object), for [`Issuer::login`]: the same check every login takes. Parsed straight into
    /// the typed event, which signing reads; to run the rules alone (`pipeline().run`), the
    /// pipeline's own `event_from_json` is quicker.
    pub fn event_from_json(&self, event: &[u8]) -> Result<LoginEvent, LoginFailure> {
        Ok(self.pipeline.event_from_json_typed(event)?)
    }

    /// [`Issuer::event_from_json`] for an event given as a JSON value.
    pub fn event_from_value(&self, event: Value) -> Result<LoginEvent, LoginFailure> {
        Ok(self.pipeline.event_from_value(event)?)
    }

    /// [`Issuer::event_from_json`] for an event built as a typed [`Event`], without a trip
    /// through JSON ([`claimsmith_engine::Pipeline::event_from_event`]).
    pub fn event_from_event(&self, event: Event) -> Result<LoginEvent, LoginFailure> {
        Ok(self.pipeline.event_from_event(event)?)
    }

    /// Run a login now.
    pub fn login(&self, event: &LoginEvent) -> Result<Tokens, LoginFailure> {
        self.login_at(event, unix_now())
    }

    /// Run a login now with only some of the rules, in config order: `rules` are indexes into
    /// [`Issuer::rules`] (a hook that runs a subset of them). Panics on an index past the rules.
    pub fn login_only(&self, event: &LoginEvent, rules: &[usize]) -> Result<Tokens, LoginFailure> {
        check_subject(event)?;
        let started = Instant::now();
        let ran = self.pipeline.run_only(event, rules);
        self.finish(event, ran, started, unix_now())
    }

    /// Run a login as of `now` (seconds since the epoch).
    pub fn login_at(&self, event: &LoginEvent, now: u64) -> Result<Tokens, LoginFailure> {
        check_subject(event)?;
        let started = Instant::now();
        let ran = self.pipeline.run(event);
        self.finish(event, ran, started, now)
    }

    /// Mint the tokens for what the rules decided, with the login's timings.
    fn finish(
        &self,
        event: &LoginEvent,
        ran: Result<Outcome, LoginError>,
        started: Instant,
        now: u64,
    ) -> Result<Tokens, LoginFailure> {
        let outcome = ran.map_err(|e| match e {
            LoginError::Denied(denied) => LoginFailure::Denied(denied),
            LoginError::RuleFailed(failed) => LoginFailure::RuleFailed(failed),
        })?;
        let ran = started.elapsed();
        let shadows: Duration = outcome.shadows.iter().map(|s| s.duration).sum();
        let mut tokens = self.mint(event, outcome, now)?;
        tokens.timings = LoginTimings {
            rules: ran.saturating_sub(shadows),
            minting: started.elapsed() - ran,
            shadows,
        };
        Ok(tokens)
    }

    fn mint(&self, event: &LoginEvent, outcome: Outcome, now: u64) -> Result<Tokens, LoginFailure> {
        let event = event.event();
        let issuer = &self.config.issuer;
        let key = self.keys.signing();
        let signing = LoginFailure::Signing;
        // With `now` in range and the lifetimes in TTL_RANGE, `exp` cannot overflow.
        if now == 0 || now > LATEST_SIGNING_TIME {
            return Err(signing(KeyError::Sign(format!(
                "the clock reads {now} seconds since the epoch; tokens are signed only between 1970 and 9999"
            ))));
        }
        let id_token_claims = id_token::claims(
            issuer,
            event,
            &outcome.id_token,
            now,
            self.config.id_token_ttl.as_secs(),
        );
        let id_token = key
            .sign(&Header::default(), &id_token_claims)
            .map_err(signing)?;
        let access_token_claims = access_token::claims(
            issuer,
            event,
            &outcome.scopes,
            &outcome.access_token,
            now,
            self.config.access_token_ttl.as_secs(),
        );
        let access_token = match &access_token_claims {
            Some(claims) => {
                let header = Header {
                    typ: Some("at+jwt".into()),
                    ..Header::default()
                };
                Some(key.sign(&header, claims).map_err(signing)?)
            }
            None => None,
        };
        let mut warnings: Vec<String> = outcome
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect();
        for (name, token) in [
            ("id_token", Some(&id_token)),
            ("access_token", access_token.as_ref()),
        ] {
            if let Some(token) = token
                && token.len() > TOKEN_WARN_BYTES
            {
                warnings.push(format!(
                    "the {name} is {} bytes, past {TOKEN_WARN_BYTES} bytes: it may not fit HTTP header limits",
                    token.len()
                ));
            }
        }
        if access_token.is_none()
            && !(outcome.access_token.is_empty() && outcome.scopes_added.is_empty())
        {
            warnings.push("rules set access token claims or scopes, but the event names no resource_server, so no access token was issued".into());
        }
        for warning in &warnings {
            tracing::warn!(target: "claimsmith::login", "{warning}");
        }
        Ok(Tokens {
            id_token,
            access_token,
            id_token_claims,
            access_token_claims,
            outcome,
            warnings,
            timings: LoginTimings::default(),
            login_time: event.login_time,
        })
    }

    /// The public JWKS of every configured key: `{"keys": [..]}`.
    pub fn jwks(&self) -> Value {
        self.keys.jwks()
    }

    /// The checked config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The rules pipeline: the rules run on every login, in order.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        self.pipeline.rules()
    }

    /// The signing keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }
}

/// The longest `sub` an ID token may carry: 255 ASCII characters (OpenID Connect Core,
/// section 2).
const MAX_SUBJECT: usize = 255;

/// Refuse, before any rule runs, a user id no ID token may carry as its `sub`.
fn check_subject(event: &LoginEvent) -> Result<(), LoginFailure> {
    let sub = &event.event().user.user_id;
    if sub.len() > MAX_SUBJECT && sub.chars().count() > MAX_SUBJECT {
        return Err(LoginFailure::BadEvent(EventError::WrongType {
            path: "user.user_id".into(),
            message: format!(
                "is {} characters long: an ID token's `sub` is at most {MAX_SUBJECT} (OpenID Connect Core, section 2)",
                sub.chars().count()
            ),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_issuer_can_be_shared_across_threads() {
        assert_send_sync::<Issuer>();
    }
}
