//! Classification: the path of a request to its endpoint, in topologies of 10, 1,000 and
//! 10,000 endpoints (literal, parameter and tail segments), for a path that is declared
//! and one that is not. The path table is compiled into matchit, so the cost grows with
//! the path's length, not with the number of endpoints.
//!
//! `cargo bench -p dharma-benches --bench classify`
#![expect(clippy::unwrap_used, reason = "benches")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dharma_core::model::{Domain, Endpoint, Topology};
use http::Method;

/// `n` endpoints: `/svc{i}/items/{id}`, `/svc{i}/items/{id}/parts/{*rest}` and
/// `/svc{i}/status` in turn.
fn topology(n: usize) -> Topology {
    (0..n)
        .fold(Topology::builder().domain(Domain::builder("d")), |b, i| {
            let path = match i % 3 {
                0 => format!("/svc{}/items/{{id}}", i / 3),
                1 => format!("/svc{}/items/{{id}}/parts/{{*rest}}", i / 3),
                _ => format!("/svc{}/status", i / 3),
            };
            b.endpoint(Endpoint::public("d", &path).methods(["GET"]))
        })
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    for n in [10, 1_000, 10_000] {
        let t = topology(n);
        // The last service with all three endpoints.
        let last = n / 3 - 1;
        let hit = format!("/svc{last}/items/42/parts/a/b");
        assert!(t.classify(&Method::GET, &hit).endpoint().is_some());
        group.bench_function(format!("hit_{n}"), |b| {
            b.iter(|| black_box(t.classify(&Method::GET, black_box(&hit))).endpoint())
        });
        let miss = format!("/svc{last}/nothing/here");
        group.bench_function(format!("miss_{n}"), |b| {
            b.iter(|| black_box(t.classify(&Method::GET, black_box(&miss))).endpoint())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
