//! One issuer's keys: an immutable snapshot read by requests, replaced whole by fetches.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwapOption;
use futures_util::{FutureExt, future::Shared};
use http::Uri;

use super::{CachePolicy, KeySource, KeySourceError, cache_control, source::check_url};
use crate::{
    clock::Clock,
    jose::{Algorithm, JwkSet, VerifyingKey, select_key},
    names::Issuer,
    task::BackgroundTask,
    transport::{HttpClient, get_json},
    util::BoxFuture,
};

/// A set of keys as fetched at one moment.
#[derive(Debug)]
pub(crate) struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    /// `None` for a fixed set that never expires.
    fresh_until: Option<SystemTime>,
    refresh_at: Option<SystemTime>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Arc<VerifyingKey>> {
        select_key(&self.keys, kid, alg)
    }

    fn is_fresh(&self, now: SystemTime) -> bool {
        self.fresh_until.is_none_or(|t| now < t)
    }

    fn is_usable(&self, now: SystemTime, stale_if_error: Duration) -> bool {
        self.fresh_until.is_none_or(|t| now < t + stale_if_error)
    }
}

type SharedFetch = Shared<BoxFuture<'static, Result<Arc<KeySet>, KeySourceError>>>;

#[derive(Default)]
struct FetchState {
    inflight: Option<SharedFetch>,
    last_attempt: Option<SystemTime>,
    last_error: Option<KeySourceError>,
    discovered_jwks_uri: Option<Uri>,
}

/// Why a key could not be found.
#[derive(Debug, Clone)]
pub(crate) enum KeyLookupError {
    /// The keys are current and none matches.
    Unknown,
    /// No usable keys: the source failed.
    Unavailable(KeySourceError),
}

/// Whether a key that verified a cached token may still be relied on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyStatus {
    Current,
    Gone,
    Unavailable,
}

/// One issuer's key cache.
pub(crate) struct KeyStore {
    issuer: Issuer,
    source: KeySource,
    policy: CachePolicy,
    client: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    snapshot: ArcSwapOption<KeySet>,
    state: Mutex<FetchState>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("issuer", &self.issuer)
            .field("source", &self.source)
            .field("keys", &self.snapshot.load().as_ref().map(|s| s.keys.len()))
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    pub(crate) fn new(
        issuer: Issuer,
        source: KeySource,
        policy: CachePolicy,
        client: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let snapshot = match &source {
            KeySource::Static(keys) => Some(Arc::new(KeySet {
                keys: keys.to_vec(),
                fresh_until: None,
                refresh_at: None,
            })),
            _ => None,
        };
        Arc::new(Self {
            issuer,
            source,
            policy,
            client,
            clock,
            snapshot: ArcSwapOption::new(snapshot),
            state: Mutex::new(FetchState::default()),
            fetches: AtomicU64::new(0),
        })
    }

    pub(crate) fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// How many fetches have started (discovery and key set count as one).
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds the key for a token's `kid` and `alg`, fetching only when the cached set is
    /// stale, or when the `kid` is unknown and no fetch happened recently.
    pub(crate) async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        let now = self.clock.now();
        if let Some(answer) = self.key_now(kid, alg, now) {
            return answer;
        }
        let snapshot = self.snapshot.load_full();
        // Deciding and starting are one step: a fetch that ends between the two would
        // otherwise let a request that came to join it start another.
        let fetched = match self.join_or_start(Some(now)) {
            Some(fetch) => fetch.await,
            None => Err(self
                .state()
                .last_error
                .clone()
                .unwrap_or(KeySourceError::Backoff)),
        };
        match fetched {
            Ok(set) => set.find(kid, alg).cloned().ok_or(KeyLookupError::Unknown),
            Err(error) => match snapshot {
                Some(set) if set.is_usable(now, self.policy.stale_if_error) => {
                    set.find(kid, alg).cloned().ok_or(KeyLookupError::Unknown)
                }
                _ => Err(KeyLookupError::Unavailable(error)),
            },
        }
    }

    /// The answer [`key`](Self::key) gives without fetching, when the key set in hand is
    /// fresh: the key, or that the key set does not have it and may not be fetched again
    /// yet. `None` when only a fetch can answer. `now` is the store's clock read by the
    /// caller.
    pub(crate) fn key_now(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        now: SystemTime,
    ) -> Option<Result<Arc<VerifyingKey>, KeyLookupError>> {
        let snapshot = self.snapshot.load();
        let set = snapshot.as_ref().filter(|set| set.is_fresh(now))?;
        if let Some(key) = set.find(kid, alg) {
            return Some(Ok(key.clone()));
        }
        (set.fresh_until.is_none() || !self.may_fetch(now)).then_some(Err(KeyLookupError::Unknown))
    }

    /// Whether a key (by thumbprint) is still in a usable key set at `now` (the store's
    /// clock read by the caller).
    pub(crate) fn status(&self, thumbprint: &[u8; 32], now: SystemTime) -> KeyStatus {
        let Some(set) = &*self.snapshot.load() else {
            return KeyStatus::Unavailable;
        };
        if !set.is_usable(now, self.policy.stale_if_error) {
            return KeyStatus::Unavailable;
        }
        if set.keys.iter().any(|k| k.thumbprint() == thumbprint) {
            KeyStatus::Current
        } else {
            KeyStatus::Gone
        }
    }

    /// A fetch may start: none failed or started within the minimum interval, or one is
    /// running (joining it is free).
    fn may_fetch(&self, now: SystemTime) -> bool {
        let state = self.state();
        state.inflight.is_some() || self.may_start(&state, now)
    }

    /// A new fetch may start at `now`: none failed or started within the minimum interval.
    fn may_start(&self, state: &FetchState, now: SystemTime) -> bool {
        !matches!(self.source, KeySource::Static(_))
            && state.last_attempt.is_none_or(|t| {
                now.duration_since(t).unwrap_or(Duration::ZERO) >= self.policy.min_refresh_interval
            })
    }

    /// When the background refresher should fetch next.
    pub(crate) fn next_refresh(&self) -> Option<SystemTime> {
        if matches!(self.source, KeySource::Static(_)) {
            return None;
        }
        let retry = self
            .state()
            .last_attempt
            .map(|t| t + self.policy.min_refresh_interval);
        match &*self.snapshot.load() {
            Some(set) => set.refresh_at.map(|t| retry.map_or(t, |r| r.max(t))),
            None => Some(retry.unwrap_or(SystemTime::UNIX_EPOCH)),
        }
    }

    /// Fetches now, or joins the fetch under way.
    pub(crate) async fn refresh(self: &Arc<Self>) -> Result<Arc<KeySet>, KeySourceError> {
        match self.join_or_start(None) {
            Some(fetch) => fetch.await,
            None => Err(KeySourceError::Backoff),
        }
    }

    /// The fetch under way, or a new one; with `within`, a new one only if
    /// [`may_start`](Self::may_start) at that time (`None` otherwise).
    fn join_or_start(self: &Arc<Self>, within: Option<SystemTime>) -> Option<SharedFetch> {
        let mut state = self.state();
        if let Some(fetch) = &state.inflight {
            return Some(fetch.clone());
        }
        if within.is_some_and(|now| !self.may_start(&state, now)) {
            return None;
        }
        state.last_attempt = Some(self.clock.now());
        let this = Arc::clone(self);
        let f: BoxFuture<'static, _> = Box::pin(async move { this.fetch_once().await });
        let shared = f.shared();
        state.inflight = Some(shared.clone());
        Some(shared)
    }

    async fn fetch_once(self: Arc<Self>) -> Result<Arc<KeySet>, KeySourceError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = tokio::time::timeout(self.policy.fetch_timeout, self.fetch_set())
            .await
            .unwrap_or(Err(KeySourceError::Timeout));
        let mut state = self.state();
        state.inflight = None;
        match result {
            Ok(set) => {
                state.last_error = None;
                let set = Arc::new(set);
                self.snapshot.store(Some(set.clone()));
                tracing::debug!(issuer = %self.issuer, keys = set.keys.len(), "signing keys refreshed");
                Ok(set)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, %error, "signing key refresh failed; keeping the last good keys");
                state.discovered_jwks_uri = None;
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    async fn fetch_set(&self) -> Result<KeySet, KeySourceError> {
        let uri = match &self.source {
            KeySource::JwksUri(uri) => uri.clone(),
            KeySource::Discovery(doc) => {
                let cached = self.state().discovered_jwks_uri.clone();
                match cached {
                    Some(uri) => uri,
                    None => {
                        let uri = self.discover(doc).await?;
                        self.state().discovered_jwks_uri = Some(uri.clone());
                        uri
                    }
                }
            }
            KeySource::Static(_) => {
                return Err(KeySourceError::Discovery("fixed key sets are not fetched"));
            }
        };
        let response = get_json(&*self.client, &uri, self.policy.max_response_bytes).await?;
        if !response.status().is_success() {
            return Err(KeySourceError::Status(response.status().as_u16()));
        }
        if response.body().len() > self.policy.max_response_bytes {
            return Err(crate::transport::HttpError::TooLarge {
                limit: self.policy.max_response_bytes,
            }
            .into());
        }
        let parsed = JwkSet::parse(response.body())?;
        for (index, reason) in &parsed.skipped {
            tracing::warn!(issuer = %self.issuer, index, %reason, "skipping unusable signing key");
        }
        if parsed.keys.is_empty() {
            return Err(KeySourceError::NoUsableKeys {
                skipped: parsed.skipped.len(),
            });
        }
        let ttl = cache_control::freshness(response.headers())
            .unwrap_or(self.policy.default_ttl)
            .clamp(self.policy.min_ttl, self.policy.max_ttl);
        let now = self.clock.now();
        let refresh_after = ttl.mul_f64(f64::from(self.policy.refresh_at_percent) / 100.0);
        // Keep the Arc of keys that did not change, so cached tokens stay linked to them.
        let previous = self.snapshot.load_full();
        let keys = parsed
            .keys
            .into_iter()
            .map(|k| {
                previous
                    .as_ref()
                    .and_then(|p| {
                        p.keys
                            .iter()
                            .find(|o| o.thumbprint() == k.thumbprint() && o.kid() == k.kid())
                    })
                    .cloned()
                    .unwrap_or_else(|| Arc::new(k))
            })
            .collect();
        Ok(KeySet {
            keys,
            fresh_until: Some(now + ttl),
            refresh_at: Some(now + refresh_after),
        })
    }

    async fn discover(&self, doc: &Uri) -> Result<Uri, KeySourceError> {
        let response = get_json(&*self.client, doc, self.policy.max_response_bytes).await?;
        if !response.status().is_success() {
            return Err(KeySourceError::Status(response.status().as_u16()));
        }
        let doc = crate::json::value(response.body())
            .map_err(|_| KeySourceError::Discovery("not JSON"))?;
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(self.issuer.as_str()) {
            return Err(KeySourceError::Discovery(
                "issuer does not match the configured issuer",
            ));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or(KeySourceError::Discovery("no jwks_uri"))?;
        check_url(jwks_uri)
            .map_err(|_| KeySourceError::Discovery("jwks_uri is not https (or loopback http)"))
    }
}

/// Starts a task that refreshes every store before its keys expire. Must be called
/// within a Tokio runtime.
pub(crate) fn spawn_refresher(stores: Vec<Arc<KeyStore>>, clock: Arc<dyn Clock>) -> BackgroundTask {
    const MAX_SLEEP: Duration = Duration::from_secs(60);
    const MIN_SLEEP: Duration = Duration::from_millis(50);
    let task = tokio::spawn(async move {
        loop {
            let now = clock.now();
            for store in &stores {
                if store.next_refresh().is_some_and(|t| t <= now) {
                    // Errors are logged by the store and retried after the minimum interval.
                    let _ = store.refresh().await;
                }
            }
            let now = clock.now();
            let next = stores
                .iter()
                .filter_map(|s| s.next_refresh())
                .map(|t| t.duration_since(now).unwrap_or(Duration::ZERO))
                .min()
                .unwrap_or(MAX_SLEEP);
            tokio::time::sleep(next.clamp(MIN_SLEEP, MAX_SLEEP)).await;
        }
    });
    BackgroundTask::new(task)
}
