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

impl Limits {
    /// The defaults for a JavaScript rule (a module built from an `action.js`, see
    /// [`crate::is_javascript_module`]): the JavaScript engine inside the module needs more
    /// instructions, memory and module size than a Rust rule. Fuel 50 M, 100 ms, 64 MiB of
    /// memory, a 16 MiB module; the input, result and log caps are a Rust rule's.
    pub fn javascript() -> Limits {
        Limits {
            fuel: 50_000_000,
            timeout: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            module_bytes: 16 << 20,
            ..Limits::default()
        }
    }

    /// These limits for a rule whose module is `bytes`: for a JavaScript module, every limit
    /// left at its [`Limits::default`] value takes its [`Limits::javascript`] value instead;
    /// a limit set to anything else is kept.
    pub fn for_module(&self, bytes: &[u8]) -> Limits {
        if !crate::is_javascript_module(bytes) {
            return self.clone();
        }
        let (rust, js) = (Limits::default(), Limits::javascript());
        fn pick<T: PartialEq>(set: T, rust: T, js: T) -> T {
            if set == rust { js } else { set }
        }
        Limits {
            fuel: pick(self.fuel, rust.fuel, js.fuel),
            timeout: pick(self.timeout, rust.timeout, js.timeout),
            memory_bytes: pick(self.memory_bytes, rust.memory_bytes, js.memory_bytes),
            input_bytes: pick(self.input_bytes, rust.input_bytes, js.input_bytes),
            result_bytes: pick(self.result_bytes, rust.result_bytes, js.result_bytes),
            log_bytes: pick(self.log_bytes, rust.log_bytes, js.log_bytes),
            module_bytes: pick(self.module_bytes, rust.module_bytes, js.module_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_javascript_module_takes_the_javascript_defaults_only_where_no_limit_was_set() {
        let mut js = b"\0asm\x01\0\0\0".to_vec();
        let name = crate::JAVASCRIPT_SECTION.as_bytes();
        js.extend([0, (name.len() + 1) as u8, name.len() as u8]);
        js.extend(name);
        assert_eq!(Limits::default().for_module(&js), Limits::javascript());
        let set = Limits {
            fuel: 20_000_000,
            ..Limits::default()
        };
        let got = set.for_module(&js);
        assert_eq!(got.fuel, 20_000_000, "a limit that was set is kept");
        assert_eq!(got.memory_bytes, Limits::javascript().memory_bytes);
        assert_eq!(
            Limits::default().for_module(b"\0asm\x01\0\0\0"),
            Limits::default()
        );
    }
}
