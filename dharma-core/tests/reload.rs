//! Hot reload against a real key-set server on 127.0.0.1: whole policies under load,
//! warm instances kept, bad files refused and audited, a Kubernetes ConfigMap swap
//! followed by the watcher, and a mechanism kind of the user's configured from the file.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use dharma_core::{
    Authenticated, BoxFuture, Decision, Enforcer, Identity, IdentityKind, Rejection, RequestView,
    Verifier,
    audit::{MemoryAuditSink, Outcome},
    config::{Config, ConfigError, Loaded},
    mechanism::{BuildContext, Instance, KindError, MechanismKind, jwt::JwtVerifier},
};
use dharma_test_support::{
    TestKey,
    keys::{claims, jwks},
    server::{Reply, TestServer},
};
use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};

/// A policy with one boundary endpoint, `/orders`, needing `scope`; `extra` goes into
/// the JWT mechanism's table.
fn policy(iss: &str, scope: &str, extra: &str) -> String {
    format!(
        r#"
        [mechanisms.org-jwt]
        kind = "jwt"
        {extra}
        [[mechanisms.org-jwt.issuers]]
        issuer = "{iss}"
        jwks_uri = "{iss}/jwks"
        audiences = ["api"]

        [[domains]]
        name = "outer"
        access = "org-jwt"

        [[endpoints]]
        domain = "outer"
        path = "/orders"
        methods = ["GET"]
        exposure = "boundary"
        scopes = ["{scope}"]
        "#
    )
}

struct World {
    server: TestServer,
    key: TestKey,
    iss: String,
    audit: Arc<MemoryAuditSink>,
}

async fn world() -> World {
    let key = TestKey::generate("ES256", "reload-1");
    let server = TestServer::start().await;
    server.set("/jwks", Reply::json(&jwks(&[&key])));
    let iss = server.url("");
    World {
        server,
        key,
        iss,
        audit: Arc::new(MemoryAuditSink::default()),
    }
}

/// Decides `GET /orders` with `token`: the status, 200 for an allow.
async fn status(enforcer: &Enforcer, token: &str) -> u16 {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let view = RequestView::new(&Method::GET, "/orders", &headers)
        .with_peer("127.0.0.1:40000".parse().unwrap());
    match enforcer.decide(&view).await {
        Decision::Allow(_) => 200,
        Decision::Deny(d) => d.status().as_u16(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reloads_under_load_apply_whole_policies_and_keep_the_key_set_warm() {
    let w = world().await;
    let read = policy(&w.iss, "orders:read", "");
    let write = policy(&w.iss, "orders:write", "");
    let loaded = Config::from_toml(&read)
        .unwrap()
        .loader()
        .audit(w.audit.clone())
        .start()
        .await
        .unwrap();
    let enforcer = loaded.enforcer().clone();
    let token = w.key.sign(&claims(&w.iss, "api", "orders:read"));
    assert_eq!(status(&enforcer, &token).await, 200);
    let jwt_before = loaded.instance::<JwtVerifier>("org-jwt").unwrap();

    // Four clients decide as fast as they can while the policy flips between requiring
    // `orders:read` (odd revisions) and `orders:write` (even ones), 40 times.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (enforcer, token, stop) = (enforcer.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let mut decided = 0_u32;
                while !stop.load(Ordering::Relaxed) && decided < 200_000 {
                    let s = status(&enforcer, &token).await;
                    assert!(s == 200 || s == 403, "status {s}");
                    decided += 1;
                    // A cached token decides without awaiting anything: let the
                    // reloading task run.
                    if decided.is_multiple_of(16) {
                        tokio::task::yield_now().await;
                    }
                }
                decided
            })
        })
        .collect();
    for n in 0..40 {
        let text = if n % 2 == 0 { &write } else { &read };
        let revision = loaded
            .reload_from(Config::from_toml(text).unwrap())
            .await
            .unwrap();
        assert_eq!(revision, n + 2);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut decided = 0;
    for c in clients {
        decided += c.await.unwrap();
    }
    assert!(decided > 0);

    // Every decision was made whole on one revision: allowed exactly on the revisions
    // requiring the scope the token has.
    let events = w.audit.take();
    assert!(events.len() > 40, "{} events", events.len());
    let mut revisions_seen = std::collections::BTreeSet::new();
    for e in &events {
        revisions_seen.insert(e.revision);
        let expect_allow = e.revision % 2 == 1;
        assert_eq!(
            (e.outcome == Outcome::Allow, e.status),
            (expect_allow, if expect_allow { 200 } else { 403 }),
            "revision {} reason {}",
            e.revision,
            e.reason
        );
    }
    assert!(revisions_seen.len() > 2, "{revisions_seen:?}");
    assert_eq!(w.audit.policy_events().len(), 40);
    assert!(w.audit.policy_events().iter().all(|p| p.applied));

    // The JWT mechanism's table never changed: one instance, one key fetch.
    let jwt_after = loaded.instance::<JwtVerifier>("org-jwt").unwrap();
    assert!(Arc::ptr_eq(&jwt_before, &jwt_after));
    assert_eq!(w.server.hits("/jwks"), 1);

    // Changing the table builds a new instance, warmed up before the switch.
    loaded
        .reload_from(
            Config::from_toml(&policy(&w.iss, "orders:read", "leeway_seconds = 5")).unwrap(),
        )
        .await
        .unwrap();
    let rebuilt = loaded.instance::<JwtVerifier>("org-jwt").unwrap();
    assert!(!Arc::ptr_eq(&jwt_before, &rebuilt));
    assert_eq!(w.server.hits("/jwks"), 2);
    assert_eq!(status(&enforcer, &token).await, 200);
    assert_eq!(w.server.hits("/jwks"), 2, "the new instance was warm");
}

/// A fresh directory under the system's temporary directory.
fn scratch(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dharma-reload-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn start_from(path: &Path, w: &World, watch: bool) -> Loaded {
    let mut loader = Config::from_file(path)
        .unwrap()
        .loader()
        .audit(w.audit.clone());
    if watch {
        loader = loader.watch();
    }
    loader.start().await.unwrap()
}

#[tokio::test]
async fn a_bad_file_leaves_the_policy_in_force_and_is_audited() {
    let w = world().await;
    let dir = scratch("bad");
    let path = dir.join("dharma.toml");
    std::fs::write(&path, policy(&w.iss, "orders:read", "")).unwrap();
    let loaded = start_from(&path, &w, false).await;
    let token = w.key.sign(&claims(&w.iss, "api", "orders:read"));
    let source = path.display().to_string();

    let refusals: [(&str, Option<String>, &str); 3] = [
        (
            "syntax",
            Some("[[domains]\nname = ".into()),
            "policy_invalid",
        ),
        (
            "semantics",
            Some(
                policy(&w.iss, "orders:read", "")
                    .replace("domain = \"outer\"", "domain = \"nowhere\""),
            ),
            "policy_invalid",
        ),
        ("gone", None, "policy_unreadable"),
    ];
    for (what, text, reason) in refusals {
        match text {
            Some(t) => std::fs::write(&path, t).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        let err = loaded.reload().await.unwrap_err();
        assert_eq!(loaded.enforcer().revision(), 1, "{what}: {err}");
        assert_eq!(status(loaded.enforcer(), &token).await, 200, "{what}");
        let last = w.audit.policy_events().pop().unwrap();
        assert!(!last.applied, "{what}");
        assert_eq!(
            (last.reason, &*last.source, last.revision),
            (reason, source.as_str(), 1)
        );
        assert_eq!(last.detail.as_deref(), Some(err.to_string().as_str()));
    }

    // A good file again is applied.
    std::fs::write(&path, policy(&w.iss, "orders:write", "")).unwrap();
    assert_eq!(loaded.reload().await.unwrap(), 2);
    assert_eq!(status(loaded.enforcer(), &token).await, 403);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits (at most 10 seconds) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes `text` the way the kubelet updates a mounted ConfigMap: a new timestamped
/// directory, a `..data_tmp` symlink to it renamed over `..data`.
fn configmap_update(dir: &Path, version: &str, text: &str) {
    let data = dir.join(format!("..{version}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("dharma.toml"), text).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_follows_a_kubernetes_configmap_swap() {
    let w = world().await;
    let dir = scratch("configmap");
    configmap_update(&dir, "2026_11_28_01", &policy(&w.iss, "orders:read", ""));
    std::os::unix::fs::symlink("..data/dharma.toml", dir.join("dharma.toml")).unwrap();
    let loaded = start_from(&dir.join("dharma.toml"), &w, true).await;
    let enforcer = loaded.enforcer().clone();
    let token = w.key.sign(&claims(&w.iss, "api", "orders:read"));
    assert_eq!(status(&enforcer, &token).await, 200);

    configmap_update(&dir, "2026_11_28_02", &policy(&w.iss, "orders:write", ""));
    eventually("the swapped policy is applied", || enforcer.revision() == 2).await;
    assert_eq!(status(&enforcer, &token).await, 403);

    // A broken update is refused, audited, and the policy in force stays.
    configmap_update(&dir, "2026_11_28_03", "[[domains]\n");
    eventually("the broken policy is refused", || {
        w.audit.policy_events().iter().any(|p| !p.applied)
    })
    .await;
    assert_eq!(enforcer.revision(), 2);
    assert_eq!(status(&enforcer, &token).await, 403);
    // One key fetch for the whole run: the JWT mechanism never changed.
    assert_eq!(w.server.hits("/jwks"), 1);

    drop(loaded);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A mechanism of the user's: trusts requests whose `x-mesh` header holds the secret.
#[derive(Debug)]
struct Mesh {
    secret: String,
}

impl Verifier for Mesh {
    fn verify<'a>(
        &'a self,
        req: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        let ok = req
            .headers()
            .get("x-mesh")
            .is_some_and(|v| v.as_bytes() == self.secret.as_bytes());
        Box::pin(async move {
            if ok {
                Ok(Authenticated::new(vec![Identity::new(
                    IdentityKind::Workload,
                    "mesh-peer",
                )]))
            } else {
                Err(Rejection::MissingCredentials)
            }
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MeshSettings {
    secret: String,
}

/// Counts how many instances it built.
#[derive(Default)]
struct MeshKind {
    built: Arc<AtomicUsize>,
}

impl MechanismKind for MeshKind {
    type Settings = MeshSettings;

    fn check(&self, s: &MeshSettings) -> Result<(), KindError> {
        if s.secret.len() < 8 {
            return Err(KindError::setting("secret", "shorter than 8 bytes"));
        }
        Ok(())
    }

    fn build(&self, s: &MeshSettings, _: &BuildContext<'_>) -> Result<Instance, KindError> {
        self.built.fetch_add(1, Ordering::Relaxed);
        Ok(Instance::new(Mesh {
            secret: s.secret.clone(),
        }))
    }
}

fn mesh_policy(secret: &str, path: &str) -> String {
    format!(
        r#"
        [mechanisms.mesh]
        kind = "mesh"
        secret = "{secret}"

        [[domains]]
        name = "inner"
        trust = "mesh"

        [[endpoints]]
        domain = "inner"
        path = "{path}"
        exposure = "interior"
        "#
    )
}

async fn mesh_status(enforcer: &Enforcer, path: &str, secret: &str) -> u16 {
    let mut headers = HeaderMap::new();
    headers.insert("x-mesh", HeaderValue::from_str(secret).unwrap());
    match enforcer
        .decide(&RequestView::new(&Method::GET, path, &headers))
        .await
    {
        Decision::Allow(_) => 200,
        Decision::Deny(d) => d.status().as_u16(),
    }
}

#[tokio::test]
async fn a_user_kind_is_configured_from_the_file_and_kept_across_reloads() {
    let kind = MeshKind::default();
    let built = kind.built.clone();
    let loaded = Config::from_toml(&mesh_policy("first-secret", "/a"))
        .unwrap()
        .loader()
        .kind("mesh", kind)
        .start()
        .await
        .unwrap();
    let e = loaded.enforcer().clone();
    assert_eq!(mesh_status(&e, "/a", "first-secret").await, 200);
    assert_eq!(mesh_status(&e, "/a", "wrong").await, 401);

    // Same settings, other endpoints: the instance is kept.
    loaded
        .reload_from(Config::from_toml(&mesh_policy("first-secret", "/b")).unwrap())
        .await
        .unwrap();
    assert_eq!(built.load(Ordering::Relaxed), 1);
    assert_eq!(mesh_status(&e, "/b", "first-secret").await, 200);
    assert_eq!(mesh_status(&e, "/a", "first-secret").await, 404);

    // New settings: a new instance.
    loaded
        .reload_from(Config::from_toml(&mesh_policy("second-secret", "/b")).unwrap())
        .await
        .unwrap();
    assert_eq!(built.load(Ordering::Relaxed), 2);
    assert_eq!(mesh_status(&e, "/b", "first-secret").await, 401);
    assert_eq!(mesh_status(&e, "/b", "second-secret").await, 200);

    // The kind's own check runs, and names the key; the policy in force stays.
    let err = loaded
        .reload_from(Config::from_toml(&mesh_policy("short", "/b")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "mechanisms.mesh.secret: shorter than 8 bytes"
    );
    assert!(matches!(err, ConfigError::Field { .. }));
    assert_eq!(loaded.enforcer().revision(), 3);

    // Without the kind registered, the file names the kinds it could have used.
    let err = Config::from_toml(&mesh_policy("first-secret", "/a"))
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("mechanisms.mesh: kind must be one of jwt, x5c_jwt"),
        "{err}"
    );
}
