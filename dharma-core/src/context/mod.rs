//! Who is calling: the identities a request carries, and the proof that dharma admitted it.
//!
//! A [`SecurityContext`] can only be made by the [`Enforcer`](crate::Enforcer); adapters put
//! it into the request extensions, so a handler that finds one knows the request passed.
//!
//! ```
//! use dharma_core::{Claims, Identity, IdentityKind};
//!
//! let claims = Claims::from_json(r#"{"sub":"alice","scope":"orders:read orders:write"}"#)?;
//! let user = Identity::new(IdentityKind::EndUser, "alice").with_claims(claims);
//! assert!(user.claims().has_scope("orders:write"));
//! # Ok::<(), serde_json::Error>(())
//! ```

pub(crate) mod claims;
mod inbound;

use std::sync::Arc;

pub use claims::Claims;
pub(crate) use claims::Confirmation;
pub use inbound::InboundToken;

use crate::names::{DomainName, Issuer, MechanismName};

/// What an identity stands for (the IAAA "several identities" of one request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityKind {
    /// A person using a client application.
    EndUser,
    /// An OAuth2 client application.
    ClientApp,
    /// A calling service or workload.
    Workload,
    /// The trust domain a request comes from.
    Domain,
}

impl IdentityKind {
    /// A short lowercase label for logs and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndUser => "end_user",
            Self::ClientApp => "client_app",
            Self::Workload => "workload",
            Self::Domain => "domain",
        }
    }
}

/// How much an identity may be relied on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Assurance {
    /// A mechanism authenticated it (credentials, a verified token, a trust relationship):
    /// it may authorize.
    Authenticated,
    /// It is identified but not authenticated (an API key names a client application):
    /// it authorizes only on endpoints that accept identified callers.
    Identified,
    /// It is carried for accountability (a propagated token read on a network-isolated
    /// endpoint); `verified` tells whether its signature checked out. It never authorizes.
    Accountability {
        /// Whether the token's signature and lifetime were verified.
        verified: bool,
    },
}

impl Assurance {
    /// A short lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::Identified => "identified",
            Self::Accountability { verified: true } => "accountability_verified",
            Self::Accountability { verified: false } => "accountability_unverified",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Authenticated => 0,
            Self::Identified => 1,
            Self::Accountability { .. } => 2,
        }
    }
}

/// One identity a request carries, with how far it may be relied on.
#[derive(Debug, Clone)]
pub struct Identity {
    kind: IdentityKind,
    subject: Arc<str>,
    mechanism: Option<MechanismName>,
    assurance: Assurance,
    /// What vouches for it; `None` for nothing at all.
    source: Option<Arc<Source>>,
}

/// Who vouched for an identity and what they said: the issuer, the claims, the token's
/// identifier and the tenant. The identities one token names (its end user and its
/// client) share one, so copying them copies two counted references, not eight.
#[derive(Debug, Clone, Default)]
pub(crate) struct Source {
    pub(crate) issuer: Option<Issuer>,
    pub(crate) claims: Claims,
    pub(crate) token_id: Option<Arc<str>>,
    pub(crate) tenant: Option<Arc<str>>,
}

impl Identity {
    /// An authenticated identity with no claims.
    pub fn new(kind: IdentityKind, subject: impl Into<Arc<str>>) -> Self {
        Self {
            kind,
            subject: subject.into(),
            mechanism: None,
            assurance: Assurance::Authenticated,
            source: None,
        }
    }

    /// An authenticated identity with a source it shares with others.
    pub(crate) fn vouched(kind: IdentityKind, subject: Arc<str>, source: Arc<Source>) -> Self {
        Self {
            source: Some(source),
            ..Self::new(kind, subject)
        }
    }

    /// The source, to change (copied first if it is shared).
    fn source_mut(&mut self) -> &mut Source {
        Arc::make_mut(self.source.get_or_insert_with(Arc::default))
    }

    /// Attaches claims.
    #[must_use]
    pub fn with_claims(mut self, claims: Claims) -> Self {
        self.source_mut().claims = claims;
        self
    }

    /// Records who vouched for the identity.
    #[must_use]
    pub fn with_issuer(mut self, issuer: Issuer) -> Self {
        self.source_mut().issuer = Some(issuer);
        self
    }

    /// Records a token identifier (the `jti`, or a digest of the token), never the token.
    #[must_use]
    pub fn with_token_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.source_mut().token_id = Some(id.into());
        self
    }

    /// Records the tenant of a multi-tenant issuer.
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.source_mut().tenant = Some(tenant.into());
        self
    }

    /// Marks the identity as identified only (see [`Assurance::Identified`]).
    #[must_use]
    pub fn identified_only(mut self) -> Self {
        self.assurance = Assurance::Identified;
        self
    }

    /// Marks the identity as carried for accountability only (see
    /// [`Assurance::Accountability`]). Requirements are never checked against it.
    #[must_use]
    pub fn for_accountability(mut self, verified: bool) -> Self {
        self.assurance = Assurance::Accountability { verified };
        self
    }

    /// Names the mechanism that authenticated the identity, unless one is named already
    /// (a branch of a combined mechanism names itself first).
    pub(crate) fn name_mechanism(&mut self, name: &str) {
        if self.mechanism.is_none() {
            self.mechanism = name.parse().ok();
        }
    }

    /// What the identity stands for.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }
    /// The subject (user id, client id, workload id, domain name).
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// The issuer that vouched for it, if any.
    pub fn issuer(&self) -> Option<&Issuer> {
        self.source.as_deref()?.issuer.as_ref()
    }
    /// Its claims or attributes.
    pub fn claims(&self) -> &Claims {
        self.source.as_deref().map_or(&Claims::NONE, |s| &s.claims)
    }
    /// The mechanism that authenticated it.
    pub fn mechanism(&self) -> Option<&MechanismName> {
        self.mechanism.as_ref()
    }
    /// How far it may be relied on.
    pub fn assurance(&self) -> Assurance {
        self.assurance
    }
    /// Whether a mechanism authenticated it.
    pub fn is_authenticated(&self) -> bool {
        self.assurance == Assurance::Authenticated
    }
    pub(crate) fn assurance_rank(&self) -> u8 {
        self.assurance.rank()
    }
    /// The token identifier (`jti` or digest), if the identity came from a token.
    pub fn token_id(&self) -> Option<&str> {
        self.source.as_deref()?.token_id.as_deref()
    }
    /// The tenant, for an identity from a multi-tenant issuer
    /// ([`IssuerSpec::template`](crate::mechanism::jwt::IssuerSpec::template)).
    pub fn tenant(&self) -> Option<&str> {
        self.source.as_deref()?.tenant.as_deref()
    }
    /// The subject, shared (audit records take it without copying).
    pub(crate) fn subject_arc(&self) -> &Arc<str> {
        &self.subject
    }
    /// The token id, shared.
    pub(crate) fn token_id_arc(&self) -> Option<&Arc<str>> {
        self.source.as_deref()?.token_id.as_ref()
    }
}

/// Which of the domain's mechanisms admitted the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lane {
    /// An interior endpoint, checked with the domain's trust mechanism.
    Trust,
    /// A boundary endpoint, checked with the domain's access mechanism.
    Access,
    /// A public endpoint: no mechanism ran.
    Public,
    /// No endpoint matched and the enforcer is configured to let such requests through.
    Unmatched,
    /// The endpoint's credentials are optional and the request carried none: admitted
    /// with no identity.
    Anonymous,
    /// A CORS preflight to a declared path, passed to the application (see
    /// [`TopologyBuilder::pass_preflights`](crate::model::TopologyBuilder::pass_preflights)).
    Preflight,
}

impl Lane {
    /// A short lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trust => "trust",
            Self::Access => "access",
            Self::Public => "public",
            Self::Unmatched => "unmatched",
            Self::Anonymous => "anonymous",
            Self::Preflight => "preflight",
        }
    }
}

/// Proof that the [`Enforcer`](crate::Enforcer) admitted a request, with every identity
/// it carries. Only dharma-core creates it.
#[derive(Debug, Clone)]
pub struct SecurityContext(Arc<ContextInner>);

#[derive(Debug)]
struct ContextInner {
    endpoint: Option<Arc<str>>,
    domain: Option<DomainName>,
    lane: Lane,
    identities: Vec<Identity>,
}

impl SecurityContext {
    pub(crate) fn new(
        endpoint: Option<Arc<str>>,
        domain: Option<DomainName>,
        lane: Lane,
        identities: Vec<Identity>,
    ) -> Self {
        Self(Arc::new(ContextInner {
            endpoint,
            domain,
            lane,
            identities,
        }))
    }

    /// The endpoint that matched (its name), if any.
    pub fn endpoint(&self) -> Option<&str> {
        self.0.endpoint.as_deref()
    }
    /// The trust domain of the endpoint.
    pub fn domain(&self) -> Option<&DomainName> {
        self.0.domain.as_ref()
    }
    /// How the request was admitted.
    pub fn lane(&self) -> Lane {
        self.0.lane
    }
    /// Every identity: authenticated first, then identified, then accountability-only.
    pub fn identities(&self) -> &[Identity] {
        &self.0.identities
    }
    /// The principal the endpoint's requirements were checked against: the first
    /// authenticated identity, or on endpoints that accept identified callers, the first
    /// identified one. Never an accountability-only identity.
    pub fn principal(&self) -> Option<&Identity> {
        principal(&self.0.identities, true)
    }
    /// The principal's tenant, when its issuer is multi-tenant.
    pub fn tenant(&self) -> Option<&str> {
        self.principal().and_then(Identity::tenant)
    }
    /// The first identity of a kind that a mechanism authenticated or identified. Never an
    /// accountability-only identity (an unverified or propagated claim): those are read
    /// with [`recorded`](Self::recorded).
    pub fn identity(&self, kind: IdentityKind) -> Option<&Identity> {
        self.0
            .identities
            .iter()
            .find(|i| i.kind() == kind && !matches!(i.assurance, Assurance::Accountability { .. }))
    }
    /// The first accountability-only identity of a kind: who a propagated token or a
    /// workload's token says is behind the request, recorded and not relied on.
    pub fn recorded(&self, kind: IdentityKind) -> Option<&Identity> {
        self.0
            .identities
            .iter()
            .find(|i| i.kind() == kind && matches!(i.assurance, Assurance::Accountability { .. }))
    }
    /// The principal's claims (empty when there is no principal).
    pub fn claims(&self) -> &Claims {
        static EMPTY: std::sync::OnceLock<Claims> = std::sync::OnceLock::new();
        match self.principal() {
            Some(p) => p.claims(),
            None => EMPTY.get_or_init(Claims::default),
        }
    }
}

/// The first authenticated identity, else (when allowed) the first identified one.
pub(crate) fn principal(identities: &[Identity], allow_identified: bool) -> Option<&Identity> {
    identities
        .iter()
        .find(|i| i.is_authenticated())
        .or_else(|| {
            identities
                .iter()
                .find(|i| allow_identified && i.assurance == Assurance::Identified)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identities that share a source read the same issuer, claims, token id and tenant;
    /// changing one's copies the source first, so the other keeps what it had.
    #[test]
    fn a_shared_source_is_copied_before_it_changes() {
        let issuer: Issuer = "https://idp.example".parse().unwrap();
        let source = Arc::new(Source {
            issuer: Some(issuer.clone()),
            claims: Claims::from_json(r#"{"scope":"a"}"#).unwrap(),
            token_id: Some("jti-1".into()),
            tenant: Some("t1".into()),
        });
        let user = Identity::vouched(IdentityKind::EndUser, "alice".into(), source.clone());
        let client = Identity::vouched(IdentityKind::ClientApp, "web".into(), source);
        for id in [&user, &client] {
            assert_eq!(id.issuer(), Some(&issuer));
            assert!(id.claims().has_scope("a"));
            assert_eq!((id.token_id(), id.tenant()), (Some("jti-1"), Some("t1")));
        }
        let client = client
            .with_tenant("t2")
            .with_claims(Claims::from_json(r#"{"scope":"b"}"#).unwrap());
        assert_eq!((user.tenant(), client.tenant()), (Some("t1"), Some("t2")));
        assert!(user.claims().has_scope("a") && !user.claims().has_scope("b"));
        assert!(client.claims().has_scope("b"));
        assert_eq!(client.token_id(), Some("jti-1"));

        let bare = Identity::new(IdentityKind::Workload, "svc");
        assert_eq!(
            (bare.issuer(), bare.token_id(), bare.tenant()),
            (None, None, None)
        );
        assert_eq!(bare.claims().scopes().count(), 0);
    }

    #[test]
    fn principal_skips_accountability_identities() {
        let ctx = SecurityContext::new(
            None,
            None,
            Lane::Trust,
            vec![
                Identity::new(IdentityKind::EndUser, "mallory").for_accountability(true),
                Identity::new(IdentityKind::ClientApp, "app").identified_only(),
                Identity::new(IdentityKind::Workload, "svc"),
            ],
        );
        assert_eq!(ctx.principal().unwrap().subject(), "svc");
        // The issue's reproduction: asking for the end user gave the unverified one.
        assert!(ctx.identity(IdentityKind::EndUser).is_none());
        assert_eq!(
            ctx.recorded(IdentityKind::EndUser).unwrap().subject(),
            "mallory"
        );
        assert_eq!(
            ctx.identity(IdentityKind::ClientApp).unwrap().subject(),
            "app"
        );
    }
}
