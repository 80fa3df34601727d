//! # claimsmith-server
//!
//! `claimsmith serve`: the token-hook server that issuers not written in Rust call when they
//! mint a token. Each `[[server.hooks]]` entry of the config is a `POST` path in one format:
//! claimsmith's own (a login event in, signed tokens out) or an issuer's (Ory Hydra, Okta,
//! Supabase, Zitadel, Cognito: the issuer's request in, its response out, the rules' claims in
//! it). Every format fails closed: a denial, a rule failure, a timeout or a command the format
//! cannot carry is answered with that format's denial or error, never a silent pass.
//!
//! A request flows through `server.rs` (the connection), `answer.rs` (routing, limits, the
//! request's deadline), `auth.rs` (the caller's key or signature), `hook/` (the issuer's
//! request into a login event, and the rules' outcome into its response), the issuer's rules
//! (`claimsmith`'s `Issuer`), and `metrics.rs`. `deployment.rs` holds the loaded config, which
//! SIGHUP replaces whole; `config.rs` reads the `[server]` table.

#![warn(missing_docs)]

mod answer;
mod auth;
mod config;
mod decision;
mod deployment;
mod error;
mod hook;
mod metrics;
mod server;
mod summary;
mod tls;

pub use config::DEFAULT_LISTEN;
pub use error::ServeError;
pub use server::serve;
pub use summary::{HookSummary, check};
