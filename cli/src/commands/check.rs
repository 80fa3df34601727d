//! `claimsmith check`: load everything a login needs, report what is wrong.

use std::path::Path;
use std::process::ExitCode;

use claimsmith::Issuer;

pub fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let issuer = Issuer::from_config_file(config)?;
    let rules: Vec<&str> = issuer.pipeline().rules().iter().map(|r| r.name()).collect();
    println!(
        "ok: {} key(s), {} rule(s): {}",
        issuer.keys().keys().len(),
        rules.len(),
        rules.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
