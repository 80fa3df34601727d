//! # claimsmith-engine
//!
//! Runs claimsmith rule modules after a login and turns what they decided into an [`Outcome`].
//!
//! A login flows through these files in order:
//! - [`sandbox`]: the one wasmtime engine every rule runs in (fuel, deadlines, pooled instances);
//! - [`validated_module`] and [`rule`]: a module checked against the guest ABI once, at load,
//!   its compiled code kept across restarts by the [`artifact_cache`];
//! - [`login_event`]: the event checked (each of its structs a JSON object: `objects_only`) and
//!   serialized once per login;
//! - [`pipeline`]: the rules in order, each in a fresh instance ([`rule_run`]), on the engine of
//!   the CPU the login starts on (`engine_by_cpu`);
//! - [`claim_policy`]: what a rule's commands may do to the tokens;
//! - [`outcome`]: claims per token, scopes, metadata and per-rule traces, or a typed
//!   [`LoginError`] (`Denied`, `RuleFailed`).
//!
//! No file formats and no signing here: the host crate reads config and mints tokens (its config
//! reader uses [`ObjectsOnly`] too, so a TOML table cannot be given as an array either).

pub mod artifact_cache;
pub mod claim_policy;
pub mod draft;
mod engine_by_cpu;
pub mod error;
pub mod limits;
pub mod login_event;
pub mod objects_only;
pub mod outcome;
pub mod pipeline;
pub mod reserved_claims;
pub mod rule;
pub mod rule_run;
pub mod sandbox;
pub mod validated_module;

pub use artifact_cache::{ArtifactCache, ArtifactSource};
pub use claim_policy::{ClaimPolicy, PolicyViolation};
pub use draft::Draft;
pub use error::{
    Denied, EventError, LoadError, LoadErrorKind, LoginError, RuleFailed, RuleFailure,
};
pub use limits::Limits;
pub use login_event::LoginEvent;
pub use objects_only::ObjectsOnly;
pub use outcome::{Diagnostic, Outcome, RuleLog, RuleStatus, RuleTrace};
pub use pipeline::Pipeline;
pub use rule::{OnError, Rule, RuleSpec};
pub use rule_run::{parse_binary_result, parse_result};
pub use sandbox::{Sandbox, SandboxConfig};

pub use claimsmith_sdk::{Command, LogLevel, RuleResult, TokenKind};

/// The newest guest ABI version this engine runs (it runs every version in
/// [`ABI_VERSIONS`]).
pub const ABI_VERSION: i32 = 2;

/// Every guest ABI version this engine runs: version 1 (JSON input) and version 2 (binary input).
pub const ABI_VERSIONS: [i32; 2] = [1, 2];
