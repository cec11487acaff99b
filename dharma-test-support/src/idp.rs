//! The real OpenID provider (`oidc-provider` 9 from npm), started on 127.0.0.1.
//!
//! Needs `npm ci` in `dharma-test-support/idp` first (`.ci/run` and `scripts/test` do it).

use std::{path::PathBuf, process::Stdio, time::Duration};

use http::Method;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::client;

/// The running provider. Stops when dropped.
#[derive(Debug)]
pub struct Idp {
    issuer: String,
    _child: Child,
}

/// The confidential client registered in the provider.
pub const CLIENT_ID: &str = "svc-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "svc-secret";
/// A client that authenticates with `client_secret_post`.
pub const POST_CLIENT_ID: &str = "svc-post";
/// Its secret.
pub const POST_CLIENT_SECRET: &str = "svc-post-secret";
/// A resource whose access tokens are JWTs (RFC 9068).
pub const RESOURCE: &str = "urn:dharma:orders";
/// Another JWT resource, for wrong-audience tests.
pub const OTHER_RESOURCE: &str = "urn:dharma:other";
/// A resource whose access tokens are opaque.
pub const OPAQUE_RESOURCE: &str = "urn:dharma:opaque";
/// Another resource with opaque tokens, for wrong-audience cases.
pub const ELSEWHERE_RESOURCE: &str = "urn:dharma:elsewhere";

fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("idp")
}

impl Idp {
    /// Starts the provider and waits until it listens.
    pub async fn start() -> Self {
        let dir = idp_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run `npm ci --prefix {}` (scripts/test does it)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the OpenID provider");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the OpenID provider did not start within 30 s")
        .unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&line).expect("provider announces its issuer");
        let issuer = doc["issuer"].as_str().unwrap().to_owned();
        Self {
            issuer,
            _child: child,
        }
    }

    /// The issuer URL (`http://127.0.0.1:port`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The RFC 7662 introspection endpoint.
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// Revokes a token (RFC 7009) as the client that obtained it.
    pub async fn revoke(&self, token: &str) {
        let resp = client::send(
            Method::POST,
            &format!("{}/token/revocation", self.issuer),
            &[],
            Some(&[
                ("token", token),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ]),
        )
        .await;
        assert_eq!(resp.status, 200, "revocation failed: {}", resp.body);
    }

    /// Requests a client-credentials access token for `resource` and `scope`.
    pub async fn token(&self, resource: &str, scope: &str) -> String {
        let resp = client::send(
            Method::POST,
            &format!("{}/token", self.issuer),
            &[],
            Some(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("resource", resource),
                ("scope", scope),
            ]),
        )
        .await;
        assert_eq!(resp.status, 200, "token request failed: {}", resp.body);
        resp.json()["access_token"].as_str().unwrap().to_owned()
    }
}
