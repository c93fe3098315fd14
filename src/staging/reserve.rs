//! Step 3: ERPNext reserves the order's quantity in the Bin of the warehouse the Sales Order's
//! line names.

use super::cycle::Cycle;
use super::fields::number;
use super::order::same_amount;
use super::poll::{poll, Polled, Probe};
use super::report::{fail, Outcome};

/// What the line of the report says.
pub(super) const TITLE: &str = "ERPNext reserves the stock";

/// Step 3: the Bin shows the order's quantity reserved.
pub(super) async fn run(cycle: &mut Cycle<'_>) -> Outcome {
    let wh = cycle.order_warehouse();
    let qty = cycle.money.qty;
    let seen = poll(cycle.timeout, || async {
        match cycle.bins().await {
            Ok(bins) => {
                let r = bins
                    .iter()
                    .find(|b| b.warehouse == wh)
                    .map(|b| b.reserved_qty)
                    .unwrap_or(0.0);
                if same_amount(r, qty) {
                    Probe::Done(r)
                } else {
                    Probe::Wait(format!("reserved_qty {r} in {wh}"))
                }
            }
            Err(e) if e.is_permanent() => Probe::Stop(format!("the Bin cannot be read: {e}")),
            Err(e) => Probe::Wait(format!("the Bin cannot be read: {e}")),
        }
    })
    .await;
    let expected = format!("reserved_qty {qty} for {} in {wh}", cycle.names.item_code);
    let draft = cycle
        .sales_order
        .as_ref()
        .is_some_and(|so| number(so, "docstatus") != 1.0);
    match seen {
        Polled::Done(r) => Outcome::Pass(format!("{r} reserved in {wh}")),
        Polled::Stopped(why) => fail(expected, why, "the API user may not read Bin"),
        Polled::TimedOut(found) => fail(
            expected,
            found,
            if draft {
                "the Sales Order is a draft; only a submitted one reserves stock (orders.submit)"
            } else {
                "ERPNext did not reserve: is the item a stock item, and is the line's warehouse the channel's?"
            },
        ),
    }
}
