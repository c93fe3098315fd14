//! Group commit: many requests wait on one `Db::flush()` run on a blocking thread.

use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), String>>;

/// A handle on the group-commit task. Cloning it is cheap; the task ends with the last clone.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    /// Spawns the flushing task on the current tokio runtime.
    pub(crate) fn spawn(db: ::sled::Db) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            let mut waiting: Vec<Waiter> = Vec::new();
            while let Some(first) = rx.recv().await {
                waiting.push(first);
                while let Ok(more) = rx.try_recv() {
                    waiting.push(more);
                }
                // Every write made before its waiter was queued is covered by this flush.
                let db = db.clone();
                let result = match tokio::task::spawn_blocking(move || db.flush()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("flush task failed: {e}")),
                };
                for w in waiting.drain(..) {
                    let _ = w.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    /// Returns once every write this caller made before the call is on disk.
    pub(crate) async fn wait(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(tx)
            .map_err(|_| "the flush task has stopped".to_owned())?;
        rx.await
            .map_err(|_| "the flush task has stopped".to_owned())?
    }
}
