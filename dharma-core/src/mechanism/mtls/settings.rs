//! `kind = "mtls"`: the settings of mutual TLS in the configuration file.

use serde::Deserialize;

use super::MtlsVerifier;
use crate::{
    mechanism::{BuildContext, Instance, KindError, MechanismKind, kind::read_file},
    pki::OrgCa,
};

/// Builds [`MtlsVerifier`]s.
pub(crate) struct MtlsKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MtlsSettings {
    ca_file: Option<String>,
    ca_pem: Option<String>,
    max_intermediates: Option<usize>,
    #[serde(default)]
    trust_tls_layer: bool,
    trust_domain: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
}

/// Where an organisation CA comes from: `ca_file` or `ca_pem`, with `max_intermediates`.
/// Shared by the certificate mechanisms (mTLS and x5c).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CaSettings<'s> {
    pub(crate) ca_file: Option<&'s str>,
    pub(crate) ca_pem: Option<&'s str>,
    pub(crate) max_intermediates: Option<usize>,
}

impl CaSettings<'_> {
    /// Whether a CA is given (`ca_file` or `ca_pem`); both is an error.
    pub(crate) fn given(&self) -> Result<bool, KindError> {
        match (self.ca_file, self.ca_pem) {
            (Some(_), Some(_)) => Err(KindError::setting("", "set only one of ca_file and ca_pem")),
            (None, None) => Ok(false),
            _ => Ok(true),
        }
    }

    /// Whether the CA is read from a file (whose content may change under its name).
    pub(crate) fn in_file(&self) -> bool {
        self.ca_file.is_some()
    }

    /// The CA, reading `ca_file` only when `read` allows it (offline checks do not).
    pub(crate) fn load(&self, read: bool) -> Result<Option<OrgCa>, KindError> {
        let text = match (self.ca_file, self.ca_pem) {
            (Some(path), None) if read => read_file(path)?,
            (None, Some(pem)) => pem.to_owned(),
            _ => return Ok(None),
        };
        let ca = OrgCa::from_pem(&text).map_err(KindError::invalid)?;
        Ok(Some(match self.max_intermediates {
            Some(n) => ca.max_intermediates(n),
            None => ca,
        }))
    }
}

impl MtlsSettings {
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
    ) -> Result<Option<MtlsVerifier>, KindError> {
        if self.ca().given()? == self.trust_tls_layer {
            return Err(KindError::setting(
                "",
                "set exactly one of ca_file, ca_pem and trust_tls_layer = true",
            ));
        }
        let mut b = MtlsVerifier::builder();
        if self.trust_tls_layer {
            b = b.trust_tls_layer();
        } else {
            match self.ca().load(read)? {
                Some(ca) => b = b.org_ca(ca),
                None => return Ok(None),
            }
        }
        if let Some(d) = &self.trust_domain {
            b = b.trust_domain(d).map_err(KindError::invalid)?;
        }
        for a in &self.allow {
            b = b.allow(a);
        }
        if let Some(c) = ctx.and_then(BuildContext::clock) {
            b = b.clock(c);
        }
        b.build().map(Some).map_err(KindError::invalid)
    }
}

impl MechanismKind for MtlsKind {
    type Settings = MtlsSettings;

    fn check(&self, settings: &MtlsSettings) -> Result<(), KindError> {
        settings.verifier(false, None).map(drop)
    }

    fn reusable(&self, settings: &MtlsSettings) -> bool {
        !settings.ca().in_file()
    }

    fn build(
        &self,
        settings: &MtlsSettings,
        ctx: &BuildContext<'_>,
    ) -> Result<Instance, KindError> {
        match settings.verifier(true, Some(ctx))? {
            Some(v) => Ok(Instance::new(v)),
            None => Err(KindError::setting("", "no CA")),
        }
    }
}
