//! The local queue: a SQLite file on this machine, shared by every reviewer on the host.
//!
//! The store is synchronous; each call runs on tokio's blocking pool so an async caller
//! (the console's event loop) never waits on disk. Reads use their own connection, so a
//! slow filtered listing never holds up a heartbeat or a decision.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{
    AuditEntry, Claim, Counts, Decision, ItemDetail, ListQuery, Page, Queue, QueueError, Receipt,
    Result,
};
use crate::model::{EditableField, Policy};
use crate::store::{Store, StoreError, StoreOptions};

/// [`Queue`] over a local SQLite file.
pub struct LocalQueue {
    path: PathBuf,
    writer: Arc<Mutex<Store>>,
    reader: Arc<Mutex<Store>>,
    read_only: bool,
}

impl LocalQueue {
    /// Opens (creating and migrating) the database.
    pub fn open(
        path: &Path,
        policy: Arc<Policy>,
        opts: &StoreOptions,
    ) -> Result<LocalQueue, StoreError> {
        let writer = Store::open(path, policy.clone(), opts)?;
        let reader = Store::open(path, policy, opts)?;
        Ok(LocalQueue {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            read_only: opts.read_only,
        })
    }

    /// Renders decisions' actions with `renderer` (stored with each outbox row).
    pub fn with_renderer(self, renderer: Arc<dyn crate::store::ActionRenderer>) -> Self {
        for store in [&self.writer, &self.reader] {
            if let Ok(mut s) = store.lock() {
                s.set_renderer(renderer.clone());
            }
        }
        self
    }

    /// Marks the queue read-only: every change is refused.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    async fn with<T: Send + 'static>(
        store: &Arc<Mutex<Store>>,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .map_err(|_| QueueError::Storage("queue connection poisoned by a panic".into()))?;
            f(&mut guard).map_err(QueueError::from)
        })
        .await
        .map_err(|e| QueueError::Storage(format!("queue task failed: {e}")))?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        Self::with(&self.reader, f).await
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        if self.read_only {
            return Err(QueueError::ReadOnly);
        }
        Self::with(&self.writer, f).await
    }
}

#[async_trait::async_trait]
impl Queue for LocalQueue {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn list(&self, query: &ListQuery) -> Result<Page> {
        let q = query.clone();
        self.read(move |s| s.list(&q)).await
    }

    async fn counts(&self) -> Result<Counts> {
        self.read(|s| s.counts()).await
    }

    async fn get(&self, id: i64) -> Result<ItemDetail> {
        self.read(move |s| s.get(id)).await
    }

    async fn claim_next(&self, reviewer: &str) -> Result<Option<Claim>> {
        let r = reviewer.to_string();
        self.write(move |s| s.claim_next(&r)).await
    }

    async fn claim(&self, id: i64, reviewer: &str) -> Result<Claim> {
        let r = reviewer.to_string();
        self.write(move |s| s.claim(id, &r)).await
    }

    async fn heartbeat(&self, claim: &Claim) -> Result<Claim> {
        let c = claim.clone();
        self.write(move |s| s.heartbeat(&c)).await
    }

    async fn release(&self, claim: &Claim) -> Result<()> {
        let c = claim.clone();
        self.write(move |s| s.release(&c)).await
    }

    async fn edit(&self, claim: &Claim, field: EditableField, value: Option<String>) -> Result<()> {
        let c = claim.clone();
        self.write(move |s| s.edit(&c, field, value).map(|_| ()))
            .await
    }

    async fn decide(&self, claim: &Claim, decision: &Decision) -> Result<Receipt> {
        let (c, d) = (claim.clone(), decision.clone());
        self.write(move |s| s.decide(&c, &d)).await
    }

    async fn undo(&self, id: i64, reviewer: &str) -> Result<Claim> {
        let r = reviewer.to_string();
        self.write(move |s| s.undo(id, &r)).await
    }

    async fn timeline(&self, id: i64) -> Result<Vec<AuditEntry>> {
        self.read(move |s| s.timeline(id)).await
    }

    async fn change_token(&self) -> Result<u64> {
        self.read(|s| s.change_token()).await
    }

    async fn actions_paused(&self) -> Result<bool> {
        self.read(|s| s.actions_paused()).await
    }

    async fn set_actions_paused(&self, paused: bool, reviewer: &str) -> Result<()> {
        let r = reviewer.to_string();
        self.write(move |s| s.set_actions_paused(paused, &r)).await
    }

    async fn resend(&self, action_id: i64, reviewer: &str) -> Result<()> {
        let r = reviewer.to_string();
        self.write(move |s| s.resend(action_id, &r)).await
    }

    async fn record_outcome(
        &self,
        id: i64,
        value: &str,
        reason: Option<&str>,
        reviewer: &str,
    ) -> Result<()> {
        let (v, why, r) = (
            value.to_string(),
            reason.map(str::to_owned),
            reviewer.to_string(),
        );
        self.write(move |s| s.record_outcome(id, &v, why.as_deref(), &r).map(|_| ()))
            .await
    }

    async fn preview_rendered(&self, id: i64, reviewer: &str, digest: &str) -> Result<()> {
        let (r, d) = (reviewer.to_string(), digest.to_string());
        self.write(move |s| {
            s.audit_event(
                &r,
                Some(id),
                "preview_rendered",
                &serde_json::json!({"digest": d}),
            )
            .map(|_| ())
        })
        .await
    }

    async fn preview(
        &self,
        id: i64,
        kind: &crate::model::DecisionKind,
        reviewer: &str,
        note: Option<&str>,
    ) -> Result<Vec<super::ActionPreview>> {
        let (k, r, n) = (kind.clone(), reviewer.to_string(), note.map(str::to_owned));
        self.read(move |s| s.preview_actions(id, &k, &r, n.as_deref()))
            .await
    }

    async fn volume(&self) -> Result<crate::stats::Volume> {
        self.read(|s| s.volume()).await
    }

    async fn stats(&self, since: Option<crate::queue::Millis>) -> Result<crate::stats::Stats> {
        self.read(move |s| s.stats(since)).await
    }
}
