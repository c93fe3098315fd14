//! Shop orders into ERPNext: the order the shop sends ([`model`]) and its checks
//! ([`validate`]), the queue that places owed orders one customer at a time ([`queue`]), and
//! the worker that turns one into exactly one ERPNext Customer (found by email or created) and
//! Sales Order ([`worker`], with [`money`] and the ERPNext checks of [`check`]).

pub mod books;
pub mod check;
pub(crate) mod context;
pub(crate) mod customer;
pub mod model;
pub mod money;
pub mod queue;
pub(crate) mod sales_order;
pub mod state;
pub mod taxes;
pub mod validate;
pub mod worker;
