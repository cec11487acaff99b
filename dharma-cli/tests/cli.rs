//! The `dharma` binary on valid and broken policy files: exit codes, errors with their key
//! and line, the explanation and drawings of the three-tier deployment, and its OpenAPI
//! document checked by a real validator (`openapi-spec-validator`, installed by
//! `scripts/test`) and against the committed spec, so that policy and spec cannot drift.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const THREE_TIER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/three-tier/dharma.toml"
);
const COMMITTED_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/three-tier/openapi.json"
);
const TITLE: &str = "dharma three-tier deployment";

fn dharma(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_dharma"))
        .args(args)
        .output()
        .unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// A file in a directory of the test's own.
fn file(test: &str, name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dharma-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn validator() -> PathBuf {
    std::env::var_os("DHARMA_OPENAPI_VALIDATOR").map_or_else(
        || {
            Path::new(&std::env::var("HOME").unwrap())
                .join(".cache/dharma/openapi-venv/bin/openapi-spec-validator")
        },
        PathBuf::from,
    )
}

/// Runs the real validator on a spec; its verdict and output.
fn validate(spec: &Path) -> (bool, String) {
    let out = Command::new(validator())
        .arg(spec)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "openapi-spec-validator ({}) cannot run: {e}; scripts/test installs it",
                validator().display()
            )
        });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_accepts_the_three_tier_policy() {
    let (code, out, err) = dharma(&["check", THREE_TIER]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ok (2 domains, 13 endpoints, 6 mechanisms)"),
        "{out}"
    );
}

#[test]
fn check_names_the_key_and_line_of_each_problem() {
    let valid = std::fs::read_to_string(THREE_TIER).unwrap();
    let cases = [
        // A domain trusting a mechanism that does not exist.
        (
            "unknown-mechanism",
            valid.replacen("trust = \"inner-trust\"", "trust = \"inner-trsut\"", 1),
            "domains[1]",
            "inner-trsut",
        ),
        // A mechanism setting of the wrong type.
        (
            "wrong-type",
            valid.replacen("bind = [\"iss\"]", "bind = \"iss\"", 1),
            "mechanisms.org-jwt.bind",
            "expected a sequence",
        ),
        // A rule of no form.
        (
            "bad-rule",
            valid.replacen(
                "exposure = \"interior+boundary\"",
                "exposure = \"interior+boundary\"\nrule = { role = \"admin\", scope = \"x\" }",
                1,
            ),
            "endpoints[9].rule",
            "rule",
        ),
        // An endpoint in a domain nobody declared.
        (
            "unknown-domain",
            valid.replacen(
                "domain = \"inner\"\npath = \"/inner-sts/token\"",
                "domain = \"innr\"\npath = \"/inner-sts/token\"",
                1,
            ),
            "endpoints[11]",
            "innr",
        ),
    ];
    for (name, text, key, words) in cases {
        assert_ne!(text, valid, "{name}: the fixture changed nothing");
        let path = file("check", &format!("{name}.toml"), &text);
        let (code, out, err) = dharma(&["check", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(err.contains(&format!(" {key}: ")), "{name}: {err}");
        assert!(err.contains(words), "{name}: {err}");
        // The line given is the line of the key (or of its table) in the file.
        let line: usize = err
            .split(':')
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no line in {err}"));
        let at = text.lines().nth(line - 1).unwrap();
        let leaf = key.rsplit('.').next().unwrap().split('[').next().unwrap();
        assert!(
            at.contains(leaf) || at.starts_with("[["),
            "{name}: line {line} is {at:?}"
        );
    }
    // TOML syntax: toml's own message, with the line.
    let path = file(
        "check",
        "syntax.toml",
        "[[domains]]\nname = \"a\"\ntrust = \n",
    );
    let (code, _, err) = dharma(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("syntax.toml:3:"), "{err}");
    // Unreadable file, unknown command: 2.
    assert_eq!(dharma(&["check", "/nonexistent/dharma.toml"]).0, 2);
    assert_eq!(dharma(&["frobnicate"]).0, 2);
}

#[test]
fn explain_says_who_reaches_each_endpoint() {
    let (code, out, err) = dharma(&["explain", THREE_TIER]);
    assert_eq!(code, 0, "{err}");
    let block = |path: &str| {
        out.split("\n\n")
            .find(|b| {
                b.lines()
                    .next()
                    .is_some_and(|l| l.contains(&format!(" {path} ")))
            })
            .unwrap_or_else(|| panic!("no {path} in {out}"))
            .to_owned()
    };
    let gateway = block("/api/orders/{id}");
    assert!(
        gateway.contains("access: client-token (introspection)"),
        "{gateway}"
    );
    assert!(gateway.contains("scopes orders:read"), "{gateway}");
    assert!(
        gateway.contains("outside client: yes (boundary via client-token); outer services: no; inner services: no"),
        "{gateway}"
    );
    let ledger = block("/inner.Ledger/Record");
    assert!(ledger.contains("inside outer"), "{ledger}");
    assert!(ledger.contains("hierarchical"), "{ledger}");
    assert!(
        ledger.contains("outer services: yes (boundary via org-jwt)"),
        "{ledger}"
    );
    let reserve = block("/inner.Inventory/Reserve");
    assert!(
        reserve.contains("trust: inner-trust (all_of: inner-network (network), inner-caller (accountability_jwt of inner-sts-jwt))"),
        "{reserve}"
    );
    assert!(
        reserve.contains("outside client: no; outer services: no; inner services: yes"),
        "{reserve}"
    );
}

#[test]
fn graph_draws_the_hierarchy_in_both_formats() {
    let (code, mermaid, _) = dharma(&["graph", THREE_TIER]);
    assert_eq!(code, 0);
    assert!(mermaid.starts_with("flowchart LR\n"));
    // inner is drawn inside outer.
    let outer = mermaid.find("subgraph d_outer").unwrap();
    let inner = mermaid.find("subgraph d_inner").unwrap();
    let ends: Vec<usize> = mermaid.match_indices("\n  end\n").map(|(i, _)| i).collect();
    assert!(outer < inner && inner < ends[0], "{mermaid}");
    assert!(
        mermaid.contains("svc_outer -- \"org-jwt\" --> e8"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("outside -- \"client-token\" --> e0"),
        "{mermaid}"
    );
    let (code, dot, _) = dharma(&["graph", THREE_TIER, "--format", "dot"]);
    assert_eq!(code, 0);
    assert!(dot.starts_with("digraph dharma {"));
    assert!(dot.contains("subgraph cluster_inner"), "{dot}");
    // The README's picture is rendered from this output (graphviz): its source must be
    // the policy's drawing of today.
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/three-tier.dot"
    ))
    .unwrap();
    assert!(
        dot == committed,
        "docs/three-tier.dot has drifted from the policy: regenerate it and docs/three-tier.svg \
         (dharma graph examples/three-tier/dharma.toml --format dot | dot -Tsvg)"
    );
    assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
}

#[test]
fn the_openapi_document_is_valid_and_matches_the_committed_spec() {
    let (code, out, err) = dharma(&["openapi", THREE_TIER, "--title", TITLE]);
    assert_eq!(code, 0, "{err}");
    let spec = file("openapi", "three-tier.json", &out);
    let (valid, report) = validate(&spec);
    assert!(valid, "{report}");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(COMMITTED_SPEC).unwrap()).unwrap();
    let generated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        generated == committed,
        "the policy and examples/three-tier/openapi.json have drifted: regenerate it with \
         `dharma openapi examples/three-tier/dharma.toml --title {TITLE:?}`"
    );
    let op = &generated["paths"]["/orders/{id}"]["get"];
    assert_eq!(
        op["security"],
        serde_json::json!([{"org-jwt": ["orders:read"]}])
    );
    assert_eq!(op["parameters"][0]["name"], "id");
    assert_eq!(
        generated["paths"]["/billing/health"]["get"]["security"],
        serde_json::json!([])
    );

    // A spec that is not OpenAPI is refused by the validator (it checks something).
    let broken = file(
        "openapi",
        "broken.json",
        r#"{"openapi":"3.1.0","paths":{"/x":{"get":{"security":{}}}}}"#,
    );
    assert!(!validate(&broken).0);
}

#[test]
fn merging_keeps_the_spec_and_adds_the_security() {
    let spec = file(
        "merge",
        "api.json",
        r#"{"openapi": "3.1.0", "info": {"title": "orders", "version": "2"},
            "paths": {"/orders/{id}": {"get": {"summary": "One order",
              "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
              "responses": {"200": {"description": "the order"}}}}}}"#,
    );
    let (code, out, err) = dharma(&["openapi", THREE_TIER, "--merge", spec.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let merged: serde_json::Value = serde_json::from_str(&out).unwrap();
    let op = &merged["paths"]["/orders/{id}"]["get"];
    assert_eq!(op["summary"], "One order");
    assert_eq!(op["responses"]["200"]["description"], "the order");
    assert_eq!(
        op["security"],
        serde_json::json!([{"org-jwt": ["orders:read"]}])
    );
    assert_eq!(merged["info"]["title"], "orders");
    assert!(merged["components"]["securitySchemes"]["client-token"].is_object());
    let written = file("merge", "merged.json", &out);
    let (valid, report) = validate(&written);
    assert!(valid, "{report}");

    let old = file(
        "merge",
        "old.json",
        r#"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}"#,
    );
    let (code, _, err) = dharma(&["openapi", THREE_TIER, "--merge", old.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("3.1"), "{err}");
}

#[test]
fn a_catch_all_endpoint_is_written_as_a_valid_template_that_says_so() {
    let valid = std::fs::read_to_string(THREE_TIER).unwrap();
    let text = valid.replacen(
        "path = \"/billing/health\"",
        "path = \"/billing/files/{*rest}\"",
        1,
    );
    assert_ne!(text, valid, "the fixture changed nothing");
    let policy = file("openapi", "catch-all.toml", &text);
    let (code, out, err) = dharma(&["openapi", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let spec = file("openapi", "catch-all.json", &out);
    let (ok, report) = validate(&spec);
    assert!(ok, "{report}");
    let generated: serde_json::Value = serde_json::from_str(&out).unwrap();
    let op = &generated["paths"]["/billing/files/{rest}"]["get"];
    assert_eq!(op["x-dharma"]["catch-all"], "rest");
    assert_eq!(op["parameters"][0]["name"], "rest");
    assert!(
        op["parameters"][0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("rest of the path"))
    );
}
