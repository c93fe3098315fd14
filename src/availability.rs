//! Pure: Bin rows and the channel map become the sellable quantity per channel (the policies are in docs/operations.md).
//! A channel and its policy are defined here, as what a level is computed from; the file's
//! `[[channels]]` and the admin's mapping are lists of them.

use serde::{Deserialize, Serialize};

use crate::model::BinRow;

/// How a channel turns a Bin into a sellable quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// `actual_qty` minus every reservation.
    #[default]
    ActualMinusReserved,
    /// `actual_qty` as it is.
    Actual,
    /// `projected_qty` as it is.
    Projected,
}

/// One sales channel of the shop and the warehouses that feed it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    pub warehouses: Vec<String>,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub buffer: f64,
}

/// Quantities are floats in ERPNext (fractional UOMs); round to this many decimals before
/// rounding down, so that `2.9999999999` from float sums counts as 3.
const DECIMALS: f64 = 1e6;

/// What one warehouse's Bin contributes under `policy`.
pub fn warehouse_sellable(bin: &BinRow, policy: Policy) -> f64 {
    match policy {
        Policy::ActualMinusReserved => {
            bin.actual_qty
                - bin.reserved_qty
                - bin.reserved_qty_for_production
                - bin.reserved_qty_for_sub_contract
                - bin.reserved_qty_for_production_plan
        }
        Policy::Actual => bin.actual_qty,
        Policy::Projected => bin.projected_qty,
    }
}

/// The level a channel shows for one item: the sum over the channel's warehouses (a missing
/// Bin counts 0), minus the buffer, rounded down to a whole number, never below 0.
pub fn channel_level<'a>(channel: &Channel, bin_of: impl Fn(&str) -> Option<&'a BinRow>) -> u64 {
    let total: f64 = channel
        .warehouses
        .iter()
        .filter_map(|w| bin_of(w))
        .map(|b| warehouse_sellable(b, channel.policy))
        .filter(|v| v.is_finite())
        .sum();
    let net = ((total - channel.buffer) * DECIMALS).round() / DECIMALS;
    if net.is_finite() && net > 0.0 {
        // Saturating float-to-int conversion; levels beyond u64 do not occur in practice.
        net.floor() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bin(wh: &str, actual: f64, reserved: f64, projected: f64) -> BinRow {
        BinRow {
            item_code: "A".into(),
            warehouse: wh.into(),
            actual_qty: actual,
            reserved_qty: reserved,
            projected_qty: projected,
            ..BinRow::default()
        }
    }

    fn channel(policy: Policy, buffer: f64, warehouses: &[&str]) -> Channel {
        Channel {
            name: "web".into(),
            warehouses: warehouses.iter().map(|s| s.to_string()).collect(),
            policy,
            buffer,
        }
    }

    fn level(ch: &Channel, bins: &[BinRow]) -> u64 {
        channel_level(ch, |w| bins.iter().find(|b| b.warehouse == w))
    }

    #[test]
    fn worked_example_of_design_section_3() {
        let mut b1 = bin("W1", 42.0, 5.0, 47.0);
        b1.reserved_qty_for_production = 2.0;
        b1.reserved_qty_for_sub_contract = 1.0;
        b1.reserved_qty_for_production_plan = 0.5;
        let b2 = bin("W2", 10.0, 0.0, 10.0);
        let bins = [b1, b2];
        // (42 - 5 - 2 - 1 - 0.5) + 10 - 3 = 40.5 -> 40
        assert_eq!(
            level(
                &channel(Policy::ActualMinusReserved, 3.0, &["W1", "W2"]),
                &bins
            ),
            40
        );
        assert_eq!(
            level(&channel(Policy::Actual, 0.0, &["W1", "W2"]), &bins),
            52
        );
        assert_eq!(level(&channel(Policy::Projected, 0.0, &["W1"]), &bins), 47);
        assert_eq!(
            level(&channel(Policy::Actual, 0.0, &["W1", "Missing"]), &bins),
            42
        );
        assert_eq!(level(&channel(Policy::Actual, 0.0, &["Missing"]), &bins), 0);
    }

    #[test]
    fn float_noise_does_not_lose_a_unit() {
        let bins = [bin("W1", 0.1 + 0.2, 0.0, 0.0), bin("W2", 2.7, 0.0, 0.0)];
        // 0.30000000000000004 + 2.7 = 3.0000000000000004 and 0.1*3 style sums like 2.9999999999
        assert_eq!(
            level(&channel(Policy::Actual, 0.0, &["W1", "W2"]), &bins),
            3
        );
        let bins = [bin("W1", 3.0 - 1e-12, 0.0, 0.0)];
        assert_eq!(level(&channel(Policy::Actual, 0.0, &["W1"]), &bins), 3);
    }

    #[test]
    fn oversold_and_nan_give_zero() {
        let bins = [bin("W1", 2.0, 5.0, -3.0), bin("W2", f64::NAN, 0.0, 0.0)];
        assert_eq!(
            level(&channel(Policy::ActualMinusReserved, 0.0, &["W1"]), &bins),
            0
        );
        assert_eq!(level(&channel(Policy::Projected, 0.0, &["W1"]), &bins), 0);
        assert_eq!(level(&channel(Policy::Actual, 0.0, &["W2"]), &bins), 0);
    }

    fn qty() -> impl Strategy<Value = f64> {
        (-1_000_000i64..1_000_000i64).prop_map(|n| n as f64 / 1000.0)
    }

    proptest! {
        #[test]
        fn never_negative_and_never_above_the_actual_stock(
            rows in proptest::collection::vec((qty(), qty(), qty()), 0..6),
            buffer in 0u32..50,
        ) {
            let names: Vec<String> = (0..rows.len()).map(|i| format!("W{i}")).collect();
            let bins: Vec<BinRow> = rows.iter().zip(&names).map(|((a, r, p), w)| bin(w, *a, r.abs(), *p)).collect();
            let whs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            let ch = channel(Policy::ActualMinusReserved, buffer as f64, &whs);
            let got = level(&ch, &bins);
            let actual: f64 = bins.iter().map(|b| b.actual_qty).sum();
            prop_assert!((got as f64) <= actual.max(0.0) + 1e-6);
        }

        #[test]
        fn buffer_lowers_the_level_by_exactly_its_amount_down_to_zero(
            actual in 0u32..10_000, buffer in 0u32..200, policy in prop_oneof![Just(Policy::Actual), Just(Policy::Projected), Just(Policy::ActualMinusReserved)],
        ) {
            let bins = [bin("W1", actual as f64, 0.0, actual as f64)];
            let without = level(&channel(policy, 0.0, &["W1"]), &bins);
            let with = level(&channel(policy, buffer as f64, &["W1"]), &bins);
            prop_assert_eq!(without, actual as u64);
            prop_assert_eq!(with, without.saturating_sub(buffer as u64));
        }

        #[test]
        fn rounds_down_to_a_whole_number(whole in 0u32..10_000, frac in 0u32..1000) {
            let q = whole as f64 + frac as f64 / 1000.0;
            let bins = [bin("W1", q, 0.0, 0.0)];
            prop_assert_eq!(level(&channel(Policy::Actual, 0.0, &["W1"]), &bins), whole as u64);
        }

        #[test]
        fn reservations_only_count_under_actual_minus_reserved(actual in 0u32..1000, reserved in 0u32..1000) {
            let bins = [bin("W1", actual as f64, reserved as f64, 0.0)];
            prop_assert_eq!(level(&channel(Policy::Actual, 0.0, &["W1"]), &bins), actual as u64);
            prop_assert_eq!(
                level(&channel(Policy::ActualMinusReserved, 0.0, &["W1"]), &bins),
                (actual as u64).saturating_sub(reserved as u64)
            );
        }
    }
}
