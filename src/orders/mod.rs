//! Shop orders into ERPNext: the order the shop sends ([`model`]), and the worker that turns it
//! into exactly one ERPNext Customer (found by email or created) and Sales Order ([`worker`]).

pub mod check;
pub(crate) mod context;
pub(crate) mod customer;
pub mod model;
pub mod money;
pub(crate) mod sales_order;
pub mod worker;
