//! systemd's service notifications: `READY=1` once the relay listens, `STOPPING=1` when it stops, and `WATCHDOG=1` after each `/healthz` that answers 200.
//!
//! systemd passes `NOTIFY_SOCKET` (a unix datagram socket; `@` starts an abstract name) to a
//! `Type=notify` service, and `WATCHDOG_USEC` when the unit sets `WatchdogSec=`. The relay then
//! asks its own `/healthz` over loopback every half of that time and sends `WATCHDOG=1` only
//! when it answered 200; a relay whose store keeps failing (a full disk that sled does not
//! recover from without a reopen) or whose HTTP server hangs sends none, and systemd restarts
//! it. Without `NOTIFY_SOCKET` nothing here does anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where notifications go: a path, or an abstract socket name (Linux).
#[derive(Debug, Clone)]
pub enum NotifySocket {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl NotifySocket {
    /// From the value of `NOTIFY_SOCKET`; `None` when it is empty.
    pub fn parse(value: &str) -> Option<Self> {
        if value.is_empty() {
            return None;
        }
        Some(match value.strip_prefix('@') {
            Some(name) => NotifySocket::Abstract(name.as_bytes().to_vec()),
            None => NotifySocket::Path(PathBuf::from(value)),
        })
    }

    /// Sends one notification (`READY=1`, ...).
    pub fn send(&self, message: &str) -> std::io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        match self {
            NotifySocket::Path(path) => socket.send_to(message.as_bytes(), path)?,
            NotifySocket::Abstract(name) => {
                #[cfg(target_os = "linux")]
                {
                    use std::os::linux::net::SocketAddrExt;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                    socket.send_to_addr(message.as_bytes(), &addr)?
                }
                #[cfg(not(target_os = "linux"))]
                {
                    let _ = name;
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        "abstract socket names exist on Linux only",
                    ));
                }
            }
        };
        Ok(())
    }
}

/// What systemd asked for, read from the environment once at start.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: NotifySocket,
    /// Half of `WATCHDOG_USEC`: how often `/healthz` is asked; `None` without a watchdog.
    heartbeat: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (a watchdog meant for another
    /// process is ignored); `None` when the relay does not run under systemd's notify protocol.
    pub fn from_env() -> Option<Self> {
        let socket = NotifySocket::parse(&std::env::var("NOTIFY_SOCKET").ok()?)?;
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let heartbeat = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(|u| Duration::from_micros(u) / 2);
        Some(Self::new(socket, heartbeat))
    }

    pub fn new(socket: NotifySocket, heartbeat: Option<Duration>) -> Self {
        Self { socket, heartbeat }
    }

    /// Tells systemd the relay is ready and, with a watchdog, starts the heartbeat against
    /// the `/healthz` of the relay listening on `listening`.
    pub fn ready(&self, listening: SocketAddr) {
        self.send("READY=1");
        if let Some(every) = self.heartbeat {
            let this = self.clone();
            let url = format!("http://{}/healthz", loopback(listening));
            tokio::spawn(async move { this.watchdog(url, every).await });
        }
    }

    /// Tells systemd the relay is stopping.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Every `every`, asks `url` and sends `WATCHDOG=1` when it answered 200. Runs until the
    /// process ends.
    pub async fn watchdog(&self, url: String, every: Duration) {
        let client = match reqwest::Client::builder().timeout(every).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "watchdog: cannot build an HTTP client; sending no heartbeat");
                return;
            }
        };
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match client.get(&url).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => self.send("WATCHDOG=1"),
                Ok(r) => tracing::warn!(
                    status = r.status().as_u16(),
                    "watchdog: /healthz is not 200; no heartbeat sent"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "watchdog: /healthz did not answer; no heartbeat sent")
                }
            }
        }
    }

    fn send(&self, message: &str) {
        if let Err(e) = self.socket.send(message) {
            tracing::warn!(error = %e, message, "cannot notify systemd");
        }
    }
}

/// The address to ask for a listener bound to `addr`: a wildcard becomes loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listener_is_asked_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8787".parse().expect("addr");
        assert_eq!(loopback(any).to_string(), "127.0.0.1:8787");
        let any6: SocketAddr = "[::]:8787".parse().expect("addr");
        assert_eq!(loopback(any6).to_string(), "[::1]:8787");
        let one: SocketAddr = "10.0.0.5:1".parse().expect("addr");
        assert_eq!(loopback(one), one);
    }

    #[test]
    fn the_socket_variable_is_a_path_or_an_abstract_name() {
        assert!(NotifySocket::parse("").is_none());
        assert!(matches!(
            NotifySocket::parse("/run/systemd/notify"),
            Some(NotifySocket::Path(_))
        ));
        assert!(
            matches!(NotifySocket::parse("@abc"), Some(NotifySocket::Abstract(n)) if n == b"abc")
        );
    }
}
