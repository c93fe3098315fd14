//! The order's Customer in ERPNext: found by email, or created with its primary Contact and the
//! shipping address in one request; a returning customer keeps ERPNext's data, and gets the
//! order's shipping address added as a linked Address when it is new.
//!
//! ERPNext facts this relies on (ERPNext 15):
//! - Emails are neither unique nor normalised: `Customer.email_id` and `Contact Email` rows hold
//!   what was typed. Filters compare with MariaDB's `utf8mb4_unicode_ci` (case-insensitive,
//!   trailing spaces ignored), so the relay trims and lowercases what it writes and looks up.
//! - `Customer.email_id` holds only the primary contact's email; other emails live in Contact
//!   Email rows, found with a child-table filter joined to the Contact's `Dynamic Link` rows (one
//!   result row per link, so names are de-duplicated).
//! - `POST /api/resource/Customer` with `email_id`, `mobile_no` and `address_line1`/`city`/
//!   `country` creates the Customer, its primary Contact and a primary shipping Address in one
//!   transaction. A second Customer with the same name is renamed "Name - 1" when requests come
//!   one after the other, but two concurrent creates give one 200 and one 409.
//! - Address wants the Country's document name; Country has the ISO code in `code`.
//! - Unknown fields in a body are dropped without an error, so mapped fields are checked in the
//!   answer.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::context::{erp_failure, map_fields, missing_fields, OrderContext, PlaceError};
use crate::erpnext::ErpError;
use crate::orders::model::{PostalAddress, ShopOrder};

/// The Customer an order is placed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CustomerRef {
    pub name: String,
    /// The Address the goods go to (None: ERPNext's default).
    pub shipping_address: Option<String>,
}

/// A Customer row with its primary address (read through the link in one query).
#[derive(Debug, Deserialize)]
struct CustomerRow {
    name: String,
    #[serde(default)]
    disabled: Option<i64>,
    #[serde(default)]
    customer_primary_address: Option<String>,
    #[serde(default)]
    pa_line1: Option<String>,
    #[serde(default)]
    pa_line2: Option<String>,
    #[serde(default)]
    pa_city: Option<String>,
    #[serde(default)]
    pa_pincode: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AddressRow {
    name: String,
    #[serde(default)]
    address_line1: Option<String>,
    #[serde(default)]
    address_line2: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    pincode: Option<String>,
    #[serde(default)]
    disabled: Option<i64>,
}

const CUSTOMER_FIELDS: [&str; 8] = [
    "name",
    "disabled",
    "customer_primary_address",
    "customer_primary_address.address_line1 as pa_line1",
    "customer_primary_address.address_line2 as pa_line2",
    "customer_primary_address.city as pa_city",
    "customer_primary_address.pincode as pa_pincode",
    "creation",
];

/// An email as the relay writes and compares it: trimmed and lowercased.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn same_text(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |s: Option<&str>| s.unwrap_or("").trim().to_lowercase();
    norm(a) == norm(b)
}

/// Street, city and postcode equal, ignoring case and surrounding spaces. (The country is left
/// out: ERPNext stores its name, the shop its ISO code, and a street in the same city and
/// postcode in another country is not a real case.)
fn same_address(
    want: &PostalAddress,
    line1: Option<&str>,
    line2: Option<&str>,
    city: Option<&str>,
    pincode: Option<&str>,
) -> bool {
    same_text(Some(&want.line1), line1)
        && same_text(want.line2.as_deref(), line2)
        && same_text(Some(&want.city), city)
        && same_text(want.postcode.as_deref(), pincode)
}

/// Finds the order's Customer by email, or creates it. Returns it with the Address to ship to.
pub(crate) async fn find_or_create(
    ctx: &OrderContext,
    order: &ShopOrder,
) -> Result<CustomerRef, PlaceError> {
    let email = normalise_email(&order.customer.email);
    if email.is_empty() {
        return Err(PlaceError::Refused("the customer has no email".into()));
    }
    if let Some(found) = find(ctx, &email).await? {
        return shipping_address_for(ctx, order, found).await;
    }
    match create(ctx, order, &email).await {
        Err(PlaceError::Unavailable(ErpError::Status { status: 409, .. })) => {
            // Another request created a Customer of that name a moment ago: if it is ours
            // (same email), use it; otherwise ERPNext names ours "Name - 1" on a second try.
            if let Some(found) = find(ctx, &email).await? {
                return shipping_address_for(ctx, order, found).await;
            }
            create(ctx, order, &email).await
        }
        other => other,
    }
}

/// The Customer with this email: `Customer.email_id` first, then Contacts that carry the email
/// and link a Customer. Several: the enabled one created first.
async fn find(ctx: &OrderContext, email: &str) -> Result<Option<CustomerRow>, PlaceError> {
    let by_email = customers(ctx, json!([["email_id", "=", email]])).await?;
    if let Some(row) = pick(by_email) {
        return Ok(Some(row));
    }
    #[derive(Deserialize)]
    struct Link {
        #[serde(default)]
        link_name: Option<String>,
    }
    let links: Vec<Link> = ctx
        .erp
        .list_page(
            "Contact",
            &["name", "links.link_name"],
            &json!([
                ["Contact Email", "email_id", "=", email],
                ["Dynamic Link", "link_doctype", "=", "Customer"]
            ]),
            "`tabContact`.`creation` asc",
            0,
            100,
        )
        .await
        .map_err(|e| erp_failure(e, "looking up the customer's contacts"))?;
    let mut names: Vec<String> = links.into_iter().filter_map(|l| l.link_name).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(None);
    }
    let rows = customers(ctx, json!([["name", "in", names]])).await?;
    Ok(pick(rows))
}

async fn customers(ctx: &OrderContext, filters: Value) -> Result<Vec<CustomerRow>, PlaceError> {
    ctx.erp
        .list_page(
            "Customer",
            &CUSTOMER_FIELDS,
            &filters,
            "`tabCustomer`.`creation` asc",
            0,
            100,
        )
        .await
        .map_err(|e| erp_failure(e, "looking up the customer"))
}

fn pick(mut rows: Vec<CustomerRow>) -> Option<CustomerRow> {
    if rows.len() > 1 {
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        tracing::warn!(customers = ?names, "several ERPNext customers have the order's email; using the first enabled one");
    }
    let enabled = rows.iter().position(|r| r.disabled.unwrap_or(0) == 0);
    match enabled {
        Some(i) => Some(rows.swap_remove(i)),
        None => rows.into_iter().next(),
    }
}

/// A returning customer ships to their primary address when it is the order's; else to a
/// linked Address that matches; else to a new linked Address.
async fn shipping_address_for(
    ctx: &OrderContext,
    order: &ShopOrder,
    found: CustomerRow,
) -> Result<CustomerRef, PlaceError> {
    let want = &order.shipping_address;
    if found.customer_primary_address.is_some()
        && same_address(
            want,
            found.pa_line1.as_deref(),
            found.pa_line2.as_deref(),
            found.pa_city.as_deref(),
            found.pa_pincode.as_deref(),
        )
    {
        return Ok(CustomerRef {
            name: found.name,
            shipping_address: found.customer_primary_address,
        });
    }
    let addresses: Vec<AddressRow> = ctx
        .erp
        .list_page(
            "Address",
            &[
                "name",
                "address_line1",
                "address_line2",
                "city",
                "pincode",
                "disabled",
            ],
            &json!([
                ["Dynamic Link", "link_doctype", "=", "Customer"],
                ["Dynamic Link", "link_name", "=", found.name]
            ]),
            "`tabAddress`.`creation` asc",
            0,
            500,
        )
        .await
        .map_err(|e| erp_failure(e, "reading the customer's addresses"))?;
    if let Some(a) = addresses.into_iter().find(|a| {
        a.disabled.unwrap_or(0) == 0
            && same_address(
                want,
                a.address_line1.as_deref(),
                a.address_line2.as_deref(),
                a.city.as_deref(),
                a.pincode.as_deref(),
            )
    }) {
        return Ok(CustomerRef {
            name: found.name,
            shipping_address: Some(a.name),
        });
    }
    let country = country_name(ctx, &want.country).await?;
    let mut body = json!({
        "address_title": found.name,
        "address_type": "Shipping",
        "address_line1": want.line1,
        "city": want.city,
        "country": country,
        "is_shipping_address": 1,
        "links": [{"link_doctype": "Customer", "link_name": found.name}],
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(l2) = &want.line2 {
            obj.insert("address_line2".into(), json!(l2));
        }
        if let Some(pc) = &want.postcode {
            obj.insert("pincode".into(), json!(pc));
        }
    }
    let saved = ctx
        .erp
        .save_doc("Address", None, &body)
        .await
        .map_err(|e| erp_failure(e, "adding the shipping address"))?;
    Ok(CustomerRef {
        name: found.name,
        shipping_address: saved["name"].as_str().map(str::to_owned),
    })
}

/// The Country document whose `code` is this ISO 3166-1 alpha-2 code.
async fn country_name(ctx: &OrderContext, iso: &str) -> Result<String, PlaceError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    let code = iso.trim().to_lowercase();
    let rows: Vec<Row> = ctx
        .erp
        .list_page(
            "Country",
            &["name"],
            &json!([["code", "=", code]]),
            "name asc",
            0,
            2,
        )
        .await
        .map_err(|e| erp_failure(e, "looking up the country"))?;
    rows.into_iter().next().map(|r| r.name).ok_or_else(|| {
        PlaceError::Refused(format!(
            "ERPNext has no Country with the code {:?}",
            iso.trim()
        ))
    })
}

/// The name the relay gives a new Customer: first and last name, else the email.
fn display_name(order: &ShopOrder, email: &str) -> String {
    let c = &order.customer;
    let parts: Vec<&str> = [c.first_name.as_deref(), c.last_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        email.to_owned()
    } else {
        parts.join(" ")
    }
}

async fn create(
    ctx: &OrderContext,
    order: &ShopOrder,
    email: &str,
) -> Result<CustomerRef, PlaceError> {
    let c = &order.customer;
    let a = &order.shipping_address;
    let country = country_name(ctx, &a.country).await?;
    let mut body = Map::new();
    for (k, v) in [
        ("customer_name", json!(display_name(order, email))),
        ("customer_type", json!("Individual")),
        ("customer_group", json!(ctx.settings.customer_group)),
        ("territory", json!(ctx.settings.territory)),
        ("email_id", json!(email)),
        ("address_line1", json!(a.line1)),
        ("city", json!(a.city)),
        ("country", json!(country)),
    ] {
        body.insert(k.into(), v);
    }
    for (k, v) in [
        ("first_name", &c.first_name),
        ("last_name", &c.last_name),
        ("mobile_no", &c.phone),
        ("address_line2", &a.line2),
        ("pincode", &a.postcode),
    ] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            body.insert(k.into(), json!(v));
        }
    }
    let sent = map_fields(&ctx.settings.fields.customer, &c.fields, &mut body);
    let saved = ctx
        .erp
        .save_doc("Customer", None, &Value::Object(body))
        .await
        .map_err(|e| match e {
            ErpError::Status { status: 409, .. } => PlaceError::Unavailable(e),
            e => erp_failure(e, "creating the customer"),
        })?;
    let name = saved["name"]
        .as_str()
        .ok_or_else(|| PlaceError::Refused("ERPNext created a customer without a name".into()))?
        .to_owned();
    let missing = missing_fields(&sent, &saved);
    if !missing.is_empty() {
        return Err(PlaceError::Refused(format!(
            "customer {name} was created, but ERPNext dropped the mapped field(s) {} (no such field on Customer?)",
            missing.join(", ")
        )));
    }
    tracing::info!(customer = %name, "created the order's customer in ERPNext");
    Ok(CustomerRef {
        shipping_address: saved["customer_primary_address"]
            .as_str()
            .map(str::to_owned),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            normalise_email("  Jane.Doe@Example.COM \t"),
            "jane.doe@example.com"
        );
    }

    #[test]
    fn addresses_compare_without_case_or_spaces() {
        let a = PostalAddress {
            line1: "Hauptstraße 1".into(),
            line2: None,
            city: "Berlin".into(),
            postcode: Some("10115".into()),
            country: "DE".into(),
        };
        assert!(same_address(
            &a,
            Some(" hauptstraße 1"),
            Some(""),
            Some("BERLIN"),
            Some("10115")
        ));
        assert!(!same_address(
            &a,
            Some("Hauptstraße 2"),
            None,
            Some("Berlin"),
            Some("10115")
        ));
    }
}
