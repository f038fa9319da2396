//! The audit log on PostgreSQL: the same rows, hashes and MACs as the SQLite store's
//! (`canonical_hash`, `AuditKey::row_mac`), so a log moved across verifies unchanged.
//!
//! One chain for every instance: a transaction collects its entries and appends them as
//! its last step, after locking the `audit_head` row. The head carries a MAC under the
//! audit key, and the writer checks it — and that the row it names is in the log with that
//! hash — before linking to it, so a head or tail changed without the key is refused
//! rather than built on. Locking the head last keeps the wait short (only the appends and
//! the commit run under it) and the lock order the same everywhere (items, then the head).
use std::path::Path;

use deadpool_postgres::GenericClient;

use super::{PgError, Result};
use crate::queue::Millis;
use crate::store::{AuditKey, GENESIS, KeyProblem, canonical_hash};

/// The channel every committed change is announced on.
pub const CHANGES_CHANNEL: &str = "signoff_changes";

/// The chain's newest row as the head row records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgAuditHead {
    pub seq: i64,
    pub hash: String,
}

/// Announces a change to every instance (delivered when the transaction commits).
pub async fn notify(tx: &impl GenericClient) -> Result<()> {
    tx.execute("SELECT pg_notify($1, '')", &[&CHANGES_CHANNEL])
        .await?;
    Ok(())
}

/// The MAC of the head row: binds the sequence number to the hash it names.
fn head_mac(key: &AuditKey, seq: i64, hash: &str) -> String {
    key.row_mac(&format!("head\n{seq}\n{hash}"))
}

/// The key's fingerprint kept in `meta`, so an instance holding another key is refused
/// before it writes a row no one else can verify.
fn key_id(key: &AuditKey) -> String {
    key.row_mac("signoff-audit-key-id")
}

/// Loads the audit key and checks it against the database: the first instance on an
/// empty log creates the key (when there is none) and records its fingerprint; every
/// other must hold the same key.
pub(crate) async fn load_key(
    client: &tokio_postgres::Client,
    path: &Path,
    url: &str,
    read_only: bool,
) -> Result<AuditKey> {
    let recorded: Option<String> = client
        .query_opt("SELECT value FROM meta WHERE key = 'audit_key_id'", &[])
        .await?
        .map(|r| r.get(0));
    let key = match AuditKey::load(path) {
        Ok(k) => k,
        Err(KeyProblem::Missing) if recorded.is_none() && !read_only => {
            crate::store::create_audit_key(path).map_err(|e| PgError::Key(e.to_string()))?
        }
        Err(p) => {
            return Err(PgError::Key(match recorded {
                Some(_) => format!(
                    "{}; the audit log in {url} was written with a key: copy it from the server that created it",
                    p.describe(path)
                ),
                None => p.describe(path),
            }));
        }
    };
    match recorded {
        Some(id) if id == key_id(&key) => {}
        Some(_) => {
            return Err(PgError::ForeignKey {
                path: path.display().to_string(),
                url: url.to_string(),
            });
        }
        None if read_only => {}
        None => {
            client
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('audit_key_id', $1)
                     ON CONFLICT (key) DO NOTHING",
                    &[&key_id(&key)],
                )
                .await?;
            let id: String = client
                .query_one("SELECT value FROM meta WHERE key = 'audit_key_id'", &[])
                .await?
                .get(0);
            // Two instances started on an empty database with different new keys: the
            // second one finds the first one's.
            if id != key_id(&key) {
                return Err(PgError::ForeignKey {
                    path: path.display().to_string(),
                    url: url.to_string(),
                });
            }
            client
                .execute(
                    "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, 0, $1, $2)
                     ON CONFLICT (id) DO NOTHING",
                    &[&GENESIS, &head_mac(&key, 0, GENESIS)],
                )
                .await?;
        }
    }
    Ok(key)
}

/// One entry waiting to be appended.
struct Pending {
    at: Millis,
    actor: String,
    request_id: Option<i64>,
    kind: String,
    detail: String,
}

/// The audit entries of one transaction, appended together at its end.
pub struct PgAudit {
    key: AuditKey,
    os_user: String,
    pending: Vec<Pending>,
}

impl PgAudit {
    pub(crate) fn new(key: AuditKey, os_user: String) -> PgAudit {
        PgAudit {
            key,
            os_user,
            pending: Vec::new(),
        }
    }

    /// Records the Unix user `user` on the entries pushed from now on (one decision of a
    /// batch made for another peer).
    pub fn act_as(&mut self, user: String) {
        self.os_user = user;
    }

    /// Adds an entry; nothing is written until [`PgAudit::append`].
    pub fn push(
        &mut self,
        at: Millis,
        actor: &str,
        request_id: Option<i64>,
        kind: &str,
        detail: &impl serde::Serialize,
    ) {
        self.pending.push(Pending {
            at,
            actor: actor.to_string(),
            request_id,
            kind: kind.to_string(),
            detail: serde_json::to_string(detail).unwrap_or_else(|_| "null".into()),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Locks the head, checks it, writes the entries chained to it, moves the head and
    /// announces the change. The last statement of a write transaction before its commit
    /// (with no entries it only announces). Returns each entry's sequence number.
    pub async fn append(&mut self, tx: &impl GenericClient) -> Result<Vec<i64>> {
        notify(tx).await?;
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let row = tx
            .query_opt(
                "SELECT seq, hash, mac FROM audit_head WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await?
            .ok_or_else(|| {
                PgError::AuditRefused("the head row of the audit log is missing".into())
            })?;
        let (mut seq, mut hash, mac): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        if mac != head_mac(&self.key, seq, &hash) {
            return Err(PgError::AuditRefused(format!(
                "the head row (entry {seq}) was not written with the audit key"
            )));
        }
        if seq > 0 {
            let found: Option<String> = tx
                .query_opt("SELECT hash FROM audit WHERE seq = $1", &[&seq])
                .await?
                .map(|r| r.get(0));
            if found.as_deref() != Some(hash.as_str()) {
                return Err(PgError::AuditRefused(format!(
                    "the head names entry {seq} with hash {hash}, which the log does not hold"
                )));
            }
            let newer: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM audit WHERE seq > $1)",
                    &[&seq],
                )
                .await?
                .get(0);
            if newer {
                return Err(PgError::AuditRefused(format!(
                    "the log holds entries after the head's entry {seq}"
                )));
            }
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .await?;
        let mut seqs = Vec::with_capacity(self.pending.len());
        for p in self.pending.drain(..) {
            let next = seq + 1;
            let h = canonical_hash(
                &hash,
                next,
                p.at,
                &p.actor,
                p.request_id,
                &p.kind,
                &p.detail,
                Some(&self.os_user),
            );
            let row_mac = self.key.row_mac(&h);
            tx.execute(
                &insert,
                &[
                    &next,
                    &p.at,
                    &p.actor,
                    &p.request_id,
                    &p.kind,
                    &p.detail,
                    &hash,
                    &h,
                    &self.os_user,
                    &row_mac,
                ],
            )
            .await?;
            seqs.push(next);
            seq = next;
            hash = h;
        }
        tx.execute(
            "UPDATE audit_head SET seq = $1, hash = $2, mac = $3 WHERE id = 1",
            &[&seq, &hash, &head_mac(&self.key, seq, &hash)],
        )
        .await?;
        Ok(seqs)
    }
}

/// The head as the head row records it.
pub async fn read_head(client: &impl GenericClient) -> Result<PgAuditHead> {
    let row = client
        .query_opt("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
        .await?;
    Ok(match row {
        Some(r) => PgAuditHead {
            seq: r.get(0),
            hash: r.get(1),
        },
        None => PgAuditHead {
            seq: 0,
            hash: GENESIS.into(),
        },
    })
}

/// Whether the head row's MAC is the audit key's.
pub(crate) fn head_ok(key: &AuditKey, seq: i64, hash: &str, mac: &str) -> bool {
    mac == head_mac(key, seq, hash)
}
