//! The conformance suite (`dharma-test-support/conformance/cases.toml`) through actix-web
//! over real HTTP on 127.0.0.1: every route of the suite has a handler that answers with
//! its route, so each case shows which handler ran.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use actix_web::{App, HttpResponse, HttpServer, Resource, guard, web};
use dharma_actix::DharmaMiddleware;
use dharma_core::{Enforcer, audit::MemoryAuditSink};
use dharma_test_support::{
    client::send,
    conformance::{NESTED, ROUTES, run_http, world},
};

/// A resource for a route of the suite (axum's syntax), answering with `answer`.
fn resource(method: &str, route: &str, answer: &'static str) -> Resource {
    // `{*rest}` is `{rest:.+}` to actix-web: one or more segments, as axum means it.
    let pattern: Vec<String> = route
        .split('/')
        .map(|seg| match seg.strip_prefix("{*") {
            Some(name) => format!("{{{}:.+}}", name.trim_end_matches('}')),
            None => seg.to_owned(),
        })
        .collect();
    let pattern = pattern.join("/");
    let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
    let handler = move || async move {
        HttpResponse::Ok()
            .insert_header(("x-handler", answer))
            .body(answer)
    };
    let guard = guard::Method(method.clone());
    let resource = web::resource(pattern);
    if method == actix_web::http::Method::GET {
        resource.route(
            web::route()
                .guard(guard::Any(guard).or(guard::Head()))
                .to(handler),
        )
    } else {
        resource.route(web::route().guard(guard).to(handler))
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Starts an app on 127.0.0.1 and runs `f` against its base URL on a Tokio runtime of its
/// own (on a blocking thread, so the actix runtime keeps serving).
async fn with_server<F, T, B, R>(app: F, test: impl FnOnce(String) -> R + Send + 'static) -> R
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
    R: Send + 'static,
{
    let server = HttpServer::new(app)
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.addrs()[0];
    let running = server.run();
    let stop = running.handle();
    actix_web::rt::spawn(running);
    let base = format!("http://{addr}");
    let result = actix_web::rt::task::spawn_blocking(move || test(base)).await;
    stop.stop(true).await;
    result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[actix_web::test]
async fn conformance_actix() {
    let world = world();
    let enforcer = world.enforcer.clone();
    let app = move || {
        let (prefix, nested) = NESTED;
        let scope = nested.iter().fold(web::scope(prefix), |scope, &(m, r)| {
            scope.service(resource(m, r, leak(format!("{prefix}{r}"))))
        });
        ROUTES
            .iter()
            .fold(
                App::new().wrap(DharmaMiddleware::new(enforcer.clone())),
                |app, &(m, r)| app.service(resource(m, r, r)),
            )
            .service(scope)
            .default_service(web::to(|| async { HttpResponse::Ok().body("fallback") }))
    };
    let ran = with_server(app, move |base| block_on(run_http(&world, &base))).await;
    assert!(ran >= 40);
}

/// actix-web matches resources in registration order: registered before `/users/admin`,
/// `/users/{id}` takes `GET /users/admin`, and dharma, whose policy gives that path its own
/// endpoint, refuses the request instead of deciding it with the wrong endpoint's rules.
#[actix_web::test]
async fn registration_order_cannot_route_around_the_policy() {
    let world = world();
    let audit = world.audit.clone();
    let enforcer: Enforcer = world.enforcer.clone();
    let app = move || {
        App::new()
            .wrap(DharmaMiddleware::new(enforcer.clone()))
            .service(resource("GET", "/users/{id}", "/users/{id}"))
            .service(resource("GET", "/users/admin", "/users/admin"))
    };
    let admin = world.headers(
        &dharma_test_support::conformance::cases()
            .into_iter()
            .find(|c| c.name == "literal segment, rule met")
            .unwrap(),
    );
    let (status, handler) = with_server(app, move |base| {
        block_on(async move {
            let headers: Vec<(&str, &str)> = admin
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let r = send(
                http::Method::GET,
                &format!("{base}/users/admin"),
                &headers,
                None,
            )
            .await;
            (r.status.as_u16(), r.header("x-handler").map(str::to_owned))
        })
    })
    .await;
    assert_eq!((status, handler), (500, None));
    let events: Vec<_> = MemoryAuditSink::take(&audit);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "route_mismatch");
}

/// The middleware wrapped on a `scope` (not on the `App`) decides on the whole path and
/// checks the whole route, prefix included, in both registration orders.
#[actix_web::test]
async fn a_scope_wrapped_middleware_sees_the_whole_path_and_route() {
    use dharma_core::model::{Domain, Endpoint, Topology};
    let topology = Topology::builder()
        .domain(Domain::builder("d"))
        .endpoint(Endpoint::public("d", "/api/users/admin"))
        .endpoint(Endpoint::public("d", "/api/users/{id}"))
        .build()
        .unwrap();
    let audit = std::sync::Arc::new(MemoryAuditSink::default());
    let enforcer = Enforcer::builder(topology)
        .audit(audit.clone())
        .build()
        .unwrap();
    for specific_first in [true, false] {
        let enforcer = enforcer.clone();
        let app = move || {
            let (first, second) = (
                resource("GET", "/users/admin", "/api/users/admin"),
                resource("GET", "/users/{id}", "/api/users/{id}"),
            );
            let (first, second) = if specific_first {
                (first, second)
            } else {
                (second, first)
            };
            App::new().service(
                web::scope("/api")
                    .wrap(DharmaMiddleware::new(enforcer.clone()))
                    .service(first)
                    .service(second),
            )
        };
        let answers = with_server(app, move |base| {
            block_on(async move {
                let mut out = Vec::new();
                for path in ["/api/users/admin", "/api/users/7", "/api/users/%61dmin"] {
                    let r = send(http::Method::GET, &format!("{base}{path}"), &[], None).await;
                    out.push((r.status.as_u16(), r.header("x-handler").map(str::to_owned)));
                }
                out
            })
        })
        .await;
        let admin = if specific_first {
            (200, Some("/api/users/admin".to_owned()))
        } else {
            (500, None)
        };
        assert_eq!(
            answers,
            [
                admin,
                (200, Some("/api/users/{id}".to_owned())),
                (400, None)
            ],
            "specific first: {specific_first}"
        );
        assert_eq!(audit.take().len(), 3, "one audit event per request");
    }
}
