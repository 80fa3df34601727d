//! The rules of a config, in order, run on one login: each in a fresh instance, its commands
//! checked against the claim policy and applied all or none, until the end, a denial, or a
//! failure of a rule whose `on_error` is `deny`.

use std::path::Path;

use crate::claim_policy::ClaimPolicy;
use crate::draft::{Draft, Stop, apply};
use crate::error::{Denied, LoadError, LoadErrorKind, LoginError, RuleFailed};
use crate::login_event::LoginEvent;
use crate::outcome::{Diagnostic, Outcome, RuleLog, RuleStatus, RuleTrace};
use crate::rule::{OnError, Rule, RuleSpec, read_module};
use crate::rule_run;
use crate::sandbox::Sandbox;
use crate::validated_module::ValidatedModule;
use claimsmith_sdk::{Command, LogLevel};

/// The configured rules and the policy they run under. `Send + Sync`: build once, run every
/// login from any thread.
#[derive(Debug)]
pub struct Pipeline {
    sandbox: Sandbox,
    policy: ClaimPolicy,
    rules: Vec<Rule>,
}

impl Pipeline {
    /// An empty pipeline: no rules yet.
    pub fn new(sandbox: Sandbox, policy: ClaimPolicy) -> Pipeline {
        Pipeline {
            sandbox,
            policy,
            rules: Vec::new(),
        }
    }

    /// Load a rule from module bytes and append it.
    pub fn add_rule(&mut self, spec: RuleSpec, bytes: &[u8]) -> Result<&Rule, LoadError> {
        self.check_new_name(&spec)?;
        let secrets = spec.secrets.clone();
        let known: Vec<&ValidatedModule> = self.rules.iter().map(Rule::module).collect();
        let rule = Rule::from_bytes_sharing(&self.sandbox, &self.policy, spec, bytes, &known)?;
        self.push(rule, secrets)
    }

    /// Load a rule from a module file and append it.
    pub fn add_rule_file(&mut self, spec: RuleSpec, path: &Path) -> Result<&Rule, LoadError> {
        let bytes = read_module(path, spec.limits.module_bytes).map_err(|kind| LoadError {
            rule: spec.name.clone(),
            kind,
        })?;
        self.add_rule(spec, &bytes)
    }

    fn check_new_name(&self, spec: &RuleSpec) -> Result<(), LoadError> {
        let problem = if spec.name.trim().is_empty() {
            "a rule needs a non-empty name"
        } else if self.rules.iter().any(|r| r.name() == spec.name) {
            "another rule already has this name"
        } else {
            return Ok(());
        };
        Err(LoadError {
            rule: spec.name.clone(),
            kind: LoadErrorKind::Settings(problem.into()),
        })
    }

    fn push(
        &mut self,
        rule: Rule,
        secrets: std::collections::BTreeMap<String, String>,
    ) -> Result<&Rule, LoadError> {
        self.policy.add_secrets(secrets);
        self.rules.push(rule);
        Ok(self.rules.last().expect("just pushed"))
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The claim policy.
    pub fn policy(&self) -> &ClaimPolicy {
        &self.policy
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Run every rule on `event`: the outcome, or why the login gets no tokens.
    pub fn run(&self, event: &LoginEvent) -> Result<Outcome, LoginError> {
        let requested = &event.event().transaction.requested_scopes;
        let mut draft = Draft::default();
        for scope in requested {
            if !draft.scopes.contains(scope) {
                draft.scopes.push(scope.clone());
            }
        }
        let mut outcome = Outcome::default();
        for rule in &self.rules {
            let input = rule.input(event);
            let run = rule_run::run(&self.sandbox, rule, input.pieces());
            let mut logs = LogSink::new(rule, &self.policy, &mut outcome.logs);
            for (level, message) in run.host_logs {
                logs.push(level, &message);
            }
            if run.log_dropped > 0 {
                logs.dropped += run.log_dropped;
            }
            let mut trace = RuleTrace {
                rule: rule.name.clone(),
                status: RuleStatus::Applied,
                commands: Vec::new(),
                fuel_used: run.fuel_used,
                peak_memory_bytes: run.peak_memory,
                duration: run.duration,
            };
            let applied = match run.result {
                Err(failure) => Err(Stop::Failed(failure)),
                Ok(result) => {
                    let applied = match rule.on_error {
                        OnError::Deny => apply(
                            &self.policy,
                            &rule.namespaces,
                            &result.commands,
                            &mut draft,
                            &mut |l, m| logs.push(l, m),
                        ),
                        OnError::Skip => {
                            let mut staged = draft.clone();
                            let applied = apply(
                                &self.policy,
                                &rule.namespaces,
                                &result.commands,
                                &mut staged,
                                &mut |l, m| logs.push(l, m),
                            );
                            if applied.is_ok() {
                                draft = staged;
                            }
                            applied
                        }
                    };
                    trace.commands = result.commands;
                    self.redact_texts(&mut trace.commands);
                    applied
                }
            };
            logs.finish();
            match applied {
                Ok(()) => outcome.rules.push(trace),
                Err(Stop::Denied(reason)) => {
                    // Commands after the deny were never checked: keep the trace to what ran.
                    if let Some(at) = trace
                        .commands
                        .iter()
                        .position(|c| matches!(c, Command::Deny { .. }))
                    {
                        trace.commands.truncate(at + 1);
                    }
                    trace.status = RuleStatus::Denied {
                        reason: reason.clone(),
                    };
                    outcome.rules.push(trace);
                    let rule = rule.name.clone();
                    tracing::info!(target: "claimsmith::login", rule = %rule, reason = %reason, "login denied");
                    return Err(LoginError::Denied(Denied {
                        rule,
                        reason,
                        rules: outcome.rules,
                    }));
                }
                Err(Stop::Failed(cause)) => {
                    let cause = cause.redacted(&self.policy);
                    let skipped = rule.on_error == OnError::Skip;
                    trace.status = RuleStatus::Failed {
                        cause: cause.to_string(),
                        skipped,
                    };
                    trace.commands.clear();
                    outcome.rules.push(trace);
                    let rule = rule.name.clone();
                    if !skipped {
                        tracing::warn!(target: "claimsmith::login", rule = %rule, cause = %cause, "rule failed; login fails closed");
                        return Err(LoginError::RuleFailed(RuleFailed {
                            rule,
                            cause,
                            rules: outcome.rules,
                        }));
                    }
                    tracing::warn!(target: "claimsmith::login", rule = %rule, cause = %cause, "rule failed; skipped (on_error = \"skip\")");
                    outcome.diagnostics.push(Diagnostic {
                        message: format!(
                            "rule `{rule}` {cause}; skipped, none of its commands were applied"
                        ),
                        rule: Some(rule),
                    });
                }
            }
        }
        outcome.scopes_added = draft
            .scopes
            .iter()
            .filter(|s| !requested.contains(s))
            .cloned()
            .collect();
        outcome.scopes_removed = requested
            .iter()
            .filter(|s| !draft.scopes.contains(s))
            .cloned()
            .collect();
        outcome.scopes_removed.dedup();
        outcome.id_token = draft.id_token;
        outcome.access_token = draft.access_token;
        outcome.scopes = draft.scopes;
        outcome.app_metadata = draft.app_metadata;
        outcome.user_metadata = draft.user_metadata;
        outcome.mfa = draft.mfa;
        Ok(outcome)
    }

    /// Redact secret values in the free-text parts of commands kept for traces.
    fn redact_texts(&self, commands: &mut [Command]) {
        for command in commands {
            match command {
                Command::Deny { reason: text } | Command::Log { message: text, .. } => {
                    *text = self.policy.redact(text);
                }
                _ => {}
            }
        }
    }
}

/// A rule's log lines on their way to `tracing` and the outcome: secrets redacted, capped at the
/// rule's log limit.
struct LogSink<'a> {
    rule: &'a Rule,
    policy: &'a ClaimPolicy,
    out: &'a mut Vec<RuleLog>,
    used: usize,
    dropped: usize,
}

impl<'a> LogSink<'a> {
    fn new(rule: &'a Rule, policy: &'a ClaimPolicy, out: &'a mut Vec<RuleLog>) -> Self {
        LogSink {
            rule,
            policy,
            out,
            used: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, level: LogLevel, message: &str) {
        let budget = self.rule.limits.log_bytes.saturating_sub(self.used);
        let mut message = self.policy.redact(message);
        if message.len() > budget {
            self.dropped += message.len() - budget;
            let mut cut = budget;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        if message.is_empty() {
            return;
        }
        self.used += message.len();
        emit(&self.rule.name, level, &message);
        self.out.push(RuleLog {
            rule: self.rule.name.clone(),
            level,
            message,
        });
    }

    fn finish(self) {
        if self.dropped > 0 {
            let message = format!(
                "[{} log bytes dropped: over the log limit of {} bytes]",
                self.dropped, self.rule.limits.log_bytes
            );
            emit(&self.rule.name, LogLevel::Warn, &message);
            self.out.push(RuleLog {
                rule: self.rule.name.clone(),
                level: LogLevel::Warn,
                message,
            });
        }
    }
}

fn emit(rule: &str, level: LogLevel, message: &str) {
    match level {
        LogLevel::Trace => tracing::trace!(target: "claimsmith::rule", rule, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "claimsmith::rule", rule, "{message}"),
        LogLevel::Info => tracing::info!(target: "claimsmith::rule", rule, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "claimsmith::rule", rule, "{message}"),
        LogLevel::Error => tracing::error!(target: "claimsmith::rule", rule, "{message}"),
    }
}
