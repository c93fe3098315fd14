//! The SKU lookup page (`GET /admin/ui/sku?sku=...`): one SKU across ERPNext's warehouses, the
//! channels' levels and what the shop was sent.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{signed_in, Pages, Refusal};
use crate::admin::ops::lookup::{sku_report, ShopSide};
use crate::state::AppState;
use crate::telemetry::error_chain;

fn shop_text(side: &ShopSide) -> String {
    match side {
        ShopSide::NeverSent => "nothing yet".into(),
        ShopSide::Sent { value } => format!("{value} (accepted)"),
        ShopSide::Waiting { value } => format!("{value} waiting to be sent"),
        ShopSide::DeadLetter { value, dead_letter } => {
            format!("{value} refused by the shop (dead letter {dead_letter})")
        }
    }
}

pub(super) async fn sku_page(
    req: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
) -> Result<HttpResponse, Refusal> {
    let signed = signed_in(&req, &state)?;
    let sku = query
        .get("sku")
        .map(|s| s.trim())
        .unwrap_or_default()
        .to_owned();
    let (report, error) = if sku.is_empty() {
        (None, None)
    } else {
        match sku_report(&state, &sku).await {
            Ok(r) => {
                let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
                if let Some(list) = v["channels"].as_array_mut() {
                    for (c, r) in list.iter_mut().zip(&r.channels) {
                        c["shop_text"] = json!(shop_text(&r.shop));
                    }
                }
                (Some(v), None)
            }
            Err(e) => (None, Some(error_chain(&e))),
        }
    };
    pages.page(
        StatusCode::OK,
        "sku.html",
        json!({"csrf": signed.csrf, "nav": "sku", "sku": sku, "r": report, "error": error}),
    )
}
