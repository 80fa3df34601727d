//! `claimsmith run`: one login from a JSON event, through the configured rules, to signed tokens.
//!
//! stdout carries exactly one JSON object: the tokens and their decoded claims (exit 0), or an
//! OAuth error object (`access_denied`, exit 3; `server_error`, exit 4). Bad input: exit 2 with
//! the cause on stderr and nothing on stdout.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use claimsmith::{Issuer, LoginFailure};
use claimsmith_engine::{RuleStatus, RuleTrace, ShadowReport, ShadowResult};

use super::{EXIT_BAD_INPUT, EXIT_DENIED, EXIT_FAILURE, EXIT_RULE_FAILED, print_json};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The config file.
    #[arg(long)]
    config: PathBuf,
    /// The login event as JSON; `-` reads stdin.
    #[arg(long)]
    event: PathBuf,
    /// Show what each rule did: on stderr, or in the output JSON under `explain` with --json.
    #[arg(long)]
    explain: bool,
    /// With --explain, put the trace in the JSON output instead of on stderr.
    #[arg(long)]
    json: bool,
    /// Indent the JSON output.
    #[arg(long)]
    pretty: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let issuer = Issuer::from_config_file(&args.config)?;
    let bytes = read_event(&args.event)?;
    let event = match issuer.event_from_json(&bytes) {
        Ok(event) => event,
        Err(LoginFailure::BadEvent(err)) => {
            eprintln!("error: {}: {err}", args.event.display());
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        Err(err) => {
            eprintln!("error: {}: {err}", args.event.display());
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let mut shadows = Vec::new();
    let (mut output, code, traces) = match issuer.login(&event) {
        Ok(tokens) => {
            let answer = tokens.to_json();
            shadows = tokens.outcome.shadows;
            (answer, ExitCode::SUCCESS, tokens.outcome.rules)
        }
        Err(LoginFailure::Denied(denied)) => {
            let rules = denied.rules.clone();
            let answer = LoginFailure::Denied(denied).to_json();
            (answer, ExitCode::from(EXIT_DENIED), rules)
        }
        Err(LoginFailure::RuleFailed(failed)) => {
            let rules = failed.rules.clone();
            let answer = LoginFailure::RuleFailed(failed).to_json();
            (answer, ExitCode::from(EXIT_RULE_FAILED), rules)
        }
        Err(LoginFailure::BadEvent(err)) => {
            eprintln!("error: {}: {err}", args.event.display());
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        Err(err @ LoginFailure::Signing(_)) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    if args.explain {
        if args.json {
            output["explain"] = json!(traces.iter().map(explain_json).collect::<Vec<_>>());
            if !shadows.is_empty() {
                output["shadow"] = json!(shadows);
            }
        } else {
            eprint!("{}", explain_text(&traces));
            eprint!("{}", shadow_text(&shadows));
        }
    }
    if args.pretty {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        print_json(&output);
    }
    Ok(code)
}

fn read_event(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the event from stdin")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("cannot read event {}", path.display()))
}

/// One rule's trace as JSON: status, commands by kind, resources.
fn explain_json(trace: &RuleTrace) -> Value {
    let mut value = serde_json::to_value(trace).expect("a trace serializes");
    value["duration_us"] = value["duration"].take();
    value.as_object_mut().expect("object").remove("duration");
    value
}

/// A readable report per shadow rule: what it would have changed in this login.
pub fn shadow_text(reports: &[ShadowReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let stands_in = report
            .shadows
            .as_ref()
            .map(|s| format!(" (candidate for {s})"))
            .unwrap_or_default();
        let result = match &report.result {
            ShadowResult::Same => "same: changes nothing".to_owned(),
            ShadowResult::Differs { .. } => "DIFFERS".to_owned(),
            ShadowResult::WouldDeny { reason } => format!("WOULD DENY: {reason}"),
            ShadowResult::Failed { cause, .. } => format!("FAILED: {cause}"),
        };
        out.push_str(&format!(
            "shadow {}{stands_in} — {result}\n  {:.1} us, {} instructions (not in the login's time)\n",
            report.rule,
            report.duration.as_secs_f64() * 1e6,
            report.fuel_used
        ));
        if let ShadowResult::Differs { changes } = &report.result {
            for claim in &changes.claims {
                let values = match (&claim.actual, &claim.shadow) {
                    (None, None) => String::new(),
                    (actual, shadow) => format!(
                        ": {} -> {}",
                        actual.as_ref().map_or("(none)".into(), |v| v.to_string()),
                        shadow.as_ref().map_or("(none)".into(), |v| v.to_string())
                    ),
                };
                out.push_str(&format!(
                    "  - {} claim {} would be {}{values}\n",
                    claim.token,
                    claim.claim,
                    claim.kind.as_str()
                ));
            }
            for scope in &changes.scopes_added {
                out.push_str(&format!("  - scope {scope} would be added\n"));
            }
            for scope in &changes.scopes_removed {
                out.push_str(&format!("  - scope {scope} would be removed\n"));
            }
            for change in &changes.metadata {
                out.push_str(&format!(
                    "  - {} {} would be {}\n",
                    change.table,
                    change.key,
                    change.kind.as_str()
                ));
            }
            for provider in &changes.mfa_added {
                out.push_str(&format!("  - MFA with {provider} would be required\n"));
            }
            for provider in &changes.mfa_removed {
                out.push_str(&format!(
                    "  - MFA with {provider} would no longer be required\n"
                ));
            }
            if changes.authentication_changed {
                out.push_str("  - the authentication requests would differ\n");
            }
            if changes.session_changed {
                out.push_str("  - the session expiry would differ\n");
            }
        }
    }
    out
}

/// A readable per-rule trace.
pub fn explain_text(traces: &[RuleTrace]) -> String {
    use claimsmith_engine::Command;
    let mut out = String::new();
    for trace in traces {
        let status = match &trace.status {
            RuleStatus::Applied => "applied".to_owned(),
            RuleStatus::Denied { reason } => format!("DENIED: {reason}"),
            RuleStatus::Failed {
                cause,
                skipped: true,
                ..
            } => format!("FAILED (skipped): {cause}"),
            RuleStatus::Failed {
                cause,
                skipped: false,
                ..
            } => format!("FAILED: {cause}"),
        };
        out.push_str(&format!(
            "rule {} — {status}\n  {:.1} us, {} instructions, peak memory {} KiB\n",
            trace.rule,
            trace.duration.as_secs_f64() * 1e6,
            trace.fuel_used,
            trace.peak_memory_bytes / 1024
        ));
        for command in &trace.commands {
            let line = match command {
                Command::SetClaim { token, name, value } => {
                    format!("set {token} claim {name} = {value}")
                }
                Command::RemoveClaim { token, name } => format!("remove {token} claim {name}"),
                Command::AddScope { scope } => format!("add scope {scope}"),
                Command::RemoveScope { scope } => format!("remove scope {scope}"),
                Command::Deny { reason } => format!("deny: {reason}"),
                Command::SetAppMetadata { key, value } => format!("app_metadata {key} = {value}"),
                Command::SetUserMetadata { key, value } => format!("user_metadata {key} = {value}"),
                Command::EnableMfa {
                    provider,
                    allow_remember_browser,
                } => format!(
                    "require MFA with {provider}{}",
                    if *allow_remember_browser {
                        " (a remembered browser may skip it)"
                    } else {
                        ""
                    }
                ),
                Command::ChallengeWith {
                    factor,
                    additional_factors,
                } => format!(
                    "challenge with {}{}",
                    factor.kind,
                    alternatives(additional_factors)
                ),
                Command::ChallengeWithAny { factors } => format!(
                    "challenge with any of {}",
                    factors
                        .iter()
                        .map(|f| f.kind.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Command::EnrollWith {
                    factor,
                    additional_factors,
                } => format!("enroll {}{}", factor.kind, alternatives(additional_factors)),
                Command::SetSessionExpiresAt { expires_at } => format!(
                    "session expires at {}",
                    claimsmith_sdk::time::format_rfc3339(*expires_at as i64)
                ),
                Command::SetSessionIdleExpiresAt { idle_expires_at } => format!(
                    "session expires if idle at {}",
                    claimsmith_sdk::time::format_rfc3339(*idle_expires_at as i64)
                ),
                Command::Log { level, message } => format!("log {}: {message}", level.as_str()),
            };
            out.push_str(&format!("  - {line}\n"));
        }
    }
    out
}

/// ` (or a, b)` for a request's alternatives, or nothing.
fn alternatives(factors: &[claimsmith_sdk::Factor]) -> String {
    if factors.is_empty() {
        return String::new();
    }
    let kinds: Vec<&str> = factors.iter().map(|f| f.kind.as_str()).collect();
    format!(" (or {})", kinds.join(", "))
}
