//! A real full disk: the data directory on a 3 MB tmpfs, filled up. Webhooks are refused with
//! 503 while the store cannot write, the health endpoints say so, and once space is freed the
//! relay either takes webhooks again or keeps `/healthz` at 503 so a supervisor restarts it
//! (sled 0.34 keeps the error of a failed write: it is the second case); it never answers "ok"
//! while it cannot store, and a restart on the same directory works and kept its data. Needs root (it mounts the tmpfs): without it the
//! test says so and passes. `tests/it/store_failure.rs` covers the same with an injected error.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Harness, STORES};
use shoprelay::startup::Workers;
use shoprelay::store::Store;

/// A mounted tmpfs, unmounted when dropped.
struct TinyFs(PathBuf);

impl TinyFs {
    fn mount(size: &str) -> Option<Self> {
        let path = std::env::temp_dir().join(format!("shoprelay-tinyfs-{}", std::process::id()));
        std::fs::create_dir_all(&path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TinyFs(path))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        // Lazy: files the relay's store still holds are let go when it drops them.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes `path` until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).and_then(|()| f.sync_all()).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).and_then(|()| f.sync_all()).is_ok() {}
}

async fn status_of(h: &Harness, path: &str) -> u16 {
    reqwest::get(h.url(path))
        .await
        .expect("GET")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_full_disk_is_reported_and_freeing_space_recovers_or_asks_for_a_restart() {
    let Some(fs) = TinyFs::mount("3m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = fs.0.join("data");
    let h = Harness::start_with(Workers::Background, |t| {
        let start = t.find("data_dir = ").expect("data_dir");
        let end = start + t[start..].find('\n').expect("line end");
        format!(
            "{}data_dir = \"{}\"{}",
            &t[..start],
            data.display(),
            &t[end..]
        )
    })
    .await;
    h.deliver(h.erp.stock_move("LAMP", STORES, 4.0).expect("move"))
        .await;
    h.wait_level("web", "LAMP", 4).await;

    let filler = fs.0.join("filler");
    fill(&filler);
    // Deliver until the store refuses; every refusal is 503 storage_failed.
    let mut refused = None;
    for i in 0..2000 {
        let ds = h
            .erp
            .stock_move(&format!("FULL{i}"), STORES, 1.0)
            .expect("move");
        for d in ds {
            let (status, body) = h.erp.deliver_with_answer(&d).await.expect("deliver");
            match status {
                200 => {}
                503 => {
                    assert!(body.contains("storage_failed"), "{body}");
                    refused = Some(d);
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        if refused.is_some() {
            break;
        }
    }
    let refused = refused.expect("the full disk refused a webhook");
    assert_eq!(
        status_of(&h, "/readyz").await,
        503,
        "not ready on a full disk"
    );
    assert_eq!(status_of(&h, "/healthz").await, 503);

    std::fs::remove_file(&filler).expect("free the space");
    let (status, body) = h.erp.deliver_with_answer(&refused).await.expect("deliver");
    if status == 200 {
        eprintln!("the store recovered in place");
        assert_eq!(status_of(&h, "/readyz").await, 200);
        assert_eq!(status_of(&h, "/healthz").await, 200);
    } else {
        eprintln!(
            "the store did not recover in place ({status} {body}): /healthz asks for a restart"
        );
        assert_eq!(status, 503, "{body}");
        assert_eq!(status_of(&h, "/healthz").await, 503);
        assert_eq!(status_of(&h, "/readyz").await, 503);
    }
    h.stop().await;
    // A restart reopens the data directory: it takes writes again and kept what it acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let store = loop {
        match Store::open(&data, 60) {
            Ok(store) => break store,
            Err(e) if std::time::Instant::now() > deadline => panic!("reopen: {e:?}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    };
    store
        .probe()
        .await
        .expect("the reopened store takes writes");
    assert!(store.bin("LAMP", STORES).await.expect("bin").is_some());
    drop(store);
    drop(fs);
}
