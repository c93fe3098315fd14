//! Pure: the shop's taxes as ERPNext taxes rows, so that the Sales Order's
//! `total_taxes_and_charges` and `grand_total` equal the shop's to the cent, for prices with and
//! without tax.
//!
//! What ERPNext 15 does with taxes (measured on a live 15.71 site), and why the rows are built so:
//! - An "Actual" row is booked for exactly the amount sent; the document discount never touches
//!   it. Each shop tax becomes one "Actual" row with the shop's amount, on the account
//!   `[orders.tax_accounts]` maps its title to.
//! - Prices without tax: the lines, discount and shipping are sent as they are, and the tax rows
//!   come on top.
//! - Prices with tax: ERPNext's own way ("On Net Total" rows `included_in_print_rate`) rounds each
//!   line's net and computes the tax from the rounded nets, so its tax is often 0.01 off the
//!   shop's, and with many lines the grand total itself is wrong (12 lines of 2.98 at 19 %:
//!   35.70 instead of 35.76). An "Actual" row cannot be included in the price (417). So the relay
//!   sends net amounts with the shop's taxes as "Actual" rows: the tax inside the goods is taken
//!   out of every line and the order discount in the same proportion (the lines' net amounts are
//!   rounded to the cent, the discount takes the remainder), the tax inside shipping is taken out
//!   of the shipping row (at the order's rate when it has one, else in proportion), and the
//!   document discount absorbs the cents of rounding each net rate up. The grand total is then
//!   the shop's gross total exactly, and the taxes the shop's amounts exactly. The lines show net
//!   prices.
//! - A body with taxes rows gets no template's taxes merged in; items with an Item Tax Template
//!   and a body without rows would get rows added by ERPNext itself, so the relay compares the
//!   tax total it reads back.

use std::collections::BTreeMap;

use super::money::{Decimal, LinePrice, MoneyError, OrderMoney};
use crate::orders::model::ShopOrder;

/// One taxes row for a shop tax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRow {
    /// The shop's title, also the row's description.
    pub title: String,
    pub account: String,
    pub amount: Decimal,
}

/// The money of an order with its taxes, as the Sales Order carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxedMoney {
    /// Lines, document discount and the shipping row (net of tax when prices include it);
    /// `total` is what ERPNext's grand total must be.
    pub money: OrderMoney,
    pub taxes: Vec<TaxRow>,
    /// Σ of the tax rows.
    pub tax_total: Decimal,
}

impl TaxedMoney {
    /// What ERPNext's `total_taxes_and_charges` must be: the shipping row and the tax rows.
    pub fn erp_taxes_and_charges(&self) -> Decimal {
        self.money.shipping + self.tax_total
    }
}

/// Why the taxes of an order cannot be booked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("tax `{title}` has no account: map it in [orders.tax_accounts] (or set a `default` there), then retry the order")]
    Unmapped { title: String },
    #[error("the taxes {taxes} are more than the order's {gross}, which includes them")]
    TaxesTooLarge { taxes: Decimal, gross: Decimal },
    #[error("the order's total {stated} does not add up: its lines, discount, shipping and taxes make {computed}")]
    TotalDoesNotAddUp { stated: Decimal, computed: Decimal },
}

/// The account of a tax title: its own mapping, else `default`.
pub fn tax_account<'a>(accounts: &'a BTreeMap<String, String>, title: &str) -> Option<&'a str> {
    accounts
        .get(title.trim())
        .or_else(|| accounts.get("default"))
        .map(String::as_str)
}

/// Prices `order` with its taxes on the accounts `accounts` maps their titles to.
pub fn price(
    order: &ShopOrder,
    accounts: &BTreeMap<String, String>,
) -> Result<TaxedMoney, TaxError> {
    // The lines, discount and shipping as the shop sent them; the total is checked here.
    let mut untaxed = order.clone();
    untaxed.total = None;
    untaxed.taxes.clear();
    let base = super::money::price(&untaxed)?;
    let mut taxes = Vec::with_capacity(order.taxes.len());
    for (i, t) in order.taxes.iter().enumerate() {
        let amount = Decimal::from_f64(t.amount, &format!("taxes[{i}].amount"))?.round_cents();
        if amount < Decimal::ZERO {
            return Err(MoneyError::Negative {
                field: format!("taxes[{i}].amount"),
                what: format!("taxes[{i}].amount"),
                value: amount,
            }
            .into());
        }
        let account = tax_account(accounts, &t.title).ok_or_else(|| TaxError::Unmapped {
            title: t.title.clone(),
        })?;
        taxes.push(TaxRow {
            title: t.title.trim().to_owned(),
            account: account.to_owned(),
            amount,
        });
    }
    let tax_total: Decimal = taxes.iter().map(|t| t.amount).sum();
    let money = if order.prices_include_tax && !tax_total.is_zero() {
        take_tax_out(order, base, tax_total)?
    } else {
        let mut m = base;
        if !order.prices_include_tax {
            m.total = m.total + tax_total;
        }
        m
    };
    if let Some(t) = order.total {
        let stated = Decimal::from_f64(t, "total")?.round_cents();
        if stated != money.total {
            return Err(TaxError::TotalDoesNotAddUp {
                stated,
                computed: money.total,
            });
        }
    }
    Ok(TaxedMoney {
        money,
        taxes,
        tax_total,
    })
}

/// Prices with tax: the same gross total, carried by net lines, a net discount, a net shipping
/// row and the shop's taxes (see the module docs).
fn take_tax_out(order: &ShopOrder, base: OrderMoney, tax: Decimal) -> Result<OrderMoney, TaxError> {
    let gross = base.total;
    if tax > gross {
        return Err(TaxError::TaxesTooLarge { taxes: tax, gross });
    }
    let goods: Decimal = base.lines.iter().map(|l| l.shop_total).sum();
    let discount =
        Decimal::from_f64(order.discount_total.unwrap_or(0.0), "discount_total")?.round_cents();
    let after_discount = goods - discount;
    let shipping = base.shipping;
    // The tax inside shipping: at the order's one rate, else in proportion to the amounts.
    let mut rates: Vec<Decimal> = Vec::new();
    for t in &order.taxes {
        if let Some(r) = t.rate.and_then(|r| Decimal::from_f64(r, "rate").ok()) {
            if !rates.contains(&r) {
                rates.push(r);
            }
        }
    }
    let hundred = Decimal::from_f64(100.0, "100")?;
    let ship_tax = if shipping.is_zero() {
        Decimal::ZERO
    } else if rates.len() == 1 && order.taxes.iter().all(|t| t.rate.is_some()) {
        shipping.mul_div_round_cents(rates[0], hundred + rates[0])
    } else {
        shipping.mul_div_round_cents(tax, gross)
    }
    .min(tax);
    let goods_tax = tax - ship_tax;
    let goods_net = after_discount - goods_tax;
    // Each line's net, in proportion; the discount takes what rounding leaves.
    let nets: Vec<Decimal> = base
        .lines
        .iter()
        .map(|l| {
            if after_discount.is_zero() {
                l.shop_total
            } else {
                l.shop_total.mul_div_round_cents(goods_net, after_discount)
            }
        })
        .collect();
    let nets_total: Decimal = nets.iter().copied().sum();
    let net_discount = nets_total - goods_net;
    let lines: Vec<LinePrice> = base
        .lines
        .iter()
        .zip(&nets)
        .map(|(l, net)| {
            let rate = net.div_ceil_cents(l.qty);
            LinePrice {
                qty: l.qty,
                price_list_rate: rate,
                rate,
                free: rate.is_zero(),
                shop_total: *net,
            }
        })
        .collect();
    let rounding: Decimal = lines.iter().map(|l| l.erp_amount() - l.shop_total).sum();
    Ok(OrderMoney {
        lines,
        discount_amount: net_discount + rounding,
        shipping: shipping - ship_tax,
        total: gross,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::model::{OrderLine, OrderTax, Shipping};

    fn d(s: &str) -> Decimal {
        Decimal::from_f64(s.parse().expect("number"), "x").expect("decimal")
    }

    fn order(lines: &[(f64, f64)], taxes: &[(&str, f64, f64)], incl: bool) -> ShopOrder {
        ShopOrder {
            order_id: "T-1".into(),
            lines: lines
                .iter()
                .map(|(q, p)| OrderLine {
                    sku: "S".into(),
                    qty: *q,
                    unit_price: *p,
                    ..Default::default()
                })
                .collect(),
            prices_include_tax: incl,
            taxes: taxes
                .iter()
                .map(|(t, r, a)| OrderTax {
                    title: (*t).into(),
                    rate: Some(*r),
                    amount: *a,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn accounts() -> BTreeMap<String, String> {
        [("VAT 19%", "VAT19"), ("VAT 7%", "VAT7")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect()
    }

    /// ERPNext's grand total for these rows: Σ round(rate × qty) − discount + shipping + taxes.
    fn erp_grand(m: &TaxedMoney) -> Decimal {
        let lines: Decimal = m.money.lines.iter().map(LinePrice::erp_amount).sum();
        lines - m.money.discount_amount + m.money.shipping + m.tax_total
    }

    #[test]
    fn taxes_on_top_add_to_the_total() {
        let mut o = order(
            &[(2.0, 10.0), (1.0, 5.0)],
            &[("VAT 19%", 19.0, 4.75)],
            false,
        );
        o.shipping = Some(Shipping {
            method: "DHL".into(),
            amount: 4.95,
        });
        o.total = Some(34.70);
        let m = price(&o, &accounts()).expect("priced");
        assert_eq!(m.money.total, d("34.70"));
        assert_eq!(m.taxes[0].account, "VAT19");
        assert_eq!(m.erp_taxes_and_charges(), d("9.70"));
        assert_eq!(erp_grand(&m), d("34.70"));
    }

    #[test]
    fn inclusive_prices_come_out_to_the_cent_where_erpnext_rounding_does_not() {
        // 12 lines of 2.98 at 19 %: ERPNext's inclusive rows make 35.70; the shop says 35.76.
        let lines = vec![(1.0, 2.98); 12];
        let o = order(&lines, &[("VAT 19%", 19.0, 5.71)], true);
        let m = price(&o, &accounts()).expect("priced");
        assert_eq!(m.money.total, d("35.76"));
        assert_eq!(erp_grand(&m), d("35.76"));
        assert_eq!(m.tax_total, d("5.71"));
        // Three lines of 19.99 and a mix of rates.
        let o = order(
            &[(3.0, 19.99), (2.0, 9.99), (1.0, 4.99)],
            &[("VAT 19%", 19.0, 9.58), ("VAT 7%", 7.0, 1.64)],
            true,
        );
        let m = price(&o, &accounts()).expect("priced");
        assert_eq!(erp_grand(&m), d("84.94"));
        assert_eq!(m.erp_taxes_and_charges(), d("11.22"));
    }

    #[test]
    fn inclusive_shipping_and_a_coupon_keep_the_gross_total() {
        let mut o = order(&[(3.0, 19.99)], &[("VAT 19%", 19.0, 8.78)], true);
        o.discount_total = Some(5.0);
        o.shipping = Some(Shipping {
            method: "DHL".into(),
            amount: 4.95,
        });
        o.taxes[0].amount = 9.57;
        let m = price(&o, &accounts()).expect("priced");
        assert_eq!(m.money.total, d("59.92"));
        // 4.95 at 19 % holds 0.79 of tax.
        assert_eq!(m.money.shipping, d("4.16"));
        assert_eq!(erp_grand(&m), d("59.92"));
    }

    #[test]
    fn an_unmapped_title_is_named_and_default_catches_the_rest() {
        let o = order(&[(1.0, 10.0)], &[("Sales tax NY", 8.875, 0.89)], false);
        let e = price(&o, &accounts()).unwrap_err();
        assert!(e.to_string().contains("`Sales tax NY`"), "{e}");
        let mut with_default = accounts();
        with_default.insert("default".into(), "ST".into());
        assert_eq!(
            price(&o, &with_default).expect("priced").taxes[0].account,
            "ST"
        );
    }

    #[test]
    fn a_total_that_leaves_out_the_taxes_on_top_is_refused() {
        let mut o = order(&[(1.0, 10.0)], &[("VAT 19%", 19.0, 1.90)], false);
        o.total = Some(10.0);
        assert!(matches!(
            price(&o, &accounts()),
            Err(TaxError::TotalDoesNotAddUp { .. })
        ));
    }
}
