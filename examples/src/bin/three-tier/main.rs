//! The DHARMA three-tier deployment, on 127.0.0.1, every hop enforced by dharma in process,
//! every service loading `examples/three-tier/dharma.toml`:
//!
//! - outside: a client with an opaque access token from a real OpenID provider
//!   (`oidc-provider`, client credentials);
//! - the outer domain: the gateway (its boundary) introspects the token and exchanges it at
//!   the outer token service for a JWT signed with an organisation certificate; the orders
//!   (axum) and billing (actix-web) services trust each other through those x5c JWTs;
//! - the inner domain (tonic): the ledger's `Record` is a boundary endpoint taking the outer
//!   JWT (a hierarchical endpoint); the inventory trusts the inner network, with a fresh
//!   JWT from the inner token service carried for accountability.
//!
//! It runs the normal flow and the attacks the model must stop, prints each call with its
//! expected and actual outcome, writes every decision and token activity of every service
//! to one JSON-lines audit file, and exits non-zero if any row differs. Run with
//! `cargo run -p dharma-examples --bin three-tier` (needs Node.js and `npm ci --prefix
//! dharma-test-support/idp`, which `scripts/test` runs).

mod deployment;
mod inner;
mod outer;
mod scenario;

use std::process::ExitCode;

use deployment::{Deployment, Error, Org, listen};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("three-tier: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, Error> {
    let idp = dharma_test_support::idp::Idp::start().await;
    let org = Org::new();
    let (inner_sts_listener, inner_sts) = listen().await?;
    let deployment = Deployment::new(&org, idp.issuer(), inner_sts)?;

    inner::token_service(&deployment, inner_sts_listener)?;
    let (ledger, inventory) = inner::services(&deployment, inner_sts).await?;
    let billing = outer::billing(&deployment)?;
    let (orders_listener, orders_addr) = listen().await?;
    let orders = format!("http://{orders_addr}");
    outer::serve_orders(&deployment, orders_listener, &billing, ledger)?;
    let sts = outer::token_service(&org, &deployment).await?;
    let gateway = outer::gateway(&org, &deployment, &sts, &orders).await?;

    let world = scenario::World {
        idp: &idp,
        org: &org,
        gateway,
        sts,
        orders,
        billing,
        ledger,
        inventory,
    };
    let (passed, secrets) = scenario::run(&world, &deployment).await?;
    let trail = scenario::audit_summary(&deployment, &secrets)?;
    let _ = std::fs::remove_dir_all(&deployment.dir);
    Ok(passed && trail)
}
