//! `shoprelay demo` runs to the end: every level and the shipment it announces reach the shop.

#[tokio::test]
async fn the_demo_plays_through() {
    shoprelay::demo::run()
        .await
        .expect("the demo's scenario completes");
}
