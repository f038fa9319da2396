//! `signoff migrate --from queue.db --to postgres://…`: the SQLite queue copied into
//! PostgreSQL, resumable, both audit logs verified at the end.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::config::Loaded;
use crate::pg::MigrateOptions;

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The SQLite queue to copy (default: the configured database); opened read-only.
    #[arg(long, value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// The PostgreSQL database to copy into: empty, or holding an interrupted copy of the
    /// same queue (which goes on where it stopped).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The audit key the PostgreSQL servers use (default: `store.audit_key`, else
    /// <data dir>/audit.key). It must
    /// hold the source's key; when there is none, the source's is copied there.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Copy a source whose audit log does not verify; the target's log records that.
    #[arg(long)]
    pub force: bool,
    /// Rows per transaction.
    #[arg(long, default_value_t = 5_000, hide = true)]
    pub batch_rows: usize,
}

pub fn run(loaded: &Loaded, args: &MigrateArgs) -> anyhow::Result<i32> {
    let from = args.from.clone().unwrap_or_else(|| loaded.paths.db.clone());
    if crate::pg::is_url(&from.to_string_lossy()) || !crate::pg::is_url(&args.to) {
        eprintln!("signoff: migrate copies a SQLite file (--from) into a postgres:// URL (--to)");
        return Ok(EXIT_USAGE);
    }
    if !from.exists() {
        eprintln!("signoff: {} does not exist", from.display());
        return Ok(EXIT_USAGE);
    }
    let opts = MigrateOptions {
        batch_rows: args.batch_rows,
        force: args.force,
        stop_after: None,
    };
    let mut pg = super::pg_options(loaded);
    pg.pool_size = 2;
    if let Some(k) = &args.key {
        pg.key_path = k.clone();
    }
    let policy = Arc::new(loaded.config.policy.clone());
    let tty = std::io::stderr().is_terminal();
    let rt = super::runtime()?;
    let summary = rt.block_on(crate::pg::migrate(
        &from,
        &args.to,
        policy,
        &pg,
        &opts,
        |line| {
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
        },
    ));
    if tty {
        eprint!("\r\x1b[2K");
    }
    let summary = summary?;
    let shown = crate::pg::redact(&args.to);
    println!(
        "{} {} into {shown} in {:.1}s",
        if summary.resumed {
            "resumed copying"
        } else {
            "copied"
        },
        from.display(),
        summary.elapsed.as_secs_f64()
    );
    println!(
        "  {:<12} {:>10} {:>10} {:>10}",
        "table", "copied", "source", "target"
    );
    for t in &summary.tables {
        println!(
            "  {:<12} {:>10} {:>10} {:>10}{}",
            t.table,
            t.copied,
            t.source,
            t.target,
            if t.source == t.target {
                ""
            } else {
                "  DIFFERENT"
            }
        );
    }
    let side = |name: &str, r: &crate::store::VerifyReport| match (&r.broken, &r.head) {
        (Some((seq, why)), _) => println!("{name} audit log BROKEN at entry {seq}: {why}"),
        (None, Some(h)) => println!(
            "{name} audit log intact: {} entries, head {} {}",
            r.entries, h.seq, h.hash
        ),
        (None, None) => println!("{name} audit log empty"),
    };
    side("source", &summary.source);
    side("target", &summary.target);
    for line in summary
        .source
        .unaccounted
        .iter()
        .chain(&summary.target.unaccounted)
    {
        println!("  {line}");
    }
    if let Some(why) = &summary.forced {
        println!(
            "copied with --force although the source's log does not verify ({why}); the target's log records it"
        );
        return Ok(EXIT_OK);
    }
    if summary.source.head != summary.target.head {
        println!("the heads DIFFER");
    }
    Ok(if summary.ok() { EXIT_OK } else { EXIT_FAILED })
}
