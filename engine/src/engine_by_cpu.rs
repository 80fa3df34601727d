//! Which engine a login runs on: the engine of the CPU it starts on. The CPUs the process may
//! run on are numbered densely first, so that a process confined to some CPUs (a container's
//! cpuset of 2 and 6, say) spreads its logins over its engines, where the CPU's number modulo
//! the engines would put every one of them on the same engine.
//!
//! The mask read is that of the thread building the pipeline, once. A CPU outside it (the mask
//! changed since), or every CPU where the mask cannot be read (Linux hosts of more than 1,024
//! CPUs, other systems), goes by its number modulo the engines.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The engine for each CPU, worked out once when the pipeline is built.
#[derive(Debug)]
pub(crate) struct EngineByCpu {
    engines: usize,
    /// Indexed by CPU number: the engine of each CPU the process was allowed to run on when the
    /// pipeline was built, [`NOT_ALLOWED`] for the others.
    by_cpu: Vec<u16>,
}

/// A CPU outside the process's affinity mask at start (it may be allowed later).
const NOT_ALLOWED: u16 = u16::MAX;

impl EngineByCpu {
    /// Spread `engines` over the CPUs this process may run on now.
    pub(crate) fn new(engines: usize) -> EngineByCpu {
        EngineByCpu::over(engines, allowed_cpus())
    }

    /// Spread `engines` over `allowed` CPUs, taken in ascending order: the first allowed CPU
    /// gets engine 0, the next engine 1, and so on round the engines.
    fn over(engines: usize, allowed: Vec<usize>) -> EngineByCpu {
        let engines = engines.max(1);
        let mut allowed = allowed;
        allowed.sort_unstable();
        allowed.dedup();
        let size = allowed.last().map_or(0, |cpu| cpu + 1);
        let mut by_cpu = vec![NOT_ALLOWED; size];
        for (dense, cpu) in allowed.into_iter().enumerate() {
            by_cpu[cpu] = (dense % engines) as u16;
        }
        EngineByCpu { engines, by_cpu }
    }

    /// How many engines the logins are spread over.
    #[cfg(test)]
    pub(crate) fn engines(&self) -> usize {
        self.engines
    }

    /// The engine for a login starting now on this thread. Where the CPU is not known, each
    /// thread keeps to the engine it was given in turn.
    pub(crate) fn current(&self) -> usize {
        if self.engines == 1 {
            return 0;
        }
        match current_cpu() {
            Some(cpu) => self.of_cpu(cpu),
            None => {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                thread_local! {
                    static TURN: usize = NEXT.fetch_add(1, Ordering::Relaxed);
                }
                TURN.with(|turn| *turn) % self.engines
            }
        }
    }

    /// The engine of `cpu`. A CPU that was not allowed at start (the affinity mask changed
    /// since) falls back to its number modulo the engines.
    fn of_cpu(&self, cpu: usize) -> usize {
        match self.by_cpu.get(cpu) {
            Some(&engine) if engine != NOT_ALLOWED => engine as usize,
            _ => cpu % self.engines,
        }
    }
}

/// The CPUs the calling thread may run on; empty where that is not known.
fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `cpu_set_t` is a plain bitmask, valid when zeroed.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: the size passed is that of `set`, which the call writes at most.
        let read =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if read == 0 {
            return (0..libc::CPU_SETSIZE as usize)
                // SAFETY: every index is below `CPU_SETSIZE`, the size of the mask.
                .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
                .collect();
        }
    }
    Vec::new()
}

/// The CPU the calling thread runs on (a vDSO call on Linux; `None` elsewhere).
fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_getcpu` takes no arguments and only returns a number.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu >= 0 {
            return Some(cpu as usize);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpuset_of_sparse_cpus_spreads_over_every_engine() {
        // CPU number modulo 2 would put all four on engine 0.
        let map = EngineByCpu::over(2, vec![2, 4, 6, 8]);
        let engines: Vec<usize> = [2, 4, 6, 8].map(|cpu| map.of_cpu(cpu)).into();
        assert_eq!(engines, [0, 1, 0, 1]);

        let map = EngineByCpu::over(4, vec![12, 0, 8, 4]);
        let engines: Vec<usize> = [0, 4, 8, 12].map(|cpu| map.of_cpu(cpu)).into();
        assert_eq!(engines, [0, 1, 2, 3]);
    }

    #[test]
    fn contiguous_cpus_keep_their_number_modulo_the_engines() {
        let map = EngineByCpu::over(3, (0..8).collect());
        for cpu in 0..8 {
            assert_eq!(map.of_cpu(cpu), cpu % 3);
        }
    }

    #[test]
    fn a_cpu_allowed_later_or_an_unknown_mask_still_gets_an_engine() {
        let map = EngineByCpu::over(2, vec![2, 4]);
        assert_eq!(map.of_cpu(3), 1);
        assert_eq!(map.of_cpu(1_000), 0);
        let unknown = EngineByCpu::over(2, Vec::new());
        assert_eq!(unknown.of_cpu(5), 1);
        assert_eq!(EngineByCpu::new(1).current(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_mask_read_holds_the_cpu_this_thread_runs_on() {
        // Where the CPU cannot be told (some sandboxes), there is nothing to compare.
        if let Some(cpu) = current_cpu() {
            assert!(
                allowed_cpus().contains(&cpu),
                "CPU {cpu} not in the mask read"
            );
        }
    }
}
