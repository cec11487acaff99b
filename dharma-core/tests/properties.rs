//! Properties over generated inputs: network containment against a reference, one
//! classification whether a router decodes the path or not, and a differential test
//! against jsonwebtoken.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::OnceLock,
};

use dharma_core::{
    RequestView, Verifier,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    mechanism::network::NetworkVerifier,
    model::{Domain, Endpoint, Topology, check_request_path},
};
use dharma_test_support::TestKey;
use futures_util::FutureExt;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Whether a network verifier allowing `net` admits a peer at `ip`.
fn admits(net: &str, ip: IpAddr) -> bool {
    let v = NetworkVerifier::builder().allow(net).unwrap().build();
    let headers = http::HeaderMap::new();
    let view = RequestView::new(&http::Method::GET, "/", &headers)
        .with_peer(std::net::SocketAddr::new(ip, 1));
    v.verify(&view).now_or_never().unwrap().is_ok()
}

proptest! {
    /// IPv4 networks, written plainly or IPv4-mapped, contain exactly the addresses the
    /// prefix arithmetic says, for peers written either way.
    #[test]
    fn ipv4_containment(net in any::<u32>(), prefix in 0u8..=32, ip in any::<u32>()) {
        let expected = prefix == 0 || (net ^ ip) >> (32 - u32::from(prefix)) == 0;
        let v4 = Ipv4Addr::from(net);
        let plain = format!("{v4}/{prefix}");
        let mapped = format!("::ffff:{v4}/{}", 96 + u32::from(prefix));
        let ip4 = IpAddr::V4(Ipv4Addr::from(ip));
        let ip6 = IpAddr::V6(Ipv4Addr::from(ip).to_ipv6_mapped());
        for (n, i) in [(&plain, ip4), (&plain, ip6), (&mapped, ip4), (&mapped, ip6)] {
            prop_assert_eq!(admits(n, i), expected, "{} contains {}", n, i);
        }
    }

    /// IPv6 networks against the same arithmetic on 128 bits; an IPv4 peer is never in an
    /// IPv6 network that is not IPv4-mapped.
    #[test]
    fn ipv6_containment(net in any::<u128>(), prefix in 0u8..=128, ip in any::<u128>(), v4 in any::<u32>()) {
        let net6 = Ipv6Addr::from(net);
        prop_assume!(net6.to_ipv4_mapped().is_none() || prefix < 96);
        let text = format!("{net6}/{prefix}");
        let ip6 = Ipv6Addr::from(ip);
        prop_assume!(ip6.to_ipv4_mapped().is_none());
        let expected = prefix == 0 || (net ^ ip) >> (128 - u32::from(prefix)) == 0;
        if net6.to_ipv4_mapped().is_none() {
            prop_assert_eq!(admits(&text, IpAddr::V6(ip6)), expected);
            prop_assert!(!admits(&text, IpAddr::V4(Ipv4Addr::from(v4))));
        }
    }
}

fn topology() -> &'static Topology {
    static T: OnceLock<Topology> = OnceLock::new();
    T.get_or_init(|| {
        [
            "/users/admin",
            "/users/{id}",
            "/users/{id}/keys",
            "/docs/{*rest}",
            "/{a}/x/{b}",
        ]
        .into_iter()
        .fold(Topology::builder().domain(Domain::builder("d")), |b, p| {
            b.endpoint(Endpoint::public("d", p).name(p))
        })
        .build()
        .unwrap()
    })
}

/// Percent-decodes as actix-web does for routing (every escape but `/`, `%` and `+`).
fn decode_like_actix(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(d) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
                && !matches!(d, b'/' | b'%' | b'+')
            {
                out.push(d);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["users", "admin", "docs", "x", "keys", "7", "."])
            .prop_map(str::to_owned),
        // Escapes of characters that need no encoding, of separators, of others.
        prop::sample::select(vec![
            "%61dmin", "%2e", "%2F", "%5C", "%20", "%C3%A9", "%25", "%2B", "%zz", "%"
        ])
        .prop_map(str::to_owned),
        "[a-z;:@=+~!$&'()*,-]{0,4}",
    ]
}

proptest! {
    /// A path in normal form reaches the same endpoint whether the router decodes it
    /// (actix-web) or not (axum, tonic): the `%61dmin` class of bypass cannot exist.
    #[test]
    fn one_spelling_per_path(segments in prop::collection::vec(path_segment(), 0..5)) {
        let path: String = if segments.is_empty() { "/".into() } else {
            segments.iter().map(|s| format!("/{s}")).collect()
        };
        if check_request_path(&path).is_ok() {
            let t = topology();
            let raw = t.classify(&http::Method::GET, &path).endpoint().map(|e| e.name().to_owned());
            if let Some(decoded) = decode_like_actix(&path) {
                let by_decoded = t.classify(&http::Method::GET, &decoded).endpoint().map(|e| e.name().to_owned());
                prop_assert_eq!(raw, by_decoded, "{} / {}", path, decoded);
            }
        } else {
            // Refused paths are exactly those with a second spelling, a separator trick
            // or bytes outside RFC 3986 (checked here for the ones generated).
            prop_assert!(
                path.contains('%') || path.contains("//") || path.split('/').any(|s| s == "." || s == "..")
                    || path.bytes().any(|b| !b.is_ascii_graphic()),
                "{} refused", path
            );
        }
    }
}

const ISS: &str = "https://issuer.example";

struct Pair {
    key: TestKey,
    dharma: JwtVerifier,
    decoding: jsonwebtoken::DecodingKey,
    alg: jsonwebtoken::Algorithm,
}

fn pairs() -> &'static [Pair] {
    static P: OnceLock<Vec<Pair>> = OnceLock::new();
    P.get_or_init(|| {
        [
            ("ES256", jsonwebtoken::Algorithm::ES256),
            ("RS256", jsonwebtoken::Algorithm::RS256),
            ("EdDSA", jsonwebtoken::Algorithm::EdDSA),
        ]
        .into_iter()
        .map(|(name, alg)| {
            let key = TestKey::generate(name, "k");
            let dharma = JwtVerifier::builder()
                .issuer(
                    IssuerSpec::new(ISS)
                        .keys([VerifyingKey::from_jwk(&key.jwk()).unwrap()])
                        .audience("api"),
                )
                .token_cache_capacity(0)
                .build()
                .unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            Pair {
                key,
                dharma,
                decoding,
                alg,
            }
        })
        .collect()
    })
}

fn claim_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("alice")),
        Just(json!(7)),
        Just(json!(null)),
        Just(json!(["api", "x"])),
        Just(json!({"nested": true})),
    ]
}

/// Claims around a valid set: times shifted away from the leeway's edges, audiences and
/// issuers right or wrong, odd types, extra members.
fn claims() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![-7200i64, -600, 600, 7200]),
        prop::option::of(prop::sample::select(vec![-600i64, 600])),
        prop::sample::select(vec![
            json!("api"),
            json!(["x", "api"]),
            json!("other"),
            json!(7),
            json!([]),
        ]),
        prop::sample::select(vec![json!(ISS), json!("https://evil.example"), json!(null)]),
        prop::collection::btree_map("[a-z]{1,3}", claim_value(), 0..3),
    )
        .prop_map(|(exp, nbf, aud, iss, extra)| {
            let now = i64::try_from(dharma_test_support::now()).unwrap();
            let mut c = json!({"sub": "alice", "exp": now + exp, "iat": now - 5, "aud": aud});
            if !iss.is_null() {
                c["iss"] = iss;
            }
            if let Some(nbf) = nbf {
                c["nbf"] = json!(now + nbf);
            }
            for (k, v) in extra {
                c.as_object_mut().unwrap().entry(k).or_insert(v);
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// With the same key, a token dharma accepts is one jsonwebtoken accepts, with the
    /// same claims (dharma may refuse more: it is the stricter of the two).
    #[test]
    fn dharma_accepts_only_what_jsonwebtoken_accepts(
        which in 0usize..3,
        claims in claims(),
        header_extra in prop::collection::btree_map("[a-z]{1,3}", claim_value(), 0..2),
        duplicate_sub in any::<bool>(),
    ) {
        let pair = &pairs()[which];
        let mut header = json!({"alg": pair.key.alg, "kid": "k"});
        for (k, v) in header_extra {
            header.as_object_mut().unwrap().entry(k).or_insert(v);
        }
        let mut payload = claims.to_string();
        if duplicate_sub {
            payload.pop();
            payload.push_str(r#","sub":"admin"}"#);
        }
        let token = pair.key.sign_raw(&header.to_string(), &payload);
        let ours = pair.dharma.verify_token(&token).now_or_never().unwrap();
        let mut validation = jsonwebtoken::Validation::new(pair.alg);
        validation.set_audience(&["api"]);
        validation.set_issuer(&[ISS]);
        validation.leeway = 30;
        validation.validate_nbf = true;
        let theirs = jsonwebtoken::decode::<Value>(&token, &pair.decoding, &validation);
        if let Ok(authenticated) = ours {
            let theirs = theirs.map_err(|e| format!("{e:?}"));
            prop_assert!(theirs.is_ok(), "dharma accepted what jsonwebtoken refuses: {:?} ({})", theirs, payload);
            let ours_claims = authenticated.identities()[0].claims().as_map().clone();
            prop_assert_eq!(Value::Object(ours_claims), theirs.unwrap().claims);
        }
    }
}
