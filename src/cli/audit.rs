//! `signoff audit verify | export`.
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use super::output::parse_since;
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, store_options};
use crate::config::Loaded;
use crate::store::{ExportQuery, Format, Store, StoreError, VerifyOptions};

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain, check every entry's MAC with the audit key and the head against
    /// the anchor file, and the decisions and outbox tables against the log; exit 1 on any
    /// break, on anything the log does not account for, or when the key or anchor is gone.
    Verify {
        /// Check the hash chain without requiring the key and the anchor file (after losing
        /// them); entries removed from the end of the log then go unnoticed.
        #[arg(long)]
        no_anchor: bool,
    },
    /// Export audit entries (for auditors) or, with --items, one record per decided item:
    /// AI proposal, edits, final fields, decision, outcome (for training data).
    Export {
        /// From this time: RFC 3339, or an age like 24h or 7d.
        #[arg(long)]
        since: Option<String>,
        /// Only this item.
        #[arg(long)]
        item: Option<i64>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// One record per decided item instead of audit entries.
        #[arg(long)]
        items: bool,
    },
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

fn open(loaded: &Loaded) -> anyhow::Result<Store> {
    Ok(Store::open(
        &loaded.paths.db,
        Arc::new(loaded.config.policy.clone()),
        &store_options(loaded),
    )?)
}

pub fn run(loaded: &Loaded, command: &AuditCommand) -> anyhow::Result<i32> {
    match command {
        AuditCommand::Verify { no_anchor } => verify(loaded, *no_anchor),
        AuditCommand::Export {
            since,
            item,
            format,
            items,
        } => {
            let now = crate::clock::Clock::process().now();
            let since = match since.as_deref().map(|s| parse_since(s, now)).transpose() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("signoff: {e}");
                    return Ok(EXIT_USAGE);
                }
            };
            let q = ExportQuery { since, item: *item };
            if let Some(db) = pg(loaded, *items)? {
                return export_pg(&db, &q, *format);
            }
            let store = open(loaded)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let format = match format {
                ExportFormat::Jsonl => Format::Jsonl,
                ExportFormat::Csv => Format::Csv,
            };
            let res = if *items {
                store.export_items(&q, format, &mut out)
            } else {
                store.export_audit(&q, format, &mut out)
            };
            let res = res.and_then(|n| {
                out.flush().map_err(|e| {
                    StoreError::Sql(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
                })?;
                Ok(n)
            });
            match res {
                Ok(n) => {
                    tracing::info!(records = n, "audit export");
                    Ok(EXIT_OK)
                }
                // `signoff audit export | head`: the reader left; not an error.
                Err(e) if e.to_string().contains("Broken pipe") => Ok(EXIT_OK),
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn verify(loaded: &Loaded, no_anchor: bool) -> anyhow::Result<i32> {
    let tty = std::io::stderr().is_terminal();
    let progress = |n| {
        if tty {
            eprint!("\r\x1b[2Kverified {n} entries");
        }
    };
    let report = match pg(loaded, false)? {
        // The head row stands where the anchor file does; it is always checked.
        Some((db, rt)) => rt.block_on(db.verify_audit_with(progress))?,
        None => {
            let store = open(loaded)?;
            let opts = VerifyOptions { anchor: !no_anchor };
            store.verify_audit_with(&opts, progress)?
        }
    };
    if tty {
        eprint!("\r\x1b[2K");
    }
    let mut code = match (&report.broken, &report.head) {
        (Some((seq, why)), _) => {
            println!("audit chain BROKEN at entry {seq}: {why}");
            EXIT_FAILED
        }
        (None, Some(head)) => {
            println!(
                "audit chain intact: {} entries, head {} {}",
                report.entries, head.seq, head.hash
            );
            EXIT_OK
        }
        (None, None) => {
            println!("audit chain empty");
            EXIT_OK
        }
    };
    for note in &report.notes {
        println!("  {note}");
    }
    if !report.unaccounted.is_empty() {
        println!(
            "the audit log does not account for {}:",
            if report.unaccounted.len() == 1 {
                "this row"
            } else {
                "these rows"
            }
        );
        for line in &report.unaccounted {
            println!("  {line}");
        }
        code = EXIT_FAILED;
    }
    Ok(code)
}

/// The PostgreSQL queue when `--db` is a `postgres://` URL (read-only), with its runtime.
fn pg(
    loaded: &Loaded,
    items: bool,
) -> anyhow::Result<Option<(crate::pg::PgDb, tokio::runtime::Runtime)>> {
    let url = loaded.paths.db.to_string_lossy();
    if !crate::pg::is_url(&url) {
        return Ok(None);
    }
    if items {
        anyhow::bail!(
            "audit export --items reads a SQLite queue; on PostgreSQL export the audit entries"
        );
    }
    let rt = super::runtime()?;
    let opts = crate::pg::PgOptions {
        read_only: true,
        ..super::pg_options(loaded)
    };
    let db = rt.block_on(crate::pg::PgDb::open(
        &url,
        Arc::new(loaded.config.policy.clone()),
        &opts,
    ))?;
    Ok(Some((db, rt)))
}

fn export_pg(
    (db, rt): &(crate::pg::PgDb, tokio::runtime::Runtime),
    q: &ExportQuery,
    format: ExportFormat,
) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let format = match format {
        ExportFormat::Jsonl => Format::Jsonl,
        ExportFormat::Csv => Format::Csv,
    };
    let res = rt
        .block_on(db.export_audit(q, format, &mut out))
        .map_err(anyhow::Error::from)
        .and_then(|n| Ok(out.flush().map(|_| n)?));
    match res {
        Ok(n) => {
            tracing::info!(records = n, "audit export");
            Ok(EXIT_OK)
        }
        Err(e) if e.to_string().contains("Broken pipe") => Ok(EXIT_OK),
        Err(e) => Err(e),
    }
}
