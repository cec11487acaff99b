//! What the JSON-lines audit sink adds to a decision at 100,000 decisions per second.
//!
//! One thread decides warm JWT requests paced at one every 10 µs, through two enforcers
//! that share one verifier: one whose sink discards events, one whose sink is a
//! `JsonLinesSink` (default settings: drop on overflow) writing to a file. Passes alternate
//! between the two (the machines are shared: a change of speed moves both alike); the
//! added cost is the difference of the mean decision times of neighbouring passes. Writes
//! `$CARGO_TARGET_DIR/criterion/audit_paced.txt` for the report.
//!
//! `cargo bench -p dharma-benches --bench audit [-- --quick]`
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "benches")]

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use dharma_benches::{ROUTE, SCOPE, bearer_headers, block_on, jwt_verifier};
use dharma_core::{
    Decision, Enforcer, RequestView,
    audit::{AuditEvent, AuditSink, JsonLinesSink},
    model::{Domain, Endpoint, Topology},
};
use dharma_test_support::TestKey;
use http::{HeaderMap, Method};

/// One decision every 10 µs: 100,000 a second.
const PERIOD: Duration = Duration::from_micros(10);

/// Discards every event: the floor the file sink is measured against.
#[derive(Debug)]
struct Discard;

impl AuditSink for Discard {
    fn record(&self, event: &AuditEvent) {
        black_box(event);
    }
}

fn enforcer(verifier: Arc<dyn dharma_core::Verifier>, sink: Arc<dyn AuditSink>) -> Enforcer {
    let topology = Topology::builder()
        .domain(Domain::builder("outer").access("jwt"))
        .endpoint(
            Endpoint::boundary("outer", ROUTE)
                .methods(["GET"])
                .scopes([SCOPE]),
        )
        .build()
        .unwrap();
    Enforcer::builder(topology)
        .mechanism("jwt", verifier)
        .audit(sink)
        .build()
        .unwrap()
}

/// Decides `n` requests paced at [`PERIOD`]; returns each decision's time in ns.
fn pass(enforcer: &Enforcer, headers: &[HeaderMap], n: usize) -> Vec<f64> {
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for k in 0..n {
        let due = start + PERIOD * u32::try_from(k).unwrap();
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let view = RequestView::new(&Method::GET, "/orders/7", &headers[k % headers.len()]);
        let t = Instant::now();
        let decision = block_on(enforcer.decide(black_box(&view)));
        samples.push(t.elapsed().as_nanos() as f64);
        assert!(matches!(decision, Decision::Allow(_)));
    }
    samples
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    (quantile(&samples, 0.5), mean, quantile(&samples, 0.99))
}

fn main() -> std::io::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, per_pass) = if quick { (4, 20_000) } else { (20, 50_000) };
    let key = TestKey::generate("ES256", "k");
    let verifier: Arc<dyn dharma_core::Verifier> = Arc::new(jwt_verifier(&key, 10_000));
    let headers: Vec<HeaderMap> = bearer_headers(&key, 64);
    let dir = std::env::temp_dir().join(format!("dharma-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = Arc::new(
        JsonLinesSink::builder(dir.join("audit.jsonl"))
            .build()
            .unwrap(),
    );
    let discard = enforcer(verifier.clone(), Arc::new(Discard));
    let json_lines = enforcer(verifier, file.clone());
    // Warm both (the verifier's cache, the file, the allocator).
    pass(&discard, &headers, 5_000);
    pass(&json_lines, &headers, 5_000);

    let (mut floor, mut sink, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (d, j) = if round % 2 == 0 {
            let d = pass(&discard, &headers, per_pass);
            (d, pass(&json_lines, &headers, per_pass))
        } else {
            let j = pass(&json_lines, &headers, per_pass);
            (pass(&discard, &headers, per_pass), j)
        };
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        added.push(mean(&j) - mean(&d));
        floor.extend(d);
        sink.extend(j);
    }
    file.flush()?;
    let stats = file.stats();
    added.sort_by(f64::total_cmp);
    let (fm, fa, f99) = summary(floor);
    let (sm, sa, s99) = summary(sink);
    let lines = format!(
        "discard {fm:.0} {fa:.0} {f99:.0}\njson_lines {sm:.0} {sa:.0} {s99:.0}\n\
         added {:.0} {:.0} {:.0}\nwritten {}\ndropped {}\n",
        quantile(&added, 0.5),
        quantile(&added, 0.25),
        quantile(&added, 0.75),
        stats.written,
        stats.dropped,
    );
    print!("{lines}");
    drop(json_lines);
    drop(file);
    std::fs::remove_dir_all(&dir)?;
    let out = std::path::Path::new(
        &std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
    )
    .join("criterion");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("audit_paced.txt"), lines)
}
