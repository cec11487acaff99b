//! Background work that stops when its handle is dropped.

/// A mechanism's background work; stopped when dropped or [`stop`](Self::stop)ped.
#[derive(Debug)]
pub struct BackgroundTask {
    task: tokio::task::JoinHandle<()>,
}

impl BackgroundTask {
    /// Takes charge of a spawned task.
    pub fn new(task: tokio::task::JoinHandle<()>) -> Self {
        Self { task }
    }

    /// Stops the work.
    pub fn stop(self) {
        self.task.abort();
    }

    /// Whether the work has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}
