//! The rules of a config, in order, run on one login: each in a fresh instance, its commands
//! checked against the claim policy and applied all or none, until the end, a denial, or a
//! failure of a rule whose `on_error` is `deny`. Which engine runs each rule is
//! [`Engines`](crate::engines)'s business; what a rule's commands may do is the claim policy's.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Limits;
use crate::artifact_cache::ArtifactCache;
use crate::claim_policy::ClaimPolicy;
use crate::draft::{Draft, Stop, apply};
use crate::engine::{Engine, SandboxConfig};
use crate::engines::Engines;
use crate::error::{
    BuildError, Denied, EventError, LoadError, LoadErrorKind, LoginError, RuleFailed,
};
use crate::login_event::LoginEvent;
use crate::outcome::{Diagnostic, Outcome, RuleStatus, RuleTrace};
use crate::rule::{OnError, Rule, RuleMode, RuleSpec, read_module};
use crate::rule_logs::LogSink;
use crate::shadow::{self, ShadowReport, ShadowResult};
use claimsmith_sdk::Reads;
use claimsmith_sdk::{Command, Event};

/// The configured rules and the policy they run under. `Send + Sync`: build once with
/// [`Pipeline::builder`], run every login from any thread.
///
/// The rules are loaded into each of the engines the sandbox settings ask for
/// ([`SandboxConfig::engines`]); which engine a login runs on changes nothing in its outcome.
///
/// ```no_run
/// use claimsmith_engine::{Pipeline, RuleSpec};
///
/// let pipeline = Pipeline::builder()
///     .namespaces(["https://example.com/"])
///     .rule_file(RuleSpec { name: "add-roles".into(), ..RuleSpec::default() }, "add_roles.wasm")
///     .build()?;
/// let event = pipeline.event_from_json(br#"{"user": {"user_id": "auth0|1"}, "client": {"client_id": "spa"}}"#)?;
/// let outcome = pipeline.run(&event)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Pipeline {
    policy: ClaimPolicy,
    engines: Engines,
    /// Whether a version 1 rule is loaded: only those need the caller's event bytes beside the
    /// typed event.
    has_version_1: bool,
    /// Whether every rule loaded is of version 6 or later: then an event from JSON is parsed
    /// in its borrowed form, straight into the parts those rules read.
    only_version_6: bool,
    /// The members the rules read, together: the parts an event from JSON is written into.
    reads: Reads,
    /// Indexes of the enforcing rules, in order: the ones [`Pipeline::run`] applies.
    enforced: Vec<usize>,
    /// The shadow rules, in config order; empty: a login does nothing more than the rules.
    shadows: Vec<ShadowPlan>,
    /// Whether shadow reports carry claim values.
    shadow_values: bool,
}

/// A shadow rule and the enforcing rule it stands in for, if any.
#[derive(Debug, Clone, Copy)]
struct ShadowPlan {
    index: usize,
    target: Option<usize>,
}

/// The draft just before a rule that a candidate stands in for, and where that rule's trace is.
struct Snapshot {
    target: usize,
    draft: Draft,
    trace: usize,
}

/// Where a rule's module comes from, for the builder.
#[derive(Debug)]
enum ModuleSource {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// Settings and rules for a [`Pipeline`], checked and loaded by [`PipelineBuilder::build`].
#[derive(Debug, Default)]
pub struct PipelineBuilder {
    sandbox: SandboxConfig,
    namespaces: Vec<String>,
    max_claims_bytes: Option<usize>,
    cache: Option<(PathBuf, bool)>,
    rules: Vec<(RuleSpec, ModuleSource)>,
    shadow_values: bool,
}

impl PipelineBuilder {
    /// The engine-wide sandbox settings (default [`SandboxConfig::default`]).
    pub fn sandbox(mut self, config: SandboxConfig) -> Self {
        self.sandbox = config;
        self
    }

    /// The claim-name prefixes (`http(s)://...`) rules may write claims under.
    pub fn namespaces<S: Into<String>>(mut self, namespaces: impl IntoIterator<Item = S>) -> Self {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Cap the serialized custom claims per token (default 100 KiB).
    pub fn max_claims_bytes(mut self, bytes: usize) -> Self {
        self.max_claims_bytes = Some(bytes);
        self
    }

    /// Keep compiled modules in `dir` across restarts; a folder that cannot be used fails the
    /// build.
    pub fn artifact_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = Some((dir.into(), true));
        self
    }

    /// Keep compiled modules in `dir` if it can be used; if not, log a warning and compile
    /// every module (the default cache folder of a user whose home may be read-only).
    pub fn artifact_cache_if_usable(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = Some((dir.into(), false));
        self
    }

    /// Put claim values (the login's and the shadow's) in shadow reports' claim changes
    /// (default off: names and kinds only). Values in a token never hold a secret (the claim
    /// policy refuses one), but they may be personal data: turn this on where reports are kept
    /// as carefully as tokens.
    pub fn shadow_values(mut self, on: bool) -> Self {
        self.shadow_values = on;
        self
    }

    /// Append a rule whose module is `bytes`.
    pub fn rule(mut self, spec: RuleSpec, bytes: impl Into<Vec<u8>>) -> Self {
        self.rules.push((spec, ModuleSource::Bytes(bytes.into())));
        self
    }

    /// Append a rule whose module is the file at `path`.
    pub fn rule_file(mut self, spec: RuleSpec, path: impl AsRef<Path>) -> Self {
        self.rules
            .push((spec, ModuleSource::File(path.as_ref().to_owned())));
        self
    }

    /// Check the settings, build the engines and load every rule, in order.
    pub fn build(self) -> Result<Pipeline, BuildError> {
        let mut policy = ClaimPolicy::new(self.namespaces).map_err(BuildError::Namespaces)?;
        if let Some(bytes) = self.max_claims_bytes {
            policy = policy.with_max_claims_bytes(bytes);
        }
        // Read every module first: a JavaScript module's limits left at their defaults take
        // the JavaScript defaults (`Limits::for_module`), and the memory slots must hold them.
        let mut rules = Vec::with_capacity(self.rules.len());
        for (mut spec, module) in self.rules {
            let bytes = match module {
                ModuleSource::Bytes(bytes) => bytes,
                ModuleSource::File(path) => read_module(&path, read_ceiling(&spec.limits))
                    .map_err(|kind| LoadError {
                        rule: spec.name.clone(),
                        kind,
                    })?,
            };
            spec.limits = spec.limits.for_module(&bytes);
            rules.push((spec, bytes));
        }
        // Only a JavaScript rule widens the slots (its memory default is above the sandbox's);
        // a Rust rule over the slot size is refused at load as before.
        let mut sandbox = self.sandbox;
        if let Some(largest) = rules
            .iter()
            .filter(|(_, bytes)| crate::is_javascript_module(bytes))
            .map(|(spec, _)| spec.limits.memory_bytes)
            .max()
        {
            sandbox.max_memory_bytes = sandbox.max_memory_bytes.max(largest);
        }
        let mut engine = Engine::new(sandbox).map_err(BuildError::Engine)?;
        if let Some((dir, required)) = self.cache {
            match ArtifactCache::open(&dir) {
                Ok(cache) => engine = engine.with_artifact_cache(cache),
                Err(message) if required => return Err(BuildError::ArtifactCache(message)),
                Err(message) => {
                    tracing::warn!(target: "claimsmith::cache", "no artifact cache: {message}")
                }
            }
        }
        let mut pipeline = Pipeline {
            policy,
            engines: Engines::new(engine),
            has_version_1: false,
            only_version_6: true,
            reads: Reads::ALWAYS,
            enforced: Vec::new(),
            shadows: Vec::new(),
            shadow_values: self.shadow_values,
        };
        for (spec, bytes) in rules {
            pipeline.add_rule(spec, &bytes)?;
        }
        pipeline.plan_shadows()?;
        let keep = pipeline.sandbox().prewarm as usize;
        pipeline.engines.prewarm(keep).map_err(BuildError::Engine)?;
        Ok(pipeline)
    }
}

/// How much of a module file to read: the rule's `module_bytes`, or the JavaScript default if
/// the limit is left at its default (a JavaScript module takes that default once read; any
/// other module is then held to its own limit by the load checks).
fn read_ceiling(limits: &Limits) -> usize {
    if limits.module_bytes == Limits::default().module_bytes {
        limits.module_bytes.max(Limits::javascript().module_bytes)
    } else {
        limits.module_bytes
    }
}

impl Pipeline {
    /// Start building a pipeline: no rules, no namespaces, default sandbox settings.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    fn add_rule(&mut self, spec: RuleSpec, bytes: &[u8]) -> Result<(), LoadError> {
        self.check_new_name(&spec)?;
        let secrets = spec.secrets.clone();
        let rule = self.engines.add_rule(&self.policy, spec, bytes)?;
        self.has_version_1 |= matches!(rule.abi_version(), 1 | 5);
        self.only_version_6 &= rule.abi_version() >= 6;
        self.reads = self.reads.union(rule.reads());
        self.policy.add_secrets(secrets);
        Ok(())
    }

    /// Split the rules into enforcing and shadow ones; each candidate's `shadows` must name an
    /// enforcing rule.
    fn plan_shadows(&mut self) -> Result<(), LoadError> {
        let rules = self.engines.rules();
        for (index, rule) in rules.iter().enumerate() {
            let settings = |problem: String| LoadError {
                rule: rule.name.clone(),
                kind: LoadErrorKind::Settings(problem),
            };
            match (rule.mode, &rule.shadows) {
                (RuleMode::Enforce, None) => self.enforced.push(index),
                (RuleMode::Enforce, Some(_)) => {
                    return Err(settings(
                        "`shadows` names the rule a shadow rule stands in for: it needs mode = \"shadow\"".into(),
                    ));
                }
                (RuleMode::Shadow, None) => self.shadows.push(ShadowPlan {
                    index,
                    target: None,
                }),
                (RuleMode::Shadow, Some(name)) => {
                    let target = rules.iter().position(|r| &r.name == name);
                    match target.map(|t| (t, rules[t].mode)) {
                        Some((t, RuleMode::Enforce)) => self.shadows.push(ShadowPlan {
                            index,
                            target: Some(t),
                        }),
                        Some((_, RuleMode::Shadow)) => {
                            return Err(settings(format!(
                                "shadows {name:?}, a shadow rule itself: a candidate stands in for an enforcing rule"
                            )));
                        }
                        None => {
                            return Err(settings(format!(
                                "shadows {name:?}, but no rule has that name"
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
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

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        self.engines.rules()
    }

    /// The claim-name prefixes rules may write claims under.
    pub fn namespaces(&self) -> &[String] {
        self.policy.namespaces()
    }

    /// The engine-wide sandbox settings.
    pub fn sandbox(&self) -> &SandboxConfig {
        self.engines.first().config()
    }

    /// How many engines the logins are spread over (fewer than asked for if one could not
    /// be built).
    pub fn engines(&self) -> usize {
        self.engines.len()
    }

    /// The one way into a login: parse and check an event from JSON bytes for this pipeline.
    /// The required fields (`user.user_id`, `client.client_id`, and `resource_server.identifier`
    /// when `resource_server` is given) must be non-empty, and each struct of the event must be
    /// a JSON object. When every rule is of ABI version 6, the event is parsed once, its
    /// strings borrowed from `bytes`, straight into the parts the rules read, and a copy of
    /// `bytes` is kept: the typed [`LoginEvent::event`] is parsed from it only if asked for. A
    /// caller that will ask for it (to sign tokens from it) parses with
    /// [`Pipeline::event_from_json_typed`] instead. Otherwise this is that parse.
    pub fn event_from_json(&self, bytes: &[u8]) -> Result<LoginEvent, EventError> {
        if self.only_version_6 {
            return LoginEvent::parse_json_parts(bytes, self.reads);
        }
        self.event_from_json_typed(bytes)
    }

    /// [`Pipeline::event_from_json`] straight into the typed [`LoginEvent::event`], for a
    /// caller that reads it (an issuer signs its tokens from it): the same events accepted and
    /// refused, and the same input for every rule. The caller's bytes are kept only when a
    /// version 1 rule is loaded (only those rules see the event's unknown members).
    pub fn event_from_json_typed(&self, bytes: &[u8]) -> Result<LoginEvent, EventError> {
        let event = LoginEvent::parse_json(bytes, self.has_version_1)?;
        event.check_required()?;
        Ok(event)
    }

    /// [`Pipeline::event_from_json`] for an event given as a JSON value.
    pub fn event_from_value(&self, value: Value) -> Result<LoginEvent, EventError> {
        let event = LoginEvent::from_value(value)?;
        event.check_required()?;
        Ok(event)
    }

    /// [`Pipeline::event_from_value`] for an event the caller built as a typed [`Event`] (an
    /// issuer's hook request mapped field by field): the same required-field check, without a
    /// trip through JSON. Its `configuration` and `secrets` are ignored (each rule gets its
    /// own); a `login_time` of 0 is the host's clock now. Version 1 rules see it as it
    /// serializes.
    pub fn event_from_event(&self, event: Event) -> Result<LoginEvent, EventError> {
        let event = LoginEvent::from_event(event);
        event.check_required()?;
        Ok(event)
    }

    /// Run every enforcing rule on `event`: the outcome, or why the login gets no tokens. When
    /// the login gets an outcome, every shadow rule then runs on a copy and reports what it
    /// would have changed in [`Outcome::shadows`]; a denied or failed login runs no shadow
    /// rule (there are no tokens to compare against).
    pub fn run(&self, event: &LoginEvent) -> Result<Outcome, LoginError> {
        self.run_on(self.engines.current(), event, self.enforced.iter().copied())
    }

    /// Run only some of the rules on `event`, in the order given: `rules` are indexes into
    /// [`Pipeline::rules`] (a hook server's endpoint that runs a subset of the rules, say).
    /// The claim policy, the limits and the engines are the pipeline's, as for
    /// [`Pipeline::run`]. A shadow rule's index in `rules` is passed over: standalone shadow
    /// rules run after every login, and a candidate runs when the rule it shadows is among
    /// `rules`.
    ///
    /// # Panics
    /// If an index is not below `self.rules().len()`.
    pub fn run_only(&self, event: &LoginEvent, rules: &[usize]) -> Result<Outcome, LoginError> {
        let count = self.rules().len();
        assert!(
            rules.iter().all(|&index| index < count),
            "rule index out of range: the pipeline has {count} rules"
        );
        let all = self.rules();
        let enforced = rules
            .iter()
            .copied()
            .filter(|&index| all[index].mode == RuleMode::Enforce);
        self.run_on(self.engines.current(), event, enforced)
    }

    fn run_on(
        &self,
        engine: usize,
        event: &LoginEvent,
        rules: impl Iterator<Item = usize>,
    ) -> Result<Outcome, LoginError> {
        let requested = event.requested_scopes();
        let mut draft = Draft::requesting(requested);
        let mut outcome = Outcome::default();
        // Only with a candidate configured: the draft before the rule it stands in for.
        let mut snapshots: Vec<Snapshot> = Vec::new();
        for index in rules {
            if self.shadows.iter().any(|plan| plan.target == Some(index)) {
                snapshots.push(Snapshot {
                    target: index,
                    draft: draft.clone(),
                    trace: outcome.rules.len(),
                });
            }
            let (rule, run) = self.engines.run_rule(engine, index, event);
            let mut logs = LogSink::new(rule, &self.policy, &mut outcome.logs);
            for (level, message) in run.host_logs {
                logs.push(level, &message);
            }
            logs.dropped += run.log_dropped;
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
                    // A rule that may be skipped applies to a copy, kept only if all of it
                    // applies; one that fails the login applies in place.
                    let mut staged = (rule.on_error == OnError::Skip).then(|| draft.clone());
                    let applied = apply(
                        &self.policy,
                        &rule.namespaces,
                        &result.commands,
                        staged.as_mut().unwrap_or(&mut draft),
                        &mut |l, m| logs.push(l, m),
                    );
                    if let (Ok(()), Some(staged)) = (&applied, staged) {
                        draft = staged;
                    }
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
                        kind: cause.kind(),
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
        if !self.shadows.is_empty() {
            outcome.shadows = self.run_shadows(engine, event, &draft, &snapshots, &outcome.rules);
        }
        draft.decide(requested, &mut outcome);
        Ok(outcome)
    }

    /// Every shadow rule on `event`, after the login's outcome is final: each compared with
    /// `actual`, the login's final draft. A candidate starts from the draft before the rule it
    /// stands in for; the rules after that one are replayed from their traces (a rule sees the
    /// event and its configuration, never another rule's output, so its commands are the same
    /// whatever ran before it).
    fn run_shadows(
        &self,
        engine: usize,
        event: &LoginEvent,
        actual: &Draft,
        snapshots: &[Snapshot],
        traces: &[RuleTrace],
    ) -> Vec<ShadowReport> {
        let mut reports = Vec::with_capacity(self.shadows.len());
        for plan in &self.shadows {
            let started = std::time::Instant::now();
            let (start, replay) = match plan.target {
                None => (actual, &traces[traces.len()..]),
                Some(target) => match snapshots.iter().find(|s| s.target == target) {
                    Some(snapshot) => (&snapshot.draft, &traces[snapshot.trace + 1..]),
                    // The rule it stands in for did not run (a subset of the rules).
                    None => continue,
                },
            };
            let (rule, run) = self.engines.run_rule(engine, plan.index, event);
            let result = match run.result {
                Err(failure) => failed(failure.redacted(&self.policy)),
                Ok(result) => {
                    let mut draft = start.clone();
                    match apply(
                        &self.policy,
                        &rule.namespaces,
                        &result.commands,
                        &mut draft,
                        &mut |_, _| {},
                    ) {
                        Err(Stop::Denied(reason)) => ShadowResult::WouldDeny { reason },
                        Err(Stop::Failed(failure)) => failed(failure.redacted(&self.policy)),
                        Ok(()) => match self.replay(replay, &mut draft) {
                            Some(result) => result,
                            None => shadow::compare(actual, &draft, self.shadow_values),
                        },
                    }
                }
            };
            let report = ShadowReport {
                rule: rule.name.clone(),
                shadows: rule.shadows.clone(),
                result,
                fuel_used: run.fuel_used,
                duration: started.elapsed(),
            };
            shadow::log(&report);
            reports.push(report);
        }
        reports
    }

    /// Apply the commands of the rules that ran after a candidate's place, as the login applied
    /// them; `Some` when one of them would then fail the login.
    fn replay(&self, traces: &[RuleTrace], draft: &mut Draft) -> Option<ShadowResult> {
        for trace in traces {
            if trace.status != RuleStatus::Applied {
                continue;
            }
            let rule = self.rules().iter().find(|r| r.name == trace.rule)?;
            let mut staged = draft.clone();
            match apply(
                &self.policy,
                &rule.namespaces,
                &trace.commands,
                &mut staged,
                &mut |_, _| {},
            ) {
                Ok(()) => *draft = staged,
                Err(_) if rule.on_error == OnError::Skip => {}
                Err(Stop::Denied(reason)) => return Some(ShadowResult::WouldDeny { reason }),
                Err(Stop::Failed(failure)) => {
                    let failure = failure.redacted(&self.policy);
                    return Some(ShadowResult::Failed {
                        cause: format!(
                            "with it in place, rule `{}` would fail: {failure}",
                            rule.name
                        ),
                        kind: failure.kind(),
                    });
                }
            }
        }
        None
    }

    /// The enforcing rules' indexes, in order.
    #[cfg(test)]
    fn enforced(&self) -> &[usize] {
        &self.enforced
    }

    /// Instantiate rule `index` on the first engine and drop it uncalled (benchmarks' floor).
    pub(crate) fn instantiate_only(&self, index: usize) -> Result<(), crate::RuleFailure> {
        crate::rule_run::instantiate_only(self.engines.first(), &self.rules()[index])
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

fn failed(failure: crate::RuleFailure) -> ShadowResult {
    ShadowResult::Failed {
        cause: failure.to_string(),
        kind: failure.kind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RuleFailure;
    use crate::rule_run;
    use crate::{Reads, RuleResult};
    use serde_json::json;

    /// An ABI version 1 module that sets `https://e.test/n` to `n` on the ID token and logs.
    fn module(n: u32) -> Vec<u8> {
        returning(json!({"commands": [
            {"op": "set_claim", "token": "id_token", "name": "https://e.test/n", "value": n},
            {"op": "log", "level": "info", "message": format!("rule {n}")}
        ]}))
    }

    /// An ABI version 1 module that always returns `result`.
    fn returning(result: Value) -> Vec<u8> {
        returning_at(1, result)
    }

    /// A JSON module (ABI version 1 or 5) that always returns `result`.
    fn returning_at(version: i32, result: Value) -> Vec<u8> {
        let result = result.to_string();
        let escaped = result.replace('\\', "\\\\").replace('"', "\\\"");
        wat::parse_str(format!(
            r#"(module
  (memory (export "memory") 2)
  (func (export "claimsmith_abi_version") (result i32) (i32.const {version}))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 65536))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64)
    (i64.const {packed}))
  (data (i32.const 1024) "{escaped}"))"#,
            packed = (1024u64 << 32) | result.len() as u64
        ))
        .unwrap()
    }

    fn pipeline(engines: usize) -> Pipeline {
        let mut builder = Pipeline::builder()
            .sandbox(SandboxConfig {
                engines,
                max_concurrent_instances: engines as u32 * 16,
                ..SandboxConfig::default()
            })
            .namespaces(["https://e.test/"]);
        for (name, n) in [("one", 1), ("two", 2), ("one-again", 1)] {
            let spec = RuleSpec {
                name: name.into(),
                ..RuleSpec::default()
            };
            builder = builder.rule(spec, module(n));
        }
        builder.build().unwrap()
    }

    fn event(pipeline: &Pipeline) -> LoginEvent {
        pipeline
            .event_from_value(json!({"user": {"user_id": "u1"}, "client": {"client_id": "c"}}))
            .unwrap()
    }

    fn shadow(name: &str, shadows: Option<&str>) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            mode: RuleMode::Shadow,
            shadows: shadows.map(Into::into),
            ..RuleSpec::default()
        }
    }

    /// A module that loops until its fuel runs out.
    fn looping() -> Vec<u8> {
        wat::parse_str(
            r#"(module
  (memory (export "memory") 2)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 1))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 65536))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64)
    (loop $l (br $l)) (i64.const 0)))"#,
        )
        .unwrap()
    }

    #[test]
    fn a_typed_event_is_checked_like_json_and_version_1_sees_no_host_time() {
        let p = pipeline(1);
        let mut event: Event = serde_json::from_value(
            json!({"user": {"user_id": "u1"}, "client": {"client_id": "c"}}),
        )
        .unwrap();
        event.configuration.insert("leak".into(), json!(1));
        let built = p.event_from_event(event.clone()).unwrap();
        assert!(built.login_time() > 0, "the host's clock");
        assert!(
            built.event().configuration.is_empty(),
            "each rule gets its own"
        );
        let members = String::from_utf8(built.input_for(&crate::login_event::input_prefix(
            &Default::default(),
            &Default::default(),
        )))
        .unwrap();
        assert!(
            !members.contains("login_time") && !members.contains("leak"),
            "{members}"
        );
        assert!(members.contains(r#""user_id":"u1""#), "{members}");
        event.login_time = 42;
        let pinned = p.event_from_event(event.clone()).unwrap();
        assert_eq!(pinned.login_time(), 42);
        event.user.user_id.clear();
        assert!(matches!(
            p.event_from_event(event),
            Err(EventError::Missing("user.user_id"))
        ));
    }

    #[test]
    fn version_5_is_json_that_may_send_version_4s_commands() {
        let challenge = json!({"commands": [
            {"op": "challenge_with", "factor": {"type": "otp"}},
            {"op": "set_session_expires_at", "expires_at": 5}
        ]});
        let build = |version| {
            Pipeline::builder()
                .namespaces(["https://e.test/"])
                .rule(
                    RuleSpec {
                        name: "json".into(),
                        ..RuleSpec::default()
                    },
                    returning_at(version, challenge.clone()),
                )
                .build()
                .unwrap()
        };
        let v5 = build(5);
        assert_eq!(v5.rules()[0].abi_version(), 5);
        let outcome = v5.run(&event(&v5)).unwrap();
        assert_eq!(outcome.authentication[0].op(), "challenge_with");
        assert_eq!(outcome.session.expires_at, Some(5));
        let v1 = build(1);
        let error = v1.run(&event(&v1)).unwrap_err().to_string();
        assert!(
            error.contains("challenge_with needs ABI version 4; this module speaks version 1"),
            "{error}"
        );
    }

    #[test]
    fn shadow_rules_report_what_they_would_change_and_change_nothing() {
        let sets = |value: Value| {
            returning(json!({"commands": [
                {"op": "set_claim", "token": "id_token", "name": "https://e.test/n", "value": value},
                {"op": "add_scope", "scope": "extra"}
            ]}))
        };
        let plain = pipeline(1);
        let event = event(&plain);
        let enforced = plain.run(&event).unwrap();
        assert!(enforced.shadows.is_empty());
        let mut builder =
            Pipeline::builder()
                .namespaces(["https://e.test/"])
                .sandbox(SandboxConfig {
                    engines: 1,
                    ..SandboxConfig::default()
                });
        for (name, n) in [("one", 1), ("two", 2), ("one-again", 1)] {
            let spec = RuleSpec {
                name: name.into(),
                ..RuleSpec::default()
            };
            builder = builder.rule(spec, module(n));
        }
        // Standing in for `two`: `one-again` sets the claim after it, so only the scope differs.
        builder = builder
            .rule(shadow("two-candidate", Some("two")), sets(json!(3)))
            .rule(shadow("standalone", None), sets(json!(3)))
            .rule(shadow("loops", Some("one")), looping())
            .rule(
                shadow("denies", None),
                returning(json!({"commands": [{"op": "deny", "reason": "no"}]})),
            )
            .rule(
                shadow("breaks-policy", Some("one-again")),
                returning(
                    json!({"commands": [{"op": "set_claim", "token": "id_token", "name": "https://other.test/x", "value": 1}]}),
                ),
            )
            .rule(shadow("same", Some("one-again")), module(1));
        let pipeline = builder.shadow_values(true).build().unwrap();
        assert_eq!(pipeline.enforced(), [0, 1, 2]);
        let outcome = pipeline.run(&event).unwrap();
        assert_eq!(outcome.id_token, enforced.id_token);
        assert_eq!(outcome.scopes, enforced.scopes);
        assert_eq!(outcome.logs, enforced.logs);
        assert_eq!(outcome.rules.len(), 3);
        let results: Vec<(&str, &str)> = outcome
            .shadows
            .iter()
            .map(|r| (r.rule.as_str(), r.result.label()))
            .collect();
        assert_eq!(
            results,
            [
                ("two-candidate", "differs"),
                ("standalone", "differs"),
                ("loops", "failed"),
                ("denies", "would_deny"),
                ("breaks-policy", "failed"),
                ("same", "same"),
            ]
        );
        let changes = |i: usize| match &outcome.shadows[i].result {
            ShadowResult::Differs { changes } => changes.clone(),
            other => panic!("{other:?}"),
        };
        assert!(changes(0).claims.is_empty());
        assert_eq!(changes(0).scopes_added, ["extra"]);
        let claim = &changes(1).claims[0];
        assert_eq!(
            (
                claim.claim.as_str(),
                claim.kind,
                &claim.actual,
                &claim.shadow
            ),
            (
                "https://e.test/n",
                crate::ChangeKind::Changed,
                &Some(json!(1)),
                &Some(json!(3))
            )
        );
        assert!(matches!(
            &outcome.shadows[2].result,
            ShadowResult::Failed {
                kind: "fuel_exhausted",
                ..
            }
        ));
        assert_eq!(outcome.shadows[2].shadows.as_deref(), Some("one"));
        // A subset without a candidate's rule runs no candidate for it.
        let only = pipeline.run_only(&event, &[0, 3]).unwrap();
        let ran: Vec<&str> = only.shadows.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(ran, ["standalone", "loops", "denies"]);
        assert_eq!(only.rules.len(), 1);
    }

    #[test]
    fn shadows_must_name_an_enforcing_rule_and_need_shadow_mode() {
        let build = |extra: RuleSpec| {
            Pipeline::builder()
                .namespaces(["https://e.test/"])
                .rule(
                    RuleSpec {
                        name: "one".into(),
                        ..RuleSpec::default()
                    },
                    module(1),
                )
                .rule(shadow("s", None), module(2))
                .rule(extra, module(3))
                .build()
                .unwrap_err()
                .to_string()
        };
        let err = build(shadow("c", Some("nope")));
        assert!(
            err.contains("rule `c`") && err.contains("no rule has that name"),
            "{err}"
        );
        let err = build(shadow("c", Some("s")));
        assert!(err.contains("a shadow rule itself"), "{err}");
        let err = build(RuleSpec {
            name: "c".into(),
            shadows: Some("one".into()),
            ..RuleSpec::default()
        });
        assert!(err.contains("mode = \"shadow\""), "{err}");
    }

    #[test]
    fn a_pinned_module_that_hashes_otherwise_is_refused_naming_both_digests() {
        let bytes = module(1);
        let right = crate::ModuleDigest::of(&bytes);
        let pinned = |sha256| RuleSpec {
            name: "one".into(),
            sha256: Some(sha256),
            ..RuleSpec::default()
        };
        let ok = Pipeline::builder()
            .namespaces(["https://e.test/"])
            .rule(pinned(right), bytes.clone())
            .build()
            .unwrap();
        assert_eq!(ok.rules()[0].sha256(), right);
        assert_eq!(
            crate::ModuleDigest::from_hex(&right.to_string()),
            Some(right)
        );
        let mut changed = bytes.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        let err = Pipeline::builder()
            .namespaces(["https://e.test/"])
            .rule(pinned(right), changed.clone())
            .build()
            .unwrap_err()
            .to_string();
        let actual = crate::ModuleDigest::of(&changed);
        assert!(
            err.contains("rule `one`")
                && err.contains(&right.to_string())
                && err.contains(&actual.to_string()),
            "{err}"
        );
    }

    #[test]
    fn run_only_runs_the_rules_named_in_the_order_given() {
        let pipeline = pipeline(1);
        let event = event(&pipeline);
        let names = |rules: &[usize]| {
            let outcome = pipeline.run_only(&event, rules).unwrap();
            let names: Vec<String> = outcome.rules.iter().map(|r| r.rule.clone()).collect();
            (names, outcome.id_token.get("https://e.test/n").cloned())
        };
        assert_eq!(names(&[]), (vec![], None));
        assert_eq!(names(&[1]), (vec!["two".to_string()], Some(json!(2))));
        assert_eq!(
            names(&[1, 0]),
            (vec!["two".to_string(), "one".to_string()], Some(json!(1)))
        );
        let every = pipeline.run(&event).unwrap();
        let again = pipeline.run_only(&event, &[0, 1, 2]).unwrap();
        assert_eq!(every.id_token, again.id_token);
        assert_eq!(every.logs, again.logs);
    }

    #[test]
    #[should_panic(expected = "rule index out of range")]
    fn run_only_refuses_an_index_past_the_rules() {
        let pipeline = pipeline(1);
        let _ = pipeline.run_only(&event(&pipeline), &[3]);
    }

    #[test]
    fn every_engine_runs_the_same_rules_to_the_same_outcome() {
        let pipeline = pipeline(3);
        assert_eq!(pipeline.engines(), 3);
        // Logins are spread over the engines built, not over those asked for.
        assert_eq!(pipeline.engines.spread(), 3);
        assert!(pipeline.engines.current() < 3);
        assert_eq!(pipeline.sandbox().slots_per_engine(), 16);
        let event = event(&pipeline);
        let outcomes: Vec<Outcome> = (0..pipeline.engines())
            .map(|engine| {
                pipeline
                    .run_on(engine, &event, 0..pipeline.rules().len())
                    .unwrap()
            })
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
        for rules in pipeline.engines.each_rules() {
            let [one, two, again] = rules else {
                panic!("three rules")
            };
            assert!(one.shares_code_with(again));
            assert!(!one.shares_code_with(two));
        }
        let [first, second, _] = &pipeline.engines.each_rules().collect::<Vec<_>>()[..] else {
            panic!("three engines")
        };
        assert!(!first[0].shares_code_with(&second[0]));
        assert_eq!(first[0].artifact_source(), second[0].artifact_source());
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
        let spec = RuleSpec {
            name: "one".into(),
            ..RuleSpec::default()
        };
        let pipeline = Pipeline::builder()
            .sandbox(SandboxConfig {
                engines: 2,
                max_concurrent_instances: 2,
                ..SandboxConfig::default()
            })
            .namespaces(["https://e.test/"])
            .rule(spec, module(1))
            .build()
            .unwrap();
        let event = event(&pipeline);
        let slot = |engine: usize| {
            let (engine, rule) = pipeline.engines.get(engine, 0);
            rule_run::hold_slot(engine, rule)
        };
        let first = slot(0);
        let outcome = pipeline
            .run_on(0, &event, 0..pipeline.rules().len())
            .unwrap();
        assert_eq!(outcome.id_token["https://e.test/n"], json!(1));
        let second = slot(1);
        match pipeline.run_on(0, &event, 0..pipeline.rules().len()) {
            // Known by wasmtime's error type (`PoolConcurrencyLimitError`), not its wording: if
            // the type is not found, this is a trap and the fallback above never happens.
            Err(LoginError::RuleFailed(failed)) => {
                assert!(
                    matches!(failed.cause, RuleFailure::Capacity(_)),
                    "{failed:?}"
                )
            }
            other => panic!("expected a capacity failure, got {other:?}"),
        }
        drop((first, second));
        assert!(
            pipeline
                .run_on(1, &event, 0..pipeline.rules().len())
                .is_ok()
        );
    }

    #[test]
    fn only_the_pipeline_makes_events_and_it_checks_the_required_fields() {
        let pipeline = pipeline(1);
        for (event, missing) in [
            (json!({"client": {"client_id": "c"}}), "user.user_id"),
            (json!({"user": {"user_id": "u1"}}), "client.client_id"),
            (
                json!({"user": {"user_id": "u1"}, "client": {"client_id": "c"}, "resource_server": {}}),
                "resource_server.identifier",
            ),
        ] {
            let from_json = pipeline.event_from_json(event.to_string().as_bytes());
            let from_value = pipeline.event_from_value(event);
            for result in [from_json, from_value] {
                match result {
                    Err(EventError::Missing(field)) => assert_eq!(field, missing),
                    other => panic!("expected {missing} missing, got {other:?}"),
                }
            }
        }
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

    /// A version 6 module declaring `reads` in its `claimsmith.reads` section, returning no
    /// commands; it traps if its memory shows a previous login (its first byte set), so an
    /// instance used twice fails.
    fn version_6(reads: &str) -> Vec<u8> {
        let result = claimsmith_sdk::binary_result::encode(&RuleResult::default());
        let escaped: String = result.iter().map(|b| format!("\\{b:02x}")).collect();
        wat::parse_str(format!(
            r#"(module
  (@custom "claimsmith.reads" "{reads}")
  (memory (export "memory") 2)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 6))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 65536))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64)
    (if (i32.load8_u (i32.const 0)) (then unreachable))
    (i32.store8 (i32.const 0) (i32.const 1))
    (i64.const {packed}))
  (data (i32.const 1024) "{escaped}"))"#,
            packed = (1024u64 << 32) | result.len() as u64
        ))
        .unwrap()
    }

    #[test]
    fn a_version_6_rule_is_handed_the_members_it_declares_and_nothing_else() {
        let p = Pipeline::builder()
            .namespaces(["https://e.test/"])
            .rule(
                RuleSpec {
                    name: "roles".into(),
                    configuration: json!({"namespace": "https://e.test"})
                        .as_object()
                        .unwrap()
                        .clone(),
                    secrets: [("KEY".to_owned(), "s3cr3t".to_owned())].into(),
                    ..RuleSpec::default()
                },
                version_6("authorization, configuration"),
            )
            .build()
            .unwrap();
        let rule = &p.rules()[0];
        assert_eq!(rule.abi_version(), 6);
        assert_eq!(
            rule.reads().to_string(),
            "authorization, login_time, configuration"
        );
        let event = p
            .event_from_value(json!({
                "user": {"user_id": "u1", "email": "ada@example.com"},
                "client": {"client_id": "c"},
                "authorization": {"roles": ["admin"]},
                "login_time": 7
            }))
            .unwrap();
        let input = rule.input(&event).pieces().concat();
        let read = claimsmith_sdk::binary_event::decode_v6(&input, rule.reads()).unwrap();
        assert_eq!(read.authorization.roles, ["admin"]);
        assert_eq!(read.config_str("namespace"), Some("https://e.test"));
        assert_eq!(read.login_time, 7);
        assert_eq!(read.user, Default::default());
        assert!(read.secrets.is_empty());
        for absent in [&b"ada@example.com"[..], b"u1", b"s3cr3t"] {
            assert!(
                !input.windows(absent.len()).any(|w| w == absent),
                "{}",
                String::from_utf8_lossy(absent)
            );
        }
        assert!(p.run(&event).is_ok());
        // No section: every member.
        let all = Pipeline::builder()
            .namespaces(["https://e.test/"])
            .rule(
                RuleSpec {
                    name: "all".into(),
                    ..RuleSpec::default()
                },
                {
                    let mut bytes = version_6("user");
                    // Rename the section: the module then declares nothing.
                    let at = bytes
                        .windows(16)
                        .position(|w| w == b"claimsmith.reads")
                        .unwrap();
                    bytes[at..at + 16].copy_from_slice(b"claimsmith.other");
                    bytes
                },
            )
            .build()
            .unwrap();
        assert_eq!(all.rules()[0].reads(), Reads::ALL);
    }

    #[test]
    fn a_version_6_module_that_declares_an_unknown_member_is_refused_naming_it() {
        let err = Pipeline::builder()
            .namespaces(["https://e.test/"])
            .rule(
                RuleSpec {
                    name: "r".into(),
                    ..RuleSpec::default()
                },
                version_6("user emails"),
            )
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rule `r`") && err.contains("`emails` is not a part of the login event"),
            "{err}"
        );
    }

    fn prewarmed(prewarm: u32, max_concurrent_instances: u32) -> Result<Pipeline, BuildError> {
        let mut builder = Pipeline::builder()
            .sandbox(SandboxConfig {
                engines: 2,
                max_concurrent_instances,
                prewarm,
                ..SandboxConfig::default()
            })
            .namespaces(["https://e.test/"]);
        for name in ["a", "b", "c"] {
            let spec = RuleSpec {
                name: name.into(),
                ..RuleSpec::default()
            };
            builder = builder.rule(spec, version_6("user"));
        }
        builder.build()
    }

    #[test]
    fn prewarmed_instances_serve_one_login_each_and_their_slots_come_back() {
        // 2 engines of 16 slots; 3 rules with 1 ready each (and 1 used) hold 6 of 16. Hundreds
        // of logins run through them: each instance serves one login (a second would trap), and
        // the slots of used ones come back (or the logins would run out of them).
        let p = prewarmed(1, 32).unwrap();
        let event = event(&p);
        for _ in 0..300 {
            let outcome = p.run(&event).unwrap();
            assert_eq!(outcome.rules.len(), 3);
        }
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for _ in 0..200 {
                        p.run(&event).unwrap();
                    }
                });
            }
        });
        drop(p);
    }

    #[test]
    fn prewarm_may_hold_at_most_half_of_an_engines_slots() {
        let err = prewarmed(2, 32).unwrap_err().to_string();
        assert!(
            err.contains("prewarm = 2 keeps 6 instances ready per engine")
                && err.contains("16 instance slots"),
            "{err}"
        );
        assert!(prewarmed(1, 32).is_ok());
    }
}
