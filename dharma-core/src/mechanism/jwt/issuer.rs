//! Trusted issuers: one `iss` each, or a template for the tenants of one multi-tenant
//! authorization server that signs every tenant's tokens with one key set.

use std::sync::Arc;

use crate::{
    jose::{Algorithm, AlgorithmSet, VerifyingKey},
    jwks::KeyStore,
    names::{Audience, Issuer},
};

/// The placeholder of an issuer template.
const TENANT: &str = "{tenant}";

#[derive(Debug, Clone)]
pub(super) enum SourceSpec {
    None,
    JwksUri(String),
    Discovery,
    Static(Vec<VerifyingKey>),
}

/// One trusted issuer: where its keys are, which audiences it may address, which
/// algorithms it may use.
///
/// ```
/// use dharma_core::mechanism::jwt::IssuerSpec;
///
/// // One issuer.
/// let idp = IssuerSpec::new("https://idp.example").discovery().audience("orders-api");
/// // Every tenant of a multi-tenant server, one key set for all of them; only these two.
/// let tenants = IssuerSpec::template("https://login.example/{tenant}/v2.0")
///     .jwks_uri("https://login.example/common/keys")
///     .tenants(["acme", "globex"])
///     .audience("orders-api");
/// # let _ = (idp, tenants);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct IssuerSpec {
    pub(super) issuer: String,
    pub(super) template: bool,
    pub(super) tenants: Vec<String>,
    pub(super) source: SourceSpec,
    pub(super) audiences: Vec<String>,
    pub(super) algorithms: Option<AlgorithmSet>,
}

impl IssuerSpec {
    /// An issuer, compared byte for byte with the `iss` claim.
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            template: false,
            tenants: Vec::new(),
            source: SourceSpec::None,
            audiences: Vec::new(),
            algorithms: None,
        }
    }
    /// The issuers of a multi-tenant authorization server: `template` holds `{tenant}`
    /// once, and `iss` matches when it is the template with a tenant in its place (one
    /// to 128 letters, digits, `.`, `_` or `-`). The tenant reaches the security context
    /// ([`Identity::tenant`](crate::Identity::tenant)). Keys come from one JWK Set URL
    /// ([`jwks_uri`](Self::jwks_uri)) for every tenant; discovery, which is per issuer,
    /// is refused.
    pub fn template(template: &str) -> Self {
        Self {
            template: true,
            ..Self::new(template)
        }
    }
    /// Accepts only these tenants of a [`template`](Self::template) (repeatable; by
    /// default every tenant whose tokens the shared key set verifies).
    pub fn tenants<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, tenants: I) -> Self {
        self.tenants
            .extend(tenants.into_iter().map(|t| t.as_ref().to_owned()));
        self
    }
    /// Keys from a JWK Set URL.
    pub fn jwks_uri(mut self, url: &str) -> Self {
        self.source = SourceSpec::JwksUri(url.to_owned());
        self
    }
    /// Keys through OIDC discovery at the issuer URL.
    pub fn discovery(mut self) -> Self {
        self.source = SourceSpec::Discovery;
        self
    }
    /// A fixed set of keys, never refreshed.
    pub fn keys(mut self, keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        self.source = SourceSpec::Static(keys.into_iter().collect());
        self
    }
    /// Accepts tokens addressed to this audience (repeatable).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audiences.push(audience.to_owned());
        self
    }
    /// Restricts the algorithms this issuer may use (default: all supported).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }
}

/// How an entry recognises its tokens' `iss`.
#[derive(Debug)]
pub(super) enum IssuerMatch {
    Exact(Issuer),
    Template {
        prefix: String,
        suffix: String,
        tenants: Vec<Arc<str>>,
    },
}

/// An issuer template that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TemplateError {
    /// `{tenant}` is missing or there twice.
    Placeholder,
    /// A listed tenant has characters a tenant cannot have.
    Tenant,
}

impl IssuerMatch {
    pub(super) fn template(template: &str, tenants: &[String]) -> Result<Self, TemplateError> {
        let (prefix, suffix) = template
            .split_once(TENANT)
            .filter(|(_, s)| !s.contains(TENANT))
            .ok_or(TemplateError::Placeholder)?;
        if tenants.iter().any(|t| !is_tenant(t)) {
            return Err(TemplateError::Tenant);
        }
        Ok(Self::Template {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            tenants: tenants.iter().map(|t| Arc::from(t.as_str())).collect(),
        })
    }

    /// Whether `iss` is this entry's: `Some(None)` for an exact issuer, `Some(tenant)`
    /// for a template.
    pub(super) fn matches<'i>(&self, iss: &'i str) -> Option<Option<&'i str>> {
        match self {
            Self::Exact(issuer) => (issuer.as_str() == iss).then_some(None),
            Self::Template {
                prefix,
                suffix,
                tenants,
            } => {
                let tenant = iss
                    .strip_prefix(prefix.as_str())?
                    .strip_suffix(suffix.as_str())?;
                let listed = tenants.is_empty() || tenants.iter().any(|t| &**t == tenant);
                (is_tenant(tenant) && listed).then_some(Some(tenant))
            }
        }
    }

    /// Whether two entries could claim the same `iss`.
    pub(super) fn same_as(&self, other: &IssuerMatch) -> bool {
        match (self, other) {
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Exact(a), t @ Self::Template { .. })
            | (t @ Self::Template { .. }, Self::Exact(a)) => t.matches(a.as_str()).is_some(),
            (
                Self::Template {
                    prefix: p1,
                    suffix: s1,
                    ..
                },
                Self::Template {
                    prefix: p2,
                    suffix: s2,
                    ..
                },
            ) => {
                (p1.starts_with(p2.as_str()) || p2.starts_with(p1.as_str()))
                    && (s1.ends_with(s2.as_str()) || s2.ends_with(s1.as_str()))
            }
        }
    }
}

fn is_tenant(t: &str) -> bool {
    (1..=128).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[derive(Debug)]
pub(super) struct IssuerEntry {
    /// The issuer, or the template, as configured (key sets are named by it).
    pub(super) issuer: Issuer,
    pub(super) matcher: IssuerMatch,
    pub(super) audiences: Vec<Audience>,
    pub(super) algorithms: AlgorithmSet,
    pub(super) store: Arc<KeyStore>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_tenant_segment() {
        let t = IssuerMatch::template("https://login.example/{tenant}/v2.0", &[]).unwrap();
        assert_eq!(
            t.matches("https://login.example/acme/v2.0"),
            Some(Some("acme"))
        );
        for other in [
            "https://login.example//v2.0",
            "https://login.example/a/b/v2.0",
            "https://login.example/acme/v2.0/",
            "https://login.example/ac%2Fme/v2.0",
            "https://evil.example/acme/v2.0",
        ] {
            assert_eq!(t.matches(other), None, "{other}");
        }
        let listed =
            IssuerMatch::template("https://login.example/{tenant}/v2.0", &["acme".into()]).unwrap();
        assert!(listed.matches("https://login.example/acme/v2.0").is_some());
        assert!(
            listed
                .matches("https://login.example/globex/v2.0")
                .is_none()
        );
        assert_eq!(
            IssuerMatch::template("https://login.example/v2.0", &[]).unwrap_err(),
            TemplateError::Placeholder
        );
        assert_eq!(
            IssuerMatch::template("https://{tenant}/{tenant}", &[]).unwrap_err(),
            TemplateError::Placeholder
        );
        assert_eq!(
            IssuerMatch::template("https://x/{tenant}", &["a/b".into()]).unwrap_err(),
            TemplateError::Tenant
        );
        let exact = IssuerMatch::Exact("https://login.example/acme/v2.0".parse().unwrap());
        assert!(t.same_as(&exact) && exact.same_as(&t));
    }
}
