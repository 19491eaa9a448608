//! What several instances share: Redis, behind one client, and the intake stream on it.

pub mod redis;
pub mod stream;
