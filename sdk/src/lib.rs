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
//! Modules built with this SDK speak version 3: the host hands them the event in a binary form
//! ([`binary_event`]) that costs far less to read than JSON, with the fields added since version
//! 2 ([`IssuerClaims`], `user.groups`) in a part of their own. [`Command`] and [`RuleResult`] are
//! the result types, shared with the engine. The `abi-v2` feature builds a version 2 module
//! instead (the same binary form without the fields added since, which then read as empty), and
//! `abi-v1` a version 1 module (JSON input), for hosts that predate those versions.
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

pub use api::{Access, AccessToken, Api, IdToken, Log, Multifactor, UserUpdates};
pub use command::{Command, LogLevel, RuleResult, TokenKind};
#[doc(hidden)]
pub use event::CallerEvent;
pub use event::{
    Authentication, AuthenticationMethod, Authorization, Client, Connection, Event, IssuerClaims,
    Organization, Request, ResourceServer, Stats, Transaction, User,
};

/// The ABI version this SDK speaks; `claimsmith_abi_version` returns it: 3, or 2 with the
/// `abi-v2` feature, or 1 with `abi-v1` (which wins if both are on).
pub const ABI_VERSION: i32 = if cfg!(feature = "abi-v1") {
    1
} else if cfg!(feature = "abi-v2") {
    2
} else {
    3
};

/// Re-exported so rules can build claim values without naming serde_json themselves.
pub use serde_json::{Value, json};
