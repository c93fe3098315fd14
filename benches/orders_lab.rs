//! Orders per second into a real ERPNext 15 site, and where the time goes: every REST call the
//! order worker makes passes through a counting proxy on loopback, so each order's calls are
//! counted and timed by kind. Baseline in the same run: `GET /api/method/ping` through the same
//! proxy (what one round trip to the site costs). Skips without a site:
//!
//! `set -a; source $LAB/lab.env; set +a; cargo bench --bench orders_lab`
//! (`BENCH_ORDERS=N` orders per phase, default 20.)

#[path = "../tests/it/lab/env.rs"]
mod env;
#[path = "../tests/it/lab/orders.rs"]
mod orders;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use orders::*;
use shoprelay::orders::worker::{place, OrderContext};

type Log = Arc<Mutex<Vec<(String, Duration)>>>;

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    log: Log,
}

async fn forward(req: HttpRequest, body: web::Bytes, proxy: web::Data<Proxy>) -> HttpResponse {
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut out = proxy
        .http
        .request(method, format!("{}{}", proxy.upstream, path_q))
        .body(body.to_vec());
    for name in ["authorization", "content-type", "accept"] {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            out = out.header(name, v);
        }
    }
    let started = Instant::now();
    let result = out.send().await;
    let (status, ctype, bytes) = match result {
        Ok(r) => {
            let status = r.status().as_u16();
            let ctype = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned();
            (status, ctype, r.bytes().await.unwrap_or_default().to_vec())
        }
        Err(e) => (502, "text/plain".to_owned(), e.to_string().into_bytes()),
    };
    // One kind per doctype or method: "PUT /api/resource/Sales Order/{name}".
    let path = req.path().replace("%20", " ");
    let kind = match path.splitn(5, '/').collect::<Vec<_>>().as_slice() {
        [_, _, "resource", doctype, _] => {
            format!("{} /api/resource/{doctype}/{{name}}", req.method())
        }
        _ => format!("{} {path}", req.method()),
    };
    proxy
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((kind, started.elapsed()));
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
    )
    .content_type(ctype)
    .body(bytes)
}

struct Phase {
    name: String,
    orders: usize,
    elapsed: Duration,
    calls: Vec<(String, Duration)>,
}

impl Phase {
    fn print(&self) {
        let per = self.calls.len() as f64 / self.orders.max(1) as f64;
        println!(
            "| {} | {} | {:.1} | {:.2} | {:.0} ms | {per:.2} |",
            self.name,
            self.orders,
            self.elapsed.as_secs_f64(),
            self.orders as f64 / self.elapsed.as_secs_f64(),
            self.elapsed.as_secs_f64() * 1000.0 / self.orders.max(1) as f64,
        );
    }
}

fn take(log: &Log) -> Vec<(String, Duration)> {
    std::mem::take(&mut *log.lock().unwrap_or_else(|p| p.into_inner()))
}

async fn run_phase(
    name: &str,
    ctx: &OrderContext,
    log: &Log,
    orders: Vec<Vec<shoprelay::orders::model::ShopOrder>>,
    created: &Mutex<Vec<String>>,
) -> Phase {
    take(log);
    let n: usize = orders.iter().map(Vec::len).sum();
    let started = Instant::now();
    let workers = orders.into_iter().map(|batch| async move {
        for o in batch {
            match place(ctx, &o, Some(WAREHOUSE)).await {
                Ok(p) => created
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(p.sales_order),
                Err(e) => eprintln!("order {} failed: {e}", o.order_id),
            }
        }
    });
    futures_util::future::join_all(workers).await;
    Phase {
        name: name.to_owned(),
        orders: n,
        elapsed: started.elapsed(),
        calls: take(log),
    }
}

#[tokio::main]
async fn main() {
    let Some((lab, n)) = bench_setup("orders_lab", 20) else {
        return;
    };
    let log: Log = Arc::default();
    let proxy = web::Data::new(Proxy {
        upstream: lab.url.clone(),
        http: reqwest::Client::new(),
        log: log.clone(),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (port, handle) = shoprelay_testkit::spawn_server(listener, 4, move |cfg| {
        cfg.app_data(proxy.clone())
            .default_service(web::to(forward));
    })
    .expect("proxy");
    let erp = client(&format!("http://127.0.0.1:{port}"), &lab.key, &lab.secret);
    ensure_fixtures(&erp).await;
    let ctx = context(erp.clone());
    let run = run_id();
    let created = Mutex::new(Vec::new());

    // Baseline: one round trip to the site.
    take(&log);
    let started = Instant::now();
    for _ in 0..n {
        let _ = erp.method("ping", &[]).await;
    }
    let ping = started.elapsed();
    take(&log);

    let email = |c: usize| format!("sro-bench-{run}-{c}@example.com");
    let new: Vec<_> = (0..n)
        .map(|i| {
            order(
                &format!("SRO-BENCH-{run}-N{i}"),
                &email(i),
                "SRO-Bench",
                &format!("Kunde {run} {i}"),
            )
        })
        .collect();
    let returning = |tag: &str, worker: usize, workers: usize| -> Vec<_> {
        (0..n / workers)
            .map(|i| {
                let c = (worker + i * workers) % n;
                order(
                    &format!("SRO-BENCH-{run}-{tag}{worker}-{i}"),
                    &email(c),
                    "SRO-Bench",
                    &format!("Kunde {run} {c}"),
                )
            })
            .collect()
    };
    let phases = vec![
        run_phase(
            "new customers, 1 at a time",
            &ctx,
            &log,
            vec![new],
            &created,
        )
        .await,
        run_phase(
            "returning customers, 1 at a time",
            &ctx,
            &log,
            vec![returning("R", 0, 1)],
            &created,
        )
        .await,
        run_phase(
            "returning customers, 4 at a time (different customers)",
            &ctx,
            &log,
            (0..4).map(|w| returning("C", w, 4)).collect(),
            &created,
        )
        .await,
    ];

    // The submit choice: one POST with docstatus 1 (and the status a submitted order has)
    // against ERPNext's two steps, a draft POST then PUT docstatus 1, for the same body.
    let customer = created
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .first()
        .cloned();
    let customer = match customer {
        Some(so) => erp
            .get_doc::<serde_json::Value>("Sales Order", &so)
            .await
            .ok()
            .flatten()
            .and_then(|d| d["customer"].as_str().map(str::to_owned)),
        None => None,
    };
    let mut submit_rows = Vec::new();
    if let Some(customer) = customer {
        let body = |i: usize, tag: &str| {
            serde_json::json!({
                "customer": customer, "po_no": format!("SRO-BENCH-{run}-{tag}{i}"),
                "transaction_date": "2026-11-29", "delivery_date": "2026-12-02",
                "ignore_pricing_rule": 1, "set_warehouse": WAREHOUSE,
                "items": [{"item_code": ITEM_A, "qty": 2, "price_list_rate": 12, "rate": 11.5},
                          {"item_code": ITEM_B, "qty": 1, "price_list_rate": 5, "rate": 5}],
            })
        };
        for (label, two_step) in [
            ("one POST with docstatus 1", false),
            ("POST draft, then PUT docstatus 1", true),
        ] {
            take(&log);
            let started = Instant::now();
            for i in 0..n {
                let mut b = body(i, if two_step { "T" } else { "O" });
                if !two_step {
                    b["docstatus"] = 1.into();
                    b["status"] = "To Deliver and Bill".into();
                }
                match erp.save_doc("Sales Order", None, &b).await {
                    Ok(doc) => {
                        let name = doc["name"].as_str().unwrap_or_default().to_owned();
                        if two_step {
                            if let Err(e) = erp
                                .save_doc(
                                    "Sales Order",
                                    Some(&name),
                                    &serde_json::json!({"docstatus": 1}),
                                )
                                .await
                            {
                                eprintln!("submit {name}: {e}");
                            }
                        }
                        created.lock().unwrap_or_else(|p| p.into_inner()).push(name);
                    }
                    Err(e) => eprintln!("create: {e}"),
                }
            }
            let elapsed = started.elapsed();
            let calls = take(&log).len();
            submit_rows.push(format!(
                "| {label} | {n} | {:.1} | {:.2} | {:.0} ms | {:.2} |",
                elapsed.as_secs_f64(),
                n as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64() * 1000.0 / n as f64,
                calls as f64 / n as f64
            ));
        }
    }

    println!(
        "\nERPNext at {}, {n} orders per phase, run {run}\n",
        lab.url
    );
    println!("| phase | orders | seconds | orders/s | ms per order | REST calls per order |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| baseline: GET /api/method/ping | {n} | {:.1} | {:.1} (calls/s) | {:.0} ms per call | 1 |",
        ping.as_secs_f64(),
        n as f64 / ping.as_secs_f64(),
        ping.as_secs_f64() * 1000.0 / n as f64
    );
    for p in &phases {
        p.print();
    }
    if !submit_rows.is_empty() {
        println!(
            "\nSubmitting a Sales Order for a known customer (the Sales Order requests only):\n"
        );
        println!("| how | orders | seconds | orders/s | ms per order | REST calls per order |");
        println!("|---|---|---|---|---|---|");
        for r in &submit_rows {
            println!("{r}");
        }
    }
    for p in &phases {
        let mut by_kind: BTreeMap<&str, (usize, Duration)> = BTreeMap::new();
        for (k, d) in &p.calls {
            let e = by_kind.entry(k.as_str()).or_default();
            e.0 += 1;
            e.1 += *d;
        }
        println!("\n{}: where the time goes", p.name);
        println!("| call | per order | mean ms |");
        println!("|---|---|---|");
        for (k, (count, total)) in by_kind {
            println!(
                "| {k} | {:.2} | {:.0} |",
                count as f64 / p.orders.max(1) as f64,
                total.as_secs_f64() * 1000.0 / count as f64
            );
        }
    }
    let names = std::mem::take(&mut *created.lock().unwrap_or_else(|p| p.into_inner()));
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    println!(
        "\ncancelling the {} Sales Orders made ({} distinct)",
        names.len(),
        unique.len()
    );
    for so in unique {
        cancel(&erp, &so).await;
    }
    handle.stop(false).await;
}
