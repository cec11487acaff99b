//! `kind = "jwt"`: the settings of a JWT mechanism in the configuration file.

use std::{sync::Arc, time::Duration};

use serde::Deserialize;

use super::{IssuerSpec, JwtVerifier};
use crate::{
    jose::Algorithm,
    jwks::CachePolicy,
    mechanism::{BuildContext, Instance, KindError, MechanismKind},
    transport::{HttpClient, Offline},
};

/// Builds [`JwtVerifier`]s.
pub(crate) struct JwtKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JwtSettings {
    issuers: Vec<IssuerSettings>,
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
    jwks: Option<JwksSettings>,
    #[serde(default)]
    require_certificate_binding: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerSettings {
    issuer: Option<String>,
    issuer_template: Option<String>,
    #[serde(default)]
    tenants: Vec<String>,
    jwks_uri: Option<String>,
    #[serde(default)]
    discovery: bool,
    #[serde(default)]
    audiences: Vec<String>,
    algorithms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwksSettings {
    default_ttl_seconds: Option<u64>,
    min_ttl_seconds: Option<u64>,
    max_ttl_seconds: Option<u64>,
    min_refresh_interval_seconds: Option<u64>,
    stale_if_error_seconds: Option<u64>,
    fetch_timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
    refresh_at_percent: Option<u8>,
}

impl JwksSettings {
    fn policy(&self) -> CachePolicy {
        let secs = Duration::from_secs;
        let mut p = CachePolicy::default();
        if let Some(v) = self.default_ttl_seconds {
            p = p.default_ttl(secs(v));
        }
        if let Some(v) = self.min_ttl_seconds {
            p = p.min_ttl(secs(v));
        }
        if let Some(v) = self.max_ttl_seconds {
            p = p.max_ttl(secs(v));
        }
        if let Some(v) = self.min_refresh_interval_seconds {
            p = p.min_refresh_interval(secs(v));
        }
        if let Some(v) = self.stale_if_error_seconds {
            p = p.stale_if_error(secs(v));
        }
        if let Some(v) = self.fetch_timeout_ms {
            p = p.fetch_timeout(Duration::from_millis(v));
        }
        if let Some(v) = self.max_response_bytes {
            p = p.max_response_bytes(v);
        }
        if let Some(v) = self.refresh_at_percent {
            p = p.refresh_at_percent(v);
        }
        p
    }
}

impl JwtSettings {
    /// The verifier these settings describe, fetching through `client`.
    fn verifier(
        &self,
        client: Option<Arc<dyn HttpClient>>,
        ctx: Option<&BuildContext<'_>>,
    ) -> Result<JwtVerifier, KindError> {
        let mut b = JwtVerifier::builder();
        for (index, i) in self.issuers.iter().enumerate() {
            let mut spec = match (&i.issuer, &i.issuer_template) {
                (Some(issuer), None) if i.tenants.is_empty() => IssuerSpec::new(issuer),
                (None, Some(template)) => IssuerSpec::template(template).tenants(&i.tenants),
                _ => {
                    return Err(KindError::setting(
                        &format!("issuers[{index}]"),
                        "set exactly one of issuer and issuer_template (tenants go with a template)",
                    ));
                }
            };
            spec = match (&i.jwks_uri, i.discovery) {
                (Some(uri), false) => spec.jwks_uri(uri),
                (None, true) => spec.discovery(),
                _ => {
                    return Err(KindError::setting(
                        &format!("issuers[{index}]"),
                        "set exactly one of jwks_uri and discovery = true",
                    ));
                }
            };
            for a in &i.audiences {
                spec = spec.audience(a);
            }
            if let Some(names) = &i.algorithms {
                let algs = names
                    .iter()
                    .map(|n| {
                        Algorithm::from_name(n).ok_or_else(|| {
                            KindError::setting(
                                &format!("issuers[{index}].algorithms"),
                                format!("unsupported algorithm {n:?}"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                spec = spec.algorithms(algs);
            }
            b = b.issuer(spec);
        }
        for a in &self.audiences {
            b = b.audience(a);
        }
        if let Some(l) = self.leeway_seconds {
            b = b.leeway(Duration::from_secs(l));
        }
        for t in &self.require_type {
            b = b.require_type(t);
        }
        for c in &self.require_claims {
            b = b.require_claim(c);
        }
        if self.accept_scp_array {
            b = b.accept_scp_array();
        }
        if let Some(m) = self.max_token_bytes {
            b = b.max_token_bytes(m);
        }
        if let Some(c) = self.token_cache_capacity {
            b = b.token_cache_capacity(c);
        }
        if let Some(j) = &self.jwks {
            b = b.cache_policy(j.policy());
        }
        if self.require_certificate_binding {
            b = b.require_certificate_binding();
        }
        if let Some(c) = client {
            b = b.http_client(c);
        }
        if let Some(c) = ctx.and_then(BuildContext::clock) {
            b = b.clock(c);
        }
        b.build().map_err(KindError::invalid)
    }
}

impl MechanismKind for JwtKind {
    type Settings = JwtSettings;

    fn check(&self, settings: &JwtSettings) -> Result<(), KindError> {
        settings.verifier(Some(Arc::new(Offline)), None).map(drop)
    }

    fn build(&self, settings: &JwtSettings, ctx: &BuildContext<'_>) -> Result<Instance, KindError> {
        settings
            .verifier(ctx.http_client(), Some(ctx))
            .map(Instance::new)
    }
}
