//! Set-up off the login path (`[limits] prewarm = N`): a background thread keeps up to N ready
//! instances of every rule on every engine, each instantiated in its own fresh store, and tears
//! down the stores that logins have used. A login takes a ready instance if there is one (a
//! fresh one otherwise, as without prewarm), uses it for exactly that login, and hands it back to
//! be dropped here: isolation is unchanged, an instance never serves two logins.
//!
//! Off by default: the ready instances hold instance slots and memory, and the thread competes
//! with logins for CPUs (docs/performance.md gives what it costs and what it saves).

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
    /// Used stores waiting for the thread to drop them: at most `keep`, so that ready and used
    /// instances together hold at most twice `keep` slots; past that a login drops its own.
    spent: Mutex<Vec<Store<RuleState>>>,
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

impl Warm {
    /// A ready instance, if one is left; the thread is told to make another.
    pub(crate) fn take(&self) -> Option<Ready> {
        let ready = lock(&self.ready).pop();
        if ready.is_some() {
            self.signal.wake();
        }
        ready
    }

    /// Hand back a store a login has used, to be dropped off the login path; dropped here if
    /// the thread is `keep` stores behind.
    pub(crate) fn retire(&self, store: Store<RuleState>) {
        let mut spent = lock(&self.spent);
        if spent.len() < self.keep {
            spent.push(store);
            drop(spent);
            self.signal.wake();
        } else {
            drop(spent);
            drop(store);
        }
    }

    /// Drop the used stores handed back so far.
    fn tear_down(&self) {
        let spent = std::mem::take(&mut *lock(&self.spent));
        drop(spent);
    }

    /// Top up to `keep`; false if an instance could not be made (slots taken, a start function
    /// that fails), in which case logins instantiate their own until the next try.
    fn fill(&self) -> bool {
        loop {
            if lock(&self.ready).len() >= self.keep {
                return true;
            }
            match (self.make)() {
                Some(ready) => lock(&self.ready).push(ready),
                None => return false,
            }
        }
    }
}

/// Wakes the thread: a ready instance was taken, or a used store is to be dropped.
#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
    wake: Condvar,
}

#[derive(Default)]
struct SignalState {
    stop: bool,
    woken: bool,
}

impl Signal {
    fn wake(&self) {
        let mut state = lock(&self.state);
        if !state.woken {
            state.woken = true;
            self.wake.notify_one();
        }
    }
}

/// The thread that keeps every [`Warm`] of a pipeline topped up; stopped and joined on drop.
pub(crate) struct Prewarmer {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Prewarmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prewarmer").finish_non_exhaustive()
    }
}

/// How long the thread waits before trying again to make an instance it could not make.
const RETRY: Duration = Duration::from_millis(50);

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
            spent: Mutex::new(Vec::with_capacity(keep)),
            keep,
            make: Box::new(make),
            signal: self.signal.clone(),
        })
    }

    /// Fill every `warm` once, then start the thread that keeps them filled. Every instance is
    /// ready when this returns, so the first logins find them.
    pub(crate) fn start(&mut self, warms: Vec<Arc<Warm>>) -> Result<(), String> {
        for warm in &warms {
            warm.fill();
        }
        let signal = self.signal.clone();
        let thread = std::thread::Builder::new()
            .name("claimsmith-prewarm".into())
            .spawn(move || run(&signal, &warms))
            .map_err(|e| format!("cannot start the prewarm thread: {e}"))?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for Prewarmer {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.signal.state);
            state.stop = true;
            self.signal.wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: drop what logins used, top every rule up, sleep until woken.
fn run(signal: &Signal, warms: &[Arc<Warm>]) {
    loop {
        let mut all_filled = true;
        for warm in warms {
            warm.tear_down();
            all_filled &= warm.fill();
        }
        let mut state = lock(&signal.state);
        loop {
            if state.stop {
                return;
            }
            if state.woken {
                break;
            }
            if all_filled {
                state = signal
                    .wake
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            } else {
                let (next, timeout) = signal
                    .wake
                    .wait_timeout(state, RETRY)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                state = next;
                if timeout.timed_out() {
                    break;
                }
            }
        }
        state.woken = false;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
