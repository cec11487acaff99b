//! The audit trail's JSON against its published JSON Schema (`docs/audit.schema.json`),
//! checked by a real validator: every decision of the conformance suite, and a JSON-lines
//! file with policy and token events of every kind.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::{collections::BTreeSet, sync::Arc, time::SystemTime};

use dharma_core::{
    Enforcer, RequestView,
    audit::{AuditSink, FanOut, JsonLinesSink, TokenActivity, TokenEvent},
    model::{Domain, Endpoint, Topology},
};
use dharma_test_support::conformance::{cases, world};
use serde_json::{Value, json};

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(include_str!("../../docs/audit.schema.json")).unwrap();
    jsonschema::meta::validate(&schema).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn check(validator: &jsonschema::Validator, event: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{event}\n{errors:#?}");
}

#[tokio::test]
async fn every_decision_of_the_conformance_suite_fits_the_schema() {
    let validator = validator();
    let world = world();
    let mut reasons = BTreeSet::new();
    for case in cases() {
        world.prepare(&case).await;
        let mut headers = http::HeaderMap::new();
        for (name, value) in world.headers(&case) {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(&value).unwrap(),
            );
        }
        let method = http::Method::from_bytes(case.method.as_bytes()).unwrap();
        let request = RequestView::new(&method, &case.path, &headers)
            .with_peer("127.0.0.1:40000".parse().unwrap());
        let _ = world.enforcer.decide(&request).await;
        for event in world.audit.take() {
            let line = serde_json::to_value(&event).unwrap();
            check(&validator, &line);
            reasons.insert(line["reason"].as_str().unwrap().to_owned());
        }
    }
    // The suite reaches allows and many kinds of denial, so the schema saw them all.
    assert!(reasons.len() >= 15, "{reasons:?}");
}

#[tokio::test]
async fn a_json_lines_file_of_every_event_kind_fits_the_schema() {
    let validator = validator();
    let dir = std::env::temp_dir().join(format!("dharma-audit-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let file = Arc::new(JsonLinesSink::builder(&path).build().unwrap());
    let topology = || {
        Topology::builder()
            .domain(Domain::builder("edge"))
            .endpoint(Endpoint::public("edge", "/health").methods(["GET"]))
            .build()
            .unwrap()
    };
    let enforcer = Enforcer::builder(topology())
        .audit(Arc::new(FanOut(vec![file.clone() as Arc<dyn AuditSink>])))
        .build()
        .unwrap();
    let headers = http::HeaderMap::new();
    for path in ["/health", "/nothing\u{7}here"] {
        let _ = enforcer
            .decide(&RequestView::new(&http::Method::GET, path, &headers))
            .await;
    }
    enforcer
        .reload(topology(), &Default::default(), "code")
        .unwrap();
    enforcer.refuse_policy("/etc/dharma.toml", "policy_invalid", &"line 3: unknown key");
    for activity in [
        TokenActivity::Issued,
        TokenActivity::Exchanged,
        TokenActivity::Refused,
        TokenActivity::Revoked,
        TokenActivity::ReplayDetected,
    ] {
        let mut event = TokenEvent::new(activity, "invalid_target", SystemTime::now());
        event.detail = Some("audience \"x\ny\" unknown".into());
        event.issuer = Some("https://sts.outer".into());
        event.client = Some("gateway".into());
        event.subject = Some("alice".into());
        event.subject_issuer = Some("https://idp".into());
        event.subject_token_id = Some("j-0".into());
        event.actors = vec!["gateway".into()];
        event.audience = vec!["orders".into()];
        event.scope = Some("orders:read".into());
        event.token_id = Some("j-1".into());
        file.record_token(&event);
    }
    file.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut kinds = BTreeSet::new();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        check(&validator, &event);
        kinds.insert(event["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(text.lines().count(), 9);
    assert_eq!(
        kinds,
        BTreeSet::from(["decision", "policy", "token"].map(String::from))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_schema_refuses_what_the_code_does_not_write() {
    let validator = validator();
    let gap = json!({"v": 1, "type": "gap", "id": "0123456789abcdef0123456789abcdef",
        "at": "2026-11-28T14:45:15.123456Z", "dropped": 3});
    check(&validator, &gap);
    for (key, value) in [
        ("v", json!(2)),
        ("type", json!("other")),
        ("id", json!("xyz")),
        ("at", json!("2026-11-28 14:45:15")),
        ("dropped", json!(0)),
        ("token", json!("eyJ...")),
    ] {
        let mut bad = gap.clone();
        bad[key] = value;
        assert!(!validator.is_valid(&bad), "{bad}");
    }
}
