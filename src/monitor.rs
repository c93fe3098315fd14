//! What the running relay knows about itself beyond the store, for the admin: since when each
//! queue has been waiting, and the reconcile passes (requested, running with its progress, the
//! last one that ended). One per relay, owned by the application.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::erpnext::reconcile::{PassReport, Progress};
use crate::model::now_ms;
use crate::store::Depths;

/// A reconcile pass under way.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunningPass {
    pub full: bool,
    pub started_ms: u64,
    pub rows: u64,
    /// Bins the pass will read, when ERPNext could count them.
    pub total: Option<u64>,
}

/// The last reconcile pass that ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FinishedPass {
    pub full: bool,
    pub started_ms: u64,
    pub finished_ms: u64,
    pub rows: u64,
    pub pages: u64,
    pub watermark: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// The reconcile passes as the admin sees them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReconcileState {
    /// When an admin asked for a pass that has not started yet.
    pub requested_ms: Option<u64>,
    pub running: Option<RunningPass>,
    pub last: Option<FinishedPass>,
}

/// What the running relay knows about itself beyond the store: since when each queue has been
/// waiting, and the reconcile passes. Owned by the application (one per relay).
#[derive(Debug, Default)]
pub struct Monitor {
    /// Queue name to the time (ms) it was first seen non-empty since it was last seen empty.
    waiting_since: Mutex<BTreeMap<&'static str, u64>>,
    reconcile: Mutex<ReconcileState>,
}

pub(crate) fn queue_depths(d: &Depths) -> [(&'static str, usize); 6] {
    [
        ("inbox", d.inbox),
        ("dirty", d.dirty),
        ("dirty_documents", d.dirty_docs),
        ("outbox", d.outbox),
        ("shipment_outbox", d.shipment_outbox),
        ("dead", d.dead),
    ]
}

impl Monitor {
    /// Records the queue depths seen now (the workers call it after each step).
    pub fn observe(&self, depths: &Depths) {
        let now = now_ms();
        let mut since = self.waiting_since.lock().unwrap_or_else(|p| p.into_inner());
        for (name, depth) in queue_depths(depths) {
            if depth == 0 {
                since.remove(name);
            } else {
                since.entry(name).or_insert(now);
            }
        }
    }

    /// Since when (ms) `queue` has been non-empty, as last observed.
    pub(crate) fn waiting_since(&self, queue: &str) -> Option<u64> {
        self.waiting_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
            .copied()
    }

    fn with_reconcile(&self, f: impl FnOnce(&mut ReconcileState)) {
        f(&mut self.reconcile.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// An admin asked for a pass.
    pub fn pass_requested(&self) {
        self.with_reconcile(|r| r.requested_ms = Some(now_ms()));
    }

    /// A pass started.
    pub fn pass_started(&self, full: bool) {
        self.with_reconcile(|r| {
            r.requested_ms = None;
            r.running = Some(RunningPass {
                full,
                started_ms: now_ms(),
                rows: 0,
                total: None,
            })
        });
    }

    /// The running pass has read `p.rows` Bins.
    pub fn pass_progress(&self, p: Progress) {
        self.with_reconcile(|r| {
            if let Some(run) = &mut r.running {
                run.rows = p.rows;
                run.total = p.total;
            }
        });
    }

    /// The running pass ended, with its report or why it failed.
    pub fn pass_finished(&self, outcome: Result<&PassReport, String>) {
        self.with_reconcile(|r| {
            let run = r.running.take();
            let (full, started_ms) = run
                .as_ref()
                .map_or((false, now_ms()), |x| (x.full, x.started_ms));
            r.last = Some(match outcome {
                Ok(report) => FinishedPass {
                    full,
                    started_ms,
                    finished_ms: now_ms(),
                    rows: report.rows,
                    pages: report.pages,
                    watermark: report.watermark.as_ref().map(|w| w.0.clone()),
                    error: None,
                },
                Err(error) => FinishedPass {
                    full,
                    started_ms,
                    finished_ms: now_ms(),
                    rows: run.map_or(0, |x| x.rows),
                    pages: 0,
                    watermark: None,
                    error: Some(error),
                },
            });
        });
    }

    /// The passes as they stand.
    pub fn reconcile(&self) -> ReconcileState {
        self.reconcile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_queue_waits_from_when_it_was_first_seen_non_empty_until_it_empties() {
        let m = Monitor::default();
        m.observe(&Depths {
            outbox: 2,
            ..Depths::default()
        });
        let first = m.waiting_since("outbox").expect("waiting");
        m.observe(&Depths {
            outbox: 5,
            ..Depths::default()
        });
        assert_eq!(m.waiting_since("outbox"), Some(first));
        m.observe(&Depths::default());
        assert_eq!(m.waiting_since("outbox"), None);
    }

    #[test]
    fn a_pass_is_running_until_it_ends_and_then_it_is_the_last_one() {
        let m = Monitor::default();
        m.pass_started(true);
        m.pass_progress(Progress {
            rows: 40,
            total: Some(100),
        });
        let r = m.reconcile();
        assert_eq!(
            r.running.as_ref().map(|x| (x.rows, x.total)),
            Some((40, Some(100)))
        );
        m.pass_finished(Err("ERPNext down".into()));
        let r = m.reconcile();
        assert!(r.running.is_none());
        let last = r.last.expect("last");
        assert_eq!(
            (last.full, last.rows, last.error.as_deref()),
            (true, 40, Some("ERPNext down"))
        );
    }
}
