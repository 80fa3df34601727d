//! # claimsmith
//!
//! The issuer's library: read a TOML [`Config`], load its signing keys and rule modules once
//! into an [`Issuer`]; then per login hand it the event and get back a signed OIDC ID token and
//! an RFC 9068 access token ([`Tokens`]), or a typed [`LoginFailure`].
//!
//! ```no_run
//! let issuer = claimsmith::Issuer::from_config_file("claimsmith.toml".as_ref())?;
//! match issuer.login_json(br#"{"user": {"user_id": "auth0|1"}, "client": {"client_id": "spa"}}"#) {
//!     Ok(tokens) => println!("{}", tokens.id_token),
//!     Err(claimsmith::LoginFailure::Denied(denied)) => println!("denied: {}", denied.reason),
//!     Err(other) => println!("error: {other}"),
//! }
//! # Ok::<(), claimsmith::ConfigError>(())
//! ```
//!
//! A login flows through `issuer.rs` (the event checked by the rules' pipeline, the rules run),
//! `id_token.rs` and `access_token.rs` (the claims), and `signer.rs` (signed with the key
//! `keys.rs` loaded once).

#![warn(missing_docs)]

mod access_token;
mod config;
mod error;
mod id_token;
mod issuer;
mod keys;
mod signer;

pub use config::{
    CacheSetting, Config, KeyConfig, RuleConfig, SecretError, SecretSource, TTL_RANGE,
};
pub use error::{ConfigError, LoginFailure};
pub use issuer::{Issuer, LoginTimings, TOKEN_WARN_BYTES, Tokens};
pub use keys::{Algorithm, KeyError, KeySet, SigningKey, generate_pem};

/// What the rules decided and why a login gets no tokens, and the rules' settings as the config
/// holds them: the engine's types an issuer reads and matches on.
pub use claimsmith_engine::{
    ArtifactSource, ChangeKind, ClaimChange, Denied, Diagnostic, Event, EventError, Limits,
    LoadError, LoadErrorKind, LoginError, LoginEvent, MetadataChange, ModuleDigest, OnError,
    Outcome, Pipeline, PolicyViolation, Reads, Rule, RuleFailed, RuleFailure, RuleLog, RuleMode,
    RuleSpec, RuleStatus, RuleTrace, SandboxConfig, ShadowChanges, ShadowReport, ShadowResult,
};
