//! The client side: attach a bearer token to outgoing calls.

use std::sync::Arc;

use tonic::{Request, Status, metadata::MetadataValue, service::Interceptor};

type Source = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Puts `authorization: Bearer <token>` on every outgoing call. The token comes from a
/// source called per call (so a refreshed token is picked up), or is fixed.
///
/// The source is synchronous. For a token that needs I/O (exchanged per audience,
/// obtained with client credentials, forwarded from the request being served), use
/// `dharma_sts::propagate::PropagateLayer` around the channel instead.
///
/// ```
/// use dharma_tonic::BearerInterceptor;
/// use tonic::service::Interceptor;
///
/// let mut attach = BearerInterceptor::new("eyJhbGciOiJFUzI1NiJ9.e30.sig");
/// let request = attach.call(tonic::Request::new(())).unwrap();
/// assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig");
/// ```
#[derive(Clone)]
pub struct BearerInterceptor {
    source: Source,
}

impl std::fmt::Debug for BearerInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerInterceptor").finish_non_exhaustive()
    }
}

impl BearerInterceptor {
    /// Always the same token.
    pub fn new(token: &str) -> Self {
        let token = token.to_owned();
        Self::from_source(move || Some(token.clone()))
    }

    /// A token from `source`, asked on every call; `None` sends the call without one.
    pub fn from_source(source: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            source: Arc::new(source),
        }
    }
}

impl Interceptor for BearerInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = (self.source)() {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Status::internal("the token is not a valid header value"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}
