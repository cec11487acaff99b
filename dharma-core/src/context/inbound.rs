//! The bearer token a request was admitted with, for calls the handler makes onward.

use std::sync::{Arc, OnceLock};

use http::HeaderValue;

/// Where the token's text is: in the request's own `Authorization` value (shared, not
/// copied), or owned.
enum Text {
    Header(HeaderValue, usize),
    Owned(Box<str>),
}

struct Inner {
    text: Text,
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
        Self::with(Text::Owned(token.into()))
    }

    /// The token at `start` of an `Authorization` value (`Bearer <token>`), sharing the
    /// value's bytes.
    pub(crate) fn from_header(value: HeaderValue, start: usize) -> Self {
        Self::with(Text::Header(value, start))
    }

    fn with(text: Text) -> Self {
        Self(Arc::new(Inner {
            text,
            digest: OnceLock::new(),
        }))
    }

    /// The token.
    pub fn secret(&self) -> &str {
        match &self.0.text {
            // The value was checked as a bearer token (visible ASCII) before it got here.
            Text::Header(value, start) => value
                .to_str()
                .ok()
                .and_then(|v| v.get(*start..))
                .unwrap_or_default(),
            Text::Owned(token) => token,
        }
    }

    /// The token's SHA-256, computed once however many outbound calls need it (caches of
    /// exchanged tokens are keyed by it, so they never hold the inbound token itself).
    pub fn digest(&self) -> &[u8; 32] {
        self.0
            .digest
            .get_or_init(|| crate::mechanism::token::digest(self.secret()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_in_its_header_reads_as_itself() {
        let token = "abc.def-_~+/==";
        let value = HeaderValue::from_static("Bearer   abc.def-_~+/==");
        let shared = InboundToken::from_header(value.clone(), value.len() - token.len());
        assert_eq!(shared.secret(), token);
        assert_eq!(shared.digest(), InboundToken::new(token).digest());
        assert_eq!(InboundToken::from_header(value, 99).secret(), "");
    }
}
