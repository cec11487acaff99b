//! The token service: who may get which token, minting, and the HTTP answers.

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use dharma_core::{
    Authenticated, Claims, Identity, IdentityKind, Rejection, SecurityContext, TokenVerifier,
    audit::{AuditSink, TokenActivity, TokenEvent, TracingAuditSink},
    clock::{Clock, SystemClock},
    state::RevocationList,
};
use http::{HeaderValue, Response, StatusCode, header};

use crate::{
    error::{ErrorCode, OAuthError},
    mint::{self, IssuedToken, MintedClaims, TokenIds, json_response},
    narrow::{self, Actor},
    policy::ClientPolicy,
    request::{Grant, TokenRequest, TokenType, is_scope_token},
    signer::Signer,
};

/// A token service configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StsConfigError {
    /// The issuer is empty.
    #[error("the issuer is empty")]
    NoIssuer,
    /// Two policies name one client.
    #[error("client {0:?} has two policies")]
    DuplicateClient(String),
    /// A policy allows no audience or no grant, so it could never be used.
    #[error("the policy of client {0:?} allows no audience or no grant")]
    EmptyPolicy(String),
    /// A policy allows exchange but no subject-token verifier is configured.
    #[error("client {0:?} may exchange tokens, but no subject-token verifier is configured")]
    NoSubjectVerifier(String),
    /// A scope in a policy is not an RFC 6749 scope token.
    #[error("client {0:?}: {1:?} is not a scope token")]
    Scope(String, String),
    /// The signer drops replaced keys before the tokens they signed expire.
    #[error(
        "the signer's overlap ({overlap:?}) is shorter than the longest token lifetime ({lifetime:?})"
    )]
    OverlapTooShort {
        /// The signer's overlap.
        overlap: Duration,
        /// The longest lifetime.
        lifetime: Duration,
    },
    /// A lifetime or depth of zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

/// Builds a [`TokenService`].
#[derive(Debug)]
#[must_use]
pub struct TokenServiceBuilder {
    issuer: String,
    signer: Arc<Signer>,
    clients: Vec<ClientPolicy>,
    subject: Option<Arc<dyn TokenVerifier>>,
    actor: Option<Arc<dyn TokenVerifier>>,
    max_lifetime: Duration,
    max_delegation: usize,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    revocations: Option<Arc<dyn RevocationList>>,
}

impl TokenServiceBuilder {
    /// Adds a client's policy (repeatable, one per client).
    pub fn client(mut self, policy: ClientPolicy) -> Self {
        self.clients.push(policy);
        self
    }
    /// Verifies subject tokens with this mechanism: a JWT verifier, an x5c verifier, or
    /// introspection for opaque tokens. Its audience is the token service's.
    pub fn subject_tokens(mut self, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.subject = Some(verifier);
        self
    }
    /// Accepts actor tokens, verified with this mechanism. Without it, a request with an
    /// actor token is refused.
    pub fn actor_tokens(mut self, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.actor = Some(verifier);
        self
    }
    /// The longest lifetime of a token (default five minutes).
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }
    /// The most actors a delegation chain may name (default 3).
    pub fn max_delegation(mut self, depth: usize) -> Self {
        self.max_delegation = depth;
        self
    }
    /// Where token events go (default: `tracing`).
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = sink;
        self
    }
    /// The clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Revokes tokens (RFC 7009) into this list: the one the enforcers of the services
    /// that accept the service's tokens consult, shared between instances (e.g.
    /// `dharma-redis`). Without it the service revokes nothing and its routes have no
    /// revocation endpoint.
    pub fn revocations(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocations = Some(list);
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<TokenService, StsConfigError> {
        if self.issuer.is_empty() {
            return Err(StsConfigError::NoIssuer);
        }
        if self.max_lifetime.as_secs() == 0 {
            return Err(StsConfigError::Zero("max_lifetime"));
        }
        if self.max_delegation == 0 {
            return Err(StsConfigError::Zero("max_delegation"));
        }
        if self.signer.overlap_period() < self.max_lifetime {
            return Err(StsConfigError::OverlapTooShort {
                overlap: self.signer.overlap_period(),
                lifetime: self.max_lifetime,
            });
        }
        let mut clients = HashMap::new();
        for policy in self.clients {
            let name = policy.client.clone();
            if policy.audiences.is_empty() || !(policy.exchange || policy.client_credentials) {
                return Err(StsConfigError::EmptyPolicy(name));
            }
            if policy.exchange && self.subject.is_none() {
                return Err(StsConfigError::NoSubjectVerifier(name));
            }
            if let Some(bad) = policy.scopes.iter().find(|s| !is_scope_token(s)) {
                return Err(StsConfigError::Scope(name, bad.clone()));
            }
            if policy.max_lifetime.is_some_and(|l| l.as_secs() == 0) {
                return Err(StsConfigError::Zero("a client's max_lifetime"));
            }
            if clients.insert(name.clone(), policy).is_some() {
                return Err(StsConfigError::DuplicateClient(name));
            }
        }
        Ok(TokenService {
            issuer: self.issuer,
            signer: self.signer,
            clients,
            subject: self.subject,
            actor: self.actor,
            max_lifetime: self.max_lifetime,
            max_delegation: self.max_delegation,
            audit: self.audit,
            clock: self.clock,
            ids: TokenIds::new(),
            revocations: self.revocations,
        })
    }
}

/// A local secure token service: issues short-lived JWTs (`typ` `at+jwt`) to the
/// clients of its domain, for themselves (client credentials) or for the subject of a
/// token they present (RFC 8693 token exchange), and audits every issue and refusal.
///
/// The service is an endpoint of its domain: dharma authenticates the caller with the
/// domain's trust mechanism before a request reaches it, and the service reads the
/// client from the [`SecurityContext`]. Exchanges only narrow: one audience the
/// client's policy allows, the scopes asked for that the subject holds and the policy
/// allows, a lifetime within the subject token's and the configured maximum.
/// Delegation (an actor token) is recorded as a nested `act` chain, bounded in depth and
/// subject to the subject token's `may_act`.
pub struct TokenService {
    pub(crate) issuer: String,
    pub(crate) signer: Arc<Signer>,
    clients: HashMap<String, ClientPolicy>,
    subject: Option<Arc<dyn TokenVerifier>>,
    actor: Option<Arc<dyn TokenVerifier>>,
    max_lifetime: Duration,
    max_delegation: usize,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) clock: Arc<dyn Clock>,
    ids: TokenIds,
    pub(crate) revocations: Option<Arc<dyn RevocationList>>,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

/// The principal a verified token speaks for: its first authenticated identity.
fn principal(authenticated: &Authenticated) -> Option<&Identity> {
    authenticated
        .identities()
        .iter()
        .find(|i| i.is_authenticated())
}

fn token_refused(which: &'static str, rejection: &Rejection) -> OAuthError {
    match rejection {
        Rejection::Unavailable(_) => OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            format!("the {which} cannot be checked now"),
        ),
        _ => OAuthError::request(format!(
            "the {which} is not acceptable: {}",
            rejection.code()
        )),
    }
}

fn actor_of(identity: &Identity) -> Actor {
    Actor {
        sub: identity.subject().to_owned(),
        iss: identity.issuer().map(|i| i.as_str().to_owned()),
    }
}

/// The claims of the token itself: those of the first identity it names (an x5c
/// token's signing workload carries its certificate's claims instead).
fn token_claims(authenticated: &Authenticated) -> Option<&Claims> {
    authenticated
        .identities()
        .iter()
        .find(|i| i.token_id().is_some())
        .map(Identity::claims)
}

/// Seconds left before a verified token's `exp`, if it has one.
fn remaining(authenticated: &Authenticated, now: u64) -> Option<u64> {
    // As the verifiers read NumericDate: a non-negative number, fractions dropped.
    let exp = token_claims(authenticated)?.get("exp")?;
    let exp = exp.as_u64().or_else(|| {
        exp.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })?;
    Some(exp.saturating_sub(now))
}

/// The service's endpoints that take a form.
#[cfg(any(feature = "axum", feature = "actix"))]
#[derive(Debug, Clone, Copy)]
pub(crate) enum FormEndpoint {
    /// `/token`.
    Token,
    /// `/revoke`.
    Revocation,
}

/// What a grant decided, before it is signed.
struct Decided {
    subject: String,
    audience: String,
    scope: Vec<String>,
    lifetime: u64,
    chain: Vec<Actor>,
    issued_type: TokenType,
    activity: TokenActivity,
}

impl TokenService {
    /// Starts configuring a service that issues tokens as `issuer` (its `iss` claim;
    /// for a certificate signer, the identity the downstream verifier binds it to).
    pub fn builder(issuer: &str, signer: Arc<Signer>) -> TokenServiceBuilder {
        TokenServiceBuilder {
            issuer: issuer.to_owned(),
            signer,
            clients: Vec::new(),
            subject: None,
            actor: None,
            max_lifetime: Duration::from_secs(300),
            max_delegation: 3,
            audit: Arc::new(TracingAuditSink),
            clock: Arc::new(SystemClock),
            revocations: None,
        }
    }

    /// The signer (to rotate keys, or to publish the key set).
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Whether the service revokes tokens (it was given a revocation list).
    pub fn revokes(&self) -> bool {
        self.revocations.is_some()
    }

    /// Answers a token request as the token endpoint does: the caller as dharma
    /// admitted it, the request's `Content-Type` and form body. Every outcome is audited.
    pub async fn handle(
        &self,
        caller: &SecurityContext,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        match TokenRequest::parse(content_type, body) {
            Ok(request) => match self.grant(caller, &request).await {
                Ok(issued) => json_response(StatusCode::OK, issued.body()),
                Err(e) => json_response(e.code().status(), e.body()),
            },
            Err(e) => self.refuse(caller, &e),
        }
    }

    /// Answers a form posted to `endpoint` whose body was read (`None`: the body was
    /// unreadable or over [`MAX_BODY`](crate::MAX_BODY) bytes): what the routes call.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) async fn answer(
        &self,
        endpoint: FormEndpoint,
        caller: &SecurityContext,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response<Vec<u8>> {
        let Some(body) = body else {
            return self.refuse(
                caller,
                &OAuthError::request(format!(
                    "the body is unreadable or over {} bytes",
                    crate::MAX_BODY
                )),
            );
        };
        match endpoint {
            FormEndpoint::Token => self.handle(caller, content_type, body).await,
            FormEndpoint::Revocation => self.handle_revocation(caller, content_type, body).await,
        }
    }

    /// Refuses a request that could not be read, and audits the refusal.
    pub(crate) fn refuse(&self, caller: &SecurityContext, error: &OAuthError) -> Response<Vec<u8>> {
        let mut event = self.event(TokenActivity::Refused, error.code().as_str());
        event.client = caller.principal().map(|p| p.subject().into());
        event.detail = Some(error.description().to_owned());
        self.audit.record_token(&event);
        json_response(error.code().status(), error.body())
    }

    /// The JWK Set response of the signer's public keys.
    pub fn jwks_response(&self) -> Response<Vec<u8>> {
        let mut response =
            json_response(StatusCode::OK, self.signer.jwks().to_string().into_bytes());
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        response.headers_mut().remove(header::PRAGMA);
        response
    }

    /// The calling client, authenticated by dharma as a workload or a client application,
    /// that a `client_id` parameter (if sent) names; the event records it.
    pub(crate) fn client_of<'c>(
        &self,
        caller: &'c SecurityContext,
        client_id: Option<&str>,
        event: &mut TokenEvent,
    ) -> Result<&'c Identity, OAuthError> {
        let client = caller
            .principal()
            .filter(|p| matches!(p.kind(), IdentityKind::Workload | IdentityKind::ClientApp))
            .ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidClient,
                    "the caller is not an authenticated client",
                )
            })?;
        event.client = Some(client.subject().into());
        if client_id.is_some_and(|id| id != client.subject()) {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "client_id does not name the authenticated client",
            ));
        }
        Ok(client)
    }

    pub(crate) fn event(&self, activity: TokenActivity, reason: &'static str) -> TokenEvent {
        let mut event = TokenEvent::new(activity, reason, self.clock.now());
        event.issuer = Some(self.issuer.as_str().into());
        event
    }

    /// Grants (or refuses) a parsed request for `caller`, and audits the outcome.
    pub async fn grant(
        &self,
        caller: &SecurityContext,
        request: &TokenRequest,
    ) -> Result<IssuedToken, OAuthError> {
        let mut event = self.event(TokenActivity::Refused, "");
        event.audience = request.targets.iter().map(|t| t.as_str().into()).collect();
        let result = match self.decide(caller, request, &mut event).await {
            Ok(decided) => self.mint(caller, decided, &mut event),
            Err(e) => Err(e),
        };
        match &result {
            Ok(issued) => {
                event.token_id = Some(issued.token_id.as_str().into());
                event.scope = Some(issued.scope.join(" ").into());
            }
            Err(e) => {
                event.activity = TokenActivity::Refused;
                event.reason = e.code().as_str();
                event.detail = Some(e.description().to_owned());
                if event.scope.is_none() {
                    event.scope = request.scope.as_ref().map(|s| s.join(" ").into());
                }
            }
        }
        self.audit.record_token(&event);
        result
    }

    async fn decide(
        &self,
        caller: &SecurityContext,
        request: &TokenRequest,
        event: &mut TokenEvent,
    ) -> Result<Decided, OAuthError> {
        let client = self.client_of(caller, request.client_id.as_deref(), event)?;
        let policy = self.clients.get(client.subject()).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "no token policy for this client",
            )
        })?;
        let audience = match request.targets.as_slice() {
            [] => return Err(OAuthError::request("audience or resource is required")),
            [first, rest @ ..] if rest.iter().all(|t| t == first) => first,
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "a token is issued for one audience",
                ));
            }
        };
        if !policy.audiences.contains(audience) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the client may not obtain tokens for this audience",
            ));
        }
        let lifetime = policy
            .max_lifetime
            .map_or(self.max_lifetime, |l| l.min(self.max_lifetime))
            .as_secs();
        let unauthorized = |grant| {
            OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("the client may not use the {grant} grant"),
            )
        };
        match &request.grant {
            Grant::ClientCredentials => {
                if !policy.client_credentials {
                    return Err(unauthorized("client_credentials"));
                }
                event.subject = Some(client.subject().into());
                Ok(Decided {
                    subject: client.subject().to_owned(),
                    audience: audience.clone(),
                    scope: narrow::scopes(request.scope.as_deref(), None, &policy.scopes)?,
                    lifetime,
                    chain: Vec::new(),
                    issued_type: TokenType::AccessToken,
                    activity: TokenActivity::Issued,
                })
            }
            Grant::Exchange {
                subject_token,
                actor_token,
                requested_token_type,
                ..
            } => {
                if !policy.exchange {
                    return Err(unauthorized("token-exchange"));
                }
                let verifier = self
                    .subject
                    .as_ref()
                    .ok_or_else(|| unauthorized("token-exchange"))?;
                let verified = verifier
                    .verify_token(subject_token.secret())
                    .await
                    .map_err(|r| token_refused("subject_token", &r))?;
                let subject = principal(&verified).ok_or_else(|| {
                    OAuthError::request("the subject_token names no authenticated subject")
                })?;
                event.subject = Some(subject.subject().into());
                event.subject_issuer = subject.issuer().map(|i| i.as_str().into());
                event.subject_token_id = subject.token_id().map(Into::into);
                let now = self.clock.unix_seconds();
                let mut lifetime = lifetime;
                let mut chain = Vec::new();
                let actor_verified;
                let acting = match actor_token {
                    Some(token) => {
                        let verifier = self.actor.as_ref().ok_or_else(|| {
                            OAuthError::request("actor tokens are not accepted here")
                        })?;
                        actor_verified = verifier
                            .verify_token(token.secret())
                            .await
                            .map_err(|r| token_refused("actor_token", &r))?;
                        let actor = principal(&actor_verified).ok_or_else(|| {
                            OAuthError::request("the actor_token names no authenticated subject")
                        })?;
                        if let Some(left) = remaining(&actor_verified, now) {
                            lifetime = lifetime.min(left);
                        }
                        let actor = actor_of(actor);
                        chain.push(actor.clone());
                        actor
                    }
                    None => actor_of(client),
                };
                let claims = token_claims(&verified).unwrap_or(subject.claims());
                chain.extend(narrow::chain(claims.get("act"), self.max_delegation)?);
                if chain.len() > self.max_delegation {
                    return Err(narrow::too_deep(self.max_delegation));
                }
                event.actors = chain.iter().map(|a| a.sub.as_str().into()).collect();
                narrow::may_act(claims.get("may_act"), &acting)?;
                if let Some(left) = remaining(&verified, now) {
                    lifetime = lifetime.min(left);
                }
                if lifetime == 0 {
                    return Err(OAuthError::request(
                        "the subject or actor token has expired",
                    ));
                }
                let held: Vec<&str> = subject.claims().scopes().collect();
                Ok(Decided {
                    subject: subject.subject().to_owned(),
                    audience: audience.clone(),
                    scope: narrow::scopes(request.scope.as_deref(), Some(&held), &policy.scopes)?,
                    lifetime,
                    chain,
                    issued_type: requested_token_type.unwrap_or(TokenType::AccessToken),
                    activity: TokenActivity::Exchanged,
                })
            }
        }
    }

    fn mint(
        &self,
        caller: &SecurityContext,
        decided: Decided,
        event: &mut TokenEvent,
    ) -> Result<IssuedToken, OAuthError> {
        let token_id = self.ids.next()?;
        let now = self.clock.unix_seconds();
        let scope = (!decided.scope.is_empty()).then(|| decided.scope.join(" "));
        let claims = MintedClaims {
            iss: &self.issuer,
            sub: &decided.subject,
            aud: &decided.audience,
            iat: now,
            exp: now.saturating_add(decided.lifetime),
            jti: &token_id,
            client_id: caller.principal().map(Identity::subject),
            scope: scope.as_deref(),
            act: narrow::act_claim(&decided.chain),
        };
        let token = mint::sign(&self.signer, &claims)?;
        event.activity = decided.activity;
        event.reason = decided.activity.as_str();
        event.audience = vec![decided.audience.into()];
        Ok(IssuedToken {
            token,
            issued_type: decided.issued_type,
            expires_in: decided.lifetime,
            scope: decided.scope,
            token_id,
        })
    }
}
