//! The endpoint paths as a router: compiled into matchit, the router axum and tonic use,
//! so dharma chooses a path as they do; then the method; and whether a framework's own
//! choice of route agrees.

use std::{collections::HashMap, sync::Arc};

use http::Method;

use super::{
    endpoint::Endpoint,
    topology::{TopologyError, TopologyErrorKind},
};

/// Where a request goes: found by path first, then by method, as routers choose.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Classified<'t> {
    /// The endpoint that decides the request.
    Endpoint(&'t Endpoint),
    /// Endpoints are declared for the path, none for the method; `allow` lists the
    /// methods that are (the `Allow` header of the `405` answer).
    MethodNotAllowed {
        /// The declared methods, comma-separated.
        allow: &'t Arc<str>,
    },
    /// No endpoint is declared for the path.
    NoEndpoint,
}

impl<'t> Classified<'t> {
    /// The endpoint, if one was found.
    pub fn endpoint(self) -> Option<&'t Endpoint> {
        match self {
            Self::Endpoint(e) => Some(e),
            _ => None,
        }
    }
}

/// The endpoints that share one path pattern (they differ by method).
#[derive(Clone, Debug)]
struct PathGroup {
    /// Indexes into the topology's endpoints.
    endpoints: Vec<usize>,
    /// The `Allow` value when no endpoint of the group serves a method.
    allow: Arc<str>,
    /// Whether another declared pattern matches some of the same paths: only then can a
    /// router's choice of route lead elsewhere than the path does.
    contested: bool,
}

/// The compiled path table of a topology. Each router value indexes `groups`.
#[derive(Clone, Debug)]
pub(super) struct Routes {
    router: matchit::Router<usize>,
    groups: Vec<PathGroup>,
}

impl Routes {
    /// Compiles the endpoints' paths, refusing two endpoints that match the same requests
    /// and patterns a router cannot tell apart (a parameter and a tail at one position).
    pub(super) fn build(endpoints: &[Endpoint]) -> Result<Self, TopologyError> {
        let mut router = matchit::Router::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut by_route: HashMap<String, usize> = HashMap::new();
        let name_of = |g: &[usize]| {
            g.first()
                .and_then(|&i| endpoints.get(i))
                .map(|e| e.name().to_owned())
        };
        for (index, ep) in endpoints.iter().enumerate() {
            let item = || format!("endpoint {:?}", ep.name());
            let route = ep.path().route();
            let group = match by_route.get(&route) {
                Some(&g) => g,
                None => {
                    router.insert(route.clone(), members.len()).map_err(|e| {
                        let with = match e {
                            matchit::InsertError::Conflict { with } => by_route
                                .get(&with)
                                .and_then(|&g| members.get(g))
                                .and_then(|g| name_of(g))
                                .unwrap_or(with),
                            other => other.to_string(),
                        };
                        TopologyError::new(item(), TopologyErrorKind::RouteConflict(with))
                    })?;
                    by_route.insert(route, members.len());
                    members.push(Vec::new());
                    members.len() - 1
                }
            };
            let Some(group) = members.get_mut(group) else {
                unreachable!("the group was found or pushed just now");
            };
            if let Some(other) = group
                .iter()
                .filter_map(|&i| endpoints.get(i))
                .find(|o| o.methods_overlap(ep))
            {
                return Err(TopologyError::new(
                    item(),
                    TopologyErrorKind::Overlap(other.name().to_owned()),
                ));
            }
            group.push(index);
        }
        let first = |g: &[usize]| g.first().and_then(|&i| endpoints.get(i));
        let groups = members
            .iter()
            .enumerate()
            .map(|(i, g)| PathGroup {
                allow: allow_header(g.iter().filter_map(|&i| endpoints.get(i))),
                // One pattern per group; contested when another group's overlaps it.
                contested: members.iter().enumerate().any(|(j, other)| {
                    i != j
                        && matches!((first(g), first(other)),
                            (Some(a), Some(b)) if a.path().overlaps(b.path()))
                }),
                endpoints: g.clone(),
            })
            .collect();
        Ok(Self { router, groups })
    }

    fn group(&self, path: &str) -> Option<(usize, &PathGroup)> {
        let found = self.router.at(path).ok()?;
        let g = *found.value;
        self.groups.get(g).map(|group| (g, group))
    }

    pub(super) fn classify<'t>(
        &'t self,
        endpoints: &'t [Endpoint],
        method: &Method,
        path: &str,
    ) -> Classified<'t> {
        let Some((_, group)) = self.group(path) else {
            return Classified::NoEndpoint;
        };
        let found = group
            .endpoints
            .iter()
            .filter_map(|&i| endpoints.get(i))
            .find(|e| e.serves(method));
        match found {
            Some(endpoint) => Classified::Endpoint(endpoint),
            None => Classified::MethodNotAllowed {
                allow: &group.allow,
            },
        }
    }

    pub(super) fn check_needed(&self, path: &str) -> bool {
        self.group(path).is_some_and(|(_, g)| g.contested)
    }

    pub(super) fn agrees(&self, path: &str, route: &str) -> bool {
        self.group(path)
            .is_some_and(|(g, _)| self.group_of_route(route) == Some(g))
    }

    /// Whether `route` leads elsewhere than `path` does, where that can happen at all:
    /// one lookup of the path, and the route's only when its pattern is contested.
    pub(super) fn leads_elsewhere(&self, path: &str, route: &str) -> bool {
        self.group(path)
            .is_some_and(|(g, group)| group.contested && self.group_of_route(route) != Some(g))
    }

    /// The group a router's route leads to. A parameter becomes `%`, which no literal
    /// segment may contain (literals are unencoded path characters), so it reaches the
    /// pattern that would take any value there; a tail becomes two such segments, which
    /// only a tail takes. A route that cannot be read leads nowhere.
    fn group_of_route(&self, route: &str) -> Option<usize> {
        let rest = route.strip_prefix('/')?;
        let mut stand_in = String::with_capacity(route.len());
        for segment in rest.split('/') {
            stand_in.push('/');
            if segment.starts_with("{*") && segment.ends_with('}') {
                stand_in.push_str("%/%");
            } else if segment.starts_with('{') && segment.ends_with('}') {
                stand_in.push('%');
            } else if segment.contains(['{', '}', '%']) {
                return None;
            } else {
                stand_in.push_str(segment);
            }
        }
        self.group(&stand_in).map(|(g, _)| g)
    }
}

/// The `Allow` value of a path: its endpoints' methods (with `HEAD` where `GET` is).
fn allow_header<'e>(endpoints: impl Iterator<Item = &'e Endpoint>) -> Arc<str> {
    let mut methods: Vec<&str> = Vec::new();
    for ep in endpoints {
        for m in ep.methods().unwrap_or_default() {
            methods.push(m.as_str());
            if *m == Method::GET {
                methods.push(Method::HEAD.as_str());
            }
        }
    }
    methods.sort_unstable();
    methods.dedup();
    methods.join(", ").into()
}
