//! Decisions while the policy is reloaded every 100 ms: two threads decide warm requests
//! through one enforcer, with and without a third thread swapping in a new policy (a new
//! topology, the same mechanism instances: what a file reload applies) every 100 ms.
//! Criterion reports the wall time per decision; `reloading` over `steady` is the cost of
//! reloads to requests.
//!
//! `cargo bench -p dharma-benches --bench reload`
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "benches")]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use dharma_benches::{ROUTE, SCOPE, bearer_headers, block_on, jwt_verifier};
use dharma_core::{
    Decision, Enforcer, Mechanisms, RequestView,
    model::{Domain, Endpoint, Topology},
};
use dharma_test_support::TestKey;
use http::{HeaderMap, Method};

/// Decisions per pass (on two threads): long enough for reloads to happen within it.
const OPS: usize = 100_000;
const RELOAD_EVERY: Duration = Duration::from_millis(100);

/// The bench policy, with `extra` more endpoints (so that successive policies differ).
fn topology(extra: usize) -> Topology {
    let mut t = Topology::builder()
        .domain(Domain::builder("outer").access("jwt"))
        .endpoint(
            Endpoint::boundary("outer", ROUTE)
                .methods(["GET"])
                .scopes([SCOPE]),
        );
    for i in 0..extra {
        t = t.endpoint(Endpoint::boundary("outer", &format!("/extra/{i}")).methods(["GET"]));
    }
    t.build().unwrap()
}

/// Decides `OPS` warm requests on two threads; with `reload`, a third thread reloads the
/// policy every 100 ms meanwhile. Returns the wall time and the reloads applied.
fn pass(
    enforcer: &Enforcer,
    mechanisms: &Mechanisms,
    headers: &[HeaderMap],
    reload: bool,
) -> (Duration, u64) {
    let done = AtomicBool::new(false);
    let reloads = AtomicU64::new(0);
    let start = Instant::now();
    let elapsed = std::thread::scope(|s| {
        if reload {
            s.spawn(|| {
                let mut n = 0;
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(RELOAD_EVERY);
                    n += 1;
                    enforcer
                        .reload(topology(n % 8), mechanisms, "bench")
                        .unwrap();
                    reloads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let workers: Vec<_> = (0..2)
            .map(|w| {
                s.spawn(move || {
                    for k in 0..OPS / 2 {
                        let h = &headers[(w + k) % headers.len()];
                        let view = RequestView::new(&Method::GET, "/orders/7", h);
                        assert!(matches!(
                            block_on(enforcer.decide(&view)),
                            Decision::Allow(_)
                        ));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        // Timed when the deciding threads finish, not when the reloading one wakes up.
        let elapsed = start.elapsed();
        done.store(true, Ordering::Relaxed);
        elapsed
    });
    (elapsed, reloads.load(Ordering::Relaxed))
}

fn reload(c: &mut Criterion) {
    let key = TestKey::generate("ES256", "k");
    let mechanisms = Mechanisms::new().with("jwt", Arc::new(jwt_verifier(&key, 10_000)));
    let enforcer = Enforcer::builder(topology(0))
        .mechanisms(&mechanisms)
        .build()
        .unwrap();
    let headers: Vec<HeaderMap> = bearer_headers(&key, 64);
    let mut group = c.benchmark_group("reload");
    group.sample_size(10);
    for (name, reloading) in [("steady", false), ("reloading", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut reloads = 0;
                for _ in 0..iters.div_ceil(OPS as u64) {
                    let (t, r) = pass(&enforcer, &mechanisms, &headers, reloading);
                    total += t;
                    reloads += r;
                }
                assert!(
                    !reloading || reloads > 0,
                    "no reload happened during the pass"
                );
                // Per decision, as criterion divides by `iters`.
                total.mul_f64(iters as f64 / (iters.div_ceil(OPS as u64) * OPS as u64) as f64)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, reload);
criterion_main!(benches);
