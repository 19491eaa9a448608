//! Where updates come in: the webhook endpoint, the update schema that routes them, and the
//! commands. Image requests go on to `flow`; operator commands read `operate`.

pub mod arrival;
pub mod commands;
pub mod consumer;
pub mod handlers;
pub mod polling;
pub mod webhook;
