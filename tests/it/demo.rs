//! `shoprelay demo` runs to the end: every level and the shipment it announces reach the shop.

#[test]
fn the_demo_plays_through() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoprelay"))
        .arg("demo")
        .output()
        .expect("run shoprelay demo");
    assert!(
        out.status.success(),
        "the demo's scenario completes: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
