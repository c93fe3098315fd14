//! The emulator's order side: Customer (with its primary Contact and Address), Address, Country,
//! Customer Group, Territory, Account, Item, Item Price and Sales Order create / submit / cancel,
//! answering as ERPNext 15 answers over REST:
//!
//! - `POST Customer` creates the Contact (Contact Email and Dynamic Link rows) and the Address
//!   in one go; a sequential duplicate name becomes "Name - 1"; a lost race answers 409.
//! - List filters compare strings like MariaDB's `utf8mb4_unicode_ci`: case-insensitive, trailing
//!   spaces ignored (PAD SPACE). Child-table filters (`[child doctype, field, op, value]`) join
//!   the child rows, `table.field` in `fields` gives one row per child row, a link field's
//!   `link.field` reads the linked document, `x as y` renames. A filter on a field the doctype
//!   does not have answers 417 DataError.
//! - Unknown fields in a body are dropped silently. A Sales Order line without `rate` or with
//!   `rate: 0` gets the list price (less `discount_percentage`); an active pricing rule replaces
//!   the rate unless `ignore_pricing_rule`; a missing Item Price is created from the rate sent.
//! - Sales Order errors: 404 for an unknown item, 417 for a missing or early delivery date, qty
//!   0, a taxes row without description or on a foreign account, an unknown customer, and the
//!   same `po_no` for the same customer (not cancelled).
//! - A Sales Order POSTed with `docstatus: 1` is submitted with status "Draft" unless the body
//!   says otherwise; `PUT {"docstatus": 1}` submits a draft with "To Deliver and Bill". Submit
//!   reserves stock (Bin `reserved_qty`, no Bin webhook) and fires the Sales Order webhooks,
//!   which wait in a queue until a test or the demo delivers them.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{add, frappe_error, guarded, matches, ErpEmulator, Shared, State};
use crate::frappe::{as_dict, fields as doctype_fields, Delivery};

/// The order side's state inside the emulator.
#[derive(Default)]
pub(super) struct Orders {
    /// Custom fields per doctype.
    custom_fields: BTreeMap<String, BTreeSet<String>>,
    /// An active pricing rule: this percentage off every line.
    pricing_rule_percent: Option<f64>,
    /// Webhook deliveries fired by REST requests, not yet delivered.
    pending: Vec<Delivery>,
    /// Every REST request, as "METHOD /path".
    calls: Vec<String>,
    /// The next Customer insert loses a race: another request commits the same customer first.
    lose_next_customer_race: bool,
    /// A charge the site adds to every Sales Order by itself (a server script, a default taxes
    /// template): the grand total then differs from what was sent.
    site_charge: f64,
}

const COMPANY: &str = "ACME";
const DEFAULT_WAREHOUSE: &str = "Stores - ACME";

const CUSTOMER_FIELDS: &[&str] = &[
    "naming_series",
    "salutation",
    "customer_name",
    "gender",
    "customer_type",
    "customer_group",
    "territory",
    "tax_id",
    "disabled",
    "default_currency",
    "default_price_list",
    "language",
    "website",
    "customer_primary_contact",
    "mobile_no",
    "email_id",
    "customer_primary_address",
    "primary_address",
    "customer_details",
    "first_name",
    "last_name",
];
const ADDRESS_FIELDS: &[&str] = &[
    "address_title",
    "address_type",
    "address_line1",
    "address_line2",
    "city",
    "county",
    "state",
    "country",
    "pincode",
    "email_id",
    "phone",
    "is_primary_address",
    "is_shipping_address",
    "disabled",
    "links",
];
const CONTACT_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "email_id",
    "status",
    "phone",
    "is_primary_contact",
    "links",
    "email_ids",
    "phone_nos",
    "mobile_no",
    "full_name",
];
/// Fields every doctype has.
const STANDARD: &[&str] = &[
    "name",
    "owner",
    "creation",
    "modified",
    "modified_by",
    "docstatus",
    "idx",
];

/// Link fields the emulator can follow in `link.field`.
fn link_target(doctype: &str, field: &str) -> Option<&'static str> {
    match (doctype, field) {
        ("Customer", "customer_primary_address") => Some("Address"),
        ("Customer", "customer_primary_contact") => Some("Contact"),
        ("Sales Order", "customer") => Some("Customer"),
        _ => None,
    }
}

/// The doctypes whose REST list, insert and update this module serves.
pub(super) fn serves(doctype: &str) -> bool {
    matches!(
        doctype,
        "Customer"
            | "Contact"
            | "Address"
            | "Country"
            | "Customer Group"
            | "Territory"
            | "Account"
            | "Item"
            | "Item Price"
            | "Sales Order"
            | "Custom Field"
    ) || super::books::serves(doctype)
}

fn known_fields(st: &State, doctype: &str) -> Option<BTreeSet<String>> {
    let base: Vec<String> = match doctype {
        "Customer" => CUSTOMER_FIELDS.iter().map(|s| s.to_string()).collect(),
        "Address" => ADDRESS_FIELDS.iter().map(|s| s.to_string()).collect(),
        "Contact" => CONTACT_FIELDS.iter().map(|s| s.to_string()).collect(),
        "Sales Order" | "Sales Order Item" | "Item" => {
            doctype_fields(doctype).into_iter().map(|f| f.0).collect()
        }
        "Contact Email" => vec!["email_id".into(), "is_primary".into()],
        "Dynamic Link" => vec![
            "link_doctype".into(),
            "link_name".into(),
            "link_title".into(),
        ],
        _ => return None,
    };
    let mut set: BTreeSet<String> = base.into_iter().collect();
    set.extend(STANDARD.iter().map(|s| s.to_string()));
    set.extend(["parent", "parentfield", "parenttype"].map(String::from));
    if let Some(custom) = st.orders.custom_fields.get(doctype) {
        set.extend(custom.iter().cloned());
    }
    Some(set)
}

/// Keeps only the fields `doctype` has (ERPNext drops the others without a word).
fn keep_known(st: &State, doctype: &str, body: &Map<String, Value>) -> Map<String, Value> {
    match known_fields(st, doctype) {
        Some(known) => body
            .iter()
            .filter(|(k, _)| known.contains(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => body.clone(),
    }
}

/// Seeds the master data an ERPNext site with company ACME has.
pub(super) fn seed(st: &mut State) {
    let mut put = |doctype: &str, name: &str, extra: Value| {
        let mut doc = json!({"name": name, "doctype": doctype, "docstatus": 0,
                             "creation": "2026-01-01 00:00:00", "modified": "2026-01-01 00:00:00"});
        if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
            d.extend(e);
        }
        st.docs.insert((doctype.into(), name.into()), doc);
    };
    for (name, code) in [
        ("Germany", "de"),
        ("Brazil", "br"),
        ("Japan", "jp"),
        ("United States", "us"),
        ("France", "fr"),
        ("United Kingdom", "gb"),
        ("Austria", "at"),
        ("Switzerland", "ch"),
        ("Portugal", "pt"),
        ("China", "cn"),
    ] {
        put("Country", name, json!({"country_name": name, "code": code}));
    }
    for (name, group) in [
        ("All Customer Groups", 1),
        ("Commercial", 0),
        ("Individual", 0),
        ("Non Profit", 0),
    ] {
        put("Customer Group", name, json!({"is_group": group}));
    }
    for (name, group) in [
        ("All Territories", 1),
        ("Rest Of The World", 0),
        ("United States", 0),
    ] {
        put("Territory", name, json!({"is_group": group}));
    }
    for (name, kind) in [
        ("Freight and Forwarding Charges - ACME", "Chargeable"),
        ("Sales - ACME", "Income Account"),
        ("Cash - ACME", "Cash"),
    ] {
        put(
            "Account",
            name,
            json!({"company": COMPANY, "is_group": 0, "account_type": kind}),
        );
    }
}

/// Records a REST request for the per-order call counts.
pub(super) fn record(st: &mut State, req: &HttpRequest) {
    let path = req.path().replace("%20", " ");
    st.orders.calls.push(format!("{} {path}", req.method()));
}

fn ci(s: &str) -> String {
    s.trim_end_matches(' ').to_lowercase()
}

/// One list filter: `[field, op, value]` or `[doctype, field, op, value]`.
pub(super) struct Filter {
    pub(super) doctype: Option<String>,
    pub(super) field: String,
    /// Lowercase.
    pub(super) op: String,
    pub(super) value: Value,
}

/// `limit_start` and the number of rows to return (`limit_page_length`, default 20, 0: all).
pub(super) fn page_bounds(query: &BTreeMap<String, String>) -> (usize, usize) {
    let start = query
        .get("limit_start")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let page: usize = query
        .get("limit_page_length")
        .or_else(|| query.get("limit"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    (start, if page == 0 { usize::MAX } else { page })
}

/// Frappe filters: a list of `[field, op, value]` / `[doctype, field, op, value]`, or a dict
/// of `field: value` / `field: [op, value]`.
pub(super) fn parse_filters(text: Option<&str>) -> Result<Vec<Filter>, String> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(text).map_err(|e| format!("filters is not JSON: {e}"))?;
    let mut out = Vec::new();
    match v {
        Value::Array(list) => {
            for f in list {
                let parts = f.as_array().cloned().unwrap_or_default();
                let (doctype, rest) = match parts.len() {
                    4 => (parts[0].as_str().map(str::to_owned), &parts[1..]),
                    _ => (None, &parts[..]),
                };
                match rest {
                    [Value::String(field), Value::String(op), value] => out.push(Filter {
                        doctype,
                        field: field.clone(),
                        op: op.to_lowercase(),
                        value: value.clone(),
                    }),
                    _ => return Err(format!("cannot read filter {f}")),
                }
            }
        }
        Value::Object(map) => {
            for (field, v) in map {
                let (op, value) = match v {
                    Value::Array(p) if p.len() == 2 => {
                        (p[0].as_str().unwrap_or("=").to_lowercase(), p[1].clone())
                    }
                    other => ("=".to_owned(), other),
                };
                out.push(Filter {
                    doctype: None,
                    field,
                    op,
                    value,
                });
            }
        }
        _ => return Err("filters must be a list or a dict".into()),
    }
    Ok(out)
}

/// A filter on one row, strings compared like `utf8mb4_unicode_ci`.
fn row_matches(row: &Value, f: &Filter) -> bool {
    let actual = row.get(&f.field).unwrap_or(&Value::Null);
    let eq = |v: &Value| match (actual, v) {
        (Value::String(a), Value::String(b)) => ci(a) == ci(b),
        (Value::String(a), Value::Number(n)) | (Value::Number(n), Value::String(a)) => {
            a.parse::<f64>().ok() == n.as_f64()
        }
        (a, b) => a == b || (a.as_f64().is_some() && a.as_f64() == b.as_f64()),
    };
    match f.op.as_str() {
        "=" => eq(&f.value),
        "!=" => !eq(&f.value),
        "in" | "not in" => {
            let list: Vec<Value> = match &f.value {
                Value::Array(a) => a.clone(),
                Value::String(s) => s.split(',').map(|p| json!(p.trim())).collect(),
                _ => Vec::new(),
            };
            list.iter().any(eq) == (f.op == "in")
        }
        _ => matches(row, &f.field, &f.op, &f.value),
    }
}

/// The rows of `doc`'s child tables of `child` doctype, with the table's fieldname.
fn child_rows<'a>(doc: &'a Value, child: &str) -> Vec<(&'a str, &'a Value)> {
    let mut out = Vec::new();
    if let Some(obj) = doc.as_object() {
        for (field, v) in obj {
            if let Some(rows) = v.as_array() {
                for r in rows {
                    if r.get("doctype").and_then(Value::as_str) == Some(child) {
                        out.push((field.as_str(), r));
                    }
                }
            }
        }
    }
    out
}

/// `GET /api/resource/{doctype}` for the doctypes this module serves.
pub(super) fn list(st: &State, doctype: &str, query: &BTreeMap<String, String>) -> HttpResponse {
    let filters = match parse_filters(query.get("filters").map(String::as_str)) {
        Ok(f) => f,
        Err(e) => return frappe_error(417, "ValidationError", &e),
    };
    for f in &filters {
        let on = f.doctype.as_deref().unwrap_or(doctype);
        if let Some(known) = known_fields(st, on) {
            if !known.contains(&f.field) {
                return frappe_error(
                    417,
                    "DataError",
                    &format!("Field not permitted in query: {}", f.field),
                );
            }
        }
    }
    let fields: Vec<String> = query
        .get("fields")
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_else(|| vec!["name".to_owned()]);
    // "expr as alias"
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|f| match f.split_once(" as ") {
            Some((e, a)) => (e.trim().to_owned(), a.trim().to_owned()),
            None => (f.clone(), f.rsplit('.').next().unwrap_or(f).to_owned()),
        })
        .collect();
    let mut docs: Vec<&Value> = st
        .docs
        .iter()
        .filter(|((dt, _), _)| dt == doctype)
        .map(|(_, d)| d)
        .filter(|d| {
            filters.iter().all(|f| match f.doctype.as_deref() {
                Some(c) if c != doctype => child_rows(d, c).iter().any(|(_, r)| row_matches(r, f)),
                _ => row_matches(d, f),
            })
        })
        .collect();
    let order_by = query
        .get("order_by")
        .cloned()
        .unwrap_or_else(|| "modified desc".into());
    // "`tabSales Order`.`creation` asc", "modified desc".
    let first = order_by.split(',').next().unwrap_or("").trim();
    let (column, desc) = match first.rsplit_once(' ') {
        Some((c, dir)) if dir.eq_ignore_ascii_case("asc") || dir.eq_ignore_ascii_case("desc") => {
            (c.trim(), dir.eq_ignore_ascii_case("desc"))
        }
        _ => (first, false),
    };
    let field = column
        .rsplit('.')
        .next()
        .unwrap_or("modified")
        .trim_matches('`')
        .to_owned();
    // A child-table filter or a `table.field` / `link.field` joins another table: MariaDB then
    // refuses a column both tables have unless it is qualified.
    let joins = filters
        .iter()
        .any(|f| f.doctype.as_deref().is_some_and(|d| d != doctype))
        || fields.iter().any(|(e, _)| e.contains('.'));
    if joins && !column.contains('.') && STANDARD.contains(&field.as_str()) {
        return frappe_error(
            500,
            "OperationalError",
            &format!("(1052, \"Column '{field}' in ORDER BY is ambiguous\")"),
        );
    }
    docs.sort_by(|a, b| {
        let o = super::compare(&field, &a[field.as_str()], &b[field.as_str()])
            .unwrap_or(std::cmp::Ordering::Equal);
        let o = if desc { o.reverse() } else { o };
        o.then_with(|| {
            super::compare("name", &a["name"], &b["name"]).unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    let mut rows: Vec<Value> = Vec::new();
    for d in docs {
        // A `table.field` in fields: one row per child row (those the filters on it allow).
        let table = fields.iter().find_map(|(e, _)| {
            let (t, _) = e.split_once('.')?;
            d.get(t)?.as_array().map(|_| t.to_owned())
        });
        let children: Vec<Option<&Value>> = match &table {
            Some(t) => d[t.as_str()]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .filter(|r| {
                            let c = r["doctype"].as_str().unwrap_or_default();
                            filters
                                .iter()
                                .filter(|f| f.doctype.as_deref() == Some(c))
                                .all(|f| row_matches(r, f))
                        })
                        .map(Some)
                        .collect()
                })
                .unwrap_or_default(),
            None => vec![None],
        };
        for child in children {
            let mut m = Map::new();
            for (expr, alias) in &fields {
                let v = match expr.split_once('.') {
                    _ if expr == "*" => {
                        if let Some(o) = d.as_object() {
                            m.extend(o.clone());
                        }
                        continue;
                    }
                    Some((t, f)) if Some(t) == table.as_deref() => {
                        child.and_then(|c| c.get(f)).cloned().unwrap_or(Value::Null)
                    }
                    Some((link, f)) => link_target(doctype, link)
                        .and_then(|target| {
                            let name = d.get(link)?.as_str()?;
                            st.docs.get(&(target.to_owned(), name.to_owned()))
                        })
                        .and_then(|linked| linked.get(f).cloned())
                        .unwrap_or(Value::Null),
                    None => d.get(expr.as_str()).cloned().unwrap_or(Value::Null),
                };
                m.insert(alias.clone(), v);
            }
            rows.push(Value::Object(m));
        }
    }
    let (start, take) = page_bounds(query);
    let data: Vec<Value> = rows.into_iter().skip(start).take(take).collect();
    HttpResponse::Ok().json(json!({ "data": data }))
}

fn exists(st: &State, doctype: &str, name: &str) -> bool {
    st.docs.contains_key(&(doctype.to_owned(), name.to_owned()))
}

/// `name`, or `name - N` with the next free N, as ERPNext renames a duplicate Customer.
fn free_name(st: &State, doctype: &str, name: &str, sep: &str) -> String {
    if !exists(st, doctype, name) {
        return name.to_owned();
    }
    (1..)
        .map(|n| format!("{name}{sep}{n}"))
        .find(|n| !exists(st, doctype, n))
        .unwrap_or_default()
}

fn text<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn stamp(st: &mut State, doctype: &str, name: &str, mut doc: Map<String, Value>) -> Value {
    let modified = st.tick();
    doc.insert("name".into(), json!(name));
    doc.insert("doctype".into(), json!(doctype));
    doc.entry("docstatus").or_insert(json!(0));
    doc.entry("creation").or_insert(json!(modified.clone()));
    doc.insert("modified".into(), json!(modified));
    doc.insert("owner".into(), json!("Administrator"));
    Value::Object(doc)
}

fn link_row(doctype: &str, name: &str) -> Value {
    json!({"doctype": "Dynamic Link", "link_doctype": doctype, "link_name": name})
}

/// `POST /api/resource/{doctype}`.
pub(super) fn insert(st: &mut State, doctype: &str, body: Map<String, Value>) -> HttpResponse {
    match doctype {
        "Customer" => insert_customer(st, body),
        "Address" => match insert_address(st, &body, None) {
            Ok(doc) => HttpResponse::Ok().json(json!({ "data": doc })),
            Err(resp) => *resp,
        },
        "Sales Order" => insert_sales_order(st, body),
        d if super::books::serves(d) => super::books::insert(st, d, body),
        _ => frappe_error(
            403,
            "PermissionError",
            &format!("the emulator does not create {doctype}"),
        ),
    }
}

fn valid_email(e: &str) -> bool {
    let e = e.trim();
    match e.split_once('@') {
        Some((l, d)) => !l.is_empty() && d.contains('.') && !e.contains(char::is_whitespace),
        None => false,
    }
}

fn insert_customer(st: &mut State, body: Map<String, Value>) -> HttpResponse {
    let Some(customer_name) = text(&body, "customer_name").map(str::to_owned) else {
        return frappe_error(
            417,
            "MandatoryError",
            "Customer: Value missing for: Customer Name",
        );
    };
    let group = text(&body, "customer_group")
        .unwrap_or("All Customer Groups")
        .to_owned();
    let territory = text(&body, "territory")
        .unwrap_or("All Territories")
        .to_owned();
    let mut missing = Vec::new();
    if !exists(st, "Customer Group", &group) {
        missing.push(format!("Customer Group: {group}"));
    }
    if !exists(st, "Territory", &territory) {
        missing.push(format!("Territory: {territory}"));
    }
    if !missing.is_empty() {
        return frappe_error(
            417,
            "LinkValidationError",
            &format!("Could not find {}", missing.join(", ")),
        );
    }
    if let Some(email) = body.get("email_id").and_then(Value::as_str) {
        if !valid_email(email) {
            return frappe_error(
                417,
                "InvalidEmailAddressError",
                &format!("{} is not a valid Email Address", email.trim()),
            );
        }
    }
    if text(&body, "address_line1").is_some() {
        let lacking: Vec<&str> = [("city", "City"), ("country", "Country")]
            .into_iter()
            .filter(|(k, _)| text(&body, k).is_none())
            .map(|(_, l)| l)
            .collect();
        if !lacking.is_empty() {
            return frappe_error(
                417,
                "ValidationError",
                &format!(
                    "Following fields are mandatory to create address: {}",
                    lacking.join(", ")
                ),
            );
        }
        let country = text(&body, "country").unwrap_or_default();
        if !exists(st, "Country", country) {
            return frappe_error(
                417,
                "LinkValidationError",
                &format!("Could not find Country: {country}"),
            );
        }
    }
    if std::mem::take(&mut st.orders.lose_next_customer_race) {
        // Another request commits the same customer first; this one hits the primary key.
        let _ = create_customer(st, &body, &customer_name, &group, &territory);
        return frappe_error(
            409,
            "DuplicateEntryError",
            &format!("Customer <strong>{customer_name}</strong> already exists"),
        );
    }
    let doc = create_customer(st, &body, &customer_name, &group, &territory);
    HttpResponse::Ok().json(json!({ "data": doc }))
}

fn create_customer(
    st: &mut State,
    body: &Map<String, Value>,
    customer_name: &str,
    group: &str,
    territory: &str,
) -> Value {
    let name = free_name(st, "Customer", customer_name, " - ");
    let mut doc = keep_known(st, "Customer", body);
    doc.insert("customer_name".into(), json!(name));
    doc.insert("customer_group".into(), json!(group));
    doc.insert("territory".into(), json!(territory));
    doc.entry("customer_type").or_insert(json!("Company"));
    doc.entry("disabled").or_insert(json!(0));
    let email = body
        .get("email_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mobile = text(body, "mobile_no").map(str::to_owned);
    if email.is_some() || mobile.is_some() {
        let (first, last) = match name.split_once(' ') {
            Some((f, l)) => (f.to_owned(), Some(l.to_owned())),
            None => (name.clone(), None),
        };
        let contact_name = free_name(st, "Contact", &format!("{name}-{name}"), "-");
        let mut contact = Map::new();
        contact.insert("first_name".into(), json!(first));
        contact.insert("last_name".into(), json!(last));
        contact.insert("email_id".into(), json!(email.as_deref().map(str::trim)));
        contact.insert("mobile_no".into(), json!(mobile));
        contact.insert("is_primary_contact".into(), json!(1));
        let emails: Vec<Value> = email
            .iter()
            .map(|e| json!({"doctype": "Contact Email", "email_id": e, "is_primary": 1}))
            .collect();
        contact.insert("email_ids".into(), Value::Array(emails));
        contact.insert("links".into(), json!([link_row("Customer", &name)]));
        let contact = stamp(st, "Contact", &contact_name, contact);
        st.docs
            .insert(("Contact".into(), contact_name.clone()), contact);
        doc.insert("customer_primary_contact".into(), json!(contact_name));
    }
    if text(body, "address_line1").is_some() {
        let mut a = Map::new();
        for k in [
            "address_line1",
            "address_line2",
            "city",
            "state",
            "pincode",
            "country",
        ] {
            if let Some(v) = body.get(k) {
                a.insert(k.into(), v.clone());
            }
        }
        a.insert("address_title".into(), json!(name));
        a.insert("address_type".into(), json!("Billing"));
        a.insert("is_primary_address".into(), json!(1));
        a.insert("is_shipping_address".into(), json!(1));
        a.insert("links".into(), json!([link_row("Customer", &name)]));
        if let Ok(addr) = insert_address(st, &a, None) {
            doc.insert("customer_primary_address".into(), addr["name"].clone());
        }
    }
    let doc = stamp(st, "Customer", &name, doc);
    st.docs.insert(("Customer".into(), name), doc.clone());
    doc
}

fn insert_address(
    st: &mut State,
    body: &Map<String, Value>,
    name: Option<String>,
) -> Result<Value, Box<HttpResponse>> {
    let mut doc = keep_known(st, "Address", body);
    for (k, label) in [
        ("address_line1", "Address Line 1"),
        ("city", "City/Town"),
        ("country", "Country"),
    ] {
        if text(&doc, k).is_none() {
            return Err(Box::new(frappe_error(
                417,
                "MandatoryError",
                &format!("Address: Value missing for: {label}"),
            )));
        }
    }
    let country = text(&doc, "country").unwrap_or_default().to_owned();
    if !exists(st, "Country", &country) {
        return Err(Box::new(frappe_error(
            417,
            "LinkValidationError",
            &format!("Could not find Country: {country}"),
        )));
    }
    let kind = text(&doc, "address_type").unwrap_or("Billing").to_owned();
    doc.insert("address_type".into(), json!(kind));
    let title = text(&doc, "address_title").unwrap_or("Address").to_owned();
    let name = name.unwrap_or_else(|| free_name(st, "Address", &format!("{title}-{kind}"), "-"));
    if let Some(Value::Array(links)) = doc.get_mut("links") {
        for l in links.iter_mut() {
            if let Some(o) = l.as_object_mut() {
                o.insert("doctype".into(), json!("Dynamic Link"));
            }
        }
    }
    doc.entry("disabled").or_insert(json!(0));
    let doc = stamp(st, "Address", &name, doc);
    st.docs.insert(("Address".into(), name), doc.clone());
    Ok(doc)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn insert_sales_order(st: &mut State, body: Map<String, Value>) -> HttpResponse {
    let mut doc = keep_known(st, "Sales Order", &body);
    let customer = text(&doc, "customer").unwrap_or_default().to_owned();
    if !exists(st, "Customer", &customer) {
        return frappe_error(
            417,
            "LinkValidationError",
            &format!("Could not find Customer: {customer}"),
        );
    }
    let today = "2026-11-29".to_owned();
    let tdate = text(&doc, "transaction_date").unwrap_or(&today).to_owned();
    let Some(ddate) = text(&doc, "delivery_date").map(str::to_owned) else {
        return frappe_error(417, "ValidationError", "Please enter Delivery Date");
    };
    if ddate < tdate {
        return frappe_error(
            417,
            "ValidationError",
            "Expected Delivery Date should be after Sales Order Date",
        );
    }
    let ignore_rules = num(doc.get("ignore_pricing_rule")) == Some(1.0);
    let set_wh = text(&doc, "set_warehouse").map(str::to_owned);
    let raw_items = doc
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if raw_items.is_empty() {
        return frappe_error(
            417,
            "MandatoryError",
            "Sales Order: Value missing for: Items",
        );
    }
    let mut items = Vec::new();
    for (i, raw) in raw_items.iter().enumerate() {
        let raw = raw.as_object().cloned().unwrap_or_default();
        let mut row = keep_known(st, "Sales Order Item", &raw);
        let code = text(&row, "item_code").unwrap_or_default().to_owned();
        if !exists(st, "Item", &code) {
            return frappe_error(404, "DoesNotExistError", &format!("Item {code} not found"));
        }
        let qty = num(row.get("qty")).unwrap_or(0.0);
        if qty == 0.0 {
            return frappe_error(
                417,
                "InvalidQtyError",
                &format!(
                    "Row #{}: Quantity for Item <strong>{code}</strong> cannot be zero.",
                    i + 1
                ),
            );
        }
        let sent_rate = num(row.get("rate")).unwrap_or(0.0);
        let plr = match num(row.get("price_list_rate")) {
            Some(p) => p,
            None => match item_price(st, &code) {
                Some(p) => p,
                None => {
                    // auto_insert_price_list_rate_if_missing: the rate becomes the list price.
                    let modified = st.tick();
                    let n = st.next_name("ITEM-PRICE-");
                    st.docs.insert(
                        ("Item Price".into(), n.clone()),
                        json!({"name": n, "doctype": "Item Price", "item_code": code,
                               "price_list": "Standard Selling", "price_list_rate": sent_rate,
                               "modified": modified}),
                    );
                    sent_rate
                }
            },
        };
        let pct = num(row.get("discount_percentage")).unwrap_or(0.0);
        let rate = match st.orders.pricing_rule_percent {
            Some(rule) if !ignore_rules => round2(plr * (1.0 - rule / 100.0)),
            _ if sent_rate == 0.0 => round2(plr * (1.0 - pct / 100.0)),
            _ => round2(sent_rate),
        };
        let amount = round2(rate * qty);
        let wh = text(&row, "warehouse")
            .map(str::to_owned)
            .or(set_wh.clone());
        row.insert(
            "warehouse".into(),
            json!(wh.unwrap_or_else(|| DEFAULT_WAREHOUSE.into())),
        );
        row.insert("price_list_rate".into(), json!(plr));
        row.insert("discount_percentage".into(), json!(pct));
        row.insert("discount_amount".into(), json!(plr - rate));
        row.insert("rate".into(), json!(rate));
        row.insert("amount".into(), json!(amount));
        row.insert("stock_qty".into(), json!(qty));
        row.insert("delivery_date".into(), json!(ddate));
        items.push(row);
    }
    let site_charge = st.orders.site_charge;
    let t = match super::books::totals(st, &doc, &mut items, site_charge) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    let po = text(&doc, "po_no").map(str::to_owned);
    if let Some(po) = &po {
        let clash = st.docs.iter().find(|((dt, _), d)| {
            dt == "Sales Order"
                && d["docstatus"].as_i64().unwrap_or(0) < 2
                && d["customer"].as_str() == Some(customer.as_str())
                && d["po_no"].as_str().is_some_and(|p| ci(p) == ci(po))
        });
        if let Some(((_, other), _)) = clash {
            return frappe_error(
                417,
                "ValidationError",
                &format!(
                    "Sales Order <strong>{other}</strong> already exists against Customer's Purchase Order <strong>{po}</strong>. To allow multiple Sales Orders, Enable <strong>'Allow Multiple Sales Orders Against a Customer's Purchase Order'</strong> in Selling Settings"
                ),
            );
        }
    }
    let docstatus = num(doc.get("docstatus")).unwrap_or(0.0) as i64;
    let status = if docstatus == 1 {
        text(&doc, "status").unwrap_or("Draft").to_owned()
    } else {
        "Draft".to_owned()
    };
    let customer_name =
        st.docs[&("Customer".to_owned(), customer.clone())]["customer_name"].clone();
    doc.entry("title").or_insert(json!("{customer_name}"));
    for (k, v) in [
        ("customer_name", customer_name),
        ("company", json!(COMPANY)),
        ("transaction_date", json!(tdate)),
        ("currency", json!(text(&doc, "currency").unwrap_or("USD"))),
        ("selling_price_list", json!("Standard Selling")),
        ("total", json!(t.total)),
        ("net_total", json!(t.net_total)),
        ("discount_amount", json!(t.discount)),
        ("total_taxes_and_charges", json!(t.total_taxes)),
        ("grand_total", json!(t.grand_total)),
        ("rounded_total", json!(t.grand_total)),
        ("per_billed", json!(0.0)),
        ("per_delivered", json!(0.0)),
        ("status", json!(status)),
        ("taxes", Value::Array(t.taxes)),
    ] {
        doc.insert(k.into(), v);
    }
    let name = st.next_name("SAL-ORD-2026-");
    let custom_top: Vec<(String, Value)> = custom_values(st, "Sales Order", &doc);
    let custom_rows: Vec<Vec<(String, Value)>> = items
        .iter()
        .map(|r| custom_values(st, "Sales Order Item", r))
        .collect();
    doc.insert(
        "items".into(),
        Value::Array(items.into_iter().map(Value::Object).collect()),
    );
    let modified = st.tick();
    let mut so = as_dict("Sales Order", &name, &modified, docstatus, &doc);
    if let Some(obj) = so.as_object_mut() {
        for (k, v) in custom_top {
            obj.insert(k, v);
        }
        if let Some(Value::Array(rows)) = obj.get_mut("items") {
            for (row, custom) in rows.iter_mut().zip(custom_rows) {
                if let Some(r) = row.as_object_mut() {
                    r.extend(custom);
                }
            }
        }
        // as_dict keeps the taxes rows as sent; ERPNext computes them.
        obj.insert("taxes".into(), doc["taxes"].clone());
    }
    st.docs
        .insert(("Sales Order".into(), name.clone()), so.clone());
    let mut events = vec!["after_insert", "on_update"];
    if docstatus == 1 {
        reserve(st, &so, 1.0);
        events.push("on_submit");
    }
    fire_later(st, &name, &events);
    let so = st.docs[&("Sales Order".to_owned(), name)].clone();
    HttpResponse::Ok().json(json!({ "data": so }))
}

/// The values of `doctype`'s custom fields in `body`, defaulted like ERPNext (0 for a Check the
/// emulator cannot type: it stores what was sent, else null).
fn custom_values(st: &State, doctype: &str, body: &Map<String, Value>) -> Vec<(String, Value)> {
    st.orders
        .custom_fields
        .get(doctype)
        .map(|fields| {
            fields
                .iter()
                .map(|f| (f.clone(), body.get(f).cloned().unwrap_or(Value::Null)))
                .collect()
        })
        .unwrap_or_default()
}

fn item_price(st: &State, code: &str) -> Option<f64> {
    st.docs
        .iter()
        .filter(|((dt, _), d)| dt == "Item Price" && d["item_code"].as_str() == Some(code))
        .find_map(|(_, d)| d["price_list_rate"].as_f64())
}

/// Reserves (`sign` 1) or releases (-1) the stock items of a Sales Order in their Bins.
fn reserve(st: &mut State, so: &Value, sign: f64) {
    let lines: Vec<(String, String, f64)> = so["items"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["item_code"].as_str().unwrap_or_default().to_owned(),
                        r["warehouse"]
                            .as_str()
                            .unwrap_or(DEFAULT_WAREHOUSE)
                            .to_owned(),
                        r["stock_qty"].as_f64().or(r["qty"].as_f64()).unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for (item, wh, qty) in lines {
        let stock_item = st
            .docs
            .get(&("Item".to_owned(), item.clone()))
            .is_none_or(|i| i["is_stock_item"].as_i64() != Some(0));
        if stock_item {
            if let Ok(d) = st.update_bin(&item, &wh, |bin| add(bin, "reserved_qty", sign * qty)) {
                st.orders.pending.extend(d);
            }
        }
    }
}

fn fire_later(st: &mut State, name: &str, events: &[&str]) {
    let Some(doc) = st
        .docs
        .get(&("Sales Order".to_owned(), name.to_owned()))
        .cloned()
    else {
        return;
    };
    for e in events {
        if let Ok(d) = st.fire("Sales Order", e, &doc) {
            st.orders.pending.extend(d);
        }
    }
}

/// `PUT /api/resource/{doctype}/{name}`.
pub(super) fn update(
    st: &mut State,
    doctype: &str,
    name: &str,
    changes: Map<String, Value>,
) -> HttpResponse {
    let key = (doctype.to_owned(), name.to_owned());
    let Some(Value::Object(mut doc)) = st.docs.get(&key).cloned() else {
        return frappe_error(
            404,
            "DoesNotExistError",
            &format!("{doctype} {name} not found"),
        );
    };
    let changes = keep_known(st, doctype, &changes);
    let submitting = doctype == "Sales Order"
        && doc["docstatus"].as_i64() == Some(0)
        && changes.get("docstatus").and_then(Value::as_i64) == Some(1);
    if doctype == "Sales Order" && doc["docstatus"].as_i64() != Some(0) {
        if let Some((k, _)) = changes
            .iter()
            .find(|(k, v)| k.as_str() != "docstatus" && doc.get(*k) != Some(v))
        {
            return frappe_error(
                417,
                "UpdateAfterSubmitError",
                &format!("Not allowed to change {k} after submission"),
            );
        }
    }
    for (k, v) in changes {
        if k != "name" && k != "items" {
            doc.insert(k, v);
        }
    }
    if submitting {
        doc.insert("status".into(), json!("To Deliver and Bill"));
    }
    let modified = st.tick();
    doc.insert("modified".into(), json!(modified));
    let doc = Value::Object(doc);
    st.docs.insert(key, doc.clone());
    if submitting {
        reserve(st, &doc, 1.0);
        fire_later(st, name, &["on_update", "on_submit", "on_change"]);
    }
    HttpResponse::Ok().json(json!({ "data": st.docs.get(&(doctype.to_owned(), name.to_owned())) }))
}

/// `DELETE /api/resource/{doctype}/{name}`: drafts only.
pub(super) async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: Shared,
) -> HttpResponse {
    let (doctype, name) = path.into_inner();
    let mut st = match guarded(&req, &state, &doctype) {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    let key = (doctype.clone(), name.clone());
    match st.docs.get(&key) {
        None => frappe_error(
            404,
            "DoesNotExistError",
            &format!("{doctype} {name} not found"),
        ),
        Some(d) if d["docstatus"].as_i64() == Some(1) => frappe_error(
            417,
            "LinkExistsError",
            &format!("Submitted Record cannot be deleted. You must Cancel {doctype} {name} first."),
        ),
        Some(_) => {
            st.docs.remove(&key);
            HttpResponse::Accepted().json(json!({"data": "ok"}))
        }
    }
}

/// `POST /api/method/frappe.client.cancel {"doctype", "name"}`.
pub(super) async fn cancel(req: HttpRequest, body: web::Bytes, state: Shared) -> HttpResponse {
    let args: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let doctype = args["doctype"].as_str().unwrap_or_default().to_owned();
    let name = args["name"].as_str().unwrap_or_default().to_owned();
    let mut st = match guarded(&req, &state, &doctype) {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    let key = (doctype.clone(), name.clone());
    let Some(Value::Object(mut doc)) = st.docs.get(&key).cloned() else {
        return frappe_error(
            404,
            "DoesNotExistError",
            &format!("{doctype} {name} not found"),
        );
    };
    if doc["docstatus"].as_i64() != Some(1) {
        return frappe_error(417, "ValidationError", "Cannot cancel before submitting");
    }
    let modified = st.tick();
    doc.insert("docstatus".into(), json!(2));
    doc.insert("status".into(), json!("Cancelled"));
    doc.insert("modified".into(), json!(modified));
    let doc = Value::Object(doc);
    st.docs.insert(key, doc.clone());
    if doctype == "Sales Order" {
        reserve(&mut st, &doc, -1.0);
        fire_later(&mut st, &name, &["on_cancel", "on_change"]);
    }
    HttpResponse::Ok().json(json!({"message": doc}))
}

impl ErpEmulator {
    /// Adds an Item with a Standard Selling price (None: no Item Price) and extra fields.
    pub fn add_item(&self, item_code: &str, list_price: Option<f64>, fields: &[(&str, Value)]) {
        let mut st = self.lock();
        let modified = st.tick();
        let mut doc = Map::new();
        doc.insert("item_code".into(), json!(item_code));
        doc.insert("item_name".into(), json!(item_code));
        doc.insert("is_stock_item".into(), json!(1));
        for (k, v) in fields {
            doc.insert((*k).to_owned(), v.clone());
        }
        let mut d = as_dict("Item", item_code, &modified, 0, &doc);
        if let Some(o) = d.as_object_mut() {
            for (k, v) in fields {
                o.insert((*k).to_owned(), v.clone());
            }
        }
        st.docs.insert(("Item".into(), item_code.into()), d);
        if let Some(p) = list_price {
            let n = st.next_name("ITEM-PRICE-");
            st.docs.insert(
                ("Item Price".into(), n.clone()),
                json!({"name": n, "doctype": "Item Price", "item_code": item_code,
                       "price_list": "Standard Selling", "price_list_rate": p, "modified": modified}),
            );
        }
    }

    /// Adds a Custom Field `fieldname` to `doctype` (e.g. "Sales Order Item").
    pub fn add_custom_field(&self, doctype: &str, fieldname: &str) {
        let mut st = self.lock();
        st.orders
            .custom_fields
            .entry(doctype.to_owned())
            .or_default()
            .insert(fieldname.to_owned());
        let name = format!("{doctype}-{fieldname}");
        st.docs.insert(
            ("Custom Field".into(), name.clone()),
            json!({"name": name, "doctype": "Custom Field", "dt": doctype, "fieldname": fieldname}),
        );
    }

    /// An active Pricing Rule taking `percent` off every line (None: no rule).
    pub fn set_pricing_rule(&self, percent: Option<f64>) {
        self.lock().orders.pricing_rule_percent = percent;
    }

    /// The next Customer insert loses a race: the same customer is committed by "another
    /// request" first, and this one is answered 409 DuplicateEntryError.
    pub fn lose_next_customer_race(&self) {
        self.lock().orders.lose_next_customer_race = true;
    }

    /// Makes the site add `amount` to every new Sales Order's grand total by itself.
    pub fn set_site_charge(&self, amount: f64) {
        self.lock().orders.site_charge = amount;
    }

    /// The Sales Order webhooks fired by REST requests since the last call.
    pub fn take_order_deliveries(&self) -> Vec<Delivery> {
        std::mem::take(&mut self.lock().orders.pending)
    }

    /// Every REST request so far, as "METHOD /api/...", oldest first.
    pub fn calls(&self) -> Vec<String> {
        self.lock().orders.calls.clone()
    }

    /// Every document of `doctype`.
    pub fn docs_of(&self, doctype: &str) -> Vec<Value> {
        self.lock()
            .docs
            .iter()
            .filter(|((dt, _), _)| dt == doctype)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// One document.
    pub fn doc(&self, doctype: &str, name: &str) -> Option<Value> {
        self.lock()
            .docs
            .get(&(doctype.to_owned(), name.to_owned()))
            .cloned()
    }
}
