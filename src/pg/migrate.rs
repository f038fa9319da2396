//! `signoff migrate`: a SQLite queue copied into a PostgreSQL database row for row — the
//! items with their revisions, edits, decisions, outbox (in the state it is in), outcomes,
//! quarantine, settings, tokens, idempotent answers, and the audit log with the same
//! sequence numbers, hashes, MACs and Unix users, so it verifies unchanged under the same key.
//!
//! The source is opened read-only and read in one snapshot. Rows go in batches, one
//! transaction each, and each batch records in `meta` (`migrate.<table>`) the last source
//! row it holds, so a run that is interrupted resumes after the last committed batch. The
//! audit batches move the `audit_head` row with them: the target's chain is whole after
//! every commit. `meta.migrate.source` records the source's head when the copy began; a
//! resume against a source that moved since is refused.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use deadpool_postgres::GenericClient;
use rusqlite::OptionalExtension;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::audit::head_mac;
use super::{PgDb, PgOptions, describe};
use crate::model::Policy;
use crate::store::{AuditHead, GENESIS, Store, StoreOptions, VerifyReport};

/// The tables copied, parents before children; the audit log last.
pub const TABLES: &[&str] = &[
    "requests",
    "revisions",
    "edits",
    "decisions",
    "outbox",
    "outcomes",
    "quarantine",
    "settings",
    "meta",
    "api_tokens",
    "idempotency",
    "shadow_outcomes",
    "audit",
];

/// Tables whose `id` is an identity column on PostgreSQL.
const IDENTITY: &[&str] = &[
    "requests",
    "edits",
    "decisions",
    "outbox",
    "outcomes",
    "quarantine",
];

/// `meta` keys that belong to one database and are not copied: the audit key's
/// fingerprint (the target records its own) and this copy's bookkeeping.
fn backend_specific(key: &str) -> bool {
    key == "audit_key_id" || key.starts_with("migrate.")
}

/// The environment variable that stops a copy after this many batches (tests of resuming).
pub const STOP_AFTER_ENV: &str = "SIGNOFF_MIGRATE_STOP_AFTER";

/// How to copy.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Rows per transaction.
    pub batch_rows: usize,
    /// Copy a source whose audit log does not verify (recorded in the target's log).
    pub force: bool,
    /// Stop after this many batches (as an interruption would).
    pub stop_after: Option<u64>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            batch_rows: 5_000,
            force: false,
            stop_after: None,
        }
    }
}

/// One table's rows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TableCount {
    pub table: String,
    /// Rows copied by this run.
    pub copied: u64,
    pub source: u64,
    pub target: u64,
}

/// What a copy did and how both sides verified.
#[derive(Debug)]
pub struct MigrateSummary {
    pub tables: Vec<TableCount>,
    pub elapsed: Duration,
    /// The copy went on from an interrupted one.
    pub resumed: bool,
    pub source: VerifyReport,
    pub target: VerifyReport,
    /// The source's log did not verify and was copied with `--force`.
    pub forced: Option<String>,
}

impl MigrateSummary {
    /// Both logs intact, the same head, and the same rows in every table.
    pub fn ok(&self) -> bool {
        let intact = |r: &VerifyReport| r.broken.is_none() && r.unaccounted.is_empty();
        intact(&self.source)
            && intact(&self.target)
            && self.source.head == self.target.head
            && self.tables.iter().all(|t| t.source == t.target)
    }
}

/// A SQLite value on its way to a PostgreSQL column.
enum Cell {
    Null,
    Int(i64),
    Int4(i32),
    Real(f64),
    Text(String),
}

/// A column copied: its name and its PostgreSQL type.
struct Column {
    name: String,
    ty: Type,
}

/// The progress bookkeeping key of a table.
fn progress_key(table: &str) -> String {
    format!("migrate.{table}")
}

/// The source's head as recorded when a copy began.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct SourceMark {
    seq: i64,
    hash: String,
}

/// Copies the queue at `source` into the PostgreSQL database at `url` (see the module
/// docs). `progress` receives a line now and then.
pub async fn migrate(
    source: &Path,
    url: &str,
    policy: Arc<Policy>,
    pg: &PgOptions,
    opts: &MigrateOptions,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<MigrateSummary> {
    let started = Instant::now();
    let store = Store::open(
        source,
        policy.clone(),
        &StoreOptions {
            read_only: true,
            clock: pg.clock.clone(),
            ..StoreOptions::default()
        },
    )
    .with_context(|| format!("opening the source {}", source.display()))?;

    // The source's log first: a broken one is not copied unless told to.
    progress(&format!("verifying the audit log of {}", source.display()));
    let before = store.verify_audit(|_| {})?;
    let forced = match verdict(&before) {
        None => None,
        Some(why) if opts.force => {
            progress(&format!("copying anyway (--force): {why}"));
            Some(why)
        }
        Some(why) => bail!(
            "the source's audit log does not verify: {why}; nothing was copied (run `signoff --db {} audit verify`; --force copies it as it is and records that in the target's log)",
            source.display()
        ),
    };

    // The same key on both sides, or the copied MACs would not verify.
    let source_key = crate::store::key_path(source);
    let key_bytes = std::fs::read(&source_key)
        .with_context(|| format!("reading the source's audit key {}", source_key.display()))?;
    share_key(&key_bytes, &source_key, &pg.key_path)?;

    let db = PgDb::open(url, policy, pg).await?;
    let shown = db.url().to_string();
    let mut client = db.client().await?;

    // One snapshot of the source for the whole copy.
    let conn = store.connection();
    let snapshot = conn.unchecked_transaction()?;
    let source_head = snapshot
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                Ok(AuditHead {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            },
        )
        .optional()?
        .unwrap_or(AuditHead {
            seq: 0,
            hash: GENESIS.to_string(),
        });

    let resumed = check_target(&client, &snapshot, &source_head, &shown).await?;
    if resumed {
        progress("resuming the interrupted copy");
    }
    let mark = serde_json::to_string(&SourceMark {
        seq: source_head.seq,
        hash: source_head.hash.clone(),
    })?;
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ('migrate.source', $1) ON CONFLICT (key) DO NOTHING",
            &[&mark],
        )
        .await?;

    let stop_after = opts.stop_after.or_else(|| {
        std::env::var(STOP_AFTER_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    let mut batches = 0u64;
    let mut tables = Vec::new();
    for table in TABLES {
        let copied = copy_table(
            &snapshot,
            &mut client,
            &db,
            table,
            opts.batch_rows.max(1),
            &mut batches,
            stop_after,
            &mut progress,
        )
        .await?;
        tables.push(TableCount {
            table: table.to_string(),
            copied,
            source: 0,
            target: 0,
        });
    }
    set_sequences(&snapshot, &client).await?;
    drop(snapshot);

    if let Some(why) = &forced {
        // The copy of a log that does not verify is itself on the record.
        let tx = client.transaction().await?;
        let done: Option<String> = tx
            .query_opt(
                "SELECT value FROM meta WHERE key = 'migrate.forced' FOR UPDATE",
                &[],
            )
            .await?
            .map(|r| r.get(0));
        if done.is_none() {
            let mut audit = db.audit();
            audit.push(
                db.now(),
                "system",
                None,
                "migrated_unverified",
                &serde_json::json!({
                    "source": source.display().to_string(),
                    "source_head": source_head.seq,
                    "why": why,
                }),
            );
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('migrate.forced', $1)",
                &[why],
            )
            .await?;
            audit.append(&tx).await?;
        }
        tx.commit().await?;
        db.changed();
    }

    progress("verifying both audit logs");
    let source_report = store.verify_audit(|_| {})?;
    let target_report = db.verify_audit().await?;
    for t in &mut tables {
        t.source =
            store
                .connection()
                .query_row(&format!("SELECT COUNT(*) FROM {}", t.table), [], |r| {
                    r.get::<_, i64>(0)
                })? as u64;
        let sql = if t.table == "meta" {
            "SELECT COUNT(*) FROM meta WHERE key <> 'audit_key_id' AND key NOT LIKE 'migrate.%'"
                .to_string()
        } else {
            format!("SELECT COUNT(*) FROM {}", t.table)
        };
        t.target = client.query_one(&sql, &[]).await?.get::<_, i64>(0) as u64;
        if t.table == "meta" {
            let skipped: i64 = store.connection().query_row(
                "SELECT COUNT(*) FROM meta WHERE key = 'audit_key_id' OR key LIKE 'migrate.%'",
                [],
                |r| r.get(0),
            )?;
            t.source -= skipped as u64;
        }
    }
    Ok(MigrateSummary {
        tables,
        elapsed: started.elapsed(),
        resumed,
        source: source_report,
        target: target_report,
        forced,
    })
}

/// Why a verify report is not a clean bill, if it is not.
fn verdict(r: &VerifyReport) -> Option<String> {
    if let Some((seq, why)) = &r.broken {
        return Some(format!("broken at entry {seq}: {why}"));
    }
    if let Some(first) = r.unaccounted.first() {
        return Some(format!(
            "it does not account for {} row(s): {first}",
            r.unaccounted.len()
        ));
    }
    None
}

/// Makes the target's key file hold the source's key: written when there is none,
/// refused when it holds another.
fn share_key(bytes: &[u8], source: &Path, target: &PathBuf) -> anyhow::Result<()> {
    match std::fs::read(target) {
        Ok(found) if found == bytes => Ok(()),
        Ok(_) => bail!(
            "the audit key {} is not the source's ({}): the copied entries' MACs would not verify under it; give the PostgreSQL servers the source's key",
            target.display(),
            source.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(target)
                .with_context(|| format!("creating the audit key {}", target.display()))?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing the audit key {}", target.display()))?;
            tracing::info!(key = %target.display(), source = %source.display(), "copied the source's audit key");
            Ok(())
        }
        Err(e) => Err(anyhow!("reading the audit key {}: {e}", target.display())),
    }
}

/// Refuses a target that holds anything but the start of this source's copy; true when
/// it holds such a start (the copy resumes).
async fn check_target(
    client: &impl GenericClient,
    source: &rusqlite::Connection,
    source_head: &AuditHead,
    url: &str,
) -> anyhow::Result<bool> {
    let last = client
        .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .await?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
    if let Some((seq, hash)) = &last {
        let theirs: Option<String> = source
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
            .optional()?;
        match theirs {
            None => bail!(
                "the target {url} holds another audit log: it has entry {seq}, past the source's last ({}); migrate into an empty database",
                source_head.seq
            ),
            Some(h) if &h != hash => bail!(
                "the target {url} holds another audit log: its entry {seq} has hash {hash}, the source's {h}; migrate into an empty database"
            ),
            Some(_) => {}
        }
    }
    let mark: Option<String> = client
        .query_opt("SELECT value FROM meta WHERE key = 'migrate.source'", &[])
        .await?
        .map(|r| r.get(0));
    match mark {
        Some(m) => {
            let mark: SourceMark = serde_json::from_str(&m)
                .map_err(|e| anyhow!("meta.migrate.source in {url} cannot be read: {e}"))?;
            if mark.seq != source_head.seq || mark.hash != source_head.hash {
                bail!(
                    "the source changed since the copy into {url} began (its audit log was at entry {}, it is at {} now): migrate into an empty database",
                    mark.seq,
                    source_head.seq
                );
            }
            Ok(true)
        }
        None => {
            let mut held = Vec::new();
            for table in TABLES {
                let sql = if *table == "meta" {
                    "SELECT COUNT(*) FROM meta WHERE key <> 'audit_key_id'".to_string()
                } else {
                    format!("SELECT COUNT(*) FROM {table}")
                };
                let n: i64 = client.query_one(&sql, &[]).await?.get(0);
                if n > 0 {
                    held.push(format!("{n} {table}"));
                }
            }
            if !held.is_empty() {
                bail!(
                    "the target {url} already holds a queue ({}); migrate into an empty database",
                    held.join(", ")
                );
            }
            Ok(false)
        }
    }
}

/// The columns both sides have, in the source's order, with their PostgreSQL types.
async fn columns(
    source: &rusqlite::Connection,
    client: &impl GenericClient,
    table: &str,
) -> anyhow::Result<Vec<Column>> {
    let mut target = std::collections::HashMap::new();
    for r in client
        .query(
            "SELECT column_name, data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )
        .await?
    {
        let ty = match r.get::<_, &str>(1) {
            "bigint" => Type::INT8,
            "integer" => Type::INT4,
            "double precision" => Type::FLOAT8,
            "text" => Type::TEXT,
            other => bail!(
                "{table}.{} has a type this copy does not know: {other}",
                r.get::<_, &str>(0)
            ),
        };
        target.insert(r.get::<_, String>(0), ty);
    }
    let mut stmt = source.prepare(&format!("PRAGMA table_info({table})"))?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(1))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for name in names {
        match target.get(&name) {
            Some(ty) => out.push(Column {
                name,
                ty: ty.clone(),
            }),
            None => bail!(
                "{table}.{name} has no column to go to in the PostgreSQL schema; nothing of {table} was copied"
            ),
        }
    }
    Ok(out)
}

/// Copies one table in batches after the row its bookkeeping names; returns the rows copied.
#[allow(clippy::too_many_arguments)]
async fn copy_table(
    source: &rusqlite::Connection,
    client: &mut deadpool_postgres::Object,
    db: &PgDb,
    table: &str,
    batch_rows: usize,
    batches: &mut u64,
    stop_after: Option<u64>,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<u64> {
    let cols = columns(source, &*client, table).await?;
    let key = progress_key(table);
    let mut after: i64 = client
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
        .await?
        .map(|r| r.get::<_, String>(0))
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN);
    // `meta` has no rowid; it is small and goes in one batch, keyed by 0.
    let rowid = table != "meta";
    if !rowid && after != i64::MIN {
        return Ok(0);
    }
    let total: i64 =
        source.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
    let done_before: i64 = if rowid {
        source.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE rowid <= ?1"),
            [after],
            |r| r.get(0),
        )?
    } else {
        0
    };
    let list = cols
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let select = if rowid {
        format!("SELECT rowid, {list} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2")
    } else {
        format!("SELECT 0, {list} FROM {table}")
    };
    let copy = format!("COPY {table} ({list}) FROM STDIN BINARY");
    let types: Vec<Type> = cols.iter().map(|c| c.ty.clone()).collect();
    let mut stmt = source.prepare(&select)?;
    let mut copied = 0u64;
    loop {
        // Read a batch from the snapshot.
        let mut rows: Vec<(i64, Vec<Cell>)> = Vec::with_capacity(batch_rows);
        let mut q = if rowid {
            stmt.query(rusqlite::params![after, batch_rows as i64])?
        } else {
            stmt.query([])?
        };
        while let Some(r) = q.next()? {
            let id: i64 = r.get(0)?;
            if !rowid && r.get_ref(1)?.as_str().is_ok_and(backend_specific) {
                continue;
            }
            let mut cells = Vec::with_capacity(cols.len());
            for (i, c) in cols.iter().enumerate() {
                cells.push(
                    cell(r.get_ref(i + 1)?, &c.ty)
                        .map_err(|why| anyhow!("{table} row {id}: column {}: {why}", c.name))?,
                );
            }
            rows.push((id, cells));
        }
        drop(q);
        let Some(&(last, _)) = rows.last() else {
            break;
        };
        let first = rows[0].0;
        let n = rows.len();
        let tx = client.transaction().await?;
        let sink = tx.copy_in(&copy).await?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        let mut writer = std::pin::pin!(writer);
        let res: Result<(), tokio_postgres::Error> = async {
            for (_, cells) in &rows {
                let values: Vec<&(dyn ToSql + Sync)> = cells
                    .iter()
                    .zip(&types)
                    .map(|(c, t)| as_sql(c, t))
                    .collect();
                writer.as_mut().write(&values).await?;
            }
            writer.as_mut().finish().await?;
            Ok(())
        }
        .await;
        res.map_err(|e| conflict(table, rowid, first, last, &e))?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &last.to_string()],
        )
        .await?;
        if table == "audit" {
            move_head(&tx, db).await?;
        }
        tx.commit().await?;
        copied += n as u64;
        *batches += 1;
        progress(&format!(
            "{table}: {} of {total}",
            done_before as u64 + copied
        ));
        if stop_after.is_some_and(|s| *batches >= s) {
            bail!(
                "stopped after {batches} batches ({STOP_AFTER_ENV}); run the same command again to resume"
            );
        }
        if !rowid || n < batch_rows {
            break;
        }
        after = last;
    }
    if !rowid && copied == 0 {
        client
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, '0') ON CONFLICT (key) DO NOTHING",
                &[&key],
            )
            .await?;
    }
    Ok(copied)
}

/// Points the head row at the newest copied entry, with its MAC.
async fn move_head(tx: &impl GenericClient, db: &PgDb) -> anyhow::Result<()> {
    let (seq, hash): (i64, String) = match tx
        .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .await?
    {
        Some(r) => (r.get(0), r.get(1)),
        None => (0, GENESIS.to_string()),
    };
    let mac = head_mac(db.key(), seq, &hash);
    tx.execute(
        "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, $1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, mac = EXCLUDED.mac",
        &[&seq, &hash, &mac],
    )
    .await?;
    Ok(())
}

/// A COPY refused: which table and which rows, in the server's words.
fn conflict(
    table: &str,
    rowid: bool,
    first: i64,
    last: i64,
    e: &tokio_postgres::Error,
) -> anyhow::Error {
    let rows = if rowid {
        format!("rows {first}–{last} (source rowid)")
    } else {
        "its rows".to_string()
    };
    anyhow!(
        "copying {table} {rows} was refused: {}; nothing of that batch was written",
        describe(e)
    )
}

/// A source value as the target column's type takes it.
fn cell(v: rusqlite::types::ValueRef<'_>, ty: &Type) -> Result<Cell, String> {
    use rusqlite::types::ValueRef as V;
    Ok(match (v, ty) {
        (V::Null, _) => Cell::Null,
        (V::Integer(i), t) if *t == Type::INT8 => Cell::Int(i),
        (V::Integer(i), t) if *t == Type::INT4 => {
            Cell::Int4(i32::try_from(i).map_err(|_| format!("{i} is too large"))?)
        }
        (V::Integer(i), t) if *t == Type::FLOAT8 => Cell::Real(i as f64),
        (V::Integer(i), _) => Cell::Text(i.to_string()),
        (V::Real(f), t) if *t == Type::FLOAT8 => Cell::Real(f),
        (V::Real(f), t) if *t == Type::TEXT => Cell::Text(f.to_string()),
        (V::Real(f), _) => return Err(format!("{f} is not a whole number")),
        (V::Text(s), t) => {
            let s = std::str::from_utf8(s).map_err(|_| "its text is not UTF-8".to_string())?;
            if *t == Type::TEXT {
                Cell::Text(s.to_string())
            } else if *t == Type::FLOAT8 {
                Cell::Real(s.parse().map_err(|_| format!("{s:?} is not a number"))?)
            } else {
                Cell::Int(
                    s.parse()
                        .map_err(|_| format!("{s:?} is not a whole number"))?,
                )
            }
        }
        (V::Blob(_), _) => return Err("it holds a blob".into()),
    })
}

/// A value as the column's type: NULLs typed, so the binary COPY takes them.
fn as_sql<'a>(c: &'a Cell, ty: &Type) -> &'a (dyn ToSql + Sync) {
    const NULL_INT8: Option<i64> = None;
    const NULL_INT4: Option<i32> = None;
    const NULL_FLOAT8: Option<f64> = None;
    const NULL_TEXT: Option<String> = None;
    match c {
        Cell::Null if *ty == Type::INT8 => &NULL_INT8,
        Cell::Null if *ty == Type::INT4 => &NULL_INT4,
        Cell::Null if *ty == Type::FLOAT8 => &NULL_FLOAT8,
        Cell::Null => &NULL_TEXT,
        Cell::Int(i) => i,
        Cell::Int4(i) => i,
        Cell::Real(f) => f,
        Cell::Text(s) => s,
    }
}

/// Moves each identity past the highest id the source ever gave out (its own sequence
/// too: ids of deleted rows are not handed out again).
async fn set_sequences(
    source: &rusqlite::Connection,
    client: &impl GenericClient,
) -> anyhow::Result<()> {
    let has_seq: bool = source.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence')",
        [],
        |r| r.get(0),
    )?;
    for table in IDENTITY {
        let given: i64 = if has_seq {
            source
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0)
        } else {
            0
        };
        client
            .execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(v, 1), v > 0)
                     FROM (SELECT GREATEST(COALESCE(MAX(id), 0), $1::bigint) AS v FROM {table}) m"
                ),
                &[&given],
            )
            .await?;
    }
    Ok(())
}
