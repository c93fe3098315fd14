//! The shop contract: `shop check` against the reference shop and against shops that break
//! it; signed pushes (with a rotating secret) through the whole relay.

use crate::common;

use common::{wait_until, Harness, STORES};
use shoprelay::cli::shop_check;
use shoprelay::config::Settings;
use shoprelay_testkit::shop::{MockOptions, Quirk, SHOP_TOKEN};
use shoprelay_testkit::{relay_toml, ShopMock};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_SECRET: &str = "whsec_bmV3LXNlY3JldC1mb3ItdGVzdHMtMDEyMzQ1Njc=";

async fn check_against(quirk: Option<Quirk>) -> (bool, String) {
    let shop = ShopMock::start_with(MockOptions {
        token: SHOP_TOKEN.into(),
        signing_secrets: vec![SECRET.into()],
        quirk,
    })
    .await
    .expect("shop");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = relay_toml("http://127.0.0.1:9", &shop.base_url(), dir.path()).replace(
        "max_batch = 100",
        &format!("max_batch = 100\nsigning_secret = \"{SECRET}\""),
    );
    let settings = Settings::from_toml(&toml, &[]).expect("settings");
    let mut out = Vec::new();
    let ok = shop_check(
        &settings,
        "shoprelay-check",
        &["SHOPRELAY-CHECK-1".into(), "SHOPRELAY-CHECK-2".into()],
        &mut out,
    )
    .await
    .expect("check runs");
    shop.stop().await;
    (ok, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn the_reference_shop_passes_every_rule() {
    let (ok, text) = check_against(None).await;
    assert!(ok, "{text}");
    assert!(!text.contains("FAIL") && !text.contains("SKIP"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with("PASS"))
            .count(),
        11,
        "{text}"
    );
    assert!(
        text.contains("verdict: the shop keeps the contract"),
        "{text}"
    );
}

#[tokio::test]
async fn a_shop_that_ignores_the_signature_fails_that_rule() {
    let (ok, text) = check_against(Some(Quirk::IgnoresSignature)).await;
    assert!(!ok);
    assert!(
        text.contains(
            "FAIL  signature: a wrongly signed request is refused (401 or 403): accepted it"
        ),
        "{text}"
    );
    assert!(text.contains("verdict: 1 rule(s) broken"), "{text}");
}

#[tokio::test]
async fn a_shop_that_answers_200_to_garbage_fails_the_error_rules() {
    let (ok, text) = check_against(Some(Quirk::AcceptsGarbage)).await;
    assert!(!ok);
    assert!(
        text.contains(
            "FAIL  errors: a body that breaks the contract is refused (400 or 422): accepted it"
        ),
        "{text}"
    );
    assert!(
        text.contains("FAIL  errors: a negative level is refused"),
        "{text}"
    );
}

#[tokio::test]
async fn a_shop_that_adds_levels_up_fails_the_absolute_rule() {
    let (ok, text) = check_against(Some(Quirk::LevelsAsDeltas)).await;
    assert!(!ok);
    assert!(
        text.contains(
            "FAIL  levels: are absolute (set 7 twice, read back 7): SHOPRELAY-CHECK-1 shows 14"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn pushes_are_signed_and_a_rotating_secret_keeps_them_verified() {
    // The relay signs with the new and the old secret; the shop still knows only the old one.
    let h = Harness::start_signed(&[NEW_SECRET, SECRET], SECRET).await;
    h.deliver(h.erp.stock_move("SOFA", STORES, 3.0).expect("move"))
        .await;
    wait_until(
        "SOFA",
        || h.shop.level("web", "SOFA") == Some(3),
        || {
            format!(
                "{:?}",
                h.shop
                    .requests()
                    .iter()
                    .map(|r| r.status)
                    .collect::<Vec<_>>()
            )
        },
    )
    .await;
    for r in h.shop.requests() {
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("webhook-signature").map(|s| s.split(' ').count()),
            Some(2)
        );
        assert!(r
            .header("webhook-id")
            .is_some_and(|id| id.starts_with("msg_")));
        assert!(r.header("webhook-timestamp").is_some());
    }
    h.stop().await;
}
