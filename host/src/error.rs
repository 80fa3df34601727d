//! Typed errors of the host: a config that cannot be used, and a login that gets no tokens.

use std::path::{Path, PathBuf};

use crate::keys::KeyError;
use claimsmith_engine::{Denied, EventError, LoadError, RuleFailed};

/// The config, a key or a rule module cannot be used; names the file and the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TOML syntax or shape (unknown keys, wrong types), with line and column.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{}: `{field}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field (`keys[0].alg`, `rules[2].secrets.API_KEY`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A rule module cannot be loaded.
    #[error("{}: {source}", path.display())]
    Rule {
        /// The config file.
        path: PathBuf,
        /// The rule and why.
        source: LoadError,
    },
}

/// A login that ends without tokens.
#[derive(Debug, thiserror::Error)]
pub enum LoginFailure {
    /// The event is unusable (exit 2 in the CLI).
    #[error("bad event: {0}")]
    BadEvent(#[from] EventError),
    /// A rule denied the login (`access_denied`, exit 3).
    #[error(transparent)]
    Denied(Denied),
    /// A rule failed with `on_error = "deny"` (`server_error`, exit 4).
    #[error(transparent)]
    RuleFailed(RuleFailed),
    /// Signing failed (`server_error`).
    #[error(transparent)]
    Signing(KeyError),
}

impl ConfigError {
    /// The TOML in `text`, read from `path`, does not parse or has the wrong shape: the parser's
    /// `message` (its lines joined) at the line and column where `span` starts. The source line
    /// is not quoted: it may hold a secret written in the config.
    pub fn parse(
        path: &Path,
        text: &str,
        span: Option<std::ops::Range<usize>>,
        message: &str,
    ) -> ConfigError {
        let message = without_quoted_strings(
            &message
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        );
        let message = match span {
            Some(span) => {
                let mut at = span.start.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let before = &text[..at];
                let line = before.matches('\n').count() + 1;
                let column = before
                    .rsplit('\n')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .count()
                    + 1;
                format!("line {line}, column {column}: {message}")
            }
            None => message,
        };
        ConfigError::Parse {
            path: path.to_owned(),
            message,
        }
    }
}

/// `message` with every string value serde quotes (`string "…"`, escaped as Rust's `Debug` does)
/// put as `a string`: a secret written where another type belongs would be quoted whole.
fn without_quoted_strings(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(QUOTED) {
        out.push_str(&rest[..at]);
        let quoted = &rest[at + QUOTED.len()..];
        let mut escaped = false;
        let end = quoted.char_indices().find_map(|(i, c)| match c {
            _ if escaped => {
                escaped = false;
                None
            }
            '\\' => {
                escaped = true;
                None
            }
            '"' => Some(i + 1),
            _ => None,
        });
        out.push_str("a string");
        // An unterminated quote: drop the rest rather than print part of it.
        rest = end.map_or("", |end| &quoted[end..]);
    }
    out.push_str(rest);
    out
}

impl LoginFailure {
    /// The OAuth error object for this failure, as `claimsmith run` prints it and the
    /// `claimsmith` hook format returns it: `error` (`access_denied` for a denial,
    /// `invalid_request` for a bad event, `server_error` otherwise), `error_description`, and
    /// `rule` when a rule denied or failed.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            LoginFailure::Denied(denied) => json!({
                "error": "access_denied",
                "error_description": denied.reason,
                "rule": denied.rule,
            }),
            LoginFailure::RuleFailed(failed) => json!({
                "error": "server_error",
                "error_description": failed.to_string(),
                "rule": failed.rule,
            }),
            LoginFailure::BadEvent(error) => json!({
                "error": "invalid_request",
                "error_description": format!("bad event: {error}"),
            }),
            LoginFailure::Signing(_) => json!({
                "error": "server_error",
                "error_description": "the tokens could not be signed",
            }),
        }
    }
}
