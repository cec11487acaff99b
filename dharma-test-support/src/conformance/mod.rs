//! The conformance world and cases: one topology and one list of requests with their
//! expected outcomes, run against every adapter.

mod world;

use serde::Deserialize;
use serde_json::json;

pub use world::{World, world};

/// One request and what every adapter must answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case checks.
    pub name: String,
    /// The HTTP method (gRPC is always POST).
    #[serde(default = "post")]
    pub method: String,
    /// The path (a gRPC method path).
    pub path: String,
    /// A token of the world, sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// A literal `Authorization` value.
    pub authorization: Option<String>,
    /// An API key, sent as `x-api-key`.
    pub api_key: Option<String>,
    /// The client address. Tests connect from loopback, which the world trusts as a proxy,
    /// so the address travels as the `x-forwarded-for` hop that proxy appended.
    pub peer: Option<String>,
    /// Any other request headers (gRPC metadata).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// The expected HTTP status.
    pub status: u16,
    /// The route whose handler ran, or `none`.
    pub handler: String,
    /// The expected `Allow` of a `405`.
    pub allow: Option<String>,
    /// The expected audit reason.
    pub reason: String,
    /// The expected lane of the audit event, when it is checked.
    pub lane: Option<String>,
    /// The expected `WWW-Authenticate`, when it is checked.
    pub www_authenticate: Option<String>,
    /// The expected `error` of the JSON body, when it is checked.
    pub error: Option<String>,
    /// Whether gRPC cannot express the case.
    #[serde(default)]
    pub http_only: bool,
    /// Whether the world's replay guard is full of unexpired tokens when the case runs (a
    /// token store that cannot answer: each one-time endpoint's fail mode decides).
    #[serde(default)]
    pub store_full: bool,
    /// Whether the audit trail cannot record admissions when the case runs (a JSON-lines
    /// sink that denies on overflow, writing to a full device).
    #[serde(default)]
    pub audit_failing: bool,
}

fn post() -> String {
    "POST".into()
}

#[derive(Deserialize)]
struct File {
    case: Vec<Case>,
}

/// Every case.
pub fn cases() -> Vec<Case> {
    let file: File = toml::from_str(include_str!("../../conformance/cases.toml")).unwrap();
    file.case
}

/// The gRPC status code a case's HTTP status maps to.
pub fn grpc_code(status: u16) -> i32 {
    match status {
        200 => 0,
        400 => 3,
        401 => 16,
        403 => 7,
        404 | 405 => 12,
        500 => 13,
        503 => 14,
        other => panic!("no gRPC mapping for {other}"),
    }
}

/// The routes every HTTP adapter's app registers (method, pattern in axum's syntax), most
/// specific first (actix-web matches in registration order). Each handler answers with its
/// route in the `x-handler` header and the body.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/shop.Health/Check"),
    ("POST", "/shop.Orders/Get"),
    ("POST", "/shop.Orders/Create"),
    ("POST", "/shop.Orders/Redeem"),
    ("POST", "/shop.Orders/Claim"),
    ("POST", "/shop.Admin/Purge"),
    ("POST", "/shop.Catalog/List"),
    ("POST", "/shop.Catalog/Browse"),
    ("POST", "/shop.Stock/Sync"),
    ("POST", "/shop.Secret/Get"),
    ("POST", "/vault.Keys/Rotate"),
    ("POST", "/remote.Orders/Get"),
    ("GET", "/users/admin"),
    ("GET", "/users/{id}"),
    ("DELETE", "/docs/admin/{*rest}"),
    ("GET", "/docs/{*rest}"),
    ("GET", "/reports/{id}"),
    ("POST", "/shop.Orders/Refund"),
    ("POST", "/shop.Orders/Export"),
    ("POST", "/shop.Orders/Bulk"),
    ("POST", "/shop.Orders/Cancel"),
    ("POST", "/shop.Orders/Ship"),
    ("POST", "/shop.Orders/Sync"),
    ("GET", "/accounts/{id}"),
];

/// The prefix of the nested router (axum `nest`, actix-web `scope`) and its routes.
pub const NESTED: (&str, &[(&str, &str)]) = ("/nested", &[("GET", "/items/{id}")]);

/// What an HTTP adapter's server answered.
#[derive(Debug)]
pub struct Answer<'a> {
    /// The status.
    pub status: u16,
    /// `WWW-Authenticate`.
    pub www_authenticate: Option<&'a str>,
    /// `Allow`.
    pub allow: Option<&'a str>,
    /// `x-handler`: the route whose handler ran.
    pub handler: Option<&'a str>,
    /// The body.
    pub body: &'a str,
}

impl<'a> Answer<'a> {
    /// The parts of a response the cases check.
    pub fn of(r: &'a crate::client::Response) -> Self {
        Self {
            status: r.status.as_u16(),
            www_authenticate: r.header("www-authenticate"),
            allow: r.header("allow"),
            handler: r.header("x-handler"),
            body: &r.body,
        }
    }
}

/// Runs every case over HTTP against `base` (`http://127.0.0.1:port`) and returns how many
/// ran. The cases are checked one by one, each with its audit event.
pub async fn run_http(world: &World, base: &str) -> usize {
    let mut ran = 0;
    for case in cases() {
        world.prepare(&case).await;
        let headers = world.headers(&case);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let method = http::Method::from_bytes(case.method.as_bytes()).unwrap();
        let r = crate::client::send(method, &format!("{base}{}", case.path), &headers, None).await;
        check_http(&case, Answer::of(&r));
        world.check_audit(&case);
        ran += 1;
    }
    ran
}

/// Checks an HTTP answer against a case.
pub fn check_http(case: &Case, answer: Answer<'_>) {
    let Answer {
        status,
        www_authenticate,
        allow,
        handler,
        body,
    } = answer;
    assert_eq!(status, case.status, "{}: status (body {body})", case.name);
    assert_eq!(
        handler.unwrap_or("none"),
        case.handler,
        "{}: the handler that ran",
        case.name
    );
    if case.status == 405 || case.allow.is_some() {
        assert_eq!(allow, case.allow.as_deref(), "{}: Allow", case.name);
    }
    if let Some(expected) = &case.www_authenticate {
        assert_eq!(
            www_authenticate,
            Some(expected.as_str()),
            "{}: WWW-Authenticate",
            case.name
        );
    }
    if status == 200 {
        if case.method != "HEAD" {
            assert_eq!(body, case.handler, "{}: handler's answer", case.name);
        }
    } else {
        let json: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("{}: body {body}", case.name));
        if let Some(error) = &case.error {
            assert_eq!(json["error"], json!(error), "{}: body error", case.name);
        }
        assert!(
            !body.contains("eyJ"),
            "{}: a token leaked into the body",
            case.name
        );
    }
}
