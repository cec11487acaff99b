//! The `[mechanisms.*]` tables: one section type per kind, built in dependency order
//! (combinators and propagated tokens refer to other mechanisms by name).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::{Deserialize, de::DeserializeOwned};

use super::{ConfigError, MechanismError};
use crate::{
    clock::Clock,
    jwks::CachePolicy,
    mechanism::Verifier,
    mechanism::accountability::AccountabilityJwt,
    mechanism::api_key::ApiKeyVerifier,
    mechanism::combine::{AllOf, AnyOf},
    mechanism::introspection::{ClientAuth, IntrospectionVerifier},
    mechanism::jwt::{Algorithm, IssuerSpec, JwtVerifier},
    mechanism::mtls::MtlsVerifier,
    mechanism::network::{ForwardedHeader, NetworkVerifier},
    mechanism::x5c::{X5cBinding, X5cJwtVerifier},
    pki::OrgCa,
    transport::HttpClient,
};

/// What code adds to the file.
pub(super) struct Context {
    pub(super) client: Option<Arc<dyn HttpClient>>,
    pub(super) clock: Option<Arc<dyn Clock>>,
    pub(super) custom: Vec<(String, Arc<dyn Verifier>)>,
}

/// The mechanisms, by name, and the JWT verifiers among them.
pub(super) struct Built {
    pub(super) verifiers: Vec<(String, Arc<dyn Verifier>)>,
    pub(super) jwt: Vec<(String, JwtVerifier)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtSection {
    issuers: Vec<IssuerSection>,
    #[serde(default)]
    audiences: Vec<String>,
    leeway_seconds: Option<u64>,
    #[serde(default)]
    require_type: Vec<String>,
    #[serde(default)]
    require_claims: Vec<String>,
    #[serde(default)]
    accept_scp_array: bool,
    max_token_bytes: Option<usize>,
    token_cache_capacity: Option<u64>,
    jwks: Option<JwksSection>,
    #[serde(default)]
    require_certificate_binding: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerSection {
    issuer: String,
    jwks_uri: Option<String>,
    #[serde(default)]
    discovery: bool,
    #[serde(default)]
    audiences: Vec<String>,
    algorithms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwksSection {
    default_ttl_seconds: Option<u64>,
    min_ttl_seconds: Option<u64>,
    max_ttl_seconds: Option<u64>,
    min_refresh_interval_seconds: Option<u64>,
    stale_if_error_seconds: Option<u64>,
    fetch_timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
    refresh_at_percent: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AuthSetting {
    Basic,
    Post,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectionSection {
    endpoint: String,
    client_id: String,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    client_auth: Option<AuthSetting>,
    #[serde(default)]
    audiences: Vec<String>,
    issuer: Option<String>,
    max_ttl_seconds: Option<u64>,
    inactive_ttl_seconds: Option<u64>,
    timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    allow_loopback: bool,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    forwarded_header: Option<ForwardedSetting>,
}

#[derive(Debug, Deserialize)]
enum ForwardedSetting {
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    #[serde(rename = "forwarded")]
    Forwarded,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeySection {
    header: Option<String>,
    #[serde(default)]
    clients: Vec<ApiClientSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiClientSection {
    client: String,
    sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PropagatedSection {
    jwt: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CombinedSection {
    mechanisms: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MtlsSection {
    ca_file: Option<String>,
    ca_pem: Option<String>,
    #[serde(default)]
    trust_tls_layer: bool,
    max_intermediates: Option<usize>,
    trust_domain: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BindSetting {
    Iss,
    Sub,
    Azp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct X5cSection {
    ca_file: Option<String>,
    ca_pem: Option<String>,
    max_intermediates: Option<usize>,
    audiences: Vec<String>,
    trust_domain: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    bind: Vec<BindSetting>,
    #[serde(default)]
    pins: Vec<String>,
    #[serde(default)]
    token_services: Vec<String>,
    leeway_seconds: Option<u64>,
    #[serde(default)]
    require_type: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomSection {}

enum Spec {
    Jwt(JwtSection),
    Introspection(IntrospectionSection),
    Network(NetworkSection),
    ApiKey(ApiKeySection),
    Mtls(MtlsSection),
    X5c(X5cSection),
    Custom,
    Propagated(String),
    AllOf(Vec<String>),
    AnyOf(Vec<String>),
}

impl Spec {
    fn references(&self) -> &[String] {
        match self {
            Self::Propagated(name) => std::slice::from_ref(name),
            Self::AllOf(names) | Self::AnyOf(names) => names,
            _ => &[],
        }
    }
}

/// Deserializes a table, naming the exact key of any error.
fn section<T: DeserializeOwned>(key: &str, table: toml::Table) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Field {
            key: if path == "." {
                format!("mechanisms.{key}")
            } else {
                format!("mechanisms.{key}.{path}")
            },
            message: e
                .into_inner()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    })
}

fn parse(key: &str, mut table: toml::Table) -> Result<Spec, ConfigError> {
    let kind = match table.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        _ => return Err(ConfigError::Kind(key.to_owned())),
    };
    Ok(match kind.as_str() {
        "jwt" => Spec::Jwt(section(key, table)?),
        "introspection" => Spec::Introspection(section(key, table)?),
        "network" => Spec::Network(section(key, table)?),
        "api_key" => Spec::ApiKey(section(key, table)?),
        "mtls" => Spec::Mtls(section(key, table)?),
        "x5c_jwt" => Spec::X5c(section(key, table)?),
        "custom" => {
            section::<CustomSection>(key, table)?;
            Spec::Custom
        }
        "accountability_jwt" => Spec::Propagated(section::<PropagatedSection>(key, table)?.jwt),
        "all_of" => Spec::AllOf(section::<CombinedSection>(key, table)?.mechanisms),
        "any_of" => Spec::AnyOf(section::<CombinedSection>(key, table)?.mechanisms),
        _ => return Err(ConfigError::Kind(key.to_owned())),
    })
}

/// Builds every mechanism of the file, then adds the code-registered ones it does not name.
pub(super) fn build_all(
    tables: BTreeMap<String, toml::Table>,
    ctx: &Context,
) -> Result<Built, ConfigError> {
    let mut pending: Vec<(String, Spec)> = Vec::new();
    for (key, table) in tables {
        let spec = parse(&key, table)?;
        pending.push((key, spec));
    }
    let in_file: Vec<String> = pending.iter().map(|(k, _)| k.clone()).collect();
    let mut built = Built {
        verifiers: Vec::new(),
        jwt: Vec::new(),
    };
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|(_, spec)| spec.references().iter().all(|r| built.has(r)));
        let Some(index) = ready else {
            let (key, spec) = pending.remove(0);
            let name = spec
                .references()
                .iter()
                .find(|r| !built.has(r))
                .cloned()
                .unwrap_or_default();
            let problem = if in_file.contains(&name) {
                "cycle through"
            } else {
                "unknown mechanism"
            };
            return Err(ConfigError::Reference { key, name, problem });
        };
        let (key, spec) = pending.remove(index);
        let verifier = build_one(&key, spec, ctx, &mut built)?;
        built.verifiers.push((key, verifier));
    }
    for (name, verifier) in &ctx.custom {
        if !in_file.contains(name) {
            built.verifiers.push((name.clone(), verifier.clone()));
        }
    }
    Ok(built)
}

impl Built {
    fn has(&self, name: &str) -> bool {
        self.verifiers.iter().any(|(n, _)| n == name)
    }

    fn get(&self, name: &str) -> Option<Arc<dyn Verifier>> {
        self.verifiers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

fn build_one(
    key: &str,
    spec: Spec,
    ctx: &Context,
    built: &mut Built,
) -> Result<Arc<dyn Verifier>, ConfigError> {
    let fail = |source: MechanismError| ConfigError::Mechanism {
        key: key.to_owned(),
        source,
    };
    Ok(match spec {
        Spec::Jwt(s) => {
            let v = build_jwt(key, s, ctx)?;
            built.jwt.push((key.to_owned(), v.clone()));
            Arc::new(v)
        }
        Spec::Introspection(s) => Arc::new(build_introspection(key, s, ctx)?),
        Spec::Network(s) => {
            let mut b = NetworkVerifier::builder();
            for n in &s.allow {
                b = b.allow(n).map_err(|e| fail(e.into()))?;
            }
            for p in &s.trusted_proxies {
                b = b.trusted_proxy(p).map_err(|e| fail(e.into()))?;
            }
            if s.allow_loopback {
                b = b.allow_loopback();
            }
            if let Some(h) = &s.forwarded_header {
                b = b.forwarded_header(match h {
                    ForwardedSetting::XForwardedFor => ForwardedHeader::XForwardedFor,
                    ForwardedSetting::Forwarded => ForwardedHeader::Forwarded,
                });
            }
            Arc::new(b.build())
        }
        Spec::ApiKey(s) => {
            let mut b = ApiKeyVerifier::builder();
            if let Some(h) = &s.header {
                b = b.header(h).map_err(|e| fail(e.into()))?;
            }
            for c in &s.clients {
                b = b
                    .key_digest(&c.client, &c.sha256)
                    .map_err(|e| fail(e.into()))?;
            }
            Arc::new(b.build())
        }
        Spec::Mtls(s) => {
            let mut b = MtlsVerifier::builder();
            b = match (
                s.trust_tls_layer,
                org_ca(
                    key,
                    s.ca_file.as_deref(),
                    s.ca_pem.as_deref(),
                    s.max_intermediates,
                )?,
            ) {
                (false, Some(ca)) => b.org_ca(ca),
                (true, None) => b.trust_tls_layer(),
                _ => {
                    return Err(ConfigError::Field {
                        key: format!("mechanisms.{key}"),
                        message: "set exactly one of ca_file, ca_pem and trust_tls_layer = true"
                            .into(),
                    });
                }
            };
            if let Some(d) = &s.trust_domain {
                b = b.trust_domain(d).map_err(|e| fail(e.into()))?;
            }
            for a in &s.allow {
                b = b.allow(a);
            }
            if let Some(c) = &ctx.clock {
                b = b.clock(c.clone());
            }
            Arc::new(b.build().map_err(|e| fail(e.into()))?)
        }
        Spec::X5c(s) => {
            let Some(ca) = org_ca(
                key,
                s.ca_file.as_deref(),
                s.ca_pem.as_deref(),
                s.max_intermediates,
            )?
            else {
                return Err(ConfigError::Field {
                    key: format!("mechanisms.{key}"),
                    message: "set exactly one of ca_file and ca_pem".into(),
                });
            };
            let mut b = X5cJwtVerifier::builder(ca);
            for a in &s.audiences {
                b = b.audience(a);
            }
            if let Some(d) = &s.trust_domain {
                b = b.trust_domain(d).map_err(|e| fail(e.into()))?;
            }
            for a in &s.allow {
                b = b.allow(a);
            }
            for t in &s.token_services {
                b = b.token_service(t);
            }
            for bind in &s.bind {
                b = b.bind(match bind {
                    BindSetting::Iss => X5cBinding::Issuer,
                    BindSetting::Sub => X5cBinding::Subject,
                    BindSetting::Azp => X5cBinding::AuthorizedParty,
                });
            }
            for p in &s.pins {
                b = b.pin_x5t_s256(p);
            }
            if let Some(l) = s.leeway_seconds {
                b = b.leeway(Duration::from_secs(l));
            }
            for t in &s.require_type {
                b = b.require_type(t);
            }
            if let Some(c) = &ctx.clock {
                b = b.clock(c.clone());
            }
            Arc::new(b.build().map_err(|e| fail(e.into()))?)
        }
        Spec::Custom => match ctx.custom.iter().find(|(n, _)| n == key) {
            Some((_, v)) => v.clone(),
            None => return Err(ConfigError::MissingCustom(key.to_owned())),
        },
        Spec::Propagated(name) => {
            let Some(jwt) = built
                .jwt
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
            else {
                return Err(ConfigError::Reference {
                    key: key.to_owned(),
                    name,
                    problem: "not a jwt mechanism",
                });
            };
            Arc::new(AccountabilityJwt::new(jwt))
        }
        Spec::AllOf(names) => Arc::new(AllOf::new(branches(&names, built))),
        Spec::AnyOf(names) => Arc::new(AnyOf::new(branches(&names, built))),
    })
}

/// The organisation CA of an `mtls` or `x5c_jwt` table, if one is given.
fn org_ca(
    key: &str,
    file: Option<&str>,
    pem: Option<&str>,
    max: Option<usize>,
) -> Result<Option<OrgCa>, ConfigError> {
    let text = match (file, pem) {
        (None, None) => return Ok(None),
        (Some(path), None) => std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?,
        (None, Some(pem)) => pem.to_owned(),
        (Some(_), Some(_)) => {
            return Err(ConfigError::Field {
                key: format!("mechanisms.{key}"),
                message: "set only one of ca_file and ca_pem".into(),
            });
        }
    };
    let ca = OrgCa::from_pem(&text).map_err(|e| ConfigError::Mechanism {
        key: key.to_owned(),
        source: e.into(),
    })?;
    Ok(Some(match max {
        Some(n) => ca.max_intermediates(n),
        None => ca,
    }))
}

fn branches<'n>(names: &'n [String], built: &Built) -> Vec<(&'n str, Arc<dyn Verifier>)> {
    names
        .iter()
        .filter_map(|n| built.get(n).map(|v| (n.as_str(), v)))
        .collect()
}

fn build_jwt(key: &str, s: JwtSection, ctx: &Context) -> Result<JwtVerifier, ConfigError> {
    let field = |at: String, message: String| ConfigError::Field {
        key: format!("mechanisms.{key}.{at}"),
        message,
    };
    let mut b = JwtVerifier::builder();
    for (index, i) in s.issuers.into_iter().enumerate() {
        let mut spec = IssuerSpec::new(&i.issuer);
        spec = match (&i.jwks_uri, i.discovery) {
            (Some(uri), false) => spec.jwks_uri(uri),
            (None, true) => spec.discovery(),
            _ => {
                return Err(field(
                    format!("issuers[{index}]"),
                    "set exactly one of jwks_uri and discovery = true".into(),
                ));
            }
        };
        for a in &i.audiences {
            spec = spec.audience(a);
        }
        if let Some(names) = i.algorithms {
            let algs = names
                .iter()
                .map(|n| {
                    Algorithm::from_name(n).ok_or_else(|| {
                        field(
                            format!("issuers[{index}].algorithms"),
                            format!("unsupported algorithm {n:?}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            spec = spec.algorithms(algs);
        }
        b = b.issuer(spec);
    }
    for a in &s.audiences {
        b = b.audience(a);
    }
    if let Some(l) = s.leeway_seconds {
        b = b.leeway(Duration::from_secs(l));
    }
    for t in &s.require_type {
        b = b.require_type(t);
    }
    for c in &s.require_claims {
        b = b.require_claim(c);
    }
    if s.accept_scp_array {
        b = b.accept_scp_array();
    }
    if let Some(m) = s.max_token_bytes {
        b = b.max_token_bytes(m);
    }
    if let Some(c) = s.token_cache_capacity {
        b = b.token_cache_capacity(c);
    }
    if let Some(j) = s.jwks {
        let mut p = CachePolicy::default();
        let secs = Duration::from_secs;
        if let Some(v) = j.default_ttl_seconds {
            p = p.default_ttl(secs(v));
        }
        if let Some(v) = j.min_ttl_seconds {
            p = p.min_ttl(secs(v));
        }
        if let Some(v) = j.max_ttl_seconds {
            p = p.max_ttl(secs(v));
        }
        if let Some(v) = j.min_refresh_interval_seconds {
            p = p.min_refresh_interval(secs(v));
        }
        if let Some(v) = j.stale_if_error_seconds {
            p = p.stale_if_error(secs(v));
        }
        if let Some(v) = j.fetch_timeout_ms {
            p = p.fetch_timeout(Duration::from_millis(v));
        }
        if let Some(v) = j.max_response_bytes {
            p = p.max_response_bytes(v);
        }
        if let Some(v) = j.refresh_at_percent {
            p = p.refresh_at_percent(v);
        }
        b = b.cache_policy(p);
    }
    if s.require_certificate_binding {
        b = b.require_certificate_binding();
    }
    if let Some(c) = &ctx.client {
        b = b.http_client(c.clone());
    }
    if let Some(c) = &ctx.clock {
        b = b.clock(c.clone());
    }
    b.build().map_err(|e| ConfigError::Mechanism {
        key: key.to_owned(),
        source: e.into(),
    })
}

fn build_introspection(
    key: &str,
    s: IntrospectionSection,
    ctx: &Context,
) -> Result<IntrospectionVerifier, ConfigError> {
    let secret = match (&s.client_secret, &s.client_secret_env) {
        (Some(secret), None) => secret.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| ConfigError::Secret {
            key: key.to_owned(),
            var: var.clone(),
        })?,
        _ => {
            return Err(ConfigError::Field {
                key: format!("mechanisms.{key}"),
                message: "set exactly one of client_secret and client_secret_env".into(),
            });
        }
    };
    let auth = match s.client_auth {
        Some(AuthSetting::Post) => ClientAuth::Post,
        _ => ClientAuth::Basic,
    };
    let mut b = IntrospectionVerifier::builder(&s.endpoint).client(&s.client_id, &secret, auth);
    for a in &s.audiences {
        b = b.audience(a);
    }
    if let Some(i) = &s.issuer {
        b = b.issuer(i);
    }
    if let Some(v) = s.max_ttl_seconds {
        b = b.max_ttl(Duration::from_secs(v));
    }
    if let Some(v) = s.inactive_ttl_seconds {
        b = b.inactive_ttl(Duration::from_secs(v));
    }
    if let Some(v) = s.timeout_ms {
        b = b.timeout(Duration::from_millis(v));
    }
    if let Some(c) = &ctx.client {
        b = b.http_client(c.clone());
    }
    if let Some(c) = &ctx.clock {
        b = b.clock(c.clone());
    }
    b.build().map_err(|e| ConfigError::Mechanism {
        key: key.to_owned(),
        source: e.into(),
    })
}
