//! Pure money arithmetic for an order, in exact decimals: what each Sales Order line, the
//! document discount and the shipping row must say so that ERPNext's grand total equals the
//! shop's total to the cent.
//!
//! ERPNext stores a per-unit `rate` rounded to 2 decimals and computes each line's amount as
//! `rate × qty` rounded to 2 decimals. A line discount spread over its units rarely divides
//! evenly (10.00 off 3 units is 3.333… a unit), so the rate is rounded *up* to the cent and the
//! few cents this adds to the lines are taken off again in the document discount
//! (`discount_amount` applied on the net total), which ERPNext subtracts exactly.

use crate::orders::model::ShopOrder;

/// Fixed point with 6 decimals: enough for any shop price and quantity, exact in i128.
const SCALE: i128 = 1_000_000;
const CENT: i128 = SCALE / 100;

/// Every amount and quantity must be below this: ERPNext keeps Currency and Float fields as
/// `decimal(21,9)`, 12 digits before the decimal point. Bounded inputs also keep every
/// product and sum of the pricer far inside i128 (10^18 × 10^18 < 1.7 × 10^38).
pub const LIMIT: f64 = 1e12;

/// An exact decimal amount (6 decimal places).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Decimal(i128);

/// A number the shop sent that is not a usable amount. `field` is where in the order body
/// (`lines[0].qty`), `what` the same in words (`line 1 qty`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{what} is not a finite number")]
    NotFinite { field: String, what: String },
    #[error("{what} is too large (ERPNext holds amounts and quantities below 10^12)")]
    TooLarge { field: String, what: String },
    #[error("{what} must not be negative (got {value})")]
    Negative {
        field: String,
        what: String,
        value: Decimal,
    },
    #[error("{what} must be more than 0 (got {value})")]
    NotPositive {
        field: String,
        what: String,
        value: Decimal,
    },
    #[error("line {line} ({sku}): the discount {discount} is more than the line's {gross}")]
    LineDiscountTooLarge {
        line: usize,
        sku: String,
        discount: Decimal,
        gross: Decimal,
    },
    #[error("the order discount {discount} is more than the lines' total {lines}")]
    OrderDiscountTooLarge { discount: Decimal, lines: Decimal },
    #[error("the order's total {stated} does not add up: its lines, discount, shipping and taxes on top make {computed}")]
    TotalDoesNotAddUp { stated: Decimal, computed: Decimal },
}

impl MoneyError {
    /// Where in the order body the problem is (`lines[0].qty`, `total`).
    pub fn field(&self) -> String {
        match self {
            Self::NotFinite { field, .. }
            | Self::TooLarge { field, .. }
            | Self::Negative { field, .. }
            | Self::NotPositive { field, .. } => field.clone(),
            Self::LineDiscountTooLarge { line, .. } => format!("lines[{}].discount", line - 1),
            Self::OrderDiscountTooLarge { .. } => "discount_total".into(),
            Self::TotalDoesNotAddUp { .. } => "total".into(),
        }
    }

    /// What is wrong with [`MoneyError::field`], in the words of the order refusal.
    pub fn problem(&self) -> String {
        match self {
            Self::NotFinite { .. } => "is not a finite number".into(),
            Self::TooLarge { .. } => {
                "is too large: ERPNext holds amounts and quantities below 10^12".into()
            }
            Self::Negative { value, .. } => format!("must be 0 or more (got {value})"),
            Self::NotPositive { value, .. } => format!(
                "must be greater than 0 (it is {value} to the relay's 6 decimal places)"
            ),
            Self::LineDiscountTooLarge {
                discount, gross, ..
            } => format!("{discount} is more than the line's qty × unit_price ({gross})"),
            Self::OrderDiscountTooLarge { discount, lines } => {
                format!("{discount} is more than the sum of the line totals ({lines})")
            }
            Self::TotalDoesNotAddUp { stated, computed } => format!(
                "{stated} is not the sum of the line totals − discount_total + shipping.amount (+ the taxes when prices exclude them) ({computed})"
            ),
        }
    }
}

impl Decimal {
    pub const ZERO: Decimal = Decimal(0);

    /// The exact decimal a JSON number was written as (`0.1` is 0.1, not the nearest binary
    /// fraction), rounded half away from zero to 6 places; below [`LIMIT`] in size.
    pub fn from_f64(v: f64, what: &str) -> Result<Self, MoneyError> {
        Self::amount(v, what, what)
    }

    /// [`Decimal::from_f64`] for the order body's `field` (`lines[0].qty`).
    fn amount(v: f64, field: &str, what: &str) -> Result<Self, MoneyError> {
        if !v.is_finite() {
            return Err(MoneyError::NotFinite {
                field: field.into(),
                what: what.into(),
            });
        }
        let too_large = || MoneyError::TooLarge {
            field: field.into(),
            what: what.into(),
        };
        if v.abs() >= LIMIT {
            return Err(too_large());
        }
        // `{}` prints the shortest string that reads back as the same f64, without exponent.
        Self::parse(&format!("{v}")).ok_or_else(too_large)
    }

    /// True when the amount is below [`LIMIT`] in size (so ERPNext can hold it).
    fn fits(self) -> bool {
        self.0.unsigned_abs() < 1_000_000_000_000u128 * SCALE as u128
    }

    fn parse(s: &str) -> Option<Self> {
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let mut units: i128 = int.parse::<i128>().ok()?.checked_mul(SCALE)?;
        let mut place = SCALE / 10;
        let mut round_up = false;
        for (i, c) in frac.chars().enumerate() {
            let d = i128::from(c.to_digit(10)? as u8);
            if i < 6 {
                units += d * place;
                place /= 10;
            } else {
                // Digits past the 6th: half away from zero on the first of them.
                round_up = i == 6 && d >= 5;
                break;
            }
        }
        if round_up {
            units += 1;
        }
        Some(Decimal(if neg { -units } else { units }))
    }

    /// The value as a JSON number (ERPNext's Float/Currency fields).
    pub fn to_f64(self) -> f64 {
        format!("{self}").parse().unwrap_or(0.0)
    }

    /// Rounded to the cent, half away from zero.
    pub fn round_cents(self) -> Self {
        let half = CENT / 2;
        let q = if self.0 >= 0 {
            (self.0 + half) / CENT
        } else {
            (self.0 - half) / CENT
        };
        Decimal(q.saturating_mul(CENT))
    }

    /// Rounded up (towards +infinity) to the cent.
    pub fn ceil_cents(self) -> Self {
        let q = self.0.div_euclid(CENT);
        let r = self.0.rem_euclid(CENT);
        Decimal((q + i128::from(r > 0)).saturating_mul(CENT))
    }

    /// Quotient rounded up to the cent (`other` must be positive).
    pub fn div_ceil_cents(self, other: Decimal) -> Self {
        if other.0 <= 0 {
            return Decimal::ZERO;
        }
        // self / other in cents = self.0 * 100 / other.0, rounded up.
        let num = self.0.saturating_mul(100);
        let q = num.div_euclid(other.0) + i128::from(num.rem_euclid(other.0) > 0);
        Decimal(q.saturating_mul(CENT))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self × num / den` rounded half away from zero to the cent (`den` must not be 0: then 0).
    pub fn mul_div_round_cents(self, num: Decimal, den: Decimal) -> Self {
        if den.0 == 0 {
            return Decimal::ZERO;
        }
        // In cents: self.0 * num.0 / den.0 / CENT, rounded.
        let n = self.0 * num.0;
        let d = den.0 * CENT;
        let (n, d) = if d < 0 { (-n, -d) } else { (n, d) };
        let q = n.div_euclid(d);
        let r = n.rem_euclid(d);
        let q = if r * 2 > d || (r * 2 == d && n >= 0) {
            q + 1
        } else {
            q
        };
        Decimal(q * CENT)
    }
}

impl std::ops::Add for Decimal {
    type Output = Decimal;
    /// Saturating: never wraps (the pricer's amounts are bounded far below i128's range).
    fn add(self, o: Decimal) -> Decimal {
        Decimal(self.0.saturating_add(o.0))
    }
}

impl std::ops::Sub for Decimal {
    type Output = Decimal;
    /// Saturating: never wraps.
    fn sub(self, o: Decimal) -> Decimal {
        Decimal(self.0.saturating_sub(o.0))
    }
}

impl std::ops::Mul for Decimal {
    type Output = Decimal;
    /// Exact product, rounded half away from zero to 6 places (saturating, never wraps).
    fn mul(self, o: Decimal) -> Decimal {
        let p = self.0.saturating_mul(o.0);
        let half = SCALE / 2;
        Decimal(if p >= 0 {
            p.saturating_add(half) / SCALE
        } else {
            p.saturating_sub(half) / SCALE
        })
    }
}

impl std::iter::Sum for Decimal {
    fn sum<I: Iterator<Item = Decimal>>(iter: I) -> Decimal {
        iter.fold(Decimal::ZERO, |a, b| a + b)
    }
}

impl std::fmt::Display for Decimal {
    /// At least 2 decimals, trailing zeros past them dropped: `12.50`, `3.333`, `-0.01`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let int = a / SCALE as u128;
        let mut frac = format!("{:06}", a % SCALE as u128);
        while frac.len() > 2 && frac.ends_with('0') {
            frac.pop();
        }
        write!(f, "{sign}{int}.{frac}")
    }
}

/// What one Sales Order line says about money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePrice {
    pub qty: Decimal,
    /// The unit price before discounts, to the cent (never below `rate`).
    pub price_list_rate: Decimal,
    /// The final per-unit rate, to the cent.
    pub rate: Decimal,
    /// True when the line costs nothing: sent as a 100 % discount, because ERPNext replaces a
    /// rate of 0 with the list price.
    pub free: bool,
    /// The line's total in the shop: `qty × unit_price − discount`, to the cent.
    pub shop_total: Decimal,
}

impl LinePrice {
    /// The amount ERPNext computes for the line: `rate × qty`, to the cent.
    pub fn erp_amount(&self) -> Decimal {
        (self.rate * self.qty).round_cents()
    }
}

/// The money of a whole order, as the Sales Order will carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderMoney {
    pub lines: Vec<LinePrice>,
    /// The document discount (`discount_amount`, on the net total): the shop's order discount
    /// plus the cents that rounding the rates up added to the lines.
    pub discount_amount: Decimal,
    /// The shipping charge (an "Actual" taxes row).
    pub shipping: Decimal,
    /// What the grand total must be: the shop's `total` when it sent one, else the sum.
    pub total: Decimal,
}

/// The money fields of one order line as the shop sent them. None: the field is missing or
/// not a number (the order check reports that on its own); its line is then left out of the
/// sums, which are not checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineAmounts<'a> {
    pub sku: &'a str,
    pub qty: Option<f64>,
    pub unit_price: Option<f64>,
    /// Absent is 0.
    pub discount: Option<f64>,
}

/// The money fields of an order as the shop sent them, read from a [`ShopOrder`] or, by the
/// order check, from a body that may still be wrong elsewhere. None in `discount_total` or
/// `shipping`: present but not a number (absent is 0); None in `total`: nothing to check.
#[derive(Debug, Clone, PartialEq)]
pub struct Amounts<'a> {
    pub lines: Vec<LineAmounts<'a>>,
    pub discount_total: Option<f64>,
    pub shipping: Option<f64>,
    pub total: Option<f64>,
    /// Contract 3: the `taxes[].amount` added on top of the prices (empty when the prices
    /// include the taxes).
    pub taxes_on_top: Vec<f64>,
}

impl<'a> Amounts<'a> {
    /// The amounts of a parsed order.
    pub fn of(order: &'a ShopOrder) -> Self {
        Self {
            lines: order
                .lines
                .iter()
                .map(|l| LineAmounts {
                    sku: &l.sku,
                    qty: Some(l.qty),
                    unit_price: Some(l.unit_price),
                    discount: Some(l.discount.unwrap_or(0.0)),
                })
                .collect(),
            discount_total: Some(order.discount_total.unwrap_or(0.0)),
            shipping: Some(order.shipping.as_ref().map_or(0.0, |s| s.amount)),
            total: order.total,
            taxes_on_top: if order.prices_include_tax {
                Vec::new()
            } else {
                order.taxes.iter().map(|t| t.amount).collect()
            },
        }
    }
}

/// Collects every money problem of an order.
#[derive(Default)]
struct Pricer {
    problems: Vec<MoneyError>,
}

impl Pricer {
    /// `v` as an exact amount of at least 0 (more than 0 when `positive`).
    fn amount(&mut self, v: f64, field: &str, what: &str, positive: bool) -> Option<Decimal> {
        let d = match Decimal::amount(v, field, what) {
            Ok(d) => d,
            Err(e) => {
                self.problems.push(e);
                return None;
            }
        };
        let (field, what) = (field.to_owned(), what.to_owned());
        if positive && d <= Decimal::ZERO {
            self.problems.push(MoneyError::NotPositive {
                field,
                what,
                value: d,
            });
            None
        } else if d < Decimal::ZERO {
            self.problems.push(MoneyError::Negative {
                field,
                what,
                value: d,
            });
            None
        } else {
            Some(d)
        }
    }

    /// A computed amount that must fit ERPNext, like every amount the shop sends.
    fn fits(&mut self, d: Decimal, field: &str, what: &str) -> Option<Decimal> {
        if d.fits() {
            Some(d)
        } else {
            self.problems.push(MoneyError::TooLarge {
                field: field.into(),
                what: what.into(),
            });
            None
        }
    }

    fn line(&mut self, i: usize, line: &LineAmounts) -> Option<LinePrice> {
        let n = i + 1;
        let at = format!("lines[{i}]");
        let qty = line.qty.and_then(|q| {
            self.amount(
                q,
                &format!("{at}.qty"),
                &format!("line {n} ({}) qty", line.sku),
                true,
            )
        });
        let unit = line.unit_price.and_then(|p| {
            self.amount(
                p,
                &format!("{at}.unit_price"),
                &format!("line {n} unit_price"),
                false,
            )
        });
        let discount = line.discount.and_then(|d| {
            self.amount(
                d,
                &format!("{at}.discount"),
                &format!("line {n} discount"),
                false,
            )
        });
        let (qty, unit, discount) = (qty?, unit?, discount?);
        let gross = self.fits(
            qty * unit,
            &at,
            &format!("line {n} ({}): qty × unit_price", line.sku),
        )?;
        if discount > gross {
            self.problems.push(MoneyError::LineDiscountTooLarge {
                line: n,
                sku: line.sku.to_owned(),
                discount,
                gross,
            });
            return None;
        }
        let shop_total = (gross - discount).round_cents();
        let rate = shop_total.div_ceil_cents(qty);
        Some(LinePrice {
            qty,
            price_list_rate: unit.round_cents().max(rate),
            rate,
            free: rate.is_zero(),
            shop_total,
        })
    }
}

/// Works out the lines, discount, shipping and total of `order` (see the module docs); the
/// first problem when it cannot.
pub fn price(order: &ShopOrder) -> Result<OrderMoney, MoneyError> {
    let unreadable = || MoneyError::NotFinite {
        field: String::new(),
        what: "an amount of the order".into(),
    };
    match check(&Amounts::of(order)) {
        Ok(money) => money.ok_or_else(unreadable),
        Err(problems) => Err(problems.into_iter().next().unwrap_or_else(unreadable)),
    }
}

/// The one money rule: prices `amounts` as [`price`] does, or lists every problem found
/// (a line's problem leaves the sums unchecked). Sums never wrap: every amount the shop sends
/// and every amount computed from them must be below [`LIMIT`], as ERPNext requires. Ok(None):
/// no problem found, but some amount was unreadable (None), so nothing could be priced.
pub fn check(amounts: &Amounts) -> Result<Option<OrderMoney>, Vec<MoneyError>> {
    let mut p = Pricer::default();
    let priced: Vec<Option<LinePrice>> = amounts
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| p.line(i, l))
        .collect();
    let order_discount = amounts
        .discount_total
        .and_then(|d| p.amount(d, "discount_total", "discount_total", false))
        .map(Decimal::round_cents);
    let shipping = amounts
        .shipping
        .and_then(|s| p.amount(s, "shipping.amount", "shipping.amount", false))
        .map(Decimal::round_cents);
    let stated = amounts
        .total
        .and_then(|t| p.amount(t, "total", "total", false))
        .map(Decimal::round_cents);
    let lines: Option<Vec<LinePrice>> = priced.into_iter().collect();
    let lines_total = lines.as_ref().and_then(|lines| {
        let sum: Decimal = lines.iter().map(|l| l.shop_total).sum();
        p.fits(sum, "lines", "the sum of the line totals")
    });
    if let (Some(discount), Some(lines_total)) = (order_discount, lines_total) {
        if discount > lines_total {
            p.problems.push(MoneyError::OrderDiscountTooLarge {
                discount,
                lines: lines_total,
            });
        }
    }
    let taxes: Option<Decimal> = amounts
        .taxes_on_top
        .iter()
        .map(|t| {
            p.amount(*t, "taxes", "taxes[].amount", false)
                .map(Decimal::round_cents)
        })
        .sum();
    let computed = match (lines_total, order_discount, shipping, taxes) {
        (Some(l), Some(d), Some(s), Some(t)) => p.fits(l - d + s + t, "total", "the order's total"),
        _ => None,
    };
    if let (Some(stated), Some(computed)) = (stated, computed) {
        if stated != computed {
            p.problems
                .push(MoneyError::TotalDoesNotAddUp { stated, computed });
        }
    }
    match (lines, order_discount, shipping, computed) {
        _ if !p.problems.is_empty() => Err(p.problems),
        (Some(lines), Some(discount), Some(shipping), Some(computed)) => {
            let rounding: Decimal = lines.iter().map(|l| l.erp_amount() - l.shop_total).sum();
            Ok(Some(OrderMoney {
                lines,
                discount_amount: discount + rounding,
                shipping,
                total: stated.unwrap_or(computed),
            }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::model::{OrderCustomer, OrderLine, PostalAddress, Shipping};

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).expect("decimal")
    }

    fn order(lines: &[(f64, f64, Option<f64>)], discount: Option<f64>, ship: f64) -> ShopOrder {
        ShopOrder {
            order_id: "1".into(),
            channel: "web".into(),
            placed_at: "2026-11-29T10:00:00Z".into(),
            currency: "USD".into(),
            customer: OrderCustomer {
                email: "a@b.c".into(),
                first_name: None,
                last_name: None,
                phone: None,
                fields: Default::default(),
            },
            shipping_address: PostalAddress {
                line1: "x".into(),
                line2: None,
                city: "y".into(),
                postcode: None,
                country: "DE".into(),
            },
            billing_address: None,
            lines: lines
                .iter()
                .map(|(q, p, disc)| OrderLine {
                    sku: "S".into(),
                    qty: *q,
                    unit_price: *p,
                    discount: *disc,
                    ..Default::default()
                })
                .collect(),
            shipping: Some(Shipping {
                method: "DHL".into(),
                amount: ship,
            }),
            discount_total: discount,
            total: None,
            ..Default::default()
        }
    }

    #[test]
    fn decimals_read_as_written() {
        assert_eq!(Decimal::from_f64(0.1, "x").unwrap(), d("0.1"));
        assert_eq!(Decimal::from_f64(0.1 + 0.2, "x").unwrap(), d("0.3"));
        assert_eq!(Decimal::from_f64(19.99, "x").unwrap().to_string(), "19.99");
        assert_eq!(Decimal::from_f64(-3.5, "x").unwrap().to_string(), "-3.50");
        assert_eq!(d("3.3333335").to_string(), "3.333334");
        assert!(Decimal::from_f64(f64::NAN, "x").is_err());
        assert!(Decimal::from_f64(1e300, "x").is_err());
        assert_eq!(d("2.345").round_cents(), d("2.35"));
        assert_eq!(d("-2.345").round_cents(), d("-2.35"));
        assert_eq!(d("2.341").ceil_cents(), d("2.35"));
        assert_eq!(d("2.34").ceil_cents(), d("2.34"));
        assert_eq!(d("29").div_ceil_cents(d("3")), d("9.67"));
        assert_eq!(d("1.5") * d("3.333"), d("4.9995"));
    }

    #[test]
    fn a_line_discount_is_spread_per_unit_and_the_rounding_comes_off_the_document() {
        // 3 × 10.00 − 1.00 = 29.00; 9.67 a unit makes 29.01, so 0.01 comes off the document.
        let m = price(&order(&[(3.0, 10.0, Some(1.0))], None, 4.95)).unwrap();
        assert_eq!(m.lines[0].rate, d("9.67"));
        assert_eq!(m.lines[0].price_list_rate, d("10"));
        assert_eq!(m.lines[0].erp_amount(), d("29.01"));
        assert_eq!(m.discount_amount, d("0.01"));
        assert_eq!(m.total, d("33.95"));
        let erp_grand = m.lines[0].erp_amount() - m.discount_amount + m.shipping;
        assert_eq!(erp_grand, m.total);
    }

    #[test]
    fn order_discount_applies_to_lines_not_shipping() {
        let m = price(&order(
            &[(2.0, 10.0, None), (1.0, 5.5, Some(0.5))],
            Some(3.0),
            4.95,
        ))
        .unwrap();
        assert_eq!(m.discount_amount, d("3"));
        assert_eq!(m.total, d("26.95"));
    }

    #[test]
    fn a_free_line_is_a_full_discount() {
        let m = price(&order(&[(1.0, 12.0, Some(12.0))], None, 0.0)).unwrap();
        assert!(m.lines[0].free);
        assert_eq!(m.lines[0].price_list_rate, d("12"));
        assert_eq!(m.total, Decimal::ZERO);
    }

    #[test]
    fn inconsistent_orders_are_refused_with_both_numbers() {
        let mut o = order(&[(1.0, 10.0, None)], None, 5.0);
        o.total = Some(14.0);
        let e = price(&o).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the order's total 14.00 does not add up: its lines, discount, shipping and taxes on top make 15.00"
        );
        assert!(price(&order(&[(1.0, 10.0, Some(11.0))], None, 0.0)).is_err());
        assert!(price(&order(&[(0.0, 10.0, None)], None, 0.0)).is_err());
        assert!(price(&order(&[(1.0, -1.0, None)], None, 0.0)).is_err());
        assert!(price(&order(&[(1.0, 10.0, None)], Some(10.01), 0.0)).is_err());
    }

    #[test]
    fn every_problem_is_found_with_its_field_and_nothing_wraps() {
        let mut o = order(
            &[(1e300, 1.0, None), (2.0, 1e11, Some(-1.0))],
            Some(f64::NAN),
            0.0,
        );
        o.total = Some(-0.02);
        let problems = check(&Amounts::of(&o)).expect_err("refused");
        let fields: Vec<String> = problems.iter().map(MoneyError::field).collect();
        assert_eq!(
            fields,
            [
                "lines[0].qty",
                "lines[1].discount",
                "discount_total",
                "total"
            ]
        );
        assert_eq!(
            price(&o).expect_err("refused").to_string(),
            "line 1 (S) qty is too large (ERPNext holds amounts and quantities below 10^12)"
        );
        let big = Decimal(i128::MAX / 2);
        assert_eq!(
            big + big + big,
            Decimal(i128::MAX),
            "saturates, never wraps"
        );
        assert_eq!(Decimal(i128::MIN) - big, Decimal(i128::MIN));
        assert!((big * big) > Decimal::ZERO);
    }
}
