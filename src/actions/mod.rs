//! Outbound actions (issue 4): rendering monday.com, Slack and Gmail requests from the
//! reviewed fields, and the dispatcher that sends them through the outbox.
mod config;
pub use config::ActionsConfig;
