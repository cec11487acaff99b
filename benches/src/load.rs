//! The bench service in each framework, with and without dharma: the same apps serve the
//! in-process middleware benches and the loopback load test.

use std::{net::SocketAddr, time::Duration};

use actix_web::web;
use axum::{Router, routing::get};
use dharma_core::Enforcer;
use tonic_health::server::health_reporter;

use crate::ROUTE;

/// Which framework serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// axum 0.8 with `DharmaLayer`.
    Axum,
    /// actix-web 4 with `DharmaMiddleware`.
    Actix,
    /// tonic 0.14 (gRPC health check) with `DharmaGrpcLayer`.
    Tonic,
}

impl Framework {
    /// Reads `axum`, `actix` or `tonic`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "axum" => Some(Self::Axum),
            "actix" => Some(Self::Actix),
            "tonic" => Some(Self::Tonic),
            _ => None,
        }
    }
}

/// The order handler without dharma.
async fn bare_order() -> &'static str {
    "order 42"
}

/// The order handler behind dharma: it reads the caller, as a real handler would.
async fn axum_order(dharma_axum::Authorized(ctx): dharma_axum::Authorized) -> String {
    let caller = ctx.principal().map(|p| p.subject().len()).unwrap_or(0);
    format!("order 42 for a caller of {caller} bytes")
}

/// The axum app: the bare handler, or the dharma-protected one behind `DharmaLayer`.
pub fn axum_app(enforcer: Option<Enforcer>) -> Router {
    match enforcer {
        None => Router::new().route(ROUTE, get(bare_order)),
        Some(e) => Router::new()
            .route(ROUTE, get(axum_order))
            .layer(dharma_axum::DharmaLayer::new(e)),
    }
}

async fn actix_order(dharma_actix::Authorized(ctx): dharma_actix::Authorized) -> String {
    let caller = ctx.principal().map(|p| p.subject().len()).unwrap_or(0);
    format!("order 42 for a caller of {caller} bytes")
}

/// The actix routes: the bare handler, or the one reading the caller (wrap the app in
/// `DharmaMiddleware` for the latter).
pub fn actix_routes(protected: bool) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        if protected {
            cfg.route(ROUTE, web::get().to(actix_order));
        } else {
            cfg.route(ROUTE, web::get().to(bare_order));
        }
    }
}

/// Serves `framework` on an ephemeral port of 127.0.0.1 for at most `limit`, with dharma
/// when `enforcer` is given. Returns the address once the server accepts connections;
/// the server stops by itself when `limit` has passed.
pub async fn serve(
    framework: Framework,
    enforcer: Option<Enforcer>,
    limit: Duration,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    match framework {
        Framework::Axum => {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let app = axum_app(enforcer).into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(limit, axum::serve(listener, app)).await;
            });
        }
        Framework::Actix => {
            // actix runs its own single-threaded runtimes (one per worker) in a System.
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = match enforcer {
                        Some(e) => actix_web::HttpServer::new(move || {
                            actix_web::App::new()
                                .wrap(dharma_actix::DharmaMiddleware::new(e.clone()))
                                .configure(actix_routes(true))
                        })
                        .disable_signals()
                        .listen(listener)
                        .map(|s| s.run()),
                        None => actix_web::HttpServer::new(|| {
                            actix_web::App::new().configure(actix_routes(false))
                        })
                        .disable_signals()
                        .listen(listener)
                        .map(|s| s.run()),
                    };
                    let Ok(server) = server else { return };
                    let handle = server.handle();
                    actix_web::rt::spawn(async move {
                        actix_web::rt::time::sleep(limit).await;
                        handle.stop(false).await;
                    });
                    let _ = server.await;
                })
            });
        }
        Framework::Tonic => {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let (reporter, service) = health_reporter();
            tokio::spawn(async move {
                let _keep = reporter;
                let serve = async {
                    match enforcer {
                        Some(e) => {
                            tonic::transport::Server::builder()
                                .layer(dharma_tonic::DharmaGrpcLayer::new(e))
                                .add_service(service)
                                .serve_with_incoming(incoming)
                                .await
                        }
                        None => {
                            tonic::transport::Server::builder()
                                .add_service(service)
                                .serve_with_incoming(incoming)
                                .await
                        }
                    }
                };
                let _ = tokio::time::timeout(limit, serve).await;
            });
        }
    }
    Ok(addr)
}
