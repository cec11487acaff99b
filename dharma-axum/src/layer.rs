//! The tower layer.

use dharma_core::Enforcer;
use tower_layer::Layer;

use crate::service::Dharma;

/// Wraps a service in [`Dharma`], which asks the enforcer about every request.
#[derive(Debug, Clone)]
pub struct DharmaLayer {
    enforcer: Enforcer,
}

impl DharmaLayer {
    /// A layer deciding with `enforcer`. Clones share its keys and caches.
    pub fn new(enforcer: Enforcer) -> Self {
        Self { enforcer }
    }
}

impl<S> Layer<S> for DharmaLayer {
    type Service = Dharma<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Dharma::new(inner, self.enforcer.clone())
    }
}
