//! `policy analyze` on the default pack: wall time per full analysis (every tier x action x risk
//! level, every capability set) and the number of decisions it evaluates. The target is under
//! 5 s on a 2-core machine. Run with `cargo bench -p deskgate-policy --bench analyze`;
//! `DESKGATE_BENCH_ITERATIONS=N` sets how many analyses are timed (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use deskgate_policy::Bundle;

fn main() {
    let iterations: usize = std::env::var("DESKGATE_BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1);
    let bundle = Bundle::default_bundle().unwrap();
    let mut times: Vec<Duration> = Vec::with_capacity(iterations);
    let mut decisions = 0;
    let mut cells = 0;
    for _ in 0..iterations {
        let started = Instant::now();
        let analysis = bundle.analyze(chrono::Utc::now()).unwrap();
        times.push(started.elapsed());
        decisions = analysis.decisions;
        cells = analysis.cells.len();
        assert!(analysis.violations.is_empty());
    }
    times.sort();
    let median = times[times.len() / 2];
    let worst = times[times.len() - 1];
    println!(
        "policy analyze (default pack): {cells} cells, {decisions} decisions per analysis; \
         median {:.0} ms, worst {:.0} ms over {iterations} runs (target: under 5000 ms)",
        median.as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0
    );
}
