//! A request's path, in the order it takes: the intake queue, de-duplication, per-chat
//! order, each user's own slots, rate limit, results cache, coalescing, admission, then the service that runs the
//! engine, replies and records. The flow never reads the operator side; it exposes a
//! snapshot for it.

pub mod admission;
pub mod cache;
pub mod coalesce;
pub mod events;
pub mod inbox;
pub mod intake;
pub mod ordering;
pub mod rate_limit;
pub mod service;
pub mod spec;
pub mod user_slots;
