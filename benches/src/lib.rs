//! Benchmarks of dharma, measured as ratios against the raw signature check and against
//! peer crates in the same run, and the servers the loopback load test drives.
//!
//! Everything runs from one command, which writes `benches/REPORT.md`:
//!
//! ```text
//! bash benches/run            # full run (about 15 minutes on two cores)
//! bash benches/run --quick    # CI's short mode: prints the table, fails only if a bench cannot run
//! ```
//!
//! This library holds what the benches, the load servers and the gRPC load client share:
//! one service (`GET /orders/{id}` needing the `orders:read` scope, and its gRPC twin),
//! its keys and its tokens.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![expect(clippy::panic, reason = "bench harness: a broken fixture ends the run")]

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use dharma_core::{
    Enforcer,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    model::{Domain, Endpoint, Topology},
};
use dharma_test_support::{TestKey, keys::claims};

pub mod load;

/// The issuer of every bench token.
pub const ISSUER: &str = "https://idp.example";
/// The audience of every bench token.
pub const AUDIENCE: &str = "orders-api";
/// The scope the protected endpoint needs.
pub const SCOPE: &str = "orders:read";
/// The protected HTTP route.
pub const ROUTE: &str = "/orders/{id}";
/// A request path on that route.
pub const PATH: &str = "/orders/42";
/// The protected gRPC method (the standard health check).
pub const GRPC_PATH: &str = "/grpc.health.v1.Health/Check";

/// A JWT verifier trusting `key` for [`ISSUER`] and [`AUDIENCE`], remembering up to
/// `token_cache` verified tokens (0: none).
pub fn jwt_verifier(key: &TestKey, token_cache: u64) -> JwtVerifier {
    let jwk = VerifyingKey::from_jwk(&key.jwk()).unwrap_or_else(|e| panic!("bench key: {e}"));
    JwtVerifier::builder()
        .issuer(IssuerSpec::new(ISSUER).keys([jwk]).audience(AUDIENCE))
        .token_cache_capacity(token_cache)
        .build()
        .unwrap_or_else(|e| panic!("bench verifier: {e}"))
}

/// The bench service's enforcer: one domain whose access mechanism is `jwt`, the HTTP
/// route and the gRPC method as boundary endpoints needing [`SCOPE`].
pub fn enforcer(jwt: JwtVerifier) -> Enforcer {
    let topology = Topology::builder()
        .domain(Domain::builder("outer").access("jwt"))
        .endpoint(
            Endpoint::boundary("outer", ROUTE)
                .methods(["GET"])
                .scopes([SCOPE]),
        )
        .endpoint(
            Endpoint::boundary("outer", GRPC_PATH)
                .methods(["POST"])
                .scopes([SCOPE]),
        )
        .build()
        .unwrap_or_else(|e| panic!("bench topology: {e}"));
    Enforcer::builder(topology)
        .mechanism("jwt", Arc::new(jwt))
        .build()
        .unwrap_or_else(|e| panic!("bench enforcer: {e}"))
}

/// A valid access token for the bench service (`typ: at+jwt`, `sub`, `client_id`, `jti`,
/// `scope`, ten minutes to live). Every call makes a different token.
pub fn token(key: &TestKey) -> String {
    key.sign(&claims(ISSUER, AUDIENCE, SCOPE))
}

/// `n` different valid tokens.
pub fn tokens(key: &TestKey, n: usize) -> Vec<String> {
    (0..n).map(|_| token(key)).collect()
}

/// `n` header maps, each with a different valid token as `Authorization: Bearer`.
pub fn bearer_headers(key: &TestKey, n: usize) -> Vec<http::HeaderMap> {
    tokens(key, n)
        .iter()
        .map(|t| {
            let mut h = http::HeaderMap::new();
            let value = http::HeaderValue::from_str(&format!("Bearer {t}"))
                .unwrap_or_else(|e| panic!("bench token: {e}"));
            h.insert(http::header::AUTHORIZATION, value);
            h
        })
        .collect()
}

/// Runs a future that never waits (every key is local), without a runtime: the benches
/// then time dharma, not a scheduler. Spins politely if the future does wait.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

/// Times `iters` uses of never-seen tokens for criterion's `iter_custom`: the pool is
/// walked in passes, each on fresh state from `fresh` (built untimed), so no token is
/// seen twice by the same state; `each` is what is timed per token.
pub fn fresh_passes<S>(
    iters: u64,
    pool: &[String],
    mut fresh: impl FnMut() -> S,
    mut each: impl FnMut(&S, &str),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = usize::try_from(iters).unwrap_or(usize::MAX);
    while left > 0 && !pool.is_empty() {
        let state = fresh();
        let pass = pool.get(..left.min(pool.len())).unwrap_or(pool);
        let start = Instant::now();
        for token in pass {
            each(&state, std::hint::black_box(token));
        }
        total += start.elapsed();
        left -= pass.len();
    }
    total
}
