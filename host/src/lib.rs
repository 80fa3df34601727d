//! # claimsmith (host)
//!
//! The issuer side of claimsmith: read a TOML [`config`], load signing [`keys`] and rule modules
//! once into an [`Issuer`]; then per login hand it the event and get back a signed
//! [`id_token`] and [`access_token`], or a typed denial or failure.
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

pub mod access_token;
pub mod config;
pub mod error;
pub mod fixture;
pub mod id_token;
pub mod issuer;
pub mod keys;
pub mod latency;
pub mod rule_crate;
pub mod scaffold;
pub mod signer;

pub use config::Config;
pub use error::{ConfigError, LoginFailure};
pub use issuer::{Issuer, LoginTimings, Tokens};
pub use keys::{KeySet, SigningKey};

pub use claimsmith_engine as engine;
