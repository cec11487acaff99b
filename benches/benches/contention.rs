//! One shared verifier under contention: 1, 2 and 8 threads verify a mix of warm tokens
//! (nine in ten: 64 tokens seen before) and cold ones (one in ten: never seen), ES256.
//! Criterion reports the wall time per verification, so the throughput of `threads_2`
//! over `threads_1` shows whether the work scales with cores (this machine's core count is
//! in the report's header) or serializes on a lock; `threads_8` oversubscribes the cores.
//!
//! `cargo bench -p dharma-benches --bench contention`
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "benches")]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dharma_benches::{block_on, jwt_verifier, tokens};
use dharma_test_support::TestKey;

const WARM: usize = 64;
const COLD: usize = 400;
/// One in `COLD_EVERY` verifications is of a new token.
const COLD_EVERY: usize = 10;

/// Verifies `ops` tokens on `threads` threads sharing one fresh verifier; returns the
/// wall time. No cold token repeats within a pass.
fn pass(key: &TestKey, threads: usize, ops: usize, warm: &[String], cold: &[String]) -> Duration {
    let verifier = jwt_verifier(key, 10_000);
    for t in warm {
        block_on(verifier.verify_token(t)).unwrap();
    }
    let per = ops.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for i in 0..threads {
            let verifier = &verifier;
            s.spawn(move || {
                for k in 0..per {
                    let n = i * per + k;
                    let t = if n.is_multiple_of(COLD_EVERY) {
                        &cold[(n / COLD_EVERY) % cold.len()]
                    } else {
                        &warm[n % warm.len()]
                    };
                    block_on(verifier.verify_token(t)).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn contention(c: &mut Criterion) {
    let key = TestKey::generate("ES256", "k");
    let warm = tokens(&key, WARM);
    let cold = tokens(&key, COLD);
    let mut group = c.benchmark_group("contention");
    for threads in [1, 2, 8] {
        group.bench_function(format!("threads_{threads}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let n = left.min(COLD * COLD_EVERY);
                    total += pass(&key, threads, n, &warm, &cold);
                    left -= n;
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, contention);
criterion_main!(benches);
