//! Combining mechanisms: [`AllOf`] (every branch must authenticate, e.g. mTLS *and* a
//! JWT) and [`AnyOf`] (the first branch that authenticates wins). Every branch's outcome
//! is kept and reaches the audit event.
//!
//! ```
//! use std::sync::Arc;
//! use dharma_core::mechanism::combine::{AllOf, AnyOf};
//! use dharma_core::mechanism::network::NetworkVerifier;
//!
//! let inside = Arc::new(NetworkVerifier::builder().allow("10.0.0.0/8")?.build());
//! let loopback = Arc::new(NetworkVerifier::builder().allow_loopback().build());
//! let either = AnyOf::new([("inside", inside.clone() as _), ("loopback", loopback as _)]);
//! let both = AllOf::new([("inside", inside as _), ("either", Arc::new(either) as _)]);
//! # let _ = both;
//! # Ok::<(), dharma_core::mechanism::network::NetworkError>(())
//! ```

use std::{fmt, sync::Arc};

use crate::{
    error::Rejection,
    mechanism::{Authenticated, BranchOutcome, Verifier},
    request::RequestView,
    util::BoxFuture,
};

type Branch = (Arc<str>, Arc<dyn Verifier>);

fn branches<'n, I: IntoIterator<Item = (&'n str, Arc<dyn Verifier>)>>(items: I) -> Vec<Branch> {
    items.into_iter().map(|(n, v)| (Arc::from(n), v)).collect()
}

fn names(b: &[Branch]) -> Vec<&str> {
    b.iter().map(|(n, _)| &**n).collect()
}

/// Authenticates only if every branch does; the identities of all branches together.
/// Branches run in order and the first refusal ends the check.
pub struct AllOf {
    branches: Vec<Branch>,
}

impl AllOf {
    /// Named branches, run in this order.
    pub fn new<'n, I: IntoIterator<Item = (&'n str, Arc<dyn Verifier>)>>(items: I) -> Self {
        Self {
            branches: branches(items),
        }
    }
}

impl fmt::Debug for AllOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AllOf")
            .field(&names(&self.branches))
            .finish()
    }
}

impl Verifier for AllOf {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(async move {
            let mut identities = Vec::new();
            let mut outcomes = Vec::new();
            for (name, verifier) in &self.branches {
                match verifier.verify(request).await {
                    Ok(a) => {
                        outcomes.push(BranchOutcome::new(name, "allowed"));
                        let (ids, nested) = a.into_parts(name);
                        outcomes.extend(nested);
                        identities.extend(ids);
                    }
                    Err(rejection) => {
                        outcomes.push(BranchOutcome::new(name, rejection.code()));
                        return Err(Rejection::branches(rejection, outcomes));
                    }
                }
            }
            Ok(Authenticated::new(identities).with_branches(outcomes))
        })
    }
}

/// Authenticates with the first branch that does. When all refuse, the answer is the first
/// refusal that is not "no credentials" (a bad token says more than an absent API key).
pub struct AnyOf {
    branches: Vec<Branch>,
}

impl AnyOf {
    /// Named branches, tried in this order.
    pub fn new<'n, I: IntoIterator<Item = (&'n str, Arc<dyn Verifier>)>>(items: I) -> Self {
        Self {
            branches: branches(items),
        }
    }
}

impl fmt::Debug for AnyOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyOf")
            .field(&names(&self.branches))
            .finish()
    }
}

impl Verifier for AnyOf {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(async move {
            let mut outcomes = Vec::new();
            let mut chosen: Option<Rejection> = None;
            for (name, verifier) in &self.branches {
                match verifier.verify(request).await {
                    Ok(a) => {
                        outcomes.push(BranchOutcome::new(name, "allowed"));
                        let (ids, nested) = a.into_parts(name);
                        outcomes.extend(nested);
                        return Ok(Authenticated::new(ids).with_branches(outcomes));
                    }
                    Err(rejection) => {
                        outcomes.push(BranchOutcome::new(name, rejection.code()));
                        let better = match &chosen {
                            None => true,
                            Some(c) => {
                                c.is_missing_credentials() && !rejection.is_missing_credentials()
                            }
                        };
                        if better {
                            chosen = Some(rejection);
                        }
                    }
                }
            }
            Err(Rejection::branches(
                chosen.unwrap_or(Rejection::MissingCredentials),
                outcomes,
            ))
        })
    }
}

/// `kind = "all_of"` and `kind = "any_of"`: the mechanisms, by name, in order.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CombinedSettings {
    mechanisms: Vec<String>,
}

/// Builds [`AllOf`] (`all = true`) or [`AnyOf`].
pub(crate) struct CombinedKind {
    pub(crate) all: bool,
}

impl super::MechanismKind for CombinedKind {
    type Settings = CombinedSettings;

    fn references<'s>(&self, settings: &'s CombinedSettings) -> Vec<super::Reference<'s>> {
        settings
            .mechanisms
            .iter()
            .map(|n| super::Reference::any(n))
            .collect()
    }

    fn build(
        &self,
        settings: &CombinedSettings,
        ctx: &super::BuildContext<'_>,
    ) -> Result<super::Instance, super::KindError> {
        let branches: Vec<(&str, Arc<dyn Verifier>)> = settings
            .mechanisms
            .iter()
            .filter_map(|n| ctx.instance(n).map(|i| (n.as_str(), i.verifier().clone())))
            .collect();
        Ok(if self.all {
            super::Instance::new(AllOf::new(branches))
        } else {
            super::Instance::new(AnyOf::new(branches))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, IdentityKind, reject::TokenError};

    #[derive(Debug)]
    struct Fixed(Result<&'static str, Rejection>);
    impl Verifier for Fixed {
        fn verify<'a>(
            &'a self,
            _: &'a RequestView<'a>,
        ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
            let r = self
                .0
                .clone()
                .map(|s| Authenticated::new(vec![Identity::new(IdentityKind::Workload, s)]));
            Box::pin(async move { r })
        }
    }

    fn ok(s: &'static str) -> Arc<dyn Verifier> {
        Arc::new(Fixed(Ok(s)))
    }
    fn no() -> Arc<dyn Verifier> {
        Arc::new(Fixed(Err(Rejection::MissingCredentials)))
    }
    fn bad() -> Arc<dyn Verifier> {
        Arc::new(Fixed(Err(TokenError::BadSignature.into())))
    }

    async fn run(v: &dyn Verifier) -> Result<Authenticated, Rejection> {
        let headers = http::HeaderMap::new();
        let view = RequestView::new(&http::Method::GET, "/", &headers);
        v.verify(&view).await
    }

    fn reasons(outcomes: &[BranchOutcome]) -> Vec<String> {
        outcomes
            .iter()
            .map(|o| format!("{}:{}", o.mechanism, o.reason))
            .collect()
    }

    #[tokio::test]
    async fn all_of() {
        let a = run(&AllOf::new([("m", ok("a")), ("j", ok("b"))]))
            .await
            .unwrap();
        let subjects: Vec<_> = a
            .identities()
            .iter()
            .map(|i| (i.subject(), i.mechanism().map(|m| m.to_string())))
            .collect();
        assert_eq!(
            subjects,
            [("a", Some("m".to_owned())), ("b", Some("j".to_owned()))],
            "each identity names its branch"
        );
        assert_eq!(reasons(a.branches()), ["m:allowed", "j:allowed"]);
        let e = run(&AllOf::new([("m", ok("a")), ("j", bad()), ("x", ok("c"))]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "token_bad_signature");
        assert_eq!(e.status(), 401);
        assert_eq!(
            reasons(e.branch_outcomes()),
            ["m:allowed", "j:token_bad_signature"]
        );
    }

    #[tokio::test]
    async fn any_of() {
        let a = run(&AnyOf::new([("key", no()), ("jwt", ok("b"))]))
            .await
            .unwrap();
        assert_eq!(a.identities()[0].subject(), "b");
        assert_eq!(
            reasons(a.branches()),
            ["key:missing_credentials", "jwt:allowed"]
        );
        let e = run(&AnyOf::new([("key", no()), ("jwt", bad())]))
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            "token_bad_signature",
            "a bad token says more than a missing key"
        );
        assert_eq!(
            reasons(e.branch_outcomes()),
            ["key:missing_credentials", "jwt:token_bad_signature"]
        );
        let e = run(&AnyOf::new([("key", no()), ("jwt", no())]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "missing_credentials");
    }

    #[tokio::test]
    async fn nested_outcomes_are_kept() {
        let inner: Arc<dyn Verifier> = Arc::new(AnyOf::new([("a", no()), ("b", ok("x"))]));
        let a = run(&AllOf::new([("net", ok("n")), ("either", inner)]))
            .await
            .unwrap();
        assert_eq!(
            reasons(a.branches()),
            [
                "net:allowed",
                "either:allowed",
                "a:missing_credentials",
                "b:allowed"
            ]
        );
    }
}
