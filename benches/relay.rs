//! Benchmarks for BENCHMARKS.md: `cargo bench --bench relay`.
//!
//! 1. Ingest: signed ERPNext webhooks answered with durable acks (sled + group commit), against a
//!    bare actix-web handler that reads the body and answers 200, same load, same run.
//! 2. Webhook to shop: events at a fixed rate through the whole relay (read-back from the ERPNext
//!    emulator, push to the recording shop); delay from sending the webhook to the shop receiving
//!    the level, against the loopback round trip of one shop POST.
//!
//! The load generator is a minimal keep-alive HTTP/1.1 client in the same process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use shoprelay::config::Settings;
use shoprelay::signing::frappe_signature;
use shoprelay::startup::{Application, Workers};
use shoprelay_testkit::{relay_toml, ErpEmulator, ShopMock, WEBHOOK_SECRET};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn connections() -> usize {
    std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

fn request(i: usize) -> Vec<u8> {
    let body = format!(
        "{{\"doctype\": \"Stock Ledger Entry\", \"event\": \"after_insert\", \"name\": \"MAT-SLE-{i:08}\", \"item_code\": \"SKU-{:04}\", \"warehouse\": \"Stores - ACME\", \"actual_qty\": 1.0, \"is_cancelled\": 0, \"modified\": \"2026-11-26 10:00:00.{:06}\"}}",
        i % 2000,
        i % 1_000_000
    );
    let sig = frappe_signature(WEBHOOK_SECRET, body.as_bytes());
    format!(
        "POST /webhooks/erpnext HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: python-requests/2.31.0\r\nX-Frappe-Webhook-Signature: {sig}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `reqs` over one keep-alive connection; returns per-request latencies.
async fn connection(addr: SocketAddr, reqs: Vec<Vec<u8>>) -> BenchResult<Vec<Duration>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut lat = Vec::with_capacity(reqs.len());
    let mut line = String::new();
    for req in reqs {
        let t = Instant::now();
        w.write_all(&req).await?;
        let mut status = 0u16;
        let mut len = 0usize;
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Err("connection closed".into());
            }
            if status == 0 {
                status = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            } else if line == "\r\n" {
                break;
            } else if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).await?;
        if status != 200 {
            return Err(format!("status {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        lat.push(t.elapsed());
    }
    Ok(lat)
}

struct Load {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(addr: SocketAddr, first: usize, total: usize) -> BenchResult<Load> {
    let mut per: Vec<Vec<Vec<u8>>> = vec![Vec::new(); connections()];
    for i in 0..total {
        per[i % connections()].push(request(first + i));
    }
    let start = Instant::now();
    let tasks: Vec<_> = per
        .into_iter()
        .map(|reqs| tokio::spawn(connection(addr, reqs)))
        .collect();
    let mut lat = Vec::with_capacity(total);
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = start.elapsed();
    lat.sort();
    Ok(Load {
        rps: total as f64 / elapsed.as_secs_f64(),
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
    })
}

async fn bare_server() -> BenchResult<(SocketAddr, actix_web::dev::ServerHandle)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // Two workers, as the relay has.
    let (_, handle) = shoprelay_testkit::spawn_server(listener, 2, |cfg| {
        cfg.route(
            "/webhooks/erpnext",
            web::post().to(|_body: web::Bytes| async {
                HttpResponse::Ok().json(serde_json::json!({"status": "accepted"}))
            }),
        );
    })?;
    Ok((addr, handle))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn ingest(rounds: usize, total: usize) -> BenchResult<()> {
    let dir = tempfile_dir("ingest")?;
    let workers = std::env::var("BENCH_WORKERS").unwrap_or_else(|_| "2".into());
    let toml = relay_toml("http://127.0.0.1:9", "http://127.0.0.1:9/erp", &dir)
        .replace("[server]", &format!("[server]\nworkers = {workers}"));
    let app = Application::build(Settings::from_toml(&toml, &[])?, Workers::Manual).await?;
    let relay_addr: SocketAddr = format!("127.0.0.1:{}", app.port()).parse()?;
    let relay_handle = app.handle();
    let relay = app.relay();
    tokio::spawn(app.run_until_stopped());
    let (bare_addr, bare_handle) = bare_server().await?;
    // Warm up both.
    load(bare_addr, 0, 2000).await?;
    load(relay_addr, 10_000_000, 2000).await?;
    println!("\n## Ingest: {total} signed webhooks, {} keep-alive connections, {rounds} alternating rounds\n", connections());
    println!("| round | server | requests/s | p50 | p99 |");
    println!("|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let b = load(bare_addr, 0, total).await?;
        let r = load(relay_addr, (round + 1) * 1_000_000, total).await?;
        println!(
            "| {} | bare actix handler (baseline) | {:.0} | {} | {} |",
            round + 1,
            b.rps,
            ms(b.p50),
            ms(b.p99)
        );
        println!(
            "| {} | shoprelay (verify + parse + sled + flushed ack) | {:.0} | {} | {} |",
            round + 1,
            r.rps,
            ms(r.p50),
            ms(r.p99)
        );
        ratios.push(r.rps / b.rps);
    }
    let stored = relay.store.depths().inbox;
    println!(
        "\nshoprelay / bare: {}; events stored: {stored}",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    relay_handle.stop(true).await;
    bare_handle.stop(true).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn end_to_end(rate: u64, seconds: u64) -> BenchResult<()> {
    let erp = ErpEmulator::start(
        WEBHOOK_SECRET,
        shoprelay::erpnext::webhooks::for_site(Some(ErpEmulator::SKU_FIELD))?,
    )
    .await?;
    let shop = ShopMock::start().await?;
    let dir = tempfile_dir("e2e")?;
    // Reconcile off: only the webhooks may bring the changes (the emulator holds them already).
    let toml = relay_toml(&erp.url(), &shop.base_url(), &dir).replace(
        "page_size = 20",
        "page_size = 500\nreconcile_interval_secs = 0\nfull_reconcile_interval_secs = 0",
    );
    let app = Application::build(Settings::from_toml(&toml, &[])?, Workers::Background).await?;
    let port = app.port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    erp.set_relay(&format!("http://127.0.0.1:{port}"));
    let n = (rate * seconds) as usize;
    // Bins exist already, so each receipt fires exactly one webhook (the Stock Entry's).
    for i in 0..n {
        erp.set_bin_silently(&format!("E{i:05}"), "Stores - ACME", 0.0, 0.0)?;
    }
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        deliveries.push(erp.stock_move(&format!("E{i:05}"), "Stores - ACME", 5.0)?);
    }
    // Baseline: one shop POST's loopback round trip, measured now.
    let client = reqwest::Client::new();
    let mut rtt = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        client
            .post(format!("{}/inventory/levels", shop.base_url()))
            .bearer_auth(shoprelay_testkit::shop::SHOP_TOKEN)
            .json(&serde_json::json!({"channel": "baseline", "levels": [{"sku": "X", "available": 1}]}))
            .send()
            .await?;
        rtt.push(t.elapsed());
    }
    rtt.sort();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut sent_at = Vec::with_capacity(n);
    for (i, ds) in deliveries.iter().enumerate() {
        tokio::time::sleep_until(tokio::time::Instant::from_std(start + interval * i as u32)).await;
        sent_at.push(Instant::now());
        for d in ds {
            erp.deliver(d).await?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..n).any(|i| shop.level("web", &format!("E{i:05}")).is_none())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut first_seen: std::collections::HashMap<String, Instant> =
        std::collections::HashMap::new();
    for r in shop.requests() {
        let v = r.json();
        if r.status != 200 || v["channel"] != "web" {
            continue;
        }
        for l in v["levels"].as_array().cloned().unwrap_or_default() {
            if let Some(sku) = l["sku"].as_str() {
                first_seen.entry(sku.to_owned()).or_insert(r.at);
            }
        }
    }
    let mut lat: Vec<Duration> = (0..n)
        .filter_map(|i| {
            first_seen
                .get(&format!("E{i:05}"))
                .map(|t| t.saturating_duration_since(sent_at[i]))
        })
        .collect();
    lat.sort();
    println!(
        "\n## Webhook to shop: {n} stock events at {rate}/s (one new SKU each), web channel\n"
    );
    println!("| measure | p50 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| baseline: one shop POST round trip on loopback | {} | {} | {} |",
        ms(rtt[rtt.len() / 2]),
        ms(rtt[rtt.len() * 99 / 100]),
        ms(rtt[rtt.len() - 1])
    );
    if lat.len() == n {
        println!(
            "| shoprelay: webhook sent -> level received by the shop | {} | {} | {} |",
            ms(lat[n / 2]),
            ms(lat[n * 99 / 100]),
            ms(lat[n - 1])
        );
    } else {
        println!(
            "| shoprelay: only {} of {n} levels arrived | | | |",
            lat.len()
        );
    }
    let requests = shop
        .requests()
        .iter()
        .filter(|r| r.json()["channel"] == "web")
        .count();
    println!("\nshop requests for web: {requests} (levels per request: {:.1}); ERPNext REST requests: {}", n as f64 / requests.max(1) as f64, erp.rest_requests());
    handle.stop(true).await;
    erp.stop().await;
    shop.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Serves `GET /api/resource/Bin` pages from rows pre-sorted by (modified, name), with the
/// `modified >=` filter by binary search, and empty lists for other doctypes.
async fn bin_pager(
    rows: Vec<serde_json::Value>,
) -> BenchResult<(String, actix_web::dev::ServerHandle)> {
    use std::collections::BTreeMap;
    let rows = web::Data::new(rows);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let (_, handle) = shoprelay_testkit::spawn_server(listener, 1, move |cfg| {
        cfg.app_data(rows.clone())
            .route(
                "/api/resource/{doctype}",
                web::get().to(
                    |path: web::Path<String>,
                     q: web::Query<BTreeMap<String, String>>,
                     rows: web::Data<Vec<serde_json::Value>>| async move {
                        if path.as_str() != "Bin" {
                            return HttpResponse::Ok().json(serde_json::json!({"data": []}));
                        }
                        let filters: serde_json::Value = q
                            .get("filters")
                            .and_then(|f| serde_json::from_str(f).ok())
                            .unwrap_or_default();
                        let from = filters
                            .as_array()
                            .and_then(|fs| fs.iter().find(|f| f[0] == "modified"))
                            .and_then(|f| f[2].as_str())
                            .unwrap_or("");
                        let first =
                            rows.partition_point(|r| r["modified"].as_str().unwrap_or("") < from);
                        let start: usize = q
                            .get("limit_start")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let len: usize = q
                            .get("limit_page_length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(20);
                        let page: Vec<&serde_json::Value> =
                            rows.iter().skip(first + start).take(len).collect();
                        HttpResponse::Ok().json(serde_json::json!({ "data": page }))
                    },
                ),
            )
            .route(
                "/api/method/frappe.client.get_count",
                web::get().to(|rows: web::Data<Vec<serde_json::Value>>| async move {
                    HttpResponse::Ok().json(serde_json::json!({"message": rows.len()}))
                }),
            );
    })?;
    Ok((url, handle))
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn reconcile_full_pass(n: usize) -> BenchResult<()> {
    let mut rows = Vec::with_capacity(n);
    let warehouses = ["Stores - ACME", "Finished Goods - ACME"];
    for i in 0..n {
        rows.push(serde_json::json!({
            "item_code": format!("ITEM-{:06}", i / 2), "warehouse": warehouses[i % 2],
            "actual_qty": (i % 50) as f64, "projected_qty": 0.0, "reserved_qty": 0.0,
            "reserved_qty_for_production": 0.0, "reserved_qty_for_sub_contract": 0.0, "reserved_qty_for_production_plan": 0.0,
            // 1,000 Bins share each timestamp: runs of equal values span pages.
            "modified": format!("2026-11-26 {:02}:{:02}:{:02}", 8 + i / 1000 / 3600, (i / 1000 / 60) % 60, (i / 1000) % 60),
            "name": format!("BIN-{i:06}"),
        }));
    }
    rows.sort_by(|a, b| {
        (a["modified"].as_str(), a["name"].as_str())
            .cmp(&(b["modified"].as_str(), b["name"].as_str()))
    });
    let (url, handle) = bin_pager(rows).await?;
    let dir = tempfile_dir("reconcile")?;
    let toml = relay_toml(&url, "http://127.0.0.1:9/erp", &dir)
        .replace("page_size = 20", "page_size = 500");
    let settings = Settings::from_toml(&toml, &[])?;

    // Baseline: the same pages fetched and decoded, nothing stored.
    let erp = shoprelay::erpnext::ErpClient::new(&settings.erpnext)?;
    let filters = serde_json::json!([[
        "warehouse",
        "in",
        ["Stores - ACME", "Finished Goods - ACME"]
    ]]);
    let t = Instant::now();
    let mut read = 0;
    loop {
        let page: Vec<shoprelay::model::BinRow> = erp
            .list_page(
                "Bin",
                &shoprelay::model::BinRow::FIELDS,
                &filters,
                "modified asc, name asc",
                read,
                500,
            )
            .await?;
        read += page.len();
        if page.len() < 500 {
            break;
        }
    }
    let baseline = t.elapsed();

    let relay = shoprelay::startup::Relay::open(&settings).await?;
    let rss_before = status_kb("VmRSS:");
    let hwm_before = status_kb("VmHWM:");
    let t = Instant::now();
    let report = relay.reconcile_pass(true, |_| {}).await?;
    let elapsed = t.elapsed();
    let hwm_after = status_kb("VmHWM:");
    println!("\n## Reconcile: one full pass over {n} Bins, pages of 500\n");
    println!("| measure | time | Bins/s |");
    println!("|---|---|---|");
    println!(
        "| baseline: fetch and decode every page, store nothing ({read} rows) | {:.2} s | {:.0} |",
        baseline.as_secs_f64(),
        read as f64 / baseline.as_secs_f64()
    );
    println!("| shoprelay pass: pages by (modified, name) cursor, items marked dirty in sled | {:.2} s | {:.0} |", elapsed.as_secs_f64(), report.rows as f64 / elapsed.as_secs_f64());
    println!(
        "\nrows read: {}, pages: {}, items marked: {}, dirty items in store: {}; process RSS before the pass {} MiB, peak during it {} MiB (peak before it {} MiB)",
        report.rows,
        report.pages,
        report.items,
        relay.store.depths().dirty,
        rss_before / 1024,
        hwm_after / 1024,
        hwm_before / 1024
    );
    handle.stop(true).await;
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir(name: &str) -> BenchResult<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("shoprelay-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(dir)
}

fn main() -> BenchResult<()> {
    // `cargo bench` passes --bench; `--quick` shortens the runs.
    let quick = std::env::args().any(|a| a == "--quick");
    // `--ingest`: only the ingest part (before/after comparisons of the hot path).
    let only_ingest = std::env::args().any(|a| a == "--ingest");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!(
            "machine: {} cores; {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model()
        );
        if !only_ingest {
            // First, while the process is small, so that its peak memory is the pass's own.
            reconcile_full_pass(if quick { 20_000 } else { 100_000 }).await?;
        }
        ingest(
            if quick { 1 } else { 3 },
            if quick { 10_000 } else { 40_000 },
        )
        .await?;
        if only_ingest {
            return Ok(());
        }
        end_to_end(500, if quick { 2 } else { 10 }).await
    })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
