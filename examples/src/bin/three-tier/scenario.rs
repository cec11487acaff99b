//! The calls of the scenario, what the model says each must get, and the table.

use std::{collections::BTreeMap, net::SocketAddr};

use dharma_test_support::{
    client,
    idp::{ELSEWHERE_RESOURCE, Idp, OPAQUE_RESOURCE},
};
use http::Method;

use crate::{
    deployment::{Deployment, Error, GATEWAY_ID, ORDERS_ID, Org, workload_token},
    inner,
};

/// Where everything runs.
pub(crate) struct World<'a> {
    pub(crate) idp: &'a Idp,
    pub(crate) org: &'a Org,
    pub(crate) gateway: String,
    pub(crate) sts: String,
    pub(crate) orders: String,
    pub(crate) billing: String,
    pub(crate) ledger: SocketAddr,
    pub(crate) inventory: SocketAddr,
}

struct Row {
    call: &'static str,
    expected: &'static str,
    actual: String,
    /// The audited reason expected: `allowed` if every decision of the call admitted, else
    /// the reason of its last refusal.
    reason: &'static str,
    audited: String,
    /// Words the answer must contain (the normal flow's chain of identities).
    shows: Option<&'static str>,
    body: String,
}

async fn http(
    method: Method,
    url: &str,
    token: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> (String, String) {
    let r = client::send_bearer(method, url, token, form).await;
    (r.status.as_u16().to_string(), r.body)
}

fn grpc(result: Result<String, tonic::Status>) -> (String, String) {
    match result {
        Ok(body) => ("OK".into(), body),
        Err(status) => (format!("{:?}", status.code()), status.message().to_owned()),
    }
}

/// A string member of a JSON object.
fn field<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

/// The audit trail as the scenario reads it: the decisions written since the last look.
struct Trail<'a> {
    deployment: &'a Deployment,
    read: usize,
}

impl Trail<'_> {
    /// `allowed` if every decision since the last look admitted, else the last refusal's
    /// reason.
    fn reason(&mut self) -> Result<String, Error> {
        self.deployment.audit.flush()?;
        let text = std::fs::read_to_string(self.deployment.dir.join("audit.jsonl"))?;
        let new = text.get(self.read..).unwrap_or_default();
        self.read = text.len();
        let mut reason = "allowed".to_owned();
        for line in new.lines() {
            let event: serde_json::Value = serde_json::from_str(line)?;
            if field(&event, "type") == Some("decision") && field(&event, "outcome") == Some("deny")
            {
                reason = field(&event, "reason").unwrap_or("?").to_owned();
            }
        }
        Ok(reason)
    }
}

/// Runs every call and prints the table: whether every row got what it should, and the
/// tokens used (which the audit trail must not hold).
pub(crate) async fn run(
    w: &World<'_>,
    deployment: &Deployment,
) -> Result<(bool, Vec<String>), Error> {
    let mut trail = Trail {
        deployment,
        read: 0,
    };
    let client_token = w
        .idp
        .token(OPAQUE_RESOURCE, "orders:read orders:write")
        .await;
    let elsewhere = w.idp.token(ELSEWHERE_RESOURCE, "orders:read").await;
    // An outer JWT, as the gateway obtains one: what an attacker would steal inside.
    let gateway_credential = workload_token(&w.org.gateway, GATEWAY_ID, 600);
    let (_, body) = http(
        Method::POST,
        &format!("{}/sts/token", w.sts),
        Some(&gateway_credential),
        Some(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &client_token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", "outer"),
        ]),
    )
    .await;
    let outer_jwt = field(&serde_json::from_str(&body)?, "access_token")
        .ok_or_else(|| format!("the outer token service issued nothing: {body}"))?
        .to_owned();
    // The same claims and header under another signature (its first character changed).
    let forged = match outer_jwt.rsplit_once('.') {
        Some((signed, sig)) => {
            let first = if sig.starts_with('A') { "B" } else { "A" };
            format!("{signed}.{first}{}", sig.get(1..).unwrap_or_default())
        }
        None => outer_jwt.clone(),
    };
    let expired = workload_token(&w.org.orders, ORDERS_ID, -60);

    trail.reason()?;
    let mut rows = Vec::new();
    let mut row = |call, (expected, reason), (actual, body): (String, String), shows| {
        let audited = trail.reason()?;
        rows.push(Row {
            call,
            expected,
            actual,
            reason,
            audited,
            shows,
            body,
        });
        Ok::<(), Error>(())
    };
    row(
        "client places an order: gateway > orders > billing + ledger > inventory",
        ("200", "allowed"),
        http(
            Method::POST,
            &format!("{}/api/orders", w.gateway),
            Some(&client_token),
            None,
        )
        .await,
        Some("stock reserved by workload 127.0.0.2 on behalf of svc-client"),
    )?;
    row(
        "client reads an order through the gateway",
        ("200", "allowed"),
        http(
            Method::GET,
            &format!("{}/api/orders/7", w.gateway),
            Some(&client_token),
            None,
        )
        .await,
        Some("order 7 read by end_user svc-client"),
    )?;
    row(
        "public health check of billing, no credentials",
        ("200", "allowed"),
        http(
            Method::GET,
            &format!("{}/billing/health", w.billing),
            None,
            None,
        )
        .await,
        None,
    )?;
    row(
        "attack: client calls an outer interior endpoint directly",
        ("401", "token_malformed"),
        http(
            Method::GET,
            &format!("{}/orders/7", w.orders),
            Some(&client_token),
            None,
        )
        .await,
        None,
    )?;
    row(
        "attack: client calls the outer token service",
        ("401", "token_malformed"),
        http(
            Method::POST,
            &format!("{}/sts/token", w.sts),
            Some(&client_token),
            None,
        )
        .await,
        None,
    )?;
    row(
        "attack: client calls the inner domain's boundary directly",
        ("Unauthenticated", "token_malformed"),
        grpc(inner::call(w.ledger, None, "/inner.Ledger/Record", Some(&client_token)).await),
        None,
    )?;
    row(
        "attack: internal JWT replayed from outside, at the gateway",
        ("401", "token_type_unsupported"),
        http(
            Method::GET,
            &format!("{}/api/orders/7", w.gateway),
            Some(&outer_jwt),
            None,
        )
        .await,
        None,
    )?;
    row(
        "attack: a token for another audience, at the gateway",
        ("401", "token_wrong_audience"),
        http(
            Method::GET,
            &format!("{}/api/orders/7", w.gateway),
            Some(&elsewhere),
            None,
        )
        .await,
        None,
    )?;
    row(
        "attack: a forged outer JWT (signature altered), at orders",
        ("401", "token_bad_signature"),
        http(
            Method::GET,
            &format!("{}/orders/7", w.orders),
            Some(&forged),
            None,
        )
        .await,
        None,
    )?;
    row(
        "attack: an expired workload JWT, at orders",
        ("401", "token_expired"),
        http(
            Method::GET,
            &format!("{}/orders/7", w.orders),
            Some(&expired),
            None,
        )
        .await,
        None,
    )?;
    row(
        "attack: no credentials at an interior endpoint (billing)",
        ("401", "missing_credentials"),
        http(
            Method::POST,
            &format!("{}/billing/charges", w.billing),
            None,
            None,
        )
        .await,
        None,
    )?;
    row(
        "attack: a workload outside the inner network calls the inventory",
        ("PermissionDenied", "untrusted_network"),
        grpc(
            inner::call(
                w.inventory,
                None,
                "/inner.Inventory/Reserve",
                Some(&outer_jwt),
            )
            .await,
        ),
        None,
    )?;
    row(
        "the stolen JWT still works inside, until revoked",
        ("200", "allowed"),
        http(
            Method::GET,
            &format!("{}/orders/7", w.orders),
            Some(&outer_jwt),
            None,
        )
        .await,
        None,
    )?;
    row(
        "the gateway revokes it at the outer token service (RFC 7009)",
        ("200", "allowed"),
        http(
            Method::POST,
            &format!("{}/sts/revoke", w.sts),
            Some(&gateway_credential),
            Some(&[("token", &outer_jwt)]),
        )
        .await,
        None,
    )?;
    row(
        "attack: the revoked JWT, at orders",
        ("401", "token_revoked"),
        http(
            Method::GET,
            &format!("{}/orders/7", w.orders),
            Some(&outer_jwt),
            None,
        )
        .await,
        None,
    )?;

    let mut passed = true;
    println!(
        "{:<3} {:<72} {:<40} {:<40} result",
        "#", "call", "expected (status, audited reason)", "actual"
    );
    for (i, r) in rows.iter().enumerate() {
        let shown = r.shows.is_none_or(|words| r.body.contains(words));
        let ok = r.actual == r.expected && r.audited == r.reason && shown;
        passed &= ok;
        println!(
            "{:<3} {:<72} {:<40} {:<40} {}",
            i + 1,
            r.call,
            format!("{} {}", r.expected, r.reason),
            format!("{} {}", r.actual, r.audited),
            if ok { "ok" } else { "DIFFERS" }
        );
        if !ok || r.shows.is_some() {
            println!("     answer: {}", r.body);
        }
    }
    Ok((
        passed,
        vec![client_token, elsewhere, outer_jwt, gateway_credential],
    ))
}

/// Reads the audit file back: one JSON object per line, counted by type; none of `secrets`
/// in it.
pub(crate) fn audit_summary(deployment: &Deployment, secrets: &[String]) -> Result<bool, Error> {
    deployment.audit.flush()?;
    let path = deployment.dir.join("audit.jsonl");
    let text = std::fs::read_to_string(&path)?;
    let mut types = BTreeMap::new();
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        let key = match (
            field(&event, "type"),
            field(&event, "outcome"),
            field(&event, "activity"),
        ) {
            (Some(t), Some(o), _) | (Some(t), None, Some(o)) => format!("{t} {o}"),
            (Some(t), None, None) => t.to_owned(),
            _ => "untyped".to_owned(),
        };
        *types.entry(key).or_insert(0) += 1;
    }
    let leaked = secrets.iter().any(|s| text.contains(s.as_str()));
    println!(
        "\naudit trail: {} events from every service in one file: {}",
        text.lines().count(),
        types
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "audit trail names no token: {}",
        if leaked { "NO, a token is in it" } else { "ok" }
    );
    Ok(!leaked && types.contains_key("decision deny") && types.contains_key("token exchanged"))
}
