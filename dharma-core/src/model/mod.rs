//! The DHARMA model as data: domains, endpoints and the validated topology.
//!
//! Built and checked once; the request path only reads it.

mod domain;
mod endpoint;
mod path;
mod routes;
mod rule;
mod topology;

pub use crate::error::PathError;
pub use domain::{Domain, DomainBuilder};
pub use endpoint::{ClaimRule, Endpoint, EndpointBuilder, Exposure, Requirements};
pub use path::{PathPattern, PatternError, check_request_path};
pub use routes::Classified;
pub use rule::{AuthorizationRequest, Authorizer, ClaimRuleBuilder, ClaimTest, Rule};
pub use topology::{Topology, TopologyBuilder, TopologyError, TopologyErrorKind, Unmatched};
