//! The body of a denial: dharma's OAuth-style JSON by default, RFC 9457 problem details,
//! or the application's own shape. Status, `WWW-Authenticate` and `Allow` stay dharma's
//! whatever renders the body.

use std::{fmt, sync::Arc};

use http::HeaderValue;

use super::Denial;

/// A rendered denial body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DenialBody {
    /// The `Content-Type`.
    pub content_type: HeaderValue,
    /// The body.
    pub body: String,
}

impl DenialBody {
    /// A body of `content_type`.
    pub fn new(content_type: HeaderValue, body: String) -> Self {
        Self { content_type, body }
    }

    /// A JSON body (`application/json`).
    pub fn json(body: &serde_json::Value) -> Self {
        Self::new(
            HeaderValue::from_static("application/json"),
            body.to_string(),
        )
    }
}

/// Renders the bodies of denials, for every adapter at once (see
/// [`EnforcerBuilder::render_denials`](crate::EnforcerBuilder::render_denials)).
///
/// ```
/// use dharma_core::reject::{Denial, DenialBody, DenialRenderer, Rejection};
///
/// // The application's own error shape.
/// let ours = DenialRenderer::new(|d: &Denial| {
///     DenialBody::json(&serde_json::json!({ "code": d.status().as_u16(), "message": "not allowed" }))
/// });
/// let denial = Denial::new(Rejection::MissingCredentials, None).with_renderer(ours);
/// assert_eq!(denial.body(), r#"{"code":401,"message":"not allowed"}"#);
/// // The challenge is still dharma's.
/// assert_eq!(denial.www_authenticate().unwrap(), "Bearer");
/// ```
#[derive(Clone)]
pub struct DenialRenderer(Arc<dyn Fn(&Denial) -> DenialBody + Send + Sync>);

impl fmt::Debug for DenialRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DenialRenderer")
    }
}

impl DenialRenderer {
    /// Renders with `f`. It sees the whole denial; only what it puts in the body reaches
    /// the client, so keep details (the rejection's text) out of it.
    pub fn new(f: impl Fn(&Denial) -> DenialBody + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// RFC 9457 problem details (`application/problem+json`).
    pub fn problem_json() -> Self {
        Self::new(Denial::problem_body)
    }

    pub(super) fn render(&self, denial: &Denial) -> DenialBody {
        (self.0)(denial)
    }
}

impl Denial {
    /// Renders bodies with `renderer` instead of the default.
    #[must_use]
    pub fn with_renderer(mut self, renderer: DenialRenderer) -> Self {
        self.renderer = Some(renderer);
        self
    }

    /// The body, as the renderer (or the default) makes it.
    pub fn rendered(&self) -> DenialBody {
        match &self.renderer {
            Some(r) => r.render(self),
            None => self.oauth_body(),
        }
    }

    /// The default body: `{"error": ..., "error_description": ...}` with the RFC 6750
    /// code where there is one, and fixed phrases.
    pub fn oauth_body(&self) -> DenialBody {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.error().into());
        if let Some(desc) = self.description() {
            body.insert("error_description".into(), desc.into());
        }
        DenialBody::json(&serde_json::Value::Object(body))
    }

    /// RFC 9457 problem details: `type` `about:blank`, `title` the status phrase,
    /// `status`, `detail` the fixed description, and `error` as an extension member.
    pub fn problem_body(&self) -> DenialBody {
        let status = self.status();
        let mut body = serde_json::Map::new();
        body.insert("type".into(), "about:blank".into());
        body.insert(
            "title".into(),
            status.canonical_reason().unwrap_or("Error").into(),
        );
        body.insert("status".into(), status.as_u16().into());
        if let Some(desc) = self.description() {
            body.insert("detail".into(), desc.into());
        }
        body.insert("error".into(), self.error().into());
        DenialBody::new(
            HeaderValue::from_static("application/problem+json"),
            serde_json::Value::Object(body).to_string(),
        )
    }

    /// The response body (see [`rendered`](Self::rendered)).
    pub fn body(&self) -> String {
        self.rendered().body
    }
}
