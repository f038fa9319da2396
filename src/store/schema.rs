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
];

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
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
        tracing::info!(from = v, to = v + 1, "migrated queue schema");
    }
}
