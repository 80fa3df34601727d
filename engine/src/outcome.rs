//! What a successful run of the pipeline decided, and what each rule did on the way.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::shadow::ShadowReport;
use claimsmith_sdk::{Command, Factor, LogLevel};

/// Everything the rules decided for one login, applied and checked, ready for minting.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Custom claims for the ID token.
    pub id_token: Map<String, Value>,
    /// Custom claims for the access token.
    pub access_token: Map<String, Value>,
    /// The access token's scopes: requested, plus added, minus removed, in order.
    pub scopes: Vec<String>,
    /// Scopes the rules added that were not requested.
    pub scopes_added: Vec<String>,
    /// Requested scopes the rules removed.
    pub scopes_removed: Vec<String>,
    /// `app_metadata` keys to update once the login succeeds (`null` removes).
    pub app_metadata: Map<String, Value>,
    /// `user_metadata` keys to update once the login succeeds (`null` removes).
    pub user_metadata: Map<String, Value>,
    /// MFA providers the rules asked for, in order, each once.
    pub mfa: Vec<String>,
    /// Whether the issuer may skip MFA on a browser the user chose to remember: only when the
    /// rules asked for MFA and every `enable_mfa` allowed it (`allowRememberBrowser`).
    pub mfa_allow_remember_browser: bool,
    /// The authentication challenges and enrollments the rules asked for, in call order, each
    /// once (`api.authentication`): the issuer acts on them as on `mfa`.
    pub authentication: Vec<AuthenticationRequest>,
    /// The session expiry the rules asked for (`api.session`): the issuer acts on it.
    pub session: SessionRequest,
    /// ID-token claims the rules removed (and did not set again): an issuer that already holds
    /// claims of its own, as the hook formats do, takes these out.
    pub id_token_removed: Vec<String>,
    /// Access-token claims the rules removed, likewise.
    pub access_token_removed: Vec<String>,
    /// Log lines from the rules, secrets redacted, capped per rule.
    pub logs: Vec<RuleLog>,
    /// What each rule did.
    pub rules: Vec<RuleTrace>,
    /// Skipped rule failures and warnings (token size).
    pub diagnostics: Vec<Diagnostic>,
    /// What each shadow rule would have changed (empty when none is configured). Nothing of
    /// it is in the fields above.
    pub shadows: Vec<ShadowReport>,
}

/// One of `api.authentication`'s requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthenticationRequest {
    /// Challenge the user with `factor`, or one of `additional_factors`.
    ChallengeWith {
        /// The factor.
        factor: Factor,
        /// The alternatives offered.
        additional_factors: Vec<Factor>,
    },
    /// Challenge the user with any one of `factors`.
    ChallengeWithAny {
        /// The factors.
        factors: Vec<Factor>,
    },
    /// Have the user enroll `factor`, or one of `additional_factors`.
    EnrollWith {
        /// The factor.
        factor: Factor,
        /// The alternatives offered.
        additional_factors: Vec<Factor>,
    },
}

impl AuthenticationRequest {
    /// The command's name: `challenge_with`, `challenge_with_any` or `enroll_with`.
    pub fn op(&self) -> &'static str {
        match self {
            AuthenticationRequest::ChallengeWith { .. } => "challenge_with",
            AuthenticationRequest::ChallengeWithAny { .. } => "challenge_with_any",
            AuthenticationRequest::EnrollWith { .. } => "enroll_with",
        }
    }
}

/// The session's expiry as the rules asked for it (`api.session`), milliseconds since the
/// epoch; of several requests of one kind the earliest wins, so a later rule can shorten a
/// session but never lengthen it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionRequest {
    /// The absolute expiry (`setExpiresAt`).
    pub expires_at: Option<u64>,
    /// The idle expiry (`setIdleExpiresAt`).
    pub idle_expires_at: Option<u64>,
}

impl SessionRequest {
    /// Whether no rule asked for anything.
    pub fn is_empty(&self) -> bool {
        self.expires_at.is_none() && self.idle_expires_at.is_none()
    }
}

/// A log line from a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleLog {
    /// The rule.
    pub rule: String,
    /// Its level.
    pub level: LogLevel,
    /// The message, secrets redacted.
    pub message: String,
}

/// Something the issuer should know that did not stop the login.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// The rule concerned, if any.
    pub rule: Option<String>,
    /// What happened.
    pub message: String,
}

/// How a rule's run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RuleStatus {
    /// Its commands were applied.
    Applied,
    /// It denied the login.
    Denied {
        /// Its reason.
        reason: String,
    },
    /// It failed; with `on_error = "skip"` nothing of it was applied.
    Failed {
        /// Why.
        cause: String,
        /// The kind of failure, as [`RuleFailure::kind`](crate::RuleFailure::kind) names it.
        kind: &'static str,
        /// Whether the login went on without it.
        skipped: bool,
    },
}

/// One rule's run in one login: status, commands and the resources it used.
#[derive(Debug, Clone, Serialize)]
pub struct RuleTrace {
    /// The rule.
    pub rule: String,
    /// How it ended.
    #[serde(flatten)]
    pub status: RuleStatus,
    /// Its commands as returned (empty if it failed before returning).
    pub commands: Vec<Command>,
    /// Instructions used (fuel).
    pub fuel_used: u64,
    /// Peak linear memory in bytes.
    pub peak_memory_bytes: usize,
    /// Wall-clock time of the run, instantiation included.
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e6)
}
