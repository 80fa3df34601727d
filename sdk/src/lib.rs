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
//! // One line makes it a claimsmith rule module when built for wasm32-unknown-unknown, reading
//! // only the roles and its own configuration (every other member of the event reads as empty).
//! claimsmith_sdk::export_rule!(on_execute_post_login, reads = [authorization, configuration]);
//!
//! // The native harness runs the same function without wasm, for `cargo test`, on the members
//! // it declares: the user here never reaches it.
//! let event: Event = serde_json::from_value(serde_json::json!({
//!     "user": { "user_id": "auth0|1" },
//!     "authorization": { "roles": ["admin"] }
//! })).unwrap();
//! let result = claimsmith_sdk::testing::run(RULE, &event);
//! assert_eq!(
//!     result.id_token_claim("https://example.com/roles"),
//!     Some(&serde_json::json!(["admin"]))
//! );
//! ```
//!
//! The wire format between a module and the host is the claimsmith guest ABI (`docs/abi.md`).
//! Modules built with this SDK speak version 6: the host hands them, in a binary form
//! ([`binary_event`]) that costs far less to read than JSON, only the members of the event the
//! rule declares it reads (`export_rule!(f, reads = [authorization, configuration])`, see
//! [`Reads`]); every other member reads as empty, in the module and in [`testing::run`] alike.
//! [`Command`] and [`RuleResult`] are the result types, shared with the engine. The `abi-v4`
//! feature builds a version 4 module instead (every member, whatever the rule declares), `abi-v3`
//! a version 3 module (without version 4's fields, which then read as empty, and without its
//! commands, which the host refuses from it), `abi-v2` a version 2 module, and `abi-v1` a version
//! 1 module (JSON input), for hosts that predate those versions.
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
mod reads;
pub mod testing;
pub mod time;

pub use api::{
    Access, AccessToken, Api, AuthenticationRequests, IdToken, Log, Multifactor,
    MultifactorOptions, SessionUpdates, UserUpdates,
};
pub use command::{Command, Factor, LogLevel, RuleResult, TokenKind};
#[doc(hidden)]
pub use event::CallerEvent;
#[doc(hidden)]
pub use event::parts;
pub use event::{
    Authentication, AuthenticationMethod, Authorization, Client, Connection, EnrolledFactor, Event,
    IssuerClaims, Organization, Request, ResourceServer, RiskAssessment, Session, SessionClient,
    SessionDevice, Stats, Tenant, Transaction, User,
};
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub use event::{BorrowedEvent, borrowed};
pub use export::ExportedRule;
pub use reads::{Reads, UnknownPart};

/// The ABI version this SDK speaks; `claimsmith_abi_version` returns it: 6, or 4 with the
/// `abi-v4` feature, 3 with `abi-v3`, 2 with `abi-v2`, or 1 with `abi-v1` (the oldest version
/// named wins).
pub const ABI_VERSION: i32 = if cfg!(feature = "abi-v1") {
    1
} else if cfg!(feature = "abi-v2") {
    2
} else if cfg!(feature = "abi-v3") {
    3
} else if cfg!(feature = "abi-v4") {
    4
} else {
    6
};

/// Re-exported so rules can build claim values without naming serde_json themselves.
pub use serde_json::{Value, json};
