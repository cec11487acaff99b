//! Configuration file tests: a good file means what the builder means, bad files name their key.

use std::sync::Arc;

use super::*;
use crate::{
    Verifier,
    mechanism::jwt::JwtVerifier,
    model::{ClaimRule, Domain, Endpoint, Exposure},
};

const GOOD: &str = r#"
    [enforcer]
    unmatched = "deny"
    realm = "shop"

    [mechanisms.org-jwt]
    kind = "jwt"
    audiences = ["platform"]
    leeway_seconds = 10
    require_type = ["at+jwt"]
    require_claims = ["jti"]
    max_token_bytes = 4096
    token_cache_capacity = 100

    [[mechanisms.org-jwt.issuers]]
    issuer = "https://idp.example"
    jwks_uri = "https://idp.example/jwks"
    algorithms = ["RS256", "ES256"]

    [mechanisms.org-jwt.jwks]
    min_refresh_interval_seconds = 5
    stale_if_error_seconds = 60
    fetch_timeout_ms = 1500

    [mechanisms.network]
    kind = "custom"

    [[domains]]
    name = "outer"
    relation = "coarse-grained platform services"
    trust = "org-jwt"
    access = "org-jwt"

    [[domains]]
    name = "inner"
    parent = "outer"
    trust = "network"
    access = "org-jwt"

    [[endpoints]]
    domain = "outer"
    path = "/health"
    exposure = "public"

    [[endpoints]]
    name = "read order"
    domain = "outer"
    path = "/orders/{id}"
    methods = ["GET"]
    exposure = "boundary"
    scopes = ["orders:read"]
    claims = { tenant = "acme", groups = { contains = "buyers" }, email = { present = true } }

    [[endpoints]]
    domain = "inner"
    path = "/payments"
    methods = ["POST"]
    exposure = "interior+boundary"
"#;

#[derive(Debug)]
struct Nobody;
impl Verifier for Nobody {
    fn verify<'a>(
        &'a self,
        _: &'a crate::RequestView<'a>,
    ) -> crate::util::BoxFuture<'a, Result<crate::Authenticated, crate::Rejection>> {
        Box::pin(async { Err(crate::Rejection::MissingCredentials) })
    }
}

fn load(text: &str) -> Result<Loaded, ConfigError> {
    Config::from_toml(text)?
        .loader()
        .mechanism("network", Arc::new(Nobody))
        .load()
}

#[test]
fn good_file_means_what_the_builder_means() {
    let loaded = load(GOOD).unwrap();
    let t = loaded.enforcer().topology();
    assert_eq!(t.domains().len(), 2);
    assert_eq!(
        t.domain("inner").unwrap().trust().unwrap().as_str(),
        "network"
    );
    let names: Vec<_> = t.endpoints().iter().map(|e| e.name()).collect();
    assert_eq!(names, ["* /health", "read order", "POST /payments"]);
    let order = &t.endpoints()[1];
    assert_eq!(order.exposure(), Exposure::Boundary);
    assert_eq!(order.requirements().scopes()[0].as_str(), "orders:read");
    let rules: Vec<_> = order
        .requirements()
        .claims()
        .iter()
        .map(|(n, r)| (n.to_string(), r.clone()))
        .collect();
    assert_eq!(
        rules,
        [
            ("email".to_owned(), ClaimRule::Present),
            ("groups".to_owned(), ClaimRule::Contains("buyers".into())),
            ("tenant".to_owned(), ClaimRule::Equals("acme".into())),
        ]
    );
    let payments = &t.endpoints()[2];
    assert_eq!(payments.exposure(), Exposure::InteriorAndBoundary);
    assert!(payments.is_hierarchical());
    assert!(loaded.instance::<JwtVerifier>("org-jwt").is_some());

    // The same thing through the builder API.
    let built = Topology::builder()
        .domain(Domain::builder("outer").trust("org-jwt").access("org-jwt"))
        .domain(
            Domain::builder("inner")
                .parent("outer")
                .trust("network")
                .access("org-jwt"),
        )
        .endpoint(Endpoint::public("outer", "/health"))
        .endpoint(
            Endpoint::boundary("outer", "/orders/{id}")
                .name("read order")
                .methods(["GET"])
                .scopes(["orders:read"])
                .claim("email", ClaimRule::Present)
                .claim("groups", ClaimRule::Contains("buyers".into()))
                .claim_equals("tenant", "acme"),
        )
        .endpoint(Endpoint::interior_and_boundary("inner", "/payments").methods(["POST"]))
        .build()
        .unwrap();
    for (a, b) in t.endpoints().iter().zip(built.endpoints()) {
        assert_eq!(a.name(), b.name());
        assert_eq!(a.exposure(), b.exposure());
        assert_eq!(a.requirements(), b.requirements());
        assert_eq!(a.is_hierarchical(), b.is_hierarchical());
        assert_eq!(a.methods(), b.methods());
    }
}

fn error(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

fn with(replace: &str, by: &str) -> String {
    assert!(GOOD.contains(replace), "{replace}");
    GOOD.replacen(replace, by, 1)
}

#[test]
fn errors_point_to_the_offending_key() {
    let e = error(&with("relation = \"coarse", "relashun = \"coarse"));
    assert!(
        e.contains("unknown field `relashun`") && e.contains("line"),
        "{e}"
    );
    let e = error(&with("exposure = \"boundary\"", "exposure = \"sideways\""));
    assert!(e.contains("sideways") && e.contains("exposure"), "{e}");
    assert_eq!(
        error(&with("leeway_seconds = 10", "leeway_seconds = \"ten\"")),
        "mechanisms.org-jwt.leeway_seconds: invalid type: string \"ten\", expected u64"
    );
    assert_eq!(
        error(&with(
            "require_type = [\"at+jwt\"]",
            "require_typ = [\"at+jwt\"]"
        ))
        .split(',')
        .next()
        .unwrap(),
        "mechanisms.org-jwt.require_typ: unknown field `require_typ`"
    );
    assert_eq!(
        error(&with("kind = \"jwt\"", "kind = \"saml\"")),
        "mechanisms.org-jwt: kind must be one of jwt, x5c_jwt, introspection, mtls, network, api_key, accountability_jwt, all_of, any_of, custom"
    );
}

#[test]
fn semantic_errors_name_the_item() {
    assert_eq!(
        error(&with("domain = \"inner\"", "domain = \"nowhere\"")),
        r#"endpoint "POST /payments": domain "nowhere" is not declared"#
    );
    assert_eq!(
        error(&with("parent = \"outer\"", "parent = \"outre\"")),
        r#"domain "inner": parent domain "outre" is not declared"#
    );
    assert_eq!(
        error(&with("audiences = [\"platform\"]", "")),
        r#"mechanisms.org-jwt: issuer "https://idp.example" has no audience"#
    );
    assert_eq!(
        error(&with(
            "jwks_uri = \"https://idp.example/jwks\"",
            "jwks_uri = \"https://idp.example/jwks\"\ndiscovery = true"
        )),
        "mechanisms.org-jwt.issuers[0]: set exactly one of jwks_uri and discovery = true"
    );
    assert_eq!(
        error(&with("\"RS256\", \"ES256\"", "\"RS256\", \"HS256\"")),
        r#"mechanisms.org-jwt.issuers[0].algorithms: unsupported algorithm "HS256""#
    );
    assert!(
        error(&with("https://idp.example/jwks", "http://idp.example/jwks")).contains("plain http")
    );
    assert_eq!(
        error(&with(
            "email = { present = true }",
            "email = { present = true, extra = 1 }"
        )),
        "endpoints[1].claims.email: use a value, { present = true } or { contains = value }"
    );
    assert_eq!(
        error(&with(
            "min_refresh_interval_seconds = 5",
            "min_refresh_interval_seconds = 500"
        )),
        "mechanisms.org-jwt: invalid JWKS cache policy: min_ttl is shorter than min_refresh_interval"
    );
    assert_eq!(
        error(&with(
            "kind = \"custom\"",
            "kind = \"custom\"\nleeway_seconds = 1"
        )),
        "mechanisms.network.leeway_seconds: unknown field `leeway_seconds`, there are no fields"
    );
    let e = Config::from_toml(GOOD)
        .unwrap()
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("mechanisms.network: kind \"custom\" needs a verifier"),
        "{e}"
    );
    let e = Config::from_file("/nonexistent/dharma.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cannot read /nonexistent/dharma.toml"), "{e}");
}

const MECHANISMS: &str = r#"
    [mechanisms.org-jwt]
    kind = "jwt"
    [[mechanisms.org-jwt.issuers]]
    issuer = "https://sts.example"
    jwks_uri = "https://sts.example/jwks"
    audiences = ["inner"]

    [mechanisms.inside]
    kind = "network"
    allow = ["10.20.0.0/16", "fd00::/8"]
    allow_loopback = true
    trusted_proxies = ["10.0.0.5"]
    forwarded_header = "forwarded"

    [mechanisms.caller]
    kind = "accountability_jwt"
    jwt = "org-jwt"

    [mechanisms.trust]
    kind = "all_of"
    mechanisms = ["inside", "caller"]

    [mechanisms.keys]
    kind = "api_key"
    header = "x-app-key"
    clients = [{ client = "billing", sha256 = "35224d0d3465d74e855f8d69a136e79c744ea35a675d3393360a327cbf6359a2" }]

    [mechanisms.opaque]
    kind = "introspection"
    endpoint = "https://as.example/introspect"
    client_id = "inner-gw"
    client_secret_env = "DHARMA_TEST_INTROSPECTION_SECRET"
    client_auth = "post"
    audiences = ["inner"]

    [mechanisms.access]
    kind = "any_of"
    mechanisms = ["org-jwt", "opaque", "keys"]

    [[domains]]
    name = "inner"
    trust = "trust"
    access = "access"

    [[endpoints]]
    domain = "inner"
    path = "/pay"
    exposure = "interior+boundary"
    allow_identified = true
"#;

#[test]
fn every_mechanism_kind_loads() {
    let text = MECHANISMS.replace(
        "client_secret_env = \"DHARMA_TEST_INTROSPECTION_SECRET\"",
        "client_secret = \"s\"",
    );
    let loaded = Config::from_toml(&text).unwrap().load().unwrap();
    let t = loaded.enforcer().topology();
    let ep = &t.endpoints()[0];
    assert!(ep.allows_identified());
    for name in [
        "org-jwt", "inside", "caller", "trust", "keys", "opaque", "access",
    ] {
        assert!(loaded.mechanisms().get(name).is_some(), "{name} missing");
    }
    assert!(loaded.instance::<JwtVerifier>("org-jwt").is_some());
}

#[test]
fn references_between_mechanisms_are_checked() {
    let base = MECHANISMS.replace(
        "client_secret_env = \"DHARMA_TEST_INTROSPECTION_SECRET\"",
        "client_secret = \"s\"",
    );
    let e = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        Config::from_toml(&base.replacen(from, to, 1))
            .unwrap()
            .load()
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e(
            "mechanisms = [\"inside\", \"caller\"]",
            "mechanisms = [\"inside\", \"nope\"]"
        ),
        "mechanisms.trust: unknown mechanism \"nope\""
    );
    assert_eq!(
        e("jwt = \"org-jwt\"", "jwt = \"inside\""),
        "mechanisms.caller: not a jwt mechanism \"inside\""
    );
    assert_eq!(
        e(
            "mechanisms = [\"inside\", \"caller\"]",
            "mechanisms = [\"inside\", \"access\", \"trust\"]"
        ),
        "mechanisms.trust: cycle through \"trust\""
    );
    assert_eq!(
        e(
            "allow = [\"10.20.0.0/16\", \"fd00::/8\"]",
            "allow = [\"10.20.0.0/33\"]"
        ),
        "mechanisms.inside: invalid network \"10.20.0.0/33\": use an address or address/prefix"
    );
    assert!(
        e("sha256 = \"35224d", "sha256 = \"zz224d")
            .starts_with("mechanisms.keys: digest of client \"billing\"")
    );
    assert_eq!(
        e(
            "client_secret = \"s\"",
            "client_secret = \"s\"\nclient_secret_env = \"X\""
        ),
        "mechanisms.opaque: set exactly one of client_secret and client_secret_env"
    );
    assert_eq!(
        Config::from_toml(MECHANISMS)
            .unwrap()
            .load()
            .unwrap_err()
            .to_string(),
        "mechanisms.opaque.client_secret_env: environment variable \"DHARMA_TEST_INTROSPECTION_SECRET\" is not set"
    );
}

#[test]
fn certificate_mechanisms_load() {
    let root = dharma_test_support::pki::Ca::root("Org Root");
    let text = format!(
        r#"
        [mechanisms.mtls]
        kind = "mtls"
        ca_pem = """{pem}"""
        max_intermediates = 1
        trust_domain = "example.org"
        allow = ["spiffe://example.org/ns/*"]

        [mechanisms.org-signed]
        kind = "x5c_jwt"
        ca_pem = """{pem}"""
        audiences = ["inner"]
        bind = ["iss"]

        [mechanisms.layer]
        kind = "mtls"
        trust_tls_layer = true

        [mechanisms.bound]
        kind = "jwt"
        require_certificate_binding = true
        [[mechanisms.bound.issuers]]
        issuer = "https://as.example"
        discovery = true
        audiences = ["api"]

        [[domains]]
        name = "outer"
        trust = "mtls"
        access = "org-signed"
        "#,
        pem = root.pem()
    );
    let loaded = Config::from_toml(&text).unwrap().load().unwrap();

    for name in ["mtls", "org-signed", "layer", "bound"] {
        assert!(loaded.mechanisms().get(name).is_some(), "{name}");
    }

    let e = |from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        Config::from_toml(&text.replacen(from, to, 1))
            .unwrap()
            .load()
            .unwrap_err()
            .to_string()
    };
    let both = format!(
        "trust_tls_layer = true\nca_pem = \"\"\"{}\"\"\"",
        root.pem()
    );
    assert_eq!(
        e("trust_tls_layer = true", &both),
        "mechanisms.layer: set exactly one of ca_file, ca_pem and trust_tls_layer = true"
    );
    assert!(
        e(
            "trust_tls_layer = true",
            "ca_file = \"/nonexistent/ca.pem\""
        )
        .starts_with("cannot read /nonexistent/ca.pem")
    );
    assert_eq!(
        e("bind = [\"iss\"]", "bind = [\"aud\"]")
            .split(':')
            .next()
            .unwrap(),
        "mechanisms.org-signed.bind[0]"
    );
    assert_eq!(
        e(
            "audiences = [\"inner\"]\n        bind",
            "audiences = []\n        bind"
        ),
        "mechanisms.org-signed: no audience configured"
    );
    assert_eq!(
        e(
            "trust_domain = \"example.org\"",
            "trust_domain = \"Example/org\""
        ),
        "mechanisms.mtls: invalid trust domain \"Example/org\""
    );
    let garbage = text.replacen(
        &root.pem(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        1,
    );
    assert_eq!(
        Config::from_toml(&garbage)
            .unwrap()
            .load()
            .unwrap_err()
            .to_string(),
        "mechanisms.mtls: CA certificate 0 is not a usable trust anchor"
    );
}

/// The issue's complaint: validating a file built HTTP clients and read files and
/// secrets. `validate` touches none of them; `load` reads them and fails where they are
/// missing.
#[test]
fn validation_is_offline() {
    let text = r#"
        [mechanisms.opaque]
        kind = "introspection"
        endpoint = "https://as.example/introspect"
        client_id = "gw"
        client_secret_env = "DHARMA_TEST_NEVER_SET"
        audiences = ["api"]

        [mechanisms.mtls]
        kind = "mtls"
        ca_file = "/nonexistent/ca.pem"

        [mechanisms.signed]
        kind = "x5c_jwt"
        ca_file = "/nonexistent/ca.pem"
        audiences = ["api"]

        [[domains]]
        name = "outer"
        trust = "mtls"
        access = "opaque"
    "#;
    let topology = Config::from_toml(text).unwrap().validate().unwrap();
    assert_eq!(topology.mechanisms().len(), 2);
    let e = Config::from_toml(text).unwrap().load().unwrap_err();
    assert!(
        e.to_string().starts_with("cannot read /nonexistent/ca.pem")
            || e.to_string().contains("DHARMA_TEST_NEVER_SET"),
        "{e}"
    );

    // Offline checks still refuse what can be refused without I/O.
    for (from, to, message) in [
        (
            "client_id = \"gw\"",
            "client_id = \"gw\"\nclient_secret = \"s\"",
            "mechanisms.opaque: set exactly one of client_secret and client_secret_env",
        ),
        (
            "ca_file = \"/nonexistent/ca.pem\"\n\n",
            "ca_file = \"/nonexistent/ca.pem\"\ntrust_tls_layer = true\n\n",
            "mechanisms.mtls: set exactly one of ca_file, ca_pem and trust_tls_layer = true",
        ),
        (
            "https://as.example/introspect",
            "http://as.example/introspect",
            "plain http",
        ),
        (
            "access = \"opaque\"",
            "access = \"opaq\"",
            r#"domain "outer": mechanism "opaq" is not registered"#,
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let e = Config::from_toml(&text.replacen(from, to, 1))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains(message), "{e}");
    }
}

/// The policy is data: written back, it reads as the same policy.
#[test]
fn a_configuration_round_trips_through_toml() {
    let config = Config::from_toml(GOOD).unwrap();
    let again = Config::from_toml(&config.to_toml()).unwrap();
    let (a, b) = (config.validate().unwrap(), again.validate().unwrap());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(config.to_toml(), again.to_toml());
}
