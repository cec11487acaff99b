//! What the token mechanisms (JWT, x5c, introspection, accountability) share: the claim
//! rules of RFC 7519 and RFC 9068, the identities a token's claims name, and how audit
//! records name a token (its `jti` or a digest, never the token).

use std::{fmt::Write as _, sync::Arc};

use serde_json::{Map, Value};

use crate::{
    context::{Claims, Identity, IdentityKind},
    error::TokenError,
    names::{Audience, Issuer},
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

/// Reads a NumericDate claim: a non-negative JSON number, fractions dropped.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                return Ok(Some(v));
            }
            match n.as_f64() {
                Some(f) if (0.0..1.0e15).contains(&f) => Ok(Some(f as u64)),
                _ => Err(TokenError::Claim(name.to_owned())),
            }
        }
        Some(_) => Err(TokenError::Claim(name.to_owned())),
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
        claims: &Map<String, Value>,
        audiences: &[Audience],
        now: u64,
    ) -> Result<u64, TokenError> {
        let exp = numeric_date(claims, "exp")?.ok_or_else(|| TokenError::Claim("exp".into()))?;
        if now > exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired { now, exp });
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now.saturating_add(self.leeway)
        {
            return Err(TokenError::NotYetValid { now, nbf });
        }
        if let Some(iat) = numeric_date(claims, "iat")?
            && iat > now.saturating_add(self.leeway)
        {
            return Err(TokenError::IssuedInFuture { now, iat });
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => audiences.iter().any(|x| x.as_str() == a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| audiences.iter().any(|x| x.as_str() == a)),
            _ => false,
        };
        if !aud_ok {
            return Err(TokenError::WrongAudience);
        }
        for name in &self.required {
            if !claims.contains_key(name) {
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
fn rfc9068(claims: &Map<String, Value>, accept_scp: bool) -> Result<(), TokenError> {
    for name in ["sub", "client_id", "jti"] {
        match claims.get(name) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(TokenError::Claim(name.to_owned())),
        }
    }
    if !claims.contains_key("iat") {
        return Err(TokenError::Claim("iat".into()));
    }
    if claims.get("scope").is_some_and(|s| !s.is_string()) {
        return Err(TokenError::Claim("scope".into()));
    }
    match claims.get("scp") {
        None => Ok(()),
        Some(Value::Array(items)) if accept_scp && items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(TokenError::Claim("scp".into())),
    }
}

/// The identities a verified access token carries: the end user (`sub`) and the client
/// application (`client_id` or `azp`); for a client-credentials token, where the subject
/// is the client, only the client.
pub(crate) fn identities(
    claims: Claims,
    issuer: Option<&Issuer>,
    token_id: Arc<str>,
) -> Result<Vec<Identity>, TokenError> {
    let sub = claims.str("sub").filter(|s| !s.is_empty());
    let client = claims
        .str("client_id")
        .or_else(|| claims.str("azp"))
        .filter(|s| !s.is_empty());
    let make = |kind, subject: &str| {
        let id = Identity::new(kind, truncate(subject, 256))
            .with_claims(claims.clone())
            .with_token_id(token_id.clone());
        match issuer {
            Some(iss) => id.with_issuer(iss.clone()),
            None => id,
        }
    };
    let out = match (sub, client) {
        (Some(s), Some(c)) if s == c => vec![make(IdentityKind::ClientApp, c)],
        (Some(s), Some(c)) => vec![
            make(IdentityKind::EndUser, s),
            make(IdentityKind::ClientApp, c),
        ],
        (Some(s), None) => vec![make(IdentityKind::EndUser, s)],
        (None, Some(c)) => vec![make(IdentityKind::ClientApp, c)],
        (None, None) => return Err(TokenError::Claim("sub".into())),
    };
    Ok(out)
}

/// How audit records name a token: its `jti`, or else `sha256:` and the first 12 bytes
/// of its digest (computed here unless given). Never the token.
/// How audit records name a token: its `jti`, or else `sha256:` and the first 12 bytes
/// of its digest (computed here unless given). Never the token.
pub(crate) fn token_id_of(
    token: &str,
    digest: Option<&[u8; 32]>,
    claims: &Map<String, Value>,
) -> Arc<str> {
    if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
        return truncate(jti, 128).into();
    }
    let digest = digest.copied().unwrap_or_else(|| self::digest(token));
    let mut out = String::with_capacity(7 + 24);
    out.push_str("sha256:");
    for b in digest.iter().take(12) {
        let _ = write!(out, "{b:02x}");
    }
    out.into()
}

/// [`token_id_of`] for a token not digested yet.
pub(crate) fn token_id(token: &str, claims: &Map<String, Value>) -> Arc<str> {
    token_id_of(token, None, claims)
}

/// The SHA-256 of a token: how caches name it.
pub(crate) fn digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ClaimRules {
        ClaimRules {
            leeway: 30,
            types: vec!["at+jwt".into()],
            required: vec!["jti".into()],
            accept_scp: false,
        }
    }

    /// The reproduction: with `at+jwt` required, a token without `sub`,
    /// `client_id` or `jti`, or with a `scope` array, passed.
    #[test]
    fn rfc9068_profile() {
        let base = json!({
            "iss": "i", "aud": "api", "exp": 2000, "iat": 1000, "sub": "alice",
            "client_id": "web", "jti": "1", "scope": "a b",
        });
        let check = |rules: &ClaimRules, edit: &dyn Fn(&mut Value)| {
            let mut c = base.clone();
            edit(&mut c);
            rules.check(c.as_object().unwrap(), &["api".parse().unwrap()], 1500)
        };
        let r = rules();
        assert!(check(&r, &|_| {}).is_ok());
        for (name, edit) in [
            (
                "sub",
                &(|c: &mut Value| drop(c.as_object_mut().unwrap().remove("sub")))
                    as &dyn Fn(&mut Value),
            ),
            ("client_id", &|c: &mut Value| {
                drop(c.as_object_mut().unwrap().remove("client_id"))
            }),
            ("jti", &|c: &mut Value| c["jti"] = json!(7)),
            ("iat", &|c: &mut Value| {
                drop(c.as_object_mut().unwrap().remove("iat"))
            }),
            ("scope", &|c: &mut Value| c["scope"] = json!(["a", "b"])),
            ("scp", &|c: &mut Value| c["scp"] = json!(["a"])),
        ] {
            assert_eq!(
                check(&r, edit),
                Err(TokenError::Claim(name.into())),
                "{name}"
            );
        }
        let scp = ClaimRules {
            accept_scp: true,
            ..rules()
        };
        assert!(check(&scp, &|c| c["scp"] = json!(["a"])).is_ok());
        assert!(check(&scp, &|c| c["scp"] = json!("a")).is_err());
        // Without at+jwt, the profile does not apply.
        let plain = ClaimRules {
            types: vec![],
            required: vec![],
            ..rules()
        };
        assert!(
            check(&plain, &|c| drop(
                c.as_object_mut().unwrap().remove("client_id")
            ))
            .is_ok()
        );
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn aud() -> Vec<Audience> {
        vec!["api".parse().unwrap()]
    }

    #[test]
    fn time_rules_with_leeway() {
        // Outside the RFC 9068 profile (tested on its own).
        let r = ClaimRules {
            types: vec![],
            ..rules()
        };
        let c = map(json!({"exp": 1000, "aud": "api", "jti": "1"}));
        assert_eq!(r.check(&c, &aud(), 1000).unwrap(), 1000);
        assert!(r.check(&c, &aud(), 1030).is_ok());
        assert_eq!(
            r.check(&c, &aud(), 1031).unwrap_err(),
            TokenError::Expired {
                now: 1031,
                exp: 1000
            }
        );
        let c = map(json!({"exp": 5000, "nbf": 2000, "aud": "api", "jti": "1"}));
        assert!(r.check(&c, &aud(), 1970).is_ok());
        assert_eq!(
            r.check(&c, &aud(), 1969).unwrap_err(),
            TokenError::NotYetValid {
                now: 1969,
                nbf: 2000
            }
        );
        let c = map(json!({"exp": 5000, "iat": 2000, "aud": "api", "jti": "1"}));
        assert!(matches!(
            r.check(&c, &aud(), 1000),
            Err(TokenError::IssuedInFuture { .. })
        ));
        let c = map(json!({"exp": 1000.9, "aud": "api", "jti": "1"}));
        assert!(r.check(&c, &aud(), 1030).is_ok());
    }

    #[test]
    fn exp_is_required_and_typed() {
        let r = rules();
        for c in [
            json!({"aud":"api","jti":"1"}),
            json!({"exp":"1000","aud":"api","jti":"1"}),
            json!({"exp":-5,"aud":"api","jti":"1"}),
            json!({"exp":1e300,"aud":"api","jti":"1"}),
        ] {
            assert_eq!(
                r.check(&map(c), &aud(), 0).unwrap_err(),
                TokenError::Claim("exp".into())
            );
        }
    }

    #[test]
    fn audience_rules() {
        // Outside the RFC 9068 profile (tested on its own).
        let r = ClaimRules {
            types: vec![],
            ..rules()
        };
        assert!(
            r.check(
                &map(json!({"exp":9,"aud":["x","api"],"jti":"1"})),
                &aud(),
                0
            )
            .is_ok()
        );
        for a in [json!("x"), json!(["x"]), json!(null), json!(7), json!([7])] {
            let c = map(json!({"exp": 9, "aud": a, "jti": "1"}));
            assert_eq!(
                r.check(&c, &aud(), 0).unwrap_err(),
                TokenError::WrongAudience
            );
        }
        let c = map(json!({"exp": 9, "jti": "1"}));
        assert_eq!(
            r.check(&c, &aud(), 0).unwrap_err(),
            TokenError::WrongAudience
        );
    }

    #[test]
    fn required_claims() {
        let c = map(json!({"exp": 9, "aud": "api"}));
        assert_eq!(
            rules().check(&c, &aud(), 0).unwrap_err(),
            TokenError::Claim("jti".into())
        );
    }

    #[test]
    fn type_rule() {
        let r = rules();
        assert!(r.check_type(Some("at+jwt")).is_ok());
        assert!(r.check_type(Some("application/AT+JWT")).is_ok());
        assert!(matches!(
            r.check_type(Some("JWT")),
            Err(TokenError::WrongType(_))
        ));
        assert!(matches!(r.check_type(None), Err(TokenError::WrongType(_))));
        let open = ClaimRules {
            types: vec![],
            ..rules()
        };
        assert!(open.check_type(None).is_ok());
    }

    #[test]
    fn identities_from_claims() {
        let iss: Issuer = "https://idp".parse().unwrap();
        let ids = |v: Value| identities(Claims::new(map(v)), Some(&iss), "t".into());
        let kinds = |v: Value| {
            ids(v)
                .unwrap()
                .iter()
                .map(|i| (i.kind(), i.subject().to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(json!({"sub":"app","client_id":"app"})),
            [(IdentityKind::ClientApp, "app".into())]
        );
        assert_eq!(
            kinds(json!({"sub":"alice","azp":"web"})),
            [
                (IdentityKind::EndUser, "alice".into()),
                (IdentityKind::ClientApp, "web".into())
            ]
        );
        assert_eq!(
            kinds(json!({"sub":"alice"})),
            [(IdentityKind::EndUser, "alice".into())]
        );
        assert!(ids(json!({"sub":""})).is_err());
    }
}
