//! The login event a rule reads, mirroring Auth0's post-login `event` object.
//!
//! Every struct is tolerant: unknown fields are ignored and missing optional fields take their
//! defaults, so an issuer can send more than a rule reads and a rule can read less than Auth0 sends.
//!
//! The table below is the event's one schema: each struct and each field is declared once, and
//! the macro (`wire.rs`) makes from it the structs, their binary encoder and decoder for the
//! guest ABI (`docs/abi.md`, section 9) and the caller's form the host parses
//! ([`CallerEvent`]). To add a field, add its line (its docs, and `since N` for the ABI
//! version N that first carries it; Auth0 fields added after version 4 need a new version),
//! then its line in docs/abi.md's field table.
//!
//! Each struct reads with `#[serde(default)]` and no other struct-level serde attribute: the
//! borrowed form the host parses (`BorrowedEvent`) copies the fields' attributes, not the
//! structs', and a test holds the table to it.
//!
//! The host reads each of these structs from a JSON object only, never from an array of its
//! fields in order (`claimsmith-engine`'s `objects_only`). That check follows maps, sequences,
//! options and newtypes, not enums or `#[serde(flatten)]`: a field of either kind added here
//! needs the check extended first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

event_schema! {
    /// The login that just happened, as the issuer describes it, plus the rule's own
    /// `configuration` and `secrets` from the host's config.
    ///
    /// ```
    /// let event: claimsmith_sdk::Event = serde_json::from_str(r#"{
    ///     "user": {"user_id": "auth0|42", "email": "ada@example.com", "email_verified": true},
    ///     "client": {"client_id": "spa"},
    ///     "authorization": {"roles": ["admin"]},
    ///     "transaction": {"requested_scopes": ["openid", "email"]},
    ///     "something_new": "ignored"
    /// }"#).unwrap();
    /// assert_eq!(event.user.user_id, "auth0|42");
    /// assert!(event.user.email_verified);
    /// assert!(event.resource_server.is_none());
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Event {
        /// The user who logged in.
        pub user: User,
        /// Roles and permissions assigned to the user.
        pub authorization: Authorization,
        /// How the user authenticated.
        pub authentication: Option<Authentication>,
        /// The application (OAuth client) the user logs in to.
        pub client: Client,
        /// The connection (identity source) used.
        pub connection: Connection,
        /// The organization the login is for, if any.
        pub organization: Option<Organization>,
        /// The HTTP request that carried the login.
        pub request: Request,
        /// The authorization transaction: requested scopes, protocol, locale.
        pub transaction: Transaction,
        /// The API the access token is for; no access token is issued without it.
        pub resource_server: Option<ResourceServer>,
        /// Login statistics of the user.
        pub stats: Stats,
        /// The claims the issuer already put in each token, sent by hook formats; empty when
        /// claimsmith mints the tokens itself.
        since 3 pub issuer_claims: IssuerClaims,
        /// The time of the login, milliseconds since the Unix epoch (UTC): the issuer's, where
        /// its request carries one, else the host's clock when the login's event was made. One
        /// value for the whole login: every rule sees the same. Fixtures set it so that tests
        /// are reproducible. See [`Event::login_time_secs`], [`Event::login_time_rfc3339`] and
        /// [`Event::login_weekday`].
        since 4 pub login_time: u64,
        /// The tenant the login happens in (Auth0's `event.tenant`).
        since 4 pub tenant: Tenant,
        /// The session the login belongs to (Auth0's `event.session`), if the issuer keeps one.
        since 4 pub session: Option<Session>,
    }
    per_rule {
        /// This rule's `[rules.config]` table from the host's config.
        pub configuration: Map<String, Value>,
        /// This rule's `[rules.secrets]`, resolved by the host.
        pub secrets: BTreeMap<String, String>,
    }

    /// The user who logged in (Auth0's `event.user`).
    ///
    /// ```
    /// let user: claimsmith_sdk::User = serde_json::from_str(
    ///     r#"{"user_id": "auth0|1", "app_metadata": {"tenant": "acme"}}"#).unwrap();
    /// assert_eq!(user.app_metadata["tenant"], "acme");
    /// assert_eq!(user.email, None);
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct User in "user" {
        /// The user's unique id; becomes `sub` in both tokens.
        pub user_id: String,
        /// Email address.
        pub email: Option<String>,
        /// Whether the email address was verified.
        pub email_verified: bool,
        /// Full name.
        pub name: Option<String>,
        /// Nickname.
        pub nickname: Option<String>,
        /// Given name.
        pub given_name: Option<String>,
        /// Family name.
        pub family_name: Option<String>,
        /// Picture URL.
        pub picture: Option<String>,
        /// Phone number.
        pub phone_number: Option<String>,
        /// Whether the phone number was verified.
        pub phone_verified: bool,
        /// Last profile update, RFC 3339.
        pub updated_at: Option<String>,
        /// Metadata the user cannot change (plans, tenants, flags).
        pub app_metadata: Map<String, Value>,
        /// Metadata the user may change (preferences).
        pub user_metadata: Map<String, Value>,
        /// The groups the user belongs to (Auth0's `event.user.groups`): from Active Directory
        /// and other enterprise connections, and from issuers that keep groups.
        since 3 pub groups: Vec<String>,
        /// When the user was created, RFC 3339 (Auth0's `event.user.created_at`).
        since 4 pub created_at: Option<String>,
        /// When the user last reset their password, RFC 3339 (Auth0's
        /// `event.user.last_password_reset`).
        since 4 pub last_password_reset: Option<String>,
        /// The names of the factors the user has enrolled (Auth0's `event.user.multifactor`:
        /// `guardian`, `google-authenticator`, `duo`, ...).
        since 4 pub multifactor: Vec<String>,
        /// The factors the user has enrolled (Auth0's `event.user.enrolledFactors`).
        #[serde(rename = "enrolledFactors")]
        since 4 pub enrolled_factors: Vec<EnrolledFactor>,
    }

    /// Roles and permissions of the user (Auth0's `event.authorization`).
    ///
    /// ```
    /// let authz: claimsmith_sdk::Authorization =
    ///     serde_json::from_str(r#"{"roles": ["admin"], "permissions": ["read:all"]}"#).unwrap();
    /// assert!(authz.has_role("admin"));
    /// assert!(authz.has_permission("read:all"));
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Authorization in "authorization" {
        /// Role names.
        pub roles: Vec<String>,
        /// Permission names (`read:reports`).
        pub permissions: Vec<String>,
    }

    /// How the user authenticated (Auth0's `event.authentication`).
    ///
    /// ```
    /// let authn: claimsmith_sdk::Authentication = serde_json::from_str(
    ///     r#"{"methods": [{"name": "pwd", "timestamp": "2026-11-22T10:00:00Z"}]}"#).unwrap();
    /// assert_eq!(authn.methods[0].name, "pwd");
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Authentication in "authentication" {
        /// Methods used in this session; their names become `amr`.
        pub methods: Vec<AuthenticationMethod>,
        /// The issuer's assessment of the login's risk (Auth0's
        /// `event.authentication.riskAssessment`), if it made one.
        #[serde(rename = "riskAssessment")]
        since 4 pub risk_assessment: Option<RiskAssessment>,
    }

    /// One authentication method.
    ///
    /// ```
    /// let m: claimsmith_sdk::AuthenticationMethod =
    ///     serde_json::from_str(r#"{"name": "mfa", "auth_time": 1795000000}"#).unwrap();
    /// assert_eq!(m.auth_time, Some(1795000000));
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct AuthenticationMethod in "authentication.methods" {
        /// Method name (`pwd`, `mfa`, `federated`, ...).
        pub name: String,
        /// When it happened, RFC 3339, as Auth0 sends it.
        pub timestamp: Option<String>,
        /// When it happened, seconds since the epoch; becomes `auth_time` when given.
        pub auth_time: Option<i64>,
    }

    /// The application the user logs in to (Auth0's `event.client`).
    ///
    /// ```
    /// let c: claimsmith_sdk::Client = serde_json::from_str(r#"{"client_id": "spa", "name": "Web"}"#).unwrap();
    /// assert_eq!(c.client_id, "spa");
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Client in "client" {
        /// The OAuth client id; the ID token's `aud`.
        pub client_id: String,
        /// Display name.
        pub name: Option<String>,
        /// Client metadata.
        pub metadata: Map<String, Value>,
    }

    /// The identity source used (Auth0's `event.connection`).
    ///
    /// ```
    /// let c: claimsmith_sdk::Connection =
    ///     serde_json::from_str(r#"{"name": "Username-Password-Authentication", "strategy": "auth0"}"#).unwrap();
    /// assert_eq!(c.strategy, "auth0");
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Connection in "connection" {
        /// Connection id.
        pub id: String,
        /// Connection name.
        pub name: String,
        /// Strategy (`auth0`, `google-oauth2`, `samlp`, ...).
        pub strategy: String,
        /// Connection metadata.
        pub metadata: Map<String, Value>,
    }

    /// The organization the login is for (Auth0's `event.organization`).
    ///
    /// ```
    /// let o: claimsmith_sdk::Organization = serde_json::from_str(r#"{"id": "org_1", "name": "acme"}"#).unwrap();
    /// assert_eq!(o.name, "acme");
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Organization in "organization" {
        /// Organization id; becomes `org_id`.
        pub id: String,
        /// Organization name.
        pub name: String,
        /// Display name.
        pub display_name: Option<String>,
        /// Organization metadata.
        pub metadata: Map<String, Value>,
    }

    /// The HTTP request that carried the login (Auth0's `event.request`).
    ///
    /// ```
    /// let r: claimsmith_sdk::Request = serde_json::from_str(r#"{"ip": "203.0.113.9"}"#).unwrap();
    /// assert_eq!(r.ip.as_deref(), Some("203.0.113.9"));
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Request in "request" {
        /// Client IP address.
        pub ip: Option<String>,
        /// User agent.
        pub user_agent: Option<String>,
        /// Host name the login was served on.
        pub hostname: Option<String>,
        /// Accept-Language.
        pub language: Option<String>,
        /// HTTP method.
        pub method: Option<String>,
        /// Geo information, as the issuer resolves it.
        pub geoip: Option<Value>,
        /// Query parameters.
        pub query: Map<String, Value>,
    }

    /// The authorization transaction (Auth0's `event.transaction`).
    ///
    /// ```
    /// let t: claimsmith_sdk::Transaction =
    ///     serde_json::from_str(r#"{"requested_scopes": ["openid", "profile"]}"#).unwrap();
    /// assert!(t.requested("profile"));
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Transaction in "transaction" {
        /// Scopes the client asked for; the starting point of the access token's `scope`. An
        /// element may hold several separated by spaces, as OAuth's `scope` parameter does:
        /// [`Transaction::scopes`] gives each one.
        pub requested_scopes: Vec<String>,
        /// Protocol (`oidc-basic-profile`, `oauth2-refresh-token`, ...).
        pub protocol: Option<String>,
        /// Locale.
        pub locale: Option<String>,
        /// Redirect URI.
        pub redirect_uri: Option<String>,
        /// The authorization request's `nonce`, echoed in the ID token.
        pub nonce: Option<String>,
        /// Requested ACR values.
        pub acr_values: Vec<String>,
    }

    /// The API the access token is for (Auth0's `event.resource_server`).
    ///
    /// ```
    /// let r: claimsmith_sdk::ResourceServer =
    ///     serde_json::from_str(r#"{"identifier": "https://api.example.com"}"#).unwrap();
    /// assert_eq!(r.identifier, "https://api.example.com");
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ResourceServer in "resource_server" {
        /// The API identifier; the access token's `aud`.
        pub identifier: String,
    }

    /// Login statistics (Auth0's `event.stats`).
    ///
    /// ```
    /// let s: claimsmith_sdk::Stats = serde_json::from_str(r#"{"logins_count": 3}"#).unwrap();
    /// assert_eq!(s.logins_count, 3);
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Stats in "stats" {
        /// How many times the user has logged in, this login included.
        pub logins_count: u64,
    }

    /// The claims the issuer already put in each token, before any rule ran: what a hook format
    /// sends along with the login (issue 15). Both are empty when claimsmith mints the tokens itself.
    ///
    /// ```
    /// let c: claimsmith_sdk::IssuerClaims =
    ///     serde_json::from_str(r#"{"id_token": {"acr": "urn:silver"}}"#).unwrap();
    /// assert_eq!(c.id_token["acr"], "urn:silver");
    /// assert!(c.access_token.is_empty());
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct IssuerClaims in "issuer_claims" {
        /// The ID token's claims.
        pub id_token: Map<String, Value>,
        /// The access token's claims.
        pub access_token: Map<String, Value>,
    }

    /// A factor the user has enrolled (an item of Auth0's `event.user.enrolledFactors`).
    ///
    /// ```
    /// let f: claimsmith_sdk::EnrolledFactor =
    ///     serde_json::from_str(r#"{"type": "phone", "options": {"preferredMethod": "sms"}}"#).unwrap();
    /// assert_eq!(f.kind, "phone");
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct EnrolledFactor in "user.enrolledFactors" {
        /// The factor's type (`otp`, `phone`, `email`, `push-notification`, `webauthn-roaming`,
        /// `webauthn-platform`, `recovery-code`), Auth0's `type`.
        #[serde(rename = "type")]
        pub kind: String,
        /// Its options, as Auth0 gives them (`preferredMethod` for `phone`).
        pub options: Map<String, Value>,
    }

    /// The issuer's risk assessment of the login (Auth0's `event.authentication.riskAssessment`).
    ///
    /// ```
    /// let r: claimsmith_sdk::RiskAssessment = serde_json::from_str(r#"{
    ///     "confidence": "low", "version": "1",
    ///     "assessments": {"NewDevice": {"confidence": "low", "code": "initial_login"}}
    /// }"#).unwrap();
    /// assert!(r.is_low());
    /// assert_eq!(r.assessment_confidence("NewDevice"), Some("low"));
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct RiskAssessment in "authentication.riskAssessment" {
        /// The overall confidence that the login is the user's: `low`, `medium`, `high` or
        /// `neutral`.
        pub confidence: String,
        /// The version of the assessment.
        pub version: String,
        /// Each assessment by name (`UntrustedIP`, `NewDevice`, `ImpossibleTravel`,
        /// `PhoneNumber`, ...), as Auth0 gives it: `confidence`, `code`, `details`.
        pub assessments: Map<String, Value>,
    }

    /// The tenant of the login (Auth0's `event.tenant`).
    ///
    /// ```
    /// let t: claimsmith_sdk::Tenant = serde_json::from_str(r#"{"id": "acme-prod"}"#).unwrap();
    /// assert_eq!(t.id, "acme-prod");
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Tenant in "tenant" {
        /// The tenant's id.
        pub id: String,
    }

    /// The session the login belongs to (Auth0's `event.session`). Times are RFC 3339.
    ///
    /// ```
    /// let s: claimsmith_sdk::Session = serde_json::from_str(r#"{
    ///     "id": "s-1", "created_at": "2026-11-30T08:00:00Z",
    ///     "device": {"initial_ip": "203.0.113.9"}
    /// }"#).unwrap();
    /// assert_eq!(s.device.unwrap().initial_ip.as_deref(), Some("203.0.113.9"));
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Session in "session" {
        /// The session's id.
        pub id: String,
        /// When the session was created.
        pub created_at: Option<String>,
        /// When the session was last updated.
        pub updated_at: Option<String>,
        /// When the user last authenticated in the session.
        pub authenticated_at: Option<String>,
        /// When the user last interacted with the session.
        pub last_interacted_at: Option<String>,
        /// When the session expires, if it does.
        pub expires_at: Option<String>,
        /// When the session expires if idle, if it does.
        pub idle_expires_at: Option<String>,
        /// The device the session was created and last used on.
        pub device: Option<SessionDevice>,
        /// The applications the session was used for.
        pub clients: Vec<SessionClient>,
    }

    /// The device of a session (Auth0's `event.session.device`).
    ///
    /// ```
    /// let d: claimsmith_sdk::SessionDevice =
    ///     serde_json::from_str(r#"{"last_user_agent": "curl/8"}"#).unwrap();
    /// assert_eq!(d.last_user_agent.as_deref(), Some("curl/8"));
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct SessionDevice in "session.device" {
        /// The IP address the session was created from.
        pub initial_ip: Option<String>,
        /// The autonomous system number the session was created from.
        pub initial_asn: Option<String>,
        /// The user agent the session was created with.
        pub initial_user_agent: Option<String>,
        /// The IP address the session was last used from.
        pub last_ip: Option<String>,
        /// The autonomous system number the session was last used from.
        pub last_asn: Option<String>,
        /// The user agent the session was last used with.
        pub last_user_agent: Option<String>,
    }

    /// An application a session was used for (an item of Auth0's `event.session.clients`).
    ///
    /// ```
    /// let c: claimsmith_sdk::SessionClient = serde_json::from_str(r#"{"client_id": "spa"}"#).unwrap();
    /// assert_eq!(c.client_id, "spa");
    /// ```
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct SessionClient in "session.clients" {
        /// The OAuth client id.
        pub client_id: String,
    }
}

impl Event {
    /// A string from the rule's configuration.
    ///
    /// ```
    /// let event: claimsmith_sdk::Event =
    ///     serde_json::from_str(r#"{"configuration": {"namespace": "https://example.com"}}"#).unwrap();
    /// assert_eq!(event.config_str("namespace"), Some("https://example.com"));
    /// assert_eq!(event.config_str("missing"), None);
    /// ```
    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.configuration.get(key).and_then(Value::as_str)
    }

    /// Any value from the rule's configuration.
    ///
    /// ```
    /// let event: claimsmith_sdk::Event =
    ///     serde_json::from_str(r#"{"configuration": {"map": {"a": 1}}}"#).unwrap();
    /// assert_eq!(event.config("map").unwrap()["a"], 1);
    /// ```
    pub fn config(&self, key: &str) -> Option<&Value> {
        self.configuration.get(key)
    }

    /// A secret of the rule, by name.
    ///
    /// ```
    /// let event: claimsmith_sdk::Event =
    ///     serde_json::from_str(r#"{"secrets": {"API_KEY": "s3cr3t"}}"#).unwrap();
    /// assert_eq!(event.secret("API_KEY"), Some("s3cr3t"));
    /// ```
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).map(String::as_str)
    }

    /// The API identifier the access token is for, if one is issued.
    ///
    /// ```
    /// let event: claimsmith_sdk::Event = serde_json::from_str(
    ///     r#"{"resource_server": {"identifier": "https://api.example.com"}}"#).unwrap();
    /// assert_eq!(event.audience(), Some("https://api.example.com"));
    /// ```
    pub fn audience(&self) -> Option<&str> {
        self.resource_server.as_ref().map(|r| r.identifier.as_str())
    }

    /// The login's time in whole seconds since the epoch ([`Event::login_time`] is milliseconds).
    ///
    /// ```
    /// let event: claimsmith_sdk::Event = serde_json::from_str(r#"{"login_time": 1796405400123}"#).unwrap();
    /// assert_eq!(event.login_time_secs(), 1796405400);
    /// ```
    pub fn login_time_secs(&self) -> u64 {
        self.login_time / 1000
    }

    /// The login's time as RFC 3339 in UTC, with milliseconds (`2026-12-04T17:30:00.123Z`).
    ///
    /// ```
    /// let event: claimsmith_sdk::Event = serde_json::from_str(r#"{"login_time": 1796405400123}"#).unwrap();
    /// assert_eq!(event.login_time_rfc3339(), "2026-12-04T17:30:00.123Z");
    /// ```
    pub fn login_time_rfc3339(&self) -> String {
        crate::time::format_rfc3339(self.login_time_ms())
    }

    /// The day of the week of the login, in a zone `offset_minutes` ahead of UTC (`0`: UTC).
    ///
    /// ```
    /// use claimsmith_sdk::time::Weekday;
    /// let event: claimsmith_sdk::Event = serde_json::from_str(r#"{"login_time": 1796405400123}"#).unwrap();
    /// assert_eq!(event.login_weekday(0), Weekday::Friday);
    /// assert_eq!(event.login_weekday(9 * 60), Weekday::Saturday);
    /// ```
    pub fn login_weekday(&self, offset_minutes: i32) -> crate::time::Weekday {
        crate::time::weekday(self.login_time_ms(), offset_minutes)
    }

    /// How many milliseconds before the login an RFC 3339 time was (negative if after it);
    /// `None` if the text is not RFC 3339.
    ///
    /// ```
    /// let event: claimsmith_sdk::Event = serde_json::from_str(r#"{"login_time": 1796405400000}"#).unwrap();
    /// assert_eq!(event.ms_since("2026-12-04T17:00:00Z"), Some(30 * 60 * 1000));
    /// assert_eq!(event.ms_since("soon"), None);
    /// ```
    pub fn ms_since(&self, rfc3339: &str) -> Option<i64> {
        crate::time::parse_rfc3339(rfc3339).map(|at| self.login_time_ms() - at)
    }

    fn login_time_ms(&self) -> i64 {
        i64::try_from(self.login_time).unwrap_or(i64::MAX)
    }
}

impl User {
    /// Whether the user has enrolled a factor of this type (`otp`, `phone`, ...).
    ///
    /// ```
    /// let user: claimsmith_sdk::User =
    ///     serde_json::from_str(r#"{"enrolledFactors": [{"type": "otp"}]}"#).unwrap();
    /// assert!(user.has_enrolled("otp") && !user.has_enrolled("phone"));
    /// ```
    pub fn has_enrolled(&self, kind: &str) -> bool {
        self.enrolled_factors.iter().any(|f| f.kind == kind)
    }
}

impl RiskAssessment {
    /// Whether the overall confidence is `low`.
    pub fn is_low(&self) -> bool {
        self.confidence.eq_ignore_ascii_case("low")
    }

    /// The confidence of one assessment (`NewDevice`, `UntrustedIP`, ...), if given.
    pub fn assessment_confidence(&self, name: &str) -> Option<&str> {
        self.assessments.get(name)?.get("confidence")?.as_str()
    }
}

impl Authorization {
    /// Whether the user has the role.
    ///
    /// ```
    /// let authz = claimsmith_sdk::Authorization { roles: vec!["admin".into()], ..Default::default() };
    /// assert!(authz.has_role("admin") && !authz.has_role("viewer"));
    /// ```
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the user has the permission.
    ///
    /// ```
    /// let authz = claimsmith_sdk::Authorization { permissions: vec!["read".into()], ..Default::default() };
    /// assert!(authz.has_permission("read") && !authz.has_permission("write"));
    /// ```
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

impl Transaction {
    /// Whether the client asked for the scope. An element of `requested_scopes` may hold
    /// several scopes separated by spaces, as OAuth's `scope` parameter does (RFC 6749
    /// section 3.3): each counts.
    ///
    /// ```
    /// let t = claimsmith_sdk::Transaction {
    ///     requested_scopes: vec!["email".into(), "openid profile".into()],
    ///     ..Default::default()
    /// };
    /// assert!(t.requested("email") && t.requested("profile") && !t.requested("phone"));
    /// ```
    pub fn requested(&self, scope: &str) -> bool {
        self.scopes().any(|token| token == scope)
    }

    /// Each scope the client asked for, in order: the elements of `requested_scopes` split at
    /// spaces (repeats kept).
    ///
    /// ```
    /// let t = claimsmith_sdk::Transaction {
    ///     requested_scopes: vec!["openid profile".into(), " email ".into()],
    ///     ..Default::default()
    /// };
    /// assert_eq!(t.scopes().collect::<Vec<_>>(), ["openid", "profile", "email"]);
    /// ```
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.requested_scopes
            .iter()
            .flat_map(|s| s.split_ascii_whitespace())
    }
}
