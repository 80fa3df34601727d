//! One run of one rule for one login: a fresh instance in a fresh store, the input written once,
//! the entry point called once, the result read once. Every way it can go wrong becomes a
//! [`RuleFailure`] naming the limit or fault; nothing here panics on module behaviour.

use std::time::{Duration, Instant};

use wasmtime::{Extern, Instance, InstancePre, Memory, ResourceLimiter, Store, Trap, TypedFunc};

use crate::engine::Engine;
use crate::error::RuleFailure;
use crate::limits::Limits;
use crate::rule::{AbiExports, Rule};
use crate::thread_stack;
use crate::validated_module::error_chain;
use claimsmith_sdk::{LogLevel, RuleResult};

/// Store data of one run: the memory limiter, host-import logs, and a reported panic.
pub(crate) struct RuleState {
    limiter: RuleLimiter,
    logs: Vec<(LogLevel, String)>,
    log_bytes: usize,
    log_cap: usize,
    log_dropped: usize,
    failure: Option<String>,
}

struct RuleLimiter {
    memory_limit: usize,
    peak: usize,
    exceeded: Option<usize>,
}

#[derive(Debug)]
struct MemoryLimitHit;

impl std::fmt::Display for MemoryLimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("memory limit exceeded")
    }
}

impl std::error::Error for MemoryLimitHit {}

impl ResourceLimiter for RuleLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.exceeded = Some(desired);
            return Err(wasmtime::Error::new(MemoryLimitHit));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= crate::engine::MAX_TABLE_ELEMENTS)
    }
}

impl RuleState {
    fn new(limits: &Limits) -> RuleState {
        RuleState {
            limiter: RuleLimiter {
                memory_limit: limits.memory_bytes,
                peak: 0,
                exceeded: None,
            },
            logs: Vec::new(),
            log_bytes: 0,
            log_cap: limits.log_bytes,
            log_dropped: 0,
            failure: None,
        }
    }

    /// Log bytes still allowed in this run.
    pub(crate) fn log_budget(&self) -> usize {
        self.log_cap.saturating_sub(self.log_bytes)
    }

    /// Keep a log line from the host import; `asked` is the length the module passed.
    pub(crate) fn push_log(&mut self, level: LogLevel, text: String, asked: usize) {
        self.log_dropped += asked.saturating_sub(text.len());
        if text.is_empty() {
            return;
        }
        self.log_bytes += text.len();
        self.logs.push((level, text));
    }

    /// Record the reason the module is about to trap (first one wins).
    pub(crate) fn fail(&mut self, message: String) {
        self.failure.get_or_insert(message);
    }
}

/// What one run produced, with the resources it used, whether it succeeded or not.
pub(crate) struct RuleRun {
    pub result: Result<RuleResult, RuleFailure>,
    /// Log lines the module sent through the `claimsmith::log` import.
    pub host_logs: Vec<(LogLevel, String)>,
    /// Log bytes cut at the cap.
    pub log_dropped: usize,
    pub fuel_used: u64,
    pub peak_memory: usize,
    pub duration: Duration,
}

/// Run `rule` on its input, given as pieces written one after the other: in a ready instance
/// the prewarm thread made for it if there is one, in a fresh one otherwise.
pub(crate) fn run(engine: &Engine, rule: &Rule, input: &[&[u8]]) -> RuleRun {
    let started = Instant::now();
    if let Err((left, needed)) = thread_stack::check(engine.config().max_wasm_stack) {
        return RuleRun {
            result: Err(RuleFailure::ThreadStack { left, needed }),
            host_logs: Vec::new(),
            log_dropped: 0,
            fuel_used: 0,
            peak_memory: 0,
            duration: started.elapsed(),
        };
    }
    let warm = rule.warm();
    let (mut store, instance) = match warm.and_then(|warm| warm.take()) {
        Some((mut store, instance)) => {
            // Its budget and deadline start now, as a fresh store's would.
            store
                .set_fuel(rule.limits.fuel)
                .expect("fuel is enabled in the engine");
            store.set_epoch_deadline(engine.deadline_ticks(rule.limits.timeout));
            (store, Some(instance))
        }
        None => (new_store(engine, &rule.limits), None),
    };
    let size: usize = input.iter().map(|piece| piece.len()).sum();
    let result = if size > rule.limits.input_bytes {
        Err(RuleFailure::InputTooLarge {
            size,
            limit: rule.limits.input_bytes,
        })
    } else {
        call(&mut store, rule, instance, input, size)
            .map_err(|e| classify(e, &store, engine, &rule.limits))
    };
    let fuel_left = store.get_fuel().unwrap_or(0);
    let state = match warm {
        // Dropping a store resets its instance slot: the prewarm thread does that.
        Some(warm) => {
            let state = std::mem::replace(store.data_mut(), RuleState::new(&rule.limits));
            warm.retire(store);
            state
        }
        None => store.into_data(),
    };
    let result = match (result, state.failure) {
        // A module that reported a failure through `claimsmith::fail` failed, whatever it returned.
        (_, Some(message)) => Err(RuleFailure::Panicked(message)),
        (result, None) => result,
    };
    RuleRun {
        result,
        host_logs: state.logs,
        log_dropped: state.log_dropped,
        fuel_used: rule.limits.fuel.saturating_sub(fuel_left),
        peak_memory: state.limiter.peak,
        duration: started.elapsed(),
    }
}

/// A fresh store on `wasm` with a fresh instance of `pre` in it, not yet called: what the
/// prewarm thread keeps ready. `None` if it cannot be made now (its slots all taken, a start
/// function that fails): the login then instantiates its own and meets the cause itself.
pub(crate) fn ready_instance(
    wasm: &wasmtime::Engine,
    pre: &InstancePre<RuleState>,
    limits: &Limits,
    deadline_ticks: u64,
) -> Option<(Store<RuleState>, Instance)> {
    let mut store = store_on(wasm, limits, deadline_ticks);
    let instance = pre.instantiate(&mut store).ok()?;
    Some((store, instance))
}

/// Create a fresh store and instance of `rule` and drop them without calling it: the fixed cost
/// every rule pays on every login (the floor the benchmarks compare against).
pub(crate) fn instantiate_only(engine: &Engine, rule: &Rule) -> Result<(), RuleFailure> {
    let mut store = new_store(engine, &rule.limits);
    match rule.pre.instantiate(&mut store) {
        Ok(_) => Ok(()),
        Err(e) => Err(classify(CallError::Wasm(e), &store, engine, &rule.limits)),
    }
}

/// A live instance of `rule`, holding one of its engine's instance slots until dropped.
#[cfg(test)]
pub(crate) fn hold_slot(engine: &Engine, rule: &Rule) -> Store<RuleState> {
    let mut store = new_store(engine, &rule.limits);
    rule.pre.instantiate(&mut store).expect("a slot is free");
    store
}

/// Instantiate a module once and call `claimsmith_abi_version`.
pub(crate) fn abi_version(
    engine: &Engine,
    pre: &InstancePre<RuleState>,
    exports: &AbiExports,
    limits: &Limits,
) -> Result<i32, RuleFailure> {
    thread_stack::check(engine.config().max_wasm_stack)
        .map_err(|(left, needed)| RuleFailure::ThreadStack { left, needed })?;
    let mut store = new_store(engine, limits);
    let called = (|| {
        let instance = pre.instantiate(&mut store)?;
        let version: TypedFunc<(), i32> = typed(&mut store, &instance, &exports.version)?;
        version.call(&mut store, ())
    })();
    called.map_err(|e| classify(CallError::Wasm(e), &store, engine, limits))
}

fn new_store(engine: &Engine, limits: &Limits) -> Store<RuleState> {
    store_on(engine.wasm(), limits, engine.deadline_ticks(limits.timeout))
}

fn store_on(wasm: &wasmtime::Engine, limits: &Limits, deadline_ticks: u64) -> Store<RuleState> {
    let mut store = Store::new(wasm, RuleState::new(limits));
    store.limiter(|state| &mut state.limiter);
    store
        .set_fuel(limits.fuel)
        .expect("fuel is enabled in the engine");
    store.set_epoch_deadline(deadline_ticks);
    store.epoch_deadline_trap();
    store
}

/// Why a call could fail before or after the module ran, before classification.
enum CallError {
    Wasm(wasmtime::Error),
    Rule(RuleFailure),
}

impl From<wasmtime::Error> for CallError {
    fn from(e: wasmtime::Error) -> Self {
        CallError::Wasm(e)
    }
}

fn call(
    store: &mut Store<RuleState>,
    rule: &Rule,
    ready: Option<Instance>,
    input: &[&[u8]],
    size: usize,
) -> Result<RuleResult, CallError> {
    let instance = match ready {
        Some(instance) => instance,
        None => rule.pre.instantiate(&mut *store)?,
    };
    let memory = match instance.get_module_export(&mut *store, &rule.exports.memory) {
        Some(Extern::Memory(memory)) => memory,
        _ => {
            return Err(CallError::Rule(RuleFailure::Trap(
                "export `memory` is not a memory".into(),
            )));
        }
    };
    let alloc: TypedFunc<i32, i32> = typed(store, &instance, &rule.exports.alloc)?;
    let entry: TypedFunc<(i32, i32), i64> = typed(store, &instance, &rule.exports.entry)?;

    let len = size as i32;
    let ptr = alloc.call(&mut *store, len)? as u32 as usize;
    let out_of_bounds = |store: &Store<RuleState>| {
        CallError::Rule(RuleFailure::AllocOutOfBounds {
            ptr,
            len: size,
            memory: memory.data_size(store),
        })
    };
    let target = ptr
        .checked_add(size)
        .and_then(|end| memory.data_mut(&mut *store).get_mut(ptr..end));
    let Some(mut target) = target else {
        return Err(out_of_bounds(store));
    };
    for piece in input {
        let (head, rest) = target.split_at_mut(piece.len());
        head.copy_from_slice(piece);
        target = rest;
    }
    let packed = entry.call(&mut *store, (ptr as i32, len))? as u64;
    read_result(store, memory, packed, rule).map_err(CallError::Rule)
}

/// The export as a typed function, without a per-login type check: `Func::typed` takes the
/// engine-wide type registry's lock and bumps shared reference counts, which two threads running
/// logins then fight over.
fn typed<P, R>(
    store: &mut Store<RuleState>,
    instance: &Instance,
    export: &wasmtime::ModuleExport,
) -> wasmtime::Result<TypedFunc<P, R>>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    match instance.get_module_export(&mut *store, export) {
        // SAFETY: `ValidatedModule` checked at load that each ABI export has exactly the
        // signature its caller here names (`check_exports`), and a module's types never change.
        Some(Extern::Func(func)) => Ok(unsafe { TypedFunc::new_unchecked(&*store, func) }),
        _ => Err(wasmtime::Error::msg("an ABI export is not a function")),
    }
}

/// Read `(out_ptr << 32) | out_len`: the length is checked against the result limit and the
/// range against memory before a byte is copied.
fn read_result(
    store: &Store<RuleState>,
    memory: Memory,
    packed: u64,
    rule: &Rule,
) -> Result<RuleResult, RuleFailure> {
    let limits = &rule.limits;
    let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    if len > limits.result_bytes {
        return Err(RuleFailure::ResultTooLarge {
            size: len,
            limit: limits.result_bytes,
        });
    }
    let data = memory.data(store);
    let bytes = ptr
        .checked_add(len)
        .and_then(|end| data.get(ptr..end))
        .ok_or(RuleFailure::ResultOutOfBounds {
            ptr,
            len,
            memory: data.len(),
        })?;
    let version = rule.abi_version();
    let result = match version {
        1 | 5 => parse_result(bytes)?,
        _ => parse_binary_result(bytes)?,
    };
    check_commands_for_version(&result, version)?;
    Ok(result)
}

/// Refuse a command that the module's ABI version predates (`challenge_with` from a version 3
/// module, say): no SDK of that version writes it, so it is a hand-made or confused result.
pub(crate) fn check_commands_for_version(
    result: &RuleResult,
    version: i32,
) -> Result<(), RuleFailure> {
    match result
        .commands
        .iter()
        .find(|c| c.since_abi_version() > version)
    {
        None => Ok(()),
        Some(command) => Err(RuleFailure::InvalidResult(format!(
            "{}{} needs ABI version {}; this module speaks version {version}",
            command.op(),
            if matches!(command, claimsmith_sdk::Command::EnableMfa { .. }) {
                " with allow_remember_browser"
            } else {
                ""
            },
            command.since_abi_version()
        ))),
    }
}

/// Parse an ABI version 2 module's result bytes (`claimsmith_sdk::binary_result`).
pub(crate) fn parse_binary_result(bytes: &[u8]) -> Result<RuleResult, RuleFailure> {
    claimsmith_sdk::binary_result::decode(bytes)
        .map_err(|e| RuleFailure::InvalidResult(format!("binary result: {e}")))
}

/// Parse an ABI version 1 module's result bytes: UTF-8, then a `{"commands": [...]}` document.
pub(crate) fn parse_result(bytes: &[u8]) -> Result<RuleResult, RuleFailure> {
    let text = std::str::from_utf8(bytes).map_err(|e| RuleFailure::InvalidUtf8(e.to_string()))?;
    serde_json::from_str(text).map_err(|e| RuleFailure::InvalidResult(e.to_string()))
}

fn classify(
    error: CallError,
    store: &Store<RuleState>,
    engine: &Engine,
    limits: &Limits,
) -> RuleFailure {
    let error = match error {
        CallError::Rule(failure) => return failure,
        CallError::Wasm(error) => error,
    };
    let state = store.data();
    if let Some(requested) = state.limiter.exceeded {
        return RuleFailure::MemoryLimit {
            limit: limits.memory_bytes,
            requested,
        };
    }
    if let Some(message) = &state.failure {
        return RuleFailure::Panicked(message.clone());
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => RuleFailure::FuelExhausted { limit: limits.fuel },
        Some(Trap::Interrupt) => RuleFailure::Timeout {
            limit_ms: limits.timeout.as_millis() as u64,
        },
        Some(Trap::StackOverflow) => RuleFailure::StackOverflow {
            limit: engine.config().max_wasm_stack,
        },
        Some(trap) => RuleFailure::Trap(trap.to_string()),
        // Pool exhaustion is known by its type, never by wasmtime's wording.
        None if error
            .chain()
            .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>()) =>
        {
            RuleFailure::Capacity(error_chain(&error))
        }
        None => RuleFailure::Trap(error_chain(&error)),
    }
}
