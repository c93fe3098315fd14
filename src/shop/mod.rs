//! Shop side: the HTTP client of the shop contract (shop_adapter_spec/), the pure retry policy, the
//! push agent that drains the outbox, and the contract check a shop team runs.

pub mod agent;
pub mod check;
pub mod client;
pub mod retry;

pub use agent::{PushAgent, PushReport};
pub use client::{ShopAnswer, ShopClient, ShopError};
