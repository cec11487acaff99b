//! The harnesses behind the fuzz targets: each takes the fuzzer's bytes to one parser of
//! untrusted input in dharma-core, through the public API a request or a configuration
//! file reaches, and panics only when dharma does (or when an invariant breaks).

mod strict;

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, UNIX_EPOCH},
};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use dharma_core::{
    BoxFuture, RequestView, Verifier,
    clock::ManualClock,
    config::Config,
    mechanism::introspection::{ClientAuth, IntrospectionVerifier},
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    mechanism::mtls::MtlsVerifier,
    mechanism::network::{ForwardedHeader, NetworkVerifier},
    mechanism::x5c::X5cJwtVerifier,
    model::{Domain, Endpoint, Topology, check_request_path},
    pki::OrgCa,
    transport::{HttpClient, HttpError, HttpResponse},
};
use dharma_sts::{
    Grant, JWT_TYPE, RevocationRequest, TOKEN_EXCHANGE, TokenRequest, propagate::TokenResponse,
};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rustls_pki_types::CertificateDer;

/// The seeds' "now" (2033): their tokens are valid then.
const NOW: u64 = 2_000_000_000;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(UNIX_EPOCH + Duration::from_secs(NOW)))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| unreachable!("a runtime: {e}"))
    })
}

fn issuer_key() -> VerifyingKey {
    let jwk: serde_json::Value = serde_json::from_str(include_str!("../data/issuer.jwk.json"))
        .unwrap_or_else(|e| unreachable!("the committed key: {e}"));
    VerifyingKey::from_jwk(&jwk).unwrap_or_else(|e| unreachable!("the committed key: {e}"))
}

/// Compact JWS parsing, and full verification by a verifier with a static key, with one
/// exact issuer and one multi-tenant issuer template (its `iss` matching reads the
/// token's claim).
pub fn jws(data: &[u8]) {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let verifier = VERIFIER.get_or_init(|| {
        JwtVerifier::builder()
            .issuer(
                IssuerSpec::new("https://issuer.example")
                    .keys([issuer_key()])
                    .audience("api"),
            )
            .issuer(
                IssuerSpec::template("https://login.example/{tenant}/v2.0")
                    .keys([issuer_key()])
                    .audience("api"),
            )
            .require_type("at+jwt")
            .clock(clock())
            .build()
            .unwrap_or_else(|e| unreachable!("the verifier: {e}"))
    });
    // Static keys: nothing to wait for.
    let _ = verifier.verify_token(token).now_or_never();
    // The vectorized segment decoder against the reference one, on every segment.
    for segment in token.split('.') {
        let reference = base64::Engine::decode(&URL_SAFE_NO_PAD, segment).ok();
        let (decoded, into) = dharma_core::fuzzing::base64url(segment, segment.len());
        assert_eq!(decoded, reference, "{segment:?}");
        assert_eq!(into, reference, "{segment:?}");
        // One byte short of the decoded length is refused, not cut.
        if let Some(short) = reference.as_ref().and_then(|r| r.len().checked_sub(1)) {
            assert_eq!(dharma_core::fuzzing::base64url(segment, short).1, None);
        }
    }
}

/// dharma's strict JSON reader (token headers and payloads, key sets, introspection
/// answers) against serde_json made strict: they accept the same documents (dharma refuses
/// nesting deeper than 64, serde_json than 127), and for an object dharma hands out each
/// member's name and text as serde_json reads them. A number member is also read as a
/// NumericDate, fast path and all, against the plain reading.
pub fn json(data: &[u8]) {
    let oracle = strict::value(data);
    let ours = std::str::from_utf8(data)
        .ok()
        .and_then(dharma_core::fuzzing::json);
    match (ours, oracle) {
        (None, None) => {}
        (None, Some(value)) => assert!(
            strict::depth(&value) > 64,
            "refused JSON that strict serde_json accepts"
        ),
        (Some(_), None) => unreachable!("accepted JSON that strict serde_json refuses"),
        (Some(members), Some(value)) => {
            let expected = value.as_object().cloned().unwrap_or_default();
            assert_eq!(members.len(), expected.len(), "member count");
            for (name, text) in members {
                let read: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| unreachable!("a member's text is JSON: {e}"));
                assert_eq!(expected.get(&name), Some(&read), "member {name:?}");
                if read.is_number() {
                    assert_eq!(
                        dharma_core::fuzzing::numeric_date(&text),
                        numeric_date(&text),
                        "NumericDate {text:?}"
                    );
                }
            }
        }
    }
}

/// A NumericDate as the claim rules read it, written plainly: a non-negative integer that
/// fits 64 bits, or a number below 10^15 with its fraction dropped.
fn numeric_date(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().or_else(|| {
        let f = text.parse::<f64>().ok()?;
        (0.0..1.0e15).contains(&f).then_some(f as u64)
    })
}

/// One JWK, and a JWK Set document as the key-set cache fetches it.
pub fn jwk(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = VerifyingKey::from_jwk(&value);
    }
    fetch_keys(HeaderMap::new(), Bytes::copy_from_slice(data));
}

/// A key-set fetch answered `200` with these headers and body, as warming up does it.
fn fetch_keys(headers: HeaderMap, body: Bytes) {
    let client = canned(StatusCode::OK, headers, body);
    let Ok(verifier) = JwtVerifier::builder()
        .issuer(IssuerSpec::new("https://issuer.example").jwks_uri("https://issuer.example/jwks"))
        .audience("api")
        .http_client(client)
        .clock(clock())
        .build()
    else {
        return;
    };
    let _ = runtime().block_on(verifier.warm_up());
}

/// An HTTP client that answers every request with one canned response.
#[derive(Debug)]
struct Canned(HttpResponse);

impl HttpClient for Canned {
    fn send<'a>(
        &'a self,
        _: http::Request<Bytes>,
        _: usize,
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        let answer = self.0.clone();
        Box::pin(async move { Ok(answer) })
    }
}

/// A client answering every request with this status, headers and body.
fn canned(status: StatusCode, headers: HeaderMap, body: Bytes) -> Arc<Canned> {
    Arc::new(Canned(HttpResponse::new(status, headers, body)))
}

/// `Cache-Control` of a key-set response, as the JWKS cache reads it.
pub fn cache_control(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CACHE_CONTROL, value);
    let body = format!(
        r#"{{"keys":[{}]}}"#,
        include_str!("../data/issuer.jwk.json")
    );
    fetch_keys(headers, Bytes::from(body));
}

/// `X-Forwarded-For` and `Forwarded` from a trusted proxy: the bytes before the first
/// newline are the one, the rest the other.
pub fn forwarded(data: &[u8]) {
    static VERIFIERS: OnceLock<[NetworkVerifier; 2]> = OnceLock::new();
    let verifiers = VERIFIERS.get_or_init(|| {
        [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded].map(|header| {
            NetworkVerifier::builder()
                .allow("10.20.0.0/16")
                .and_then(|b| b.trusted_proxy("10.0.0.0/24"))
                .and_then(|b| b.trusted_proxy("::ffff:192.0.2.0/120"))
                .map(|b| b.forwarded_header(header).build())
                .unwrap_or_else(|e| unreachable!("the networks: {e}"))
        })
    });
    let (xff, fwd) = split(data);
    let mut headers = HeaderMap::new();
    for (name, value) in [("x-forwarded-for", xff), ("forwarded", fwd)] {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(name, v);
        }
    }
    for verifier in verifiers {
        for peer in ["10.0.0.5", "::ffff:192.0.2.7", "203.0.113.9"] {
            if let Ok(peer) = peer.parse() {
                let _ = verifier.client_address(peer, &headers);
            }
        }
    }
}

fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + 1..).unwrap_or_default(),
        ),
        None => (data, &[]),
    }
}

fn topology() -> &'static Topology {
    static TOPOLOGY: OnceLock<Topology> = OnceLock::new();
    TOPOLOGY.get_or_init(|| {
        let b = Topology::builder().domain(Domain::builder("d"));
        [
            ("/users/admin", Some("GET")),
            ("/users/{id}", Some("GET")),
            ("/users/{id}", Some("DELETE")),
            ("/docs/admin/{*rest}", Some("DELETE")),
            ("/docs/{*rest}", None),
            ("/{a}/x/{b}", None),
            ("/a;b/:c@d", None),
            ("/", None),
        ]
        .into_iter()
        .fold(b, |b, (path, method)| {
            let e = Endpoint::public("d", path);
            b.endpoint(match method {
                Some(m) => e.methods([m]),
                None => e,
            })
        })
        .build()
        .unwrap_or_else(|e| unreachable!("the topology: {e}"))
    })
}

/// Percent-decodes as actix-web does for routing (every escape but `/`, `%` and `+`),
/// or `None` when the result is not UTF-8.
fn decode_like_actix(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        if b == b'%'
            && let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
        {
            let d = u8::try_from(h * 16 + l).unwrap_or(0);
            if !matches!(d, b'/' | b'%' | b'+') {
                out.push(d);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Path normal form and classification, with the invariant the issue asks for: a path in
/// normal form leads to the same endpoint whether a router decodes it or not. Bytes after
/// a newline are a route a router chose.
pub fn path(data: &[u8]) {
    let (path, route) = split(data);
    let (Ok(path), Ok(route)) = (std::str::from_utf8(path), std::str::from_utf8(route)) else {
        return;
    };
    let t = topology();
    let _ = t.route_agrees(path, route);
    if check_request_path(path).is_err() {
        return;
    }
    for method in [Method::GET, Method::DELETE, Method::POST] {
        // Rules read path parameters, percent-decoded from the request path.
        if let Some(endpoint) = t.classify(&method, path).endpoint() {
            for name in ["id", "rest", "a", "b"] {
                if let Some(value) = endpoint.path().param(path, name) {
                    assert!(
                        !value.is_empty() || name == "rest",
                        "{path:?}: empty {name}"
                    );
                }
            }
        }
        let raw = t.classify(&method, path).endpoint().map(|e| e.name());
        if let Some(decoded) = decode_like_actix(path) {
            let by_decoded = t.classify(&method, &decoded).endpoint().map(|e| e.name());
            assert_eq!(
                raw, by_decoded,
                "{path:?} and its decoded form {decoded:?} reach different endpoints"
            );
        }
    }
}

/// A configuration file, parsed and loaded.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    // Outside any runtime, as a service may load its file before starting one; with an
    // HTTP client, so that remote mechanisms are built too (nothing is fetched on load).
    let client = canned(StatusCode::NOT_FOUND, HeaderMap::new(), Bytes::new());
    let valid = config.validate().is_ok();
    // Written back, the policy reads the same.
    match Config::from_toml(&config.to_toml()) {
        Ok(again) => assert_eq!(
            again.validate().is_ok(),
            valid,
            "round trip changed validity"
        ),
        Err(e) => unreachable!("a written configuration does not parse: {e}"),
    }
    let loaded = config.loader().clock(clock()).http_client(client).load();
    // What loads, validates: the offline checks are never stricter than loading.
    assert!(loaded.is_err() || valid, "loads but does not validate");
}

fn org_ca() -> &'static OrgCa {
    static CA: OnceLock<OrgCa> = OnceLock::new();
    CA.get_or_init(|| {
        OrgCa::from_pem(include_str!("../data/root.pem"))
            .unwrap_or_else(|e| unreachable!("the committed root: {e}"))
    })
}

/// A certificate chain as a client presents it: a count byte, then each certificate as a
/// big-endian 16-bit length and its DER.
pub fn certs(data: &[u8]) {
    let Some((&count, mut rest)) = data.split_first() else {
        return;
    };
    let mut chain = Vec::new();
    for _ in 0..count.min(10) {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (der, tail) = tail.split_at(len);
        chain.push(CertificateDer::from(der.to_vec()));
        rest = tail;
    }
    // Through the mTLS mechanism, as a client's handshake reaches it.
    static VERIFIER: OnceLock<MtlsVerifier> = OnceLock::new();
    let verifier = VERIFIER.get_or_init(|| {
        MtlsVerifier::builder()
            .org_ca(org_ca().clone())
            .clock(clock())
            .build()
            .unwrap_or_else(|e| unreachable!("the verifier: {e}"))
    });
    let headers = HeaderMap::new();
    let view = RequestView::new(&Method::GET, "/", &headers).with_peer_certificates(&chain);
    // Chains are validated without I/O: nothing to wait for.
    let _ = verifier.verify(&view).now_or_never();
}

/// A JWT whose `x5c` header carries its chain.
pub fn x5c(data: &[u8]) {
    static VERIFIER: OnceLock<X5cJwtVerifier> = OnceLock::new();
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let verifier = VERIFIER.get_or_init(|| {
        X5cJwtVerifier::builder(org_ca().clone())
            .audience("inner")
            .token_service("spiffe://example.org/ns/outer/sa/sts")
            .clock(clock())
            .build()
            .unwrap_or_else(|e| unreachable!("the verifier: {e}"))
    });
    let _ = verifier.verify_token(token);
}

/// An introspection answer: the first byte picks the status (200, 400, other), the rest
/// is the body.
pub fn introspection(data: &[u8]) {
    let Some((&status, body)) = data.split_first() else {
        return;
    };
    let status = match status % 3 {
        0 => StatusCode::OK,
        1 => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let client = canned(status, HeaderMap::new(), Bytes::copy_from_slice(body));
    let Ok(verifier) = IntrospectionVerifier::builder("https://as.example/introspect")
        .client("rs", "secret", ClientAuth::Basic)
        .audience("api")
        .http_client(client)
        .clock(clock())
        .build()
    else {
        return;
    };
    let _ = runtime().block_on(verifier.verify_token("opaque-token"));
}

/// A token request (`application/x-www-form-urlencoded`, RFC 6749 and RFC 8693) and a
/// revocation request (RFC 7009) read from the same input: the first byte picks the
/// `Content-Type`, the rest is the body. A request that parses must read back the same
/// from the form it would be written as.
pub fn token_request(data: &[u8]) {
    let (selector, body) = data.split_first().unwrap_or((&0, &[]));
    let content_type = match selector % 4 {
        0 => "application/x-www-form-urlencoded",
        1 => "application/x-www-form-urlencoded; charset=UTF-8",
        2 => " Application/X-WWW-Form-Urlencoded ;q",
        _ => "text/plain",
    };
    if let Ok(request) = RevocationRequest::parse(Some(content_type), body) {
        let mut pairs = vec![("token", request.token.secret())];
        pairs.extend(
            request
                .token_type_hint
                .as_deref()
                .map(|h| ("token_type_hint", h)),
        );
        pairs.extend(request.client_id.as_deref().map(|c| ("client_id", c)));
        let form = encode_form(&pairs);
        assert_eq!(
            RevocationRequest::parse(Some("application/x-www-form-urlencoded"), form.as_bytes()),
            Ok(request),
            "{form}"
        );
    }
    let Ok(request) = TokenRequest::parse(Some(content_type), body) else {
        return;
    };
    let form = form_of(&request);
    assert_eq!(
        TokenRequest::parse(Some("application/x-www-form-urlencoded"), form.as_bytes()),
        Ok(request),
        "{form}"
    );
}

/// Writes a request as a form, every byte but letters and digits escaped.
fn form_of(request: &TokenRequest) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    match &request.grant {
        Grant::ClientCredentials => pairs.push(("grant_type", "client_credentials")),
        Grant::Exchange {
            subject_token,
            subject_token_type,
            actor_token,
            requested_token_type,
        } => {
            pairs.push(("grant_type", TOKEN_EXCHANGE));
            pairs.push(("subject_token", subject_token.secret()));
            pairs.push(("subject_token_type", subject_token_type.uri()));
            if let Some(actor) = actor_token {
                pairs.push(("actor_token", actor.secret()));
                pairs.push(("actor_token_type", JWT_TYPE));
            }
            if let Some(kind) = requested_token_type {
                pairs.push(("requested_token_type", kind.uri()));
            }
        }
        _ => {}
    }
    for target in &request.targets {
        pairs.push(("audience", target));
    }
    let scope = request.scope.as_ref().map(|s| s.join(" "));
    if let Some(scope) = &scope {
        pairs.push(("scope", scope));
    }
    if let Some(id) = &request.client_id {
        pairs.push(("client_id", id));
    }
    encode_form(&pairs)
}

/// Writes pairs as a form, every byte but letters and digits escaped.
fn encode_form(pairs: &[(&str, &str)]) -> String {
    let escape = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A token presented for revocation, read by the signer that recognises its own tokens:
/// a string it did not sign is never taken for one, and what it signed reads back as the
/// claims it signed (the input's first half signed, the whole tried as a token).
pub fn own_token(data: &[u8]) {
    use std::sync::OnceLock;
    static SIGNER: OnceLock<Option<dharma_sts::Signer>> = OnceLock::new();
    let signer = SIGNER.get_or_init(|| {
        dharma_sts::SigningKey::generate(dharma_core::jose::Algorithm::Es256)
            .ok()
            .map(dharma_sts::Signer::key_set)
    });
    let Some(signer) = signer else { return };
    let text = String::from_utf8_lossy(data);
    assert_eq!(signer.verify(&text), None, "a string it never signed");
    let claims = text.get(..text.len() / 2).unwrap_or_default();
    if let Ok(token) = signer.sign(claims) {
        assert_eq!(signer.verify(&token).as_deref(), Some(claims.as_bytes()));
        let mut other = token.clone();
        other.push_str(&text);
        if !text.is_empty() {
            assert_eq!(
                signer.verify(&other),
                None,
                "a signed token with bytes appended"
            );
        }
    }
}

/// A token endpoint's answer to an exchange or client-credentials request: the first byte
/// picks the status (200, 400, 401 or another), the rest is the body. A token read from it
/// must be one that can go in an `Authorization` header as it is.
pub fn token_response(data: &[u8]) {
    let (selector, body) = data.split_first().unwrap_or((&0, &[]));
    let status = [200, 400, 401, 503]
        .get(usize::from(*selector % 4))
        .copied()
        .unwrap_or(200);
    if let Ok(answer) = TokenResponse::parse(status, body) {
        assert_eq!(status, 200);
        let header = format!("Bearer {}", answer.token.secret());
        assert!(HeaderValue::from_str(&header).is_ok(), "{header:?}");
        assert!(!answer.token.secret().contains(' '));
    }
}
