//! Topology validation, classification and route agreement.

use super::*;

fn base() -> TopologyBuilder {
    Topology::builder()
        .domain(Domain::builder("outer").trust("jwt").access("jwt"))
        .domain(
            Domain::builder("inner")
                .parent("outer")
                .trust("net")
                .access("jwt"),
        )
}

fn err(b: TopologyBuilder) -> String {
    b.build().unwrap_err().to_string()
}

#[test]
fn valid_topology_and_hierarchy() {
    let t = base()
        .endpoint(Endpoint::boundary("inner", "/pay").methods(["post"]))
        .endpoint(Endpoint::interior("inner", "/ledger"))
        .endpoint(Endpoint::boundary("outer", "/orders"))
        .build()
        .unwrap();
    let names: Vec<_> = t
        .hierarchical_endpoints()
        .map(|e| e.name().to_owned())
        .collect();
    assert_eq!(names, ["POST /pay"]);
    assert_eq!(
        t.domain("inner").unwrap().parent().unwrap().as_str(),
        "outer"
    );
}

#[test]
fn refuses_bad_domains() {
    assert_eq!(
        err(base().domain(Domain::builder("outer"))),
        r#"domain "outer": declared more than once"#
    );
    assert_eq!(
        err(base().domain(Domain::builder("x").parent("nope"))),
        r#"domain "x": parent domain "nope" is not declared"#
    );
    assert_eq!(
        err(Topology::builder()
            .domain(Domain::builder("a").parent("b"))
            .domain(Domain::builder("b").parent("a"))),
        r#"domain "a": the parent chain forms a cycle"#
    );
    assert_eq!(
        err(Topology::builder().domain(Domain::builder("a").parent("a"))),
        r#"domain "a": the parent chain forms a cycle"#
    );
    assert!(
        err(base().domain(Domain::builder("x").access("Bad Mechanism")))
            .starts_with(r#"domain "x": invalid mechanism name"#)
    );
    assert!(
        err(base().domain(Domain::builder("Bad Name")))
            .starts_with(r#"domain "Bad Name": invalid domain name"#)
    );
}

#[test]
fn refuses_bad_endpoints() {
    let t = base().domain(Domain::builder("bare"));
    assert_eq!(
        err(t.endpoint(Endpoint::interior("bare", "/x"))),
        r#"endpoint "* /x": interior endpoint in domain "bare", which has no trust mechanism"#
    );
    let t = base().domain(Domain::builder("bare"));
    assert_eq!(
        err(t.endpoint(Endpoint::boundary("bare", "/x").methods(["GET"]))),
        r#"endpoint "GET /x": boundary endpoint in domain "bare", which has no access mechanism"#
    );
    assert_eq!(
        err(base().endpoint(Endpoint::boundary("nowhere", "/x"))),
        r#"endpoint "* /x": domain "nowhere" is not declared"#
    );
    assert!(err(base().endpoint(Endpoint::boundary("outer", "x"))).contains("must start with '/'"));
    assert_eq!(
        err(base().endpoint(Endpoint::boundary("outer", "/x").methods(["G ET"]))),
        r#"endpoint "G ET /x": invalid method "G ET""#
    );
    assert!(
        err(base().endpoint(Endpoint::boundary("outer", "/x").scopes(["a b"])))
            .contains("invalid scope")
    );
    assert_eq!(
        err(base()
            .endpoint(Endpoint::boundary("outer", "/a/{id}").methods(["GET"]))
            .endpoint(Endpoint::interior("outer", "/a/{other}").methods(["GET", "PUT"]))),
        r#"endpoint "GET,PUT /a/{other}": matches the same requests as endpoint "GET /a/{id}""#
    );
}

#[test]
fn a_parameter_and_a_tail_at_one_position_conflict() {
    assert_eq!(
        err(base()
            .endpoint(Endpoint::boundary("outer", "/a/{id}").name("param"))
            .endpoint(Endpoint::boundary("outer", "/a/{*rest}").name("tail"))),
        r#"endpoint "tail": path pattern conflicts with endpoint "param": a parameter and a tail at one position cannot be told apart"#
    );
}

#[test]
fn method_after_path() {
    // The issue's reproduction: `GET /admin/x` reaches the router's `/admin/{*rest}`
    // route; dharma must not decide it with the `GET /{*rest}` endpoint.
    let t = base()
        .endpoint(
            Endpoint::boundary("outer", "/admin/{*rest}")
                .methods(["DELETE"])
                .scopes(["admin"]),
        )
        .endpoint(Endpoint::boundary("outer", "/{*rest}").methods(["GET"]))
        .build()
        .unwrap();
    assert!(matches!(
        t.classify(&Method::GET, "/admin/x"),
        Classified::MethodNotAllowed { allow } if &**allow == "DELETE"
    ));
    assert!(matches!(
        t.classify(&Method::DELETE, "/admin/x"),
        Classified::Endpoint(e) if e.requirements().scopes().len() == 1
    ));
    assert!(t.classify(&Method::GET, "/other").endpoint().is_some());
}

#[test]
fn routes_agree_when_they_lead_to_the_same_pattern() {
    let t = base()
        .endpoint(Endpoint::boundary("outer", "/users/admin"))
        .endpoint(Endpoint::boundary("outer", "/users/{id}"))
        .endpoint(Endpoint::boundary("outer", "/api/{*rest}"))
        .build()
        .unwrap();
    assert!(t.route_agrees("/users/7", "/users/{user}"));
    assert!(t.route_agrees("/users/admin", "/users/admin"));
    // The router ran the `{id}` route for `/users/admin`, or the other way round.
    assert!(!t.route_agrees("/users/admin", "/users/{id}"));
    assert!(!t.route_agrees("/users/7", "/users/admin"));
    // A route narrower than the endpoint that covers it.
    assert!(t.route_agrees("/api/v1/x", "/api/v1/{*rest}"));
    assert!(t.route_agrees("/api/v1/x", "/api/{version}/x"));
    assert!(!t.route_agrees("/api/v1/x", "/{*rest}"));
    // Routes dharma cannot read never agree.
    assert!(!t.route_agrees("/users/7", "/users/{id:[0-9]+}x"));
    assert!(!t.route_agrees("/users/7", "users/{id}"));
    assert!(!t.route_agrees("/nowhere", "/nowhere"));
    // Only paths whose pattern another overlaps need the check.
    assert!(t.route_check_needed("/users/admin"));
    assert!(t.route_check_needed("/users/7"));
    assert!(!t.route_check_needed("/api/v1/x"));
    assert!(!t.route_check_needed("/nowhere"));
}

#[test]
fn classification_prefers_specific_patterns() {
    let t = base()
        .endpoint(Endpoint::boundary("outer", "/{*rest}").name("tail"))
        .endpoint(Endpoint::boundary("outer", "/a/{id}").name("param"))
        .endpoint(
            Endpoint::boundary("outer", "/a/special")
                .name("literal")
                .methods(["GET"]),
        )
        .build()
        .unwrap();
    let name = |m: Method, p: &str| t.classify(&m, p).endpoint().map(|e| e.name().to_owned());
    assert_eq!(name(Method::GET, "/a/special").as_deref(), Some("literal"));
    assert_eq!(name(Method::HEAD, "/a/special").as_deref(), Some("literal"));
    // Path first: `/a/special` is declared, for GET only.
    assert!(matches!(
        t.classify(&Method::POST, "/a/special"),
        Classified::MethodNotAllowed { allow } if &**allow == "GET, HEAD"
    ));
    assert_eq!(name(Method::GET, "/a/1").as_deref(), Some("param"));
    assert_eq!(name(Method::GET, "/a/1/2").as_deref(), Some("tail"));
    assert_eq!(name(Method::GET, "/b").as_deref(), Some("tail"));
    assert_eq!(name(Method::GET, "/"), None);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn segment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["a", "b", "c", "{x}"])
    }

    /// A pattern of one to three segments, maybe ending in a tail.
    fn pattern() -> impl Strategy<Value = String> {
        (prop::collection::vec(segment(), 1..=3), any::<bool>()).prop_map(|(segs, tail)| {
            let mut out: String = segs.iter().map(|s| format!("/{s}")).collect();
            if tail {
                out.push_str("/{*t}");
            }
            out
        })
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "d"]), 0..=5).prop_map(
            |segs| {
                if segs.is_empty() {
                    "/".to_owned()
                } else {
                    segs.iter().map(|s| format!("/{s}")).collect()
                }
            },
        )
    }

    proptest! {
        /// The classification compiled into matchit chooses what the specificity
        /// model says: among the patterns that match, the most specific, literal
        /// over parameter over tail, leftmost first.
        #[test]
        fn matchit_agrees_with_the_specificity_model(
            patterns in prop::collection::btree_set(pattern(), 1..8),
            paths in prop::collection::vec(path(), 1..16),
        ) {
            let builder = patterns.iter().fold(base(), |b, p| {
                b.endpoint(Endpoint::boundary("outer", p).name(p))
            });
            // Sets with a parameter and a tail at one position are refused, as axum
            // refuses them; the property is about the sets that build.
            let Ok(t) = builder.build() else { return Ok(()) };
            for path in &paths {
                let model = t
                    .endpoints()
                    .iter()
                    .filter(|e| e.path().matches(path))
                    .max_by(|a, b| a.path().specificity_cmp(b.path()))
                    .map(|e| e.name().to_owned());
                let chosen = t.classify(&Method::GET, path).endpoint().map(|e| e.name().to_owned());
                prop_assert_eq!(chosen, model, "path {}", path);
                // Two patterns that match one path overlap; so the route check is
                // skipped only where no other pattern could take the path.
                let matching: Vec<_> =
                    t.endpoints().iter().filter(|e| e.path().matches(path)).collect();
                for a in &matching {
                    for b in &matching {
                        prop_assert!(a.path().overlaps(b.path()), "{} {}", a.name(), b.name());
                    }
                }
                if matching.len() > 1 {
                    prop_assert!(t.route_check_needed(path), "path {}", path);
                }
            }
        }
    }
}
