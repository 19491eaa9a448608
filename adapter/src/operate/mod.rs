//! The operator side: health, metrics, the monitor and its alerts, the memory guard,
//! cleanup, the admin reports and the operator HTTP endpoint. All of it reads the flow
//! through an [`operator::Operator`]; nothing in the flow reads it.

pub mod admin;
pub mod alert;
pub mod cleanup;
pub mod figures;
pub mod health;
pub mod http;
pub mod memory_guard;
pub mod metrics;
pub mod monitor;
pub mod operator;
pub mod system;
