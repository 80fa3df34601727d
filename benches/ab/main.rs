//! Rule modules side by side in one process: each module in a one-rule pipeline of its own, the
//! logins taken round-robin across them, so that the machine's slow and fast phases (this
//! machine's medians drift by a third between runs) hit every module alike. This is how a change
//! to the SDK or to a rule is measured in time: build the module before and after, and compare
//! them in one run. Instruction counts alone can mislead (docs/performance.md).
//!
//! `cargo bench -p claimsmith-cli --bench ab -- [RULE=MODULE ...]`: RULE names the example rule
//! whose configuration the module gets (as in examples/claimsmith.toml), MODULE is the `.wasm`
//! file. Without arguments, the five example rules as built now. `AB_ROUNDS` sets the rounds
//! (default 20,000, after 2,000 to warm up); `AB_EVENT` a login event file other than the
//! benchmark login (`benches/events/login-1k.json`).

#[path = "../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use claimsmith_cli::internals::Latencies;
use claimsmith_engine::{Pipeline, SandboxConfig};

fn main() {
    let mut modules: Vec<(String, PathBuf)> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .map(|arg| match arg.split_once('=') {
            Some((rule, path)) => (rule.to_owned(), from_invocation(path.as_ref())),
            None => panic!("expected RULE=MODULE, got {arg:?}"),
        })
        .collect();
    if modules.is_empty() {
        modules = support::RULES
            .iter()
            .map(|rule| (rule.to_string(), support::module(rule)))
            .collect();
    }
    let rounds: usize = std::env::var("AB_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let event_path = match std::env::var_os("AB_EVENT") {
        Some(path) => from_invocation(path.as_ref()),
        None => support::event_path(),
    };
    let bytes = std::fs::read(&event_path)
        .unwrap_or_else(|e| panic!("event {}: {e}", event_path.display()));
    let event = claimsmith_engine::internals::event_from_json(&bytes)
        .unwrap_or_else(|e| panic!("event {}: {e}", event_path.display()));
    // One engine each: the login's engine does not depend on the CPU it starts on.
    let config = SandboxConfig {
        engines: 1,
        ..SandboxConfig::default()
    };
    let pipelines: Vec<Pipeline> = modules
        .iter()
        .map(|(rule, path)| {
            support::pipeline_of_modules(config.clone(), &[(rule.as_str(), path.clone())])
        })
        .collect();

    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); pipelines.len()];
    for round in 0..2_000 + rounds {
        // Start each round at the next module, so that none always runs first.
        for k in 0..pipelines.len() {
            let k = (k + round) % pipelines.len();
            let started = Instant::now();
            black_box(pipelines[k].run(&event).expect("the rule runs"));
            if round >= 2_000 {
                samples[k].push(started.elapsed());
            }
        }
    }

    println!(
        "{} logins per module on {}, round-robin in one process\n",
        rounds,
        event_path.display()
    );
    println!("| module | rule | p25 us | p50 us | p75 us | p50 / first |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut first = None;
    for ((rule, path), samples) in modules.iter().zip(samples) {
        let latencies = Latencies::new(samples);
        let p50 = latencies.percentile_us(50.0);
        let first = *first.get_or_insert(p50);
        println!(
            "| {} | {rule} | {:.2} | {p50:.2} | {:.2} | {:.3} |",
            path.display(),
            latencies.percentile_us(25.0),
            latencies.percentile_us(75.0),
            p50 / first
        );
    }
}

/// A path given on the command line. Cargo runs benches in the package's directory (`host/`),
/// not where it was called from, so a relative path is taken from the caller's directory as
/// the shell's `PWD` gives it (a script that changes directory without updating `PWD` should
/// pass absolute paths), and, if nothing is there, from the workspace root. A path found in
/// neither place stops the bench naming both.
fn from_invocation(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    let from_caller = std::env::var_os("PWD").map(|dir| PathBuf::from(dir).join(path));
    let from_workspace = support::workspace().join(path);
    match from_caller {
        Some(candidate) if candidate.exists() => candidate,
        _ if from_workspace.exists() => from_workspace,
        from_caller => panic!(
            "{}: not found in the calling directory ({}) or the workspace ({})",
            path.display(),
            from_caller.map_or("PWD unset".into(), |p| p.display().to_string()),
            from_workspace.display()
        ),
    }
}
