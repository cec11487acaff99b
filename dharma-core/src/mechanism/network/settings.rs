//! `kind = "network"`: the settings of network isolation in the configuration file.

use serde::Deserialize;

use super::{ForwardedHeader, NetworkVerifier};
use crate::mechanism::{BuildContext, Instance, KindError, MechanismKind};

/// Builds [`NetworkVerifier`]s.
pub(crate) struct NetworkKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkSettings {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    allow_loopback: bool,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    forwarded_header: Option<ForwardedSetting>,
}

#[derive(Debug, Deserialize)]
enum ForwardedSetting {
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    #[serde(rename = "forwarded")]
    Forwarded,
}

impl NetworkSettings {
    fn verifier(&self) -> Result<NetworkVerifier, KindError> {
        let mut b = NetworkVerifier::builder();
        for n in &self.allow {
            b = b.allow(n).map_err(KindError::invalid)?;
        }
        for p in &self.trusted_proxies {
            b = b.trusted_proxy(p).map_err(KindError::invalid)?;
        }
        if self.allow_loopback {
            b = b.allow_loopback();
        }
        if let Some(h) = &self.forwarded_header {
            b = b.forwarded_header(match h {
                ForwardedSetting::XForwardedFor => ForwardedHeader::XForwardedFor,
                ForwardedSetting::Forwarded => ForwardedHeader::Forwarded,
            });
        }
        Ok(b.build())
    }
}

impl MechanismKind for NetworkKind {
    type Settings = NetworkSettings;

    fn check(&self, settings: &NetworkSettings) -> Result<(), KindError> {
        settings.verifier().map(drop)
    }

    fn build(
        &self,
        settings: &NetworkSettings,
        _: &BuildContext<'_>,
    ) -> Result<Instance, KindError> {
        settings.verifier().map(Instance::new)
    }
}
