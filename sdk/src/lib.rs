//! # claimsmith-sdk
//!
//! What a claimsmith rule links against. A rule is one Rust function that reads the login
//! [`Event`] and records what it decided on the [`Api`]: custom claims per token, scopes, a
//! denial, metadata updates, an MFA request, log lines.
//!
//! ```
//! use claimsmith_sdk::{Api, Event};
//!
//! fn on_execute_post_login(event: &Event, api: &mut Api) {
//!     let namespace = event.config_str("namespace").unwrap_or("https://example.com");
//!     let roles = &event.authorization.roles;
//!     api.id_token().set_custom_claim(format!("{namespace}/roles"), roles);
//!     api.access_token().set_custom_claim(format!("{namespace}/roles"), roles);
//! }
//!
//! // One line makes it a claimsmith rule module when built for wasm32-unknown-unknown.
//! claimsmith_sdk::export_rule!(on_execute_post_login);
//!
//! // The native harness runs the same function without wasm, for `cargo test`.
//! let event: Event = serde_json::from_value(serde_json::json!({
//!     "user": { "user_id": "auth0|1" },
//!     "authorization": { "roles": ["admin"] }
//! })).unwrap();
//! let result = claimsmith_sdk::testing::run(on_execute_post_login, &event);
//! assert_eq!(
//!     result.id_token_claim("https://example.com/roles"),
//!     Some(&serde_json::json!(["admin"]))
//! );
//! ```
//!
//! The wire format between a module and the host is the claimsmith guest ABI (`docs/abi.md`).
//! Modules built with this SDK speak version 4: the host hands them the event in a binary form
//! ([`binary_event`]) that costs far less to read than JSON, with the fields added by version 3
//! ([`IssuerClaims`], `user.groups`) and by version 4 (the login's time, [`Session`], [`Tenant`],
//! enrolled factors, the risk assessment) each in a part of their own. [`Command`] and
//! [`RuleResult`] are the result types, shared with the engine. The `abi-v3` feature builds a
//! version 3 module instead (the same binary form without version 4's part, whose fields then
//! read as empty, and without its commands, which the host refuses from it), `abi-v2` a version 2
//! module, and `abi-v1` a version 1 module (JSON input), for hosts that predate those versions.
//!
//! On `wasm32` the SDK installs a bump allocator as the module's global allocator (default
//! feature `login-heap`): an instance serves one login and is thrown away, so allocation is a
//! pointer bump and nothing is freed. A rule that brings its own `#[global_allocator]` turns the
//! feature off (`default-features = false`).

#![warn(missing_docs)]

mod api;
#[macro_use]
mod wire;
mod binary;
pub mod binary_event;
pub mod binary_result;
mod command;
mod event;
#[doc(hidden)]
pub mod export;
#[cfg(all(target_arch = "wasm32", feature = "login-heap"))]
pub mod login_heap;
pub mod testing;
pub mod time;

pub use api::{
    Access, AccessToken, Api, AuthenticationRequests, IdToken, Log, Multifactor,
    MultifactorOptions, SessionUpdates, UserUpdates,
};
pub use command::{Command, Factor, LogLevel, RuleResult, TokenKind};
#[doc(hidden)]
pub use event::CallerEvent;
pub use event::{
    Authentication, AuthenticationMethod, Authorization, Client, Connection, EnrolledFactor, Event,
    IssuerClaims, Organization, Request, ResourceServer, RiskAssessment, Session, SessionClient,
    SessionDevice, Stats, Tenant, Transaction, User,
};

/// The ABI version this SDK speaks; `claimsmith_abi_version` returns it: 4, or 3 with the
/// `abi-v3` feature, 2 with `abi-v2`, or 1 with `abi-v1` (the oldest version named wins).
pub const ABI_VERSION: i32 = if cfg!(feature = "abi-v1") {
    1
} else if cfg!(feature = "abi-v2") {
    2
} else if cfg!(feature = "abi-v3") {
    3
} else {
    4
};

/// Re-exported so rules can build claim values without naming serde_json themselves.
pub use serde_json::{Value, json};
