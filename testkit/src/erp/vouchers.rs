//! Stock vouchers on the emulated site: Stock Entry, Purchase Receipt, Purchase and Sales
//! Invoice, Stock Reconciliation and Subcontracting Receipt, submitted and cancelled the way
//! ERPNext does it: Bins written with `set_value` (no Bin webhook unless one is created), one
//! Stock Ledger Entry per row, then the voucher's own `on_submit` / `on_cancel` with every row.

use serde_json::{json, Map, Value};

use super::{add, insert_sle, ErpEmulator, State};
use crate::frappe::{as_dict, Delivery, RenderError};

/// One row of a stock voucher: `qty` of `item` leaves `from` and/or enters `to`. For a Stock
/// Reconciliation `qty` is the counted quantity in `to`.
#[derive(Debug, Clone, Copy)]
pub struct StockLine<'a> {
    pub item: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub qty: f64,
}

impl<'a> StockLine<'a> {
    /// `qty` into `to`.
    pub fn into(item: &'a str, to: &'a str, qty: f64) -> Self {
        Self {
            item,
            from: None,
            to: Some(to),
            qty,
        }
    }

    /// `qty` out of `from`.
    pub fn out_of(item: &'a str, from: &'a str, qty: f64) -> Self {
        Self {
            item,
            from: Some(from),
            to: None,
            qty,
        }
    }
}

/// The naming series ERPNext gives each voucher doctype.
fn series(doctype: &str) -> &'static str {
    match doctype {
        "Stock Entry" => "MAT-STE-2026-",
        "Purchase Receipt" => "MAT-PRE-2026-",
        "Purchase Invoice" => "ACC-PINV-2026-",
        "Sales Invoice" => "ACC-SINV-2026-",
        "Stock Reconciliation" => "MAT-RECO-2026-",
        "Subcontracting Receipt" => "MAT-SCR-2026-",
        _ => "VOUCHER-2026-",
    }
}

/// The child rows a voucher of `doctype` holds for `lines`: (table, row) pairs.
fn rows(doctype: &str, lines: &[StockLine<'_>], current: &[f64]) -> Vec<(&'static str, Value)> {
    lines
        .iter()
        .zip(current)
        .map(|(l, cur)| match doctype {
            "Stock Entry" => (
                "items",
                json!({"item_code": l.item, "s_warehouse": l.from, "t_warehouse": l.to, "qty": l.qty, "transfer_qty": l.qty}),
            ),
            "Sales Invoice" => (
                "items",
                json!({"item_code": l.item, "warehouse": l.from, "qty": l.qty, "stock_qty": l.qty}),
            ),
            "Stock Reconciliation" => (
                "items",
                json!({"item_code": l.item, "warehouse": l.to, "qty": l.qty, "current_qty": cur}),
            ),
            "Subcontracting Receipt" if l.to.is_none() => (
                "supplied_items",
                json!({"rm_item_code": l.item, "consumed_qty": l.qty}),
            ),
            _ => (
                "items",
                json!({"item_code": l.item, "warehouse": l.to, "qty": l.qty, "stock_qty": l.qty}),
            ),
        })
        .collect()
}

/// Moves the stock of one line (`sign` -1 reverses it) and inserts its ledger row.
fn post_line(
    st: &mut State,
    doctype: &str,
    voucher: &str,
    line: &StockLine<'_>,
    current: f64,
    sign: f64,
) -> Result<Vec<Delivery>, RenderError> {
    let mut out = Vec::new();
    let cancelled = i64::from(sign < 0.0);
    if doctype == "Stock Reconciliation" {
        let Some(wh) = line.to else {
            return Ok(out);
        };
        let (target, delta) = if sign > 0.0 {
            (line.qty, line.qty - current)
        } else {
            (current, current - line.qty)
        };
        out.extend(st.update_bin(line.item, wh, |bin| {
            bin.insert("actual_qty".into(), json!(target));
        })?);
        out.extend(insert_sle(
            st, line.item, wh, delta, doctype, voucher, cancelled,
        )?);
        return Ok(out);
    }
    for (wh, dir) in [(line.from, -1.0), (line.to, 1.0)] {
        let Some(wh) = wh else { continue };
        let delta = dir * sign * line.qty;
        out.extend(st.update_bin(line.item, wh, |bin| add(bin, "actual_qty", delta))?);
        out.extend(insert_sle(
            st, line.item, wh, delta, doctype, voucher, cancelled,
        )?);
    }
    Ok(out)
}

/// A saved voucher row: item, from, to, qty, and the quantity counted before (reconciliation).
type SavedLine = (String, Option<String>, Option<String>, f64, f64);

fn lines_of(doc: &Value) -> Vec<SavedLine> {
    let text = |r: &Value, k: &str| r[k].as_str().map(str::to_owned);
    let mut out = Vec::new();
    let supplier = text(doc, "supplier_warehouse");
    for r in doc["items"].as_array().into_iter().flatten() {
        let (from, to) = match doc["doctype"].as_str() {
            Some("Stock Entry") => (text(r, "s_warehouse"), text(r, "t_warehouse")),
            Some("Sales Invoice") => (text(r, "warehouse"), None),
            _ => (None, text(r, "warehouse")),
        };
        out.push((
            text(r, "item_code").unwrap_or_default(),
            from,
            to,
            r["qty"].as_f64().unwrap_or(0.0),
            r["current_qty"].as_f64().unwrap_or(0.0),
        ));
    }
    for r in doc["supplied_items"].as_array().into_iter().flatten() {
        out.push((
            text(r, "rm_item_code").unwrap_or_default(),
            supplier.clone(),
            None,
            r["consumed_qty"].as_f64().unwrap_or(0.0),
            0.0,
        ));
    }
    out
}

impl ErpEmulator {
    /// Submits a stock voucher of `doctype` with `lines`. For a Sales or Purchase Invoice,
    /// `update_stock` says whether it moves stock (without it, nothing moves and the shipped
    /// webhooks' condition keeps them quiet). Returns the voucher's name and the deliveries.
    pub fn submit_voucher(
        &self,
        doctype: &str,
        lines: &[StockLine<'_>],
        update_stock: bool,
    ) -> Result<(String, Vec<Delivery>), RenderError> {
        let mut st = self.lock();
        let name = st.next_name(series(doctype));
        let moves = update_stock || !doctype.ends_with("Invoice");
        let current: Vec<f64> = lines
            .iter()
            .map(|l| {
                l.to.and_then(|wh| {
                    st.docs
                        .get(&("Bin".to_owned(), State::bin_name(l.item, wh)))
                })
                .and_then(|b| b["actual_qty"].as_f64())
                .unwrap_or(0.0)
            })
            .collect();
        let mut stock = Vec::new();
        if moves {
            for (line, cur) in lines.iter().zip(&current) {
                stock.extend(post_line(&mut st, doctype, &name, line, *cur, 1.0)?);
            }
        }
        let modified = st.tick();
        let mut values = Map::new();
        for (table, row) in rows(doctype, lines, &current) {
            if let Some(list) = values
                .entry(table)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
            {
                list.push(row);
            }
        }
        values.insert("company".into(), json!("ACME"));
        values.insert("update_stock".into(), json!(i64::from(update_stock)));
        values.insert("posting_date".into(), json!("2026-11-26"));
        if doctype == "Subcontracting Receipt" {
            let supplier = lines.iter().find(|l| l.to.is_none()).and_then(|l| l.from);
            values.insert("supplier_warehouse".into(), json!(supplier));
        }
        if doctype == "Stock Entry" {
            values.insert("purpose".into(), json!("Material Receipt"));
        }
        let doc = as_dict(doctype, &name, &modified, 1, &values);
        let mut out = st.fire(doctype, "on_submit", &doc)?;
        st.docs.insert((doctype.to_owned(), name.clone()), doc);
        out.extend(stock);
        Ok((name, out))
    }

    /// Cancels a stock voucher: its rows' stock goes back (reversing ledger rows) and its
    /// `on_cancel` fires.
    pub fn cancel_voucher(&self, doctype: &str, name: &str) -> Result<Vec<Delivery>, RenderError> {
        let mut st = self.lock();
        let key = (doctype.to_owned(), name.to_owned());
        let Some(mut doc) = st.docs.get(&key).cloned() else {
            return Ok(Vec::new());
        };
        let moves = doc["update_stock"].as_i64() == Some(1) || !doctype.ends_with("Invoice");
        let mut stock = Vec::new();
        if moves {
            for (item, from, to, qty, current) in lines_of(&doc) {
                let line = StockLine {
                    item: &item,
                    from: from.as_deref(),
                    to: to.as_deref(),
                    qty,
                };
                stock.extend(post_line(&mut st, doctype, name, &line, current, -1.0)?);
            }
        }
        let modified = st.tick();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("docstatus".into(), json!(2));
            obj.insert("modified".into(), json!(modified));
        }
        let mut out = st.fire(doctype, "on_cancel", &doc)?;
        st.docs.insert(key, doc);
        out.extend(stock);
        Ok(out)
    }

    /// A Work Order (or a subcontracting order) reserves raw material: ERPNext sets the Bin's
    /// reservation with `db_set`, so Bin `on_change` fires.
    pub fn reserve_for_production(
        &self,
        item: &str,
        wh: &str,
        qty: f64,
    ) -> Result<Vec<Delivery>, RenderError> {
        let mut st = self.lock();
        let mut out =
            st.update_bin(item, wh, |bin| add(bin, "reserved_qty_for_production", qty))?;
        let key = ("Bin".to_owned(), State::bin_name(item, wh));
        if let Some(bin) = st.docs.get(&key).cloned() {
            out.extend(st.fire("Bin", "on_change", &bin)?);
        }
        Ok(out)
    }
}
