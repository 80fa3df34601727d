//! The commands a rule returns: the result half of the guest ABI (JSON in version 1, the binary
//! form of [`binary_result`](crate::binary_result) from version 2). Version 4 added the
//! authentication and session commands and `enable_mfa`'s `allow_remember_browser`
//! ([`Command::since_abi_version`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which token a claim command targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// The OpenID Connect ID token, read by the client application.
    IdToken,
    /// The RFC 9068 access token, read by the API (resource server).
    AccessToken,
}

impl TokenKind {
    /// The ABI name of the token: `id_token` or `access_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::IdToken => "id_token",
            TokenKind::AccessToken => "access_token",
        }
    }
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of a rule's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Fine detail.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something is wrong.
    Error,
}

impl LogLevel {
    /// The ABI name of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// The level for the host import `claimsmith.log`'s `level` argument (0 = trace .. 4 = error).
    pub fn from_i32(level: i32) -> Option<LogLevel> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => return None,
        })
    }
}

/// One decision of a rule. The host applies a rule's commands in order, all or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Set a namespaced custom claim on one token.
    SetClaim {
        /// The token.
        token: TokenKind,
        /// The claim name, under an allowed namespace.
        name: String,
        /// Any JSON value.
        value: Value,
    },
    /// Remove a custom claim an earlier rule (or this one) set.
    RemoveClaim {
        /// The token.
        token: TokenKind,
        /// The claim name.
        name: String,
    },
    /// Grant a scope on the access token.
    AddScope {
        /// The scope.
        scope: String,
    },
    /// Take a requested or added scope away from the access token.
    RemoveScope {
        /// The scope.
        scope: String,
    },
    /// Refuse the login; later rules do not run.
    Deny {
        /// Shown to the client as `error_description`.
        reason: String,
    },
    /// Update one key of the user's `app_metadata` once the login succeeds.
    SetAppMetadata {
        /// The key.
        key: String,
        /// The value (`null` removes the key).
        value: Value,
    },
    /// Update one key of the user's `user_metadata` once the login succeeds.
    SetUserMetadata {
        /// The key.
        key: String,
        /// The value (`null` removes the key).
        value: Value,
    },
    /// Ask the issuer to require multi-factor authentication with a provider.
    EnableMfa {
        /// The provider, as the issuer names it (`any`, `guardian`, `duo`, ...).
        provider: String,
        /// Whether the user may skip MFA on a browser they chose to remember (Auth0's
        /// `allowRememberBrowser`). ABI version 4; absent (false) before.
        #[serde(default, skip_serializing_if = "is_false")]
        allow_remember_browser: bool,
    },
    /// Ask the issuer to challenge the user with a factor (Auth0's
    /// `api.authentication.challengeWith`), offering the `additional_factors` as alternatives.
    /// ABI version 4.
    ChallengeWith {
        /// The factor to challenge with.
        factor: Factor,
        /// Factors the user may choose instead.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        additional_factors: Vec<Factor>,
    },
    /// Ask the issuer to challenge the user with any one of the factors, the user's choice
    /// (Auth0's `api.authentication.challengeWithAny`). ABI version 4.
    ChallengeWithAny {
        /// The factors.
        factors: Vec<Factor>,
    },
    /// Ask the issuer to have the user enroll a factor (Auth0's
    /// `api.authentication.enrollWith`), offering the `additional_factors` as alternatives.
    /// ABI version 4.
    EnrollWith {
        /// The factor to enroll.
        factor: Factor,
        /// Factors the user may enroll instead.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        additional_factors: Vec<Factor>,
    },
    /// Ask the issuer to end the session at an absolute time (Auth0's
    /// `api.session.setExpiresAt`). ABI version 4.
    SetSessionExpiresAt {
        /// Milliseconds since the epoch.
        expires_at: u64,
    },
    /// Ask the issuer to end the session if it stays idle until an absolute time (Auth0's
    /// `api.session.setIdleExpiresAt`). ABI version 4.
    SetSessionIdleExpiresAt {
        /// Milliseconds since the epoch.
        idle_expires_at: u64,
    },
    /// A log line for the issuer's logs.
    Log {
        /// The level.
        level: LogLevel,
        /// The message.
        message: String,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An authentication factor a rule names (Auth0's factor object: `{type, options}`).
///
/// ```
/// let f: claimsmith_sdk::Factor =
///     serde_json::from_str(r#"{"type": "phone", "options": {"preferredMethod": "voice"}}"#).unwrap();
/// assert_eq!(f.kind, "phone");
/// assert_eq!(serde_json::to_value(claimsmith_sdk::Factor::new("otp")).unwrap(),
///            serde_json::json!({"type": "otp"}));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Factor {
    /// The factor's type: one of [`Factor::TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Its options (`preferredMethod` for `phone`: `sms`, `voice` or `both`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub options: serde_json::Map<String, Value>,
}

impl Factor {
    /// The factor types Auth0 names, which the host accepts.
    pub const TYPES: [&'static str; 7] = [
        "otp",
        "recovery-code",
        "email",
        "push-notification",
        "phone",
        "webauthn-platform",
        "webauthn-roaming",
    ];

    /// A factor of `kind`, without options.
    pub fn new(kind: impl Into<String>) -> Factor {
        Factor {
            kind: kind.into(),
            options: Default::default(),
        }
    }

    /// The factor with one option set.
    pub fn with_option(mut self, name: impl Into<String>, value: impl Into<Value>) -> Factor {
        self.options.insert(name.into(), value.into());
        self
    }
}

impl From<&str> for Factor {
    fn from(kind: &str) -> Factor {
        Factor::new(kind)
    }
}

impl Command {
    /// The command's `op` (`set_claim`, `challenge_with`, ...).
    pub fn op(&self) -> &'static str {
        match self {
            Command::SetClaim { .. } => "set_claim",
            Command::RemoveClaim { .. } => "remove_claim",
            Command::AddScope { .. } => "add_scope",
            Command::RemoveScope { .. } => "remove_scope",
            Command::Deny { .. } => "deny",
            Command::SetAppMetadata { .. } => "set_app_metadata",
            Command::SetUserMetadata { .. } => "set_user_metadata",
            Command::EnableMfa { .. } => "enable_mfa",
            Command::ChallengeWith { .. } => "challenge_with",
            Command::ChallengeWithAny { .. } => "challenge_with_any",
            Command::EnrollWith { .. } => "enroll_with",
            Command::SetSessionExpiresAt { .. } => "set_session_expires_at",
            Command::SetSessionIdleExpiresAt { .. } => "set_session_idle_expires_at",
            Command::Log { .. } => "log",
        }
    }

    /// The first guest ABI version whose modules may return this command (4 for
    /// `enable_mfa` with `allow_remember_browser`, which version 4 added): the host refuses it
    /// from a module of an older version.
    pub fn since_abi_version(&self) -> i32 {
        match self {
            Command::EnableMfa {
                allow_remember_browser: true,
                ..
            }
            | Command::ChallengeWith { .. }
            | Command::ChallengeWithAny { .. }
            | Command::EnrollWith { .. }
            | Command::SetSessionExpiresAt { .. }
            | Command::SetSessionIdleExpiresAt { .. } => 4,
            _ => 1,
        }
    }
}

/// What `claimsmith_on_execute_post_login` returns, as JSON: `{"commands": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleResult {
    /// The commands, applied in order.
    pub commands: Vec<Command>,
}

impl RuleResult {
    /// The value the rule set for `name` on the ID token, after all its commands.
    pub fn id_token_claim(&self, name: &str) -> Option<&Value> {
        self.claim(TokenKind::IdToken, name)
    }

    /// The value the rule set for `name` on the access token, after all its commands.
    pub fn access_token_claim(&self, name: &str) -> Option<&Value> {
        self.claim(TokenKind::AccessToken, name)
    }

    /// The value the rule left for `name` on `token`, after all its commands.
    pub fn claim(&self, token: TokenKind, name: &str) -> Option<&Value> {
        let mut current = None;
        for command in &self.commands {
            match command {
                Command::SetClaim {
                    token: t,
                    name: n,
                    value,
                } if *t == token && n == name => current = Some(value),
                Command::RemoveClaim { token: t, name: n } if *t == token && n == name => {
                    current = None
                }
                _ => {}
            }
        }
        current
    }

    /// The scopes the rule added and did not remove again.
    pub fn scopes_added(&self) -> Vec<&str> {
        self.net_scopes(true)
    }

    /// The scopes the rule removed and did not add again.
    ///
    /// ```
    /// use claimsmith_sdk::{Api, Event};
    /// fn rule(_: &Event, api: &mut Api) {
    ///     api.access_token().remove_scope("a").remove_scope("b").add_scope("b");
    /// }
    /// claimsmith_sdk::export_rule!(rule);
    /// let result = claimsmith_sdk::testing::run(RULE, &Default::default());
    /// assert_eq!(result.scopes_removed(), ["a"]);
    /// assert_eq!(result.scopes_added(), ["b"]);
    /// ```
    pub fn scopes_removed(&self) -> Vec<&str> {
        self.net_scopes(false)
    }

    /// Scopes added (or removed, with `added == false`) and not undone by a later command, in
    /// the order first named.
    fn net_scopes(&self, added: bool) -> Vec<&str> {
        let mut scopes: Vec<&str> = Vec::new();
        for command in &self.commands {
            let (scope, keeps) = match command {
                Command::AddScope { scope } => (scope.as_str(), added),
                Command::RemoveScope { scope } => (scope.as_str(), !added),
                _ => continue,
            };
            if !keeps {
                scopes.retain(|s| *s != scope);
            } else if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    /// The reason of the rule's `deny`, if it denied the login.
    pub fn denied(&self) -> Option<&str> {
        self.commands.iter().find_map(|c| match c {
            Command::Deny { reason } => Some(reason.as_str()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_use_the_abi_field_names() {
        let result = RuleResult {
            commands: vec![
                Command::SetClaim {
                    token: TokenKind::IdToken,
                    name: "https://x/r".into(),
                    value: json!(["a"]),
                },
                Command::AddScope {
                    scope: "read".into(),
                },
                Command::Deny {
                    reason: "no".into(),
                },
                Command::Log {
                    level: LogLevel::Warn,
                    message: "m".into(),
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            json!({"commands": [
                {"op": "set_claim", "token": "id_token", "name": "https://x/r", "value": ["a"]},
                {"op": "add_scope", "scope": "read"},
                {"op": "deny", "reason": "no"},
                {"op": "log", "level": "warn", "message": "m"}
            ]})
        );
    }

    #[test]
    fn version_4_commands_keep_the_old_shapes_and_add_fields_only_with_defaults() {
        // enable_mfa without the new option is the same JSON as before, both ways.
        let old = json!({"op": "enable_mfa", "provider": "any"});
        let command: Command = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(
            command,
            Command::EnableMfa {
                provider: "any".into(),
                allow_remember_browser: false
            }
        );
        assert_eq!(serde_json::to_value(&command).unwrap(), old);
        assert_eq!(command.since_abi_version(), 1);
        let commands = [
            (
                Command::EnableMfa {
                    provider: "any".into(),
                    allow_remember_browser: true,
                },
                json!({"op": "enable_mfa", "provider": "any", "allow_remember_browser": true}),
            ),
            (
                Command::ChallengeWith {
                    factor: Factor::new("otp"),
                    additional_factors: vec![
                        Factor::new("phone").with_option("preferredMethod", "sms"),
                    ],
                },
                json!({"op": "challenge_with", "factor": {"type": "otp"},
                       "additional_factors": [{"type": "phone", "options": {"preferredMethod": "sms"}}]}),
            ),
            (
                Command::ChallengeWithAny {
                    factors: vec![Factor::new("otp"), Factor::new("email")],
                },
                json!({"op": "challenge_with_any", "factors": [{"type": "otp"}, {"type": "email"}]}),
            ),
            (
                Command::EnrollWith {
                    factor: Factor::new("webauthn-roaming"),
                    additional_factors: vec![],
                },
                json!({"op": "enroll_with", "factor": {"type": "webauthn-roaming"}}),
            ),
            (
                Command::SetSessionExpiresAt { expires_at: 7 },
                json!({"op": "set_session_expires_at", "expires_at": 7}),
            ),
            (
                Command::SetSessionIdleExpiresAt { idle_expires_at: 8 },
                json!({"op": "set_session_idle_expires_at", "idle_expires_at": 8}),
            ),
        ];
        for (command, json) in commands {
            assert_eq!(serde_json::to_value(&command).unwrap(), json);
            assert_eq!(
                serde_json::from_value::<Command>(json.clone()).unwrap(),
                command
            );
            assert_eq!(json["op"], command.op());
            assert_eq!(command.since_abi_version(), 4);
        }
    }

    #[test]
    fn unknown_ops_and_missing_fields_are_rejected_with_their_names() {
        let err = serde_json::from_str::<RuleResult>(r#"{"commands":[{"op":"grant_admin"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("grant_admin"), "{err}");
        let err = serde_json::from_str::<RuleResult>(
            r#"{"commands":[{"op":"set_claim","token":"id_token","name":"n"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing field `value`"), "{err}");
        let err = serde_json::from_str::<RuleResult>(
            r#"{"commands":[{"op":"add_scope","scope":"a","extra":1}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("extra"), "{err}");
    }

    #[test]
    fn claim_follows_set_and_remove_in_order() {
        let result: RuleResult = serde_json::from_value(json!({"commands": [
            {"op": "set_claim", "token": "access_token", "name": "n", "value": 1},
            {"op": "remove_claim", "token": "access_token", "name": "n"},
            {"op": "set_claim", "token": "id_token", "name": "n", "value": 2}
        ]}))
        .unwrap();
        assert_eq!(result.access_token_claim("n"), None);
        assert_eq!(result.id_token_claim("n"), Some(&json!(2)));
    }
}
