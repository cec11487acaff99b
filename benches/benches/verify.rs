//! Token verification against its floor and its peers, in one run, per algorithm:
//!
//! - `floor`: the raw ring signature check of the token's signing input, key decoded once;
//! - `cold`: dharma on tokens it has never seen, default configuration (token cache on):
//!   base64, JSON, key lookup, signature, claims, identities, cache insert;
//! - `cold_nocache`: the same with the token cache off (nothing remembered);
//! - `warm`: a token dharma verified before (digest, cache hit, `exp` and key checks);
//! - `jsonwebtoken9`: `jsonwebtoken::decode` with a pre-parsed key (ring backend, the same
//!   crypto as dharma), audience and issuer checked, claims into a JSON map.
//!
//! and the other mechanisms' cache hits (`cache_hits` group) next to the JWT warm path.
//!
//! `cargo bench -p dharma-benches --bench verify`
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "benches")]

use std::{hint::black_box, time::Instant};

use criterion::{Criterion, criterion_group};
use dharma_benches::{AUDIENCE, ISSUER, block_on, fresh_passes, jwt_verifier, token, tokens};
use dharma_core::{
    mechanism::introspection::{ClientAuth, IntrospectionVerifier},
    mechanism::x5c::{X5cBinding, X5cJwtVerifier},
    pki::OrgCa,
};
use dharma_test_support::{
    TestKey, b64_decode,
    keys::claims,
    pki::{Ca, Leaf},
    server::{Reply, TestServer},
};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value, json};

const ALGORITHMS: [&str; 5] = ["RS256", "PS256", "ES256", "ES384", "EdDSA"];
/// Distinct tokens per algorithm for the cold path (a fresh verifier per pass).
const POOL: usize = 500;

/// The raw ring check of a signature with key material decoded once: the cost no
/// verifier can beat (ring's public API parses the key on each check, for us too).
enum Floor {
    Rsa(
        &'static signature::RsaParameters,
        RsaPublicKeyComponents<Vec<u8>>,
    ),
    Unparsed(&'static dyn signature::VerificationAlgorithm, Vec<u8>),
}

impl Floor {
    fn new(alg: &str, jwk: &Value) -> Self {
        let field = |name: &str| b64_decode(jwk[name].as_str().unwrap());
        let point = || [vec![4u8], field("x"), field("y")].concat();
        let rsa = |params| {
            let key = RsaPublicKeyComponents {
                n: field("n"),
                e: field("e"),
            };
            Self::Rsa(params, key)
        };
        match alg {
            "RS256" => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            "PS256" => rsa(&signature::RSA_PSS_2048_8192_SHA256),
            "ES256" => Self::Unparsed(&signature::ECDSA_P256_SHA256_FIXED, point()),
            "ES384" => Self::Unparsed(&signature::ECDSA_P384_SHA384_FIXED, point()),
            _ => Self::Unparsed(&signature::ED25519, field("x")),
        }
    }

    fn verify(&self, input: &[u8], sig: &[u8]) {
        match self {
            Self::Rsa(params, key) => key.verify(params, input, sig).unwrap(),
            Self::Unparsed(alg, key) => UnparsedPublicKey::new(*alg, key)
                .verify(input, sig)
                .unwrap(),
        }
    }
}

/// jsonwebtoken 9 with its key parsed once and the same checks dharma makes.
fn jsonwebtoken_peer(
    alg: &str,
    jwk: &Value,
) -> (jsonwebtoken::DecodingKey, jsonwebtoken::Validation) {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let field = |name: &str| jwk[name].as_str().unwrap();
    let (key, alg) = match alg {
        "RS256" | "PS256" => (
            DecodingKey::from_rsa_components(field("n"), field("e")).unwrap(),
            if alg == "RS256" {
                Algorithm::RS256
            } else {
                Algorithm::PS256
            },
        ),
        "ES256" | "ES384" => (
            DecodingKey::from_ec_components(field("x"), field("y")).unwrap(),
            if alg == "ES256" {
                Algorithm::ES256
            } else {
                Algorithm::ES384
            },
        ),
        _ => (
            DecodingKey::from_ed_components(field("x")).unwrap(),
            Algorithm::EdDSA,
        ),
    };
    let mut validation = Validation::new(alg);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    (key, validation)
}

fn signatures(c: &mut Criterion) {
    for alg in ALGORITHMS {
        let key = TestKey::generate(alg, "k");
        let token = token(&key);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64_decode(sig);
        let floor = Floor::new(alg, &key.jwk());
        let pool = tokens(&key, POOL);
        let mut group = c.benchmark_group(alg);

        group.bench_function("floor", |b| {
            b.iter(|| floor.verify(black_box(input.as_bytes()), &sig))
        });
        // Each pass of the pool runs on a verifier that has seen none of its tokens.
        group.bench_function("cold", |b| {
            b.iter_custom(|iters| {
                fresh_passes(
                    iters,
                    &pool,
                    || jwt_verifier(&key, 10_000),
                    |v, t| {
                        block_on(v.verify_token(t)).unwrap();
                    },
                )
            })
        });
        let uncached = jwt_verifier(&key, 0);
        group.bench_function("cold_nocache", |b| {
            b.iter(|| block_on(uncached.verify_token(black_box(&token))).unwrap())
        });
        let warm = jwt_verifier(&key, 10_000);
        block_on(warm.verify_token(&token)).unwrap();
        group.bench_function("warm", |b| {
            b.iter(|| block_on(warm.verify_token(black_box(&token))).unwrap())
        });
        let (peer_key, validation) = jsonwebtoken_peer(alg, &key.jwk());
        group.bench_function("jsonwebtoken9", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Map<String, Value>>(
                    black_box(&token),
                    &peer_key,
                    &validation,
                )
                .unwrap()
            })
        });
        group.finish();
    }
}

/// The caches of the other mechanisms, next to the JWT warm path, all through the same
/// runtime: an introspection answer remembered, and an x5c token whose certificate chain
/// was validated before (its signature is still checked: each x5c token is new).
fn cache_hits(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("cache_hits");

    let key = TestKey::generate("ES256", "k");
    let token = token(&key);
    let jwt = jwt_verifier(&key, 10_000);
    rt.block_on(jwt.verify_token(&token)).unwrap();
    group.bench_function("jwt_warm", |b| {
        b.iter(|| rt.block_on(jwt.verify_token(black_box(&token))).unwrap())
    });
    let pool = tokens(&key, POOL);
    group.bench_function("jwt_cold_es256", |b| {
        b.iter_custom(|iters| {
            fresh_passes(
                iters,
                &pool,
                || jwt_verifier(&key, 10_000),
                |v, t| {
                    rt.block_on(v.verify_token(t)).unwrap();
                },
            )
        })
    });

    let server = rt.block_on(TestServer::start());
    let exp = dharma_test_support::now() + 3600;
    server.set(
        "/introspect",
        Reply::json(&json!({"active": true, "sub": "alice", "client_id": "app",
            "scope": "orders:read", "aud": AUDIENCE, "exp": exp})),
    );
    let introspection = IntrospectionVerifier::builder(&server.url("/introspect"))
        .client("bench", "secret", ClientAuth::Basic)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let opaque = "an-opaque-access-token-of-forty-three-chars";
    rt.block_on(introspection.verify_token(opaque)).unwrap();
    group.bench_function("introspection_hit", |b| {
        b.iter(|| {
            rt.block_on(introspection.verify_token(black_box(opaque)))
                .unwrap()
        })
    });
    assert_eq!(
        introspection.calls(),
        1,
        "every call after the first is a hit"
    );

    let root = Ca::root("Org Root");
    let issuing = root.intermediate("Org Issuing", Some(0));
    let workload = "spiffe://example.org/ns/pay/sa/api";
    let leaf = issuing.issue(&Leaf::spiffe(workload));
    let signer = leaf.signer("x5c");
    let x5c = X5cJwtVerifier::builder(OrgCa::from_der(&[root.der()]).unwrap().max_intermediates(1))
        .audience(AUDIENCE)
        .trust_domain("example.org")
        .unwrap()
        .bind(X5cBinding::Issuer)
        .build()
        .unwrap();
    let x5c_tokens: Vec<String> = (0..POOL)
        .map(|_| {
            signer.sign_with_header(
                json!({"x5c": leaf.x5c(), "kid": null}),
                &claims(workload, AUDIENCE, "orders:read"),
            )
        })
        .collect();
    x5c.verify_token(&x5c_tokens[0]).unwrap();
    group.bench_function("x5c_known_chain_es256", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % x5c_tokens.len();
            x5c.verify_token(black_box(&x5c_tokens[i])).unwrap()
        })
    });
    group.finish();
}

/// Floor and cold measured in alternating blocks, so that a change of machine speed during
/// the run (these machines are shared) moves both: the median of the per-round ratios is
/// the figure the targets are judged on. Each round's cold block runs on a new verifier.
/// jsonwebtoken runs in the same rounds, right after them.
/// Writes `<alg> <median> <first quartile> <third quartile> <median cold/jsonwebtoken>` lines to
/// `$CARGO_TARGET_DIR/criterion/paired.txt`.
fn paired(quick: bool) -> std::io::Result<()> {
    let rounds = if quick { 25 } else { 300 };
    let mut lines = String::new();
    for alg in ALGORITHMS {
        let per_block = if alg == "ES384" { 4 } else { 40 };
        let key = TestKey::generate(alg, "k");
        let token = token(&key);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64_decode(sig);
        let floor = Floor::new(alg, &key.jwk());
        let pool = tokens(&key, per_block);
        let (peer_key, validation) = jsonwebtoken_peer(alg, &key.jwk());
        let mut ratios = Vec::with_capacity(rounds);
        let mut peer_ratios = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let verifier = jwt_verifier(&key, 10_000);
            let time_floor = || {
                let start = Instant::now();
                for _ in 0..per_block {
                    floor.verify(black_box(input.as_bytes()), &sig);
                }
                start.elapsed()
            };
            let time_cold = || {
                let start = Instant::now();
                for t in &pool {
                    block_on(verifier.verify_token(black_box(t))).unwrap();
                }
                start.elapsed()
            };
            let (f, c) = if round % 2 == 0 {
                let f = time_floor();
                (f, time_cold())
            } else {
                let c = time_cold();
                (time_floor(), c)
            };
            let start = Instant::now();
            for t in &pool {
                jsonwebtoken::decode::<Map<String, Value>>(black_box(t), &peer_key, &validation)
                    .unwrap();
            }
            let p = start.elapsed();
            ratios.push(c.as_secs_f64() / f.as_secs_f64());
            peer_ratios.push(c.as_secs_f64() / p.as_secs_f64());
        }
        peer_ratios.sort_by(f64::total_cmp);
        let peer = peer_ratios[peer_ratios.len() / 2];
        ratios.sort_by(f64::total_cmp);
        let q = |p: f64| ratios[((ratios.len() - 1) as f64 * p).round() as usize];
        let line = format!(
            "{alg} {:.4} {:.4} {:.4} {peer:.4}\n",
            q(0.5),
            q(0.25),
            q(0.75)
        );
        print!("paired cold/floor: {line}");
        lines.push_str(&line);
    }
    let dir = std::path::Path::new(
        &std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
    )
    .join("criterion");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("paired.txt"), lines)
}

criterion_group!(benches, signatures, cache_hits);

fn main() {
    benches();
    let quick = std::env::args().any(|a| a == "--quick");
    let listing = std::env::args().any(|a| a == "--list");
    if !listing {
        paired(quick).unwrap();
    }
    Criterion::default().configure_from_args().final_summary();
}
