//! Multi-tenant issuers: one template, one key set for every tenant, the tenant in the
//! security context; against a real key-set server on 127.0.0.1.
#![expect(clippy::unwrap_used, reason = "tests")]

use dharma_core::{Decision, Enforcer, RequestView, config::Config};
use dharma_test_support::{
    TestKey,
    keys::{claims, jwks},
    server::{Reply, TestServer},
};
use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};

async fn decide(enforcer: &Enforcer, token: &str) -> Result<Option<String>, String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    match enforcer
        .decide(&RequestView::new(&Method::GET, "/orders", &headers))
        .await
    {
        Decision::Allow(p) => Ok(p.context().tenant().map(str::to_owned)),
        Decision::Deny(d) => Err(d.rejection().code().to_owned()),
    }
}

#[tokio::test]
async fn one_key_set_serves_every_listed_tenant() {
    let key = TestKey::generate("ES256", "common-1");
    let server = TestServer::start().await;
    server.set("/common/keys", Reply::json(&jwks(&[&key])));
    let base = server.url("");
    let config = format!(
        r#"
        [mechanisms.login]
        kind = "jwt"
        [[mechanisms.login.issuers]]
        issuer_template = "{base}/{{tenant}}/v2.0"
        tenants = ["acme", "globex"]
        jwks_uri = "{base}/common/keys"
        audiences = ["orders-api"]

        [[domains]]
        name = "outer"
        access = "login"

        [[endpoints]]
        domain = "outer"
        path = "/orders"
        exposure = "boundary"
        "#
    );
    let loaded = Config::from_toml(&config)
        .unwrap()
        .loader()
        .start()
        .await
        .unwrap();
    let e = loaded.enforcer();
    let token =
        |tenant: &str| key.sign(&claims(&format!("{base}/{tenant}/v2.0"), "orders-api", ""));

    assert_eq!(decide(e, &token("acme")).await, Ok(Some("acme".into())));
    assert_eq!(decide(e, &token("globex")).await, Ok(Some("globex".into())));
    // A tenant not listed, a tenant that is two segments, the template itself.
    for iss in [
        format!("{base}/initech/v2.0"),
        format!("{base}/acme/x/v2.0"),
        format!("{base}/{{tenant}}/v2.0"),
    ] {
        let t = key.sign(&claims(&iss, "orders-api", ""));
        assert_eq!(
            decide(e, &t).await,
            Err("token_untrusted_issuer".into()),
            "{iss}"
        );
    }
    // The issuer recorded is the tenant's own.
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {}", token("acme"))).unwrap(),
    );
    let Decision::Allow(p) = e
        .decide(&RequestView::new(&Method::GET, "/orders", &headers))
        .await
    else {
        unreachable!("admitted above")
    };
    assert_eq!(
        p.context().principal().unwrap().issuer().unwrap().as_str(),
        format!("{base}/acme/v2.0")
    );
    // One key set for every tenant: fetched once.
    assert_eq!(server.hits("/common/keys"), 1);

    // Discovery is per issuer, so a template cannot use it; nor can a template lack
    // its placeholder.
    for (from, to, message) in [
        (
            format!("jwks_uri = \"{base}/common/keys\""),
            "discovery = true".to_owned(),
            "needs a jwks_uri",
        ),
        (
            "{tenant}/v2.0".to_owned(),
            "common/v2.0".to_owned(),
            "needs one {tenant}",
        ),
    ] {
        let err = Config::from_toml(&config.replace(&from, &to))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err}");
    }
}
