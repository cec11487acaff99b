//! The outer domain: its token service, the gateway (its boundary), and two interior
//! services, orders (axum) and billing (actix-web).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Extension, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use dharma_axum::Authorized;
use dharma_core::{InboundToken, SecurityContext, mechanism::introspection::IntrospectionVerifier};
use dharma_sts::{
    ClientPolicy, Signer, TokenService,
    propagate::{Exchange, Outbound, StaticToken, TokenEndpoint, TokenSource},
};
use dharma_test_support::client;
use http::Method;

use crate::{
    deployment::{Deployment, Error, GATEWAY_ID, Org, STS_ID, listen, serve_axum, workload_token},
    inner,
};

/// Who a request is for: its principal, and the workload that vouched for it.
pub(crate) fn who(ctx: &SecurityContext) -> String {
    let mut names: Vec<String> = ctx
        .identities()
        .iter()
        .filter(|i| i.is_authenticated())
        .map(|i| format!("{} {}", i.kind().as_str(), i.subject()))
        .collect();
    names.dedup();
    names.join(", ")
}

/// The outer token service: exchanges clients' opaque tokens (introspected at the provider)
/// for x5c JWTs signed with its organisation certificate.
pub(crate) async fn token_service(org: &Org, deployment: &Deployment) -> Result<String, Error> {
    let loaded = deployment.load()?;
    let introspection = loaded
        .instance::<IntrospectionVerifier>("client-token")
        .ok_or("the policy has no client-token introspection mechanism")?;
    let signer = Signer::certificate(&org.sts.chain_pem(), &org.sts.key_pem())?;
    let sts = TokenService::builder(STS_ID, Arc::new(signer))
        .client(
            ClientPolicy::new(GATEWAY_ID)
                .exchange()
                .audience("outer")
                .scope("orders:read")
                .scope("orders:write"),
        )
        .subject_tokens(introspection)
        .revocations(deployment.revocations.clone())
        .audit(deployment.audit.clone())
        .build()?;
    let (listener, addr) = listen().await?;
    let app = Router::new().nest("/sts", dharma_sts::axum::routes(Arc::new(sts)));
    serve_axum(listener, app, loaded.enforcer().clone());
    Ok(format!("http://{addr}"))
}

#[derive(Clone)]
struct Gateway {
    exchange: Arc<Exchange>,
    orders: String,
}

/// The gateway: the outer domain's boundary. It exchanges the client's token for an outer
/// JWT and calls the orders service with it.
pub(crate) async fn gateway(
    org: &Org,
    deployment: &Deployment,
    sts: &str,
    orders: &str,
) -> Result<String, Error> {
    let loaded = deployment.load()?;
    let credential = workload_token(&org.gateway, GATEWAY_ID, 3600);
    let endpoint = TokenEndpoint::builder(&format!("{sts}/sts/token"))
        .bearer(Arc::new(StaticToken::new(&credential)))
        .build()?;
    let state = Gateway {
        exchange: Arc::new(Exchange::new(endpoint)),
        orders: orders.to_owned(),
    };
    async fn forward(
        state: &Gateway,
        inbound: &InboundToken,
        method: Method,
        path: &str,
    ) -> (StatusCode, String) {
        let call = Outbound::new("outer")
            .scope("orders:read orders:write")
            .inbound(inbound);
        let token = match state.exchange.token(call).await {
            Ok(token) => token,
            Err(e) => return (StatusCode::BAD_GATEWAY, format!("exchange failed: {e}")),
        };
        let auth = format!("Bearer {}", token.secret());
        let r = client::send(
            method,
            &format!("{}{path}", state.orders),
            &[("authorization", &auth)],
            None,
        )
        .await;
        let status = StatusCode::from_u16(r.status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        (status, r.body)
    }
    async fn read(
        State(state): State<Gateway>,
        Extension(inbound): Extension<InboundToken>,
        Path(id): Path<String>,
    ) -> (StatusCode, String) {
        forward(&state, &inbound, Method::GET, &format!("/orders/{id}")).await
    }
    async fn place(
        State(state): State<Gateway>,
        Extension(inbound): Extension<InboundToken>,
    ) -> (StatusCode, String) {
        forward(&state, &inbound, Method::POST, "/orders").await
    }
    let app = Router::new()
        .route("/api/orders/{id}", get(read))
        .route("/api/orders", post(place))
        .with_state(state);
    let (listener, addr) = listen().await?;
    serve_axum(listener, app, loaded.enforcer().clone());
    Ok(format!("http://{addr}"))
}

#[derive(Clone)]
struct Orders {
    billing: String,
    ledger: SocketAddr,
}

/// The orders service (axum, interior): reads orders, and places them by charging
/// (billing, outer) and recording (the inner ledger's boundary), with the JWT it was
/// called with.
pub(crate) fn serve_orders(
    deployment: &Deployment,
    listener: tokio::net::TcpListener,
    billing: &str,
    ledger: SocketAddr,
) -> Result<(), Error> {
    let loaded = deployment.load()?;
    async fn read(Authorized(ctx): Authorized, Path(id): Path<String>) -> String {
        format!("order {id} read by {}", who(&ctx))
    }
    async fn place(
        State(state): State<Orders>,
        Authorized(ctx): Authorized,
        Extension(inbound): Extension<InboundToken>,
    ) -> (StatusCode, String) {
        let auth = format!("Bearer {}", inbound.secret());
        let charged = client::send(
            Method::POST,
            &format!("{}/billing/charges", state.billing),
            &[("authorization", &auth)],
            None,
        )
        .await;
        if charged.status != 200 {
            return (
                StatusCode::BAD_GATEWAY,
                format!("billing: {} {}", charged.status, charged.body),
            );
        }
        let recorded = inner::call(
            state.ledger,
            None,
            "/inner.Ledger/Record",
            Some(inbound.secret()),
        )
        .await;
        match recorded {
            Ok(text) => (
                StatusCode::OK,
                format!("order placed by {}; {}; {text}", who(&ctx), charged.body),
            ),
            Err(status) => (StatusCode::BAD_GATEWAY, format!("ledger: {status}")),
        }
    }
    let app = Router::new()
        .route("/orders/{id}", get(read))
        .route("/orders", post(place))
        .with_state(Orders {
            billing: billing.to_owned(),
            ledger,
        });
    serve_axum(listener, app, loaded.enforcer().clone());
    Ok(())
}

/// The billing service (actix-web, interior), on a thread of its own.
pub(crate) fn billing(deployment: &Deployment) -> Result<String, Error> {
    use actix_web::{App, HttpServer, web};
    use dharma_actix::{Authorized as ActixAuthorized, DharmaMiddleware};

    let enforcer = deployment.load()?.enforcer().clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    async fn charge(ActixAuthorized(ctx): ActixAuthorized) -> String {
        format!("charged for {}", who(&ctx))
    }
    async fn health() -> &'static str {
        "ok"
    }
    let server = HttpServer::new(move || {
        App::new()
            .wrap(DharmaMiddleware::new(enforcer.clone()))
            .route("/billing/charges", web::post().to(charge))
            .route("/billing/health", web::get().to(health))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
    Ok(format!("http://{addr}"))
}
