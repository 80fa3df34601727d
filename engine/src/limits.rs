//! Per-rule resource limits, with defaults safe for running on every login.

use std::time::Duration;

/// What one rule may use during one login. Exceeding any of them fails the rule, with the limit
/// and its value named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Instruction budget (wasmtime fuel), deterministic across machines.
    pub fuel: u64,
    /// Wall-clock deadline for one run, enforced by epoch interruption.
    pub timeout: Duration,
    /// Linear memory cap in bytes.
    pub memory_bytes: usize,
    /// Largest input document (event plus configuration and secrets) in bytes.
    pub input_bytes: usize,
    /// Largest result document in bytes; checked before anything is copied.
    pub result_bytes: usize,
    /// Log bytes kept per run; the rest is cut with a marker.
    pub log_bytes: usize,
    /// Largest module file in bytes.
    pub module_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 11_000_000,
            timeout: Duration::from_millis(50),
            memory_bytes: 16 << 20,
            input_bytes: 256 << 10,
            result_bytes: 256 << 10,
            log_bytes: 4 << 10,
            module_bytes: 4 << 20,
        }
    }
}
