//! `kind = "introspection"`: the settings of RFC 7662 introspection in the configuration
//! file.

use std::{sync::Arc, time::Duration};

use serde::Deserialize;

use super::{ClientAuth, IntrospectionVerifier};
use crate::{
    mechanism::{BuildContext, Instance, KindError, MechanismKind},
    transport::{HttpClient, Offline},
};

/// Builds [`IntrospectionVerifier`]s.
pub(crate) struct IntrospectionKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntrospectionSettings {
    endpoint: String,
    client_id: String,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    client_auth: Option<AuthSetting>,
    #[serde(default)]
    audiences: Vec<String>,
    issuer: Option<String>,
    max_ttl_seconds: Option<u64>,
    inactive_ttl_seconds: Option<u64>,
    timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AuthSetting {
    Basic,
    Post,
}

impl IntrospectionSettings {
    /// The client secret: the value in the file, or the environment variable it names
    /// (read only when `read`; offline checks use a stand-in).
    fn secret(&self, read: bool) -> Result<String, KindError> {
        match (&self.client_secret, &self.client_secret_env) {
            (Some(secret), None) => Ok(secret.clone()),
            (None, Some(_)) if !read => Ok("offline".to_owned()),
            (None, Some(var)) => std::env::var(var).map_err(|_| KindError::Secret {
                at: "client_secret_env".into(),
                var: var.clone(),
            }),
            _ => Err(KindError::setting(
                "",
                "set exactly one of client_secret and client_secret_env",
            )),
        }
    }

    fn verifier(
        &self,
        secret: &str,
        client: Option<Arc<dyn HttpClient>>,
        ctx: Option<&BuildContext<'_>>,
    ) -> Result<IntrospectionVerifier, KindError> {
        let auth = match self.client_auth {
            Some(AuthSetting::Post) => ClientAuth::Post,
            Some(AuthSetting::Basic) | None => ClientAuth::Basic,
        };
        let mut b =
            IntrospectionVerifier::builder(&self.endpoint).client(&self.client_id, secret, auth);
        for a in &self.audiences {
            b = b.audience(a);
        }
        if let Some(i) = &self.issuer {
            b = b.issuer(i);
        }
        if let Some(v) = self.max_ttl_seconds {
            b = b.max_ttl(Duration::from_secs(v));
        }
        if let Some(v) = self.inactive_ttl_seconds {
            b = b.inactive_ttl(Duration::from_secs(v));
        }
        if let Some(v) = self.timeout_ms {
            b = b.timeout(Duration::from_millis(v));
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

impl MechanismKind for IntrospectionKind {
    type Settings = IntrospectionSettings;

    fn check(&self, settings: &IntrospectionSettings) -> Result<(), KindError> {
        let secret = settings.secret(false)?;
        settings
            .verifier(&secret, Some(Arc::new(Offline)), None)
            .map(drop)
    }

    fn build(
        &self,
        settings: &IntrospectionSettings,
        ctx: &BuildContext<'_>,
    ) -> Result<Instance, KindError> {
        let secret = settings.secret(true)?;
        settings
            .verifier(&secret, ctx.http_client(), Some(ctx))
            .map(Instance::new)
    }
}
