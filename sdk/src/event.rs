//! The login event a rule reads, mirroring Auth0's post-login `event` object.
//!
//! Every struct is tolerant: unknown fields are ignored and missing optional fields take their
//! defaults, so an issuer can send more than a rule reads and a rule can read less than Auth0 sends.
//!
//! The table below is the event's one schema: each struct and each field is declared once, and
//! the macro (`wire.rs`) makes from it the structs, their binary encoder and decoder for the
//! guest ABI (`docs/abi.md`, section 9) and the caller's form the host parses
//! ([`CallerEvent`]). To add a field, add its line (its docs, and `since N` for the ABI
//! version N that first carries it; Auth0 fields added after version 3 need a new version),
//! then its line in docs/abi.md's field table.
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
        /// Scopes the client asked for; the starting point of the access token's `scope`.
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
    /// Whether the client asked for the scope.
    ///
    /// ```
    /// let t = claimsmith_sdk::Transaction { requested_scopes: vec!["email".into()], ..Default::default() };
    /// assert!(t.requested("email") && !t.requested("profile"));
    /// ```
    pub fn requested(&self, scope: &str) -> bool {
        self.requested_scopes.iter().any(|s| s == scope)
    }
}
