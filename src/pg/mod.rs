//! The PostgreSQL backend: the same queue as the SQLite store, for a team past one host.
//! Any number of `signoff serve` instances share one database: claims and outbox leases
//! take rows with `FOR UPDATE SKIP LOCKED`, every audited write appends to one chain through
//! the `audit_head` row (locked last in its transaction, so writers never wait on each other
//! in a cycle), and `NOTIFY` tells every instance's event feed that something changed.
//!
//! The SQL is this backend's own; the vocabulary (claims, decisions, receipts, errors) and
//! the rules computed in Rust (policy columns, audit hashes and MACs) are shared with the
//! SQLite store.
//!
//! A transaction that writes follows one shape:
//! ```text
//! let mut client = db.client().await?;
//! let tx = client.transaction().await?;
//! … its reads and writes …
//! let mut audit = db.audit();          // collects entries
//! audit.push(at, actor, request_id, kind, &detail);
//! audit.append(&tx).await?;            // locks the head row, writes the rows, moves the head
//! tx.commit().await?;
//! db.changed();                        // the change token moves; other instances are told
//! ```
mod audit;
mod compare;
mod conn;
mod ingest;
mod migrate;
mod notify;
mod outbox;
mod policy;
mod queue;
mod read;
mod review;
mod schema;
mod server;
mod tokens;
mod verify;

pub use audit::{CHANGES_CHANNEL, PgAudit, PgAuditHead, notify, read_head};
pub use conn::{PgTarget, is_url, redact};
pub use migrate::{MigrateOptions, MigrateSummary, STOP_AFTER_ENV, TableCount, migrate};
pub use queue::PgQueue;
pub use schema::{MIGRATIONS, SCHEMA_VERSION};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::Policy;
use crate::queue::{Millis, QueueError};
use crate::store::AuditKey;

/// How to open the PostgreSQL queue.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Where "now" comes from (leases, SLA, undo windows).
    pub clock: crate::clock::Clock,
    /// The audit key (32 bytes) every instance on this database shares. Created on the
    /// first start against an empty log; an instance with another key is refused.
    pub key_path: PathBuf,
    /// Every change is refused.
    pub read_only: bool,
    /// Connections in this process's pool.
    pub pool_size: usize,
    /// The password when the URL gives none (`store.password`: inline, `env:` or `file:`);
    /// `PGPASSWORD` and the password file (`PGPASSFILE`, `~/.pgpass`) come after it.
    pub password: Option<crate::secret::Secret>,
    /// A PEM file of the certificate authorities that sign the database server's
    /// certificate (`sslmode=require` and above); the public web roots otherwise.
    pub ca_file: Option<PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            clock: crate::clock::Clock::system(),
            key_path: crate::config::base_dirs().1.join(crate::store::KEY_FILE),
            read_only: false,
            pool_size: 16,
            password: None,
            ca_file: None,
        }
    }
}

/// Why the PostgreSQL queue cannot be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the database URL {url} is not valid: {why}")]
    Url { url: String, why: String },
    #[error("cannot connect to the queue database {url}: {why}")]
    Connect { url: String, why: String },
    #[error(
        "the queue database {url} has schema version {found}, newer than this signoff ({supported}); upgrade signoff"
    )]
    TooNew {
        url: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "the audit key {path} is not the key the audit log in {url} was written with; every server on one database needs the same key: copy it from the first server (mode 0600)"
    )]
    ForeignKey { path: String, url: String },
    #[error("{0}")]
    Key(String),
    #[error(
        "the audit log does not match its head ({0}); run `signoff audit verify`; nothing was written"
    )]
    AuditRefused(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("database error: {}", describe(.0))]
    Sql(#[from] tokio_postgres::Error),
    #[error("no connection to the queue database: {0}")]
    Pool(String),
}

/// The server's own words for an error, not just its class.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(": ");
                s.push_str(d);
            }
            s
        }
        None => e.to_string(),
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => PgError::Sql(e),
            other => PgError::Pool(other.to_string()),
        }
    }
}

impl From<PgError> for QueueError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Queue(q) => q,
            e @ PgError::AuditRefused(_) => QueueError::AuditRefused(e.to_string()),
            PgError::Pool(why) => {
                QueueError::Unavailable(format!("the queue database cannot be reached: {why}"))
            }
            PgError::Sql(e) if e.is_closed() || e.as_db_error().is_none() => {
                QueueError::Unavailable(format!(
                    "the queue database cannot be reached: {}",
                    describe(&e)
                ))
            }
            other => QueueError::Storage(other.to_string()),
        }
    }
}

pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// An open PostgreSQL queue: the pool, the policy it enforces, the audit key.
pub struct PgDb {
    pool: deadpool_postgres::Pool,
    /// The URL without its password, for messages.
    url: String,
    policy: Arc<Policy>,
    clock: crate::clock::Clock,
    key: AuditKey,
    /// The Unix user recorded on audit rows (or the peer a server acts for).
    os_user: String,
    read_only: bool,
    renderer: std::sync::RwLock<Option<Arc<dyn crate::store::ActionRenderer>>>,
    /// Bumped after each commit this process makes; the feed adds what others tell it.
    local_changes: AtomicU64,
}

impl PgDb {
    /// Connects, migrates (under an advisory lock: instances starting together migrate
    /// once) and loads the audit key.
    pub async fn open(url: &str, policy: Arc<Policy>, opts: &PgOptions) -> Result<PgDb> {
        let target = PgTarget::parse(url, opts)?;
        let pool = target.pool(opts.pool_size.max(2))?;
        let shown = target.shown().to_string();
        let mut client = pool.get().await.map_err(|e| PgError::Connect {
            url: shown.clone(),
            why: match e {
                deadpool_postgres::PoolError::Backend(e) => describe(&e),
                other => other.to_string(),
            },
        })?;
        schema::migrate(&mut client, &shown, opts.read_only).await?;
        let key = audit::load_key(&client, &opts.key_path, &shown, opts.read_only).await?;
        drop(client);
        Ok(PgDb {
            pool,
            url: shown,
            policy,
            clock: opts.clock.clone(),
            key,
            os_user: crate::identity::os_user().to_string(),
            read_only: opts.read_only,
            renderer: std::sync::RwLock::new(None),
            local_changes: AtomicU64::new(0),
        })
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Refuses a change on a read-only queue.
    pub fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(PgError::Queue(QueueError::ReadOnly));
        }
        Ok(())
    }

    pub fn set_renderer(&self, renderer: Arc<dyn crate::store::ActionRenderer>) {
        if let Ok(mut r) = self.renderer.write() {
            *r = Some(renderer);
        }
    }

    pub fn renderer(&self) -> Option<Arc<dyn crate::store::ActionRenderer>> {
        self.renderer.read().ok().and_then(|r| r.clone())
    }

    /// An audit writer for one transaction, recording the Unix user this call is made for.
    pub fn audit(&self) -> PgAudit {
        PgAudit::new(
            self.key.clone(),
            crate::queue::acting_user().unwrap_or_else(|| self.os_user.clone()),
        )
    }

    /// After a commit: the change token moves at once for this process's readers (other
    /// instances learn of it through `NOTIFY`, sent inside the transaction by
    /// [`PgAudit::append`]).
    pub fn changed(&self) {
        self.local_changes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn local_changes(&self) -> u64 {
        self.local_changes.load(Ordering::Relaxed)
    }

    pub(crate) fn key(&self) -> &AuditKey {
        &self.key
    }
}
