//! From a checked file to live mechanisms and an enforcer, and from a changed file to a
//! new policy that keeps every mechanism whose settings did not change.

use std::{collections::BTreeMap, fmt, path::PathBuf, sync::Arc};

use super::{Config, ConfigError, kinds::Kinds, policy::Declared, source_name};
use crate::{
    Enforcer, Mechanisms,
    audit::AuditSink,
    clock::Clock,
    mechanism::{BackgroundTask, BuildContext, Instance, MechanismKind, Verifier},
    reject::DenialRenderer,
    state::{ReplayGuard, RevocationList},
    transport::HttpClient,
};

/// Turns a [`Config`] into an [`Enforcer`], with what only code can provide.
#[must_use]
pub struct ConfigLoader {
    config: Config,
    options: Options,
    audit: Option<Arc<dyn AuditSink>>,
    replay: Option<Arc<dyn ReplayGuard>>,
    revocations: Option<Arc<dyn RevocationList>>,
    authorizers: Vec<(String, Arc<dyn crate::model::Authorizer>)>,
    renderer: Option<DenialRenderer>,
    watch: bool,
}

impl fmt::Debug for ConfigLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigLoader")
            .field("config", &self.config)
            .field("kinds", &self.options.kinds)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

/// What code adds to every load and reload.
struct Options {
    kinds: Kinds,
    custom: Vec<(String, Arc<dyn Verifier>)>,
    client: Option<Arc<dyn HttpClient>>,
    clock: Option<Arc<dyn Clock>>,
}

impl ConfigLoader {
    pub(super) fn new(config: Config) -> Self {
        Self {
            config,
            options: Options {
                kinds: Kinds::builtin(),
                custom: Vec::new(),
                client: None,
                clock: None,
            },
            audit: None,
            replay: None,
            revocations: None,
            authorizers: Vec::new(),
            renderer: None,
            watch: false,
        }
    }

    /// Registers a verifier for a `kind = "custom"` mechanism (or one the file does not
    /// mention). It is kept across reloads.
    pub fn mechanism(mut self, name: &str, verifier: Arc<dyn Verifier>) -> Self {
        self.options.custom.push((name.to_owned(), verifier));
        self
    }
    /// Registers a mechanism kind: tables with `kind = name` are built by `kind`, from
    /// their own settings.
    pub fn kind<K: MechanismKind>(mut self, name: &str, kind: K) -> Self {
        self.options.kinds.register(name, kind);
        self
    }
    /// The HTTP client for key sets and introspection.
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.options.client = Some(client);
        self
    }
    /// The clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.options.clock = Some(clock);
        self
    }
    /// The audit sink.
    pub fn audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(audit);
        self
    }
    /// The replay guard for the file's one-time endpoints (see
    /// [`EnforcerBuilder::replay_guard`](crate::EnforcerBuilder::replay_guard)); loading
    /// a file with one-time endpoints fails without one.
    pub fn replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.replay = Some(guard);
        self
    }
    /// Registers an authorizer the file's rules name (see
    /// [`EnforcerBuilder::authorizer`](crate::EnforcerBuilder::authorizer)).
    pub fn authorizer(mut self, name: &str, authorizer: Arc<dyn crate::model::Authorizer>) -> Self {
        self.authorizers.push((name.to_owned(), authorizer));
        self
    }
    /// The revocation list (see
    /// [`EnforcerBuilder::revocations`](crate::EnforcerBuilder::revocations)).
    pub fn revocations(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocations = Some(list);
        self
    }
    /// Renders denial bodies with `renderer` (see
    /// [`EnforcerBuilder::render_denials`](crate::EnforcerBuilder::render_denials)).
    pub fn render_denials(mut self, renderer: DenialRenderer) -> Self {
        self.renderer = Some(renderer);
        self
    }
    /// Reloads the file when it changes, once [`start`](Self::start)ed (needs a
    /// configuration read with [`Config::from_file`]).
    pub fn watch(mut self) -> Self {
        self.watch = true;
        self
    }

    /// Checks the file offline with this loader's kinds and code-registered verifiers
    /// (see [`Config::validate`]).
    pub fn validate(&self) -> Result<crate::model::Topology, ConfigError> {
        self.config
            .file
            .validate(&self.options.kinds, &self.options.registered())
    }

    /// Builds the mechanisms, validates the topology and makes the enforcer. Nothing is
    /// fetched yet: see [`Loaded::warm_up`], or [`start`](Self::start) for all of it.
    pub fn load(self) -> Result<Loaded, ConfigError> {
        let checked = self
            .config
            .file
            .check(&self.options.kinds, &self.options.registered())?;
        let entries = self.options.build(checked.mechanisms, &BTreeMap::new())?;
        let mut enforcer = Enforcer::builder(checked.topology).mechanisms(&mechanisms_of(&entries));
        if let Some(audit) = self.audit {
            enforcer = enforcer.audit(audit);
        }
        if let Some(clock) = &self.options.clock {
            enforcer = enforcer.clock(clock.clone());
        }
        if let Some(renderer) = self.renderer {
            enforcer = enforcer.render_denials(renderer);
        }
        if let Some(guard) = self.replay {
            enforcer = enforcer.replay_guard(guard);
        }
        if let Some(list) = self.revocations {
            enforcer = enforcer.revocations(list);
        }
        for (name, authorizer) in self.authorizers {
            enforcer = enforcer.authorizer(&name, authorizer);
        }
        let source = self.config.source.clone();
        let digest = self.config.digest;
        Ok(Loaded {
            shared: Arc::new(Shared {
                enforcer: enforcer.build()?,
                options: self.options,
                source,
                current: arc_swap::ArcSwap::from_pointee(instances_of(&entries)),
                state: tokio::sync::Mutex::new(State {
                    entries,
                    tasks: BTreeMap::new(),
                    started: false,
                    digest,
                }),
            }),
            watch: self.watch,
            watcher: None,
        })
    }

    /// Loads, warms every mechanism up, starts their background work and, if asked,
    /// watches the file. Must run within a Tokio runtime.
    pub async fn start(self) -> Result<Loaded, ConfigError> {
        let mut loaded = self.load()?;
        loaded.warm_up().await?;
        loaded.spawn_background().await;
        if loaded.watch {
            loaded.watcher = Some(super::watch_file(&loaded.shared)?);
        }
        Ok(loaded)
    }
}

impl Options {
    fn registered(&self) -> Vec<String> {
        self.custom.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Builds `declared` (in order), keeping the instance of every mechanism whose table
    /// is unchanged from `previous` and whose references were kept too.
    fn build(
        &self,
        declared: Vec<Declared>,
        previous: &BTreeMap<String, Entry>,
    ) -> Result<BTreeMap<String, Entry>, ConfigError> {
        let mut built: BTreeMap<String, Entry> = BTreeMap::new();
        for d in declared {
            let kept = previous.get(&d.key).filter(|p| {
                p.reusable
                    && p.table == d.table
                    && d.references()
                        .iter()
                        .all(|r| built.get(*r).is_some_and(|e| e.kept))
            });
            let mut entry = match (kept, &d.parsed) {
                (Some(p), _) => p.clone(),
                (None, None) => {
                    let Some((_, v)) = self.custom.iter().find(|(n, _)| *n == d.key) else {
                        return Err(ConfigError::MissingCustom(d.key));
                    };
                    Entry::new(d.table, Instance::from_dyn(v.clone()), true)
                }
                (None, Some(parsed)) => {
                    let lookup = |name: &str| built.get(name).map(|e| e.instance.clone());
                    let ctx = BuildContext {
                        name: &d.key,
                        client: self.client.as_ref(),
                        clock: self.clock.as_ref(),
                        instances: &lookup,
                    };
                    let instance = parsed
                        .build(&ctx)
                        .map_err(|e| ConfigError::mechanism(&d.key, e))?;
                    Entry::new(d.table, instance, parsed.reusable())
                }
            };
            entry.kept = previous
                .get(&d.key)
                .is_some_and(|p| p.same_instance(&entry));
            built.insert(d.key, entry);
        }
        for (name, v) in &self.custom {
            if !built.contains_key(name) {
                let mut entry = Entry::new(toml::Table::new(), Instance::from_dyn(v.clone()), true);
                entry.kept = previous.get(name).is_some_and(|p| p.same_instance(&entry));
                built.insert(name.clone(), entry);
            }
        }
        Ok(built)
    }
}

/// A live mechanism and the table it was built from.
#[derive(Clone)]
struct Entry {
    table: toml::Table,
    instance: Instance,
    reusable: bool,
    /// Whether this load kept the instance of the previous one.
    kept: bool,
}

impl Entry {
    fn same_instance(&self, other: &Entry) -> bool {
        std::ptr::addr_eq(
            Arc::as_ptr(self.instance.verifier()),
            Arc::as_ptr(other.instance.verifier()),
        )
    }

    fn new(table: toml::Table, instance: Instance, reusable: bool) -> Self {
        Self {
            table,
            instance,
            reusable,
            kept: false,
        }
    }
}

fn mechanisms_of(entries: &BTreeMap<String, Entry>) -> Mechanisms {
    let mut m = Mechanisms::new();
    for (name, e) in entries {
        m.insert(name, e.instance.verifier().clone());
    }
    m
}

fn instances_of(entries: &BTreeMap<String, Entry>) -> BTreeMap<String, Instance> {
    entries
        .iter()
        .map(|(n, e)| (n.clone(), e.instance.clone()))
        .collect()
}

pub(super) struct Shared {
    pub(super) enforcer: Enforcer,
    options: Options,
    pub(super) source: Option<PathBuf>,
    /// The instances in force, for readers that must not wait for a reload.
    current: arc_swap::ArcSwap<BTreeMap<String, Instance>>,
    state: tokio::sync::Mutex<State>,
}

struct State {
    entries: BTreeMap<String, Entry>,
    tasks: BTreeMap<String, BackgroundTask>,
    started: bool,
    /// The SHA-256 of the file content last loaded or refused, so that a watcher reloads
    /// only what changed.
    digest: Option<[u8; 32]>,
}

/// A loaded configuration: the enforcer, the live mechanisms and their background work.
/// Keep it for as long as the service runs: dropping it stops key refresh and watching.
pub struct Loaded {
    shared: Arc<Shared>,
    watch: bool,
    watcher: Option<super::Watcher>,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("enforcer", &self.shared.enforcer)
            .field("source", &self.shared.source)
            .field("watching", &self.watcher.is_some())
            .finish_non_exhaustive()
    }
}

impl Loaded {
    /// The enforcer to hand to an adapter. Reloads change what it decides on.
    pub fn enforcer(&self) -> &Enforcer {
        &self.shared.enforcer
    }

    /// The mechanism instances in force, by name.
    pub fn mechanisms(&self) -> Mechanisms {
        let mut m = Mechanisms::new();
        for (name, i) in self.shared.current.load().iter() {
            m.insert(name, i.verifier().clone());
        }
        m
    }

    /// The mechanism `name` in force, as its own type (a `JwtVerifier`, to read its key
    /// fetches).
    pub fn instance<V: Verifier + 'static>(&self, name: &str) -> Option<Arc<V>> {
        self.shared.current.load().get(name)?.downcast::<V>()
    }

    /// Loads what every mechanism needs (signing keys), so the service is ready when
    /// this returns.
    pub async fn warm_up(&self) -> Result<(), ConfigError> {
        let state = self.shared.state.lock().await;
        warm_up(state.entries.iter()).await
    }

    /// Starts the background work of every mechanism (key refresh), kept until this is
    /// dropped. Must run within a Tokio runtime.
    pub async fn spawn_background(&self) {
        let mut state = self.shared.state.lock().await;
        let State { entries, tasks, .. } = &mut *state;
        for (name, e) in entries.iter() {
            if !tasks.contains_key(name)
                && let Some(task) = e.instance.verifier().spawn_background()
            {
                tasks.insert(name.clone(), task);
            }
        }
        state.started = true;
    }

    /// Reloads the file the configuration was read from: see
    /// [`reload_from`](Self::reload_from).
    pub async fn reload(&self) -> Result<u64, ConfigError> {
        self.shared.reload(false).await
    }

    /// Applies a new configuration, checked as at start-up. Mechanisms whose table did
    /// not change keep their instance (warm keys and cached tokens); new ones are built
    /// and, once the service has started, warmed up before the switch. Requests being
    /// decided finish on the policy they began with. On any error the policy in force
    /// stays, and the refusal is audited with its reason; either way the result is
    /// audited as a policy event. Returns the new revision.
    pub async fn reload_from(&self, config: Config) -> Result<u64, ConfigError> {
        let source = source_name(config.source());
        let mut state = self.shared.state.lock().await;
        self.shared.apply(&mut state, config, &source).await
    }
}

impl Shared {
    /// Reloads from the file; with `if_changed`, only when its content differs from the
    /// last one loaded or refused.
    pub(super) async fn reload(&self, if_changed: bool) -> Result<u64, ConfigError> {
        let Some(path) = &self.source else {
            return Err(ConfigError::NoFile);
        };
        let source = source_name(Some(path));
        let mut state = self.state.lock().await;
        // Read once: the digest names exactly the bytes applied.
        let bytes = match super::read(path) {
            Ok(bytes) => bytes,
            // Mid-swap, the file may be missing for a moment: the next event reloads.
            Err(_) if if_changed => return Ok(self.enforcer.revision()),
            Err(e) => {
                self.enforcer.refuse_policy(&source, e.audit_reason(), &e);
                return Err(e);
            }
        };
        let digest = Some(super::digest(&bytes));
        if if_changed && digest == state.digest {
            return Ok(self.enforcer.revision());
        }
        state.digest = digest;
        let config = match Config::from_bytes(path, bytes) {
            Ok(c) => c,
            Err(e) => {
                self.enforcer.refuse_policy(&source, e.audit_reason(), &e);
                return Err(e);
            }
        };
        self.apply(&mut state, config, &source).await
    }

    async fn apply(
        &self,
        state: &mut State,
        config: Config,
        source: &str,
    ) -> Result<u64, ConfigError> {
        let refuse = |e: ConfigError| {
            self.enforcer.refuse_policy(source, e.audit_reason(), &e);
            e
        };
        let checked = config
            .file
            .check(&self.options.kinds, &self.options.registered())
            .map_err(refuse)?;
        let entries = self
            .options
            .build(checked.mechanisms, &state.entries)
            .map_err(refuse)?;
        if state.started {
            warm_up(entries.iter().filter(|(_, e)| !e.kept))
                .await
                .map_err(refuse)?;
        }
        let revision = self
            .enforcer
            .reload(checked.topology, &mechanisms_of(&entries), source)?;
        // The switch is made: keep the work of kept mechanisms, start the new ones',
        // stop the rest.
        let mut tasks = std::mem::take(&mut state.tasks);
        for (name, e) in &entries {
            let task = match tasks.remove(name) {
                Some(task) if e.kept => Some(task),
                _ if state.started => e.instance.verifier().spawn_background(),
                _ => None,
            };
            if let Some(task) = task {
                state.tasks.insert(name.clone(), task);
            }
        }
        self.current.store(Arc::new(instances_of(&entries)));
        state.entries = entries;
        Ok(revision)
    }
}

async fn warm_up<'e>(
    entries: impl Iterator<Item = (&'e String, &'e Entry)>,
) -> Result<(), ConfigError> {
    for (name, e) in entries {
        e.instance
            .verifier()
            .warm_up()
            .await
            .map_err(|source| ConfigError::Unavailable {
                key: name.clone(),
                source,
            })?;
    }
    Ok(())
}
