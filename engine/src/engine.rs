//! The sandbox every rule runs in: one wasmtime engine with fuel metering, epoch deadlines, a
//! capped wasm stack, pooled instance slots and the two host functions a module may import; and
//! the one deadline clock that ticks every engine's epoch.

use std::sync::Mutex;
use std::time::Duration;

use wasmtime::{
    Caller, Config, Enabled, Engine as WasmEngine, EngineWeak, InstanceAllocationStrategy, Linker,
    PoolingAllocationConfig,
};

use crate::artifact_cache::ArtifactCache;
use crate::rule_run::RuleState;
use claimsmith_sdk::LogLevel;

/// How often the deadline clock ticks; a rule's timeout is rounded up to whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Bytes of each pooled memory reset with `memset` rather than given back to the kernel: a
/// typical rule touches well under this, so reuse takes no page faults and no TLB shootdowns
/// (docs/performance-log.md has the measurements). With
/// Linux's `PAGEMAP_SCAN` (6.7+) only pages the rule dirtied are reset.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Engine-wide settings, fixed when the sandbox is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Wasm stack cap in bytes, for every rule.
    pub max_wasm_stack: usize,
    /// Largest linear memory any rule may get (the size of a pooled memory slot).
    pub max_memory_bytes: usize,
    /// Instance slots: how many rule instances may be alive at once across all logins, split
    /// evenly between the engines.
    pub max_concurrent_instances: u32,
    /// Engines a [`Pipeline`](crate::Pipeline) spreads its logins over. Each has its own
    /// instance pool and its own copy of every rule's compiled code, and each thread running
    /// logins keeps to one, so threads do not contend on one engine's shared counters. At most
    /// `max_concurrent_instances`.
    pub engines: usize,
    /// Ready instances kept per rule and engine, made on a background thread so that a login
    /// skips instantiation and the slot's reset (`[limits] prewarm`); `0`, the default, makes
    /// each instance on the login's own thread. Each is still used for one login only.
    pub prewarm: u32,
}

impl SandboxConfig {
    /// One engine per CPU, up to [`MAX_DEFAULT_ENGINES`].
    pub fn default_engines() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_DEFAULT_ENGINES))
    }

    /// Engines actually built: `engines`, at least one and at most one per instance slot.
    pub fn engine_count(&self) -> usize {
        self.engines
            .clamp(1, (self.max_concurrent_instances as usize).max(1))
    }

    /// Whether `prewarm` ready instances of each of `rules` rules fit each engine's slots:
    /// together with as many used ones waiting to be torn down, they may hold at most half of
    /// them, leaving the rest to logins. The error says how many they would hold.
    pub fn check_prewarm(&self, rules: usize) -> Result<(), String> {
        let (keep, slots) = (self.prewarm as usize, self.slots_per_engine() as usize);
        let held = keep * rules;
        if held * 4 > slots {
            return Err(format!(
                "keeps {held} instances ready per engine ({keep} for each of {rules} rules), and \
                 up to as many used ones waiting to be torn down: more than half of its {slots} \
                 instance slots"
            ));
        }
        Ok(())
    }

    /// The stack, in bytes, that a thread running logins needs: `max_wasm_stack` and a
    /// mebibyte for the host's frames, at least 2 MiB. Wasm frames live on the calling thread's
    /// stack, so a rule on a thread with less fails closed (`RuleFailure::ThreadStack`) rather
    /// than letting a deep recursion overflow the thread, which would abort the process. Give
    /// the threads you run logins on at least this much (`std::thread::Builder::stack_size`,
    /// tokio's `thread_stack_size`); the default `max_wasm_stack` fits any 2 MiB thread.
    pub fn thread_stack_bytes(&self) -> usize {
        crate::thread_stack::for_threads(self.max_wasm_stack)
    }

    /// Instance slots of each engine's pool: the total split evenly, never above it.
    pub fn slots_per_engine(&self) -> u32 {
        (self.max_concurrent_instances / self.engine_count() as u32).max(1)
    }
}

/// Most engines built by default, however many CPUs there are: each engine holds a copy of
/// every rule's compiled code.
pub const MAX_DEFAULT_ENGINES: usize = 4;

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            max_wasm_stack: 512 << 10,
            max_memory_bytes: 16 << 20,
            max_concurrent_instances: 128,
            engines: SandboxConfig::default_engines(),
            prewarm: 0,
        }
    }
}

/// One engine: a wasmtime engine with its pool of instance slots and the host functions, shared
/// by the rules loaded into it; its epoch is ticked by the process's one deadline clock.
pub struct Engine {
    wasm: WasmEngine,
    linker: Linker<RuleState>,
    config: SandboxConfig,
    cache: Option<ArtifactCache>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("cache", &self.cache.as_ref().map(ArtifactCache::dir))
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Build the engine; fails only if wasmtime rejects the settings or the deadline clock's
    /// thread cannot start.
    pub fn new(config: SandboxConfig) -> Result<Engine, String> {
        let mut wasm = Config::new();
        wasm.consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .memory_init_cow(true);
        let mut pool = PoolingAllocationConfig::default();
        let slots = config.slots_per_engine();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(config.max_memory_bytes)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(16 << 10)
            .pagemap_scan(Enabled::Auto);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            WasmEngine::new(&wasm).map_err(|e| format!("cannot build the wasm engine: {e}"))?;
        let linker =
            host_functions(&engine).map_err(|e| format!("cannot link host functions: {e}"))?;
        CLOCK.register(&engine)?;
        Ok(Engine {
            wasm: engine,
            linker,
            config,
            cache: None,
        })
    }

    /// Keep compiled modules in `cache` across restarts (see [`ArtifactCache`]).
    pub fn with_artifact_cache(mut self, cache: ArtifactCache) -> Engine {
        self.cache = Some(cache);
        self
    }

    /// The artifact cache, if there is one.
    pub fn artifact_cache(&self) -> Option<&ArtifactCache> {
        self.cache.as_ref()
    }

    /// The wasmtime engine.
    pub(crate) fn wasm(&self) -> &WasmEngine {
        &self.wasm
    }

    /// The engine-wide settings.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    pub(crate) fn linker(&self) -> &Linker<RuleState> {
        &self.linker
    }

    /// Ticks of [`EPOCH_TICK`] that cover `timeout`.
    pub(crate) fn deadline_ticks(&self, timeout: Duration) -> u64 {
        (timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64).max(1) + 1
    }
}

/// Bytes of a `claimsmith::fail` message kept (docs/abi.md).
pub(crate) const FAIL_MESSAGE_BYTES: usize = 16 << 10;

/// Table elements a rule may have or grow to: the pooled table slot's size, and the limiter's
/// cap on `table.grow` (function tables of ordinary modules, the JavaScript runtime's included,
/// are far smaller).
pub(crate) const MAX_TABLE_ELEMENTS: usize = 20_000;

/// Extra bytes read past a log cap so that redaction sees whole secrets before the cut.
const SECRET_MARGIN: usize = 4096;

/// The host functions a module may import, under module `claimsmith` (docs/abi.md).
fn host_functions(engine: &WasmEngine) -> wasmtime::Result<Linker<RuleState>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(
        "claimsmith",
        "log",
        |mut caller: Caller<'_, RuleState>, level: i32, ptr: i32, len: i32| {
            let level = LogLevel::from_i32(level).unwrap_or(LogLevel::Info);
            let budget = caller.data().log_budget();
            // Read past the budget by a margin so a secret straddling the cut is still whole when
            // the pipeline redacts; the pipeline cuts to the budget after redaction.
            let text = if budget == 0 {
                String::new()
            } else {
                read_guest_text(&mut caller, ptr, len, budget + SECRET_MARGIN)
            };
            caller.data_mut().push_log(level, text, len.max(0) as usize);
        },
    )?;
    linker.func_wrap(
        "claimsmith",
        "fail",
        |mut caller: Caller<'_, RuleState>, ptr: i32, len: i32| {
            // Past the cap by a margin, as for logs: the message is cut to the cap only after
            // redaction (`RuleFailure::redacted`), so a secret straddling the cut never leaves
            // its first half behind.
            let text = read_guest_text(&mut caller, ptr, len, FAIL_MESSAGE_BYTES + SECRET_MARGIN);
            caller.data_mut().fail(text);
        },
    )?;
    Ok(linker)
}

/// Read at most `cap` bytes of text from the guest's memory, lossily; out-of-bounds reads give a
/// marker instead of trapping the host.
fn read_guest_text(caller: &mut Caller<'_, RuleState>, ptr: i32, len: i32, cap: usize) -> String {
    let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
        return "<no memory>".into();
    };
    let data = memory.data(&caller);
    let (ptr, len) = (ptr as u32 as usize, (len.max(0) as usize).min(cap));
    match data.get(ptr..ptr.saturating_add(len)) {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => format!("<text at {ptr}+{len} is outside the module's memory>"),
    }
}

/// The deadline clock: one thread advances the epoch of every live engine each [`EPOCH_TICK`],
/// however many engines the process builds. It holds the engines weakly, starts with the first
/// one registered, forgets an engine once it is dropped, and stops when none is left.
struct EpochClock {
    state: Mutex<ClockState>,
}

struct ClockState {
    engines: Vec<EngineWeak>,
    /// Whether a thread is ticking; set and cleared only under the lock.
    running: bool,
}

static CLOCK: EpochClock = EpochClock::new();

impl EpochClock {
    const fn new() -> EpochClock {
        EpochClock {
            state: Mutex::new(ClockState {
                engines: Vec::new(),
                running: false,
            }),
        }
    }

    /// Tick `engine`'s epoch from now on, starting the clock's thread if it is not running.
    fn register(&'static self, engine: &WasmEngine) -> Result<(), String> {
        let mut state = self.lock();
        state.engines.push(engine.weak());
        if !state.running {
            std::thread::Builder::new()
                .name("claimsmith-epoch".into())
                .spawn(move || self.run())
                .map_err(|e| format!("cannot start the deadline clock: {e}"))?;
            state.running = true;
        }
        Ok(())
    }

    fn run(&self) {
        let mut live: Vec<WasmEngine> = Vec::new();
        loop {
            std::thread::sleep(EPOCH_TICK);
            {
                let mut state = self.lock();
                state.engines.retain(|weak| match weak.upgrade() {
                    Some(engine) => {
                        engine.increment_epoch();
                        live.push(engine);
                        true
                    }
                    None => false,
                });
                if state.engines.is_empty() {
                    // Stopped under the lock, so an engine registered from now on starts a new
                    // thread.
                    state.running = false;
                    return;
                }
            }
            // An engine whose last sandbox went during this tick is freed here, outside the
            // lock (unmapping its instance pool takes a while), and a panic in that cannot stop
            // the clock for the engines still alive.
            let freed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| live.clear()));
            if freed.is_err() {
                live = Vec::new();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // Nothing that can panic runs under the lock (weak upgrades and epoch increments), and
        // the state is consistent after every statement; should the lock be poisoned anyway,
        // its state is still good.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Run a module that loops for ever with a deadline one tick away on `engine` (which has fuel
    /// and epochs on): only a clock ticking this engine's epoch stops it with an interrupt.
    fn interrupted(engine: &WasmEngine) -> bool {
        let module = wasmtime::Module::new(
            engine,
            wat::parse_str(r#"(module (func (export "spin") (loop br 0)))"#).unwrap(),
        )
        .unwrap();
        let mut store = wasmtime::Store::new(engine, ());
        // Fuel is the backstop: without the clock the loop ends out of fuel, not interrupted.
        store.set_fuel(5_000_000_000).unwrap();
        store.set_epoch_deadline(1);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let error = spin.call(&mut store, ()).unwrap_err();
        error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt)
    }

    /// Wait up to 30 s for `done`.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(EPOCH_TICK);
        }
        done()
    }

    #[test]
    fn one_clock_ticks_every_sandbox_and_lets_dropped_ones_go() {
        let config = SandboxConfig {
            max_concurrent_instances: 2,
            engines: 1,
            ..SandboxConfig::default()
        };
        let sandboxes: Vec<Engine> = (0..3)
            .map(|_| Engine::new(config.clone()).unwrap())
            .collect();
        for sandbox in &sandboxes {
            assert!(interrupted(sandbox.wasm()));
        }
        // The clock holds engines weakly: once their sandboxes are gone, they are freed.
        let weak: Vec<EngineWeak> = sandboxes.iter().map(|s| s.wasm().weak()).collect();
        drop(sandboxes);
        assert!(eventually(|| weak.iter().all(|w| w.upgrade().is_none())));
    }

    #[test]
    fn the_clock_stops_with_its_last_engine_and_starts_again_with_the_next() {
        // A clock of this test's own, so that other tests' sandboxes do not keep it running.
        let clock: &'static EpochClock = Box::leak(Box::new(EpochClock::new()));
        let engine = || {
            let mut config = Config::new();
            config.consume_fuel(true).epoch_interruption(true);
            WasmEngine::new(&config).unwrap()
        };
        let first = engine();
        clock.register(&first).unwrap();
        assert!(interrupted(&first));
        drop(first);
        assert!(eventually(|| !clock.lock().running));
        assert!(clock.lock().engines.is_empty());
        let second = engine();
        clock.register(&second).unwrap();
        assert!(clock.lock().running);
        assert!(interrupted(&second));
    }
}
