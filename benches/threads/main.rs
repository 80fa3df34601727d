//! Two threads against one, taking turns: how much more a second thread gets through, for the
//! rules and, as this machine's own yardstick, for the same rule logic in native Rust.
//!
//! Criterion's `threads` group times one thread, then two, minutes apart; this machine's speed
//! drifts by tens of percent over minutes, so that ratio moves with the phase as much as with the
//! code. Here every round runs four batches, in an order shuffled from round to round: the
//! add-roles pipeline on one thread and on two (sharing one pipeline, an engine per CPU, as an
//! issuer would), and the native baseline (JSON in, the rule, JSON out, parsed back) on one
//! thread and on two. Each round gives a ratio of two threads' throughput to one's, and the
//! median of those is the figure. Native Rust shares nothing between its threads, so its ratio
//! is what this machine gives two threads at best; the pipeline's ratio below it is what the
//! rules' sharing costs (the engines' pools, the kernel's page tables of one process).
//!
//! `cargo bench -p claimsmith-cli --bench threads` (`THREADS_ROUNDS`, default 40; `THREADS_LOGINS`,
//! logins per thread per batch, default 4,000).

#[path = "../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

fn main() {
    let rounds = support::env_count("THREADS_ROUNDS", 40);
    let logins = support::env_count("THREADS_LOGINS", 4_000);

    let pipeline = support::pipeline(&["add-roles"]);
    let event =
        claimsmith_engine::internals::event_from_json(&support::event_json()).expect("bench event");
    let input = support::native_input();

    let rules = || {
        black_box(pipeline.run(&event).expect("add-roles passes"));
    };
    let native = || {
        black_box(support::native_login(&input));
    };
    let workloads: [(&str, &(dyn Fn() + Sync)); 2] = [
        ("claimsmith rules (one pipeline)", &rules),
        ("native Rust", &native),
    ];

    // Warm up: every slot and cache the batches will use.
    for (_, work) in workloads {
        logins_per_sec(2, logins / 4, work);
    }
    // [workload][threads - 1]: logins per second of each round.
    let mut rates = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for round in 0..rounds {
        for batch in support::turns(round, 4) {
            let (workload, threads) = (batch / 2, batch % 2 + 1);
            rates[workload][threads - 1].push(logins_per_sec(
                threads,
                logins,
                workloads[workload].1,
            ));
        }
    }

    println!(
        "add-roles on {}: {rounds} rounds taking turns, {logins} logins per thread per batch\n",
        support::event_path().display()
    );
    println!(
        "| workload | 1 thread, k logins/s | 2 threads, k logins/s | 2 / 1 per round: median | lowest-highest |"
    );
    println!("|---|---:|---:|---:|---:|");
    for ((name, _), [one, two]) in workloads.iter().zip(&rates) {
        let (ratio, lowest, highest) =
            support::spread(two.iter().zip(one).map(|(b, a)| b / a).collect());
        println!(
            "| {name} | {:.1} | {:.1} | {ratio:.2} x | {lowest:.2}-{highest:.2} x |",
            support::spread(one.clone()).0 / 1e3,
            support::spread(two.clone()).0 / 1e3,
        );
    }
}

/// Run `logins` of `work` on each of `threads` threads, started together; their logins per
/// second, from the first start to the last finish.
fn logins_per_sec(threads: usize, logins: usize, work: &(dyn Fn() + Sync)) -> f64 {
    let start = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let started = Instant::now();
                    for _ in 0..logins {
                        work();
                    }
                    (started, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .collect()
    });
    let first = spans.iter().map(|s| s.0).min().expect("a thread");
    let last = spans.iter().map(|s| s.1).max().expect("a thread");
    (threads * logins) as f64 / (last - first).as_secs_f64()
}
