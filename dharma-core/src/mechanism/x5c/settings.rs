//! `kind = "x5c_jwt"`: the settings of certificate-signed JWTs in the configuration file.

use std::time::Duration;

use serde::Deserialize;

use super::{X5cBinding, X5cJwtVerifier};
use crate::mechanism::{
    BuildContext, Instance, KindError, MechanismKind, mtls::settings::CaSettings,
};

/// Builds [`X5cJwtVerifier`]s.
pub(crate) struct X5cKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct X5cSettings {
    ca_file: Option<String>,
    ca_pem: Option<String>,
    max_intermediates: Option<usize>,
    audiences: Vec<String>,
    trust_domain: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    bind: Vec<BindSetting>,
    #[serde(default)]
    pins: Vec<String>,
    #[serde(default)]
    token_services: Vec<String>,
    leeway_seconds: Option<u64>,
    #[serde(default)]
    require_type: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BindSetting {
    Iss,
    Sub,
    Azp,
}

impl X5cSettings {
    fn ca(&self) -> CaSettings<'_> {
        CaSettings {
            ca_file: self.ca_file.as_deref(),
            ca_pem: self.ca_pem.as_deref(),
            max_intermediates: self.max_intermediates,
        }
    }

    /// The verifier, or `None` when the CA is in a file that is not to be read.
    fn verifier(
        &self,
        read: bool,
        ctx: Option<&BuildContext<'_>>,
    ) -> Result<Option<X5cJwtVerifier>, KindError> {
        if !self.ca().given()? {
            return Err(KindError::setting(
                "",
                "set exactly one of ca_file and ca_pem",
            ));
        }
        let Some(ca) = self.ca().load(read)? else {
            return Ok(None);
        };
        let mut b = X5cJwtVerifier::builder(ca);
        for a in &self.audiences {
            b = b.audience(a);
        }
        if let Some(d) = &self.trust_domain {
            b = b.trust_domain(d).map_err(KindError::invalid)?;
        }
        for a in &self.allow {
            b = b.allow(a);
        }
        for t in &self.token_services {
            b = b.token_service(t);
        }
        for bind in &self.bind {
            b = b.bind(match bind {
                BindSetting::Iss => X5cBinding::Issuer,
                BindSetting::Sub => X5cBinding::Subject,
                BindSetting::Azp => X5cBinding::AuthorizedParty,
            });
        }
        for p in &self.pins {
            b = b.pin_x5t_s256(p);
        }
        if let Some(l) = self.leeway_seconds {
            b = b.leeway(Duration::from_secs(l));
        }
        for t in &self.require_type {
            b = b.require_type(t);
        }
        if let Some(c) = ctx.and_then(BuildContext::clock) {
            b = b.clock(c);
        }
        b.build().map(Some).map_err(KindError::invalid)
    }
}

impl MechanismKind for X5cKind {
    type Settings = X5cSettings;

    fn check(&self, settings: &X5cSettings) -> Result<(), KindError> {
        settings.verifier(false, None).map(drop)
    }

    fn reusable(&self, settings: &X5cSettings) -> bool {
        !settings.ca().in_file()
    }

    fn build(&self, settings: &X5cSettings, ctx: &BuildContext<'_>) -> Result<Instance, KindError> {
        match settings.verifier(true, Some(ctx))? {
            Some(v) => Ok(Instance::new(v)),
            None => Err(KindError::setting("", "no CA")),
        }
    }
}
