//! Token verification against its floor, in one run: the raw ring signature check of the
//! exact signing input (floor), dharma on a token it has not seen (cold: base64, JSON,
//! key lookup, signature, claims), and on a token it has verified before (warm).
//!
//! `cargo bench -p dharma-benches --bench verify`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benches"
)]
#![allow(missing_docs, reason = "criterion generates the entry point")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dharma_core::jwt::{IssuerSpec, JwtVerifier, VerifyingKey};
use dharma_test_support::{TestKey, b64_decode, keys::claims};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

const ISS: &str = "https://idp.example";

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
    fn new(alg: &str, jwk: &serde_json::Value) -> Self {
        let field = |name: &str| b64_decode(jwk[name].as_str().unwrap());
        let point = || [vec![4u8], field("x"), field("y")].concat();
        match alg {
            "RS256" => Self::Rsa(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                RsaPublicKeyComponents {
                    n: field("n"),
                    e: field("e"),
                },
            ),
            "PS256" => Self::Rsa(
                &signature::RSA_PSS_2048_8192_SHA256,
                RsaPublicKeyComponents {
                    n: field("n"),
                    e: field("e"),
                },
            ),
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

fn verifier(key: &TestKey, cache: u64) -> JwtVerifier {
    JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(ISS)
                .keys([VerifyingKey::from_jwk(&key.jwk()).unwrap()])
                .audience("api"),
        )
        .token_cache_capacity(cache)
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let key = TestKey::generate(alg, "k");
        let token = key.sign(&claims(ISS, "api", "read"));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64_decode(sig);
        let floor = Floor::new(alg, &key.jwk());
        let mut group = c.benchmark_group(alg);
        group.bench_function("floor (ring)", |b| {
            b.iter(|| floor.verify(black_box(input.as_bytes()), &sig))
        });
        let cold = verifier(&key, 0);
        group.bench_function("dharma cold", |b| {
            b.iter(|| rt.block_on(cold.verify_token(black_box(&token))).unwrap())
        });
        let warm = verifier(&key, 1000);
        rt.block_on(warm.verify_token(&token)).unwrap();
        group.bench_function("dharma warm", |b| {
            b.iter(|| rt.block_on(warm.verify_token(black_box(&token))).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
