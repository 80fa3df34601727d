//! The `api` object a rule records its decisions on, mirroring Auth0's post-login `api`.
//!
//! Nothing here takes effect while the rule runs: the rule's commands go back to the host, which
//! checks them against its claim policy and applies them all, or none.

use serde::Serialize;
use serde_json::Value;

use crate::command::{Command, Factor, LogLevel, RuleResult, TokenKind};

/// What a rule decided, recorded as [`Command`]s in the order the rule made them.
///
/// ```
/// let mut api = claimsmith_sdk::Api::new();
/// api.access_token().add_scope("read:reports");
/// api.id_token().set_custom_claim("https://example.com/plan", "pro");
/// assert_eq!(api.commands().len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Api {
    commands: Vec<Command>,
}

impl Api {
    /// An empty api: no decisions yet.
    ///
    /// ```
    /// assert!(claimsmith_sdk::Api::new().commands().is_empty());
    /// ```
    pub fn new() -> Api {
        Api::default()
    }

    /// The ID token, read by the client application: UI hints, profile data.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.id_token().set_custom_claim("https://example.com/roles", ["admin"]);
    /// ```
    pub fn id_token(&mut self) -> IdToken<'_> {
        IdToken { api: self }
    }

    /// The access token, read by the API: scopes and claims it decides on.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access_token().set_custom_claim("https://example.com/tenant", "acme");
    /// api.access_token().remove_scope("admin");
    /// ```
    pub fn access_token(&mut self) -> AccessToken<'_> {
        AccessToken { api: self }
    }

    /// The login itself: deny it.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access().deny("Please verify your email address first.");
    /// ```
    pub fn access(&mut self) -> Access<'_> {
        Access { api: self }
    }

    /// The user's metadata, updated by the issuer only when the login succeeds.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.user().set_app_metadata("last_tenant", "acme");
    /// ```
    pub fn user(&mut self) -> UserUpdates<'_> {
        UserUpdates { api: self }
    }

    /// Multi-factor authentication.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.multifactor().enable("any");
    /// ```
    pub fn multifactor(&mut self) -> Multifactor<'_> {
        Multifactor { api: self }
    }

    /// Authentication challenges and enrollments (Auth0's `api.authentication`). ABI version 4.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.authentication().challenge_with("otp");
    /// ```
    pub fn authentication(&mut self) -> AuthenticationRequests<'_> {
        AuthenticationRequests { api: self }
    }

    /// The session's expiry (Auth0's `api.session`). ABI version 4.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.session().set_expires_at(1_796_405_400_000);
    /// ```
    pub fn session(&mut self) -> SessionUpdates<'_> {
        SessionUpdates { api: self }
    }

    /// Log lines for the issuer's logs (through `tracing`, with the rule's name).
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.log().info("granted the reports scope");
    /// ```
    pub fn log(&mut self) -> Log<'_> {
        Log { api: self }
    }

    /// The commands recorded so far, in order.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access_token().add_scope("read");
    /// assert!(matches!(&api.commands()[0], claimsmith_sdk::Command::AddScope { scope } if scope == "read"));
    /// ```
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// The recorded commands as the result a module returns to the host.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access().deny("no");
    /// assert_eq!(api.into_result().denied(), Some("no"));
    /// ```
    pub fn into_result(self) -> RuleResult {
        RuleResult {
            commands: self.commands,
        }
    }

    fn push(&mut self, command: Command) {
        self.commands.push(command);
    }

    fn set_claim(&mut self, token: TokenKind, name: String, value: impl Serialize) {
        let value = to_value(&name, value);
        self.push(Command::SetClaim { token, name, value });
    }
}

fn to_value(what: &str, value: impl Serialize) -> Value {
    match serde_json::to_value(value) {
        Ok(value) => value,
        // A value JSON cannot carry (a map with non-string keys, a failing Serialize impl) is a
        // bug in the rule: fail the rule, which the host reports with this message.
        Err(err) => panic!("value for {what:?} is not representable as JSON: {err}"),
    }
}

/// Decisions about the ID token. Obtained from [`Api::id_token`].
///
/// ```
/// let mut api = claimsmith_sdk::Api::new();
/// api.id_token().set_custom_claim("https://example.com/a", 1).remove_custom_claim("https://example.com/a");
/// ```
pub struct IdToken<'a> {
    api: &'a mut Api,
}

impl IdToken<'_> {
    /// Set a custom claim; the name must sit under a namespace the host allows, the value is any
    /// serializable value.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.id_token().set_custom_claim("https://example.com/capabilities", vec!["export"]);
    /// ```
    pub fn set_custom_claim(
        &mut self,
        name: impl Into<String>,
        value: impl Serialize,
    ) -> &mut Self {
        self.api.set_claim(TokenKind::IdToken, name.into(), value);
        self
    }

    /// Remove a custom claim set earlier in the pipeline.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.id_token().remove_custom_claim("https://example.com/debug");
    /// ```
    pub fn remove_custom_claim(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.api.push(Command::RemoveClaim {
            token: TokenKind::IdToken,
            name,
        });
        self
    }
}

/// Decisions about the access token. Obtained from [`Api::access_token`].
///
/// ```
/// let mut api = claimsmith_sdk::Api::new();
/// api.access_token().add_scope("read").add_scope("write");
/// ```
pub struct AccessToken<'a> {
    api: &'a mut Api,
}

impl AccessToken<'_> {
    /// Set a custom claim; the name must sit under a namespace the host allows.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access_token().set_custom_claim("https://example.com/tenant", "acme");
    /// ```
    pub fn set_custom_claim(
        &mut self,
        name: impl Into<String>,
        value: impl Serialize,
    ) -> &mut Self {
        self.api
            .set_claim(TokenKind::AccessToken, name.into(), value);
        self
    }

    /// Remove a custom claim set earlier in the pipeline.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access_token().remove_custom_claim("https://example.com/tenant");
    /// ```
    pub fn remove_custom_claim(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.api.push(Command::RemoveClaim {
            token: TokenKind::AccessToken,
            name,
        });
        self
    }

    /// Grant a scope.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access_token().add_scope("read:reports");
    /// ```
    pub fn add_scope(&mut self, scope: impl Into<String>) -> &mut Self {
        self.api.push(Command::AddScope {
            scope: scope.into(),
        });
        self
    }

    /// Take away a requested or added scope.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access_token().remove_scope("delete:everything");
    /// ```
    pub fn remove_scope(&mut self, scope: impl Into<String>) -> &mut Self {
        self.api.push(Command::RemoveScope {
            scope: scope.into(),
        });
        self
    }
}

/// Decisions about the login. Obtained from [`Api::access`].
///
/// ```
/// let mut api = claimsmith_sdk::Api::new();
/// api.access().deny("blocked");
/// ```
pub struct Access<'a> {
    api: &'a mut Api,
}

impl Access<'_> {
    /// Refuse the login with a reason the client sees as `error_description`. Later rules do not
    /// run and nothing the pipeline decided is kept.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.access().deny("Your account is suspended.");
    /// assert_eq!(api.into_result().denied(), Some("Your account is suspended."));
    /// ```
    pub fn deny(&mut self, reason: impl Into<String>) {
        self.api.push(Command::Deny {
            reason: reason.into(),
        });
    }
}

/// Metadata updates. Obtained from [`Api::user`].
///
/// ```
/// let mut api = claimsmith_sdk::Api::new();
/// api.user().set_user_metadata("theme", "dark");
/// ```
pub struct UserUpdates<'a> {
    api: &'a mut Api,
}

impl UserUpdates<'_> {
    /// Set one key of `app_metadata` (`null` removes it), applied only if the login succeeds.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.user().set_app_metadata("plan", "pro");
    /// ```
    pub fn set_app_metadata(&mut self, key: impl Into<String>, value: impl Serialize) -> &mut Self {
        let key = key.into();
        let value = to_value(&key, value);
        self.api.push(Command::SetAppMetadata { key, value });
        self
    }

    /// Set one key of `user_metadata` (`null` removes it), applied only if the login succeeds.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.user().set_user_metadata("locale", "fr");
    /// ```
    pub fn set_user_metadata(
        &mut self,
        key: impl Into<String>,
        value: impl Serialize,
    ) -> &mut Self {
        let key = key.into();
        let value = to_value(&key, value);
        self.api.push(Command::SetUserMetadata { key, value });
        self
    }
}

/// Multi-factor requests. Obtained from [`Api::multifactor`].
///
/// ```
/// let mut api = claimsmith_sdk::Api::new();
/// api.multifactor().enable("guardian");
/// ```
pub struct Multifactor<'a> {
    api: &'a mut Api,
}

impl Multifactor<'_> {
    /// Ask the issuer to require MFA with a provider (`any`, `guardian`, `duo`, ...).
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.multifactor().enable("any");
    /// ```
    pub fn enable(&mut self, provider: impl Into<String>) {
        self.enable_with(provider, MultifactorOptions::default());
    }

    /// [`Multifactor::enable`] with Auth0's options (`allowRememberBrowser`). ABI version 4 for
    /// `allow_remember_browser`.
    ///
    /// ```
    /// use claimsmith_sdk::{Api, Command, MultifactorOptions};
    /// let mut api = Api::new();
    /// api.multifactor().enable_with("any", MultifactorOptions { allow_remember_browser: true });
    /// assert!(matches!(&api.commands()[0],
    ///     Command::EnableMfa { allow_remember_browser: true, .. }));
    /// ```
    pub fn enable_with(&mut self, provider: impl Into<String>, options: MultifactorOptions) {
        self.api.push(Command::EnableMfa {
            provider: provider.into(),
            allow_remember_browser: options.allow_remember_browser,
        });
    }
}

/// The options of [`Multifactor::enable_with`] (Auth0's `api.multifactor.enable` options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MultifactorOptions {
    /// Whether the user may skip MFA on a browser they chose to remember.
    pub allow_remember_browser: bool,
}

/// Authentication requests. Obtained from [`Api::authentication`]; the issuer acts on them
/// (the outcome's `authentication`, in call order). ABI version 4.
///
/// ```
/// use claimsmith_sdk::{Api, Factor};
/// let mut api = Api::new();
/// api.authentication()
///     .challenge_with_additional("otp", [Factor::new("phone").with_option("preferredMethod", "sms")]);
/// ```
pub struct AuthenticationRequests<'a> {
    api: &'a mut Api,
}

impl AuthenticationRequests<'_> {
    /// Challenge the user with a factor (Auth0's `challengeWith(factor)`).
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.authentication().challenge_with("otp");
    /// ```
    pub fn challenge_with(&mut self, factor: impl Into<Factor>) -> &mut Self {
        self.challenge_with_additional(factor, Vec::<Factor>::new())
    }

    /// Challenge the user with a factor, or one of `additional_factors` if the user prefers
    /// (Auth0's `challengeWith(factor, { additionalFactors })`).
    pub fn challenge_with_additional<F: Into<Factor>>(
        &mut self,
        factor: impl Into<Factor>,
        additional_factors: impl IntoIterator<Item = F>,
    ) -> &mut Self {
        self.api.push(Command::ChallengeWith {
            factor: factor.into(),
            additional_factors: additional_factors.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Challenge the user with any one of `factors`, the user's choice (Auth0's
    /// `challengeWithAny(factors)`).
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.authentication().challenge_with_any(["otp", "email"]);
    /// ```
    pub fn challenge_with_any<F: Into<Factor>>(
        &mut self,
        factors: impl IntoIterator<Item = F>,
    ) -> &mut Self {
        self.api.push(Command::ChallengeWithAny {
            factors: factors.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Have the user enroll a factor (Auth0's `enrollWith(factor)`).
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.authentication().enroll_with("otp");
    /// ```
    pub fn enroll_with(&mut self, factor: impl Into<Factor>) -> &mut Self {
        self.enroll_with_additional(factor, Vec::<Factor>::new())
    }

    /// Have the user enroll a factor, or one of `additional_factors` (Auth0's
    /// `enrollWith(factor, { additionalFactors })`).
    pub fn enroll_with_additional<F: Into<Factor>>(
        &mut self,
        factor: impl Into<Factor>,
        additional_factors: impl IntoIterator<Item = F>,
    ) -> &mut Self {
        self.api.push(Command::EnrollWith {
            factor: factor.into(),
            additional_factors: additional_factors.into_iter().map(Into::into).collect(),
        });
        self
    }
}

/// Session updates. Obtained from [`Api::session`]; the issuer acts on them (the outcome's
/// `session`). Times are milliseconds since the epoch, as Auth0's. ABI version 4.
///
/// ```
/// let mut api = claimsmith_sdk::Api::new();
/// api.session().set_expires_at(1_796_405_400_000).set_idle_expires_at(1_796_400_000_000);
/// ```
pub struct SessionUpdates<'a> {
    api: &'a mut Api,
}

impl SessionUpdates<'_> {
    /// End the session at `expires_at` (Auth0's `api.session.setExpiresAt`).
    pub fn set_expires_at(&mut self, expires_at: u64) -> &mut Self {
        self.api.push(Command::SetSessionExpiresAt { expires_at });
        self
    }

    /// End the session if it is idle until `idle_expires_at` (Auth0's
    /// `api.session.setIdleExpiresAt`).
    pub fn set_idle_expires_at(&mut self, idle_expires_at: u64) -> &mut Self {
        self.api
            .push(Command::SetSessionIdleExpiresAt { idle_expires_at });
        self
    }
}

/// Log lines. Obtained from [`Api::log`].
///
/// ```
/// let mut api = claimsmith_sdk::Api::new();
/// api.log().warn("user has no roles");
/// ```
pub struct Log<'a> {
    api: &'a mut Api,
}

impl Log<'_> {
    /// A line at `level`.
    ///
    /// ```
    /// let mut api = claimsmith_sdk::Api::new();
    /// api.log().at(claimsmith_sdk::LogLevel::Debug, "roles read");
    /// ```
    pub fn at(&mut self, level: LogLevel, message: impl Into<String>) -> &mut Self {
        self.api.push(Command::Log {
            level,
            message: message.into(),
        });
        self
    }

    /// A debug line.
    ///
    /// ```
    /// claimsmith_sdk::Api::new().log().debug("checked 3 roles");
    /// ```
    pub fn debug(&mut self, message: impl Into<String>) -> &mut Self {
        self.at(LogLevel::Debug, message)
    }

    /// An info line.
    ///
    /// ```
    /// claimsmith_sdk::Api::new().log().info("granted read");
    /// ```
    pub fn info(&mut self, message: impl Into<String>) -> &mut Self {
        self.at(LogLevel::Info, message)
    }

    /// A warning.
    ///
    /// ```
    /// claimsmith_sdk::Api::new().log().warn("no tenant in app_metadata");
    /// ```
    pub fn warn(&mut self, message: impl Into<String>) -> &mut Self {
        self.at(LogLevel::Warn, message)
    }

    /// An error line (it does not fail the rule; deny or panic for that).
    ///
    /// ```
    /// claimsmith_sdk::Api::new().log().error("mapping is empty");
    /// ```
    pub fn error(&mut self, message: impl Into<String>) -> &mut Self {
        self.at(LogLevel::Error, message)
    }
}
