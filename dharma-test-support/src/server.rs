//! A programmable HTTP server on 127.0.0.1 for key sets and discovery documents. It
//! counts every request per path, so tests can assert how often dharma fetched, and
//! that URLs named by tokens were never contacted.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinHandle};

/// What the server answers on one path.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Body.
    pub body: Bytes,
    /// `Cache-Control` header, if any.
    pub cache_control: Option<String>,
    /// Delay before answering.
    pub delay: Duration,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn json(body: &serde_json::Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Bytes::from(body.to_string()),
            cache_control: None,
            delay: Duration::ZERO,
        }
    }
    /// A status with a text body.
    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from(body.to_owned()),
            cache_control: None,
            delay: Duration::ZERO,
        }
    }
    /// With `Cache-Control`.
    pub fn cache_control(mut self, value: &str) -> Self {
        self.cache_control = Some(value.to_owned());
        self
    }
    /// With a delay.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct State {
    replies: HashMap<String, Reply>,
    hits: HashMap<String, u64>,
}

/// The server. Stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestServer({})", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            let reply = {
                                let mut s = state.lock().unwrap();
                                *s.hits.entry(path.clone()).or_default() += 1;
                                s.replies.get(&path).cloned()
                            };
                            let reply = reply.unwrap_or_else(|| Reply::status(404, "not found"));
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            let mut resp = Response::builder()
                                .status(reply.status)
                                .header("content-type", "application/json");
                            if let Some(cc) = &reply.cache_control {
                                resp = resp.header("cache-control", cc);
                            }
                            Ok::<_, Infallible>(resp.body(Full::new(reply.body)).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sets the reply for a path.
    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .replies
            .insert(path.to_owned(), reply);
    }

    /// How many requests a path received.
    pub fn hits(&self, path: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests the server received in all.
    pub fn total_hits(&self) -> u64 {
        self.state.lock().unwrap().hits.values().sum()
    }
}

/// Serves an axum app on an ephemeral port of 127.0.0.1, with the peer address available
/// to `ConnectInfo`. The server runs until the test's runtime ends.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    addr
}
