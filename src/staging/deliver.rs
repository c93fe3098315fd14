//! Step 5: a Delivery Note mapped from the Sales Order as ERPNext maps it, with carrier and
//! tracking number, and a Shipment for it (pickup from a company Address, found or created
//! once; delivery to the customer's address and contact), both submitted.

use serde_json::{json, Value};

use super::cycle::{now_secs, Cycle};
use super::diagnose::erp_cause;
use super::fields::{number, text};
use super::order::utc_date_and_time;
use super::report::{fail, Outcome};
use crate::erpnext::ErpError;

/// What the line of the report says.
pub(super) const TITLE: &str = "Delivery Note and Shipment submitted";

/// Step 5: a Delivery Note mapped from the order, and a Shipment with carrier and tracking.
pub(super) async fn run(cycle: &mut Cycle<'_>) -> Outcome {
    let so = cycle.created.sales_order.clone().unwrap_or_default();
    let expected = "a submitted Delivery Note mapped from the Sales Order, and a submitted Shipment with carrier and tracking number";
    let mapped = match cycle
        .erp
        .post_method(
            "erpnext.selling.doctype.sales_order.sales_order.make_delivery_note",
            &json!({"source_name": so}),
        )
        .await
    {
        Ok(v) if v.is_object() => v,
        Ok(v) => {
            return fail(
                expected,
                format!("make_delivery_note answered {v}"),
                "ERPNext could not map the Sales Order",
            )
        }
        Err(e) => return fail(expected, format!("make_delivery_note: {e}"), erp_cause(&e)),
    };
    let mut dn = mapped;
    for (k, v) in [
        ("docstatus", json!(1)),
        ("transporter_name", json!(cycle.carrier)),
        ("lr_no", json!(cycle.names.tracking_number)),
        ("lr_date", json!(cycle.today)),
    ] {
        dn[k] = v;
    }
    let dn = match cycle.erp.save_doc("Delivery Note", None, &dn).await {
        Ok(d) => d,
        Err(e) => {
            return fail(
                expected,
                format!("the Delivery Note was refused: {e}"),
                erp_cause(&e),
            )
        }
    };
    let dn_name = text(&dn, "name");
    cycle.created.delivery_note = Some(dn_name.clone());
    let pickup = match pickup_address(cycle).await {
        Ok(a) => a,
        Err(e) => {
            return fail(
                expected,
                format!("no pickup address for the Shipment: {e}"),
                erp_cause(&e),
            )
        }
    };
    let customer = text(&dn, "customer");
    let (address, contact) = customer_address_and_contact(cycle, &customer).await;
    let value = Some(number(&dn, "grand_total"))
        .filter(|v| *v > 0.0)
        .unwrap_or(cycle.money.total());
    let tomorrow = utc_date_and_time(now_secs() + 86_400).0;
    let shipment = json!({
        "pickup_from_type": "Company",
        "pickup_company": cycle.company,
        "pickup_address_name": pickup,
        "delivery_to_type": "Customer",
        "delivery_customer": customer,
        "delivery_address_name": address,
        "delivery_contact_name": contact,
        "pickup_date": tomorrow,
        "value_of_goods": value,
        "description_of_content": format!("shoprelay staging test {}", cycle.names.item_code),
        "shipment_parcel": [{"length": 10, "width": 10, "height": 10, "weight": 1, "count": 1}],
        "shipment_delivery_note": [{"delivery_note": dn_name, "grand_total": value}],
        "carrier": cycle.carrier,
        "carrier_service": "staging test",
        "awb_number": cycle.names.tracking_number,
        "docstatus": 1,
    });
    match cycle.erp.save_doc("Shipment", None, &shipment).await {
        Ok(s) => {
            let name = text(&s, "name");
            cycle.created.shipment = Some(name.clone());
            Outcome::Pass(format!(
                "Delivery Note {dn_name} and Shipment {name} submitted (carrier {}, tracking {})",
                cycle.carrier, cycle.names.tracking_number
            ))
        }
        Err(e) => fail(
            expected,
            format!("Delivery Note {dn_name} submitted; the Shipment was refused: {e}"),
            erp_cause(&e),
        ),
    }
}

/// A company Address for the Shipment's pickup: configured, found, or created once. (Lists
/// filtered on a child table join it, so their order names its table: a bare `creation` is
/// ambiguous to MariaDB.)
async fn pickup_address(cycle: &Cycle<'_>) -> Result<String, ErpError> {
    if let Some(a) = &cycle.settings.staging_test.pickup_address {
        return Ok(a.clone());
    }
    let title = "shoprelay staging-test pickup";
    let found: Vec<Value> = cycle
        .erp
        .list_page(
            "Address",
            &["name"],
            &json!([
                ["Dynamic Link", "link_doctype", "=", "Company"],
                ["Dynamic Link", "link_name", "=", cycle.company]
            ]),
            "`tabAddress`.`creation` asc",
            0,
            1,
        )
        .await?;
    if let Some(a) = found.first() {
        return Ok(text(a, "name"));
    }
    let created = cycle
        .erp
        .save_doc(
            "Address",
            None,
            &json!({
                "address_title": title,
                "address_type": "Shipping",
                "address_line1": "1 Depot Road",
                "city": "Testville",
                "pincode": "12345",
                "country": company_country(cycle).await,
                "is_your_company_address": 1,
                "links": [{"link_doctype": "Company", "link_name": cycle.company}],
            }),
        )
        .await?;
    Ok(text(&created, "name"))
}

async fn company_country(cycle: &Cycle<'_>) -> String {
    match cycle.erp.get_doc::<Value>("Company", &cycle.company).await {
        Ok(Some(c)) => text(&c, "country"),
        _ => String::new(),
    }
}

/// The customer's primary address and contact, else the first linked ones.
async fn customer_address_and_contact(cycle: &Cycle<'_>, customer: &str) -> (String, String) {
    let doc = cycle
        .erp
        .get_doc::<Value>("Customer", customer)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut address = text(&doc, "customer_primary_address");
    let mut contact = text(&doc, "customer_primary_contact");
    let linked = json!([
        ["Dynamic Link", "link_doctype", "=", "Customer"],
        ["Dynamic Link", "link_name", "=", customer]
    ]);
    if address.is_empty() {
        if let Ok(rows) = cycle
            .erp
            .list_page::<Value>(
                "Address",
                &["name"],
                &linked,
                "`tabAddress`.`creation` desc",
                0,
                1,
            )
            .await
        {
            address = rows.first().map(|r| text(r, "name")).unwrap_or_default();
        }
    }
    if contact.is_empty() {
        if let Ok(rows) = cycle
            .erp
            .list_page::<Value>(
                "Contact",
                &["name"],
                &linked,
                "`tabContact`.`creation` desc",
                0,
                1,
            )
            .await
        {
            contact = rows.first().map(|r| text(r, "name")).unwrap_or_default();
        }
    }
    (address, contact)
}
