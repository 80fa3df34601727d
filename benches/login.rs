//! Criterion benchmarks of a login, grouped the way its cost builds up:
//! - `instantiate`: the floor, a fresh store and instance per rule, nothing called;
//! - `rule`: each example rule alone, input to parsed and policy-checked outcome;
//! - `native`: add-roles compiled natively and called directly on the same input bytes;
//! - `pipeline`: 1, 5 and 20 rules;
//! - `login`: the whole issuer, rules and signing, with RS256, ES256 and EdDSA;
//! - `threads`: throughput of one pipeline on 1 and 2 threads, of one with a single engine on 2,
//!   and of two separate ones;
//! - `scaling`: cost against event size and claim size.
//!
//! `cargo bench -p claimsmith-cli --bench login` (filter with `-- GROUP`).

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use claimsmith_engine::internals::instantiate_only;
use claimsmith_engine::{LoginEvent, SandboxConfig};

fn event() -> LoginEvent {
    claimsmith_engine::internals::event_from_json(&support::event_json()).expect("bench event")
}

fn instantiate(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate");
    let pipeline = support::pipeline(&["add-roles"]);
    group.bench_function("add-roles", |b| {
        b.iter(|| instantiate_only(&pipeline, 0).expect("instantiates"))
    });
    group.finish();
}

fn rule(c: &mut Criterion) {
    let mut group = c.benchmark_group("rule");
    let event = event();
    for name in support::RULES {
        let pipeline = support::pipeline(&[name]);
        pipeline
            .run(&event)
            .expect("the bench login passes every rule");
        group.bench_function(name, |b| b.iter(|| pipeline.run(black_box(&event))));
    }
    group.finish();
}

/// add-roles natively: the same input document parsed into an `Event`, the rule, the result
/// serialized and parsed back, as the wasm path does on each side of the boundary.
fn native(c: &mut Criterion) {
    let mut group = c.benchmark_group("native");
    let input = support::native_input();
    group.bench_function("add-roles", |b| {
        b.iter(|| black_box(support::native_login(black_box(&input))))
    });
    let event: claimsmith_sdk::Event = serde_json::from_slice(&input).unwrap();
    group.bench_function("add-roles-logic-only", |b| {
        b.iter(|| support::native_rule(black_box(&event)))
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    let event = event();
    for n in [1, 5, 20] {
        let pipeline = support::pipeline(&support::rule_names(n));
        pipeline.run(&event).expect("passes");
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| pipeline.run(black_box(&event)))
        });
    }
    group.finish();
}

fn login(c: &mut Criterion) {
    let mut group = c.benchmark_group("login");
    let event = event();
    for alg in ["RS256", "ES256", "EdDSA"] {
        let (issuer, _dir) = support::issuer(alg, &["add-roles"]);
        issuer.login(&event).expect("login");
        group.bench_function(alg, |b| b.iter(|| issuer.login(black_box(&event))));
    }
    group.finish();
}

/// Logins per second of one issuer shared by `threads` threads (rules only: the pipeline, so
/// signing does not hide the engine's scaling).
fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    let event = event();
    let pipeline = support::pipeline(&["add-roles"]);
    // Two threads, each with a pipeline of its own: what sharing one costs.
    let own = [
        support::pipeline(&["add-roles"]),
        support::pipeline(&["add-roles"]),
    ];
    // Two threads sharing a pipeline that has one engine only (`limits.engines = 1`).
    let one_engine = support::pipeline_with(
        SandboxConfig {
            engines: 1,
            ..SandboxConfig::default()
        },
        &["add-roles"],
    );
    group.throughput(Throughput::Elements(2));
    group.bench_function("2-one-engine", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        for _ in 0..iters {
                            black_box(one_engine.run(&event).expect("passes"));
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
    group.bench_function("2-separate-pipelines", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            std::thread::scope(|scope| {
                for pipeline in &own {
                    let event = &event;
                    scope.spawn(move || {
                        for _ in 0..iters {
                            black_box(pipeline.run(event).expect("passes"));
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..t {
                        scope.spawn(|| {
                            for _ in 0..iters {
                                black_box(pipeline.run(&event).expect("passes"));
                            }
                        });
                    }
                });
                started.elapsed()
            })
        });
    }
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling");
    let pipeline = support::pipeline(&["add-roles"]);
    for padding in [0usize, 8 << 10, 64 << 10] {
        let event = support::sized_event(2, padding);
        group.bench_function(BenchmarkId::new("event_padding_bytes", padding), |b| {
            b.iter(|| pipeline.run(black_box(&event)))
        });
    }
    for roles in [2usize, 64, 512] {
        let event = support::sized_event(roles, 0);
        group.bench_function(BenchmarkId::new("roles_in_claim", roles), |b| {
            b.iter(|| pipeline.run(black_box(&event)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = instantiate, rule, native, pipeline, login, threads, scaling
}
criterion_main!(benches);
