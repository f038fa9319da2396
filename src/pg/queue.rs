//! [`Queue`] over PostgreSQL: every call runs on the pool; the change token counts this
//! process's commits and every change any instance announced.
use std::sync::Arc;

use crate::model::{DecisionKind, EditableField, Policy};
use crate::queue::{
    ActionPreview, AuditEntry, Changes, Claim, Counts, Decision, ItemDetail, ListQuery, Millis,
    Page, Queue, Receipt, Result,
};

use super::{PgDb, PgOptions};

/// The queue on a PostgreSQL database.
pub struct PgQueue {
    db: Arc<PgDb>,
    changes: super::notify::Listener,
}

impl PgQueue {
    /// Connects, migrates and starts listening for other instances' changes.
    pub async fn open(
        url: &str,
        policy: Arc<Policy>,
        opts: &PgOptions,
    ) -> std::result::Result<PgQueue, super::PgError> {
        let db = Arc::new(PgDb::open(url, policy, opts).await?);
        let changes = super::notify::Listener::start(url, opts, db.clone()).await?;
        Ok(PgQueue { db, changes })
    }

    /// The database and its policy, for what the queue server and the dispatcher do
    /// beyond the [`Queue`] calls.
    pub fn db(&self) -> &Arc<PgDb> {
        &self.db
    }

    /// Renders decisions' actions with `renderer` (stored with each outbox row).
    pub fn with_renderer(self, renderer: Arc<dyn crate::store::ActionRenderer>) -> Self {
        self.db.set_renderer(renderer);
        self
    }

    /// Ingests `body` (an object, an array or JSON Lines) as `signoff ingest` reads a file:
    /// the totals and each entry not taken, with its line.
    pub async fn ingest(
        &self,
        origin: &str,
        body: Vec<u8>,
        actor: &str,
    ) -> Result<(crate::ingest::Report, Vec<crate::ingest::Problem>)> {
        Ok(self.db.ingest(origin, body, actor).await?)
    }

    /// Walks the audit log and checks every hash, MAC and the head.
    pub async fn verify_audit(
        &self,
    ) -> std::result::Result<crate::store::VerifyReport, super::PgError> {
        self.db.verify_audit().await
    }
}

#[async_trait::async_trait]
impl Queue for PgQueue {
    fn location(&self) -> String {
        self.db.url().to_string()
    }

    async fn list(&self, query: &ListQuery) -> Result<Page> {
        Ok(self.db.list(query).await?)
    }

    async fn counts(&self) -> Result<Counts> {
        Ok(self.db.counts().await?)
    }

    async fn get(&self, id: i64) -> Result<ItemDetail> {
        Ok(self.db.get(id).await?)
    }

    async fn claim_next(&self, reviewer: &str) -> Result<Option<Claim>> {
        self.db.writable()?;
        Ok(self.db.claim_next(reviewer).await?)
    }

    async fn claim(&self, id: i64, reviewer: &str) -> Result<Claim> {
        self.db.writable()?;
        Ok(self.db.claim(id, reviewer).await?)
    }

    async fn heartbeat(&self, claim: &Claim) -> Result<Claim> {
        self.db.writable()?;
        Ok(self.db.heartbeat(claim).await?)
    }

    async fn release(&self, claim: &Claim) -> Result<()> {
        self.db.writable()?;
        Ok(self.db.release(claim).await?)
    }

    async fn edit(&self, claim: &Claim, field: EditableField, value: Option<String>) -> Result<()> {
        self.db.writable()?;
        Ok(self.db.edit(claim, field, value).await?)
    }

    async fn decide(&self, claim: &Claim, decision: &Decision) -> Result<Receipt> {
        self.db.writable()?;
        Ok(self.db.decide(claim, decision).await?)
    }

    async fn undo(&self, id: i64, reviewer: &str) -> Result<Claim> {
        self.db.writable()?;
        Ok(self.db.undo(id, reviewer).await?)
    }

    async fn timeline(&self, id: i64) -> Result<Vec<AuditEntry>> {
        Ok(self.db.timeline(id).await?)
    }

    async fn change_token(&self) -> Result<u64> {
        Ok(self.changes.token())
    }

    fn changes(&self) -> Option<Changes> {
        Some(self.changes.subscribe())
    }

    async fn actions_paused(&self) -> Result<bool> {
        Ok(self.db.actions_paused().await?)
    }

    async fn set_actions_paused(&self, paused: bool, reviewer: &str) -> Result<()> {
        self.db.writable()?;
        Ok(self.db.set_actions_paused(paused, reviewer).await?)
    }

    async fn resend(&self, action_id: i64, reviewer: &str) -> Result<()> {
        self.db.writable()?;
        Ok(self.db.resend(action_id, reviewer).await?)
    }

    async fn record_outcome(
        &self,
        id: i64,
        value: &str,
        reason: Option<&str>,
        reviewer: &str,
    ) -> Result<()> {
        self.db.writable()?;
        Ok(self.db.record_outcome(id, value, reason, reviewer).await?)
    }

    async fn preview_rendered(&self, id: i64, reviewer: &str, digest: &str) -> Result<()> {
        self.db.writable()?;
        self.db
            .audit_event(
                reviewer,
                Some(id),
                "preview_rendered",
                &serde_json::json!({ "digest": digest }),
            )
            .await?;
        Ok(())
    }

    async fn preview(
        &self,
        id: i64,
        kind: &DecisionKind,
        reviewer: &str,
        note: Option<&str>,
    ) -> Result<Vec<ActionPreview>> {
        Ok(self.db.preview_actions(id, kind, reviewer, note).await?)
    }

    async fn volume(&self) -> Result<crate::stats::Volume> {
        Ok(self.db.volume().await?)
    }

    async fn stats(&self, since: Option<Millis>) -> Result<crate::stats::Stats> {
        Ok(self.db.stats(since).await?)
    }
}
