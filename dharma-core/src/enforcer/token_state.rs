//! Replay and revocation: the token state the enforcer consults after a request's
//! credentials and requirements have been checked, and the revocation API.

use std::time::{Duration, SystemTime};

use super::Enforcer;
use crate::{
    audit::{TokenActivity, TokenEvent},
    context::{Identity, principal},
    error::{ForbiddenReason, Rejection, StoreError, TokenError},
    model::Endpoint,
    state::{FailMode, Revocation, TokenFacts},
};

/// How long a one-time token without `exp` is remembered.
const NO_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// Remembered past `exp` for the leeway verifiers allow.
const LEEWAY: Duration = Duration::from_secs(300);

/// What the token state said of an admissible request.
pub(super) enum Checked {
    /// Nothing revoked or replayed.
    Fresh,
    /// A store could not answer and the endpoint fails open.
    Unchecked,
}

impl Enforcer {
    /// Refuses revoked tokens, and replayed ones on a one-time endpoint.
    pub(super) async fn check_token_state(
        &self,
        endpoint: &Endpoint,
        identities: &[Identity],
    ) -> Result<Checked, Rejection> {
        // Most policies use neither: no clock read on their requests.
        if self.inner.revocations.is_none() && !endpoint.one_time() {
            return Ok(Checked::Fresh);
        }
        let now = self.inner.clock.now();
        let mut checked = Checked::Fresh;
        let mut failed = |e: StoreError| match endpoint.on_store_failure() {
            FailMode::Open => {
                checked = Checked::Unchecked;
                Ok(())
            }
            _ => Err(Rejection::Unavailable(e.into())),
        };
        if let Some(list) = &self.inner.revocations {
            for facts in identities.iter().filter_map(TokenFacts::of) {
                match list.is_revoked(&facts, now) {
                    Ok(true) => return Err(TokenError::Revoked.into()),
                    Ok(false) => {}
                    Err(e) => failed(e)?,
                }
            }
        }
        if endpoint.one_time() {
            let Some(facts) =
                principal(identities, endpoint.allows_identified()).and_then(TokenFacts::of)
            else {
                return Err(ForbiddenReason::OneTimeWithoutToken.into());
            };
            let Some(guard) = &self.inner.replay else {
                // Refused when the policy is bound; fail closed all the same.
                return Err(ForbiddenReason::OneTimeWithoutToken.into());
            };
            let until = facts.expires_at.map_or(now + NO_EXPIRY, |exp| {
                SystemTime::UNIX_EPOCH + Duration::from_secs(exp) + LEEWAY
            });
            match guard.first_use(&facts, now, until.max(now)).await {
                Ok(true) => {}
                Ok(false) => {
                    let mut event =
                        TokenEvent::new(TokenActivity::ReplayDetected, "token_replayed", now);
                    event.issuer = (!facts.issuer.is_empty()).then(|| facts.issuer.into());
                    event.subject = Some(facts.subject.into());
                    event.client = facts.client.map(Into::into);
                    event.token_id = Some(facts.token_id.into());
                    event.audience = vec![endpoint.name_arc().clone()];
                    self.inner.audit.record_token(&event);
                    return Err(TokenError::Replayed.into());
                }
                Err(e) => failed(e)?,
            }
        }
        Ok(checked)
    }

    /// Revokes tokens by id, subject or client, for `keep_for` (at least the longest
    /// lifetime of a token it concerns), in the enforcer's revocation list; the revocation
    /// is audited as a token event. Fails if there is no list or it cannot take the entry.
    pub async fn revoke(
        &self,
        revocation: &Revocation,
        keep_for: Duration,
    ) -> Result<(), StoreError> {
        let Some(list) = &self.inner.revocations else {
            return Err(StoreError::Unavailable(
                "the enforcer has no revocation list".into(),
            ));
        };
        let now = self.inner.clock.now();
        list.revoke(revocation, now, keep_for).await?;
        let mut event = TokenEvent::new(TokenActivity::Revoked, revocation.kind(), now);
        match revocation {
            Revocation::Token { issuer, token_id } => {
                event.issuer = Some(issuer.as_str().into());
                event.token_id = Some(token_id.as_str().into());
            }
            Revocation::Subject { issuer, subject } => {
                event.issuer = Some(issuer.as_str().into());
                event.subject = Some(subject.as_str().into());
            }
            Revocation::Client { issuer, client } => {
                event.issuer = Some(issuer.as_str().into());
                event.client = Some(client.as_str().into());
            }
        }
        self.inner.audit.record_token(&event);
        Ok(())
    }
}
