//! # claimsmith-cli
//!
//! The `claimsmith` command and the tools behind it, for the people who write rules and run
//! issuers: run and explain a login, check a config, publish the JWKS, generate keys; scaffold,
//! build and test rule crates; benchmark logins.
//!
//! The binary (`src/main.rs`) only parses arguments and calls [`dispatch`]. Issuers embed the
//! `claimsmith` library instead; nothing here is meant to be linked by them.

mod commands;
mod fixture;
mod js_action;
mod latency;
mod rule_crate;
mod scaffold;

pub use commands::{
    Cli, EXIT_BAD_INPUT, EXIT_DENIED, EXIT_FAILURE, EXIT_RULE_FAILED, describe, dispatch,
    init_logging,
};

/// What the workspace's own tests and benches use from inside: not an API.
#[doc(hidden)]
pub mod internals {
    pub use crate::latency::{Latencies, micros, resident_bytes};
    pub use crate::rule_crate::{BuiltRule, build, build_with_features, default_target_dir};
}
