//! A TLS listener on 127.0.0.1 serving an axum app, with the client's certificate chain
//! put into each request as `PeerCertificates`.

use std::{net::SocketAddr, sync::Arc};

use axum::extract::ConnectInfo;
use dharma_core::PeerCertificates;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    server::danger::{ClientCertVerified, ClientCertVerifier},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::pki::Issued;

/// Asks for a client certificate, accepts any (or none): the decision is dharma's.
/// Signatures are still checked, so the client must hold the certificate's key.
#[derive(Debug)]
struct AnyClientCertificate(Arc<CryptoProvider>);

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A server configuration presenting `server` and requesting (not requiring) a client
/// certificate, which it does not judge.
pub fn server_config(server: &Issued) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(AnyClientCertificate(provider)))
        .with_single_cert(server.chain.clone(), key)
        .unwrap();
    Arc::new(config)
}

/// Serves `app` over TLS on an ephemeral port of 127.0.0.1.
pub async fn serve_axum_tls(app: axum::Router, config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let chain: Arc<[CertificateDer<'static>]> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default();
                let svc = service_fn(move |mut req: http::Request<Incoming>| {
                    req.extensions_mut().insert(PeerCertificates(chain.clone()));
                    req.extensions_mut().insert(ConnectInfo(peer));
                    app.clone().oneshot(req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

/// Files for `curl`: the CA and a client's chain and key, in a directory removed on drop.
pub struct CurlFiles {
    dir: std::path::PathBuf,
    /// The CA bundle.
    pub ca: String,
}

impl std::fmt::Debug for CurlFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CurlFiles({})", self.dir.display())
    }
}

impl Drop for CurlFiles {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

impl CurlFiles {
    /// A fresh directory holding the CA bundle.
    pub fn new(tag: &str, ca_pem: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dharma-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_pem).unwrap();
        Self {
            ca: ca.display().to_string(),
            dir,
        }
    }

    /// Writes a client's chain and key; returns their paths.
    pub fn client(&self, name: &str, issued: &Issued) -> (String, String) {
        let cert = self.dir.join(format!("{name}.pem"));
        let key = self.dir.join(format!("{name}.key"));
        std::fs::write(&cert, issued.chain_pem()).unwrap();
        std::fs::write(&key, issued.key_pem()).unwrap();
        (cert.display().to_string(), key.display().to_string())
    }
}

/// `curl https://localhost:{port}{path}` (resolved to 127.0.0.1), optionally with a client
/// certificate; returns the status and body. Blocking: call it off the async runtime.
pub fn curl(port: u16, path: &str, ca: &str, client: Option<&(String, String)>) -> (u16, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        ca,
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
    ]);
    if let Some((cert, key)) = client {
        cmd.args(["--cert", cert, "--key", key]);
    }
    cmd.args([
        "-w",
        "\n%{http_code}",
        &format!("https://localhost:{port}{path}"),
    ]);
    let out = cmd.output().expect("curl must be installed");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

/// The SPIFFE ID of [`MtlsWorld::client`].
pub const CLIENT_ID: &str = "spiffe://example.org/ns/orders/sa/api";

/// An organisation PKI and an enforcer whose one interior endpoint trusts mutual TLS.
pub struct MtlsWorld {
    /// The organisation root.
    pub root: crate::pki::Ca,
    /// The server's certificate (for `localhost`).
    pub server: Issued,
    /// A client certificate for [`CLIENT_ID`], from the organisation.
    pub client: Issued,
    /// A client certificate for the same ID from another CA with the same name.
    pub stranger: Issued,
    /// The enforcer.
    pub enforcer: dharma_core::Enforcer,
    /// Its audit trail.
    pub audit: Arc<dharma_core::audit::MemoryAuditSink>,
}

impl std::fmt::Debug for MtlsWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsWorld").finish_non_exhaustive()
    }
}

/// Builds the world; the endpoint is `method path`, interior to a domain trusting mTLS
/// with SPIFFE IDs of `example.org`.
pub fn mtls_world(method: &str, path: &str) -> MtlsWorld {
    use dharma_core::{
        mechanism::mtls::MtlsVerifier,
        model::{Domain, Endpoint, Topology},
        pki::OrgCa,
    };
    let root = crate::pki::Ca::root("Org Root");
    let issuing = root.intermediate("Org Issuing", Some(0));
    let server = issuing.issue(&crate::pki::Leaf::server());
    let client = issuing.issue(&crate::pki::Leaf::spiffe(CLIENT_ID));
    let stranger = crate::pki::Ca::root("Org Root").issue(&crate::pki::Leaf::spiffe(CLIENT_ID));
    let mtls = MtlsVerifier::builder()
        .org_ca(OrgCa::from_pem(&root.pem()).unwrap())
        .trust_domain("example.org")
        .unwrap()
        .build()
        .unwrap();
    let topology = Topology::builder()
        .domain(Domain::builder("outer").trust("mtls"))
        .endpoint(Endpoint::interior("outer", path).methods([method]))
        .build()
        .unwrap();
    let audit = Arc::new(dharma_core::audit::MemoryAuditSink::default());
    let enforcer = dharma_core::Enforcer::builder(topology)
        .mechanism("mtls", Arc::new(mtls))
        .audit(audit.clone())
        .build()
        .unwrap();
    MtlsWorld {
        root,
        server,
        client,
        stranger,
        enforcer,
        audit,
    }
}

impl MtlsWorld {
    /// Runs curl against `path` with the client's certificate, none, and the stranger's;
    /// checks the answers (200 with the client's ID, 401, 403) and the audit reasons.
    /// Blocking: call it off the async runtime.
    pub fn check_with_curl(&self, port: u16, path: &str) {
        let files = CurlFiles::new(&format!("mtls-{port}"), &self.root.pem());
        let good = files.client("client", &self.client);
        let bad = files.client("stranger", &self.stranger);
        assert_eq!(
            curl(port, path, &files.ca, Some(&good)),
            (200, CLIENT_ID.to_owned())
        );
        assert_eq!(curl(port, path, &files.ca, None).0, 401);
        assert_eq!(curl(port, path, &files.ca, Some(&bad)).0, 403);
        let reasons: Vec<_> = self.audit.events().iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            ["allowed", "missing_credentials", "certificate_untrusted"]
        );
    }
}
