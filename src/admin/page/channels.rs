//! The channel mapping editor (`GET`/`POST /admin/ui/channels`): one row per channel with the
//! warehouse tree to pick from, each problem written next to its field, a preview of the levels
//! the posted mapping would give before it is saved, and saving it in force.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

use super::{see_other, signed_form, signed_in, Form, Pages, Refusal};
use crate::admin::ops::lookup::{preview, warehouse_tree};
use crate::admin::ops::put_in_force;
use crate::availability::{Channel, Policy};
use crate::channels::WarehouseRow;
use crate::config::ConfigError;
use crate::state::AppState;
use crate::telemetry::error_chain;

const POLICIES: [(&str, &str); 3] = [
    ("actual_minus_reserved", "actual minus reserved (default)"),
    ("actual", "actual"),
    ("projected", "projected"),
];

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::ActualMinusReserved => "actual_minus_reserved",
        Policy::Actual => "actual",
        Policy::Projected => "projected",
    }
}

/// One channel as the form shows it.
#[derive(Debug, Clone, Default, Serialize)]
struct Row {
    index: usize,
    new: bool,
    name: String,
    warehouses: BTreeSet<String>,
    other: String,
    policy: String,
    buffer: String,
    delete: bool,
    errors: BTreeMap<&'static str, String>,
}

fn blank_row(index: usize) -> Row {
    Row {
        index,
        new: true,
        policy: "actual_minus_reserved".into(),
        buffer: "0".into(),
        ..Row::default()
    }
}

/// A warehouse option: the tree, depth first, each name indented by its depth.
#[derive(Debug, Clone, Serialize)]
struct TreeOption {
    name: String,
    indent: String,
    group: bool,
}

fn tree_options(tree: &[WarehouseRow]) -> Vec<TreeOption> {
    let names: BTreeSet<&str> = tree.iter().map(|w| w.name.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&WarehouseRow>> = BTreeMap::new();
    for w in tree {
        let parent = w
            .parent_warehouse
            .as_deref()
            .filter(|p| names.contains(p) && *p != w.name);
        children.entry(parent).or_default().push(w);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(&WarehouseRow, usize)> = children
        .get(&None)
        .map(|l| l.iter().rev().map(|w| (*w, 0)).collect())
        .unwrap_or_default();
    while let Some((w, depth)) = stack.pop() {
        if !seen.insert(w.name.as_str()) {
            continue; // a cycle in a broken tree
        }
        out.push(TreeOption {
            name: w.name.clone(),
            indent: "\u{a0}\u{a0}\u{a0}".repeat(depth),
            group: w.is_group == 1,
        });
        if let Some(kids) = children.get(&Some(w.name.as_str())) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    out
}

fn rows_in_force(channels: &[Channel], tree: &BTreeSet<&str>) -> Vec<Row> {
    let mut rows: Vec<Row> = channels
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let (picked, other): (Vec<&String>, Vec<&String>) =
                c.warehouses.iter().partition(|w| tree.contains(w.as_str()));
            Row {
                index,
                new: false,
                name: c.name.clone(),
                warehouses: picked.into_iter().cloned().collect(),
                other: other
                    .into_iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("\n"),
                policy: policy_name(c.policy).into(),
                buffer: c.buffer.to_string(),
                delete: false,
                errors: BTreeMap::new(),
            }
        })
        .collect();
    rows.push(blank_row(rows.len()));
    rows
}

/// The rows of a posted form.
fn rows_posted(form: &Form) -> Vec<Row> {
    let n = form
        .get("rows")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(200);
    (0..n)
        .map(|i| {
            let f = |k: &str| {
                form.get(&format!("ch{i}.{k}"))
                    .unwrap_or_default()
                    .to_owned()
            };
            Row {
                index: i,
                new: false,
                name: f("name").trim().to_owned(),
                warehouses: form.all(&format!("ch{i}.wh")).map(str::to_owned).collect(),
                other: f("wh_other"),
                policy: f("policy"),
                buffer: f("buffer").trim().to_owned(),
                delete: f("delete") == "on",
                errors: BTreeMap::new(),
            }
        })
        .collect()
}

/// A row nobody filled in (the blank "add a channel" row left empty).
fn untouched(r: &Row) -> bool {
    r.name.is_empty() && r.warehouses.is_empty() && r.other.trim().is_empty()
}

/// Turns the rows into channels, writing each problem next to its field. Returns the channels
/// when there is no problem.
fn channels_of(rows: &mut [Row]) -> Result<Vec<Channel>, Option<String>> {
    let mut channels = Vec::new();
    let mut origin = Vec::new();
    let mut bad = false;
    for r in rows.iter_mut() {
        if r.delete || untouched(r) {
            continue;
        }
        let policy = match r.policy.as_str() {
            "actual_minus_reserved" | "" => Policy::ActualMinusReserved,
            "actual" => Policy::Actual,
            "projected" => Policy::Projected,
            other => {
                r.errors
                    .insert("policy", format!("`{other}` is not a policy"));
                bad = true;
                Policy::ActualMinusReserved
            }
        };
        let buffer = if r.buffer.is_empty() {
            0.0
        } else {
            match r.buffer.parse::<f64>() {
                Ok(b) => b,
                Err(_) => {
                    r.errors
                        .insert("buffer", "must be a number of 0 or more".into());
                    bad = true;
                    0.0
                }
            }
        };
        let mut warehouses: Vec<String> = r.warehouses.iter().cloned().collect();
        for w in r.other.lines().map(str::trim).filter(|w| !w.is_empty()) {
            if !warehouses.iter().any(|x| x == w) {
                warehouses.push(w.to_owned());
            }
        }
        channels.push(Channel {
            name: r.name.clone(),
            warehouses,
            policy,
            buffer,
        });
        origin.push(r.index);
    }
    if let Err(ConfigError::Invalid { key, reason }) = crate::config::validate_channels(&channels) {
        // `channels[i].field`: put the reason next to that field of that row.
        let place = key
            .strip_prefix("channels[")
            .and_then(|k| k.split_once("]."))
            .and_then(|(i, field)| Some((i.parse::<usize>().ok()?, field)));
        match place {
            Some((i, field)) if i < origin.len() => {
                let field: &'static str = match field {
                    "name" => "name",
                    "warehouses" => "warehouses",
                    "policy" => "policy",
                    _ => "buffer",
                };
                if let Some(row) = rows.iter_mut().find(|r| r.index == origin[i]) {
                    row.errors.entry(field).or_insert(reason);
                }
            }
            _ => return Err(Some(format!("{key} {reason}"))),
        }
        return Err(None);
    }
    if bad {
        Err(None)
    } else {
        Ok(channels)
    }
}

async fn channels_context(state: &AppState, csrf: &str, rows: &[Row], extra: Value) -> Value {
    let tree = tree_options(&warehouse_tree(state).await.unwrap_or_default());
    let overridden = state.channels.overridden().await.unwrap_or(false);
    let mut ctx = json!({
        "csrf": csrf,
        "nav": "channels",
        "rows": rows,
        "select_size": tree.len().clamp(1, 10),
        "tree": tree,
        "policies": POLICIES,
        "source": if overridden { "admin" } else { "file" },
    });
    if let (Some(c), Some(e)) = (ctx.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    ctx
}

pub(super) async fn channels_page(
    req: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
) -> Result<HttpResponse, Refusal> {
    let signed = signed_in(&req, &state)?;
    let tree = warehouse_tree(&state).await.unwrap_or_default();
    let names: BTreeSet<&str> = tree.iter().map(|w| w.name.as_str()).collect();
    let rows = rows_in_force(&state.channels.configured(), &names);
    let saved = match query.get("saved").map(String::as_str) {
        Some("now") => Some("Saved. A full reconcile pass is re-pricing every item.".to_string()),
        Some("later") => Some(
            "Saved. ERPNext did not answer, so the mapping is resolved and re-priced once it does."
                .to_string(),
        ),
        _ => None,
    };
    let ctx = channels_context(&state, &signed.csrf, &rows, json!({"saved": saved})).await;
    pages.page(StatusCode::OK, "channels.html", ctx)
}

pub(super) async fn channels_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let (signed, form) = signed_form(&req, &state, &body)?;
    let mut rows = rows_posted(&form);
    let preview_items: Vec<String> = form
        .get("preview")
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .take(20)
        .map(str::to_owned)
        .collect();
    let parsed = channels_of(&mut rows);
    // The blank row stays the "add a channel" row when it was left empty.
    for r in rows.iter_mut() {
        r.new = untouched(r)
            && r.index + 1 == form.get("rows").and_then(|n| n.parse().ok()).unwrap_or(0);
    }
    let mut extra = json!({"preview_items": preview_items.join(" ")});
    match (parsed, form.get("action")) {
        (Ok(channels), Some("save")) => {
            let applied = put_in_force(&state, Some(channels))
                .await
                .map_err(|e| Refusal::Broken(error_chain(&e)))?;
            return Ok(see_other(if applied.is_ok() {
                "/admin/ui/channels?saved=now"
            } else {
                "/admin/ui/channels?saved=later"
            }));
        }
        (Ok(channels), _) => match preview(&state, &channels, &preview_items).await {
            Ok(p) if p.is_empty() => {
                extra["preview_error"] = json!("Name one or more items to see their levels.")
            }
            Ok(p) => extra["preview"] = json!(p),
            Err(e) => extra["preview_error"] = json!(format!("no preview: {}", error_chain(&e))),
        },
        (Err(general), _) => {
            extra["general_error"] = json!(general.unwrap_or_else(|| {
                "Nothing was saved: correct the fields marked below.".into()
            }));
        }
    }
    let status = if extra.get("general_error").is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = channels_context(&state, &signed.csrf, &rows, extra).await;
    pages.page(status, "channels.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn problems_are_written_next_to_their_field() {
        let f = form(&[
            ("rows", "3"),
            ("ch0.name", "web"),
            ("ch0.wh", "Stores - ACME"),
            ("ch0.buffer", "two"),
            ("ch1.name", "web"),
            ("ch1.wh_other", "Transit - ACME"),
            ("ch2.name", ""),
        ]);
        let mut rows = rows_posted(&f);
        assert_eq!(channels_of(&mut rows), Err(None));
        assert_eq!(
            rows[0].errors.get("buffer").map(String::as_str),
            Some("must be a number of 0 or more")
        );
        let mut rows = rows_posted(&form(&[
            ("rows", "2"),
            ("ch0.name", "web"),
            ("ch0.wh", "Stores - ACME"),
            ("ch1.name", "web"),
            ("ch1.wh_other", "Transit - ACME"),
        ]));
        assert_eq!(channels_of(&mut rows), Err(None));
        assert!(
            rows[1].errors["name"].contains("used by two channels"),
            "{:?}",
            rows[1].errors
        );
    }

    #[test]
    fn deleted_and_blank_rows_are_left_out() {
        let mut rows = rows_posted(&form(&[
            ("rows", "3"),
            ("ch0.name", "web"),
            ("ch0.wh", "Stores - ACME"),
            ("ch0.wh", "Finished Goods - ACME"),
            ("ch0.policy", "actual"),
            ("ch0.buffer", "1.5"),
            ("ch1.name", "old"),
            ("ch1.wh", "Stores - ACME"),
            ("ch1.delete", "on"),
            ("ch2.name", ""),
        ]));
        let channels = channels_of(&mut rows).expect("valid");
        assert_eq!(channels.len(), 1);
        assert_eq!(
            channels[0].warehouses,
            vec!["Finished Goods - ACME", "Stores - ACME"]
        );
        assert_eq!(
            (channels[0].policy, channels[0].buffer),
            (Policy::Actual, 1.5)
        );
    }
}
