//! `claimsmith check`: load everything a login needs, report what is wrong; with a `[server]`
//! table, check it as `claimsmith serve` would (hooks, rules, authentication, secrets).

use std::path::Path;
use std::process::ExitCode;

use claimsmith::{Issuer, Reads, Rule};

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
        println!("  {}", reads_line(rule));
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

/// What a rule reads of the event, for `check` and `build`: `reads: authorization, login_time,
/// configuration (ABI version 6)`, or `reads: every member of the event (ABI version 4: ...)`.
pub(super) fn reads_line(rule: &Rule) -> String {
    let reads = rule.reads();
    let version = rule.abi_version();
    if reads == Reads::ALL {
        let why = if version == 6 {
            "declares no `reads`"
        } else {
            "only version 6 modules declare what they read"
        };
        format!("reads: every member of the event (ABI version {version}: {why})")
    } else {
        format!("reads: {reads} (ABI version {version})")
    }
}
