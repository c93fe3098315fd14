//! The deployment files: secrets read from `SHOPRELAY_*_FILE` by the real binary, the systemd
//! unit (`systemd-analyze verify`, the notify protocol and its watchdog on `/healthz`), and the
//! image and compose definitions checked against the code they build and run.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// A configuration without a single secret: they all come from files.
fn config_without_secrets(dir: &Path) -> PathBuf {
    let config = dir.join("shoprelay.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
data_dir = "{}"
[erpnext]
url = "http://127.0.0.1:9"
reconcile_interval_secs = 0
[shop]
base_url = "http://127.0.0.1:9/erp"
[[channels]]
name = "web"
warehouses = ["Stores - T"]
"#,
            dir.join("data").display()
        ),
    )
    .expect("write config");
    config
}

const ADMIN_TOKEN: &str = "admin-token-from-a-file";
const WEBHOOK_SECRET: &str = "webhook-secret-from-a-file";
const API_SECRET: &str = "api-secret-from-a-file";

/// One file per secret (each with the trailing line break an editor leaves), and the
/// `SHOPRELAY_*_FILE` variables naming them.
fn secret_files(dir: &Path) -> Vec<(String, PathBuf)> {
    [
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("ERPNEXT_API_KEY", "api-key-from-a-file"),
        ("ERPNEXT_API_SECRET", API_SECRET),
        ("ERPNEXT_WEBHOOK_SECRETS", WEBHOOK_SECRET),
        ("SHOP_TOKEN", "shop-token-from-a-file"),
    ]
    .into_iter()
    .map(|(name, value)| {
        let path = dir.join(name.to_ascii_lowercase());
        std::fs::write(&path, format!("{value}\n")).expect("write secret");
        (format!("SHOPRELAY_{name}_FILE"), path)
    })
    .collect()
}

fn relay_command(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoprelay"));
    cmd.args(["serve", "--config"]).arg(config);
    for (k, _) in std::env::vars() {
        if k.starts_with("SHOPRELAY_") || k == "NOTIFY_SOCKET" || k.starts_with("WATCHDOG_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Reads the port from the relay's `shoprelay listening on ...` line.
fn listening_port(child: &mut Child) -> u16 {
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    line.trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "graceful stop exits 0, got {exit:?}");
}

fn frappe_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn the_real_binary_reads_its_secrets_from_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_without_secrets(dir.path());
    let log = dir.path().join("relay.log");
    let mut cmd = relay_command(&config);
    for (var, path) in secret_files(dir.path()) {
        cmd.env(var, path);
    }
    let mut child = cmd
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn shoprelay");
    let port = listening_port(&mut child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    // The admin token is the file's, without its line break.
    let status = |token: &'static str| {
        http.get(format!("{base}/admin/channels"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(status(ADMIN_TOKEN).await.expect("admin").status(), 200);
    assert_eq!(status("wrong").await.expect("admin").status(), 401);

    // ERPNext's deliveries are verified with the webhook secret of its file.
    let body = br#"{"doctype": "Bin", "event": "on_update", "item_code": "SKU-1", "warehouse": "Stores - T"}"#;
    let deliver = |secret: &str| {
        http.post(format!("{base}/webhooks/erpnext"))
            .header("Content-Type", "application/json")
            .header("X-Frappe-Webhook-Signature", frappe_signature(secret, body))
            .body(body.to_vec())
            .send()
    };
    assert_eq!(
        deliver(WEBHOOK_SECRET).await.expect("deliver").status(),
        200
    );
    assert_eq!(
        deliver("another-secret").await.expect("deliver").status(),
        401
    );

    terminate(&mut child);
    let log = std::fs::read_to_string(&log).expect("read log");
    for secret in [ADMIN_TOKEN, WEBHOOK_SECRET, API_SECRET] {
        assert!(!log.contains(secret), "the log holds a secret:\n{log}");
    }
}

#[test]
fn a_secret_set_twice_or_unreadable_stops_the_relay_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_without_secrets(dir.path());
    let files = secret_files(dir.path());

    let mut cmd = relay_command(&config);
    for (var, path) in &files {
        cmd.env(var, path);
    }
    let out = cmd
        .env("SHOPRELAY_SHOP_TOKEN", "shop-token-in-the-environment")
        .output()
        .expect("run shoprelay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with a secret set twice");
    assert!(
        stderr.contains(
            "`SHOPRELAY_SHOP_TOKEN_FILE` is set together with SHOPRELAY_SHOP_TOKEN: set one of them"
        ),
        "{stderr}"
    );

    let mut cmd = relay_command(&config);
    for (var, path) in &files {
        cmd.env(var, path);
    }
    let missing = dir.path().join("no-such-file");
    let out = cmd
        .env("SHOPRELAY_ERPNEXT_API_SECRET_FILE", &missing)
        .output()
        .expect("run shoprelay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without its API secret");
    assert!(
        stderr.contains(&format!(
            "SHOPRELAY_ERPNEXT_API_SECRET_FILE names {}, which cannot be read",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains(API_SECRET) && !stderr.contains(ADMIN_TOKEN),
        "{stderr}"
    );
}

/// The next notification on `socket`, or `None` once `deadline` passed.
fn next_notification(socket: &UnixDatagram, deadline: Instant) -> Option<String> {
    let left = deadline.checked_duration_since(Instant::now())?;
    socket
        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .expect("timeout");
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn under_systemd_the_relay_says_ready_beats_the_watchdog_and_says_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_without_secrets(dir.path());
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");

    let mut cmd = relay_command(&config);
    for (var, path) in secret_files(dir.path()) {
        cmd.env(var, path);
    }
    let mut child = cmd
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shoprelay");
    let _port = listening_port(&mut child);

    let deadline = Instant::now() + Duration::from_secs(20);
    assert_eq!(
        next_notification(&socket, deadline).as_deref(),
        Some("READY=1")
    );
    // Heartbeats, each after a /healthz that answered 200.
    for _ in 0..3 {
        assert_eq!(
            next_notification(&socket, deadline).as_deref(),
            Some("WATCHDOG=1")
        );
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let stopping =
        std::iter::from_fn(|| next_notification(&socket, deadline)).find(|m| m != "WATCHDOG=1");
    assert_eq!(stopping.as_deref(), Some("STOPPING=1"));
    assert!(child.wait().expect("wait").success());
}

/// A stand-in for the relay's `/healthz`: answers with the status in `status`, counting probes.
async fn health_server(status: Arc<AtomicU16>, probes: Arc<AtomicUsize>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let status = status.clone();
            let probes = probes.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let code = status.load(Ordering::SeqCst);
                let answer =
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = conn.write_all(answer.as_bytes()).await;
                probes.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    port
}

// Multi-threaded: the test blocks a thread on the notification socket while the watchdog runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_heartbeat_while_healthz_fails_and_heartbeats_again_once_it_answers_200() {
    use shoprelay::notify::{Notifier, NotifySocket};
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind");
    socket.set_nonblocking(true).expect("nonblocking");
    let status = Arc::new(AtomicU16::new(503));
    let probes = Arc::new(AtomicUsize::new(0));
    let port = health_server(status.clone(), probes.clone()).await;

    let notifier = Notifier::new(NotifySocket::Path(socket_path), None);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let beat = tokio::spawn(async move { notifier.watchdog(url, Duration::from_millis(20)).await });

    let deadline = Instant::now() + Duration::from_secs(20);
    while probes.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "the watchdog never asked /healthz"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut buf = [0u8; 64];
    assert!(
        socket.recv(&mut buf).is_err(),
        "a heartbeat was sent while /healthz answered 503"
    );

    status.store(200, Ordering::SeqCst);
    socket.set_nonblocking(false).expect("blocking");
    assert_eq!(
        next_notification(&socket, deadline).as_deref(),
        Some("WATCHDOG=1")
    );
    beat.abort();
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if analyze.is_err() {
        assert!(
            std::env::var("SHOPRELAY_REQUIRE_SYSTEMD_ANALYZE").is_err(),
            "systemd-analyze is required here (SHOPRELAY_REQUIRE_SYSTEMD_ANALYZE) but missing"
        );
        eprintln!("skipped: systemd-analyze not installed (Debian package systemd)");
        return;
    }
    let unit = read("deploy/systemd/shoprelay.service");
    for needed in [
        "DynamicUser=yes",
        "StateDirectory=shoprelay",
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    // verify checks that ExecStart's binary exists: point it at the one the tests built.
    let exec = "ExecStart=/usr/local/bin/shoprelay ";
    assert!(unit.contains(exec), "ExecStart is not {exec}...");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shoprelay.service");
    std::fs::write(
        &path,
        unit.replace(
            exec,
            &format!("ExecStart={} ", env!("CARGO_BIN_EXE_shoprelay")),
        ),
    )
    .expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 for unknown keys and bad values, only warning: a warning fails here too.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        out.status
    );
    // The configuration the unit points at keeps the data where StateDirectory puts it.
    let config: toml::Table = read("deploy/shoprelay.container.toml")
        .parse()
        .expect("toml");
    assert_eq!(
        config["server"]["data_dir"].as_str(),
        Some("/var/lib/shoprelay")
    );
    // Every secret the unit hands over is one the relay reads from a file.
    let env_file_vars: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment=SHOPRELAY_"))
        .filter_map(|l| l.split_once("_FILE=%d/"))
        .map(|(name, cred)| {
            assert!(
                unit.contains(&format!("LoadCredential={cred}:")),
                "{name}: no LoadCredential={cred}"
            );
            name
        })
        .collect();
    assert_eq!(env_file_vars.len(), 5, "{env_file_vars:?}");
}

/// The instructions of a Dockerfile, continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let text = read("Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (op, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((op.to_ascii_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

#[test]
fn the_image_builds_the_tested_binary_with_the_tested_toolchain() {
    let steps = dockerfile();
    let froms: Vec<&str> = steps
        .iter()
        .filter(|(op, _)| op == "FROM")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );
    let builder = froms[0];
    let version = builder
        .strip_prefix("rust:")
        .and_then(|r| r.split('-').next())
        .unwrap_or_else(|| panic!("the build stage is not a rust image: {builder}"));
    assert_eq!(
        version.split('.').count(),
        3,
        "pin the full toolchain: {builder}"
    );
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .expect("rustc");
    let tested = String::from_utf8_lossy(&rustc.stdout);
    assert!(
        tested.starts_with(&format!("rustc {version} ")),
        "the image builds with Rust {version}, the tests ran with {tested}: update the Dockerfile's FROM"
    );
    let manifest: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml");
    let msrv = manifest["package"]["rust-version"]
        .as_str()
        .expect("rust-version");
    let parts = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    assert!(
        parts(version) >= parts(msrv),
        "{version} is older than rust-version {msrv}"
    );

    // The one cargo command: the committed lock file, release, the shoprelay binary.
    let cargo: Vec<&str> = steps
        .iter()
        .filter(|(op, a)| op == "RUN" && a.contains("cargo "))
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(cargo, ["cargo build --locked --release --bin shoprelay"]);
    let bins = manifest["bin"].as_array().expect("[[bin]]");
    assert!(bins.iter().any(|b| b["name"].as_str() == Some("shoprelay")));

    // What it copies exists, and it copies what the build reads.
    let copies: Vec<Vec<&str>> = steps
        .iter()
        .filter(|(op, a)| op == "COPY" && !a.starts_with("--from"))
        .map(|(_, a)| a.split_whitespace().collect())
        .collect();
    let mut sources: Vec<&str> = Vec::new();
    for c in &copies {
        for s in &c[..c.len() - 1] {
            assert!(
                root().join(s).exists(),
                "the Dockerfile copies {s}, which does not exist"
            );
            sources.push(s);
        }
    }
    let mut needed = vec!["Cargo.toml", "Cargo.lock", "src", "erpnext_webhook_setup"];
    let bench_dirs: Vec<String> = manifest
        .get("bench")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
        .map(|b| {
            b.get("path")
                .and_then(|p| p.as_str())
                .map(|p| p.split('/').next().unwrap_or(p).to_owned())
                .unwrap_or_else(|| "benches".to_owned())
        })
        .collect();
    let members: Vec<String> = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    // Crates of the repository the package depends on (a workspace crate such as a testkit).
    let path_deps: Vec<String> = ["dependencies", "dev-dependencies", "build-dependencies"]
        .iter()
        .filter_map(|t| manifest.get(*t).and_then(|d| d.as_table()))
        .flat_map(|deps| deps.values())
        .filter_map(|d| d.get("path").and_then(|p| p.as_str()).map(str::to_owned))
        .collect();
    needed.extend(bench_dirs.iter().map(String::as_str));
    needed.extend(members.iter().map(String::as_str));
    needed.extend(path_deps.iter().map(|p| p.trim_start_matches("./")));
    for n in needed {
        assert!(
            sources.iter().any(|s| s.trim_end_matches('/') == n),
            "the build needs {n}, which the Dockerfile does not copy"
        );
    }
}

#[test]
fn the_image_runs_unprivileged_with_its_data_in_a_volume_and_a_readiness_check() {
    let steps = dockerfile();
    let arg = |op: &str| -> Vec<String> {
        steps
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a.clone())
            .collect()
    };
    let user = arg("USER");
    assert_eq!(user.len(), 1);
    assert!(user[0] != "root" && user[0] != "0", "runs as {}", user[0]);
    let health = arg("HEALTHCHECK").join(" ");
    assert!(health.contains("http://127.0.0.1:8787/readyz"), "{health}");
    assert_eq!(arg("EXPOSE"), ["8787"]);

    // The configuration baked in: where CMD reads it, listening where EXPOSE and the health
    // check say, keeping its data in the VOLUME; accepted once the secrets are given.
    let cmd = arg("CMD").join(" ");
    assert!(
        cmd.contains(r#""serve", "--config", "/etc/shoprelay/shoprelay.toml""#),
        "{cmd}"
    );
    let copy = arg("COPY");
    assert!(copy
        .iter()
        .any(|c| c == "deploy/shoprelay.container.toml /etc/shoprelay/shoprelay.toml"));
    let text = read("deploy/shoprelay.container.toml");
    let settings = shoprelay::config::Settings::from_toml(
        &text,
        &[
            ("erpnext_api_key", "k"),
            ("erpnext_api_secret", "s"),
            ("erpnext_webhook_secrets", "w"),
            ("shop_token", "t"),
        ],
    )
    .expect("the image's configuration is accepted");
    assert_eq!(settings.server.listen.to_string(), "0.0.0.0:8787");
    let volume = arg("VOLUME").join(" ");
    let data_dir = settings.server.data_dir.display().to_string();
    assert!(
        volume.contains(&format!("\"{data_dir}\"")),
        "{volume} vs {data_dir}"
    );
}

#[test]
fn the_compose_file_runs_the_image_beside_erpnexts_frontend_with_secrets_in_files() {
    let compose: serde_json::Value =
        yaml_serde::from_str(&read("deploy/compose.shoprelay.yaml")).expect("compose YAML");
    // frappe_docker names ERPNext's nginx service `frontend`; the relay reaches the site by its
    // name, an alias on that service.
    let aliases = &compose["services"]["frontend"]["networks"]["default"]["aliases"];
    assert!(
        aliases[0].as_str().is_some_and(|a| a.contains("SITE_NAME")),
        "{aliases}"
    );

    let relay = &compose["services"]["shoprelay"];
    let volumes: Vec<&str> = relay["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        volumes.iter().any(|v| v.ends_with(":/var/lib/shoprelay")),
        "{volumes:?}"
    );
    assert!(
        volumes
            .iter()
            .any(|v| v.ends_with(":/etc/shoprelay/shoprelay.toml:ro")),
        "{volumes:?}"
    );
    let declared: Vec<&str> = relay["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    let env = relay["environment"].as_object().expect("environment");
    let mut files = 0;
    for (var, value) in env {
        let Some(name) = var
            .strip_prefix("SHOPRELAY_")
            .and_then(|v| v.strip_suffix("_FILE"))
        else {
            continue;
        };
        files += 1;
        // The variable is one the relay reads from a file.
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("s");
        // Long enough for any secret (the admin token needs 16 characters).
        std::fs::write(&f, "a-secret-read-from-a-file").expect("write");
        let key = format!("{}_file", name.to_ascii_lowercase());
        let mut overrides = vec![
            ("erpnext_api_key", "k"),
            ("erpnext_api_secret", "s"),
            ("erpnext_webhook_secrets", "w"),
            ("shop_token", "t"),
        ];
        overrides.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        let path = f.to_str().expect("utf-8").to_owned();
        overrides.push((key.as_str(), path.as_str()));
        shoprelay::config::Settings::from_toml(
            &read("deploy/shoprelay.container.toml"),
            &overrides,
        )
        .unwrap_or_else(|e| panic!("{var}: {e}"));
        // And it names a secret the service mounts.
        let secret = value
            .as_str()
            .and_then(|p| p.strip_prefix("/run/secrets/"))
            .unwrap_or_else(|| panic!("{var} is not under /run/secrets/"));
        assert!(declared.contains(&secret), "{var}: {secret} is not mounted");
        assert!(
            compose["secrets"][secret]["file"].is_string(),
            "{secret} has no file"
        );
    }
    assert_eq!(files, 5);
}
