//! [`Queue`] over PostgreSQL: every call runs on the pool; the change token counts this
//! process's commits and every change any instance announced. With
//! [`PgQueue::with_group_commit`] (the queue server), claims, heartbeats and decisions go
//! to a writer task that commits those queued meanwhile together.
use std::sync::Arc;

use crate::model::{DecisionKind, EditableField, Policy};
use crate::queue::{
    ActionPreview, AuditEntry, Changes, Claim, Counts, Decision, ItemDetail, ListQuery, Millis,
    Page, Queue, QueueError, Receipt, Result,
};
use crate::store::{BatchAnswer, BatchOp};

use super::{PgDb, PgOptions};

/// The queue on a PostgreSQL database.
pub struct PgQueue {
    db: Arc<PgDb>,
    changes: super::notify::Listener,
    /// The group-commit writer's queue, when there is one. Dropping it ends the writer
    /// once the jobs already queued are answered.
    group: Option<tokio::sync::mpsc::UnboundedSender<BatchJob>>,
}

/// One write waiting for the group-commit writer, and where its answer goes.
struct BatchJob {
    op: BatchOp,
    /// The Unix user the write is made for, when not this process's.
    os_user: Option<String>,
    answer: tokio::sync::oneshot::Sender<Result<BatchAnswer>>,
}

/// The group-commit writer: takes every write queued while the previous transaction was
/// committing into the next one ([`PgDb::write_batch`]), on one pooled connection at a
/// time.
async fn run_group_commit(
    db: Arc<PgDb>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<BatchJob>,
    max_batch: usize,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let work: Vec<(BatchOp, Option<String>)> = batch
            .iter()
            .map(|j| (j.op.clone(), j.os_user.clone()))
            .collect();
        match db.write_batch(&work).await {
            Ok(results) => {
                for (job, r) in batch.into_iter().zip(results) {
                    let _ = job.answer.send(r.map_err(QueueError::from));
                }
            }
            Err(e) => {
                let e = QueueError::from(e);
                for job in batch {
                    let _ = job.answer.send(Err(e.clone()));
                }
            }
        }
    }
}

/// A batched write answered with the wrong kind of answer (a bug, not a user's error).
fn unexpected(got: Result<BatchAnswer>) -> QueueError {
    match got {
        Err(e) => e,
        Ok(a) => QueueError::Storage(format!("the group-commit writer answered {a:?}")),
    }
}

/// The claim a batched claim or heartbeat answered with.
fn claimed(got: Result<BatchAnswer>) -> Result<Option<Claim>> {
    match got {
        Ok(BatchAnswer::Claim(c)) => Ok(c),
        other => Err(unexpected(other)),
    }
}

/// The claim a batched claim of one item or heartbeat answered with (never none).
fn one_claim(got: Result<BatchAnswer>) -> Result<Claim> {
    claimed(got)?.ok_or_else(|| unexpected(Ok(BatchAnswer::Claim(None))))
}

impl PgQueue {
    /// Connects, migrates and starts listening for other instances' changes.
    pub async fn open(
        url: &str,
        policy: Arc<Policy>,
        opts: &PgOptions,
    ) -> std::result::Result<PgQueue, super::PgError> {
        let db = Arc::new(PgDb::open(url, policy, opts).await?);
        match db.recheck_open_items().await {
            Ok(Some(done)) => tracing::info!(
                checked = done.checked,
                reread = done.reread,
                changed = done.changed,
                "open items checked again under a changed policy"
            ),
            Ok(None) => {}
            // Opening is not writing: `audit verify` must still open a database whose log
            // does not match its head. Every write refuses until it does.
            Err(e @ super::PgError::AuditRefused(_)) => {
                tracing::warn!(error = %e, "open items not checked again under the changed policy");
            }
            Err(e) => return Err(e),
        }
        let changes = super::notify::Listener::start(url, opts, db.clone()).await?;
        Ok(PgQueue {
            db,
            changes,
            group: None,
        })
    }

    /// Claims, heartbeats and decisions go through a group-commit writer: those that
    /// arrive while a transaction is committing share the next one (at most `max_batch`),
    /// each in a savepoint of its own, and each caller is answered once its batch is
    /// durable. The audit head is locked once per batch instead of once per write, so
    /// instances sharing the database take turns per batch. Other writes are unchanged.
    /// Needs a Tokio runtime (the writer is a task); without one, writes commit one by one.
    pub fn with_group_commit(mut self, max_batch: usize) -> Self {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                rt.spawn(run_group_commit(self.db.clone(), rx, max_batch.max(1)));
                self.group = Some(tx);
            }
            Err(e) => tracing::warn!(
                "no group commit (no async runtime to run its writer: {e}); writes commit one by one"
            ),
        }
        self
    }

    /// Sends `op` to the group-commit writer and waits for its answer (given once its
    /// transaction is durable). `None` without group commit: the caller writes alone.
    async fn batched(&self, op: BatchOp) -> Option<Result<BatchAnswer>> {
        let jobs = self.group.as_ref()?;
        if let Err(e) = self.db.writable() {
            return Some(Err(e.into()));
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = BatchJob {
            op,
            os_user: crate::queue::acting_user(),
            answer,
        };
        jobs.send(job).ok()?;
        Some(answered.await.unwrap_or_else(|_| {
            Err(QueueError::Storage(
                "the group-commit writer stopped".into(),
            ))
        }))
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
        if let Some(r) = self.batched(BatchOp::ClaimNext(reviewer.into())).await {
            return claimed(r);
        }
        self.db.writable()?;
        Ok(self.db.claim_next(reviewer).await?)
    }

    async fn claim(&self, id: i64, reviewer: &str) -> Result<Claim> {
        if let Some(r) = self.batched(BatchOp::Claim(id, reviewer.into())).await {
            return one_claim(r);
        }
        self.db.writable()?;
        Ok(self.db.claim(id, reviewer).await?)
    }

    async fn heartbeat(&self, claim: &Claim) -> Result<Claim> {
        if let Some(r) = self.batched(BatchOp::Heartbeat(claim.clone())).await {
            return one_claim(r);
        }
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
        if let Some(r) = self
            .batched(BatchOp::Decide(claim.clone(), decision.clone()))
            .await
        {
            return match r {
                Ok(BatchAnswer::Receipt(receipt)) => Ok(receipt),
                other => Err(unexpected(other)),
            };
        }
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
