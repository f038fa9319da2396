//! The SQLite queue store: schema and migrations, ingest, claims with fenced leases,
//! edits, decisions with their audit and outbox rows, and the hash-chained audit log.
//! On open, open items are checked again when the policy changed since (`recheck`).
//!
//! Every write runs in `BEGIN IMMEDIATE` so writers queue on SQLite's lock instead of
//! failing halfway; `SQLITE_BUSY` past the busy timeout is retried here and never reaches
//! a user. The database runs in WAL mode, `synchronous=FULL` by default.
//!
//! Writes are shaped for throughput without giving up any of that: a writer's WAL frames go
//! out as one write per commit (`vfs`), heavy writers checkpoint on a thread of their own
//! (`checkpoint`), and the queue's indexes and constraints are laid out so a claim or a
//! decision touches few pages and builds no temporary b-trees (`schema`, v6 and v7).
mod audit;
mod checkpoint;
mod export;
mod ingest;
mod outbox;
mod outcomes;
mod read;
mod recheck;
mod review;
mod schema;
mod stats;
mod vfs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

pub use audit::{Anchor, AuditHead, VerifyReport, anchor_path, canonical_hash, read_anchor};
pub use export::{ExportQuery, Format, csv_cell};
pub use ingest::{IngestItem, IngestOutcome, payload_hash};
pub use outbox::{ActionPreview, AttemptRecord, Claimed, ClaimedRow, Disposition, OutboxRow};
pub use outcomes::Outcome;
pub use recheck::Recheck;
pub use review::idempotency_key;
pub use schema::{MIGRATIONS, SCHEMA_VERSION, migrate_to};

use crate::model::Policy;
use crate::queue::{Millis, QueueError};

/// Durability of commits (SQLite's `synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every commit is on disk before it returns (`synchronous=FULL`).
    #[default]
    Full,
    /// WAL `synchronous=NORMAL`: a power cut may lose the last commits, never corrupts.
    Normal,
}

/// Options for opening a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub durability: Durability,
    pub busy_timeout: Duration,
    pub read_only: bool,
    /// Checkpoint the WAL on a thread of its own instead of inside commits: for processes
    /// that write a lot (ingest, the dispatcher). A console's few commits do not need it.
    pub background_checkpoint: bool,
    /// Where the store's "now" comes from (leases, SLA, ages, undo windows).
    pub clock: crate::clock::Clock,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(10),
            read_only: false,
            background_checkpoint: false,
            clock: crate::clock::Clock::system(),
        }
    }
}

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the queue database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the queue database {path} has schema version {found}, newer than this signoff ({supported}); upgrade signoff"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "the queue database {path} has schema version {found} and this signoff needs {supported}; open it once read-write to migrate"
    )]
    SchemaMismatch {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Queue(q) => q,
            other => QueueError::Storage(other.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection to one queue database, with the policy it enforces.
pub struct Store {
    /// Stopped before the connection closes (fields drop in order).
    checkpointer: Option<checkpoint::Checkpointer>,
    conn: Connection,
    path: PathBuf,
    policy: Arc<Policy>,
    /// The store's "now"; tests pin and move it.
    clock: crate::clock::Clock,
    /// The anchor file, opened on first use, and the last sequence written to it.
    anchor_file: std::cell::RefCell<Option<std::fs::File>>,
    anchored_seq: std::cell::Cell<i64>,
    /// The last listing's match count: (query, change token, total).
    count_cache: std::cell::RefCell<Option<(String, u64, i64)>>,
    /// The volume baseline for an hour: (hour start, median per hour, any history).
    baseline_cache: std::cell::Cell<Option<(Millis, f64, bool)>>,
    /// Renders each action of a decision into the request it will send, stored with it.
    renderer: Option<Arc<dyn ActionRenderer>>,
}

/// Renders one action of a decision into the exact request the dispatcher will send
/// (the actions module implements it). The result is stored in the outbox row in the
/// decision's transaction: the preview is the payload.
pub trait ActionRenderer: Send + Sync {
    fn render(&self, ctx: &RenderContext<'_>) -> std::result::Result<serde_json::Value, String>;
}

/// What a renderer sees: the reviewed fields, never the raw AI output alone.
pub struct RenderContext<'a> {
    pub request_id: i64,
    pub decision_id: i64,
    pub action: crate::model::ActionKind,
    pub idempotency_key: &'a str,
    pub request: &'a crate::model::Request,
    /// The AI's fields with the reviewer's edits on top.
    pub fields: &'a crate::model::FieldValues,
    pub decision: &'a crate::model::DecisionKind,
    pub note: Option<&'a str>,
    pub reviewer: &'a str,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, policy: Arc<Policy>, opts: &StoreOptions) -> Result<Store> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        if !opts.read_only
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let flags = if opts.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let sync = match opts.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        // Writers go through the WAL-coalescing VFS (one write per commit); readers do not
        // write the WAL, and a failed registration falls back to the default VFS.
        let connect = || {
            let conn = match vfs::name().filter(|_| !opts.read_only) {
                Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
                None => Connection::open_with_flags(path, flags),
            }?;
            conn.busy_timeout(opts.busy_timeout)?;
            if !opts.read_only {
                // journal_mode=WAL needs a write lock on first use; retry through contention.
                retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
            }
            conn.pragma_update(None, "synchronous", sync)?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.set_prepared_statement_cache_capacity(64);
            Ok::<_, rusqlite::Error>(conn)
        };
        let conn = connect().map_err(open_err)?;
        let mut store = Store {
            checkpointer: None,
            conn,
            path: path.to_path_buf(),
            policy,
            clock: opts.clock.clone(),
            anchor_file: Default::default(),
            anchored_seq: Default::default(),
            count_cache: Default::default(),
            baseline_cache: Default::default(),
            renderer: None,
        };
        if opts.read_only {
            // A read-only connection cannot migrate: the schema must already be current.
            let found = schema::version(&store.conn)?;
            if found != SCHEMA_VERSION {
                return Err(StoreError::SchemaMismatch {
                    path: path.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
        } else {
            let before = schema::version(&store.conn)?;
            schema::migrate(&mut store.conn, path)?;
            if before != SCHEMA_VERSION {
                // A migration that rewrote a table's text in place (v7) is not re-read by
                // the connection that made it: start afresh.
                store.conn = connect().map_err(open_err)?;
            }
            if let Some(done) = store.recheck_open_items()? {
                tracing::info!(
                    checked = done.checked,
                    reread = done.reread,
                    changed = done.changed,
                    "open items checked again under a changed policy"
                );
                if done.changed > 0 {
                    store.anchor_quietly();
                }
            }
            if opts.background_checkpoint {
                store.conn.pragma_update(
                    None,
                    "wal_autocheckpoint",
                    checkpoint::BACKSTOP_FRAMES,
                )?;
                store.checkpointer = Some(checkpoint::Checkpointer::start(path)?);
            }
        }
        Ok(store)
    }

    /// Sets SQLite's page cache for this connection. Bulk ingest wants more than the 2 MB
    /// default (a 2,000-item batch dirties ~12 MB, and spilling the cache mid-transaction
    /// writes pages twice); the console keeps the default to stay small.
    pub fn set_cache_size_mib(&self, mib: u32) -> Result<()> {
        self.conn
            .pragma_update(None, "cache_size", -(i64::from(mib) * 1024))?;
        Ok(())
    }

    /// Sets the renderer decisions use for their outbox payloads.
    pub fn set_renderer(&mut self, renderer: Arc<dyn ActionRenderer>) {
        self.renderer = Some(renderer);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy, shared (work done ahead of a write under it is recognised by it).
    pub fn policy_arc(&self) -> Arc<Policy> {
        self.policy.clone()
    }

    /// The raw connection, for tests and benchmarks that inspect the database.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The store's clock (shared with whoever gave it).
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// Stops this store's clock at the current time; [`Store::advance_clock`] still moves it.
    pub fn freeze_clock(&self) {
        self.clock.freeze();
    }

    /// Moves this store's clock (tests of lease expiry and undo windows).
    pub fn advance_clock(&self, ms: Millis) {
        self.clock.advance(ms);
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committing on `Ok`. A busy database is
    /// retried (the busy timeout already waited), so callers never see `SQLITE_BUSY`.
    pub(crate) fn write<T>(
        &mut self,
        mut f: impl FnMut(&Transaction<'_>, Millis, &Policy) -> Result<T>,
    ) -> Result<T> {
        if let Some(c) = &self.checkpointer
            && c.wants_cycle()
        {
            c.finish_cycle(&self.conn);
        }
        let mut attempt = 0u32;
        loop {
            let now = self.now();
            let res = (|| {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                let out = f(&tx, now, &self.policy)?;
                tx.commit()?;
                if let Some(c) = &self.checkpointer {
                    c.poke();
                }
                Ok(out)
            })();
            match res {
                Err(StoreError::Sql(e)) if is_busy(&e) && attempt < 50 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5 + u64::from(attempt) * 5));
                }
                other => return other,
            }
        }
    }

    /// `PRAGMA data_version` (changes when another connection commits) combined with this
    /// connection's own change count: a cheap "did anything change" token.
    pub fn change_token(&self) -> Result<u64> {
        let dv: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok(((dv as u64) << 32) ^ self.conn.total_changes())
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if is_busy(&e) && attempt < 50 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
