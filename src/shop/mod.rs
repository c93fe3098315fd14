//! Shop side: the HTTP client of the shop contract (DESIGN §4), the pure retry policy, and the
//! push agent that drains the outbox.

pub mod agent;
pub mod client;
pub mod retry;

pub use agent::{PushAgent, PushReport};
pub use client::{ShopAnswer, ShopClient, ShopError};
