//! What the token mechanisms (JWT, x5c, introspection, accountability) share: the claim
//! rules of RFC 7519 and RFC 9068 read from the payload in place, the identities a token
//! names, the confirmation check of RFC 8705, and how audit records name a token (its
//! `jti` or a digest, never the token).

use std::{borrow::Cow, fmt::Write as _, sync::Arc};

use serde_json::Value;

use crate::{
    context::{
        Claims, Confirmation, Identity, IdentityKind, Source,
        claims::{Granted, granted},
    },
    error::{Rejection, TokenError},
    json::scan::{self, Kind, Raw, Str},
    mechanism::Authenticated,
    names::{Audience, Issuer},
    request::RequestView,
    util::truncate,
};

/// The time and presence rules shared by all issuers of a verifier.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    pub(crate) leeway: u64,
    /// Accepted `typ` values, lowercase, without `application/`. Empty: not checked.
    pub(crate) types: Vec<String>,
    pub(crate) required: Vec<String>,
    /// Accept a `scp` claim (a JSON array of scopes, as some issuers write) beside RFC
    /// 9068's `scope` string.
    pub(crate) accept_scp: bool,
}

/// A `typ` value in the form it is compared in: lowercase, without `application/`
/// (RFC 7515 section 4.1.9).
pub(crate) fn media_type(typ: &str) -> String {
    let t = typ.to_ascii_lowercase();
    t.strip_prefix("application/")
        .map(str::to_owned)
        .unwrap_or(t)
}

/// A token payload read strictly, with the registered claims found in place.
#[derive(Debug, Default)]
pub(crate) struct Payload<'a> {
    text: &'a str,
    pub(crate) iss: Option<Raw<'a>>,
    sub: Option<Raw<'a>>,
    client_id: Option<Raw<'a>>,
    azp: Option<Raw<'a>>,
    jti: Option<Raw<'a>>,
    exp: Option<Raw<'a>>,
    nbf: Option<Raw<'a>>,
    iat: Option<Raw<'a>>,
    aud: Option<Raw<'a>>,
    scope: Option<Raw<'a>>,
    scp: Option<Raw<'a>>,
    cnf: Option<Raw<'a>>,
}

impl<'a> Payload<'a> {
    /// Reads a payload that must be one strict JSON object.
    pub(crate) fn read(text: &'a str) -> Result<Self, TokenError> {
        let mut p = Payload {
            text,
            ..Payload::default()
        };
        scan::object(text, |name, value| {
            let slot = match name.decode().as_ref() {
                "iss" => &mut p.iss,
                "sub" => &mut p.sub,
                "client_id" => &mut p.client_id,
                "azp" => &mut p.azp,
                "jti" => &mut p.jti,
                "exp" => &mut p.exp,
                "nbf" => &mut p.nbf,
                "iat" => &mut p.iat,
                "aud" => &mut p.aud,
                "scope" => &mut p.scope,
                "scp" => &mut p.scp,
                "cnf" => &mut p.cnf,
                _ => return,
            };
            *slot = Some(value);
        })
        .map_err(|_| TokenError::Malformed("payload is not a JSON object"))?;
        Ok(p)
    }

    /// A claim by name, if it is present (any claim; registered ones are found without a
    /// second read).
    pub(crate) fn find(&self, name: &str) -> Option<Raw<'a>> {
        let mut found = None;
        // The text was read once already: it cannot fail now.
        let _ = scan::object(self.text, |n, v| {
            if found.is_none() && n.decode() == name {
                found = Some(v);
            }
        });
        found
    }

    /// A string claim's value.
    pub(crate) fn string(claim: Option<Raw<'a>>) -> Option<Cow<'a, str>> {
        claim.and_then(Raw::as_str).map(Str::decode)
    }

    /// Whether the payload has a `cnf` claim.
    pub(crate) fn has_confirmation(&self) -> bool {
        self.cnf.is_some()
    }

    /// What the claims grant and confirm, and the names they give, to keep once the
    /// payload is no longer borrowed.
    pub(crate) fn names(&self) -> Names {
        let cut = |claim| nonempty(claim).map(|s| truncated(&s, 256));
        // As a map reads it: `azp` when `client_id` is not a string.
        let client = match self.client_id.and_then(Raw::as_str) {
            Some(_) => cut(self.client_id),
            None => cut(self.azp),
        };
        // `scp` and `cnf` are rare: they are read into values.
        let value = |claim: Option<Raw<'_>>| {
            claim.and_then(|raw| serde_json::from_str::<Value>(raw.text()).ok())
        };
        // A plain `scope` string alone is kept as where it lies in the payload text.
        let in_payload = match (self.scope.and_then(Raw::as_str), self.scp) {
            (Some(scope), None) if !scope.is_escaped() => {
                let start = (scope.raw().as_ptr().addr()).wrapping_sub(self.text.as_ptr().addr());
                let range = start..start.saturating_add(scope.raw().len());
                let found = self.text.get(range.clone());
                found
                    .is_some_and(|s| s.as_ptr() == scope.raw().as_ptr())
                    .then_some(range)
            }
            _ => None,
        };
        let scopes = match in_payload {
            Some(range) => Granted::InPayload(range),
            _ => Granted::Owned(granted(
                Self::string(self.scope).as_deref(),
                value(self.scp).as_ref(),
            )),
        };
        Names {
            subjects: Subjects {
                sub: cut(self.sub),
                client,
                jti: Self::string(self.jti).map(|j| truncated(&j, 128)),
            },
            scopes,
            confirmation: Confirmation::of(value(self.cnf).as_ref()),
        }
    }
}

/// A non-empty string claim.
fn nonempty(claim: Option<Raw<'_>>) -> Option<Cow<'_, str>> {
    claim
        .and_then(Raw::as_str)
        .filter(|s| !s.is_empty())
        .map(Str::decode)
}

/// `s` cut to `max` bytes (at a character boundary, marked with an ellipsis).
fn truncated(s: &str, max: usize) -> Arc<str> {
    if s.len() <= max {
        s.into()
    } else {
        truncate(s, max).into()
    }
}

/// What a verified payload names and grants, owned, so that the payload text can become
/// the claims.
#[derive(Debug)]
pub(crate) struct Names {
    subjects: Subjects,
    scopes: Granted,
    confirmation: Confirmation,
}

impl Names {
    /// The identities of `token`, whose payload `text` these names were read from; the
    /// text becomes their claims (the map is built when asked for).
    pub(crate) fn identities(
        self,
        text: String,
        issuer: Option<&Issuer>,
        token: &str,
        tenant: Option<Arc<str>>,
    ) -> Result<Vec<Identity>, TokenError> {
        let claims = Claims::from_payload(text, self.scopes, self.confirmation);
        self.subjects
            .identities(claims, issuer, token, None, tenant)
    }
}

/// The identities of a token whose claims are already a map (introspection answers).
pub(crate) fn identities_of(
    claims: &Claims,
    issuer: Option<&Issuer>,
    token: &str,
    digest: Option<&[u8; 32]>,
) -> Result<Vec<Identity>, TokenError> {
    let cut = |s: &str| truncated(s, 256);
    let subjects = Subjects {
        sub: claims.str("sub").filter(|s| !s.is_empty()).map(cut),
        client: claims
            .str("client_id")
            .or_else(|| claims.str("azp"))
            .filter(|s| !s.is_empty())
            .map(cut),
        jti: claims.str("jti").map(|j| truncated(j, 128)),
    };
    subjects.identities(claims.clone(), issuer, token, digest, None)
}

/// Who a token names: its subject and client (cut to 256 bytes) and its `jti`.
#[derive(Debug)]
struct Subjects {
    sub: Option<Arc<str>>,
    client: Option<Arc<str>>,
    jti: Option<Arc<str>>,
}

impl Subjects {
    /// The identities of a verified access token: the end user (`sub`) and the client
    /// application (`client_id` or `azp`); for a client-credentials token, where the
    /// subject is the client, only the client. Audit records name the token by its
    /// `jti`, or else `sha256:` and the first 12 bytes of its digest (computed here unless
    /// given); never by the token.
    fn identities(
        self,
        claims: Claims,
        issuer: Option<&Issuer>,
        token: &str,
        digest: Option<&[u8; 32]>,
        tenant: Option<Arc<str>>,
    ) -> Result<Vec<Identity>, TokenError> {
        let token_id = self.jti.unwrap_or_else(|| {
            let digest = digest.copied().unwrap_or_else(|| self::digest(token));
            let mut out = String::with_capacity(7 + 24);
            out.push_str("sha256:");
            for b in digest.iter().take(12) {
                let _ = write!(out, "{b:02x}");
            }
            out.into()
        });
        let source = Arc::new(Source {
            issuer: issuer.cloned(),
            claims,
            token_id: Some(token_id),
            tenant,
        });
        let make = |kind, subject| Identity::vouched(kind, subject, source.clone());
        Ok(match (self.sub, self.client) {
            (Some(s), Some(c)) if s == c => vec![make(IdentityKind::ClientApp, c)],
            (Some(s), Some(c)) => vec![
                make(IdentityKind::EndUser, s),
                make(IdentityKind::ClientApp, c),
            ],
            (Some(s), None) => vec![make(IdentityKind::EndUser, s)],
            (None, Some(c)) => vec![make(IdentityKind::ClientApp, c)],
            (None, None) => return Err(TokenError::Claim("sub".into())),
        })
    }
}

/// Reads a NumericDate claim: a non-negative JSON number, fractions dropped.
pub(crate) fn numeric_date(claim: Option<Raw<'_>>, name: &str) -> Result<Option<u64>, TokenError> {
    let Some(raw) = claim else {
        return Ok(None);
    };
    if raw.kind() != Kind::Number {
        return Err(TokenError::Claim(name.to_owned()));
    }
    // Nineteen digits or fewer always fit (the common case: ten digits).
    let text = raw.text().as_bytes();
    if text.len() <= 19 && text.iter().all(u8::is_ascii_digit) {
        return Ok(Some(
            text.iter().fold(0, |v, d| v * 10 + u64::from(d - b'0')),
        ));
    }
    if let Ok(v) = raw.text().parse::<u64>() {
        return Ok(Some(v));
    }
    match raw.text().parse::<f64>() {
        Ok(f) if (0.0..1.0e15).contains(&f) => Ok(Some(f as u64)),
        _ => Err(TokenError::Claim(name.to_owned())),
    }
}

impl ClaimRules {
    /// Checks `typ` (header) against the accepted types.
    pub(crate) fn check_type(&self, typ: Option<&str>) -> Result<(), TokenError> {
        if self.types.is_empty() {
            return Ok(());
        }
        let given = media_type(typ.unwrap_or_default());
        if self.types.contains(&given) {
            Ok(())
        } else {
            Err(TokenError::WrongType(truncate(typ.unwrap_or_default(), 32)))
        }
    }

    /// Checks time claims, audience and required claims. Returns `exp`.
    pub(crate) fn check(
        &self,
        claims: &Payload<'_>,
        audiences: &[Audience],
        now: u64,
    ) -> Result<u64, TokenError> {
        let exp =
            numeric_date(claims.exp, "exp")?.ok_or_else(|| TokenError::Claim("exp".into()))?;
        if now > exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired { now, exp });
        }
        if let Some(nbf) = numeric_date(claims.nbf, "nbf")?
            && nbf > now.saturating_add(self.leeway)
        {
            return Err(TokenError::NotYetValid { now, nbf });
        }
        if let Some(iat) = numeric_date(claims.iat, "iat")?
            && iat > now.saturating_add(self.leeway)
        {
            return Err(TokenError::IssuedInFuture { now, iat });
        }
        let accepted = |a: Raw<'_>| {
            a.as_str()
                .is_some_and(|a| audiences.iter().any(|x| x.as_str() == a.decode()))
        };
        let aud_ok = match claims.aud {
            Some(a) if a.kind() == Kind::String => accepted(a),
            Some(list) => list.items().any(accepted),
            None => false,
        };
        if !aud_ok {
            return Err(TokenError::WrongAudience);
        }
        for name in &self.required {
            if claims.find(name).is_none() {
                return Err(TokenError::Claim(name.clone()));
            }
        }
        if self.types.iter().any(|t| t == "at+jwt") {
            rfc9068(claims, self.accept_scp)?;
        }
        Ok(exp)
    }
}

/// RFC 9068 section 2.2: a token that says it is a JWT access token (`typ: at+jwt`) has
/// `sub`, `client_id` and `jti` as strings and `iat` (`iss`, `exp` and `aud` are required
/// of every token), and its `scope`, if any, is one space-delimited string. `scp` is
/// refused unless the issuer is known to write it (`accept_scp`).
fn rfc9068(claims: &Payload<'_>, accept_scp: bool) -> Result<(), TokenError> {
    for (name, claim) in [
        ("sub", claims.sub),
        ("client_id", claims.client_id),
        ("jti", claims.jti),
    ] {
        if nonempty(claim).is_none() {
            return Err(TokenError::Claim(name.to_owned()));
        }
    }
    if claims.iat.is_none() {
        return Err(TokenError::Claim("iat".into()));
    }
    if claims.scope.is_some_and(|s| s.kind() != Kind::String) {
        return Err(TokenError::Claim("scope".into()));
    }
    match claims.scp {
        None => Ok(()),
        Some(items)
            if accept_scp
                && items.kind() == Kind::Array
                && items.items().all(|i| i.kind() == Kind::String) =>
        {
            Ok(())
        }
        Some(_) => Err(TokenError::Claim("scp".into())),
    }
}

/// RFC 8705 section 3 and RFC 7800: a token with a confirmation (`cnf`) is accepted only
/// when the confirmation is checked. dharma checks `x5t#S256` against the client's TLS
/// certificate; any other confirmation method (`jkt` of DPoP, `jwk`, `kid`, ...) cannot be
/// checked here, so the token is refused whatever the configuration. A token with no
/// `cnf` passes unless `required`. The JWT mechanism calls this on every request,
/// remembered tokens included (x5c and introspection refuse any `cnf`).
pub(crate) fn check_confirmation(
    authenticated: &Authenticated,
    request: &RequestView<'_>,
    required: bool,
) -> Result<(), Rejection> {
    let thumbprint = match confirmation(authenticated) {
        None if required => return Err(TokenError::CertificateBinding.into()),
        None => return Ok(()),
        Some(Confirmation::Certificate(thumbprint)) => thumbprint,
        Some(_) => return Err(TokenError::UnverifiableConfirmation.into()),
    };
    let leaf = request
        .peer_certificates()
        .first()
        .ok_or(TokenError::CertificateBinding)?;
    if **thumbprint == crate::pki::thumbprint(leaf.as_ref()) {
        Ok(())
    } else {
        Err(TokenError::CertificateBinding.into())
    }
}

/// The first confirmation (RFC 7800) of the identities, if any.
fn confirmation(authenticated: &Authenticated) -> Option<&Confirmation> {
    authenticated
        .identities()
        .iter()
        .map(|i| i.claims().confirmation())
        .find(|c| **c != Confirmation::None)
}

/// The binding check for a token verified outside a request (a token exchange's subject
/// or actor token): there is no client certificate to compare with, so a bound token, or
/// any token when binding is required, is refused.
pub(crate) fn check_unbound(
    authenticated: &Authenticated,
    required: bool,
) -> Result<(), Rejection> {
    match confirmation(authenticated) {
        None if required => Err(TokenError::CertificateBinding.into()),
        None => Ok(()),
        Some(_) => Err(TokenError::UnverifiableConfirmation.into()),
    }
}

/// The SHA-256 of a token: how caches name it.
pub(crate) fn digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests;
