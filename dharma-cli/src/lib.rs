//! The `dharma` command: reads the policy file the library loads and, without building
//! anything or touching the network,
//!
//! - `dharma check FILE` validates it (errors name the key and the line; exit code 1);
//! - `dharma explain FILE` prints each endpoint's domain, exposure, mechanisms, rules and
//!   which callers can reach it;
//! - `dharma graph FILE --format mermaid|dot` draws domains, hierarchy, endpoints and
//!   mechanisms;
//! - `dharma openapi FILE [--merge SPEC]` writes OpenAPI 3.1 security schemes and
//!   per-operation security from the policy, or merges them into a spec.
//!
//! The modules are the command's library, so that tests and other tools can call them.

pub mod explain;
pub mod graph;
pub mod openapi;
pub mod policy;
pub mod reach;
