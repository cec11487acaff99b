//! The bearer token a request was admitted with, for calls the handler makes onward.

use std::sync::{Arc, OnceLock};

struct Inner {
    token: Box<str>,
    digest: OnceLock<[u8; 32]>,
}

/// The bearer token an admitted request carried, kept so that a handler can pass it to
/// an outbound call (forwarded as it is, or exchanged for one for the next audience).
///
/// The adapters put it in the request's extensions when a mechanism read the token;
/// it is reachable only there, has no `Debug` or `Display`, and never reaches an audit
/// event. Copy it onto an outgoing request's extensions and a propagation layer
/// (`dharma_sts::propagate`) takes it from there.
#[derive(Clone)]
#[expect(
    missing_debug_implementations,
    reason = "a credential: it must not be printed by accident"
)]
pub struct InboundToken(Arc<Inner>);

impl InboundToken {
    /// Wraps a token. Adapters and tests make these; handlers receive them.
    pub fn new(token: &str) -> Self {
        Self(Arc::new(Inner {
            token: token.into(),
            digest: OnceLock::new(),
        }))
    }

    /// The token.
    pub fn secret(&self) -> &str {
        &self.0.token
    }

    /// The token's SHA-256, computed once however many outbound calls need it (caches of
    /// exchanged tokens are keyed by it, so they never hold the inbound token itself).
    pub fn digest(&self) -> &[u8; 32] {
        self.0
            .digest
            .get_or_init(|| crate::mechanism::token::digest(&self.0.token))
    }
}
