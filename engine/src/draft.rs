//! The tokens and updates as they stand between rules, and how one rule's commands are applied
//! to them under the claim policy.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::claim_policy::{ClaimPolicy, PolicyViolation};
use crate::error::RuleFailure;
use crate::outcome::{AuthenticationRequest, Outcome, SessionRequest};
use claimsmith_sdk::{Command, Factor, LogLevel, TokenKind};

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
    /// Whether every `enable_mfa` so far allowed a remembered browser.
    pub mfa_allow_remember_browser: bool,
    /// Authentication requests, in call order.
    pub authentication: Vec<AuthenticationRequest>,
    /// The session's expiry asked for.
    pub session: SessionRequest,
    /// ID-token claims a rule removed and no later rule set again: for issuers that already
    /// hold claims of their own (the hook formats), which must take them out.
    pub id_token_removed: Vec<String>,
    /// Access-token claims removed the same way.
    pub access_token_removed: Vec<String>,
    /// Scopes the rules added to those requested (bounded by [`MAX_SCOPES`]).
    pub added_scope_count: usize,
}

impl Draft {
    /// The draft before any rule: the requested scopes, each once, in order. An element may
    /// hold several scopes separated by spaces, as OAuth's `scope` parameter does: each is
    /// one scope here, so a rule can remove it.
    pub(crate) fn requesting(requested: &[String]) -> Draft {
        let mut draft = Draft::default();
        let many = scope_tokens(requested).nth(FEW).is_some();
        let mut seen = HashSet::new();
        for scope in scope_tokens(requested) {
            let new = if many {
                seen.insert(scope)
            } else {
                !draft.scopes.iter().any(|s| s == scope)
            };
            if new {
                draft.scopes.push(scope.to_owned());
            }
        }
        draft
    }

    /// Move what the rules decided into `outcome`, with the scopes added and removed against
    /// those `requested`.
    pub(crate) fn decide(self, requested: &[String], outcome: &mut Outcome) {
        let many = self.scopes.len() > FEW || scope_tokens(requested).nth(FEW).is_some();
        {
            let (mut asked, mut kept) = (HashSet::new(), HashSet::new());
            if many {
                asked.extend(scope_tokens(requested));
                kept.extend(self.scopes.iter().map(String::as_str));
            }
            let is_asked = |scope: &str| match many {
                true => asked.contains(scope),
                false => scope_tokens(requested).any(|r| r == scope),
            };
            let is_kept = |scope: &str| match many {
                true => kept.contains(scope),
                false => self.scopes.iter().any(|s| s == scope),
            };
            outcome.scopes_added = self
                .scopes
                .iter()
                .filter(|s| !is_asked(s))
                .cloned()
                .collect();
            outcome.scopes_removed = Vec::new();
            let mut listed = HashSet::new();
            for scope in scope_tokens(requested) {
                let new = match many {
                    true => listed.insert(scope),
                    false => !outcome.scopes_removed.iter().any(|s| s == scope),
                };
                if !is_kept(scope) && new {
                    outcome.scopes_removed.push(scope.to_owned());
                }
            }
        }
        outcome.id_token = self.id_token;
        outcome.access_token = self.access_token;
        outcome.scopes = self.scopes;
        outcome.app_metadata = self.app_metadata;
        outcome.user_metadata = self.user_metadata;
        outcome.mfa = self.mfa;
        outcome.mfa_allow_remember_browser = self.mfa_allow_remember_browser;
        outcome.authentication = self.authentication;
        outcome.session = self.session;
        outcome.id_token_removed = self.id_token_removed;
        outcome.access_token_removed = self.access_token_removed;
    }
}

/// Past this many scopes, membership is looked up in a hash set rather than scanned for.
const FEW: usize = 16;

/// Each scope of `requested`, whose elements may hold several separated by spaces.
fn scope_tokens(requested: &[String]) -> impl Iterator<Item = &str> {
    requested.iter().flat_map(|s| s.split_ascii_whitespace())
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

/// Most commands one rule's result may hold. Applying them is host work that neither fuel nor
/// the deadline meters, so it is bounded here, as are the lists they grow below.
pub(crate) const MAX_COMMANDS: usize = 4096;
/// Most scopes the rules of a login may add to those requested.
pub(crate) const MAX_SCOPES: usize = 1024;
/// Longest scope a rule may add, in bytes.
pub(crate) const MAX_SCOPE_BYTES: usize = 256;
/// Most claims the rules may list as removed, per token.
pub(crate) const MAX_REMOVED: usize = 1024;
/// Most MFA providers, and most authentication requests, a login may ask for.
pub(crate) const MAX_REQUESTS: usize = 64;

/// A rule's result over one of the bounds above.
fn over(what: String) -> Stop {
    Stop::Failed(RuleFailure::InvalidResult(what))
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
    // Which tokens' claims changed: only those need their size checked again.
    let (mut id_token_changed, mut access_token_changed) = (false, false);
    let mut changed = |token: TokenKind| match token {
        TokenKind::IdToken => id_token_changed = true,
        TokenKind::AccessToken => access_token_changed = true,
    };
    if commands.len() > MAX_COMMANDS {
        return Err(over(format!(
            "{} commands, over the {MAX_COMMANDS} a rule may return",
            commands.len()
        )));
    }
    for command in commands {
        match command {
            Command::SetClaim { token, name, value } => {
                policy.check_claim_name(*token, name, namespaces)?;
                policy.check_claim_value(*token, name, value)?;
                claims_of(draft, *token).insert(name.clone(), value.clone());
                removed_of(draft, *token).retain(|n| n != name);
                changed(*token);
            }
            Command::RemoveClaim { token, name } => {
                policy.check_claim_name(*token, name, namespaces)?;
                claims_of(draft, *token).remove(name);
                let removed = removed_of(draft, *token);
                if !removed.contains(name) {
                    if removed.len() >= MAX_REMOVED {
                        return Err(over(format!(
                            "more than {MAX_REMOVED} claims removed from the {token}"
                        )));
                    }
                    removed.push(name.clone());
                }
                changed(*token);
            }
            Command::AddScope { scope } => {
                policy.check_scope(scope)?;
                if !draft.scopes.contains(scope) {
                    if scope.len() > MAX_SCOPE_BYTES {
                        return Err(over(format!(
                            "a scope of {} bytes, over the {MAX_SCOPE_BYTES} a rule may add",
                            scope.len()
                        )));
                    }
                    if draft.added_scope_count >= MAX_SCOPES {
                        return Err(over(format!(
                            "more than {MAX_SCOPES} scopes added to those requested"
                        )));
                    }
                    draft.added_scope_count += 1;
                    draft.scopes.push(scope.clone());
                }
            }
            Command::RemoveScope { scope } => {
                policy.check_scope(scope)?;
                draft.scopes.retain(|s| s != scope);
            }
            Command::Deny { reason } => {
                return Err(Stop::Denied(crate::error::cut_text(policy.redact(reason))));
            }
            Command::SetAppMetadata { key, value } => {
                policy.check_metadata("app_metadata", key, value)?;
                draft.app_metadata.insert(key.clone(), value.clone());
            }
            Command::SetUserMetadata { key, value } => {
                policy.check_metadata("user_metadata", key, value)?;
                draft.user_metadata.insert(key.clone(), value.clone());
            }
            Command::EnableMfa {
                provider,
                allow_remember_browser,
            } => {
                if provider.trim().is_empty() {
                    return Err(Stop::Failed(RuleFailure::InvalidResult(
                        "enable_mfa needs a non-empty provider".into(),
                    )));
                }
                policy.check_mfa_provider(provider)?;
                draft.mfa_allow_remember_browser = if draft.mfa.is_empty() {
                    *allow_remember_browser
                } else {
                    draft.mfa_allow_remember_browser && *allow_remember_browser
                };
                if !draft.mfa.contains(provider) {
                    if draft.mfa.len() >= MAX_REQUESTS {
                        return Err(over(format!("more than {MAX_REQUESTS} MFA providers")));
                    }
                    draft.mfa.push(provider.clone());
                }
            }
            Command::ChallengeWith {
                factor,
                additional_factors,
            } => {
                check_factors(policy, "challenge_with", std::slice::from_ref(factor))?;
                check_factors(policy, "challenge_with", additional_factors)?;
                push_request(
                    draft,
                    AuthenticationRequest::ChallengeWith {
                        factor: factor.clone(),
                        additional_factors: additional_factors.clone(),
                    },
                )?;
            }
            Command::ChallengeWithAny { factors } => {
                if factors.is_empty() {
                    return Err(Stop::Failed(RuleFailure::InvalidResult(
                        "challenge_with_any needs at least one factor".into(),
                    )));
                }
                check_factors(policy, "challenge_with_any", factors)?;
                push_request(
                    draft,
                    AuthenticationRequest::ChallengeWithAny {
                        factors: factors.clone(),
                    },
                )?;
            }
            Command::EnrollWith {
                factor,
                additional_factors,
            } => {
                check_factors(policy, "enroll_with", std::slice::from_ref(factor))?;
                check_factors(policy, "enroll_with", additional_factors)?;
                push_request(
                    draft,
                    AuthenticationRequest::EnrollWith {
                        factor: factor.clone(),
                        additional_factors: additional_factors.clone(),
                    },
                )?;
            }
            Command::SetSessionExpiresAt { expires_at } => {
                earliest(
                    &mut draft.session.expires_at,
                    *expires_at,
                    "set_session_expires_at",
                )?;
            }
            Command::SetSessionIdleExpiresAt { idle_expires_at } => {
                earliest(
                    &mut draft.session.idle_expires_at,
                    *idle_expires_at,
                    "set_session_idle_expires_at",
                )?;
            }
            Command::Log { level, message } => log(*level, message),
        }
    }
    if id_token_changed {
        policy.check_size(TokenKind::IdToken, &draft.id_token)?;
    }
    if access_token_changed {
        policy.check_size(TokenKind::AccessToken, &draft.access_token)?;
    }
    Ok(())
}

/// Each factor of a request: a type Auth0 names, no secret in it.
fn check_factors(policy: &ClaimPolicy, op: &str, factors: &[Factor]) -> Result<(), Stop> {
    for factor in factors {
        if !Factor::TYPES.contains(&factor.kind.as_str()) {
            return Err(Stop::Failed(RuleFailure::InvalidResult(format!(
                "{op}: unknown factor type `{}` (one of {})",
                factor.kind,
                Factor::TYPES.join(", ")
            ))));
        }
        policy.check_factor(factor)?;
    }
    Ok(())
}

/// Add an authentication request unless the same one was asked for already.
fn push_request(draft: &mut Draft, request: AuthenticationRequest) -> Result<(), Stop> {
    if !draft.authentication.contains(&request) {
        if draft.authentication.len() >= MAX_REQUESTS {
            return Err(over(format!(
                "more than {MAX_REQUESTS} authentication requests"
            )));
        }
        draft.authentication.push(request);
    }
    Ok(())
}

/// Keep the earlier of two expiries: a rule can shorten a session, never lengthen it.
fn earliest(current: &mut Option<u64>, at: u64, op: &str) -> Result<(), Stop> {
    if at == 0 {
        return Err(Stop::Failed(RuleFailure::InvalidResult(format!(
            "{op} needs a time after the epoch (milliseconds)"
        ))));
    }
    *current = Some(current.map_or(at, |c| c.min(at)));
    Ok(())
}

fn claims_of(draft: &mut Draft, token: TokenKind) -> &mut Map<String, Value> {
    match token {
        TokenKind::IdToken => &mut draft.id_token,
        TokenKind::AccessToken => &mut draft.access_token,
    }
}

fn removed_of(draft: &mut Draft, token: TokenKind) -> &mut Vec<String> {
    match token {
        TokenKind::IdToken => &mut draft.id_token_removed,
        TokenKind::AccessToken => &mut draft.access_token_removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(token: TokenKind, name: &str, value: Value) -> Command {
        Command::SetClaim {
            token,
            name: name.into(),
            value,
        }
    }

    fn apply_all(
        policy: &ClaimPolicy,
        draft: &mut Draft,
        commands: &[Command],
    ) -> Result<(), Stop> {
        let namespaces = policy.namespaces().to_vec();
        apply(policy, &namespaces, commands, draft, &mut |_, _| {})
    }

    #[test]
    fn a_removed_claim_is_listed_until_a_later_command_sets_it_again() {
        let policy = ClaimPolicy::new(vec!["https://e.test/".into()]).unwrap();
        let mut draft = Draft::default();
        let remove = |name: &str| Command::RemoveClaim {
            token: TokenKind::AccessToken,
            name: name.into(),
        };
        apply_all(
            &policy,
            &mut draft,
            &[remove("https://e.test/a"), remove("https://e.test/b")],
        )
        .unwrap();
        assert_eq!(
            draft.access_token_removed,
            ["https://e.test/a", "https://e.test/b"]
        );
        apply_all(
            &policy,
            &mut draft,
            &[
                set(TokenKind::AccessToken, "https://e.test/a", json!(1)),
                remove("https://e.test/b"),
            ],
        )
        .unwrap();
        assert_eq!(draft.access_token_removed, ["https://e.test/b"]);
        assert!(draft.id_token_removed.is_empty());
        assert_eq!(draft.access_token["https://e.test/a"], json!(1));
    }

    #[test]
    fn the_size_cap_holds_across_rules_for_the_token_that_grew() {
        let policy = ClaimPolicy::new(vec!["https://e.test/".into()])
            .unwrap()
            .with_max_claims_bytes(1024);
        let mut draft = Draft::default();
        let blob = |n: usize| json!("x".repeat(n));
        // Each rule alone stays under the cap; together the ID token goes over it.
        apply_all(
            &policy,
            &mut draft,
            &[set(TokenKind::IdToken, "https://e.test/a", blob(600))],
        )
        .unwrap();
        // A rule that only touches the access token or scopes passes: the ID token did not change.
        apply_all(
            &policy,
            &mut draft,
            &[
                set(TokenKind::AccessToken, "https://e.test/a", blob(600)),
                Command::AddScope {
                    scope: "read:x".into(),
                },
            ],
        )
        .unwrap();
        let err = apply_all(
            &policy,
            &mut draft,
            &[set(TokenKind::IdToken, "https://e.test/b", blob(600))],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Stop::Failed(RuleFailure::Policy(PolicyViolation::TooLarge {
                    token: TokenKind::IdToken,
                    limit: 1024,
                    ..
                }))
            ),
            "{err:?}"
        );
        // Growing the access token past the cap is caught the same way.
        let err = apply_all(
            &policy,
            &mut draft,
            &[set(TokenKind::AccessToken, "https://e.test/b", blob(600))],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Stop::Failed(RuleFailure::Policy(PolicyViolation::TooLarge {
                    token: TokenKind::AccessToken,
                    ..
                }))
            ),
            "{err:?}"
        );
    }

    #[test]
    fn authentication_and_session_requests_are_checked_kept_in_order_and_the_earliest_expiry_wins()
    {
        let policy = ClaimPolicy::new(vec!["https://e.test/".into()]).unwrap();
        let mut draft = Draft::default();
        let commands = [
            Command::EnableMfa {
                provider: "any".into(),
                allow_remember_browser: true,
            },
            Command::ChallengeWith {
                factor: Factor::new("otp"),
                additional_factors: vec![Factor::new("email")],
            },
            Command::ChallengeWithAny {
                factors: vec![Factor::new("phone")],
            },
            Command::ChallengeWith {
                factor: Factor::new("otp"),
                additional_factors: vec![Factor::new("email")],
            },
            Command::SetSessionExpiresAt { expires_at: 2_000 },
            Command::SetSessionExpiresAt { expires_at: 1_000 },
            Command::SetSessionExpiresAt { expires_at: 3_000 },
            Command::SetSessionIdleExpiresAt {
                idle_expires_at: 500,
            },
        ];
        apply_all(&policy, &mut draft, &commands).unwrap();
        assert!(draft.mfa_allow_remember_browser);
        assert_eq!(
            draft
                .authentication
                .iter()
                .map(AuthenticationRequest::op)
                .collect::<Vec<_>>(),
            ["challenge_with", "challenge_with_any"]
        );
        assert_eq!(draft.session.expires_at, Some(1_000));
        assert_eq!(draft.session.idle_expires_at, Some(500));
        // One enable_mfa without the option takes the remembered browser away.
        let plain = Command::EnableMfa {
            provider: "duo".into(),
            allow_remember_browser: false,
        };
        apply_all(&policy, &mut draft, &[plain]).unwrap();
        assert!(!draft.mfa_allow_remember_browser);

        for (bad, expected) in [
            (
                Command::ChallengeWith {
                    factor: Factor::new("sms"),
                    additional_factors: vec![],
                },
                "unknown factor type `sms`",
            ),
            (
                Command::EnrollWith {
                    factor: Factor::new("otp"),
                    additional_factors: vec![Factor::new("carrier-pigeon")],
                },
                "unknown factor type `carrier-pigeon`",
            ),
            (
                Command::ChallengeWithAny { factors: vec![] },
                "at least one factor",
            ),
            (
                Command::SetSessionExpiresAt { expires_at: 0 },
                "after the epoch",
            ),
        ] {
            match apply_all(&policy, &mut Draft::default(), &[bad]) {
                Err(Stop::Failed(RuleFailure::InvalidResult(m))) => {
                    assert!(m.contains(expected), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// What a bound refused, or `None` if the commands applied.
    fn refused(draft: &mut Draft, commands: &[Command]) -> Option<String> {
        let policy = ClaimPolicy::new(vec!["https://e.test/".into()]).unwrap();
        match apply_all(&policy, draft, commands) {
            Ok(()) => None,
            Err(Stop::Failed(RuleFailure::InvalidResult(message))) => Some(message),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rules_commands_and_the_lists_they_grow_are_bounded() {
        let add = |i: usize| Command::AddScope {
            scope: format!("s{i}"),
        };
        // Commands: at most MAX_COMMANDS, repeats included.
        let many: Vec<Command> = (0..=MAX_COMMANDS).map(|_| add(0)).collect();
        let message = refused(&mut Draft::default(), &many).expect("refused");
        assert!(
            message.contains("4097 commands, over the 4096"),
            "{message}"
        );
        assert_eq!(refused(&mut Draft::default(), &many[1..]), None);
        // Scopes: at most MAX_SCOPES in the draft, across rules; a repeat is not one more.
        let mut draft = Draft::default();
        let scopes: Vec<Command> = (0..MAX_SCOPES).map(add).collect();
        assert_eq!(refused(&mut draft, &scopes), None);
        assert_eq!(refused(&mut draft, &[add(0)]), None);
        let message = refused(&mut draft, &[add(MAX_SCOPES)]).expect("refused");
        assert!(message.contains("more than 1024 scopes added"), "{message}");
        // Scopes the issuer asked for do not count, and one of them may be long.
        let long = "y".repeat(MAX_SCOPE_BYTES + 1);
        let asked: Vec<String> = (0..2 * MAX_SCOPES)
            .map(|i| format!("r{i}"))
            .chain([long.clone()])
            .collect();
        let mut draft = Draft::requesting(&asked);
        let again = Command::AddScope { scope: long };
        assert_eq!(refused(&mut draft, &[add(0), again]), None);
        let long = Command::AddScope {
            scope: "x".repeat(MAX_SCOPE_BYTES + 1),
        };
        let message = refused(&mut Draft::default(), &[long]).expect("refused");
        assert!(message.contains("257 bytes, over the 256"), "{message}");
        // Removed claims, per token.
        let remove = |i: usize| Command::RemoveClaim {
            token: TokenKind::IdToken,
            name: format!("https://e.test/c{i}"),
        };
        let mut draft = Draft::default();
        let removals: Vec<Command> = (0..MAX_REMOVED).map(remove).collect();
        assert_eq!(refused(&mut draft, &removals), None);
        let message = refused(&mut draft, &[remove(MAX_REMOVED)]).expect("refused");
        assert!(
            message.contains("more than 1024 claims removed from the id_token"),
            "{message}"
        );
        // MFA providers.
        let mfa = |i: usize| Command::EnableMfa {
            provider: format!("p{i}"),
            allow_remember_browser: false,
        };
        let mut draft = Draft::default();
        let providers: Vec<Command> = (0..MAX_REQUESTS).map(mfa).collect();
        assert_eq!(refused(&mut draft, &providers), None);
        let message = refused(&mut draft, &[mfa(MAX_REQUESTS)]).expect("refused");
        assert!(message.contains("more than 64 MFA providers"), "{message}");
        // A denial's reason is cut like a failure's text.
        let policy = ClaimPolicy::new(vec!["https://e.test/".into()]).unwrap();
        let deny = Command::Deny {
            reason: "x".repeat(300_000),
        };
        match apply_all(&policy, &mut Draft::default(), &[deny]) {
            Err(Stop::Denied(reason)) => assert_eq!(reason.len(), 16 << 10),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_requested_element_with_several_scopes_counts_each_and_each_can_be_removed() {
        let requested: Vec<String> = ["openid profile", "", " email  ", "openid"]
            .map(String::from)
            .to_vec();
        let mut draft = Draft::requesting(&requested);
        assert_eq!(draft.scopes, ["openid", "profile", "email"]);
        let remove = Command::RemoveScope {
            scope: "profile".into(),
        };
        let add = Command::AddScope {
            scope: "reports:read".into(),
        };
        assert_eq!(refused(&mut draft, &[remove, add]), None);
        let mut outcome = Outcome::default();
        draft.decide(&requested, &mut outcome);
        assert_eq!(outcome.scopes, ["openid", "email", "reports:read"]);
        assert_eq!(outcome.scopes_removed, ["profile"]);
        assert_eq!(outcome.scopes_added, ["reports:read"]);
        // The same past FEW scopes, where they are looked up in hash sets.
        let many: Vec<String> = requested
            .iter()
            .cloned()
            .chain((0..2 * FEW).map(|i| format!("s{} s{i}", i % 3)))
            .collect();
        let mut draft = Draft::requesting(&many);
        assert_eq!(draft.scopes.len(), 3 + 2 * FEW);
        let remove = |scope: &str| Command::RemoveScope {
            scope: scope.into(),
        };
        let add = Command::AddScope {
            scope: "reports:read".into(),
        };
        assert_eq!(
            refused(&mut draft, &[remove("profile"), remove("s1"), add]),
            None
        );
        let mut outcome = Outcome::default();
        draft.decide(&many, &mut outcome);
        assert_eq!(outcome.scopes_removed, ["profile", "s1"]);
        assert_eq!(outcome.scopes_added, ["reports:read"]);
        assert_eq!(outcome.scopes.len(), 3 + 2 * FEW - 1);
    }
}
