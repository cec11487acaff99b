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

/// The issue's reproduction: with `at+jwt` required, a token without `sub`,
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
        let text = c.to_string();
        rules.check(&Payload::read(&text)?, &["api".parse().unwrap()], 1500)
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

/// Checks claims given as JSON.
fn check(r: &ClaimRules, c: &Value, now: u64) -> Result<u64, TokenError> {
    let text = c.to_string();
    r.check(&Payload::read(&text)?, &aud(), now)
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
    let c = json!({"exp": 1000, "aud": "api", "jti": "1"});
    assert_eq!(check(&r, &c, 1000).unwrap(), 1000);
    assert!(check(&r, &c, 1030).is_ok());
    assert_eq!(
        check(&r, &c, 1031).unwrap_err(),
        TokenError::Expired {
            now: 1031,
            exp: 1000
        }
    );
    let c = json!({"exp": 5000, "nbf": 2000, "aud": "api", "jti": "1"});
    assert!(check(&r, &c, 1970).is_ok());
    assert_eq!(
        check(&r, &c, 1969).unwrap_err(),
        TokenError::NotYetValid {
            now: 1969,
            nbf: 2000
        }
    );
    let c = json!({"exp": 5000, "iat": 2000, "aud": "api", "jti": "1"});
    assert!(matches!(
        check(&r, &c, 1000),
        Err(TokenError::IssuedInFuture { .. })
    ));
    let c = json!({"exp": 1000.9, "aud": "api", "jti": "1"});
    assert!(check(&r, &c, 1030).is_ok());
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
            check(&r, &c, 0).unwrap_err(),
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
    assert!(check(&r, &json!({"exp":9,"aud":["x","api"],"jti":"1"}), 0).is_ok());
    for a in [json!("x"), json!(["x"]), json!(null), json!(7), json!([7])] {
        let c = json!({"exp": 9, "aud": a, "jti": "1"});
        assert_eq!(check(&r, &c, 0).unwrap_err(), TokenError::WrongAudience);
    }
    let c = json!({"exp": 9, "jti": "1"});
    assert_eq!(check(&r, &c, 0).unwrap_err(), TokenError::WrongAudience);
}

#[test]
fn required_claims() {
    let c = json!({"exp": 9, "aud": "api"});
    assert_eq!(
        check(&rules(), &c, 0).unwrap_err(),
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
    let ids = |v: Value| {
        let text = v.to_string();
        let names = Payload::read(&text).unwrap().names();
        names.identities(text.clone(), Some(&iss), "t", None)
    };
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
    // As a map reads it (introspection): `azp` when `client_id` is not a string.
    assert_eq!(
        kinds(json!({"sub":"alice","client_id":7,"azp":"web"})),
        [
            (IdentityKind::EndUser, "alice".into()),
            (IdentityKind::ClientApp, "web".into())
        ]
    );
    assert_eq!(
        kinds(json!({"sub":"alice","client_id":"","azp":"web"})),
        [(IdentityKind::EndUser, "alice".into())]
    );
    assert_eq!(
        kinds(json!({"sub":"alice"})),
        [(IdentityKind::EndUser, "alice".into())]
    );
    assert!(ids(json!({"sub":""})).is_err());
}

/// Registered claims are found by their value, however a name is escaped, and the
/// lazily built claims are the payload's.
#[test]
fn payload_names_escaped_and_lazy_claims() {
    let text = r#"{"\u0073ub":"al\u0069ce","client_id":"web","jti":"j","scp":["a","b c"],"cnf":{"jkt":"x"},"x":[1]}"#;
    let names = Payload::read(text).unwrap().names();
    let ids = names.identities(text.to_owned(), None, "t", None).unwrap();
    assert_eq!(ids[0].subject(), "alice");
    assert_eq!(ids[0].token_id(), Some("j"));
    let claims = ids[0].claims();
    assert_eq!(claims.scopes().collect::<Vec<_>>(), ["a"]);
    assert_eq!(claims.confirmation(), &Confirmation::Unverifiable);
    assert_eq!(claims, &Claims::from_json(text).unwrap());
    assert_eq!(claims.get("x"), Some(&json!([1])));
    assert!(Payload::read(r#"{"sub":"a","\u0073ub":"b"}"#).is_err());
}

/// The granted scopes are the same whether they are read in place (a plain `scope`
/// string alone) or built (escapes, `scp`).
#[test]
fn granted_scopes_in_place_or_built() {
    for (text, scopes) in [
        (
            r#"{"sub":"a","scope":"read write"}"#,
            &["read", "write"][..],
        ),
        (r#"{"scope":" read  write ","sub":"a"}"#, &["read", "write"]),
        (
            r#"{"sub":"a","scope":"read\u0020w\u0072ite"}"#,
            &["read", "write"],
        ),
        (
            r#"{"sub":"a","scope":"read","scp":["write"]}"#,
            &["read", "write"],
        ),
        (r#"{"sub":"a","scope":""}"#, &[]),
        (r#"{"sub":"a","scope":7}"#, &[]),
        (r#"{"sub":"é","scope":"ünï cödé"}"#, &["ünï", "cödé"]),
    ] {
        let names = Payload::read(text).unwrap().names();
        let ids = names.identities(text.to_owned(), None, "t", None).unwrap();
        let claims = ids[0].claims();
        assert_eq!(claims.scopes().collect::<Vec<_>>(), scopes, "{text}");
        assert_eq!(
            claims.scopes().collect::<Vec<_>>(),
            Claims::from_json(text)
                .unwrap()
                .scopes()
                .collect::<Vec<_>>(),
            "{text}"
        );
    }
}

/// NumericDate readings, on either side of the nineteen-digit fast path.
#[test]
fn numeric_dates() {
    let read = |text: &str| {
        let payload = format!(r#"{{"exp":{text}}}"#);
        numeric_date(Payload::read(&payload).unwrap().exp, "exp")
    };
    for (text, value) in [
        ("0", 0),
        ("1764400000", 1_764_400_000),
        ("1764400000.75", 1_764_400_000),
        ("1.5e3", 1500),
        ("9999999999999999999", 9_999_999_999_999_999_999),
        ("18446744073709551615", u64::MAX),
    ] {
        assert_eq!(read(text), Ok(Some(value)), "{text}");
    }
    for bad in ["-1", "18446744073709551616", "1e300", "-0.5"] {
        assert_eq!(read(bad), Err(TokenError::Claim("exp".into())), "{bad}");
    }
}
