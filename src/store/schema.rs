//! Schema and migrations, tracked by `PRAGMA user_version`.
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::anchor::{self, AnchorFile, AuditKey, KeyProblem};
use super::audit::{self, AuditHead, GENESIS};
use super::files::{self, FileMode};
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
    // v9: who really acted, and a keyed log. Each audit row records the Unix user of the
    // process that wrote it (`os_user`, covered by the row's hash) and a MAC of its hash
    // under the key outside the database (`mac`). Rows already there are keyed once by
    // `after_migration`, as far as the chain and the old anchor vouch for them, and an
    // `audit_keyed` entry records that.
    r#"
ALTER TABLE audit ADD COLUMN os_user TEXT;
ALTER TABLE audit ADD COLUMN mac TEXT;
"#,
    // v10: the queue server's API tokens (only each token's SHA-256 is kept) and the first
    // answer to each idempotent ingest request.
    r#"
CREATE TABLE api_tokens (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    sha256      TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE TABLE idempotency (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    body_sha256  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    answer       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_at ON idempotency (at);
"#,
    // v11: what the console's status bar and the queue's total need, kept current by
    // triggers in the transaction that changes an item, so reading it is a few rows instead
    // of a count over every item. `queue_counts` holds the items per state and priority
    // rank; `open_hours` the open items (pending and in review) per priority rank and hour
    // of receipt (`received_at / 3600000`), from which SLA breaches are summed (plus an
    // index count within the one hour the cutoff falls in). `open_hours` drops a row whose
    // count falls to 0, so it holds only hours that still have open items.
    // `ingest_hours` holds the items ingested per hour (`ingested_at / 3600000`, which never
    // changes), for the volume line. Triggers fire only when the state, the rank or the
    // receipt hour changes: a heartbeat or an edit of another field costs nothing, a claim
    // two rows of `queue_counts`.
    r#"
CREATE TABLE queue_counts (
    state          TEXT NOT NULL,
    priority_rank  INTEGER NOT NULL,
    n              INTEGER NOT NULL,
    PRIMARY KEY (state, priority_rank)
) WITHOUT ROWID;
CREATE TABLE open_hours (
    priority_rank  INTEGER NOT NULL,
    hour           INTEGER NOT NULL,
    n              INTEGER NOT NULL,
    PRIMARY KEY (priority_rank, hour)
) WITHOUT ROWID;
CREATE TABLE ingest_hours (
    hour  INTEGER PRIMARY KEY,
    n     INTEGER NOT NULL
);
INSERT INTO ingest_hours (hour, n)
    SELECT ingested_at / 3600000, COUNT(*) FROM requests GROUP BY 1;
INSERT INTO queue_counts (state, priority_rank, n)
    SELECT state, priority_rank, COUNT(*) FROM requests GROUP BY state, priority_rank;
INSERT INTO open_hours (priority_rank, hour, n)
    SELECT priority_rank, received_at / 3600000, COUNT(*) FROM requests
    WHERE state IN ('pending','in_review') GROUP BY 1, 2;

CREATE TRIGGER queue_counts_insert AFTER INSERT ON requests
BEGIN
    INSERT INTO queue_counts (state, priority_rank, n) VALUES (NEW.state, NEW.priority_rank, 1)
        ON CONFLICT (state, priority_rank) DO UPDATE SET n = n + 1;
    INSERT INTO open_hours (priority_rank, hour, n)
        SELECT NEW.priority_rank, NEW.received_at / 3600000, 1
        WHERE NEW.state IN ('pending','in_review')
        ON CONFLICT (priority_rank, hour) DO UPDATE SET n = n + 1;
    INSERT INTO ingest_hours (hour, n) VALUES (NEW.ingested_at / 3600000, 1)
        ON CONFLICT (hour) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER queue_counts_delete AFTER DELETE ON requests
BEGIN
    UPDATE ingest_hours SET n = n - 1 WHERE hour = OLD.ingested_at / 3600000;
    UPDATE queue_counts SET n = n - 1
        WHERE state = OLD.state AND priority_rank = OLD.priority_rank;
    UPDATE open_hours SET n = n - 1
        WHERE OLD.state IN ('pending','in_review')
          AND priority_rank = OLD.priority_rank AND hour = OLD.received_at / 3600000;
    DELETE FROM open_hours
        WHERE OLD.state IN ('pending','in_review')
          AND priority_rank = OLD.priority_rank AND hour = OLD.received_at / 3600000 AND n = 0;
END;
CREATE TRIGGER ingest_hours_update AFTER UPDATE OF ingested_at ON requests
WHEN OLD.ingested_at / 3600000 IS NOT NEW.ingested_at / 3600000
BEGIN
    UPDATE ingest_hours SET n = n - 1 WHERE hour = OLD.ingested_at / 3600000;
    INSERT INTO ingest_hours (hour, n) VALUES (NEW.ingested_at / 3600000, 1)
        ON CONFLICT (hour) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER queue_counts_update AFTER UPDATE OF state, priority_rank ON requests
WHEN OLD.state IS NOT NEW.state OR OLD.priority_rank IS NOT NEW.priority_rank
BEGIN
    UPDATE queue_counts SET n = n - 1
        WHERE state = OLD.state AND priority_rank = OLD.priority_rank;
    INSERT INTO queue_counts (state, priority_rank, n) VALUES (NEW.state, NEW.priority_rank, 1)
        ON CONFLICT (state, priority_rank) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER open_hours_update AFTER UPDATE OF state, priority_rank, received_at ON requests
WHEN (OLD.state IN ('pending','in_review')) IS NOT (NEW.state IN ('pending','in_review'))
  OR (NEW.state IN ('pending','in_review')
      AND (OLD.priority_rank IS NOT NEW.priority_rank
           OR OLD.received_at / 3600000 IS NOT NEW.received_at / 3600000))
BEGIN
    UPDATE open_hours SET n = n - 1
        WHERE OLD.state IN ('pending','in_review')
          AND priority_rank = OLD.priority_rank AND hour = OLD.received_at / 3600000;
    DELETE FROM open_hours
        WHERE OLD.state IN ('pending','in_review')
          AND priority_rank = OLD.priority_rank AND hour = OLD.received_at / 3600000 AND n = 0;
    INSERT INTO open_hours (priority_rank, hour, n)
        SELECT NEW.priority_rank, NEW.received_at / 3600000, 1
        WHERE NEW.state IN ('pending','in_review')
        ON CONFLICT (priority_rank, hour) DO UPDATE SET n = n + 1;
END;
"#,
    // v12: the model and prompt version of each item's AI output (from its current
    // revision), for comparing them by what reviewers did with their output; and what an
    // existing process did with the same requests during a parallel (shadow) run, keyed
    // like the requests by (source, external_id).
    r#"
ALTER TABLE requests ADD COLUMN model TEXT;
ALTER TABLE requests ADD COLUMN prompt_version TEXT;
UPDATE requests SET
    model = (SELECT json_extract(v.payload, '$.ai.model') FROM revisions v
             WHERE v.request_id = requests.id AND v.revision = requests.revision
               AND json_valid(v.payload)
               AND json_type(v.payload, '$.ai.model') = 'text'),
    prompt_version = (SELECT json_extract(v.payload, '$.ai.prompt_version') FROM revisions v
             WHERE v.request_id = requests.id AND v.revision = requests.revision
               AND json_valid(v.payload)
               AND json_type(v.payload, '$.ai.prompt_version') = 'text');
CREATE TABLE shadow_outcomes (
    source        TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    origin        TEXT NOT NULL,
    imported_at   INTEGER NOT NULL,
    decision      TEXT,
    intent        TEXT,
    priority      TEXT,
    summary       TEXT,
    next_step     TEXT,
    started_at    INTEGER,
    done_at       INTEGER,
    handle_ms     INTEGER,
    PRIMARY KEY (source, external_id)
);
"#,
];

/// The hour of receipt `open_hours` files an item under (`received_at / HOUR_MS`).
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The kind of the entry the v9 migration appends when it keys an existing log.
pub const KEYED_KIND: &str = "audit_keyed";

/// The append-only trigger on UPDATE (the v9 migration lifts it to add MACs).
const AUDIT_UPDATE_TRIGGER: &str = "CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";

/// Work left for after a migration's commit.
struct AfterCommit {
    key: AuditKey,
    head: AuditHead,
}

fn migration_error(path: &Path, to: i64, why: String) -> StoreError {
    StoreError::Queue(crate::queue::QueueError::Storage(format!(
        "cannot migrate {} to schema {to}: {why}",
        path.display()
    )))
}

/// Keys an existing log (v9): creates the key if there is none, adds a MAC to every row
/// the chain and the old anchor vouch for, and appends an entry saying so. Rows past a
/// break, or all of them when the old anchor disagrees with the log, stay without a MAC:
/// `signoff audit verify` then reports the first, and writers refuse.
fn key_the_log(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    files: &FileMode,
) -> Result<Option<AfterCommit>> {
    let last = audit::read_head(tx)?;
    if last.seq == 0 {
        return Ok(None);
    }
    let key_path = anchor::key_path(path);
    let key = match AuditKey::load(&key_path) {
        Ok(k) => k,
        Err(KeyProblem::Missing) => anchor::create_key(&key_path, files)?,
        Err(p) => return Err(migration_error(path, 9, p.describe(&key_path))),
    };
    let walked = super::verify::walk(tx, 0, GENESIS, None, |_| {})?;
    let mut problem = walked
        .broken
        .as_ref()
        .map(|(seq, why)| format!("entry {seq}: {why}"));
    let mut through = walked.broken.as_ref().map_or(last.seq, |b| b.0 - 1);
    let anchor_path = anchor::anchor_path(path);
    let disagrees = match anchor::read_anchor_file(&anchor_path) {
        Ok(AnchorFile::Missing) => None,
        Ok(AnchorFile::Found(a)) if a.v < 2 || key.anchor_ok(&a) => {
            let hash: Option<String> = if a.seq == 0 {
                Some(GENESIS.into())
            } else {
                tx.query_row("SELECT hash FROM audit WHERE seq = ?1", [a.seq], |r| {
                    r.get(0)
                })
                .optional()?
            };
            (hash.as_deref() != Some(a.hash.as_str())).then(|| {
                format!(
                    "the anchor file recorded entry {} with hash {}, which the log does not hold",
                    a.seq, a.hash
                )
            })
        }
        Ok(AnchorFile::Found(_)) => {
            Some("the anchor file was not written with the audit key".into())
        }
        Ok(AnchorFile::Garbled(why)) => Some(format!("the anchor file cannot be read: {why}")),
        Err(e) => return Err(files::io_error(&anchor_path, "read", e)),
    };
    if let Some(d) = disagrees {
        problem = Some(d);
        through = 0;
    }
    tx.execute_batch("DROP TRIGGER audit_append_only_update")?;
    {
        let mut sel = tx.prepare(
            "SELECT seq, hash FROM audit WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT 10000",
        )?;
        let mut upd = tx.prepare("UPDATE audit SET mac = ?2 WHERE seq = ?1")?;
        let mut done = 0i64;
        while done < through {
            let rows: Vec<(i64, String)> = sel
                .query_map([done, through], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let Some(&(end, _)) = rows.last() else {
                break;
            };
            for (seq, hash) in &rows {
                upd.execute(rusqlite::params![seq, key.row_mac(hash)])?;
            }
            done = end;
        }
    }
    tx.execute_batch(AUDIT_UPDATE_TRIGGER)?;
    let note = match &problem {
        None => format!(
            "entries 1–{through} were written before the audit log was keyed; this migration added their MACs, which show only that nothing changed after it"
        ),
        Some(p) => format!(
            "entries 1–{through} were keyed by this migration; entries {}–{} were not, because the log did not verify: {p}",
            through + 1,
            last.seq
        ),
    };
    let detail = serde_json::json!({
        "keyed_through": through, "entries": last.seq, "key": key_path.display().to_string(),
        "note": note, "problem": problem,
    })
    .to_string();
    let (seq, at, os_user) = (
        last.seq + 1,
        crate::clock::Clock::process().now(),
        crate::identity::os_user(),
    );
    let hash = audit::canonical_hash(
        &last.hash,
        seq,
        at,
        "system",
        None,
        KEYED_KIND,
        &detail,
        Some(os_user),
    );
    tx.execute(
        "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac)
         VALUES (?1, ?2, 'system', NULL, ?3, ?4, ?5, ?6, ?7, ?8)",
        rusqlite::params![seq, at, KEYED_KIND, detail, last.hash, hash, os_user, key.row_mac(&hash)],
    )?;
    tracing::info!(keyed_through = through, entries = last.seq, problem = ?problem, "keyed the audit log");
    if problem.is_some() {
        // The old anchor (or its absence) stays as it was: it is the evidence.
        return Ok(None);
    }
    // Anchored at the old head before the commit: should the commit not happen, the next
    // attempt finds a keyed anchor that agrees with the unkeyed log.
    let schema: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    anchor::write_anchor(&anchor_path, files, &key, &last, schema, at)?;
    Ok(Some(AfterCommit {
        key,
        head: AuditHead { seq, hash },
    }))
}

/// Work a migration needs beyond its SQL, inside the same transaction.
fn after_migration(
    tx: &rusqlite::Transaction<'_>,
    to: i64,
    path: &Path,
    files: &FileMode,
) -> Result<Option<AfterCommit>> {
    if to == 9 {
        return key_the_log(tx, path, files);
    }
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
    Ok(None)
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the database to [`SCHEMA_VERSION`], one migration per transaction; files the
/// migrations create (the audit key and anchor) get `files`' mode.
pub(crate) fn migrate(conn: &mut Connection, path: &Path, files: &FileMode) -> Result<()> {
    migrate_with(conn, path, SCHEMA_VERSION, files)
}

/// Migrates up to `target` (tests build each earlier version with this).
pub fn migrate_to(conn: &mut Connection, path: &Path, target: i64) -> Result<()> {
    migrate_with(conn, path, target, &FileMode::default())
}

fn migrate_with(conn: &mut Connection, path: &Path, target: i64, files: &FileMode) -> Result<()> {
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
        let after = after_migration(&tx, v + 1, path, files)?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
        if let Some(AfterCommit { key, head }) = after {
            let schema: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
            anchor::write_anchor(
                &anchor::anchor_path(path),
                files,
                &key,
                &head,
                schema,
                crate::clock::Clock::process().now(),
            )?;
        }
        tracing::info!(from = v, to = v + 1, "migrated queue schema");
    }
}
