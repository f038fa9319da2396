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
mod anchor;
mod audit;
mod checkpoint;
pub(crate) mod compare;
pub(crate) mod export;
mod files;
pub(crate) mod ingest;
pub(crate) mod inspect;
pub(crate) mod outbox;
mod outcomes;
pub(crate) mod read;
pub(crate) mod recheck;
pub(crate) mod review;
mod schema;
mod shadow;
pub(crate) mod stats;
pub(crate) mod tokens;
pub(crate) mod validation;
pub(crate) mod verify;
mod vfs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

pub use anchor::{Anchor, AuditKey, KEY_FILE, KeyProblem, anchor_path, key_path, read_anchor};
pub use audit::{AuditHead, GENESIS, canonical_hash};
pub use export::{ExportQuery, Format, csv_cell};
pub use files::FileMode;
pub use ingest::{IngestItem, IngestOutcome, payload_hash};
pub use inspect::{OutboxEntry, QuarantineEntry};
pub use outbox::{ActionPreview, AttemptRecord, Claimed, ClaimedRow, Disposition, OutboxRow};
pub use outcomes::Outcome;
pub use recheck::Recheck;
pub use review::{BatchAnswer, BatchOp, idempotency_key};
// The rules a claim, an edit, a decision, an undo, a resend and an outcome follow, shared
// with the PostgreSQL backend, which writes the same rows with its own SQL.
pub(crate) use outbox::{PAUSED_KEY, kill_switch_kind, resend_detail, resend_verdict};
pub(crate) use outcomes::{outcome_detail, outcome_reason, outcome_state};
pub(crate) use read::fields_with_edits;
pub(crate) use review::{
    NewDecision, claim_verdict, decided_detail, decision_terms, edit_column, edit_value,
    edited_detail, expired_detail, lease_detail, lease_until, lease_verdict, render_actions,
    revision_verdict, undo_too_late, undo_verdict, undone_detail,
};
pub use schema::{KEYED_KIND, MIGRATIONS, SCHEMA_VERSION, migrate_to};
pub use tokens::{IdempotentAnswer, TokenRecord};
pub use validation::{ADOPTED_KIND, InForce, PolicyCheck, SIGNED_OFF_KIND, SignedOff};
pub use verify::{VerifyOptions, VerifyReport};

use crate::model::Policy;
use crate::queue::{Millis, QueueError};
use audit::AuditWriter;

/// Creates an audit key file at `path` (mode 0600) unless one is there; returns the key in
/// the file either way.
pub fn create_audit_key(path: &Path) -> Result<AuditKey> {
    if let Some(dir) = path.parent() {
        files::create_dir(dir, &FileMode::default())
            .map_err(|e| files::io_error(dir, "create", e))?;
    }
    anchor::create_key(path, &FileMode::default())
}

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
    /// The group that shares the store's files (`store.group`): they are created 0660 and
    /// given to it; `None`: 0600, owner only.
    pub group: Option<u32>,
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
            group: None,
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
    #[error("{0}")]
    Permission(Box<Denied>),
    #[error("cannot {what} {path}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "the audit log does not match its anchor ({0}); run `signoff audit verify`; nothing was written"
    )]
    AuditRefused(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A file of the store this process may not read or write, with who owns it.
#[derive(Debug)]
pub struct Denied {
    pub path: PathBuf,
    /// "read" or "write".
    pub access: &'static str,
    pub owner: String,
    pub group: String,
    /// Octal, e.g. "0600".
    pub mode: String,
    /// The Unix user this process runs as.
    pub me: String,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Denied {
            path,
            access,
            owner,
            group,
            mode,
            me,
        } = self;
        write!(
            f,
            "cannot {access} {}: it belongs to {owner} (group {group}, mode {mode}) and signoff runs as {me}; ",
            path.display()
        )?;
        if *access == "write" {
            write!(
                f,
                "to look without changing anything, add --read-only; to work in this queue, "
            )?;
        }
        write!(
            f,
            "ask {owner} for access (a team shares one queue through store.group or `signoff serve`)"
        )
    }
}

impl StoreError {
    /// A permission refusal from SQLite ("attempt to write a readonly database", "unable to
    /// open database file") explained with the file, its owner and mode, when one of the
    /// database's files is not open to this process.
    pub(crate) fn explained(self, db: &Path, write: bool) -> StoreError {
        match self {
            StoreError::Sql(e) if files::is_permission(&e) => {
                files::explain(db, write).unwrap_or(StoreError::Sql(e))
            }
            StoreError::Open { path, source } if files::is_permission(&source) => {
                files::explain(db, write).unwrap_or(StoreError::Open { path, source })
            }
            other => other,
        }
    }
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Queue(q) => q,
            e @ StoreError::AuditRefused(_) => QueueError::AuditRefused(e.to_string()),
            StoreError::Permission(d) => QueueError::Permission(d.to_string()),
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
    /// The audit key and anchor as this writer last saw them.
    audit: anchor::AuditState,
    /// The Unix user recorded on every audit row this store writes.
    os_user: String,
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
        if let Some(url) = path.to_str().filter(|p| crate::pg::is_url(p)) {
            return Err(StoreError::Queue(QueueError::Invalid(format!(
                "{} is a PostgreSQL queue: it is served by `signoff serve --db URL`, and consoles and commands reach it with --remote (or `remote` in the config); `signoff migrate` and `signoff audit verify` also take the URL",
                crate::pg::redact(url)
            ))));
        }
        let write = !opts.read_only;
        let open_err = |source| {
            StoreError::Open {
                path: path.to_path_buf(),
                source,
            }
            .explained(path, write)
        };
        let files = FileMode { group: opts.group };
        if write {
            let created = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) => {
                    files::create_dir(dir, &files).map_err(|e| files::io_error(dir, "create", e))
                }
                None => Ok(()),
            };
            // The file exists before SQLite opens it, with its mode set whatever the umask:
            // SQLite gives the -wal and -shm files the database file's mode and owner.
            created
                .and_then(|()| {
                    files::precreate_db(path, &files)
                        .map_err(|e| files::io_error(path, "create", e))
                })
                .map_err(|e| match e {
                    StoreError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::PermissionDenied =>
                    {
                        files::explain(path, true).unwrap_or(StoreError::Io {
                            path: path.to_path_buf(),
                            what: "create",
                            source,
                        })
                    }
                    other => other,
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
            if !opts.read_only {
                // A write to `requests` fires the counters' triggers, so SQLite keeps a
                // statement journal for it; once one outgrows 64 KiB in a transaction it
                // goes to a temp file and every later statement of that transaction writes
                // its page images there (~17 KB an item in a 2,000-item ingest). In memory
                // it is one statement's pages at a time.
                conn.pragma_update(None, "temp_store", "MEMORY")?;
            }
            conn.set_prepared_statement_cache_capacity(64);
            Ok::<_, rusqlite::Error>(conn)
        };
        if write
            && let Ok(meta) = std::fs::metadata(path)
            && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o007 != 0
        {
            // Files created by earlier versions keep their mode; say so rather than change
            // what other users of the file may rely on.
            tracing::warn!(
                db = %path.display(),
                mode = format!("{:04o}", std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777),
                "the queue database is open to other users; chmod 600 it (and its -wal, -shm and anchor), or 660 with store.group"
            );
        }
        let conn = connect().map_err(open_err)?;
        if write && conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            // SQLite opens a file it may read but not write read-only, without a word.
            return Err(
                files::explain(path, true).unwrap_or_else(|| StoreError::Open {
                    path: path.to_path_buf(),
                    source: rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                        Some("the database file is not writable".into()),
                    ),
                }),
            );
        }
        let mut store = Store {
            checkpointer: None,
            conn,
            path: path.to_path_buf(),
            policy,
            clock: opts.clock.clone(),
            audit: anchor::AuditState::new(path, files),
            os_user: crate::identity::os_user().to_string(),
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
            schema::migrate(&mut store.conn, path, &files).map_err(|e| e.explained(path, true))?;
            if before != SCHEMA_VERSION {
                // A migration that rewrote a table's text in place (v7) is not re-read by
                // the connection that made it: start afresh.
                store.conn = connect().map_err(open_err)?;
            }
            match store.recheck_open_items() {
                Ok(Some(done)) => tracing::info!(
                    checked = done.checked,
                    reread = done.reread,
                    changed = done.changed,
                    "open items checked again under a changed policy"
                ),
                Ok(None) => {}
                // Opening is not writing: `audit verify` must still open a store whose log
                // does not match its anchor. Every write refuses until it does.
                Err(e @ StoreError::AuditRefused(_)) => {
                    tracing::warn!(error = %e, "open items not checked again under the changed policy");
                }
                Err(e) => return Err(e),
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

    /// Sends this connection's sorts and temporary results to temp files, not memory: for
    /// a connection that only reads (the console's), where a window or a sort over a large
    /// filtered queue would otherwise be held in memory. Writers keep them in memory (see
    /// `Store::open`).
    pub fn use_temp_files(&self) -> Result<()> {
        self.conn.pragma_update(None, "temp_store", "FILE")?;
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
        self.write_audited(|tx, now, policy, _| f(tx, now, policy))
    }

    /// [`Store::write`] with an audit writer: its first append checks the chain's head
    /// against the anchor (and refuses on a mismatch), and after a commit that appended,
    /// the anchor moves to the new head.
    pub(crate) fn write_audited<T>(
        &mut self,
        mut f: impl FnMut(&Transaction<'_>, Millis, &Policy, &mut AuditWriter<'_>) -> Result<T>,
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
                let mut audit = AuditWriter::new(&self.audit, &self.os_user);
                let out = f(&tx, now, &self.policy, &mut audit)?;
                let appended = audit.appended();
                tx.commit()?;
                if let Some((head, schema)) = appended {
                    self.audit.committed(&head, schema, now);
                }
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
                other => return other.map_err(|e| e.explained(&self.path, true)),
            }
        }
    }

    /// The Unix user recorded on the audit rows this store writes.
    pub fn os_user(&self) -> &str {
        &self.os_user
    }

    /// Records another user on this store's audit rows (a server acting for the user on
    /// the other end of a connection).
    pub fn set_os_user(&mut self, user: impl Into<String>) {
        self.os_user = user.into();
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
