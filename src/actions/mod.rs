//! Outbound actions: rendering monday.com, Slack and Gmail requests from the
//! reviewed fields, and the dispatcher that sends them through the outbox.
//!
//! - [`renderer`] gives the store its [`ActionRenderer`]: at approval each action becomes
//!   the exact HTTP requests it will send ([`payload::Rendered`]), stored in the outbox row.
//! - [`dispatch_with`] runs the outbox: leases, timeouts, classification ([`classify`]), backoff
//!   ([`backoff`]), reconciliation of ambiguous outcomes ([`reconcile`]), dead letters,
//!   per-provider rate limits, Gmail token refresh, an audit entry per attempt and outcome.
//! - Sandbox: with `mode = "sandbox"` (the default) or a provider's credentials missing,
//!   rows are rendered and stored and marked `sandbox`; nothing leaves the machine.
pub mod backoff;
mod check;
pub mod classify;
mod config;
pub mod deliver;
mod dispatcher;
mod doctor;
mod example;
pub mod http;
pub mod payload;
pub mod preview;
pub mod ratelimit;
pub mod reconcile;
pub mod render;
pub mod templates;
pub mod token;

use std::path::Path;
use std::sync::Arc;

pub use config::{
    ActionsConfig, ColumnMap, ColumnType, DispatchConfig, GmailConfig, Mode, MondayConfig,
    SlackConfig,
};
pub use dispatcher::{DispatchError, DispatchSummary};
pub use doctor::{DoctorCheck, Status as DoctorStatus};
pub use example::EXAMPLE;
pub use preview::{preview_text, result_text};
pub use render::Renderer;

use crate::model::Policy;
use crate::store::{ActionRenderer, StoreOptions};

/// Templates or mapping that cannot work, by config key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid [actions] config: {}", .0.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))]
pub struct ConfigError(pub Vec<(String, String)>);

/// The renderer decisions use (templates are compiled and test-rendered here).
pub fn renderer(
    cfg: &ActionsConfig,
    policy: Arc<Policy>,
) -> Result<Arc<dyn ActionRenderer>, ConfigError> {
    let r = Renderer::new(cfg, policy).map_err(ConfigError)?;
    Ok(Arc::new(r))
}

/// Config problems as `(dotted key, message naming what is allowed)`.
pub fn check_config(cfg: &ActionsConfig) -> Vec<(String, String)> {
    check::check(cfg)
}

/// Runs the outbox with the default store options until `shutdown` resolves, or — with
/// `once` — until nothing is due. `worker` names this dispatcher in leases and the audit log.
pub async fn dispatch_until(
    db: &Path,
    policy: Arc<Policy>,
    cfg: &ActionsConfig,
    once: bool,
    worker: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<DispatchSummary> {
    dispatch_with(
        db,
        policy,
        &StoreOptions::default(),
        cfg,
        once,
        worker,
        shutdown,
    )
    .await
}

/// Like [`dispatch_until`], opening the database with the configured store options
/// (durability, busy timeout) instead of the defaults.
pub async fn dispatch_with(
    db: &Path,
    policy: Arc<Policy>,
    store: &StoreOptions,
    cfg: &ActionsConfig,
    once: bool,
    worker: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<DispatchSummary> {
    Ok(dispatcher::run(db, policy, store, cfg, once, worker, shutdown).await?)
}

/// The store a dispatcher runs the outbox of.
pub enum OutboxStore {
    /// A SQLite file, opened with these options.
    Sqlite(std::path::PathBuf, StoreOptions),
    /// A PostgreSQL queue shared with other instances: rows are leased with
    /// `FOR UPDATE SKIP LOCKED`, so each is attempted by one dispatcher at a time.
    Postgres(Arc<crate::pg::PgDb>),
}

impl OutboxStore {
    /// Runs the outbox until `shutdown` resolves (or, with `once`, until nothing is due).
    pub async fn dispatch(
        self,
        policy: Arc<Policy>,
        cfg: &ActionsConfig,
        once: bool,
        worker: &str,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<DispatchSummary> {
        match self {
            OutboxStore::Sqlite(db, opts) => {
                dispatch_with(&db, policy, &opts, cfg, once, worker, shutdown).await
            }
            OutboxStore::Postgres(db) => {
                let _ = (db, policy, cfg, once, worker, shutdown);
                anyhow::bail!("the dispatcher does not run on PostgreSQL yet")
            }
        }
    }
}

/// `signoff doctor`'s checks of each configured integration.
pub async fn doctor(cfg: &ActionsConfig) -> Vec<DoctorCheck> {
    doctor::doctor(cfg).await
}
