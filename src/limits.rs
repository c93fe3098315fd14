//! What an unauthenticated caller may cost the relay: wrong admin tokens are slowed per client
//! address, request bodies share a byte budget, and the health probes' store check is reused
//! for a moment instead of run on every request; admin sessions signed out stay out. Held in [`crate::state::AppState`]; no
//! global state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::ServerSettings;

/// Client addresses tracked at once; past it, addresses that have not failed lately are
/// forgotten, and new ones share one bucket until room is made.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Slows wrong admin tokens: each client address may fail `burst` times at once, then once
/// per `refill`. A right token costs nothing, but while a client has no attempt left even a
/// right one is refused (else the refusal would tell a guesser nothing).
pub struct AuthThrottle {
    burst: u32,
    refill: Duration,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    left: u32,
    since: Instant,
}

/// The address a bucket is kept for: IPv6 clients by their /64 (one host holds a whole one).
fn client_key(ip: Option<IpAddr>) -> IpAddr {
    match ip {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        Some(v4) => v4,
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    }
}

impl AuthThrottle {
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            burst: burst.max(1),
            refill: refill.max(Duration::from_millis(1)),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, b: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(b.since);
        let earned = (elapsed.as_nanos() / self.refill.as_nanos()).min(u32::MAX as u128) as u32;
        if earned == 0 {
            return b;
        }
        let left = b.left.saturating_add(earned).min(self.burst);
        Bucket {
            left,
            since: if left == self.burst {
                now
            } else {
                b.since + self.refill * earned
            },
        }
    }

    /// Whether `ip` may try a token now; `Err` holds how long it must wait.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        let key = client_key(ip);
        let now = Instant::now();
        let Ok(mut map) = self.clients.lock() else {
            return Ok(());
        };
        let Some(b) = map.get(&key).copied() else {
            return Ok(());
        };
        let b = self.refilled(b, now);
        map.insert(key, b);
        if b.left > 0 {
            Ok(())
        } else {
            Err(self
                .refill
                .saturating_sub(now.saturating_duration_since(b.since)))
        }
    }

    /// Counts a wrong token from `ip`.
    pub fn failed(&self, ip: Option<IpAddr>) {
        let mut key = client_key(ip);
        let now = Instant::now();
        let Ok(mut map) = self.clients.lock() else {
            return;
        };
        if !map.contains_key(&key) && map.len() >= MAX_TRACKED_CLIENTS {
            let burst = self.burst;
            map.retain(|_, b| self.refilled(*b, now).left < burst);
            if map.len() >= MAX_TRACKED_CLIENTS {
                key = IpAddr::V4(std::net::Ipv4Addr::BROADCAST);
            }
        }
        let b = map.get(&key).copied().map_or(
            Bucket {
                left: self.burst,
                since: now,
            },
            |b| self.refilled(b, now),
        );
        map.insert(
            key,
            Bucket {
                left: b.left.saturating_sub(1),
                since: if b.left == self.burst { now } else { b.since },
            },
        );
    }
}

/// The bytes of request bodies being held, against `server.max_body_bytes_in_flight`.
pub struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
}

/// Bytes taken from a [`BodyBudget`], given back when dropped.
pub struct BodyLease {
    budget: Arc<BodyBudget>,
    held: usize,
}

impl BodyBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Bytes held now, summed over every body being read or handled.
    pub fn in_flight(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// The budget's size.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// An empty lease.
    pub fn lease(self: &Arc<Self>) -> BodyLease {
        BodyLease {
            budget: self.clone(),
            held: 0,
        }
    }
}

impl BodyLease {
    /// Takes `n` more bytes; false (and nothing taken) when the budget has no room.
    pub fn grow(&mut self, n: usize) -> bool {
        let b = &self.budget;
        let ok = b
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                u.checked_add(n).filter(|t| *t <= b.limit)
            })
            .is_ok();
        if ok {
            self.held += n;
        }
        ok
    }
}

impl Drop for BodyLease {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::SeqCst);
    }
}

/// How long a good store probe answers `/healthz` and `/readyz` (so a flood of probes costs
/// one write and flush per this long, not one each). A failed probe is not reused, and a store
/// failure seen by a webhook forgets the good one, so a failing store shows at once.
pub const PROBE_REUSE: Duration = Duration::from_secs(1);

/// When the store last passed a probe.
#[derive(Default)]
pub struct ProbeCache {
    last_ok: tokio::sync::Mutex<Option<Instant>>,
    forgotten: std::sync::atomic::AtomicBool,
}

impl ProbeCache {
    /// Ok when a probe passed less than [`PROBE_REUSE`] ago, else runs `probe` (callers
    /// arriving meanwhile wait for that one probe).
    pub async fn get<F, Fut>(&self, probe: F) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut last = self.last_ok.lock().await;
        let forgotten = self.forgotten.swap(false, Ordering::SeqCst);
        if !forgotten && last.is_some_and(|at| at.elapsed() < PROBE_REUSE) {
            return Ok(());
        }
        let result = probe().await;
        *last = result.is_ok().then(Instant::now);
        result
    }

    /// The store failed elsewhere: the next probe runs.
    pub fn forget(&self) {
        self.forgotten.store(true, Ordering::SeqCst);
    }
}

/// Admin sessions signed out before they expired: session id → expiry (Unix seconds). Kept
/// in the store's meta too, so a restart does not bring them back.
#[derive(Default)]
pub struct SignedOut {
    sessions: Mutex<HashMap<String, u64>>,
}

/// The store meta key of [`SignedOut`].
pub const SIGNED_OUT_META: &str = "admin_signed_out";
/// Signed-out sessions remembered at most (each lasts 12 h at most anyway).
const MAX_SIGNED_OUT: usize = 10_000;

impl SignedOut {
    /// Whether session `id` was signed out.
    pub fn contains(&self, id: &str) -> bool {
        self.sessions.lock().is_ok_and(|m| m.contains_key(id))
    }

    /// Signs session `id` out until `expires`; returns the list to save, without the expired.
    pub fn add(&self, id: &str, expires: u64, now: u64) -> Vec<u8> {
        let Ok(mut m) = self.sessions.lock() else {
            return Vec::new();
        };
        m.retain(|_, e| *e > now);
        if m.len() >= MAX_SIGNED_OUT {
            if let Some(oldest) = m.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone()) {
                m.remove(&oldest);
            }
        }
        m.insert(id.to_owned(), expires);
        serde_json::to_vec(&*m).unwrap_or_default()
    }

    /// Loads a list saved by [`SignedOut::add`].
    pub fn load(&self, saved: &[u8]) {
        if let (Ok(list), Ok(mut m)) = (
            serde_json::from_slice::<HashMap<String, u64>>(saved),
            self.sessions.lock(),
        ) {
            m.extend(list);
        }
    }
}

/// The limits of one running relay.
pub struct Limits {
    pub auth: AuthThrottle,
    pub bodies: Arc<BodyBudget>,
    pub probe: ProbeCache,
    pub signed_out: SignedOut,
}

impl Limits {
    pub fn new(server: &ServerSettings) -> Self {
        Self {
            auth: AuthThrottle::new(
                server.admin_failures_burst,
                Duration::from_secs(server.admin_failure_refill_secs),
            ),
            bodies: Arc::new(BodyBudget::new(server.max_body_bytes_in_flight)),
            probe: ProbeCache::default(),
            signed_out: SignedOut::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_fails_its_burst_then_waits_while_others_still_may_try() {
        let t = AuthThrottle::new(3, Duration::from_secs(60));
        let a = Some("10.0.0.1".parse().expect("ip"));
        let b = Some("10.0.0.2".parse().expect("ip"));
        for _ in 0..3 {
            assert!(t.check(a).is_ok());
            t.failed(a);
        }
        let wait = t.check(a).expect_err("throttled");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(t.check(b).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_one_bucket_per_64() {
        let t = AuthThrottle::new(1, Duration::from_secs(60));
        t.failed(Some("2001:db8::1".parse().expect("ip")));
        assert!(t
            .check(Some("2001:db8::ffff:1".parse().expect("ip")))
            .is_err());
        assert!(t
            .check(Some("2001:db8:0:1::1".parse().expect("ip")))
            .is_ok());
    }

    #[test]
    fn leases_give_their_bytes_back() {
        let b = Arc::new(BodyBudget::new(10));
        let mut one = b.lease();
        assert!(one.grow(6));
        let mut two = b.lease();
        assert!(!two.grow(5));
        assert!(two.grow(4));
        assert_eq!(b.in_flight(), 10);
        drop(one);
        assert_eq!(b.in_flight(), 4);
        drop(two);
        assert_eq!(b.in_flight(), 0);
    }
}
