//! Shadow rules' reports: what a rule in `mode = "shadow"` would have changed in a login whose
//! outcome is already final, measured against what the login actually got. Nothing here feeds
//! back into the login; the pipeline (`pipeline.rs`) runs the shadow rules and this module
//! compares their drafts with the enforced one and logs the logins that differ.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::draft::Draft;
use claimsmith_sdk::TokenKind;

/// One shadow rule's run in one login: what it would have changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowReport {
    /// The shadow rule.
    pub rule: String,
    /// The enforcing rule it is the candidate for, if any.
    pub shadows: Option<String>,
    /// How it compares with what the login got.
    #[serde(flatten)]
    pub result: ShadowResult,
    /// Instructions the shadow rule used (fuel).
    pub fuel_used: u64,
    /// Wall-clock time of the shadow rule's run and its comparison: apart from the enforced
    /// rules' time.
    #[serde(serialize_with = "micros", rename = "duration_us")]
    pub duration: Duration,
}

/// How a shadow rule's decision compares with the login's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ShadowResult {
    /// The login would have got exactly the same tokens, scopes, metadata and MFA.
    Same,
    /// The login would have got something else.
    Differs {
        /// What would have changed.
        changes: ShadowChanges,
    },
    /// The login would have been denied.
    WouldDeny {
        /// The deny reason, secrets redacted.
        reason: String,
    },
    /// The shadow rule failed (a limit, a trap, a policy violation): with it enforcing, the
    /// login would have failed (or, with `on_error = "skip"`, gone on without it).
    Failed {
        /// Why, secrets redacted.
        cause: String,
        /// The kind of failure, as [`RuleFailure::kind`](crate::RuleFailure::kind) names it.
        kind: &'static str,
    },
}

impl ShadowResult {
    /// The short name of the result: `same`, `differs`, `would_deny` or `failed` (a metric's
    /// label).
    pub fn label(&self) -> &'static str {
        match self {
            ShadowResult::Same => "same",
            ShadowResult::Differs { .. } => "differs",
            ShadowResult::WouldDeny { .. } => "would_deny",
            ShadowResult::Failed { .. } => "failed",
        }
    }
}

/// What a shadow rule would have changed, against the login as it was.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ShadowChanges {
    /// Claims it would set, change or remove, per token.
    pub claims: Vec<ClaimChange>,
    /// Scopes the access token would have had in addition.
    pub scopes_added: Vec<String>,
    /// Scopes the access token would have lost.
    pub scopes_removed: Vec<String>,
    /// `app_metadata` / `user_metadata` keys whose update would differ.
    pub metadata: Vec<MetadataChange>,
    /// MFA providers that would have been asked for in addition.
    pub mfa_added: Vec<String>,
    /// MFA providers that would no longer have been asked for.
    pub mfa_removed: Vec<String>,
    /// Whether the authentication requests (challenges, enrolments, the remembered-browser
    /// option) would differ.
    pub authentication_changed: bool,
    /// Whether the session expiry asked for would differ.
    pub session_changed: bool,
}

impl ShadowChanges {
    fn is_empty(&self) -> bool {
        self.claims.is_empty()
            && self.scopes_added.is_empty()
            && self.scopes_removed.is_empty()
            && self.metadata.is_empty()
            && self.mfa_added.is_empty()
            && self.mfa_removed.is_empty()
            && !self.authentication_changed
            && !self.session_changed
    }

    /// A one-line summary with names and kinds only, never values: `id_token
    /// https://e.test/roles changed, scope +read`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .claims
            .iter()
            .map(|c| format!("{} {} {}", c.token, c.claim, c.kind.as_str()))
            .collect();
        parts.extend(self.scopes_added.iter().map(|s| format!("scope +{s}")));
        parts.extend(self.scopes_removed.iter().map(|s| format!("scope -{s}")));
        parts.extend(
            self.metadata
                .iter()
                .map(|m| format!("{} {} {}", m.table, m.key, m.kind.as_str())),
        );
        parts.extend(self.mfa_added.iter().map(|p| format!("mfa +{p}")));
        parts.extend(self.mfa_removed.iter().map(|p| format!("mfa -{p}")));
        if self.authentication_changed {
            parts.push("authentication changed".into());
        }
        if self.session_changed {
            parts.push("session changed".into());
        }
        parts.join(", ")
    }
}

/// What would happen to one claim or metadata key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Set where the login has none.
    Set,
    /// Set to another value.
    Changed,
    /// Taken out (not set, or removed from the issuer's own claims).
    Removed,
    /// The login removes it; the shadow would leave it alone.
    Kept,
}

impl ChangeKind {
    /// `set`, `changed`, `removed` or `kept`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Set => "set",
            ChangeKind::Changed => "changed",
            ChangeKind::Removed => "removed",
            ChangeKind::Kept => "kept",
        }
    }
}

/// One claim a shadow rule would set, change or remove.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimChange {
    /// The token.
    pub token: TokenKind,
    /// The claim's name.
    pub claim: String,
    /// What would happen to it.
    pub kind: ChangeKind,
    /// The login's value: only when the pipeline reports values
    /// ([`PipelineBuilder::shadow_values`](crate::PipelineBuilder::shadow_values)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// The shadow's value: only when the pipeline reports values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Value>,
}

/// One metadata key whose update would differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataChange {
    /// `app_metadata` or `user_metadata`.
    pub table: &'static str,
    /// The key.
    pub key: String,
    /// What would happen to its update.
    pub kind: ChangeKind,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e6)
}

/// What a login's claim is: set to a value, removed, or neither.
fn state<'a>(claims: &'a Map<String, Value>, removed: &[String], name: &str) -> State<'a> {
    match claims.get(name) {
        Some(value) => State::Set(value),
        None if removed.iter().any(|r| r == name) => State::Removed,
        None => State::Untouched,
    }
}

#[derive(PartialEq)]
enum State<'a> {
    Set(&'a Value),
    Removed,
    Untouched,
}

/// Compare a shadow's final draft with the login's: `Same`, or `Differs` with every change.
pub(crate) fn compare(actual: &Draft, shadow: &Draft, values: bool) -> ShadowResult {
    let mut changes = ShadowChanges::default();
    for (token, a, a_removed, s, s_removed) in [
        (
            TokenKind::IdToken,
            &actual.id_token,
            &actual.id_token_removed,
            &shadow.id_token,
            &shadow.id_token_removed,
        ),
        (
            TokenKind::AccessToken,
            &actual.access_token,
            &actual.access_token_removed,
            &shadow.access_token,
            &shadow.access_token_removed,
        ),
    ] {
        let mut names: Vec<&String> = a.keys().chain(a_removed).chain(s.keys()).collect();
        names.extend(s_removed);
        names.sort();
        names.dedup();
        for name in names {
            let (was, would) = (state(a, a_removed, name), state(s, s_removed, name));
            let kind = match (&was, &would) {
                _ if was == would => continue,
                (State::Set(_), State::Set(_)) => ChangeKind::Changed,
                (_, State::Set(_)) => ChangeKind::Set,
                (State::Set(_), _) | (State::Untouched, State::Removed) => ChangeKind::Removed,
                (State::Removed, _) => ChangeKind::Kept,
                (State::Untouched, State::Untouched) => continue,
            };
            let value = |state: &State| match state {
                State::Set(value) if values => Some((*value).clone()),
                _ => None,
            };
            changes.claims.push(ClaimChange {
                token,
                claim: name.clone(),
                kind,
                actual: value(&was),
                shadow: value(&would),
            });
        }
    }
    changes.scopes_added = missing_from(&shadow.scopes, &actual.scopes);
    changes.scopes_removed = missing_from(&actual.scopes, &shadow.scopes);
    changes.mfa_added = missing_from(&shadow.mfa, &actual.mfa);
    changes.mfa_removed = missing_from(&actual.mfa, &shadow.mfa);
    changes.authentication_changed = actual.authentication != shadow.authentication
        || actual.mfa_allow_remember_browser != shadow.mfa_allow_remember_browser;
    changes.session_changed = actual.session != shadow.session;
    for (table, a, s) in [
        ("app_metadata", &actual.app_metadata, &shadow.app_metadata),
        (
            "user_metadata",
            &actual.user_metadata,
            &shadow.user_metadata,
        ),
    ] {
        let mut keys: Vec<&String> = a.keys().chain(s.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let kind = match (a.get(key), s.get(key)) {
                (x, y) if x == y => continue,
                (Some(_), Some(_)) => ChangeKind::Changed,
                (None, Some(_)) => ChangeKind::Set,
                (Some(_), None) => ChangeKind::Removed,
                (None, None) => continue,
            };
            changes.metadata.push(MetadataChange {
                table,
                key: key.clone(),
                kind,
            });
        }
    }
    if changes.is_empty() {
        ShadowResult::Same
    } else {
        ShadowResult::Differs { changes }
    }
}

/// The items of `these` that `those` lacks, in order.
fn missing_from(these: &[String], those: &[String]) -> Vec<String> {
    these
        .iter()
        .filter(|x| !those.contains(x))
        .cloned()
        .collect()
}

/// The `claimsmith::shadow` event for a login a shadow rule would have changed: names and kinds
/// only (values are in the report, when the pipeline keeps them, never in the log).
pub(crate) fn log(report: &ShadowReport) {
    let shadows = report.shadows.as_deref().unwrap_or("");
    match &report.result {
        ShadowResult::Same => {}
        ShadowResult::Differs { changes } => {
            tracing::info!(target: "claimsmith::shadow", rule = %report.rule, shadows, result = "differs", changes = %changes.summary(), "shadow rule would change this login");
        }
        ShadowResult::WouldDeny { reason } => {
            tracing::warn!(target: "claimsmith::shadow", rule = %report.rule, shadows, result = "would_deny", reason = %reason, "shadow rule would deny this login");
        }
        ShadowResult::Failed { cause, kind } => {
            tracing::warn!(target: "claimsmith::shadow", rule = %report.rule, shadows, result = "failed", kind = %kind, cause = %cause, "shadow rule failed on this login");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(roles: Value, scopes: &[&str]) -> Draft {
        let mut draft = Draft::default();
        draft.id_token.insert("https://e.test/roles".into(), roles);
        draft.scopes = scopes.iter().map(|s| s.to_string()).collect();
        draft
    }

    #[test]
    fn a_changed_claim_and_scopes_are_named_and_values_only_on_request() {
        let actual = draft(json!(["admin", "editor"]), &["openid", "read"]);
        let shadow = draft(json!(["admin"]), &["openid", "write"]);
        assert_eq!(compare(&actual, &actual.clone(), true), ShadowResult::Same);
        let ShadowResult::Differs { changes } = compare(&actual, &shadow, false) else {
            panic!("differs")
        };
        assert_eq!(
            changes.claims,
            [ClaimChange {
                token: TokenKind::IdToken,
                claim: "https://e.test/roles".into(),
                kind: ChangeKind::Changed,
                actual: None,
                shadow: None,
            }]
        );
        assert_eq!(
            (changes.scopes_added, changes.scopes_removed),
            (vec!["write".to_string()], vec!["read".to_string()])
        );
        let ShadowResult::Differs { changes } = compare(&actual, &shadow, true) else {
            panic!("differs")
        };
        assert_eq!(changes.claims[0].shadow, Some(json!(["admin"])));
        assert!(
            changes
                .summary()
                .contains("id_token https://e.test/roles changed")
        );
    }

    #[test]
    fn a_changed_session_expiry_or_authentication_request_differs() {
        let actual = draft(json!(["admin"]), &["openid"]);
        let mut shadow = actual.clone();
        shadow.session.expires_at = Some(1_800_000_000_000);
        let ShadowResult::Differs { changes } = compare(&actual, &shadow, false) else {
            panic!("a session expiry differs")
        };
        assert!(changes.session_changed && !changes.authentication_changed);
        assert_eq!(changes.summary(), "session changed");
        let mut shadow = actual.clone();
        shadow.mfa_allow_remember_browser = !actual.mfa_allow_remember_browser;
        let ShadowResult::Differs { changes } = compare(&actual, &shadow, false) else {
            panic!("the remembered-browser option differs")
        };
        assert!(changes.authentication_changed);
    }

    #[test]
    fn set_removed_and_kept_claims() {
        let mut actual = Draft::default();
        actual
            .access_token
            .insert("https://e.test/a".into(), json!(1));
        actual.access_token_removed.push("https://e.test/r".into());
        let mut shadow = Draft::default();
        shadow
            .access_token
            .insert("https://e.test/b".into(), json!(2));
        shadow.access_token_removed.push("https://e.test/x".into());
        let ShadowResult::Differs { changes } = compare(&actual, &shadow, false) else {
            panic!("differs")
        };
        let kinds: Vec<(&str, ChangeKind)> = changes
            .claims
            .iter()
            .map(|c| (c.claim.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("https://e.test/a", ChangeKind::Removed),
                ("https://e.test/b", ChangeKind::Set),
                ("https://e.test/r", ChangeKind::Kept),
                ("https://e.test/x", ChangeKind::Removed),
            ]
        );
    }
}
