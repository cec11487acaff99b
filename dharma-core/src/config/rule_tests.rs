//! Rules in the file: every form means what the builder means, and a malformed rule is
//! refused with where it is wrong.

use serde_json::json;

use super::*;
use crate::{
    IdentityKind, Lane,
    model::{Rule, Topology},
};

fn topology(rule: &str, roles_claim: &str) -> Result<Topology, ConfigError> {
    Config::from_toml(&format!(
        r#"
        [enforcer]
        {roles_claim}

        [mechanisms.m]
        kind = "custom"

        [[domains]]
        name = "d"
        access = "m"

        [[endpoints]]
        domain = "d"
        path = "/users/{{id}}"
        exposure = "boundary"
        rule = {rule}
        "#
    ))?
    .loader()
    .validate()
}

fn rule_of(rule: &str) -> Rule {
    let t = topology(rule, "").unwrap();
    t.endpoints()[0].requirements().rules()[0].clone()
}

#[test]
fn every_form_means_what_the_builder_means() {
    let cases = [
        (r#"{ role = "admin" }"#, Rule::role("admin")),
        (
            r#"{ scope = "orders:read" }"#,
            Rule::scope("orders:read").unwrap(),
        ),
        (
            r#"{ claim = "a.b", equals = 3 }"#,
            Rule::claim("a.b").equals(3),
        ),
        (
            r#"{ claim = "groups", contains = "x" }"#,
            Rule::claim("groups").contains("x"),
        ),
        (
            r#"{ claim = "region", one_of = ["eu", "us"] }"#,
            Rule::claim("region").one_of(["eu", "us"]),
        ),
        (
            r#"{ claim = "email", exists = true }"#,
            Rule::claim("email").exists(),
        ),
        (
            r#"{ claim = "email", exists = false }"#,
            Rule::not(Rule::claim("email").exists()),
        ),
        (
            r#"{ claim = "sub", equals_param = "id" }"#,
            Rule::claim("sub").equals_param("id"),
        ),
        (
            r#"{ kind = "client_app" }"#,
            Rule::kind(IdentityKind::ClientApp),
        ),
        (
            r#"{ from_domain = "outer.example" }"#,
            Rule::from_domain("outer.example"),
        ),
        (r#"{ lane = "trust" }"#, Rule::lane(Lane::Trust)),
        (r#"{ authorizer = "owner" }"#, Rule::authorizer("owner")),
        (
            r#"{ any = [{ role = "admin" }, { all = [{ claim = "sub", equals_param = "id" }, { not = { claim = "suspended", equals = true } }] }] }"#,
            Rule::any([
                Rule::role("admin"),
                Rule::all([
                    Rule::claim("sub").equals_param("id"),
                    Rule::not(Rule::claim("suspended").equals(json!(true))),
                ]),
            ]),
        ),
    ];
    for (text, built) in cases {
        assert_eq!(rule_of(text), built, "{text}");
    }
    let t = topology(r#"{ role = "a" }"#, r#"roles_claim = "realm_access.roles""#).unwrap();
    assert_eq!(t.roles_claim(), "realm_access.roles");
    assert_eq!(
        topology(r#"{ role = "a" }"#, "").unwrap().roles_claim(),
        "roles"
    );
    assert_eq!(
        topology(r#"{ authorizer = "owner" }"#, "")
            .unwrap()
            .authorizers(),
        ["owner"]
    );
}

#[test]
fn malformed_rules_say_where() {
    let error = |rule: &str| topology(rule, "").unwrap_err().to_string();
    for (rule, expected) in [
        (
            r#"{ role = "a", kind = "workload" }"#,
            "endpoints[0].rule: rule: use exactly one of",
        ),
        (r#"{ claim = "a" }"#, "a claim takes exactly one of"),
        (
            r#"{ claim = "a", equals = 1, exists = true }"#,
            "a claim takes exactly one of",
        ),
        (r#"{ equals = 1 }"#, "use exactly one of"),
        (
            r#"{ any = [{ role = "a" }, { not = {} }] }"#,
            "rule.any[1].not: use exactly one of",
        ),
        (r#"{ scope = "two words" }"#, "rule.scope:"),
        (r#"{ kind = "robot" }"#, "unknown variant"),
        (r#"{ rol = "a" }"#, "unknown field"),
        (
            r#"{ claim = "sub", equals_param = "nope" }"#,
            "path parameter \"nope\"",
        ),
    ] {
        let e = error(rule);
        assert!(e.contains(expected), "{rule}: {e}");
    }
}
