//! The rules of a config, in order, run on one login: each in a fresh instance, its commands
//! checked against the claim policy and applied all or none, until the end, a denial, or a
//! failure of a rule whose `on_error` is `deny`.

use std::path::Path;

use crate::claim_policy::ClaimPolicy;
use crate::draft::{Draft, Stop, apply};
use crate::engine_by_cpu::EngineByCpu;
use crate::error::{
    Denied, EventError, LoadError, LoadErrorKind, LoginError, RuleFailed, RuleFailure,
};
use crate::login_event::LoginEvent;
use crate::outcome::{Diagnostic, Outcome, RuleLog, RuleStatus, RuleTrace};
use crate::rule::{OnError, Rule, RuleSpec, read_module};
use crate::rule_run::{self, RuleRun};
use crate::sandbox::Sandbox;
use crate::validated_module::ValidatedModule;
use claimsmith_sdk::{Command, LogLevel};

/// The configured rules and the policy they run under. `Send + Sync`: build once, run every
/// login from any thread.
///
/// The rules are loaded into each of the sandbox's engines ([`SandboxConfig::engines`]), and a
/// login runs on the engine of the CPU it starts on, so that logins running at once on
/// different CPUs mostly work on different engines' shared state. Every engine runs the same
/// rules under the same policy, and a rule that finds its engine's instance slots all taken
/// runs on another engine's: which engine a login runs on changes nothing in its outcome.
///
/// [`SandboxConfig::engines`]: crate::SandboxConfig::engines
#[derive(Debug)]
pub struct Pipeline {
    policy: ClaimPolicy,
    /// One per engine; the first is the sandbox the pipeline was built with.
    shards: Vec<Shard>,
    /// The engine of each CPU.
    engine_by_cpu: EngineByCpu,
    /// Whether a version 1 rule is loaded: only those need the caller's event bytes.
    has_version_1: bool,
}

/// One engine's sandbox and its own load of every rule.
#[derive(Debug)]
struct Shard {
    sandbox: Sandbox,
    rules: Vec<Rule>,
}

impl Shard {
    fn modules(&self) -> Vec<&ValidatedModule> {
        self.rules.iter().map(Rule::module).collect()
    }
}

impl Pipeline {
    /// An empty pipeline: no rules yet. Besides `sandbox`, it builds the further engines the
    /// sandbox's config asks for; one that cannot be built (the address space for its instance
    /// pool, say) is logged and left out.
    pub fn new(sandbox: Sandbox, policy: ClaimPolicy) -> Pipeline {
        let config = sandbox.config().clone();
        let mut shards = vec![Shard {
            sandbox,
            rules: Vec::new(),
        }];
        for _ in 1..config.engine_count() {
            match Sandbox::new(config.clone()) {
                Ok(sandbox) => shards.push(Shard {
                    sandbox,
                    rules: Vec::new(),
                }),
                Err(error) => {
                    tracing::warn!(
                        target: "claimsmith::load",
                        engines = shards.len(),
                        slots = shards.len() as u32 * config.slots_per_engine(),
                        %error,
                        "cannot build another engine; running on fewer, with fewer instance slots"
                    );
                    break;
                }
            }
        }
        Pipeline {
            policy,
            engine_by_cpu: EngineByCpu::new(shards.len()),
            shards,
            has_version_1: false,
        }
    }

    /// Load a rule from module bytes and append it.
    pub fn add_rule(&mut self, spec: RuleSpec, bytes: &[u8]) -> Result<&Rule, LoadError> {
        self.check_new_name(&spec)?;
        let secrets = spec.secrets.clone();
        let (first, others) = self.shards.split_first_mut().expect("at least one engine");
        let rule = Rule::from_bytes_sharing(
            &first.sandbox,
            &self.policy,
            spec.clone(),
            bytes,
            &first.modules(),
        )?;
        // The other engines take the compiled code of the first (no second compilation); a
        // module they already hold is shared as before.
        let mut loaded = Vec::with_capacity(others.len());
        for shard in others.iter() {
            let mut known = shard.modules();
            known.push(rule.module());
            loaded.push(Rule::from_bytes_sharing(
                &shard.sandbox,
                &self.policy,
                spec.clone(),
                bytes,
                &known,
            )?);
        }
        for (shard, rule) in others.iter_mut().zip(loaded) {
            shard.rules.push(rule);
        }
        self.has_version_1 |= rule.abi_version() == 1;
        first.rules.push(rule);
        self.policy.add_secrets(secrets);
        Ok(self.shards[0].rules.last().expect("just pushed"))
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
        } else if self.rules().iter().any(|r| r.name() == spec.name) {
            "another rule already has this name"
        } else {
            return Ok(());
        };
        Err(LoadError {
            rule: spec.name.clone(),
            kind: LoadErrorKind::Settings(problem.into()),
        })
    }

    /// The rules, in order (as loaded into the first engine).
    pub fn rules(&self) -> &[Rule] {
        &self.shards[0].rules
    }

    /// The claim policy.
    pub fn policy(&self) -> &ClaimPolicy {
        &self.policy
    }

    /// The sandbox the pipeline was built with (the first engine).
    pub fn sandbox(&self) -> &Sandbox {
        &self.shards[0].sandbox
    }

    /// How many engines the logins are spread over.
    pub fn engines(&self) -> usize {
        self.shards.len()
    }

    /// The engine for a login starting now: the one of the CPU this thread runs on, the CPUs
    /// the process may use numbered densely ([`EngineByCpu`]), so logins running at the same
    /// moment on different CPUs mostly use different engines.
    fn shard(&self) -> usize {
        self.engine_by_cpu.current()
    }

    /// Run the rule at `index` on engine `shard`; if that engine has no instance slot free,
    /// on the next engine that has one. Only when every engine's slots are taken does the rule
    /// fail for capacity, as it would with a single pool of all the slots.
    fn run_rule(&self, shard: usize, index: usize, event: &LoginEvent) -> (&Rule, RuleRun) {
        let mut tried = 0;
        loop {
            let shard = &self.shards[(shard + tried) % self.shards.len()];
            let rule = &shard.rules[index];
            let input = rule.input(event);
            let run = rule_run::run(&shard.sandbox, rule, input.pieces());
            tried += 1;
            let busy = matches!(run.result, Err(RuleFailure::Capacity(_)));
            if !busy || tried == self.shards.len() {
                return (rule, run);
            }
        }
    }

    /// Parse and check a login event from JSON bytes for this pipeline: what
    /// [`LoginEvent::from_json`] does, without keeping a copy of the bytes unless a version 1 rule
    /// is loaded (only those rules see the event's unknown members). Parse events with this
    /// after every rule is added, and run them on this pipeline: a version 1 rule that meets an
    /// event parsed without its bytes sees only the checked fields (and a warning is logged).
    pub fn event_from_json(&self, bytes: &[u8]) -> Result<LoginEvent, EventError> {
        LoginEvent::parse_json(bytes, self.has_version_1)
    }

    /// Run every rule on `event`: the outcome, or why the login gets no tokens.
    pub fn run(&self, event: &LoginEvent) -> Result<Outcome, LoginError> {
        self.run_on(self.shard(), event)
    }

    fn run_on(&self, shard: usize, event: &LoginEvent) -> Result<Outcome, LoginError> {
        let requested = &event.event().transaction.requested_scopes;
        let mut draft = Draft::default();
        for scope in requested {
            if !draft.scopes.contains(scope) {
                draft.scopes.push(scope.clone());
            }
        }
        let mut outcome = Outcome::default();
        for index in 0..self.rules().len() {
            let (rule, run) = self.run_rule(shard, index, event);
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
        outcome.id_token_removed = draft.id_token_removed;
        outcome.access_token_removed = draft.access_token_removed;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SandboxConfig;
    use serde_json::json;

    /// An ABI version 1 module that sets `https://e.test/n` to `n` on the ID token and logs.
    fn module(n: u32) -> Vec<u8> {
        let result = json!({"commands": [
            {"op": "set_claim", "token": "id_token", "name": "https://e.test/n", "value": n},
            {"op": "log", "level": "info", "message": format!("rule {n}")}
        ]})
        .to_string();
        let escaped = result.replace('\\', "\\\\").replace('"', "\\\"");
        wat::parse_str(format!(
            r#"(module
  (memory (export "memory") 2)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 1))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 65536))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64)
    (i64.const {packed}))
  (data (i32.const 1024) "{escaped}"))"#,
            packed = (1024u64 << 32) | result.len() as u64
        ))
        .unwrap()
    }

    fn pipeline(engines: usize) -> Pipeline {
        let sandbox = Sandbox::new(SandboxConfig {
            engines,
            max_concurrent_instances: engines as u32 * 16,
            ..SandboxConfig::default()
        })
        .unwrap();
        let policy = ClaimPolicy::new(vec!["https://e.test/".into()]).unwrap();
        let mut pipeline = Pipeline::new(sandbox, policy);
        for (name, n) in [("one", 1), ("two", 2), ("one-again", 1)] {
            let spec = RuleSpec {
                name: name.into(),
                ..RuleSpec::default()
            };
            pipeline.add_rule(spec, &module(n)).unwrap();
        }
        pipeline
    }

    #[test]
    fn every_engine_runs_the_same_rules_to_the_same_outcome() {
        let pipeline = pipeline(3);
        assert_eq!(pipeline.engines(), 3);
        // Logins are spread over the engines built, not over those asked for.
        assert_eq!(pipeline.engine_by_cpu.engines(), 3);
        assert!(pipeline.shard() < 3);
        assert_eq!(pipeline.sandbox().config().slots_per_engine(), 16);
        let event = LoginEvent::from_value(json!({"user": {"user_id": "u1"}})).unwrap();
        let outcomes: Vec<Outcome> = (0..pipeline.shards.len())
            .map(|shard| pipeline.run_on(shard, &event).unwrap())
            .collect();
        for outcome in &outcomes {
            assert_eq!(outcome.id_token["https://e.test/n"], json!(1));
            assert_eq!(outcome.logs.len(), 3);
            assert_eq!(outcome.rules.len(), 3);
        }
        for (a, b) in outcomes.iter().zip(&outcomes[1..]) {
            assert_eq!(a.id_token, b.id_token);
            assert_eq!(a.logs, b.logs);
            let commands = |o: &Outcome| {
                o.rules
                    .iter()
                    .map(|r| r.commands.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(commands(a), commands(b));
        }
        // Each engine holds its own copy of the code, shared by its rules with the same module.
        for shard in &pipeline.shards {
            let [one, two, again] = &shard.rules[..] else {
                panic!("three rules")
            };
            assert!(one.module().shares_code_with(again.module()));
            assert!(!one.module().shares_code_with(two.module()));
        }
        let [first, second, _] = &pipeline.shards[..] else {
            panic!("three engines")
        };
        assert!(
            !first.rules[0]
                .module()
                .shares_code_with(second.rules[0].module())
        );
        assert_eq!(
            first.rules[0].module().source(),
            second.rules[0].module().source()
        );
        // Logins from many threads at once all get the same outcome, whichever engine runs them.
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let outcome = pipeline.run(&event).unwrap();
                        assert_eq!(outcome.id_token, outcomes[0].id_token);
                    }
                });
            }
        });
    }

    #[test]
    fn a_rule_whose_engine_is_full_runs_on_another_and_fails_only_when_all_are() {
        let sandbox = Sandbox::new(SandboxConfig {
            engines: 2,
            max_concurrent_instances: 2,
            ..SandboxConfig::default()
        })
        .unwrap();
        let policy = ClaimPolicy::new(vec!["https://e.test/".into()]).unwrap();
        let mut pipeline = Pipeline::new(sandbox, policy);
        let spec = RuleSpec {
            name: "one".into(),
            ..RuleSpec::default()
        };
        pipeline.add_rule(spec, &module(1)).unwrap();
        let event = LoginEvent::from_value(json!({"user": {"user_id": "u1"}})).unwrap();
        let slot = |shard: usize| {
            let shard = &pipeline.shards[shard];
            rule_run::hold_slot(&shard.sandbox, &shard.rules[0])
        };
        let first = slot(0);
        let outcome = pipeline.run_on(0, &event).unwrap();
        assert_eq!(outcome.id_token["https://e.test/n"], json!(1));
        let second = slot(1);
        match pipeline.run_on(0, &event) {
            Err(LoginError::RuleFailed(failed)) => {
                assert!(
                    matches!(failed.cause, RuleFailure::Capacity(_)),
                    "{failed:?}"
                )
            }
            other => panic!("expected a capacity failure, got {other:?}"),
        }
        drop((first, second));
        assert!(pipeline.run_on(1, &event).is_ok());
    }

    #[test]
    fn engines_are_at_most_one_per_instance_slot() {
        let config = SandboxConfig {
            engines: 8,
            max_concurrent_instances: 3,
            ..SandboxConfig::default()
        };
        assert_eq!((config.engine_count(), config.slots_per_engine()), (3, 1));
        let config = SandboxConfig {
            engines: 0,
            max_concurrent_instances: 5,
            ..SandboxConfig::default()
        };
        assert_eq!((config.engine_count(), config.slots_per_engine()), (1, 5));
        let config = SandboxConfig {
            engines: 2,
            max_concurrent_instances: 5,
            ..SandboxConfig::default()
        };
        assert_eq!((config.engine_count(), config.slots_per_engine()), (2, 2));
        assert_eq!(pipeline(1).engines(), 1);
    }
}
