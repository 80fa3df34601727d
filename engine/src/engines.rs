//! The engines a pipeline spreads its logins over: each engine its own instance pool and its
//! own load of every rule. A login runs on the engine of the CPU it starts on
//! ([`EngineByCpu`]), so logins running at once on different CPUs mostly work on different
//! engines' shared state; a rule that finds its engine's instance slots all taken runs on the
//! next engine that has one free.

use crate::claim_policy::ClaimPolicy;
use crate::engine::{Engine, SandboxConfig};
use crate::engine_by_cpu::EngineByCpu;
use crate::error::{LoadError, RuleFailure};
use crate::login_event::LoginEvent;
use crate::prewarm::Prewarmer;
use crate::rule::{Rule, RuleSpec};
use crate::rule_run::{self, RuleRun};
use crate::validated_module::ValidatedModule;

/// Every engine, each with the same rules loaded in the same order.
#[derive(Debug)]
pub(crate) struct Engines {
    /// One per engine built; never empty.
    loaded: Vec<Loaded>,
    by_cpu: EngineByCpu,
    /// The thread that keeps ready instances, with `[limits] prewarm`.
    prewarmer: Option<Prewarmer>,
}

/// One engine and its own load of every rule.
#[derive(Debug)]
struct Loaded {
    engine: Engine,
    rules: Vec<Rule>,
}

impl Loaded {
    fn modules(&self) -> Vec<&ValidatedModule> {
        self.rules.iter().map(Rule::module).collect()
    }
}

impl Engines {
    /// `first`, and the further engines its settings ask for; one that cannot be built (the
    /// address space for its instance pool, say) is logged and left out.
    pub(crate) fn new(first: Engine) -> Engines {
        let config: SandboxConfig = first.config().clone();
        let mut loaded = vec![Loaded {
            engine: first,
            rules: Vec::new(),
        }];
        for _ in 1..config.engine_count() {
            match Engine::new(config.clone()) {
                // The further engines copy the first's compiled code: no cache needed.
                Ok(engine) => loaded.push(Loaded {
                    engine,
                    rules: Vec::new(),
                }),
                Err(error) => {
                    tracing::warn!(
                        target: "claimsmith::load",
                        engines = loaded.len(),
                        slots = loaded.len() as u32 * config.slots_per_engine(),
                        %error,
                        "cannot build another engine; running on fewer, with fewer instance slots"
                    );
                    break;
                }
            }
        }
        Engines {
            by_cpu: EngineByCpu::new(loaded.len()),
            loaded,
            prewarmer: None,
        }
    }

    /// Load a rule into every engine: the first compiles it (or reads it from the artifact
    /// cache), the others take a copy of that code; a module an engine already holds is shared.
    pub(crate) fn add_rule(
        &mut self,
        policy: &ClaimPolicy,
        spec: RuleSpec,
        bytes: &[u8],
    ) -> Result<&Rule, LoadError> {
        let (first, others) = self.loaded.split_first_mut().expect("at least one engine");
        let rule = Rule::load(&first.engine, policy, spec.clone(), bytes, &first.modules())?;
        let mut copies = Vec::with_capacity(others.len());
        for other in others.iter() {
            let mut known = other.modules();
            known.push(rule.module());
            copies.push(Rule::load(
                &other.engine,
                policy,
                spec.clone(),
                bytes,
                &known,
            )?);
        }
        for (other, copy) in others.iter_mut().zip(copies) {
            other.rules.push(copy);
        }
        first.rules.push(rule);
        Ok(first.rules.last().expect("just pushed"))
    }

    /// Keep `keep` ready instances of every rule on every engine from now on, made by a
    /// background thread (`[limits] prewarm`); they are all made when this returns. Refused when
    /// they, and as many used ones waiting to be torn down, would hold more than half of an
    /// engine's instance slots.
    pub(crate) fn prewarm(&mut self, keep: usize) -> Result<(), String> {
        if keep == 0 {
            return Ok(());
        }
        self.first()
            .config()
            .check_prewarm(self.rules().len())
            .map_err(|why| {
                format!("prewarm = {keep} {why}: lower prewarm or raise max_concurrent_instances")
            })?;
        let mut prewarmer = Prewarmer::new();
        let mut warms = Vec::new();
        for loaded in &mut self.loaded {
            for rule in &mut loaded.rules {
                warms.push(rule.prewarm(&loaded.engine, &prewarmer, keep));
            }
        }
        prewarmer.start(warms, self.first().config().thread_stack_bytes())?;
        self.prewarmer = Some(prewarmer);
        Ok(())
    }

    /// The rules, in order, as loaded into the first engine.
    pub(crate) fn rules(&self) -> &[Rule] {
        &self.loaded[0].rules
    }

    /// The first engine.
    pub(crate) fn first(&self) -> &Engine {
        &self.loaded[0].engine
    }

    /// How many engines were built.
    pub(crate) fn len(&self) -> usize {
        self.loaded.len()
    }

    /// The engine for a login starting now: the one of the CPU this thread runs on.
    pub(crate) fn current(&self) -> usize {
        self.by_cpu.current()
    }

    /// How many engines the logins are spread over (for tests of the spread).
    #[cfg(test)]
    pub(crate) fn spread(&self) -> usize {
        self.by_cpu.engines()
    }

    /// Run the rule at `index` on engine `start`; if that engine has no instance slot free, on
    /// the next engine that has one. Only when every engine's slots are taken does the rule
    /// fail for capacity, as it would with a single pool of all the slots.
    pub(crate) fn run_rule(
        &self,
        start: usize,
        index: usize,
        event: &LoginEvent,
    ) -> (&Rule, RuleRun) {
        let mut tried = 0;
        loop {
            let loaded = &self.loaded[(start + tried) % self.loaded.len()];
            let rule = &loaded.rules[index];
            let input = rule.input(event);
            let run = rule_run::run(&loaded.engine, rule, input.pieces());
            tried += 1;
            let busy = matches!(run.result, Err(RuleFailure::Capacity(_)));
            if !busy || tried == self.loaded.len() {
                return (rule, run);
            }
        }
    }

    /// The engine at `index` and its rule at `rule` (for tests that hold its slots).
    #[cfg(test)]
    pub(crate) fn get(&self, index: usize, rule: usize) -> (&Engine, &Rule) {
        let loaded = &self.loaded[index];
        (&loaded.engine, &loaded.rules[rule])
    }

    /// Each engine's rules, for tests that compare the engines' loads.
    #[cfg(test)]
    pub(crate) fn each_rules(&self) -> impl Iterator<Item = &[Rule]> {
        self.loaded.iter().map(|l| l.rules.as_slice())
    }
}
