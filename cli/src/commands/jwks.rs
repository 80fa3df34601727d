//! `claimsmith jwks`: the public keys, for `/.well-known/jwks.json`.

use std::path::Path;
use std::process::ExitCode;

use claimsmith::{Config, KeySet};

pub fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let keys = KeySet::from_config(&config)?;
    println!("{}", serde_json::to_string_pretty(&keys.jwks())?);
    Ok(ExitCode::SUCCESS)
}
