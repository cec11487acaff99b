//! What every service shares: the organisation CA and its workloads, the policy file (with
//! this run's addresses written in), one audit trail, and how servers are started.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
};

use dharma_core::{
    Enforcer,
    audit::JsonLinesSink,
    config::{Config, Loaded},
    state::MemoryRevocations,
};
use dharma_test_support::pki::{Ca, Issued, Leaf};
use serde_json::json;
use tokio::net::TcpListener;

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// The SPIFFE trust domain of the organisation.
pub(crate) const STS_ID: &str = "spiffe://example.org/ns/outer/sa/sts";
pub(crate) const GATEWAY_ID: &str = "spiffe://example.org/ns/outer/sa/gateway";
pub(crate) const ORDERS_ID: &str = "spiffe://example.org/ns/outer/sa/orders";
/// The inner token service's issuer.
pub(crate) const INNER_STS: &str = "https://sts.inner.example";
/// Where inner services call from: the inner network.
pub(crate) const INNER_NETWORK: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// The policy every service loads.
const POLICY: &str = include_str!("../../../three-tier/dharma.toml");

/// The organisation CA and the certificates of its outer workloads.
pub(crate) struct Org {
    pub(crate) root: Ca,
    pub(crate) sts: Issued,
    pub(crate) gateway: Issued,
    pub(crate) orders: Issued,
}

impl Org {
    pub(crate) fn new() -> Self {
        let root = Ca::root("Example Org Root");
        let issue = |id| root.issue(&Leaf::spiffe(id));
        Self {
            sts: issue(STS_ID),
            gateway: issue(GATEWAY_ID),
            orders: issue(ORDERS_ID),
            root,
        }
    }
}

/// A workload's own credential for the outer domain: an x5c JWT, `iss` and `sub` its
/// SPIFFE ID, valid from `iat` for `lifetime` seconds (negative: already expired).
pub(crate) fn workload_token(issued: &Issued, id: &str, lifetime: i64) -> String {
    let now = i64::try_from(dharma_test_support::now()).unwrap_or(i64::MAX);
    issued.signer("w").sign_with_header(
        json!({"x5c": issued.x5c(), "kid": null}),
        &json!({"iss": id, "sub": id, "aud": "outer", "iat": now - 600, "exp": now + lifetime}),
    )
}

/// This run: the policy with its addresses written in, the audit trail and the revocation
/// list the outer services share.
pub(crate) struct Deployment {
    pub(crate) dir: PathBuf,
    policy: String,
    pub(crate) audit: Arc<JsonLinesSink>,
    pub(crate) revocations: Arc<MemoryRevocations>,
}

impl Deployment {
    /// Writes the CA and the policy copy into a directory of the run's own.
    pub(crate) fn new(org: &Org, idp: &str, inner_sts: SocketAddr) -> Result<Self, Error> {
        let dir = std::env::temp_dir().join(format!("dharma-three-tier-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let ca = dir.join("org-ca.pem");
        std::fs::write(&ca, org.root.pem())?;
        let policy = POLICY
            .replace("http://127.0.0.1:4010", idp)
            .replace("http://127.0.0.1:4021", &format!("http://{inner_sts}"))
            .replace(
                "\"pki/org-ca.pem\"",
                &format!("{:?}", ca.display().to_string()),
            )
            .replace(
                "client_secret_env = \"GATEWAY_INTROSPECTION_SECRET\"",
                &format!(
                    "client_secret = {:?}",
                    dharma_test_support::idp::CLIENT_SECRET
                ),
            );
        std::fs::write(dir.join("dharma.toml"), &policy)?;
        let audit = JsonLinesSink::builder(dir.join("audit.jsonl")).build()?;
        Ok(Self {
            dir,
            policy,
            audit: Arc::new(audit),
            revocations: Arc::new(MemoryRevocations::default()),
        })
    }

    /// Loads the policy as one service does: every mechanism, this run's audit trail.
    pub(crate) fn load(&self) -> Result<Loaded, Error> {
        Ok(Config::from_toml(&self.policy)?
            .loader()
            .audit(self.audit.clone())
            .revocations(self.revocations.clone())
            .load()?)
    }
}

/// Serves an axum app behind dharma on `listener`, with peer addresses for the network
/// mechanism.
pub(crate) fn serve_axum(listener: TcpListener, app: axum::Router, enforcer: Enforcer) {
    let app = app.layer(dharma_axum::DharmaLayer::new(enforcer));
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
}

/// A listener on an ephemeral port of 127.0.0.1.
pub(crate) async fn listen() -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
