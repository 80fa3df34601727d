//! The peer harness: the same add-roles logic on the same event, per login, in
//! - claimsmith: a fresh wasm instance per login, from the event's JSON bytes (the host parses
//!   and checks them, as every peer parses its JSON) to a policy-checked outcome; and, for
//!   reference, the rules alone on an event the issuer already parsed;
//! - native Rust: the rule crate called directly, with the same JSON in and out;
//! - Node.js with a fresh `vm` context per login (isolation like ours, as Auth0 Actions need);
//! - Node.js with one shared context (no isolation between logins);
//!
//! then one table of medians and ratios, and the resident memory of loaded rules and of warm
//! instance slots. Node.js runs `benches/peer/node-peer.mjs`; without `node` on PATH the
//! harness says so and runs the rest.
//!
//! `cargo bench -p claimsmith --bench peer` (set `PEER_ITERATIONS` for more or fewer logins).

#[path = "../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use claimsmith::engine::validated_module::ValidatedModule;
use claimsmith::engine::{LoginEvent, RuleResult};
use claimsmith::latency::{Latencies, resident_bytes};
use serde_json::{Value, json};

struct Row {
    runtime: &'static str,
    isolation: &'static str,
    p50_us: f64,
    p99_us: f64,
}

fn main() {
    let iterations: usize = std::env::var("PEER_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let event_path = support::event_path();
    let event_bytes = support::event_json();

    let rss_start = resident_bytes();
    let pipeline = support::pipeline(&["add-roles"]);
    let event = LoginEvent::from_json(&event_bytes).expect("bench event");
    let claimsmith = time(iterations, || {
        // As an issuer parses each login (`Issuer::login_json`).
        let event = pipeline
            .event_from_json(black_box(&event_bytes))
            .expect("bench event");
        black_box(pipeline.run(&event).expect("add-roles passes"));
    });
    let rules_only = time(iterations, || {
        black_box(pipeline.run(&event).expect("add-roles passes"));
    });

    let mut input = support::event_value();
    input["configuration"] = Value::Object(support::configuration("add-roles"));
    input["secrets"] = json!({});
    let input = serde_json::to_vec(&input).expect("JSON");
    let native = time(iterations, || {
        let event: claimsmith_sdk::Event = serde_json::from_slice(&input).unwrap();
        let result = claimsmith_sdk::testing::run(add_roles::on_execute_post_login, &event);
        let bytes = serde_json::to_vec(&result).unwrap();
        black_box(serde_json::from_slice::<RuleResult>(&bytes).unwrap());
    });

    let mut rows = vec![
        Row {
            runtime: "claimsmith (wasm), from JSON bytes",
            isolation: "fresh instance per login",
            p50_us: claimsmith.percentile_us(50.0),
            p99_us: claimsmith.percentile_us(99.0),
        },
        Row {
            runtime: "claimsmith (wasm), rules only (event parsed by the issuer)",
            isolation: "fresh instance per login",
            p50_us: rules_only.percentile_us(50.0),
            p99_us: rules_only.percentile_us(99.0),
        },
        Row {
            runtime: "native Rust, called directly",
            isolation: "none",
            p50_us: native.percentile_us(50.0),
            p99_us: native.percentile_us(99.0),
        },
    ];
    match node(&event_path) {
        Ok(node) => {
            for (key, runtime, isolation) in [
                (
                    "fresh_vm",
                    "Node.js vm, fresh context",
                    "fresh context per login",
                ),
                ("shared_context", "Node.js, shared context", "none"),
            ] {
                rows.push(Row {
                    runtime,
                    isolation,
                    p50_us: node[key]["p50_us"].as_f64().unwrap_or(f64::NAN),
                    p99_us: node[key]["p99_us"].as_f64().unwrap_or(f64::NAN),
                });
            }
        }
        Err(why) => println!("Node.js peer skipped: {why}\n"),
    }

    let ours = rows[0].p50_us;
    println!(
        "add-roles on benches/events/login-1k.json ({} bytes), {iterations} logins each (Node.js: see node-peer.mjs)\n",
        event_bytes.len()
    );
    println!("| runtime | isolation between logins | p50 us | p99 us | p50 / claimsmith p50 |");
    println!("|---|---|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.2} |",
            row.runtime,
            row.isolation,
            row.p50_us,
            row.p99_us,
            row.p50_us / ours
        );
    }

    // Memory: 20 loaded rules, then one login through all of them (one warm slot per rule).
    let rss_one_rule = resident_bytes();
    let twenty = support::pipeline(&support::rule_names(20));
    let rss_loaded = resident_bytes();
    twenty.run(&event).expect("the 20-rule pipeline passes");
    let rss_warm = resident_bytes();
    if let (Some(start), Some(one), Some(loaded), Some(warm)) =
        (rss_start, rss_one_rule, rss_loaded, rss_warm)
    {
        let kib = |b: u64| b as f64 / 1024.0;
        println!(
            "\nresident memory: process with one rule loaded and run {:.0} KiB (from {:.0} KiB)",
            kib(one),
            kib(start)
        );
        let mut distinct: Vec<&ValidatedModule> = Vec::new();
        for rule in twenty.rules() {
            if !distinct.iter().any(|m| m.shares_code_with(rule.module())) {
                distinct.push(rule.module());
            }
        }
        let code: usize = distinct.iter().map(|m| m.code_bytes()).sum();
        println!(
            "  20 more rules loaded ({} distinct modules, {:.0} KiB of compiled code each on average): +{:.0} KiB RSS, compiler heap included",
            distinct.len(),
            code as f64 / 1024.0 / distinct.len() as f64,
            kib(loaded.saturating_sub(one)),
        );
        println!(
            "  one login through the 20 rules: +{:.0} KiB ({:.0} KiB per warm instance slot)",
            kib(warm.saturating_sub(loaded)),
            kib(warm.saturating_sub(loaded)) / 20.0
        );
    }
}

/// Time `iterations` calls one by one, after a tenth as many untimed.
fn time(iterations: usize, mut f: impl FnMut()) -> Latencies {
    for _ in 0..iterations / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        f();
        samples.push(started.elapsed());
    }
    Latencies::new(samples)
}

fn node(event: &std::path::Path) -> Result<Value, String> {
    let script = support::workspace().join("benches/peer/node-peer.mjs");
    let config = serde_json::to_string(&support::configuration("add-roles")).expect("JSON");
    let out = Command::new("node")
        .arg(&script)
        .arg("--event")
        .arg(event)
        .args(["--config-json", &config])
        .output()
        .map_err(|e| format!("cannot run `node` ({e}); install Node.js to compare"))?;
    if !out.status.success() {
        return Err(format!(
            "node-peer.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("node-peer.mjs printed no JSON: {e}"))
}
