//! `signoff audit verify | export`.
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use super::output::parse_since;
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, store_options};
use crate::config::Loaded;
use crate::store::{ExportQuery, Format, Store, StoreError};

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain and check it against the anchor file; exit 1 on any break.
    Verify,
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
        AuditCommand::Verify => verify(loaded),
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
            let store = open(loaded)?;
            let q = ExportQuery { since, item: *item };
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

fn verify(loaded: &Loaded) -> anyhow::Result<i32> {
    let store = open(loaded)?;
    let tty = std::io::stderr().is_terminal();
    let report = store.verify_audit_anchored(|n| {
        if tty {
            eprint!("\r\x1b[2Kverified {n} entries");
        }
    })?;
    if tty {
        eprint!("\r\x1b[2K");
    }
    match (&report.broken, &report.head) {
        (Some((seq, why)), _) => {
            println!("audit chain BROKEN at entry {seq}: {why}");
            Ok(EXIT_FAILED)
        }
        (None, Some(head)) => {
            println!(
                "audit chain intact: {} entries, head {} {}",
                report.entries, head.seq, head.hash
            );
            Ok(EXIT_OK)
        }
        (None, None) => {
            println!("audit chain empty");
            Ok(EXIT_OK)
        }
    }
}
