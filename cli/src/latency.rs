//! Latency samples and their percentiles, for `claimsmith bench` and the benchmark harnesses.

use std::time::Duration;

/// Sorted latency samples.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    sorted: Vec<Duration>,
}

impl Latencies {
    /// Collect and sort `samples`.
    pub fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        Latencies { sorted: samples }
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The `p`-th percentile (0..=100) by the nearest-rank method; zero when empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = claimsmith_cli::internals::Latencies::new((1..=100).map(Duration::from_micros).collect());
    /// assert_eq!(l.percentile(50.0), Duration::from_micros(50));
    /// assert_eq!(l.percentile(99.0), Duration::from_micros(99));
    /// ```
    pub fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// The `p`-th percentile in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        micros(self.percentile(p))
    }
}

/// A duration in microseconds, rounded to 0.001.
pub fn micros(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// The CPU time this whole process has used so far, user and system, every thread included
/// (`getrusage(RUSAGE_SELF)`); `None` if the OS does not tell.
pub fn process_cpu_time() -> Option<Duration> {
    // SAFETY: getrusage only writes the struct it is given, which is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

/// This process's resident memory in bytes (Linux `/proc/self/status`), if the OS tells.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies::new(vec![
            Duration::from_micros(30),
            Duration::from_micros(10),
            Duration::from_micros(20),
        ]);
        assert_eq!(l.percentile(0.0), Duration::from_micros(10));
        assert_eq!(l.percentile(50.0), Duration::from_micros(20));
        assert_eq!(l.percentile(90.0), Duration::from_micros(30));
        assert_eq!(Latencies::default().percentile(50.0), Duration::ZERO);
    }

    #[test]
    fn micros_rounds_to_nanoseconds() {
        assert_eq!(micros(Duration::from_nanos(12_345)), 12.345);
    }
}
