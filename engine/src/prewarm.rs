//! Set-up off the login path (`[limits] prewarm = N`): a background thread keeps up to N ready
//! instances of every rule on every engine, each instantiated in its own fresh store, and tears
//! down the stores that logins have used. A login takes a ready instance if there is one (a
//! fresh one otherwise, as without prewarm), uses it for exactly that login, and hands it back to
//! be dropped here: isolation is unchanged, an instance never serves two logins.
//!
//! Off by default: the ready instances hold instance slots and memory, and the thread competes
//! with logins for CPUs (docs/performance.md gives what it costs and what it saves).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Instance, Store};

use crate::rule_run::RuleState;

/// A store with a fresh instance of a rule in it, not yet called.
pub(crate) type Ready = (Store<RuleState>, Instance);

/// The ready instances of one rule on one engine.
pub(crate) struct Warm {
    ready: Mutex<Vec<Ready>>,
    /// Used stores waiting for the thread to drop them, and how many it is dropping now: at
    /// most `keep` together, so that ready and used instances hold at most twice `keep` slots;
    /// past that a login drops its own.
    spent: Mutex<Spent>,
    /// How many to keep ready.
    keep: usize,
    /// What makes one: the rule's pre-linked module on its engine, and its limits.
    make: Box<dyn Fn() -> Option<Ready> + Send + Sync>,
    signal: Arc<Signal>,
}

impl std::fmt::Debug for Warm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warm")
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// The used stores of a [`Warm`].
#[derive(Default)]
struct Spent {
    stores: Vec<Store<RuleState>>,
    /// Taken by the thread and being dropped: they still hold their slots.
    dropping: usize,
}

impl Warm {
    /// A ready instance, if one is left. The thread is told to make more once half of them
    /// are gone: one wake-up for every `keep / 2` logins, not one for each.
    pub(crate) fn take(&self) -> Option<Ready> {
        let mut ready = lock(&self.ready);
        let taken = ready.pop();
        let low = ready.len() <= self.keep / 2;
        drop(ready);
        if taken.is_some() && low {
            self.signal.wake();
        }
        taken
    }

    /// Hand back a store a login has used, to be dropped off the login path; dropped here if
    /// the thread is `keep` stores behind.
    pub(crate) fn retire(&self, store: Store<RuleState>) {
        let mut spent = lock(&self.spent);
        if spent.stores.len() + spent.dropping < self.keep {
            spent.stores.push(store);
            let many = spent.stores.len() > self.keep / 2;
            drop(spent);
            if many {
                self.signal.wake();
            }
        } else {
            drop(spent);
            drop(store);
        }
    }

    /// Drop the used stores handed back so far.
    fn tear_down(&self) {
        let stores = {
            let mut spent = lock(&self.spent);
            let stores = std::mem::take(&mut spent.stores);
            spent.dropping = stores.len();
            stores
        };
        drop(stores);
        lock(&self.spent).dropping = 0;
    }

    /// Top up to `keep`, making at most as many as were missing when it began (logins taking
    /// them as fast as they are made do not keep the thread here); false if an instance could
    /// not be made (slots taken, a start function that fails), in which case logins
    /// instantiate their own until the next try. Stops early once the pipeline is dropped.
    fn fill(&self) -> bool {
        let missing = self.keep.saturating_sub(lock(&self.ready).len());
        for _ in 0..missing {
            if self.signal.stopping.load(Ordering::Acquire) {
                return true;
            }
            match (self.make)() {
                Some(ready) => lock(&self.ready).push(ready),
                None => return false,
            }
        }
        true
    }
}

/// Wakes the thread: ready instances are running low, or used stores are piling up.
#[derive(Default)]
struct Signal {
    /// Set by a login that wants the thread, cleared by the thread when it wakes: while set,
    /// further logins need not take the lock.
    woken: AtomicBool,
    /// Set when the pipeline is dropped: the thread stops between two instances, or at once if
    /// it waits (set before `lock` is taken to notify, so the wake-up is never lost).
    stopping: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Signal {
    fn wake(&self) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            // Under the lock, so the thread is either working (and will see `woken`) or waiting.
            let _lock = lock(&self.lock);
            self.wake.notify_one();
        }
    }
}

/// The thread that keeps every [`Warm`] of a pipeline topped up; told to stop on drop, and left
/// to end on its own (after the instance it is making, if any), so that dropping an old config's
/// pipeline never waits for it.
pub(crate) struct Prewarmer {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Prewarmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prewarmer").finish_non_exhaustive()
    }
}

/// How long the thread waits before trying again to make an instance it could not make; doubled
/// after each failed try in a row, up to [`RETRY_MAX`] (a start function that always fails
/// must not keep a CPU busy).
const RETRY: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

impl Prewarmer {
    /// A prewarmer not yet started, to make the [`Warm`] of each rule with.
    pub(crate) fn new() -> Prewarmer {
        Prewarmer {
            signal: Arc::default(),
            thread: None,
        }
    }

    /// The ready instances of a rule: `keep` of them, made by `make` (a rule's instantiation in
    /// its own fresh store).
    pub(crate) fn warm(
        &self,
        keep: usize,
        make: impl Fn() -> Option<Ready> + Send + Sync + 'static,
    ) -> Arc<Warm> {
        Arc::new(Warm {
            ready: Mutex::new(Vec::with_capacity(keep)),
            spent: Mutex::new(Spent {
                stores: Vec::with_capacity(keep),
                dropping: 0,
            }),
            keep,
            make: Box::new(make),
            signal: self.signal.clone(),
        })
    }

    /// Fill every `warm` once, then start the thread that keeps them filled. Every instance is
    /// ready when this returns, so the first logins find them.
    /// The thread has `stack` bytes of stack: instantiating runs the modules' start functions.
    pub(crate) fn start(&mut self, warms: Vec<Arc<Warm>>, stack: usize) -> Result<(), String> {
        for warm in &warms {
            warm.fill();
        }
        let signal = self.signal.clone();
        let thread = std::thread::Builder::new()
            .name("claimsmith-prewarm".into())
            .stack_size(stack)
            .spawn(move || run(&signal, &warms))
            .map_err(|e| format!("cannot start the prewarm thread: {e}"))?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for Prewarmer {
    fn drop(&mut self) {
        self.signal.stopping.store(true, Ordering::Release);
        let _lock = lock(&self.signal.lock);
        self.signal.wake.notify_one();
        // Not joined: the thread holds what it needs (the `Warm`s, and through them the
        // engines and modules), and ends at its next check.
        drop(self.thread.take());
    }
}

/// The thread: drop what logins used, top every rule up, sleep until woken.
fn run(signal: &Signal, warms: &[Arc<Warm>]) {
    idle_priority();
    let mut retry = RETRY;
    loop {
        let mut all_filled = true;
        for warm in warms {
            if signal.stopping.load(Ordering::Acquire) {
                return;
            }
            warm.tear_down();
            all_filled &= warm.fill();
        }
        if all_filled {
            retry = RETRY;
        }
        let mut guard = lock(&signal.lock);
        loop {
            if signal.stopping.load(Ordering::Acquire) {
                return;
            }
            if signal.woken.load(Ordering::Acquire) {
                break;
            }
            if all_filled {
                guard = signal
                    .wake
                    .wait(guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            } else {
                let (next, timeout) = signal
                    .wake
                    .wait_timeout(guard, retry)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                guard = next;
                if timeout.timed_out() {
                    retry = (retry * 2).min(RETRY_MAX);
                    break;
                }
            }
        }
        signal.woken.store(false, Ordering::Release);
    }
}

/// Run this thread only when a CPU would otherwise idle (Linux's `SCHED_IDLE`): a refill woken
/// by a login then never preempts a login on that login's CPU. Under full load the ready
/// instances run out and logins make their own, as without prewarm.
#[cfg(target_os = "linux")]
fn idle_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain syscall on the calling thread (pid 0) with a valid parameter.
    let done = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if done != 0 {
        tracing::debug!(
            target: "claimsmith::load",
            "prewarm thread keeps the normal priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn idle_priority() {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
