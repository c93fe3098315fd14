//! Waiting for something the site or the shop does in its own time: a probe repeated with a
//! growing pause until it is done, will not come, or the step's deadline passed.

use std::future::Future;
use std::time::{Duration, Instant};

/// Outcome of a poll with a deadline.
pub(super) enum Probe<T> {
    Done(T),
    /// Not yet; what was seen.
    Wait(String),
    /// It will not come; why.
    Stop(String),
}

pub(super) enum Polled<T> {
    Done(T),
    TimedOut(String),
    Stopped(String),
}

/// Probes until done, stopped, or `timeout` passed (then the last thing seen), waiting a
/// little longer between probes each time (100 ms up to 1 s).
pub(super) async fn poll<T, F, Fut>(timeout: Duration, mut probe: F) -> Polled<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    loop {
        let last = match probe().await {
            Probe::Done(v) => return Polled::Done(v),
            Probe::Stop(why) => return Polled::Stopped(why),
            Probe::Wait(seen) => seen,
        };
        let now = Instant::now();
        if now >= deadline {
            return Polled::TimedOut(last);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}
