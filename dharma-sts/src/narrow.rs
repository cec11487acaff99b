//! What an exchange may grant: scopes only narrow, delegation is recorded and bounded.

use serde_json::{Map, Value};

use crate::error::{ErrorCode, OAuthError};

/// The scopes granted: those asked for (or, when none are asked for, those held, or for
/// a client's own token those allowed) that the subject holds and the policy allows, in
/// the order asked. Asking for scopes none of which can be granted is `invalid_scope`.
pub(crate) fn scopes(
    requested: Option<&[String]>,
    held: Option<&[&str]>,
    allowed: &[String],
) -> Result<Vec<String>, OAuthError> {
    let base: Vec<&str> = match (requested, held) {
        (Some(r), _) => r.iter().map(String::as_str).collect(),
        (None, Some(h)) => h.to_vec(),
        (None, None) => allowed.iter().map(String::as_str).collect(),
    };
    let mut granted: Vec<String> = Vec::new();
    for scope in base {
        let permitted = allowed.iter().any(|a| a == scope);
        let holds = held.is_none_or(|h| h.contains(&scope));
        if permitted && holds && !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_owned());
        }
    }
    if requested.is_some() && granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "none of the requested scopes can be granted",
        ));
    }
    Ok(granted)
}

/// One party of a delegation chain (RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Actor {
    pub(crate) sub: String,
    pub(crate) iss: Option<String>,
}

/// Reads the `act` chain of a subject token, current actor first. Each link must be an
/// object with a non-empty string `sub` (and, if present, a string `iss`); a chain
/// longer than `max` is refused as it is read.
pub(crate) fn chain(act: Option<&Value>, max: usize) -> Result<Vec<Actor>, OAuthError> {
    let mut out = Vec::new();
    let mut next = act;
    while let Some(link) = next {
        if out.len() == max {
            return Err(too_deep(max));
        }
        let bad = || OAuthError::request("the subject token's act claim is not a delegation chain");
        let object = link.as_object().ok_or_else(bad)?;
        let sub = object
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(bad)?;
        let iss = match object.get("iss") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad()),
        };
        out.push(Actor {
            sub: sub.to_owned(),
            iss,
        });
        next = object.get("act");
    }
    Ok(out)
}

pub(crate) fn too_deep(max: usize) -> OAuthError {
    OAuthError::request(format!(
        "the delegation chain would be longer than {max} actors"
    ))
}

/// The nested `act` claim of a chain, current actor outermost.
pub(crate) fn act_claim(chain: &[Actor]) -> Option<Value> {
    chain.iter().rev().fold(None, |inner, actor| {
        let mut object = Map::new();
        object.insert("sub".into(), Value::String(actor.sub.clone()));
        if let Some(iss) = &actor.iss {
            object.insert("iss".into(), Value::String(iss.clone()));
        }
        if let Some(inner) = inner {
            object.insert("act".into(), inner);
        }
        Some(Value::Object(object))
    })
}

/// Whether the subject token's `may_act` (RFC 8693 §4.4) lets `actor` act for it:
/// absent, it says nothing; present, it must be an object whose `sub` equals the
/// actor's subject and whose `iss`, if given, equals the actor's issuer.
pub(crate) fn may_act(may_act: Option<&Value>, actor: &Actor) -> Result<(), OAuthError> {
    let Some(value) = may_act else {
        return Ok(());
    };
    let object = value
        .as_object()
        .ok_or_else(|| OAuthError::request("the subject token's may_act claim is not an object"))?;
    let sub = object.get("sub").and_then(Value::as_str);
    let iss_ok = match object.get("iss") {
        None => true,
        Some(Value::String(iss)) => actor.iss.as_deref() == Some(iss.as_str()),
        Some(_) => false,
    };
    if sub == Some(actor.sub.as_str()) && iss_ok {
        Ok(())
    } else {
        Err(OAuthError::request(
            "the subject token does not allow this actor (may_act)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scopes_are_the_intersection() {
        let allowed = strings(&["a", "b", "c"]);
        let requested = strings(&["c", "b", "x", "b"]);
        assert_eq!(
            scopes(Some(&requested), Some(&["a", "b"]), &allowed).unwrap(),
            ["b"]
        );
        assert_eq!(
            scopes(None, Some(&["b", "z", "a"]), &allowed).unwrap(),
            ["b", "a"]
        );
        assert_eq!(scopes(None, None, &allowed).unwrap(), ["a", "b", "c"]);
        assert_eq!(
            scopes(Some(&strings(&["x"])), Some(&["x"]), &allowed)
                .unwrap_err()
                .code(),
            ErrorCode::InvalidScope
        );
        assert!(scopes(None, Some(&["x"]), &allowed).unwrap().is_empty());
    }

    #[test]
    fn chains_read_and_nest() {
        let act = json!({"sub": "b", "iss": "https://i", "act": {"sub": "c"}});
        let read = chain(Some(&act), 3).unwrap();
        assert_eq!(read.len(), 2);
        let mut longer = vec![Actor {
            sub: "a".into(),
            iss: None,
        }];
        longer.extend(read);
        assert_eq!(
            act_claim(&longer).unwrap(),
            json!({"sub": "a", "act": {"sub": "b", "iss": "https://i", "act": {"sub": "c"}}})
        );
        assert_eq!(act_claim(&[]), None);
    }

    #[test]
    fn malformed_or_deep_chains_are_refused() {
        for act in [
            json!("alice"),
            json!([{"sub": "a"}]),
            json!({"iss": "x"}),
            json!({"sub": ""}),
            json!({"sub": 7}),
            json!({"sub": "a", "iss": 1}),
            json!({"sub": "a", "act": "b"}),
        ] {
            assert_eq!(
                chain(Some(&act), 3).unwrap_err().code(),
                ErrorCode::InvalidRequest,
                "{act}"
            );
        }
        let deep =
            json!({"sub": "a", "act": {"sub": "b", "act": {"sub": "c", "act": {"sub": "d"}}}});
        assert!(chain(Some(&deep), 3).is_err());
        assert_eq!(chain(Some(&deep), 4).unwrap().len(), 4);
    }

    #[test]
    fn may_act_matches_issuer_and_subject() {
        let actor = Actor {
            sub: "svc".into(),
            iss: Some("https://a".into()),
        };
        assert!(may_act(None, &actor).is_ok());
        assert!(may_act(Some(&json!({"sub": "svc"})), &actor).is_ok());
        assert!(may_act(Some(&json!({"sub": "svc", "iss": "https://a"})), &actor).is_ok());
        for refused in [
            json!({"sub": "svc", "iss": "https://b"}),
            json!({"sub": "other"}),
            json!({"iss": "https://a"}),
            json!("svc"),
            json!({"sub": "svc", "iss": 3}),
        ] {
            assert!(may_act(Some(&refused), &actor).is_err(), "{refused}");
        }
        let no_issuer = Actor {
            sub: "svc".into(),
            iss: None,
        };
        assert!(may_act(Some(&json!({"sub": "svc", "iss": "https://a"})), &no_issuer).is_err());
    }
}
