//! Reloading a configuration file when it changes.
//!
//! The watch is on the file's directory, not the file: editors replace a file by renaming
//! another over it, and Kubernetes updates a mounted ConfigMap by swapping the `..data`
//! symlink the file's own symlink goes through, which changes nothing at the file's path
//! itself. When the path is a symlink into another directory, that one is watched too.
//! Events are let settle for a moment, then the file is read whole and reloaded only if
//! its content changed.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Weak},
    time::Duration,
};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use super::{ConfigError, load::Shared};
use crate::mechanism::BackgroundTask;

/// How long events are let settle before the file is read.
const SETTLE: Duration = Duration::from_millis(100);

/// Watches a configuration file; stops when dropped.
pub(crate) struct Watcher {
    _watcher: RecommendedWatcher,
    _task: BackgroundTask,
}

pub(super) fn watch_file(shared: &Arc<Shared>) -> Result<Watcher, ConfigError> {
    let path = shared.source.clone().ok_or(ConfigError::NoFile)?;
    let fail = |e: notify::Error| ConfigError::Watch {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        // The receiver is gone only when the watcher is being dropped.
        let _ = tx.send(());
    })
    .map_err(fail)?;
    for dir in directories(&path) {
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(fail)?;
    }
    let shared: Weak<Shared> = Arc::downgrade(shared);
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            let Some(shared) = shared.upgrade() else {
                break;
            };
            // A refused reload is audited and the policy in force stays; nothing more
            // to do here.
            let _ = shared.reload(true).await;
        }
    });
    Ok(Watcher {
        _watcher: watcher,
        _task: BackgroundTask::new(task),
    })
}

/// The directory of `path`, and that of the file it resolves to if another.
fn directories(path: &Path) -> Vec<PathBuf> {
    let parent = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let own = parent(path);
    let resolved = std::fs::canonicalize(path).ok().map(|p| parent(&p));
    match resolved {
        Some(d) if std::fs::canonicalize(&own).ok().as_ref() != Some(&d) => vec![own, d],
        _ => vec![own],
    }
}
