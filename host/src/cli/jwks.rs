//! `claimsmith jwks`: the public keys, for `/.well-known/jwks.json`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use claimsmith::config::Config;
use claimsmith::keys::{KeySet, SigningKey};

pub fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let mut keys = Vec::new();
    for (i, key) in config.keys.iter().enumerate() {
        let loaded = SigningKey::load(&key.kid, &key.alg, &key.private_key)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{}: `keys[{i}]`", config.path.display()))?;
        keys.push(loaded);
    }
    let keys = KeySet::new(keys).context("no keys")?;
    println!("{}", serde_json::to_string_pretty(&keys.jwks())?);
    Ok(ExitCode::SUCCESS)
}
