//! The order worker against the ERPNext emulator over real HTTP: a shop order becomes one
//! Customer (found by email or created) and one submitted Sales Order with the shop's money.

use serde_json::{json, Value};
use shoprelay::config::Settings;
use shoprelay::erpnext::ErpClient;
use shoprelay::orders::model::{OrderSettings, ShopOrder};
use shoprelay::orders::worker::{place, OrderContext, PlaceError, Placed};
use shoprelay_testkit::{relay_toml, ErpEmulator};

const STORES: &str = "Stores - ACME";

struct Site {
    erp: ErpEmulator,
    ctx: OrderContext,
    _dir: tempfile::TempDir,
}

/// The lab's order settings, plus an order field mapping.
fn settings() -> OrderSettings {
    let mut s = crate::lab::orders::order_settings();
    s.fields
        .order
        .insert("gift_note".into(), "shop_gift_note".into());
    s
}

async fn site_with(edit: impl FnOnce(&mut OrderContext)) -> Site {
    let erp = crate::common::emulator().await;
    erp.add_item("SKU-1", Some(12.0), &[]);
    erp.add_item("SKU-2", Some(5.0), &[]);
    erp.add_custom_field("Customer", "shop_loyalty_tier");
    erp.add_custom_field("Sales Order", "shop_gift_note");
    erp.add_custom_field("Sales Order Item", "shop_assembly_required");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = relay_toml(&erp.url(), "http://127.0.0.1:9", &dir.path().join("data"));
    let s = Settings::from_toml(&toml, &[]).expect("settings");
    let mut ctx = OrderContext {
        erp: ErpClient::new(&s.erpnext).expect("client"),
        settings: settings(),
        order_id_field: "po_no".into(),
        sku_field: None,
    };
    edit(&mut ctx);
    Site {
        erp,
        ctx,
        _dir: dir,
    }
}

async fn site() -> Site {
    site_with(|_| {}).await
}

fn order(id: &str, email: &str) -> ShopOrder {
    serde_json::from_value(json!({
        "order_id": id,
        "channel": "web",
        "placed_at": "2026-11-29T10:15:00Z",
        "currency": "USD",
        "customer": {"email": email, "first_name": "Jane", "last_name": "Doe", "phone": "+1 555 0100"},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postcode": "12345", "country": "US"},
        "lines": [{"sku": "SKU-1", "qty": 2, "unit_price": 12.0}],
        "total": 24.0
    }))
    .expect("order")
}

impl Site {
    async fn place(&self, o: &ShopOrder) -> Result<Placed, PlaceError> {
        place(&self.ctx, o, Some(STORES)).await
    }

    fn so(&self, name: &str) -> Value {
        self.erp.doc("Sales Order", name).expect("sales order")
    }

    fn reserved(&self, item: &str) -> f64 {
        self.erp
            .bin(item, STORES)
            .and_then(|b| b["reserved_qty"].as_f64())
            .unwrap_or(0.0)
    }

    /// The REST calls made while `f` ran.
    async fn calls_during<T>(&self, f: impl std::future::Future<Output = T>) -> (T, Vec<String>) {
        let before = self.erp.calls().len();
        let out = f.await;
        (out, self.erp.calls()[before..].to_vec())
    }
}

fn refused(r: Result<Placed, PlaceError>) -> String {
    match r {
        Err(PlaceError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_customer_with_international_characters_arrives_byte_for_byte() {
    let site = site().await;
    let mut o = order("WEB-1001", "jurgen@example.com");
    o.customer.first_name = Some("Jürgen".into());
    o.customer.last_name = Some("Straße «Ação» 山田".into());
    o.shipping_address.line1 = "Rua São João «12», 山田ビル".into();
    o.shipping_address.city = "São Paulo".into();
    o.shipping_address.country = "br".into();
    let (placed, calls) = site.calls_during(site.place(&o)).await;
    let placed = placed.expect("placed");
    assert!(placed.created);
    assert_eq!(placed.customer, "Jürgen Straße «Ação» 山田");
    let c = site
        .erp
        .doc("Customer", &placed.customer)
        .expect("customer");
    assert_eq!(c["customer_name"], json!("Jürgen Straße «Ação» 山田"));
    assert_eq!(c["email_id"], json!("jurgen@example.com"));
    assert_eq!(c["customer_group"], json!("Individual"));
    let addr = site
        .erp
        .doc(
            "Address",
            c["customer_primary_address"].as_str().expect("address"),
        )
        .expect("address doc");
    assert_eq!(addr["address_line1"], json!("Rua São João «12», 山田ビル"));
    assert_eq!(addr["city"], json!("São Paulo"));
    assert_eq!(addr["country"], json!("Brazil"));
    let contacts = site.erp.docs_of("Contact");
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        contacts[0]["email_ids"][0]["email_id"],
        json!("jurgen@example.com")
    );
    let so = site.so(&placed.sales_order);
    assert_eq!(so["customer"], json!("Jürgen Straße «Ação» 山田"));
    assert_eq!(so["po_no"], json!("WEB-1001"));
    assert_eq!(so["docstatus"], json!(1));
    assert_eq!(so["status"], json!("To Deliver and Bill"));
    assert_eq!(so["delivery_date"], json!("2026-12-02"));
    assert_eq!(so["shipping_address_name"], addr["name"]);
    assert_eq!(site.reserved("SKU-1"), 2.0);
    let fired: Vec<String> = site
        .erp
        .take_order_deliveries()
        .into_iter()
        .map(|d| d.webhook)
        .collect();
    assert!(
        fired.iter().any(|w| w.contains("Sales Order on_submit")),
        "{fired:?}"
    );
    // Order lookup, Customer by email, Contacts by email, Country, Customer, Sales Order.
    assert_eq!(calls.len(), 6, "{calls:#?}");
}

#[tokio::test]
async fn a_returning_customer_is_found_whatever_the_case_and_spaces_of_the_email() {
    let site = site().await;
    let first = site
        .place(&order("WEB-2001", "jane@example.com"))
        .await
        .expect("first");
    let mut again = order("WEB-2002", "  JANE@Example.COM ");
    again.customer.first_name = Some("Janet".into());
    let (second, calls) = site.calls_during(site.place(&again)).await;
    let second = second.expect("second");
    assert_eq!(second.customer, first.customer);
    assert_ne!(second.sales_order, first.sales_order);
    assert_eq!(site.erp.docs_of("Customer").len(), 1);
    // ERPNext's data is not overwritten by the newer name.
    assert_eq!(
        site.erp.doc("Customer", &first.customer).expect("c")["customer_name"],
        json!("Jane Doe")
    );
    assert_eq!(
        calls,
        vec![
            "GET /api/resource/Sales Order",
            "GET /api/resource/Customer",
            "POST /api/resource/Sales Order"
        ],
        "a returning customer costs three calls"
    );
}

#[tokio::test]
async fn a_customer_known_only_by_a_contact_email_is_found() {
    let site = site().await;
    let first = site
        .place(&order("WEB-2101", "jane@example.com"))
        .await
        .expect("first");
    // Someone in ERPNext cleared the Customer's email: the Contact still has it.
    let client = &site.ctx.erp;
    client
        .save_doc("Customer", Some(&first.customer), &json!({"email_id": ""}))
        .await
        .expect("clear email");
    let second = site
        .place(&order("WEB-2102", "Jane@example.com"))
        .await
        .expect("second");
    assert_eq!(second.customer, first.customer);
    assert_eq!(site.erp.docs_of("Customer").len(), 1);
}

#[tokio::test]
async fn a_new_shipping_address_is_added_to_a_returning_customer() {
    let site = site().await;
    let first = site
        .place(&order("WEB-3001", "jane@example.com"))
        .await
        .expect("first");
    let mut moved = order("WEB-3002", "jane@example.com");
    moved.shipping_address.line1 = "9 Elm Road".into();
    moved.shipping_address.city = "Berlin".into();
    moved.shipping_address.country = "DE".into();
    let second = site.place(&moved).await.expect("second");
    let addresses = site.erp.docs_of("Address");
    assert_eq!(addresses.len(), 2);
    let new = addresses
        .iter()
        .find(|a| a["address_line1"] == json!("9 Elm Road"))
        .expect("new address");
    assert_eq!(new["country"], json!("Germany"));
    assert_eq!(new["links"][0]["link_name"], json!(first.customer));
    assert_eq!(
        site.so(&second.sales_order)["shipping_address_name"],
        new["name"]
    );
    // The next order to that address finds it instead of adding another.
    let mut third = moved.clone();
    third.order_id = "WEB-3003".into();
    site.place(&third).await.expect("third");
    assert_eq!(site.erp.docs_of("Address").len(), 2);
}

#[tokio::test]
async fn an_unknown_sku_is_a_refusal_naming_it() {
    let site = site().await;
    let mut o = order("WEB-4001", "jane@example.com");
    o.lines[0].sku = "NO-SUCH-SKU".into();
    let msg = refused(site.place(&o).await);
    assert!(msg.contains("NO-SUCH-SKU"), "{msg}");
    assert!(site.erp.docs_of("Sales Order").is_empty());

    // Through an Item field holding the SKU, the relay names the SKU itself.
    let site = site_with(|c| c.sku_field = Some("shop_sku".into())).await;
    site.erp.add_custom_field("Item", "shop_sku");
    site.erp
        .add_item("ITEM-RED", Some(12.0), &[("shop_sku", json!("RED-1"))]);
    let mut o = order("WEB-4002", "jane@example.com");
    o.lines[0].sku = "RED-1".into();
    let placed = site.place(&o).await.expect("mapped SKU");
    assert_eq!(
        site.so(&placed.sales_order)["items"][0]["item_code"],
        json!("ITEM-RED")
    );
    o.order_id = "WEB-4003".into();
    o.lines[0].sku = "BLUE-9".into();
    let msg = refused(site.place(&o).await);
    assert!(msg.contains("BLUE-9"), "{msg}");
}

#[tokio::test]
async fn bespoke_fields_arrive_in_custom_fields() {
    let site = site().await;
    let o: ShopOrder = serde_json::from_value(json!({
        "order_id": "WEB-5001", "channel": "web", "placed_at": "2026-11-29T10:15:00Z",
        "currency": "USD",
        "customer": {"email": "gold@example.com", "first_name": "Gil", "last_name": "Gold",
                     "fields": {"loyalty_tier": "Gold", "unmapped": 1}},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "lines": [{"sku": "SKU-1", "qty": 1, "unit_price": 12.0, "fields": {"assembly_required": 1}},
                  {"sku": "SKU-2", "qty": 1, "unit_price": 5.0}],
        "fields": {"gift_note": "Alles Gute «zum» Geburtstag"}
    }))
    .expect("order");
    let placed = site.place(&o).await.expect("placed");
    let c = site
        .erp
        .doc("Customer", &placed.customer)
        .expect("customer");
    assert_eq!(c["shop_loyalty_tier"], json!("Gold"));
    let so = site.so(&placed.sales_order);
    assert_eq!(so["shop_gift_note"], json!("Alles Gute «zum» Geburtstag"));
    assert_eq!(so["items"][0]["shop_assembly_required"], json!(1));
    assert_eq!(so["items"][1]["shop_assembly_required"], Value::Null);
}

#[tokio::test]
async fn a_mapped_field_erpnext_lacks_refuses_the_order_and_takes_the_sales_order_back() {
    let site = site_with(|c| {
        c.settings
            .fields
            .order
            .insert("channel_ref".into(), "shop_channel_ref".into());
    })
    .await;
    let mut o = order("WEB-5101", "jane@example.com");
    o.fields.insert("channel_ref".into(), json!("abc"));
    let msg = refused(site.place(&o).await);
    assert!(msg.contains("shop_channel_ref"), "{msg}");
    assert!(msg.contains("cancelled"), "{msg}");
    let so = &site.erp.docs_of("Sales Order")[0];
    assert_eq!(so["docstatus"], json!(2));
    assert_eq!(site.reserved("SKU-1"), 0.0);
}

#[tokio::test]
async fn totals_with_line_and_order_discounts_and_shipping_match_to_the_cent() {
    let site = site().await;
    let o: ShopOrder = serde_json::from_value(json!({
        "order_id": "WEB-6001", "channel": "web", "placed_at": "2026-11-29T23:30:00-02:00",
        "currency": "USD",
        "customer": {"email": "jane@example.com", "first_name": "Jane", "last_name": "Doe"},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "lines": [{"sku": "SKU-1", "qty": 3, "unit_price": 10.0, "discount": 1.0},
                  {"sku": "SKU-2", "qty": 1, "unit_price": 5.5},
                  {"sku": "SKU-2", "qty": 1, "unit_price": 5.0, "discount": 5.0}],
        "discount_total": 2.0,
        "shipping": {"method": "DHL Express", "amount": 4.95},
        "total": 37.45
    }))
    .expect("order");
    let placed = site.place(&o).await.expect("placed");
    let so = site.so(&placed.sales_order);
    assert_eq!(so["grand_total"], json!(37.45));
    assert_eq!(so["items"][0]["rate"], json!(9.67));
    assert_eq!(so["items"][0]["price_list_rate"], json!(10.0));
    assert_eq!(so["items"][1]["rate"], json!(5.5));
    assert_eq!(so["items"][2]["rate"], json!(0.0), "a free line stays free");
    assert_eq!(so["discount_amount"], json!(2.01));
    assert_eq!(so["apply_discount_on"], json!("Net Total"));
    assert_eq!(so["taxes"][0]["charge_type"], json!("Actual"));
    assert_eq!(
        so["taxes"][0]["account_head"],
        json!("Freight and Forwarding Charges - ACME")
    );
    assert_eq!(
        so["taxes"][0]["description"],
        json!("Shipping (DHL Express)")
    );
    assert_eq!(so["taxes"][0]["tax_amount"], json!(4.95));
    // placed_at 23:30 at UTC-2 is the 30th in UTC; three days' lead time.
    assert_eq!(so["transaction_date"], json!("2026-11-30"));
    assert_eq!(so["delivery_date"], json!("2026-12-03"));
}

#[tokio::test]
async fn a_grand_total_other_than_the_shop_total_is_refused_with_both_and_the_order_cancelled() {
    let site = site().await;
    site.erp.set_site_charge(1.5);
    let o = order("WEB-6101", "jane@example.com");
    let msg = refused(site.place(&o).await);
    assert!(
        msg.contains("grand total is 25.50, the shop's total is 24.00"),
        "{msg}"
    );
    assert!(msg.contains("was cancelled"), "{msg}");
    assert_eq!(site.erp.docs_of("Sales Order")[0]["docstatus"], json!(2));
    assert_eq!(site.reserved("SKU-1"), 0.0);
    // Once the site is fixed, a retry creates the order (the cancelled one does not count).
    site.erp.set_site_charge(0.0);
    let placed = site.place(&o).await.expect("placed after the fix");
    assert!(placed.created);
    assert_eq!(site.reserved("SKU-1"), 2.0);
}

#[tokio::test]
async fn an_active_pricing_rule_does_not_change_the_shop_price() {
    let site = site().await;
    site.erp.set_pricing_rule(Some(50.0));
    let placed = site
        .place(&order("WEB-7001", "jane@example.com"))
        .await
        .expect("placed");
    let so = site.so(&placed.sales_order);
    assert_eq!(so["items"][0]["rate"], json!(12.0));
    assert_eq!(so["grand_total"], json!(24.0));
}

#[tokio::test]
async fn a_validation_answer_is_refused_with_erpnext_message_decoded() {
    let site = site_with(|c| c.settings.customer_group = "Retail".into()).await;
    let msg = refused(site.place(&order("WEB-8001", "jane@example.com")).await);
    assert!(
        msg.contains("417") && msg.contains("Could not find Customer Group: Retail"),
        "{msg}"
    );
    let site = site_with(|c| c.settings.shipping_account = Some("No Such - ACME".into())).await;
    let mut o = order("WEB-8002", "jane@example.com");
    o.shipping = Some(serde_json::from_value(json!({"method": "UPS", "amount": 5.0})).expect("s"));
    o.total = Some(29.0);
    let msg = refused(site.place(&o).await);
    assert!(
        msg.contains("Account No Such - ACME does not belong to company ACME"),
        "{msg}"
    );
    assert!(!msg.contains('<'), "HTML is stripped: {msg}");
    assert!(site.erp.docs_of("Sales Order").is_empty());
}

#[tokio::test]
async fn an_order_placed_again_finds_its_sales_order_instead_of_creating_a_second() {
    let site = site().await;
    let o = order("WEB-9001", "jane@example.com");
    let first = site.place(&o).await.expect("first");
    let (again, calls) = site.calls_during(site.place(&o)).await;
    let again = again.expect("again");
    assert!(!again.created);
    assert_eq!(again.sales_order, first.sales_order);
    assert_eq!(again.customer, first.customer);
    assert_eq!(site.erp.docs_of("Sales Order").len(), 1);
    assert_eq!(calls, vec!["GET /api/resource/Sales Order"]);
    assert_eq!(site.reserved("SKU-1"), 2.0);
}

#[tokio::test]
async fn erpnext_down_keeps_the_order_owed_until_it_is_back() {
    let site = site().await;
    let o = order("WEB-9101", "jane@example.com");
    site.erp.set_rest_down(true);
    assert!(matches!(
        site.place(&o).await,
        Err(PlaceError::Unavailable(_))
    ));
    site.erp.set_rest_down(false);
    assert!(site.erp.docs_of("Customer").is_empty());
    let placed = site.place(&o).await.expect("placed once back");
    assert!(placed.created);
}

#[tokio::test]
async fn a_customer_create_lost_to_a_race_uses_the_customer_that_won() {
    let site = site().await;
    site.erp.lose_next_customer_race();
    let placed = site
        .place(&order("WEB-9201", "jane@example.com"))
        .await
        .expect("placed");
    assert_eq!(site.erp.docs_of("Customer").len(), 1);
    assert_eq!(placed.customer, "Jane Doe");
}

#[tokio::test]
async fn a_draft_is_left_when_submit_is_off_and_submitted_when_it_is_placed_again_with_submit_on() {
    let mut site = site_with(|c| c.settings.submit = false).await;
    let o = order("WEB-9301", "jane@example.com");
    let placed = site.place(&o).await.expect("draft");
    assert_eq!(site.so(&placed.sales_order)["docstatus"], json!(0));
    assert_eq!(site.reserved("SKU-1"), 0.0);
    site.ctx.settings.submit = true;
    let again = site.place(&o).await.expect("submitted");
    assert_eq!(again.sales_order, placed.sales_order);
    let so = site.so(&placed.sales_order);
    assert_eq!(so["docstatus"], json!(1));
    assert_eq!(so["status"], json!("To Deliver and Bill"));
    assert_eq!(site.reserved("SKU-1"), 2.0);
}

#[tokio::test]
async fn the_emulator_answers_orders_as_erpnext_does() {
    let site = site().await;
    let erp = &site.ctx.erp;
    erp.save_doc(
        "Customer",
        None,
        &json!({"customer_name": "Acme Corp", "email_id": "Ops@Acme.example "}),
    )
    .await
    .expect("customer");
    // A sequential duplicate name is renamed.
    let dup = erp
        .save_doc("Customer", None, &json!({"customer_name": "Acme Corp"}))
        .await
        .expect("dup");
    assert_eq!(dup["name"], json!("Acme Corp - 1"));
    // Email filters: case-insensitive, trailing spaces ignored, leading ones not.
    let found: Vec<Value> = erp
        .list_page(
            "Customer",
            &["name"],
            &json!([["email_id", "=", "ops@acme.example"]]),
            "name asc",
            0,
            20,
        )
        .await
        .expect("list");
    assert_eq!(found.len(), 1);
    let none: Vec<Value> = erp
        .list_page(
            "Customer",
            &["name"],
            &json!([["email_id", "=", " ops@acme.example"]]),
            "name asc",
            0,
            20,
        )
        .await
        .expect("list");
    assert!(none.is_empty());
    let bad = erp
        .list_page::<Value>(
            "Customer",
            &["name"],
            &json!([["shop_no_such", "=", 1]]),
            "name asc",
            0,
            1,
        )
        .await
        .expect_err("unknown field");
    assert!(
        bad.to_string().contains("Field not permitted in query"),
        "{bad}"
    );
    // A join (child-table filter) makes an unqualified standard column ambiguous.
    let join = json!([["Contact Email", "email_id", "=", "ops@acme.example"]]);
    let ambiguous = erp
        .list_page::<Value>("Contact", &["name"], &join, "creation asc", 0, 1)
        .await
        .expect_err("ambiguous");
    assert!(ambiguous.to_string().contains("ambiguous"), "{ambiguous}");
    let contacts: Vec<Value> = erp
        .list_page(
            "Contact",
            &["name"],
            &join,
            "`tabContact`.`creation` asc",
            0,
            1,
        )
        .await
        .expect("qualified");
    assert_eq!(contacts.len(), 1);
    // One-step submit keeps "Draft"; rate 0 becomes the list price; unknown fields vanish.
    let so = erp
        .save_doc(
            "Sales Order",
            None,
            &json!({"customer": "Acme Corp", "delivery_date": "2026-12-05", "po_no": "P-1",
                    "docstatus": 1, "no_such_field": "x",
                    "items": [{"item_code": "SKU-1", "qty": 1, "rate": 0}]}),
        )
        .await
        .expect("so");
    assert_eq!(so["status"], json!("Draft"));
    assert_eq!(so["items"][0]["rate"], json!(12.0));
    assert!(so.get("no_such_field").is_none());
    // The same po_no for the same customer is refused; for another customer it is not.
    let again = erp
        .save_doc(
            "Sales Order",
            None,
            &json!({"customer": "Acme Corp", "delivery_date": "2026-12-05", "po_no": "p-1 ",
                    "items": [{"item_code": "SKU-1", "qty": 1, "rate": 5}]}),
        )
        .await
        .expect_err("duplicate po_no");
    assert!(
        again
            .to_string()
            .contains("already exists against Customer's Purchase Order"),
        "{again}"
    );
    erp.save_doc(
        "Sales Order",
        None,
        &json!({"customer": "Acme Corp - 1", "delivery_date": "2026-12-05", "po_no": "P-1",
                "items": [{"item_code": "SKU-1", "qty": 1, "rate": 5}]}),
    )
    .await
    .expect("other customer");
    let unknown = erp
        .save_doc(
            "Sales Order",
            None,
            &json!({"customer": "Acme Corp", "delivery_date": "2026-12-05",
                    "items": [{"item_code": "NOPE", "qty": 1, "rate": 5}]}),
        )
        .await
        .expect_err("unknown item");
    assert!(unknown.to_string().contains("404"), "{unknown}");
}

#[tokio::test]
async fn erpnext_check_reports_the_order_settings() {
    let site = site().await;
    let findings = shoprelay::orders::check::check(&site.ctx.erp, &site.ctx.settings).await;
    assert!(findings.iter().all(|f| f.ok), "{findings:#?}");
    let mut bad = settings();
    bad.customer_group = "All Customer Groups".into();
    bad.territory = "Mars".into();
    bad.shipping_account = Some("Nope - ACME".into());
    bad.fields
        .line
        .insert("colour".into(), "shop_colour".into());
    let findings = shoprelay::orders::check::check(&site.ctx.erp, &bad).await;
    let failed: Vec<&str> = findings
        .iter()
        .filter(|f| !f.ok)
        .map(|f| f.text.as_str())
        .collect();
    assert_eq!(failed.len(), 4, "{failed:#?}");
    assert!(
        failed.iter().any(|t| t.contains("is a group")),
        "{failed:#?}"
    );
    assert!(
        failed.iter().any(|t| t.contains("shop_colour")),
        "{failed:#?}"
    );
}
