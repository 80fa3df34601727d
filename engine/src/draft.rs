//! The tokens and updates as they stand between rules, and how one rule's commands are applied
//! to them under the claim policy.

use serde_json::{Map, Value};

use crate::claim_policy::{ClaimPolicy, PolicyViolation};
use crate::error::RuleFailure;
use claimsmith_sdk::{Command, LogLevel, TokenKind};

/// Claims, scopes, metadata and MFA requests decided so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    /// Custom claims of the ID token.
    pub id_token: Map<String, Value>,
    /// Custom claims of the access token.
    pub access_token: Map<String, Value>,
    /// Scopes, in order.
    pub scopes: Vec<String>,
    /// `app_metadata` updates.
    pub app_metadata: Map<String, Value>,
    /// `user_metadata` updates.
    pub user_metadata: Map<String, Value>,
    /// MFA providers asked for.
    pub mfa: Vec<String>,
}

/// How applying a rule's commands stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The rule denied the login (reason redacted).
    Denied(String),
    /// A command was refused.
    Failed(RuleFailure),
}

impl From<PolicyViolation> for Stop {
    fn from(v: PolicyViolation) -> Self {
        Stop::Failed(RuleFailure::Policy(v))
    }
}

/// Apply `commands` in order to `draft` for a rule allowed `namespaces`; log lines go to `log`.
/// On `Err` the draft may be partly changed: callers that need atomicity apply to a copy.
pub fn apply(
    policy: &ClaimPolicy,
    namespaces: &[String],
    commands: &[Command],
    draft: &mut Draft,
    log: &mut dyn FnMut(LogLevel, &str),
) -> Result<(), Stop> {
    for command in commands {
        match command {
            Command::SetClaim { token, name, value } => {
                policy.check_claim_name(*token, name, namespaces)?;
                policy.check_claim_value(*token, name, value)?;
                claims_of(draft, *token).insert(name.clone(), value.clone());
            }
            Command::RemoveClaim { token, name } => {
                policy.check_claim_name(*token, name, namespaces)?;
                claims_of(draft, *token).remove(name);
            }
            Command::AddScope { scope } => {
                policy.check_scope(scope)?;
                if !draft.scopes.contains(scope) {
                    draft.scopes.push(scope.clone());
                }
            }
            Command::RemoveScope { scope } => {
                policy.check_scope(scope)?;
                draft.scopes.retain(|s| s != scope);
            }
            Command::Deny { reason } => return Err(Stop::Denied(policy.redact(reason))),
            Command::SetAppMetadata { key, value } => {
                policy.check_metadata("app_metadata", key, value)?;
                draft.app_metadata.insert(key.clone(), value.clone());
            }
            Command::SetUserMetadata { key, value } => {
                policy.check_metadata("user_metadata", key, value)?;
                draft.user_metadata.insert(key.clone(), value.clone());
            }
            Command::EnableMfa { provider } => {
                if provider.trim().is_empty() {
                    return Err(Stop::Failed(RuleFailure::InvalidResult(
                        "enable_mfa needs a non-empty provider".into(),
                    )));
                }
                policy.check_mfa_provider(provider)?;
                if !draft.mfa.contains(provider) {
                    draft.mfa.push(provider.clone());
                }
            }
            Command::Log { level, message } => log(*level, message),
        }
    }
    policy.check_size(TokenKind::IdToken, &draft.id_token)?;
    policy.check_size(TokenKind::AccessToken, &draft.access_token)?;
    Ok(())
}

fn claims_of(draft: &mut Draft, token: TokenKind) -> &mut Map<String, Value> {
    match token {
        TokenKind::IdToken => &mut draft.id_token,
        TokenKind::AccessToken => &mut draft.access_token,
    }
}
