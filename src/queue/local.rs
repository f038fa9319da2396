//! The local queue: a SQLite file on this machine, shared by every reviewer on the host.
//!
//! The store is synchronous; each call runs on tokio's blocking pool so an async caller
//! (the console's event loop) never waits on disk. Reads use their own connection, so a
//! slow filtered listing never holds up a heartbeat or a decision. With
//! [`LocalQueue::with_group_commit`] (the queue server), claims, heartbeats and decisions
//! go to a writer thread that commits those queued meanwhile together.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{
    AuditEntry, Claim, Counts, Decision, ItemDetail, ListQuery, Page, Queue, QueueError, Receipt,
    Result,
};
use crate::model::{EditableField, Policy};
use crate::store::{BatchAnswer, BatchOp, Store, StoreError, StoreOptions};

/// [`Queue`] over a local SQLite file.
pub struct LocalQueue {
    path: PathBuf,
    writer: Arc<Mutex<Store>>,
    reader: Arc<Mutex<Store>>,
    read_only: bool,
    group: Option<GroupCommit>,
}

tokio::task_local! {
    /// The Unix user a task's queue calls are made for, when that is not this process's
    /// (the queue server acting for the peer of a socket connection): the audit rows
    /// record it.
    static ACTING_FOR: String;
}

/// Runs `f` with every [`LocalQueue`] call it makes recorded in the audit log as done by
/// the Unix user `os_user` (the peer of a server's socket connection).
pub async fn acting_for<F: std::future::Future>(os_user: String, f: F) -> F::Output {
    ACTING_FOR.scope(os_user, f).await
}

pub(crate) fn acting() -> Option<String> {
    ACTING_FOR.try_with(Clone::clone).ok()
}

/// One write waiting for the group-commit writer, and where its answer goes.
struct BatchJob {
    op: BatchOp,
    os_user: Option<String>,
    answer: tokio::sync::oneshot::Sender<Result<BatchAnswer>>,
}

/// The group-commit writer: a thread that takes every write queued while the previous
/// transaction was committing into the next one ([`Store::write_batch`]).
struct GroupCommit {
    jobs: Option<std::sync::mpsc::Sender<BatchJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the channel ends the thread once the jobs already queued are answered.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_group_commit(
    writer: Arc<Mutex<Store>>,
    jobs: std::sync::mpsc::Receiver<BatchJob>,
    max_batch: usize,
) {
    while let Ok(first) = jobs.recv() {
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
        let results = match writer.lock() {
            Ok(mut store) => store.write_batch(&work).map_err(QueueError::from),
            Err(_) => Err(QueueError::Storage(
                "queue connection poisoned by a panic".into(),
            )),
        };
        match results {
            Ok(results) => {
                for (job, r) in batch.into_iter().zip(results) {
                    let _ = job.answer.send(r.map_err(QueueError::from));
                }
            }
            Err(e) => {
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
fn claimed(got: Option<Result<BatchAnswer>>) -> Option<Result<Option<Claim>>> {
    Some(match got? {
        Ok(BatchAnswer::Claim(c)) => Ok(c),
        other => Err(unexpected(other)),
    })
}

impl LocalQueue {
    /// Opens (creating and migrating) the database.
    pub fn open(
        path: &Path,
        policy: Arc<Policy>,
        opts: &StoreOptions,
    ) -> Result<LocalQueue, StoreError> {
        let writer = Store::open(path, policy.clone(), opts)?;
        // The reader never writes: no checkpoint thread of its own, whatever the writer has.
        let reader = Store::open(
            path,
            policy,
            &StoreOptions {
                background_checkpoint: false,
                ..opts.clone()
            },
        )?;
        reader.use_temp_files()?;
        Ok(LocalQueue {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            read_only: opts.read_only,
            group: None,
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

    /// Decisions go through a group-commit writer: those that arrive while a transaction
    /// is committing share the next one (at most `max_batch`), each in a savepoint of its
    /// own, and each caller is answered once its batch is durable. For a server with many
    /// reviewers; other writes are unchanged.
    pub fn with_group_commit(mut self, max_batch: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = self.writer.clone();
        let max_batch = max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("signoff-group-commit".into())
            .spawn(move || run_group_commit(writer, rx, max_batch));
        match thread {
            Ok(t) => {
                self.group = Some(GroupCommit {
                    jobs: Some(tx),
                    thread: Some(t),
                });
            }
            Err(e) => tracing::warn!(
                "no group commit (cannot start its thread: {e}); decisions commit one by one"
            ),
        }
        self
    }

    /// Sends `op` to the group-commit writer and waits for its answer (given once its
    /// transaction is durable). `None` without group commit: the caller writes alone.
    async fn batched(&self, op: BatchOp) -> Option<Result<BatchAnswer>> {
        let jobs = self.group.as_ref()?.jobs.as_ref()?;
        if self.read_only {
            return Some(Err(QueueError::ReadOnly));
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = BatchJob {
            op,
            os_user: acting(),
            answer,
        };
        jobs.send(job).ok()?;
        Some(answered.await.unwrap_or_else(|_| {
            Err(QueueError::Storage(
                "the group-commit writer stopped".into(),
            ))
        }))
    }

    /// Marks the queue read-only: every change is refused.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Runs `f` on the writing connection, off the async runtime: for a caller that owns
    /// the store (the queue server's tokens, idempotency records, ingest). Refused when
    /// read-only.
    pub async fn on_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        self.write(f).await
    }

    /// Runs `f` on the reading connection, off the async runtime.
    pub async fn on_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        self.read(f).await
    }

    /// Ingests `body` (an object, an array or JSON Lines) as `signoff ingest` reads a
    /// file, on the writing connection: the totals and each entry not taken, with its
    /// line. Bad entries are quarantined and never stop the good ones.
    pub async fn ingest(
        &self,
        origin: &str,
        body: Vec<u8>,
        actor: &str,
    ) -> Result<(crate::ingest::Report, Vec<crate::ingest::Problem>)> {
        let (origin, actor) = (origin.to_string(), actor.to_string());
        self.write(move |s| {
            let mut problems = Vec::new();
            let report = {
                let mut ingester = crate::ingest::Ingester::new(s, &actor)
                    .on_problem(|p| problems.push(p.clone()));
                ingester.read(&origin, std::io::Cursor::new(body))?;
                ingester.report
            };
            Ok((report, problems))
        })
        .await
    }

    async fn with<T: Send + 'static>(
        store: &Arc<Mutex<Store>>,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        let store = store.clone();
        let acting = acting();
        tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .map_err(|_| QueueError::Storage("queue connection poisoned by a panic".into()))?;
            match acting {
                None => f(&mut guard).map_err(QueueError::from),
                Some(user) => {
                    let own = guard.os_user().to_string();
                    guard.set_os_user(user);
                    let r = f(&mut guard);
                    guard.set_os_user(own);
                    r.map_err(QueueError::from)
                }
            }
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
        if let Some(r) = claimed(self.batched(BatchOp::ClaimNext(reviewer.into())).await) {
            return r;
        }
        let r = reviewer.to_string();
        self.write(move |s| s.claim_next(&r)).await
    }

    async fn claim(&self, id: i64, reviewer: &str) -> Result<Claim> {
        if let Some(r) = claimed(self.batched(BatchOp::Claim(id, reviewer.into())).await) {
            return r.and_then(|c| c.ok_or_else(|| unexpected(Ok(BatchAnswer::Claim(None)))));
        }
        let r = reviewer.to_string();
        self.write(move |s| s.claim(id, &r)).await
    }

    async fn heartbeat(&self, claim: &Claim) -> Result<Claim> {
        if let Some(r) = claimed(self.batched(BatchOp::Heartbeat(claim.clone())).await) {
            return r.and_then(|c| c.ok_or_else(|| unexpected(Ok(BatchAnswer::Claim(None)))));
        }
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
        match self
            .batched(BatchOp::Decide(claim.clone(), decision.clone()))
            .await
        {
            Some(Ok(BatchAnswer::Receipt(r))) => Ok(r),
            Some(other) => Err(unexpected(other)),
            None => {
                let (c, d) = (claim.clone(), decision.clone());
                self.write(move |s| s.decide(&c, &d)).await
            }
        }
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
