//! `claimsmith bench`: many logins of one event through the real issuer (rules, claim policy,
//! signing), on one or more threads; prints latency percentiles per login and for the rules
//! alone, per rule, throughput, start-up time and resident memory. Logins that fail under load
//! (a deadline, no free instance slot) are counted apart, not timed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use crate::latency::{Latencies, micros, process_cpu_time, resident_bytes};
use claimsmith::{Issuer, LoginFailure};
use claimsmith_engine::ArtifactSource;

use super::{EXIT_BAD_INPUT, EXIT_DENIED, EXIT_FAILURE, EXIT_RULE_FAILED, print_json};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The config file.
    #[arg(long)]
    config: PathBuf,
    /// The login event as JSON.
    #[arg(long)]
    event: PathBuf,
    /// Timed logins in all, split across the threads.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    iterations: u64,
    /// Threads running logins at once, all on the one issuer.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: u64,
    /// Untimed logins per thread first, to warm caches.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// What one thread measured: timings of the logins that got tokens, and failures by kind.
#[derive(Default)]
struct Samples {
    login: Vec<Duration>,
    rules: Vec<Duration>,
    minting: Vec<Duration>,
    per_rule: Vec<Vec<Duration>>,
    denied: usize,
    rule_failed: usize,
    other_failures: usize,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let issuer = Issuer::from_config_file(&args.config)?;
    let ready = started.elapsed();
    let rss_loaded = resident_bytes();
    let event = std::fs::read(&args.event)
        .with_context(|| format!("cannot read event {}", args.event.display()))?;

    // One login first: the bench only makes sense for a login that gets tokens.
    if let Err(failure) = issuer.login_json(&event) {
        let code = match &failure {
            LoginFailure::BadEvent(_) => EXIT_BAD_INPUT,
            LoginFailure::Denied(_) => EXIT_DENIED,
            LoginFailure::RuleFailed(_) => EXIT_RULE_FAILED,
            LoginFailure::Signing(_) => EXIT_FAILURE,
        };
        eprintln!(
            "error: {}: this login does not get tokens, so it cannot be benchmarked: {failure}",
            args.event.display()
        );
        return Ok(ExitCode::from(code));
    }

    let rule_count = issuer.pipeline().rules().len();
    let cached = issuer
        .pipeline()
        .rules()
        .iter()
        .filter(|r| r.artifact_source() == ArtifactSource::Cached)
        .count();
    let threads = args.threads as usize;
    let slots = issuer.config().sandbox.max_concurrent_instances as usize;
    if threads > slots {
        eprintln!(
            "error: --threads {threads} is more than the {slots} instance slots of the sandbox (limits.max_concurrent_instances): logins would fail for want of a slot"
        );
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    let per_thread: Vec<u64> = (0..args.threads)
        .map(|t| args.iterations / args.threads + u64::from(t < args.iterations % args.threads))
        .collect();
    // Every thread warms up, then all start timing together: the wall clock covers timed logins only.
    let start = Barrier::new(threads + 1);
    // The whole process's CPU time over the timed logins (every thread, the deadline clock's
    // included): what a login costs the machine, beside what it takes on the clock.
    let mut cpu: Option<Duration> = None;
    let (samples, wall): (Vec<Samples>, Duration) = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .iter()
            .map(|&n| {
                let (issuer, event, start) = (&issuer, &event, &start);
                std::thread::Builder::new()
                    .stack_size(issuer.config().sandbox.thread_stack_bytes())
                    .spawn_scoped(scope, move || {
                        for _ in 0..args.warmup {
                            let _ = issuer.login_json(event);
                        }
                        start.wait();
                        measure(issuer, event, n, rule_count)
                    })
                    .expect("a bench thread starts")
            })
            .collect();
        start.wait();
        let wall = Instant::now();
        let cpu_start = process_cpu_time();
        let samples = handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .collect();
        cpu = cpu_start
            .zip(process_cpu_time())
            .map(|(a, b)| b.saturating_sub(a));
        (samples, wall.elapsed())
    });
    let mut all = Samples {
        per_rule: vec![Vec::new(); rule_count],
        ..Samples::default()
    };
    for thread in samples {
        all.denied += thread.denied;
        all.rule_failed += thread.rule_failed;
        all.other_failures += thread.other_failures;
        all.login.extend(thread.login);
        all.rules.extend(thread.rules);
        all.minting.extend(thread.minting);
        for (into, from) in all.per_rule.iter_mut().zip(thread.per_rule) {
            into.extend(from);
        }
    }
    let rss_after = resident_bytes();
    let login = Latencies::new(all.login);
    let rules = Latencies::new(all.rules);
    let minting = Latencies::new(all.minting);
    let logins_per_sec = (args.iterations as f64 / wall.as_secs_f64()).round();
    let per_rule: Vec<Value> = issuer
        .pipeline()
        .rules()
        .iter()
        .zip(all.per_rule)
        .map(|(rule, samples)| {
            let l = Latencies::new(samples);
            json!({"name": rule.name(), "p50_us": l.percentile_us(50.0), "p99_us": l.percentile_us(99.0)})
        })
        .collect();
    let key = issuer.keys().signing();
    let report = json!({
        "iterations": args.iterations,
        "failed_logins": {"denied": all.denied, "rule_failed": all.rule_failed, "other": all.other_failures},
        "threads": threads,
        "engines": issuer.pipeline().engines(),
        "rules": rule_count,
        "alg": key.alg().name(),
        "p50_us": login.percentile_us(50.0),
        "p90_us": login.percentile_us(90.0),
        "p99_us": login.percentile_us(99.0),
        "logins_per_sec": logins_per_sec,
        "cpu_us_per_login": cpu.map(|cpu| micros(cpu) / args.iterations.max(1) as f64),
        "rules_p50_us": rules.percentile_us(50.0),
        "rules_p90_us": rules.percentile_us(90.0),
        "rules_p99_us": rules.percentile_us(99.0),
        "minting_p50_us": minting.percentile_us(50.0),
        "per_rule": per_rule,
        "ready_ms": micros(ready) / 1000.0,
        "rules_from_cache": cached,
        "rss_loaded_bytes": rss_loaded,
        "rss_after_bytes": rss_after,
    });
    if args.json {
        print_json(&report);
    } else {
        print!("{}", table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn measure(issuer: &Issuer, event: &[u8], iterations: u64, rule_count: usize) -> Samples {
    let n = iterations as usize;
    let mut samples = Samples {
        login: Vec::with_capacity(n),
        rules: Vec::with_capacity(n),
        minting: Vec::with_capacity(n),
        per_rule: vec![Vec::with_capacity(n); rule_count],
        ..Samples::default()
    };
    for _ in 0..iterations {
        let started = Instant::now();
        let tokens = match issuer.login_json(event) {
            Ok(tokens) => tokens,
            Err(LoginFailure::Denied(_)) => {
                samples.denied += 1;
                continue;
            }
            Err(LoginFailure::RuleFailed(_)) => {
                samples.rule_failed += 1;
                continue;
            }
            Err(_) => {
                samples.other_failures += 1;
                continue;
            }
        };
        samples.login.push(started.elapsed());
        samples.rules.push(tokens.timings.rules);
        samples.minting.push(tokens.timings.minting);
        for (into, trace) in samples.per_rule.iter_mut().zip(&tokens.outcome.rules) {
            into.push(trace.duration);
        }
    }
    samples
}

fn table(r: &Value) -> String {
    let us = |v: &Value| format!("{:>9.1} us", v.as_f64().unwrap_or(0.0));
    let mib = |v: &Value| match v.as_u64() {
        Some(b) => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        None => "unknown".into(),
    };
    let mut out = format!(
        "{} logins on {} thread(s) and {} engine(s), {} rule(s), signing with {}; ready in {:.1} ms ({} rules from the artifact cache)\n",
        r["iterations"],
        r["threads"],
        r["engines"],
        r["rules"],
        r["alg"].as_str().unwrap_or("?"),
        r["ready_ms"].as_f64().unwrap_or(0.0),
        r["rules_from_cache"]
    );
    out += &format!(
        "{:<28}{}  p90{}  p99{}\n",
        "login (rules + signing)  p50",
        us(&r["p50_us"]),
        us(&r["p90_us"]),
        us(&r["p99_us"])
    );
    out += &format!(
        "{:<28}{}  p90{}  p99{}\n",
        "rules only               p50",
        us(&r["rules_p50_us"]),
        us(&r["rules_p90_us"]),
        us(&r["rules_p99_us"])
    );
    out += &format!(
        "{:<28}{}\n",
        "signing                  p50",
        us(&r["minting_p50_us"])
    );
    for rule in r["per_rule"].as_array().into_iter().flatten() {
        out += &format!(
            "  {:<24}  p50{}  p99{}\n",
            rule["name"].as_str().unwrap_or("?"),
            us(&rule["p50_us"]),
            us(&rule["p99_us"])
        );
    }
    let failed = &r["failed_logins"];
    let count = |k: &str| failed[k].as_u64().unwrap_or(0);
    if count("denied") + count("rule_failed") + count("other") > 0 {
        out += &format!(
            "FAILED logins (left out of the percentiles): {} denied, {} rule failed, {} other\n",
            count("denied"),
            count("rule_failed"),
            count("other")
        );
    }
    if let Some(cpu) = r["cpu_us_per_login"].as_f64() {
        out += &format!(
            "cpu per login{cpu:>16.1} us (the process's user + system time over the timed logins)\n"
        );
    }
    out += &format!(
        "throughput {} logins/s; resident memory {} loaded, {} after\n",
        r["logins_per_sec"],
        mib(&r["rss_loaded_bytes"]),
        mib(&r["rss_after_bytes"])
    );
    out
}
