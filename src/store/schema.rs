//! Schema and migrations, tracked by `PRAGMA user_version`.
use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{Result, StoreError};

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: the queue: requests, their immutable revisions, quarantine, the audit chain.
    r#"
CREATE TABLE requests (
    id              INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending','in_review','approved','rejected','escalated')),
    revision        INTEGER NOT NULL DEFAULT 1,
    payload_sha256  TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    ingested_at     INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    priority_rank   INTEGER NOT NULL,
    intent          TEXT,
    priority        TEXT,
    confidence      REAL,
    confidence_raw  TEXT,
    channel         TEXT,
    sender          TEXT,
    subject         TEXT,
    summary         TEXT,
    ai_escalation   INTEGER NOT NULL DEFAULT 0,
    flags           TEXT NOT NULL DEFAULT '[]',
    flag_count      INTEGER NOT NULL DEFAULT 0,
    hidden_chars    INTEGER NOT NULL DEFAULT 0,
    sample          INTEGER NOT NULL DEFAULT 0,
    claimed_by      TEXT,
    lease_expires   INTEGER,
    fence           INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source, external_id)
);
CREATE INDEX requests_queue ON requests (state, priority_rank, received_at, id);
CREATE INDEX requests_age ON requests (state, received_at);
CREATE INDEX requests_leases ON requests (lease_expires) WHERE state = 'in_review';

CREATE TABLE revisions (
    request_id      INTEGER NOT NULL REFERENCES requests (id),
    revision        INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    payload_sha256  TEXT NOT NULL,
    ingested_at     INTEGER NOT NULL,
    PRIMARY KEY (request_id, revision)
);
CREATE TRIGGER revisions_immutable_update BEFORE UPDATE ON revisions
BEGIN SELECT RAISE(ABORT, 'revisions are immutable'); END;
CREATE TRIGGER revisions_immutable_delete BEFORE DELETE ON revisions
BEGIN SELECT RAISE(ABORT, 'revisions are immutable'); END;

CREATE TABLE quarantine (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    origin  TEXT NOT NULL,
    line    INTEGER,
    reason  TEXT NOT NULL,
    raw     TEXT NOT NULL
);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    request_id  INTEGER,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_request ON audit (request_id, seq) WHERE request_id IS NOT NULL;
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    // v2: review: field edits, decisions, the outbox.
    r#"
ALTER TABLE requests ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN decision_id INTEGER;

CREATE TABLE edits (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    revision    INTEGER NOT NULL,
    field       TEXT NOT NULL,
    old_value   TEXT,
    new_value   TEXT,
    reviewer    TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX edits_request ON edits (request_id, id);

CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    revision    INTEGER NOT NULL,
    fence       INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('approve','reject','escalate')),
    reason      TEXT,
    queue       TEXT,
    note        TEXT,
    reviewer    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    fields      TEXT NOT NULL,
    undo_until  INTEGER NOT NULL,
    undone_at   INTEGER
);
CREATE INDEX decisions_request ON decisions (request_id, id);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    request_id       INTEGER NOT NULL REFERENCES requests (id),
    decision_id      INTEGER NOT NULL REFERENCES decisions (id),
    action           TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued','sending','sent','retrying','dead','sandbox','cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    payload          TEXT,
    response         TEXT,
    lease_owner      TEXT,
    lease_expires    INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_request ON outbox (request_id);
"#,
    // v3: shared settings (the actions kill switch, seen by every dispatcher and console).
    r#"
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL
);
"#,
    // v4: outcomes recorded after a decision.
    r#"
CREATE TABLE outcomes (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    value       TEXT NOT NULL,
    reason      TEXT,
    reviewer    TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX outcomes_request ON outcomes (request_id, id);
CREATE INDEX decisions_at ON decisions (at);
CREATE INDEX requests_ingested ON requests (ingested_at);
"#,
    // v5: decided items, most recent decision first (the console's decided view).
    r#"
CREATE INDEX requests_decided ON requests (decision_id) WHERE decision_id IS NOT NULL;
"#,
    // v6: queue indexes that a claim or a decision touches as little as possible. The state
    // is no longer the leading key: open items (pending and in review) live in one partial
    // index in queue order whose entry keeps its place when a claim changes `state` (the
    // last key), and decided items in another in decision order (it replaces
    // `requests_decided`). Queries name the state sets as literals
    // (`state IN ('pending','in_review')`) so SQLite can use them.
    r#"
DROP INDEX requests_queue;
DROP INDEX requests_age;
DROP INDEX requests_decided;
CREATE INDEX requests_open ON requests (priority_rank, received_at, id, state)
    WHERE state IN ('pending','in_review');
CREATE INDEX requests_closed ON requests (decision_id, id, state)
    WHERE state IN ('approved','rejected','escalated');
"#,
    // v7: no IN list of three or more constants where every row write evaluates it: SQLite
    // builds an ephemeral b-tree for such a list on each statement run (a claim+decide
    // built ten). The decided items' index says NOT IN over the two open states, and the
    // CHECK constraints say the same as before with lists of at most two. The CHECK text
    // is rewritten in place (SQLite's documented procedure for changes that leave the
    // stored rows as they are), so a large queue migrates instantly;
    // `after_migration` bumps the schema cookie and checks the text was found.
    r#"
DROP INDEX requests_closed;
CREATE INDEX requests_closed ON requests (decision_id, id, state)
    WHERE state NOT IN ('pending','in_review');
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''pending'',''in_review'',''approved'',''rejected'',''escalated''))',
    'CHECK (state IN (''pending'',''in_review'') OR state IN (''approved'',''rejected'') OR state = ''escalated'')')
    WHERE type = 'table' AND name = 'requests';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (kind IN (''approve'',''reject'',''escalate''))',
    'CHECK (kind IN (''approve'',''reject'') OR kind = ''escalate'')')
    WHERE type = 'table' AND name = 'decisions';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''queued'',''sending'',''sent'',''retrying'',''dead'',''sandbox'',''cancelled''))',
    'CHECK (status IN (''queued'',''sending'') OR status IN (''sent'',''retrying'') OR status IN (''dead'',''sandbox'') OR status = ''cancelled'')')
    WHERE type = 'table' AND name = 'outbox';
PRAGMA writable_schema = OFF;
"#,
    // v8: the priority as the AI sent it (the `priority` column holds it as the policy
    // reads it), and the store's own bookkeeping, e.g. the policy the open items' derived
    // columns (priority as read, queue rank, validation flags) were last computed under.
    // Rows from before keep a NULL `ai_priority` until the first re-check fills it.
    r#"
ALTER TABLE requests ADD COLUMN ai_priority TEXT;
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
"#,
];

/// Work a migration needs beyond its SQL, inside the same transaction.
fn after_migration(tx: &rusqlite::Transaction<'_>, to: i64, path: &Path) -> Result<()> {
    if to == 7 {
        for (table, check) in [
            ("requests", "state IN ('pending','in_review') OR state IN"),
            ("decisions", "kind IN ('approve','reject') OR kind ="),
            ("outbox", "status IN ('queued','sending') OR status IN"),
        ] {
            let found: bool = tx.query_row(
                "SELECT instr(sql, ?2) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table, check],
                |r| r.get(0),
            )?;
            if !found {
                return Err(StoreError::Queue(crate::queue::QueueError::Storage(
                    format!(
                        "cannot migrate {} to schema 7: the {table} table's CHECK constraint is not the one this signoff created",
                        path.display()
                    ),
                )));
            }
        }
        // Other connections re-read the schema when its cookie changes.
        let cookie: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        tx.pragma_update(None, "schema_version", cookie + 1)?;
    }
    Ok(())
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the database to [`SCHEMA_VERSION`], one migration per transaction.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Migrates up to `target` (tests build each earlier version with this).
pub fn migrate_to(conn: &mut Connection, path: &Path, target: i64) -> Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        if v >= target {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[v as usize])?;
        after_migration(&tx, v + 1, path)?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
        tracing::info!(from = v, to = v + 1, "migrated queue schema");
    }
}
