//! `claimsmith check`: load everything a login needs, report what is wrong; with a `[server]`
//! table, check it as `claimsmith serve` would (hooks, rules, authentication, secrets).

use std::path::Path;
use std::process::ExitCode;

use claimsmith::Issuer;

pub fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let issuer = Issuer::from_config_file(config)?;
    let hooks = claimsmith_server::check(issuer.config())?;
    let rules: Vec<&str> = issuer.pipeline().rules().iter().map(|r| r.name()).collect();
    println!(
        "ok: {} key(s), {} rule(s): {}",
        issuer.keys().keys().len(),
        rules.len(),
        rules.join(", ")
    );
    for rule in issuer.pipeline().rules() {
        let mode = match (rule.mode(), rule.shadows()) {
            (claimsmith::RuleMode::Enforce, _) => String::new(),
            (claimsmith::RuleMode::Shadow, None) => " (shadow)".into(),
            (claimsmith::RuleMode::Shadow, Some(target)) => format!(" (shadow of {target})"),
        };
        println!("rule {}{mode}: sha256 = \"{}\"", rule.name(), rule.sha256());
    }
    for hook in hooks.unwrap_or_default() {
        println!(
            "hook {} ({}, auth {}): {}",
            hook.path,
            hook.format,
            hook.auth,
            hook.rules.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
