//! Every error of the crate that reaches a decision, in one leaf module: why a request
//! was refused ([`Rejection`]), and the errors of tokens, key sources, certificates and
//! requests it carries. Nothing here renders a refusal (see [`reject`](crate::reject)),
//! and nothing here depends on another module of the crate but [`names`](crate::names).

mod request;
mod source;
mod token;

use std::sync::Arc;

pub use request::{CertificateError, CredentialsError, PathError};
pub use source::{HttpError, IntrospectionError, JwkSetError, KeySourceError};
pub use token::TokenError;

use crate::names::Scope;

/// What kind of refusal a [`Rejection`] is. HTTP statuses, `WWW-Authenticate`
/// challenges and gRPC codes are chosen from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    /// No credentials, or none the endpoint accepts as its principal (401).
    Unauthenticated,
    /// Credentials were presented and are not valid (401, `invalid_token`).
    InvalidCredentials,
    /// The request is malformed (400, `invalid_request`).
    Malformed,
    /// The principal lacks a scope the endpoint requires (403, `insufficient_scope`).
    InsufficientScope,
    /// The caller is authenticated, or identified by its transport, and refused (403).
    Forbidden,
    /// No endpoint is declared for the request (404).
    NotFound,
    /// The path is declared, the method is not (405).
    MethodNotAllowed,
    /// dharma and the framework's router disagree (500).
    Internal,
    /// What a mechanism depends on is unavailable (503).
    Unavailable,
}

/// A refusal, with the reason kept for the audit trail.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The request carries no credentials the mechanism understands.
    #[error("no credentials")]
    MissingCredentials,
    /// The request is malformed (repeated or unreadable credentials, a suspicious path).
    #[error("malformed request: {0}")]
    MalformedRequest(#[from] MalformedRequest),
    /// The credentials were presented and are not valid.
    #[error("invalid token: {0}")]
    InvalidToken(#[from] TokenError),
    /// The principal lacks scopes the endpoint requires.
    #[error("insufficient scope: requires {}", scope_list(required))]
    InsufficientScope {
        /// Every scope the endpoint requires.
        required: Vec<Scope>,
    },
    /// No identity the endpoint accepts as its principal: nothing authenticated (an API
    /// key alone only identifies).
    #[error("no authenticated principal")]
    NotAuthenticated,
    /// A client certificate (mutual TLS) or a token's `x5c` chain is refused. Answered
    /// `403` without a challenge: another bearer token would not help.
    #[error("certificate refused: {0}")]
    Certificate(CertificateError),
    /// The principal is authenticated but a policy rule refuses it.
    #[error("forbidden: {0}")]
    Forbidden(#[from] ForbiddenReason),
    /// The request matches no declared endpoint.
    #[error("no endpoint matches the request")]
    NoEndpoint,
    /// Endpoints are declared for the path but none for the method. Answered `405` with
    /// `Allow`.
    #[error("method not declared for the path (allowed: {allow})")]
    MethodNotAllowed {
        /// The declared methods, comma-separated.
        allow: Arc<str>,
    },
    /// The framework's router chose a route that leads to another declared path than the
    /// request's own: dharma and the router disagree on which handler runs, so the request
    /// is refused (`500`) and the audit trail names both. Declare an endpoint for the route,
    /// or register routes so that the most specific one matches first.
    #[error("the router chose route {route:?}, which is not the declared endpoint for the path")]
    RouteMismatch {
        /// The route the router reported.
        route: String,
    },
    /// A mechanism could not decide because what it depends on is unavailable.
    #[error("unavailable: {0}")]
    Unavailable(#[from] UnavailableError),
    /// A combined mechanism refused: the rejection told to the client, and what every
    /// branch that ran said.
    #[error("{chosen} (branches: {})", outcome_list(outcomes))]
    Branches {
        /// The rejection that answers the request.
        chosen: Box<Rejection>,
        /// Each branch that ran, in order.
        outcomes: Vec<BranchOutcome>,
    },
}

fn outcome_list(outcomes: &[BranchOutcome]) -> String {
    outcomes
        .iter()
        .map(|o| format!("{}: {}", o.mechanism, o.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a request is malformed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedRequest {
    /// The `Authorization` header cannot be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The path is not in normal form.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A method the core cannot represent.
    #[error("unsupported method")]
    Method,
    /// A trusted proxy sent a `Forwarded` or `X-Forwarded-For` hop that is not an address.
    #[error("forwarded hop {0:?} is not an IP address")]
    Forwarded(String),
}

/// Why an authenticated principal is refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ForbiddenReason {
    /// The request does not come from an allowed network (network isolation).
    #[error("client address {0} is not in an allowed network")]
    UntrustedNetwork(String),
    /// A mechanism needs the transport peer and the adapter did not give it.
    #[error("the transport peer is unknown")]
    UnknownPeer,
    /// The peer is a trusted proxy that named no client beyond the trusted proxies.
    #[error("a trusted proxy forwarded no client address")]
    NoForwardedClient,
    /// A claim the endpoint requires is missing or has another value.
    #[error("claim {claim:?} does not meet the endpoint's requirement")]
    Claim {
        /// The claim's name.
        claim: Arc<str>,
    },
    /// A rule of the endpoint does not hold; `code` says which kind (`role_missing`,
    /// `identity_kind_refused`, `domain_refused`, `lane_refused`, `rule_failed`).
    #[error("the endpoint's rule does not hold ({code})")]
    Rule {
        /// The audit code.
        code: &'static str,
    },
    /// An authorizer refused the request, saying why (for the audit trail only).
    #[error("refused by an authorizer: {0}")]
    Authorizer(String),
    /// The endpoint admits tokens once, and the principal was not established by a token.
    #[error("the endpoint admits a token once, and the principal presented none")]
    OneTimeWithoutToken,
}

/// What a mechanism depended on and could not reach.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum UnavailableError {
    /// No usable signing keys: the key source failed and no cached keys are left.
    #[error(transparent)]
    KeySource(#[from] KeySourceError),
    /// The introspection endpoint failed, timed out or answered nonsense.
    #[error(transparent)]
    Introspection(#[from] IntrospectionError),
    /// The replay guard or the revocation list cannot answer, and the endpoint fails
    /// closed.
    #[error(transparent)]
    TokenState(#[from] StoreError),
    /// The audit sink cannot record the decision, and it is configured to refuse
    /// requests until it can.
    #[error(transparent)]
    Audit(#[from] AuditUnavailable),
}

/// Why a token store cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is full: it refuses to forget what it holds to make room.
    #[error("the token store is full")]
    Full,
    /// The store cannot be reached, or answered nonsense.
    #[error("the token store is unavailable: {0}")]
    Unavailable(String),
    /// The store's copy of shared state is older than it may be.
    #[error("the token store's copy is stale (last synchronized {0:?} ago)")]
    Stale(std::time::Duration),
}

/// Why an audit sink cannot take an event now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditUnavailable {
    /// Its queue is full: the writer has not caught up.
    #[error("the audit queue is full")]
    QueueFull,
    /// Its writer cannot write (the file cannot be opened or written, or the writer stopped).
    #[error("the audit writer is failing")]
    WriterFailed,
}

impl Rejection {
    /// A combined mechanism's refusal.
    pub fn branches(chosen: Rejection, outcomes: Vec<BranchOutcome>) -> Self {
        Self::Branches {
            chosen: Box::new(chosen.primary().clone()),
            outcomes,
        }
    }

    /// The rejection that answers the request (inside a combined mechanism's refusal).
    pub fn primary(&self) -> &Rejection {
        match self {
            Self::Branches { chosen, .. } => chosen.primary(),
            other => other,
        }
    }

    /// What the branches of a combined mechanism said (empty for a single mechanism).
    pub fn branch_outcomes(&self) -> &[BranchOutcome] {
        match self {
            Self::Branches { outcomes, .. } => outcomes,
            _ => &[],
        }
    }

    /// Whether the request simply carried no credentials for the mechanism.
    pub fn is_missing_credentials(&self) -> bool {
        matches!(self.primary(), Self::MissingCredentials)
    }

    /// A stable code for audit records (`missing_credentials`, `token_expired`, ...).
    pub fn code(&self) -> &'static str {
        match self.primary() {
            Self::MissingCredentials => "missing_credentials",
            Self::MalformedRequest(MalformedRequest::Credentials(_)) => "malformed_credentials",
            Self::MalformedRequest(MalformedRequest::Path(_)) => "malformed_path",
            Self::MalformedRequest(MalformedRequest::Forwarded(_)) => "malformed_forwarded",
            Self::MalformedRequest(MalformedRequest::Method) => "malformed_method",
            Self::InvalidToken(e) => e.code(),
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::Forbidden(ForbiddenReason::Claim { .. }) => "claim_requirement_failed",
            Self::Forbidden(ForbiddenReason::UntrustedNetwork(_)) => "untrusted_network",
            Self::Forbidden(ForbiddenReason::UnknownPeer) => "unknown_peer",
            Self::Forbidden(ForbiddenReason::NoForwardedClient) => "forwarded_client_unknown",
            Self::Forbidden(ForbiddenReason::OneTimeWithoutToken) => "one_time_token_required",
            Self::Forbidden(ForbiddenReason::Rule { code }) => code,
            Self::Forbidden(ForbiddenReason::Authorizer(_)) => "authorizer_refused",
            Self::NotAuthenticated => "no_authenticated_principal",
            Self::Certificate(e) => e.code(),
            Self::NoEndpoint => "no_endpoint",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::RouteMismatch { .. } => "route_mismatch",
            Self::Unavailable(UnavailableError::KeySource(_)) => "key_source_unavailable",
            Self::Unavailable(UnavailableError::Introspection(_)) => "introspection_unavailable",
            Self::Unavailable(UnavailableError::Audit(_)) => "audit_unavailable",
            Self::Unavailable(UnavailableError::TokenState(_)) => "token_state_unavailable",
            Self::Branches { .. } => "branches",
        }
    }

    /// What kind of refusal it is: what HTTP and gRPC answer with.
    pub fn category(&self) -> Category {
        match self.primary() {
            Self::MissingCredentials | Self::NotAuthenticated | Self::Branches { .. } => {
                Category::Unauthenticated
            }
            Self::InvalidToken(_) => Category::InvalidCredentials,
            Self::MalformedRequest(_) => Category::Malformed,
            Self::InsufficientScope { .. } => Category::InsufficientScope,
            Self::Forbidden(_) | Self::Certificate(_) => Category::Forbidden,
            Self::NoEndpoint => Category::NotFound,
            Self::MethodNotAllowed { .. } => Category::MethodNotAllowed,
            Self::RouteMismatch { .. } => Category::Internal,
            Self::Unavailable(_) => Category::Unavailable,
        }
    }
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one branch of a combined mechanism said, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BranchOutcome {
    /// The branch's name.
    pub mechanism: Arc<str>,
    /// `allowed`, or the branch's rejection code.
    pub reason: &'static str,
}

impl BranchOutcome {
    pub(crate) fn new(mechanism: &Arc<str>, reason: &'static str) -> Self {
        Self {
            mechanism: mechanism.clone(),
            reason,
        }
    }
}
