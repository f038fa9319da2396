//! Rendering: each action of a decision becomes the exact HTTP requests it will send
//! ([`Rendered`](super::payload::Rendered)), from the reviewed fields through the configured
//! mapping and templates. The store calls [`Renderer`] inside the decision's transaction
//! and keeps the result in the outbox row; the preview shows it; the dispatcher sends it.
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
    #[allow(dead_code)]
    policy: Arc<Policy>,
}

impl Renderer {
    /// Compiles the templates; errors are `(config key, message)`.
    pub fn new(
        cfg: &ActionsConfig,
        policy: Arc<Policy>,
    ) -> Result<Renderer, Vec<(String, String)>> {
        Ok(Renderer {
            cfg: cfg.clone(),
            templates: Templates::compile(cfg)?,
            policy,
        })
    }

    /// The typed rendering of one action.
    pub fn render_action(&self, ctx: &RenderContext<'_>) -> Result<Rendered, String> {
        let tctx = templates::context(ctx);
        let key = ctx.idempotency_key;
        match ctx.action {
            ActionKind::Crm => crm::render(&self.cfg.monday, &self.templates, &tctx, key),
            ActionKind::Slack => {
                slack::render(&self.cfg.slack, &self.templates, &tctx, ctx.fields, key)
            }
            ActionKind::Gmail => {
                gmail::render(&self.cfg.gmail, &self.templates, &tctx, ctx.request, key)
            }
        }
    }
}

impl ActionRenderer for Renderer {
    fn render(&self, ctx: &RenderContext<'_>) -> Result<serde_json::Value, String> {
        let r = self.render_action(ctx)?;
        serde_json::to_value(r).map_err(|e| format!("cannot store the rendered request: {e}"))
    }
}
