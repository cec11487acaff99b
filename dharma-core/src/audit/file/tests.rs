//! The JSON-lines sink: lines, overflow policies, gaps, rotation, shutdown.

use std::{
    path::{Path, PathBuf},
    sync::atomic::AtomicUsize,
    time::SystemTime,
};

use http::Method;
use serde_json::Value;

use super::*;
use crate::{
    Decision, Enforcer, RequestView,
    audit::{AuditIdentity, EventId, Outcome, TokenActivity},
    context::{Assurance, IdentityKind},
    model::{Domain, Endpoint, Topology},
};

/// A directory of its own for each test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("dharma-audit-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("audit.jsonl")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The lines of a file, each checked against the published schema.
fn lines(path: &Path) -> Vec<Value> {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        let schema = serde_json::from_str(include_str!("../../../../docs/audit.schema.json"));
        jsonschema::validator_for(&schema.unwrap()).unwrap()
    });
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a partial line: {text:?}"
    );
    text.lines()
        .map(|l| {
            let line = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(schema.is_valid(&line), "not of the schema: {l}");
            line
        })
        .collect()
}

fn decision(path: &str) -> AuditEvent {
    AuditEvent {
        id: EventId::next(),
        at: SystemTime::now(),
        revision: 7,
        outcome: Outcome::Deny,
        reason: "token_expired",
        detail: Some("expired".into()),
        status: 401,
        method: Method::GET,
        path: path.into(),
        peer: Some("127.0.0.1:4000".parse().unwrap()),
        endpoint: Some("orders".into()),
        domain: Some("outer".parse().unwrap()),
        lane: Some(crate::Lane::Trust),
        mechanism: Some("jwt".parse().unwrap()),
        identities: vec![AuditIdentity {
            kind: IdentityKind::Workload,
            subject: "spiffe://org/gw".into(),
            issuer: Some("https://sts.outer".parse().unwrap()),
            assurance: Assurance::Authenticated,
            token_id: Some("j-1".into()),
        }],
        branches: Vec::new(),
    }
}

#[test]
fn copied_and_boxed_decisions_are_written_as_the_event_serializes() {
    let dir = Dir::new("copied");
    let sink = JsonLinesSink::builder(dir.file()).build().unwrap();
    let short = decision("/orders/7");
    let long = decision(&format!("/{}", "é".repeat(300)));
    sink.record(&short);
    sink.try_record(long.clone()).unwrap();
    sink.flush().unwrap();
    let text = std::fs::read_to_string(dir.file()).unwrap();
    let expected = [&short, &long].map(|e| serde_json::to_string(e).unwrap());
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    assert_eq!(lines(&dir.file()).len(), 2);
}

#[test]
fn each_event_is_one_json_line() {
    let dir = Dir::new("lines");
    let sink = JsonLinesSink::builder(dir.file()).build().unwrap();
    let hostile = "/a\nb\u{1b}[2J\u{0}\"}";
    sink.record(&decision(hostile));
    let mut token = TokenEvent::new(TokenActivity::Revoked, "revoked", SystemTime::now());
    token.subject = Some("alice".into());
    token.audience = vec!["orders".into()];
    sink.record_token(&token);
    sink.record_policy(&PolicyEvent {
        id: EventId::next(),
        at: SystemTime::now(),
        revision: 2,
        applied: true,
        reason: "policy_applied",
        source: "code".into(),
        detail: None,
    });
    sink.flush().unwrap();
    let text = std::fs::read_to_string(dir.file()).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let got = lines(&dir.file());
    assert_eq!(got[0]["v"], 1);
    assert_eq!(got[0]["type"], "decision");
    assert_eq!(
        got[0]["path"], hostile,
        "escaped by JSON and read back whole"
    );
    assert_eq!(got[0]["identities"][0]["issuer"], "https://sts.outer");
    assert_eq!(got[0]["peer"], "127.0.0.1:4000");
    assert_eq!(got[1]["type"], "token");
    assert_eq!(got[1]["activity"], "revoked");
    assert_eq!(got[1]["audience"], serde_json::json!(["orders"]));
    assert_eq!(got[2]["type"], "policy");
    assert!(got[2].get("detail").is_none(), "absent values are left out");
    assert_eq!(
        sink.stats(),
        AuditStats {
            written: 3,
            dropped: 0
        }
    );
}

#[test]
fn drop_counts_what_is_lost_and_writes_a_gap_when_room_returns() {
    let dir = Dir::new("drop");
    let sink = JsonLinesSink::builder(dir.file())
        .capacity(2)
        .paused()
        .build()
        .unwrap();
    for n in 0..5 {
        sink.record(&decision(&format!("/{n}")));
    }
    assert_eq!(sink.stats().dropped, 3);
    sink.resume();
    sink.flush().unwrap();
    let got = lines(&dir.file());
    let kinds: Vec<_> = got.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["decision", "decision", "gap"]);
    assert_eq!(got[2]["dropped"], 3);
    // The gap is reported once.
    sink.record(&decision("/later"));
    sink.flush().unwrap();
    assert_eq!(lines(&dir.file()).len(), 4);
}

#[test]
fn block_waits_for_room_and_loses_nothing() {
    let dir = Dir::new("block");
    let sink = Arc::new(
        JsonLinesSink::builder(dir.file())
            .capacity(1)
            .overflow(Overflow::Block)
            .paused()
            .build()
            .unwrap(),
    );
    let producer = {
        let sink = sink.clone();
        std::thread::spawn(move || {
            for n in 0..3 {
                sink.record(&decision(&format!("/{n}")));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(!producer.is_finished(), "the second event waits for room");
    sink.resume();
    producer.join().unwrap();
    sink.flush().unwrap();
    assert_eq!(lines(&dir.file()).len(), 3);
    assert_eq!(sink.stats().dropped, 0);
}

fn public_enforcer(sink: Arc<JsonLinesSink>) -> Enforcer {
    let topology = Topology::builder()
        .domain(Domain::builder("edge"))
        .endpoint(Endpoint::public("edge", "/health").methods(["GET"]))
        .build()
        .unwrap();
    Enforcer::builder(topology).audit(sink).build().unwrap()
}

async fn status(enforcer: &Enforcer) -> (u16, String) {
    let headers = http::HeaderMap::new();
    match enforcer
        .decide(&RequestView::new(&Method::GET, "/health", &headers))
        .await
    {
        Decision::Allow(_) => (200, "allowed".into()),
        Decision::Deny(d) => (d.status().as_u16(), d.rejection().code().into()),
    }
}

#[tokio::test]
async fn deny_refuses_requests_until_the_writer_catches_up() {
    let dir = Dir::new("deny");
    let sink = Arc::new(
        JsonLinesSink::builder(dir.file())
            .capacity(1)
            .overflow(Overflow::Deny)
            .paused()
            .build()
            .unwrap(),
    );
    let enforcer = public_enforcer(sink.clone());
    assert_eq!(status(&enforcer).await, (200, "allowed".into()));
    assert_eq!(status(&enforcer).await, (503, "audit_unavailable".into()));
    sink.resume();
    sink.flush().unwrap();
    assert_eq!(status(&enforcer).await, (200, "allowed".into()));
    sink.flush().unwrap();
    let got = lines(&dir.file());
    let seen: Vec<_> = got
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap(),
                l["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    // The refused allow and the refusal itself found no room: one gap of two.
    assert_eq!(
        seen,
        [
            ("decision", "allowed"),
            ("gap", ""),
            ("decision", "allowed")
        ]
    );
    assert_eq!(got[1]["dropped"], 2);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn deny_refuses_requests_while_the_file_cannot_be_written() {
    let sink = Arc::new(
        JsonLinesSink::builder("/dev/full")
            .overflow(Overflow::Deny)
            .build()
            .unwrap(),
    );
    let enforcer = public_enforcer(sink.clone());
    assert_eq!(status(&enforcer).await.0, 200);
    assert!(sink.flush().is_err(), "the device is full");
    assert_eq!(status(&enforcer).await, (503, "audit_unavailable".into()));
    assert_eq!(sink.stats().written, 0);
    assert!(sink.stats().dropped >= 2);
}

#[test]
fn rotates_by_size_and_keeps_the_newest_files() {
    let dir = Dir::new("size");
    let sink = JsonLinesSink::builder(dir.file())
        .rotate_at_bytes(1000)
        .keep(2)
        .build()
        .unwrap();
    for n in 0..20 {
        sink.record(&decision(&format!("/{n}")));
    }
    sink.flush().unwrap();
    let rotated = |n: usize| PathBuf::from(format!("{}.{n}", dir.file().display()));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists(), "only two rotated files are kept");
    let mut paths: Vec<u64> = Vec::new();
    for file in [rotated(2), rotated(1), dir.file()] {
        assert!(std::fs::metadata(&file).unwrap().len() <= 1000);
        for line in lines(&file) {
            paths.push(line["path"].as_str().unwrap()[1..].parse().unwrap());
        }
    }
    // The newest events, in order, with none missing between the kept files.
    assert_eq!(paths.last(), Some(&19));
    assert!(paths.windows(2).all(|w| w[1] == w[0] + 1), "{paths:?}");
}

#[test]
fn rotates_by_age() {
    let dir = Dir::new("age");
    let sink = JsonLinesSink::builder(dir.file())
        .rotate_every(Duration::from_millis(300))
        .build()
        .unwrap();
    sink.record(&decision("/old"));
    sink.flush().unwrap();
    // Rotated while idle, at 300 ms; the new file is young when the next event comes.
    std::thread::sleep(Duration::from_millis(400));
    sink.record(&decision("/new"));
    sink.flush().unwrap();
    let old = lines(Path::new(&format!("{}.1", dir.file().display())));
    assert_eq!(old.len(), 1);
    assert_eq!(old[0]["path"], "/old");
    assert_eq!(lines(&dir.file())[0]["path"], "/new");
}

#[test]
fn dropping_the_sink_writes_everything_queued() {
    let dir = Dir::new("close");
    let sink = JsonLinesSink::builder(dir.file()).build().unwrap();
    for n in 0..1000 {
        sink.record(&decision(&format!("/{n}")));
    }
    drop(sink);
    assert_eq!(lines(&dir.file()).len(), 1000);
}

#[test]
fn settings_out_of_range_are_refused() {
    let dir = Dir::new("settings");
    let invalid = |b: JsonLinesSinkBuilder| matches!(b.build(), Err(FileSinkError::Invalid(_)));
    assert!(invalid(JsonLinesSink::builder(dir.file()).capacity(0)));
    assert!(invalid(
        JsonLinesSink::builder(dir.file()).rotate_at_bytes(0)
    ));
    assert!(invalid(
        JsonLinesSink::builder(dir.file()).rotate_every(Duration::ZERO)
    ));
    assert!(invalid(
        JsonLinesSink::builder(dir.file())
            .rotate_at_bytes(10)
            .keep(0)
    ));
    let missing = JsonLinesSink::builder(dir.0.join("no/such/dir/audit.jsonl")).build();
    assert!(matches!(missing, Err(FileSinkError::Open { .. })));
}
