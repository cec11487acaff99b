//! The token service and outbound propagation, in process:
//!
//! - `sts/sign_floor_es256`: the raw ring ES256 signature of a minted token's signing
//!   input, key parsed once: the floor of minting;
//! - `sts/mint_es256`: a client-credentials grant (policy, scope, claims, `jti`, JSON,
//!   base64, signature, audit event);
//! - `sts/exchange_es256`: an RFC 8693 exchange of a subject JWT the verifier has seen
//!   (its check is a cache hit), then the same minting;
//! - `propagate/cache_hit`: an exchanged token answered from the propagation cache
//!   (a digest of audience, scope and the subject token's digest, then a lookup), for a
//!   call in a request that made one before; `cache_hit_first_call` adds the subject
//!   token's own digest, computed once per inbound token.
//!
//! `cargo bench -p dharma-benches --bench sts`
#![expect(clippy::unwrap_used, clippy::panic, reason = "benches")]

use std::{hint::black_box, sync::Arc};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use dharma_benches::block_on;
use dharma_core::{
    Authenticated, BoxFuture, Decision, Enforcer, Identity, IdentityKind, InboundToken, Rejection,
    RequestView, SecurityContext, Verifier,
    jose::{Algorithm, VerifyingKey},
    mechanism::jwt::{IssuerSpec, JwtVerifier},
    model::{Domain, Endpoint, Topology},
    transport::{HttpClient, HttpError, HttpResponse},
};
use dharma_sts::{
    ClientPolicy, Signer, SigningKey, TokenRequest, TokenService,
    propagate::{Exchange, Outbound, TokenEndpoint, TokenSource},
};
use dharma_test_support::{TestKey, keys::claims};
use http::{HeaderMap, Method, StatusCode};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};

const CLIENT: &str = "spiffe://example.org/ns/outer/sa/gateway";
const IDP: &str = "https://idp.example";

/// Admits every request as the gateway workload: the bench needs a caller, not a check.
#[derive(Debug)]
struct Gateway;

impl Verifier for Gateway {
    fn verify<'a>(
        &'a self,
        _: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(async {
            Ok(Authenticated::new(vec![Identity::new(
                IdentityKind::Workload,
                CLIENT,
            )]))
        })
    }
}

fn caller() -> SecurityContext {
    let topology = Topology::builder()
        .domain(Domain::builder("outer").trust("gateway"))
        .endpoint(Endpoint::interior("outer", "/sts/token").methods(["POST"]))
        .build()
        .unwrap();
    let enforcer = Enforcer::builder(topology)
        .mechanism("gateway", Arc::new(Gateway))
        .build()
        .unwrap();
    let headers = HeaderMap::new();
    match block_on(enforcer.decide(&RequestView::new(&Method::POST, "/sts/token", &headers))) {
        Decision::Allow(permit) => permit.into_context(),
        Decision::Deny(denial) => panic!("{denial:?}"),
    }
}

/// Answers every token request with one canned token (the cache is what is measured).
#[derive(Debug)]
struct Canned;

impl HttpClient for Canned {
    fn send<'a>(
        &'a self,
        _: http::Request<Bytes>,
        _: usize,
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        let body = Bytes::from_static(
            br#"{"access_token":"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln","token_type":"Bearer","expires_in":300}"#,
        );
        Box::pin(async move { Ok(HttpResponse::new(StatusCode::OK, HeaderMap::new(), body)) })
    }
}

type Setup = (
    TokenService,
    SecurityContext,
    TokenRequest,
    TokenRequest,
    String,
    EcdsaKeyPair,
    SystemRandom,
);

/// The service, its caller, a client-credentials and an exchange request, and the
/// floor's signing input and key.
fn setup() -> Setup {
    let idp = TestKey::generate("ES256", "idp");
    let subject = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(IDP)
                .keys([VerifyingKey::from_jwk(&idp.jwk()).unwrap()])
                .audience("outer"),
        )
        .build()
        .unwrap();
    let signer = Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap());
    let service = TokenService::builder("https://sts.outer.example", Arc::new(signer))
        .client(
            ClientPolicy::new(CLIENT)
                .exchange()
                .client_credentials()
                .audience("orders")
                .scope("orders:read"),
        )
        .subject_tokens(Arc::new(subject))
        .build()
        .unwrap();
    let caller = caller();
    let form = |body: String| {
        TokenRequest::parse(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap()
    };
    let mint = form("grant_type=client_credentials&audience=orders".into());
    let token = idp.sign(&claims(IDP, "outer", "orders:read"));
    let exchange = form(format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={token}\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=orders"
    ));

    // The floor: one ES256 signature over a signing input of the minted token's size.
    let issued = block_on(service.grant(&caller, &mint)).unwrap();
    let (input, _) = issued.secret().rsplit_once('.').unwrap();
    let rng = SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng).unwrap();

    (service, caller, mint, exchange, input.to_owned(), key, rng)
}

fn sts(c: &mut Criterion) {
    let (service, caller, mint, exchange, input, key, rng) = setup();
    let token = match &exchange.grant {
        dharma_sts::Grant::Exchange { subject_token, .. } => subject_token.secret().to_owned(),
        _ => unreachable!("an exchange request"),
    };
    let mut group = c.benchmark_group("sts");
    group.bench_function("sign_floor_es256", |b| {
        b.iter(|| key.sign(&rng, black_box(input.as_bytes())).unwrap())
    });
    group.bench_function("mint_es256", |b| {
        b.iter(|| block_on(service.grant(&caller, black_box(&mint))).unwrap())
    });
    group.bench_function("exchange_es256", |b| {
        b.iter(|| block_on(service.grant(&caller, black_box(&exchange))).unwrap())
    });
    group.finish();

    let endpoint = TokenEndpoint::builder("https://sts.outer.example/sts/token")
        .http_client(Arc::new(Canned))
        .build()
        .unwrap();
    let source = Exchange::new(endpoint);
    let inbound = InboundToken::new(&token);
    let call = Outbound::new("orders")
        .scope("orders:read")
        .inbound(&inbound);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(source.token(call)).unwrap();
    let mut group = c.benchmark_group("propagate");
    // Within a request (the subject token's digest is computed once per inbound token).
    group.bench_function("cache_hit", |b| {
        b.iter(|| block_on(source.token(black_box(call))).unwrap())
    });
    // The first call of a request: the subject token's digest, then the same.
    group.bench_function("cache_hit_first_call", |b| {
        b.iter(|| {
            let inbound = InboundToken::new(black_box(&token));
            let call = Outbound::new("orders")
                .scope("orders:read")
                .inbound(&inbound);
            block_on(source.token(call)).unwrap()
        })
    });
    group.finish();
}

/// Minting and exchange against the signing floor in alternating blocks (the machines
/// are shared: a change of speed during the run moves all three alike). Writes
/// `mint <median> <q1> <q3>` and `exchange ...` to `$CARGO_TARGET_DIR/criterion/sts_paired.txt`.
fn paired(quick: bool) -> std::io::Result<()> {
    let (service, caller, mint, exchange, input, key, rng) = setup();
    let rounds = if quick { 20 } else { 200 };
    let per_block = 20;
    let time = |f: &dyn Fn()| {
        let start = std::time::Instant::now();
        for _ in 0..per_block {
            f();
        }
        start.elapsed().as_secs_f64()
    };
    let floor = || {
        key.sign(&rng, black_box(input.as_bytes())).unwrap();
    };
    let minting = || {
        block_on(service.grant(&caller, black_box(&mint))).unwrap();
    };
    let exchanging = || {
        block_on(service.grant(&caller, black_box(&exchange))).unwrap();
    };
    let mut ratios = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let (f, m, x) = if round % 2 == 0 {
            (time(&floor), time(&minting), time(&exchanging))
        } else {
            let x = time(&exchanging);
            let m = time(&minting);
            (time(&floor), m, x)
        };
        ratios[0].push(m / f);
        ratios[1].push(x / f);
    }
    let mut lines = String::new();
    for (name, mut r) in ["mint", "exchange"].into_iter().zip(ratios) {
        r.sort_by(f64::total_cmp);
        let q = |p: f64| {
            r.get(((r.len() - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let line = format!("{name} {:.4} {:.4} {:.4}\n", q(0.5), q(0.25), q(0.75));
        print!("paired /sign floor: {line}");
        lines.push_str(&line);
    }
    let dir = std::path::Path::new(
        &std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
    )
    .join("criterion");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("sts_paired.txt"), lines)
}

criterion_group!(benches, sts);

fn main() {
    benches();
    let quick = std::env::args().any(|a| a == "--quick");
    if !std::env::args().any(|a| a == "--list") {
        paired(quick).unwrap();
    }
    Criterion::default().configure_from_args().final_summary();
}
