//! The backends the behavioural suite runs against, behind one factory: a [`Harness`] holds
//! an `Arc<dyn Queue>` on a fresh, empty store of one backend, the pinned clock that store
//! reads, and the few things the `Queue` trait does not do (ingest, the dispatcher's side
//! of the outbox, verifying the audit log), each a clearly named hook per backend.
//!
//! - [`Backend::Sqlite`]: a [`LocalQueue`] on a temp file.
//! - [`Backend::Postgres`]: a fresh database in the test cluster (`support/pg.rs`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use signoff::clock::Clock;
use signoff::ingest::{Problem, Report};
use signoff::model::Policy;
use signoff::pg::{PgOptions, PgQueue};
use signoff::queue::{LocalQueue, Queue, QueueError};
use signoff::store::{AttemptRecord, Claimed, Disposition, StoreOptions, VerifyReport};

use super::pg;

/// The time every harness's clock starts at: 2026-11-21T12:00:00Z.
pub const T0: i64 = 1_795_262_400_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One backend's store, fresh and empty, and its hooks.
pub struct Harness {
    pub backend: Backend,
    pub queue: Arc<dyn Queue>,
    /// The store's clock, stopped at [`T0`]: a test moves it with `advance`.
    pub clock: Clock,
    pub policy: Arc<Policy>,
    imp: Imp,
    /// Holds the SQLite file or the PostgreSQL backend's audit key.
    _dir: tempfile::TempDir,
}

enum Imp {
    Sqlite {
        local: Arc<LocalQueue>,
        path: PathBuf,
        opts: StoreOptions,
    },
    Postgres {
        pg: Arc<PgQueue>,
        url: String,
        opts: PgOptions,
    },
}

impl Harness {
    /// A fresh store of `backend` with the default policy; `None` when the test is to be
    /// skipped (PostgreSQL not installed outside CI, after a loud notice).
    pub async fn open(backend: Backend) -> Option<Harness> {
        Harness::open_with(backend, Policy::default()).await
    }

    pub async fn open_with(backend: Backend, policy: Policy) -> Option<Harness> {
        let policy = Arc::new(policy);
        let clock = Clock::fixed(T0);
        let dir = tempfile::tempdir().expect("temp dir");
        let (queue, imp): (Arc<dyn Queue>, Imp) = match backend {
            Backend::Sqlite => {
                let path = dir.path().join("queue.db");
                let opts = StoreOptions {
                    clock: clock.clone(),
                    ..StoreOptions::default()
                };
                let local = Arc::new(
                    LocalQueue::open(&path, policy.clone(), &opts).expect("open the SQLite queue"),
                );
                (local.clone(), Imp::Sqlite { local, path, opts })
            }
            Backend::Postgres => {
                let db = pg::database()?;
                let opts = PgOptions {
                    clock: clock.clone(),
                    key_path: dir.path().join("audit.key"),
                    // Two handles and sixteen reviewers per test, several tests at once.
                    pool_size: 8,
                    ..PgOptions::default()
                };
                let pg = Arc::new(
                    PgQueue::open(&db.url, policy.clone(), &opts)
                        .await
                        .unwrap_or_else(|e| panic!("open the PostgreSQL queue {}: {e}", db.url)),
                );
                (
                    pg.clone(),
                    Imp::Postgres {
                        pg,
                        url: db.url,
                        opts,
                    },
                )
            }
        };
        Some(Harness {
            backend,
            queue,
            clock,
            policy,
            imp,
            _dir: dir,
        })
    }

    /// Another handle on the same store, independent of this one (its own connections; on
    /// PostgreSQL its own pool, as a second server would have), reading the same clock.
    pub async fn second_handle(&self) -> Arc<dyn Queue> {
        match &self.imp {
            Imp::Sqlite { path, opts, .. } => Arc::new(
                LocalQueue::open(path, self.policy.clone(), opts).expect("open a second handle"),
            ),
            Imp::Postgres { url, opts, .. } => Arc::new(
                PgQueue::open(url, self.policy.clone(), opts)
                    .await
                    .unwrap_or_else(|e| panic!("open a second PostgreSQL handle {url}: {e}")),
            ),
        }
    }

    /// Ingests `body` (JSON Lines, an array or an object) through the backend's ingest path,
    /// as `signoff ingest` and `POST /v1/ingest` do.
    pub async fn ingest(&self, body: impl Into<Vec<u8>>) -> (Report, Vec<Problem>) {
        let r = match &self.imp {
            Imp::Sqlite { local, .. } => local.ingest("test.jsonl", body.into(), "system").await,
            Imp::Postgres { pg, .. } => pg.ingest("test.jsonl", body.into(), "system").await,
        };
        r.unwrap_or_else(|e| panic!("{:?}: ingest failed: {e}", self.backend))
    }

    /// Ingests these requests as JSON Lines; every one must be taken.
    pub async fn seed(&self, requests: &[serde_json::Value]) -> Report {
        let body: String = requests.iter().map(|r| format!("{r}\n")).collect();
        let (report, problems) = self.ingest(body).await;
        assert!(problems.is_empty(), "{problems:?}");
        report
    }

    /// The audit log verified in full (chain, MACs, anchor, and the decisions and outbox
    /// rows it must account for): the backend's own verifier.
    pub async fn verify_audit(&self) -> VerifyReport {
        let r = match &self.imp {
            Imp::Sqlite { local, .. } => local
                .on_reader(|s| s.verify_audit(|_| {}))
                .await
                .map_err(|e| e.to_string()),
            Imp::Postgres { pg, .. } => pg.verify_audit().await.map_err(|e| e.to_string()),
        };
        r.unwrap_or_else(|e| panic!("{:?}: verify failed: {e}", self.backend))
    }

    /// Ends a test: the audit log verifies, with nothing unaccounted for.
    pub async fn finish(self) {
        let report = self.verify_audit().await;
        assert_eq!(
            report.broken, None,
            "{:?}: the audit chain is broken",
            self.backend
        );
        assert!(
            report.unaccounted.is_empty(),
            "{:?}: the audit log does not account for {:?}",
            self.backend,
            report.unaccounted
        );
        assert!(report.entries > 0);
    }

    /// The dispatcher's side of the outbox: every due action is leased as a worker would,
    /// `action_id` is recorded as a dead letter (a permanent failure) and the others as
    /// retrying an hour later.
    pub async fn make_dead(&self, action_id: i64) {
        const WORKER: &str = "test-worker";
        let now = self.clock.now();
        let round = move |claimed: Claimed| -> (Vec<AttemptRecord>, bool) {
            let records: Vec<AttemptRecord> = claimed
                .rows
                .iter()
                .map(|row| AttemptRecord {
                    id: row.id,
                    request_id: row.request_id,
                    attempt: row.attempts,
                    disposition: if row.id == action_id {
                        Disposition::Dead
                    } else {
                        Disposition::Retry(now + 3_600_000)
                    },
                    error: (row.id == action_id).then(|| "permanent: test".into()),
                    response: "{}".into(),
                    audit: serde_json::json!({"outbox_id": row.id, "test": true}),
                })
                .collect();
            let found = records.iter().any(|r| r.id == action_id);
            (records, found)
        };
        let r: Result<bool, String> = match &self.imp {
            Imp::Sqlite { local, .. } => local
                .on_writer(move |s| {
                    let (records, found) = round(s.claim_due(WORKER, 60_000, 100)?);
                    s.record_attempts(WORKER, &records)?;
                    Ok(found)
                })
                .await
                .map_err(|e| e.to_string()),
            Imp::Postgres { pg, .. } => {
                async {
                    let db = pg.db();
                    let (records, found) = round(
                        db.claim_due(WORKER, 60_000, 100)
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                    db.record_attempts(WORKER, &records)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(found)
                }
                .await
            }
        };
        let found = r.unwrap_or_else(|e| panic!("{:?}: outbox round failed: {e}", self.backend));
        assert!(found, "action {action_id} was not due");
    }
}

/// A queue error's variant, for assertions that name what was expected.
pub fn err_of<T: std::fmt::Debug>(r: Result<T, QueueError>) -> QueueError {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}
