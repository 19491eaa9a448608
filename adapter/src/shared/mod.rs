//! What several instances share: Redis, behind one client.

pub mod redis;
