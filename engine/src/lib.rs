//! # claimsmith-engine
//!
//! Runs claimsmith rule modules after a login and turns what they decided into an [`Outcome`].
//!
//! Build a [`Pipeline`] once ([`Pipeline::builder`]: sandbox settings, claim namespaces, an
//! artifact cache, the rules in order), turn each login's event into a [`LoginEvent`] with
//! [`Pipeline::event_from_json`] (the one way in: it checks the required fields), and
//! [`Pipeline::run`] it: the [`Outcome`] with a [`RuleTrace`] per rule, or a typed
//! [`LoginError`].
//!
//! A login flows through these files in order:
//! - `login_event.rs`: the event checked (each of its structs a JSON object: `objects_only.rs`)
//!   and encoded at most once per form;
//! - `pipeline.rs`: the rules in order, their commands applied under the claim policy
//!   (`draft.rs`, `claim_policy.rs`, `reserved_claims.rs`), their logs capped (`rule_logs.rs`);
//! - `engines.rs`: which engine runs each rule (`engine_by_cpu.rs`), with a fallback when an
//!   engine's instance slots are all taken;
//! - `rule_run.rs`: one rule in one fresh instance of `engine.rs`'s wasmtime engine (fuel,
//!   deadline, memory cap, the two host functions), on a thread with the stack for it
//!   (`thread_stack.rs`);
//! - `rule.rs` and `validated_module.rs`: a module checked against the guest ABI once, at
//!   load, its compiled code kept across restarts by `artifact_cache.rs`;
//! - `outcome.rs`: what the rules decided;
//! - `shadow.rs`: what the shadow rules (`mode = "shadow"`) would have changed, run after the
//!   outcome is final and reported beside it.
//!
//! No file formats and no signing here: the `claimsmith` crate reads the config and mints
//! tokens.

#![warn(missing_docs)]

mod artifact_cache;
mod claim_policy;
mod custom_section;
mod draft;
mod engine;
mod engine_by_cpu;
mod engines;
mod error;
mod javascript;
mod limits;
mod login_event;
mod objects_only;
mod outcome;
mod pipeline;
mod prewarm;
mod reserved_claims;
mod rule;
mod rule_logs;
mod rule_run;
mod shadow;
mod thread_stack;
mod validated_module;

pub use artifact_cache::ArtifactSource;
pub use claim_policy::PolicyViolation;
pub use engine::SandboxConfig;
pub use error::{
    BuildError, Denied, EventError, LoadError, LoadErrorKind, LoginError, RuleFailed, RuleFailure,
};
pub use javascript::{JAVASCRIPT_SECTION, is_javascript_module};
pub use limits::Limits;
pub use login_event::LoginEvent;
pub use objects_only::ObjectsOnly;
pub use outcome::{
    AuthenticationRequest, Diagnostic, Outcome, RuleLog, RuleStatus, RuleTrace, SessionRequest,
};
pub use pipeline::{Pipeline, PipelineBuilder};
pub use rule::{ModuleDigest, OnError, Rule, RuleMode, RuleSpec};
pub use shadow::{
    ChangeKind, ClaimChange, MetadataChange, ShadowChanges, ShadowReport, ShadowResult,
};

pub use claimsmith_sdk::{
    Command, Event, Factor, LogLevel, Reads, RuleResult, TokenKind, UnknownPart,
};

/// The newest guest ABI version this engine runs (it runs every version in
/// [`ABI_VERSIONS`]).
pub const ABI_VERSION: i32 = 6;

/// Every guest ABI version this engine runs: version 1 (JSON input), version 2 (binary input),
/// version 3 (version 2's input, then the fields added since), version 4 (version 3's input,
/// then the fields added in version 4; the authentication and session commands), version 5
/// (version 1's JSON at version 4's level) and version 6 (binary, only the members of the event
/// the module declares it reads).
pub const ABI_VERSIONS: [i32; 6] = [1, 2, 3, 4, 5, 6];

/// What the workspace's own tests and benchmarks reach from inside the engine. Not an API: it
/// may change in any release.
#[doc(hidden)]
pub mod internals {
    pub use crate::claim_policy::ClaimPolicy;
    pub use crate::draft::{Draft, Stop, apply};
    pub use crate::reserved_claims::is_reserved;

    use crate::{Pipeline, RuleFailure, RuleResult};

    /// Read a version 2 result document (the binary form) as the host does.
    pub fn parse_binary_result(bytes: &[u8]) -> Result<RuleResult, RuleFailure> {
        crate::rule_run::parse_binary_result(bytes)
    }

    /// Read a version 1 result document (JSON) as the host does.
    pub fn parse_result(bytes: &[u8]) -> Result<RuleResult, RuleFailure> {
        crate::rule_run::parse_result(bytes)
    }

    /// Create a fresh store and instance of the pipeline's rule `index` on its first engine
    /// and drop them without calling it: the fixed cost every rule pays on every login.
    pub fn instantiate_only(pipeline: &Pipeline, index: usize) -> Result<(), RuleFailure> {
        pipeline.instantiate_only(index)
    }

    /// An event from JSON bytes, checked as [`Pipeline::event_from_json`] checks it, its bytes
    /// kept for version 1 rules: for benchmarks that make events before their pipelines.
    pub fn event_from_json(bytes: &[u8]) -> Result<crate::LoginEvent, crate::EventError> {
        let event = crate::login_event::LoginEvent::parse_json(bytes, true)?;
        event.check_required()?;
        Ok(event)
    }

    /// [`event_from_json`] for a JSON value.
    pub fn event_from_value(
        value: serde_json::Value,
    ) -> Result<crate::LoginEvent, crate::EventError> {
        let event = crate::login_event::LoginEvent::from_value(value)?;
        event.check_required()?;
        Ok(event)
    }

    /// A version 1 rule's whole input document for `event`, after `prefix`.
    pub fn json_input(event: &crate::LoginEvent, prefix: &str) -> Vec<u8> {
        event.json_input(prefix).concat()
    }

    /// The constant start of a version 1 rule's input document with this configuration and
    /// these secrets.
    pub fn input_prefix(
        configuration: &serde_json::Map<String, serde_json::Value>,
        secrets: &serde_json::Map<String, serde_json::Value>,
    ) -> String {
        crate::login_event::input_prefix(configuration, secrets)
    }
}
