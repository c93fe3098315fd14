//! The admin pages in a real browser (headless Chromium through chromedriver): sign-in, the
//! status, a channel edited and the shop following, a dead letter retried once the shop is
//! fixed, a wrong token and a form without its CSRF token refused. Skipped, saying so, where
//! Chromium is not installed (`.ci/run` installs it and makes its absence a failure).

use crate::common;

use crate::common::webdriver::{browser_or_skip, Browser};
use common::{wait_until, Harness, STORES};
use shoprelay::startup::Workers;
use shoprelay_testkit::shop::Scripted;

async fn sign_in(b: &Browser, h: &Harness) {
    b.goto(&h.url("/admin/")).await;
    b.fill("#token", "admin-token-0123456789").await;
    b.click("#sign-in").await;
    b.find("#verdict").await;
}

#[tokio::test]
async fn an_admin_signs_in_and_sees_the_status_and_strangers_do_not() {
    let Some((driver, chromium)) = browser_or_skip("browser status test") else {
        return;
    };
    let h = Harness::start(Workers::Background).await;
    h.deliver(h.erp.stock_move("CHAIR", STORES, 7.0).expect("move"))
        .await;
    h.wait_level("web", "CHAIR", 7).await;
    let b = Browser::start(&driver, &chromium).await;

    // Without a session, the page sends the browser to the sign-in form.
    b.goto(&h.url("/admin/ui/channels")).await;
    assert!(b.url().await.ends_with("/admin/login"), "{}", b.url().await);

    // A wrong token is refused, and no session cookie is set.
    b.fill("#token", "not-the-token").await;
    b.click("#sign-in").await;
    b.wait_text("That is not the admin token.").await;
    assert!(b.cookies().await.is_empty(), "{:?}", b.cookies().await);

    // The right one opens the status page.
    b.fill("#token", "admin-token-0123456789").await;
    b.click("#sign-in").await;
    let verdict = b.find("#verdict").await;
    assert!(
        b.text_of(&verdict).await.starts_with("Healthy"),
        "{}",
        b.text().await
    );
    let text = b.text().await;
    assert!(text.contains("ERPNext reachable"), "{text}");
    assert!(text.contains("Shop reachable"), "{text}");
    assert!(
        !b.text_of(&b.find("#last-webhook").await)
            .await
            .contains("none"),
        "{text}"
    );
    assert!(
        !b.text_of(&b.find("#last-push").await)
            .await
            .contains("none"),
        "{text}"
    );
    assert!(!b.url().await.contains("admin-token-0123456789"));
    let cookies = b.cookies().await;
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_eq!(cookies[0]["httpOnly"], true, "{cookies:?}");
    assert_eq!(cookies[0]["sameSite"], "Strict", "{cookies:?}");
    assert!(!cookies[0]["value"]
        .as_str()
        .unwrap_or_default()
        .contains("admin-token-0123456789"));

    // The SKU lookup shows the Bin, the level and what the shop was sent.
    b.goto(&h.url("/admin/ui/sku?sku=CHAIR")).await;
    let levels = b.text_of(&b.find("#channel-levels").await).await;
    assert!(levels.contains("web 7 7 (accepted)"), "{levels}");
    let bins = b.text_of(&b.find("#bins").await).await;
    assert!(bins.contains(STORES), "{bins}");

    // A full reconcile pass, started from the page, which follows it until it ends.
    b.goto(&h.url("/admin/")).await;
    b.click("input[name=full]").await;
    b.click("#reconcile-now").await;
    b.wait_text("Last pass (full): ended").await;
    let last = b.text_of(&b.find("#reconcile-last").await).await;
    assert!(last.contains("Bins in 1 page(s)"), "{last}");
    assert!(b.try_find("#reconcile-running").await.is_none());

    // A form that lost its CSRF token is refused and changes nothing.
    b.goto(&h.url("/admin/")).await;
    b.script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
        .await;
    b.click("#reconcile-now").await;
    b.wait_text("Form refused").await;
    assert!(b.text().await.contains("no valid security token"));
    h.stop().await;
}

#[tokio::test]
async fn an_admin_edits_a_channel_and_the_shop_follows() {
    let Some((driver, chromium)) = browser_or_skip("browser channel test") else {
        return;
    };
    let h = Harness::start(Workers::Background).await;
    h.deliver(h.erp.stock_move("LAMP", STORES, 12.0).expect("move"))
        .await;
    h.wait_level("web", "LAMP", 12).await;
    h.wait_level("marketplace", "LAMP", 10).await;
    let b = Browser::start(&driver, &chromium).await;
    sign_in(&b, &h).await;
    b.goto(&h.url("/admin/ui/channels")).await;

    // A bad buffer is refused next to its field, and nothing is saved.
    b.fill("input[name='ch0.buffer']", "lots").await;
    b.click("#save-button").await;
    let err = b.find("#err-0-buffer").await;
    assert_eq!(b.text_of(&err).await, "must be a number of 0 or more");

    // Preview first: web keeps back 5 from now on.
    b.fill("input[name='ch0.buffer']", "5").await;
    b.fill("#preview-items", "LAMP").await;
    b.click("#preview-button").await;
    let preview = b.text_of(&b.find("#preview").await).await;
    assert!(preview.contains("LAMP web 12 7"), "{preview}");
    assert!(preview.contains("LAMP marketplace 10 10"), "{preview}");
    assert_eq!(
        h.shop.level("web", "LAMP"),
        Some(12),
        "a preview saves nothing"
    );

    // Then rename marketplace to outlet and save: the shop follows.
    b.fill("input[name='ch1.name']", "outlet").await;
    b.click("#save-button").await;
    b.find("#saved").await;
    h.wait_level("web", "LAMP", 7).await;
    h.wait_level("outlet", "LAMP", 10).await;
    b.goto(&h.url("/admin/ui/channels")).await;
    let html = b.source().await;
    assert!(
        html.contains("value=\"outlet\""),
        "the saved mapping is shown"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_admin_retries_a_dead_letter_once_the_shop_is_fixed() {
    let Some((driver, chromium)) = browser_or_skip("browser dead letter test") else {
        return;
    };
    let h = Harness::start(Workers::Background).await;
    // The shop refuses the first push for good (a 422 is not retried).
    h.shop.script([Scripted::status(422)]);
    h.deliver(h.erp.stock_move("DESK", STORES, 3.0).expect("move"))
        .await;
    wait_until(
        "a dead letter",
        || h.relay.store.depths().dead > 0,
        || format!("{:?}", h.relay.store.depths()),
    )
    .await;
    // Channels are pushed in name order: marketplace's push met the 422; web's went through.
    let b = Browser::start(&driver, &chromium).await;
    sign_in(&b, &h).await;
    assert!(
        b.text().await.contains("Needs attention"),
        "{}",
        b.text().await
    );
    b.goto(&h.url("/admin/ui/dead-letters")).await;
    let table = b.text_of(&b.find("#dead-letters").await).await;
    assert!(table.contains("scripted 422"), "{table}");
    assert!(table.contains("DESK = "), "{table}");

    // The shop is fixed (its script is used up): retry.
    b.click("#dead-letters button.retry").await;
    b.find("#done").await;
    b.find("#no-dead-letters").await;
    wait_until(
        "the retried levels",
        || h.shop.level("web", "DESK") == Some(3) && h.shop.level("marketplace", "DESK") == Some(1),
        || format!("{:?}", h.shop.levels()),
    )
    .await;
    b.goto(&h.url("/admin/")).await;
    assert!(b
        .text_of(&b.find("#verdict").await)
        .await
        .starts_with("Healthy"));
    h.stop().await;
}
