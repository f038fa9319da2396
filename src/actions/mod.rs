//! Outbound actions (issue 4): rendering monday.com, Slack and Gmail requests from the
//! reviewed fields, and the dispatcher that sends them through the outbox.
mod config;
pub use config::ActionsConfig;

/// Problems in the `[actions]` section, as (dotted key, message).
pub fn check_config(_cfg: &ActionsConfig) -> Vec<(String, String)> {
    Vec::new()
}
