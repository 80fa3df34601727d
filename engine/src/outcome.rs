//! What a successful run of the pipeline decided, and what each rule did on the way.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::shadow::ShadowReport;
use claimsmith_sdk::{Command, LogLevel};

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
