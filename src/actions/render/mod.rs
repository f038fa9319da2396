//! Rendering: each action of a decision becomes the exact HTTP requests it will send
//! ([`payload::Rendered`](super::payload::Rendered)), from the reviewed fields through
//! the configured mapping and templates. The store calls [`Renderer`] inside the
//! decision's transaction and keeps the result in the outbox row; the preview shows it;
//! the dispatcher sends it.
pub mod crm;
pub mod gmail;
pub mod slack;

use std::sync::Arc;

use super::config::ActionsConfig;
use super::payload::Rendered;
use super::templates::{self, Templates};
use crate::model::{ActionKind, Policy};
use crate::store::{ActionRenderer, RenderContext};

/// Renders actions with one config's templates.
pub struct Renderer {
    cfg: ActionsConfig,
    templates: Templates,
}

impl Renderer {
    /// Compiles the templates and checks the routing against the policy; errors are
    /// `(config key, message naming what is allowed)`.
    pub fn new(
        cfg: &ActionsConfig,
        policy: Arc<Policy>,
    ) -> Result<Renderer, Vec<(String, String)>> {
        let mut errors = routing_errors(cfg, &policy);
        let templates = match Templates::compile(cfg) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        match templates {
            Some(templates) if errors.is_empty() => Ok(Renderer {
                cfg: cfg.clone(),
                templates,
            }),
            _ => Err(errors),
        }
    }

    /// The typed rendering of one action.
    pub fn render_action(&self, ctx: &RenderContext<'_>) -> Result<Rendered, String> {
        let tctx = templates::context(ctx);
        let tag = origin_tag(&ctx.request.source, &ctx.request.external_id);
        let key = ctx.idempotency_key;
        match ctx.action {
            ActionKind::Crm => crm::render(&self.cfg.monday, &self.templates, &tctx, key),
            ActionKind::Slack => slack::render(
                &self.cfg.slack,
                &self.templates,
                &tctx,
                ctx.fields,
                key,
                &tag,
            ),
            ActionKind::Gmail => gmail::render(
                &self.cfg.gmail,
                &self.templates,
                &tctx,
                ctx.request,
                key,
                &tag,
            ),
        }
    }
}

impl ActionRenderer for Renderer {
    fn render(&self, ctx: &RenderContext<'_>) -> Result<serde_json::Value, String> {
        let r = self.render_action(ctx)?;
        serde_json::to_value(r).map_err(|e| format!("cannot store the rendered request: {e}"))
    }
}

/// A short hash of the request's natural key, carried beside the outbox key in Slack
/// metadata and our Gmail `Message-ID`. Outbox keys restart with each database; with the
/// tag, another installation posting to the same channel or mailbox (or an old database)
/// is never mistaken for this one when an uncertain effect is looked up.
pub fn origin_tag(source: &str, external_id: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{source}\n{external_id}").as_bytes());
    d[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Slack routes keyed by priorities and intents the policy does not have.
pub fn routing_errors(cfg: &ActionsConfig, policy: &Policy) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    for p in cfg.slack.channels.keys() {
        if !policy.priorities.contains(p) {
            errs.push((
                format!("actions.slack.channels.{p}"),
                format!(
                    "'{p}' is not a priority; priorities: {}",
                    policy.priorities.join(", ")
                ),
            ));
        }
    }
    for i in cfg.slack.intent_channels.keys() {
        if !policy.intents.contains(i) {
            errs.push((
                format!("actions.slack.intent_channels.{i}"),
                format!(
                    "'{i}' is not an intent; intents: {}",
                    policy.intents.join(", ")
                ),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_must_name_policy_priorities_and_intents() {
        let mut cfg = ActionsConfig::default();
        cfg.slack
            .channels
            .insert("critical".into(), "C0123ABCD".into());
        cfg.slack
            .intent_channels
            .insert("complaint".into(), "C0123ABCD".into());
        let errs = Renderer::new(&cfg, Arc::new(Policy::default()))
            .err()
            .unwrap();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "actions.slack.channels.critical");
        assert!(
            errs[0]
                .1
                .starts_with("'critical' is not a priority; priorities: urgent, high")
        );
    }
}
