#![doc = include_str!("../README.md")]

mod observer;
mod stats;

pub use observer::{PoolObserver, TimeoutPhase};
pub use stats::{CloseReason, ClosedCounts, PoolStats};
