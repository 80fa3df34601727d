//! The peer harness: the same add-roles logic on the same event, per login, in
//! - claimsmith: a fresh wasm instance per login, from the event's JSON bytes (the host parses
//!   and checks them, as every peer parses its JSON) to a policy-checked outcome; and, for
//!   reference, the rules alone on an event the issuer already parsed; and from the JSON bytes
//!   again with `prewarm = 8` (ready instances made, and torn down, on a background thread);
//! - native Rust: the rule crate called directly, with the same JSON in and out;
//! - claimsmith running `benches/peer/add-roles.js`, the very action Node.js runs, unchanged, as a
//!   JavaScript rule (Boa inside the module, a fresh instance of its snapshot per login), from
//!   the event's JSON bytes;
//! - Node.js with a fresh `vm` context per login (isolation like ours, as Auth0 Actions need);
//! - Node.js with one shared context (no isolation between logins);
//!
//! then a table of each runtime's p50 and p99 over all its logins, the ratios of the per-round
//! medians, and the resident memory of loaded rules and of warm instance slots. Node.js runs
//! `benches/peer/node-peer.mjs`; without `node` on PATH the harness says so and runs the rest.
//!
//! The runtimes take turns: `PEER_ROUNDS` rounds (default 40), each a batch of logins of every
//! runtime, in an order shuffled from round to round, with Node.js serving each of its two modes
//! from a warm process of its own (`node-peer.mjs --serve --mode ..`: a process that has run
//! fresh contexts runs the shared one slower). This machine's speed drifts by tens of percent over
//! minutes, so runtimes timed one after the other were compared across different phases;
//! taking turns puts every runtime through the same ones, and the per-round medians show how
//! steady each ratio is.
//!
//! `cargo bench -p claimsmith-cli --bench peer`. `PEER_ITERATIONS` (default 20,000) is split evenly
//! over the rounds, any remainder dropped, for every runtime but the JavaScript ones in a fresh
//! context or instance, which get a tenth as many; `PEER_ROUNDS` sets the rounds.

#[path = "../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use claimsmith_cli::internals::{Latencies, resident_bytes};
use serde_json::Value;

struct Row {
    runtime: &'static str,
    isolation: &'static str,
    p50_us: f64,
    p99_us: f64,
}

/// The runtimes, in table order; the last two are Node.js's.
const RUNTIMES: [(&str, &str); 7] = [
    (
        "claimsmith (wasm), from JSON bytes",
        "fresh instance per login",
    ),
    (
        "claimsmith (wasm), rules only (event parsed by the issuer)",
        "fresh instance per login",
    ),
    ("native Rust, called directly", "none"),
    (
        "claimsmith (wasm), from JSON bytes, prewarm = 8",
        "fresh instance per login, made ahead",
    ),
    (
        "claimsmith, the same JavaScript action (Boa in wasm), from JSON bytes",
        "fresh instance per login",
    ),
    ("Node.js vm, fresh context", "fresh context per login"),
    ("Node.js, shared context", "none"),
];
const FROM_JSON: usize = 0;
const RULES_ONLY: usize = 1;
const NATIVE: usize = 2;
const PREWARMED: usize = 3;
const JAVASCRIPT: usize = 4;
const NODE_FRESH: usize = 5;
const NODE_SHARED: usize = 6;

fn main() {
    let iterations = support::env_count("PEER_ITERATIONS", 20_000);
    let rounds = support::env_count("PEER_ROUNDS", 40).min(iterations);
    let per_round = iterations / rounds;
    // A fresh vm context costs about fifty times a login of the others: a tenth as many keep
    // its share of the run's time in line (50 per round, 2,000 in all, by default).
    let node_fresh_per_round = (per_round / 10).max(1);
    let event_path = support::event_path();
    let event_bytes = support::event_json();

    let rss_start = resident_bytes();
    let pipeline = support::pipeline(&["add-roles"]);
    let event = claimsmith_engine::internals::event_from_json(&event_bytes).expect("bench event");
    let input = support::native_input();
    let javascript = support::js_pipeline();
    let prewarmed = support::pipeline_with(
        claimsmith_engine::SandboxConfig {
            prewarm: 8,
            ..claimsmith_engine::SandboxConfig::default()
        },
        &["add-roles"],
    );
    let mut ours: [Box<dyn FnMut() + '_>; 5] = [
        Box::new(|| {
            // As a host that takes the rules' decision parses each login (borrowed, into the
            // parts the rules read; an issuer that signs tokens parses typed instead).
            let event = pipeline
                .event_from_json(black_box(&event_bytes))
                .expect("bench event");
            black_box(pipeline.run(&event).expect("add-roles passes"));
        }),
        Box::new(|| {
            black_box(pipeline.run(&event).expect("add-roles passes"));
        }),
        Box::new(|| {
            black_box(support::native_login(&input));
        }),
        Box::new(|| {
            let event = prewarmed
                .event_from_json(black_box(&event_bytes))
                .expect("bench event");
            black_box(prewarmed.run(&event).expect("add-roles passes"));
        }),
        Box::new(|| {
            let event = javascript
                .event_from_json(black_box(&event_bytes))
                .expect("bench event");
            black_box(javascript.run(&event).expect("add-roles.js passes"));
        }),
    ];
    for (i, run) in ours.iter_mut().enumerate() {
        let n = if i == JAVASCRIPT {
            node_fresh_per_round
        } else {
            per_round
        };
        for _ in 0..n {
            run();
        }
    }

    // Node.js's two runtimes (`NODE_FRESH`, `NODE_SHARED`), each in a process of its own.
    let mut node =
        match ["fresh_vm", "shared_context"].map(|mode| NodePeer::start(&event_path, mode)) {
            [Ok(fresh), Ok(shared)] => Some([fresh, shared]),
            [Err(why), _] | [_, Err(why)] => {
                println!("Node.js peer skipped: {why}\n");
                None
            }
        };
    let runtimes = if node.is_some() { 7 } else { 5 };
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); runtimes];
    let mut round_p50s: Vec<Vec<f64>> = vec![Vec::new(); runtimes];
    for round in 0..rounds {
        for runtime in support::turns(round, runtimes) {
            let batch = if runtime <= PREWARMED {
                time(per_round, &mut ours[runtime])
            } else if runtime == JAVASCRIPT {
                time(node_fresh_per_round, &mut ours[runtime])
            } else {
                let n = if runtime == NODE_FRESH {
                    node_fresh_per_round
                } else {
                    per_round
                };
                let node = node.as_mut().expect("Node.js runtimes run only with node");
                node[runtime - NODE_FRESH]
                    .batch(n)
                    .unwrap_or_else(|e| panic!("Node.js peer: {e}"))
            };
            samples[runtime].extend_from_slice(&batch);
            round_p50s[runtime].push(Latencies::new(batch).percentile_us(50.0));
        }
    }

    let rows: Vec<Row> = samples
        .into_iter()
        .zip(RUNTIMES)
        .map(|(samples, (runtime, isolation))| {
            let latencies = Latencies::new(samples);
            Row {
                runtime,
                isolation,
                p50_us: latencies.percentile_us(50.0),
                p99_us: latencies.percentile_us(99.0),
            }
        })
        .collect();
    let ours = rows[0].p50_us;
    println!(
        "add-roles on {} ({} bytes): {rounds} rounds taking turns, {per_round} logins per round each \
         (JavaScript in a fresh context or instance: {node_fresh_per_round}){}\n",
        event_path.display(),
        event_bytes.len(),
        node.as_ref()
            .map(|node| format!(", Node.js {}", node[0].version))
            .unwrap_or_default()
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

    println!("\nratios of the per-round medians ({rounds} rounds): median, and lowest to highest");
    let ratio = |name: &str, over: usize, under: usize| {
        let ratios: Vec<f64> = round_p50s[over]
            .iter()
            .zip(&round_p50s[under])
            .map(|(a, b)| a / b)
            .collect();
        let below = ratios.iter().filter(|&&r| r < 1.0).count();
        let (median, lowest, highest) = support::spread(ratios);
        println!(
            "  {name}: {median:.2} x ({lowest:.2}-{highest:.2} x; below 1 in {below} of {rounds} rounds)"
        );
    };
    ratio("claimsmith rules only / native", RULES_ONLY, NATIVE);
    ratio("claimsmith from JSON bytes / native", FROM_JSON, NATIVE);
    ratio(
        "claimsmith from JSON bytes, prewarm / native",
        PREWARMED,
        NATIVE,
    );
    if node.is_some() {
        ratio(
            "Node.js fresh context / claimsmith from JSON bytes",
            NODE_FRESH,
            FROM_JSON,
        );
        ratio(
            "Node.js fresh context / claimsmith rules only",
            NODE_FRESH,
            RULES_ONLY,
        );
        ratio(
            "claimsmith from JSON bytes / Node.js shared context",
            FROM_JSON,
            NODE_SHARED,
        );
        ratio(
            "claimsmith rules only / Node.js shared context",
            RULES_ONLY,
            NODE_SHARED,
        );
        ratio(
            "claimsmith from JSON bytes, prewarm / Node.js shared context",
            PREWARMED,
            NODE_SHARED,
        );
        ratio(
            "Node.js fresh context / claimsmith from JSON bytes, prewarm",
            NODE_FRESH,
            PREWARMED,
        );
        ratio(
            "Node.js fresh context / claimsmith JavaScript action",
            NODE_FRESH,
            JAVASCRIPT,
        );
        ratio(
            "claimsmith JavaScript action / Node.js shared context",
            JAVASCRIPT,
            NODE_SHARED,
        );
    }
    drop(node);

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
        let mut distinct: Vec<&claimsmith_engine::Rule> = Vec::new();
        for rule in twenty.rules() {
            if !distinct.iter().any(|m| m.shares_code_with(rule)) {
                distinct.push(rule);
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

/// Time `iterations` calls one by one, after a twentieth as many untimed (the other runtimes
/// had the caches last).
fn time(iterations: usize, f: &mut dyn FnMut()) -> Vec<Duration> {
    for _ in 0..iterations.div_ceil(20) {
        f();
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        f();
        samples.push(started.elapsed());
    }
    samples
}

/// `node-peer.mjs --serve`: a warm Node.js process timing batches of one mode's logins on
/// request.
struct NodePeer {
    mode: &'static str,
    child: Child,
    /// Closed (taken) on drop, which ends the script.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    version: String,
}

impl NodePeer {
    fn start(event: &std::path::Path, mode: &'static str) -> Result<NodePeer, String> {
        let script = support::workspace().join("benches/peer/node-peer.mjs");
        let config = serde_json::to_string(&support::configuration("add-roles")).expect("JSON");
        let mut child = Command::new("node")
            .arg(&script)
            .arg("--event")
            .arg(event)
            .args(["--config-json", &config, "--serve", "--mode", mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run `node` ({e}); install Node.js to compare"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut node = NodePeer {
            mode,
            child,
            stdin: Some(stdin),
            stdout,
            version: String::new(),
        };
        let ready = node.reply()?;
        if ready["ready"] != true {
            return Err(format!("node-peer.mjs said {ready} instead of ready"));
        }
        node.version = ready["node_version"].as_str().unwrap_or("?").to_owned();
        Ok(node)
    }

    /// Time `n` logins in Node.js.
    fn batch(&mut self, n: usize) -> Result<Vec<Duration>, String> {
        let mode = self.mode;
        let stdin = self.stdin.as_mut().expect("open until drop");
        writeln!(stdin, "{mode} {n}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("node-peer.mjs stopped reading: {e}"))?;
        let reply = self.reply()?;
        let ns = reply["ns"]
            .as_array()
            .filter(|ns| reply["mode"] == mode && ns.len() == n)
            .ok_or_else(|| format!("node-peer.mjs answered {mode} {n} with {reply}"))?;
        ns.iter()
            .map(|ns| {
                ns.as_u64()
                    .map(Duration::from_nanos)
                    .ok_or_else(|| format!("node-peer.mjs gave {ns} as a duration"))
            })
            .collect()
    }

    fn reply(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err("node-peer.mjs exited (its error is above)".into()),
            Ok(_) => serde_json::from_str(&line)
                .map_err(|e| format!("node-peer.mjs printed {line:?}, not JSON: {e}")),
            Err(e) => Err(format!("cannot read from node-peer.mjs: {e}")),
        }
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        // Nothing more is wanted from node-peer.mjs: end it, and reap it so that no process is
        // left behind (closing its stdin alone would wait for any batch it is running).
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
