//! `signoff shadow import OUTCOMES` and `signoff shadow report [--json]`.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use super::output::{Table, print_json};
use super::{EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, store_options};
use crate::config::Loaded;
use crate::shadow::Report;
use crate::stats::duration;
use crate::store::Store;
use crate::text::sanitize;

#[derive(clap::Subcommand, Debug)]
pub enum ShadowCommand {
    /// Import what the existing process did: CSV with a header row, or JSON Lines; keyed by
    /// source and external_id, with decision, intent, priority, summary, next_step,
    /// started_at, done_at, handle_seconds (a later import of a key replaces it).
    Import {
        /// The outcomes file.
        file: PathBuf,
    },
    /// Compare item by item: where signoff and the existing process disagreed, on which
    /// fields, and how long each took.
    Report {
        #[arg(long)]
        json: bool,
    },
}

fn open(loaded: &Loaded) -> anyhow::Result<Store> {
    Ok(Store::open(
        &loaded.paths.db,
        Arc::new(loaded.config.policy.clone()),
        &store_options(loaded),
    )?)
}

pub fn run(loaded: &Loaded, command: &ShadowCommand, read_only: bool) -> anyhow::Result<i32> {
    if loaded.config.remote.is_some() {
        eprintln!("signoff: `signoff shadow` works on this machine's database; use --db");
        return Ok(EXIT_USAGE);
    }
    match command {
        ShadowCommand::Import { file } => {
            if read_only {
                eprintln!("signoff: `shadow import` writes; not with --read-only");
                return Ok(EXIT_USAGE);
            }
            import(loaded, file)
        }
        ShadowCommand::Report { json } => {
            let store = open(loaded)?;
            let report = crate::shadow::compare(
                store.shadow_pairs()?,
                &loaded.config.policy,
                loaded.config.validation.similarity_match,
            );
            if *json {
                print_json(&report)?;
            } else {
                print!("{}", text(&report));
            }
            Ok(EXIT_OK)
        }
    }
}

fn import(loaded: &Loaded, file: &std::path::Path) -> anyhow::Result<i32> {
    let name = file.display().to_string();
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("signoff: cannot read {name}: {e}");
            return Ok(EXIT_FAILED);
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        eprintln!("signoff: {name}: not valid UTF-8");
        return Ok(EXIT_FAILED);
    };
    let (rows, problems) = crate::shadow::read(&name, text);
    for p in &problems {
        eprintln!("{}", sanitize(&p.to_string()));
    }
    let mut store = open(loaded)?;
    let (new, replaced) = store.import_shadow(
        &loaded.reviewer(),
        &name,
        &crate::validate::digest(&bytes),
        &rows,
    )?;
    println!(
        "imported {} outcome(s) from {}: {new} new, {replaced} replaced, {} rejected",
        rows.len(),
        sanitize(&name),
        problems.len()
    );
    Ok(if problems.is_empty() {
        EXIT_OK
    } else if rows.is_empty() {
        EXIT_FAILED
    } else {
        EXIT_PARTIAL
    })
}

fn took(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_string(), duration)
}

/// The terminal report; every value from a request or the outcomes file is sanitized.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "shadow run: {} outcome(s) imported · {} decided on both sides · {} agree · {} disagree · {} undecided in signoff · {} not in signoff",
        r.imported,
        r.compared,
        r.agreed,
        r.disagreed,
        r.undecided.len(),
        r.missing.len()
    );
    let by: Vec<String> = r.by_field.iter().map(|(f, n)| format!("{f} {n}")).collect();
    let _ = writeln!(o, "disagreements by field: {}", by.join(" · "));
    let _ = writeln!(
        o,
        "median time from receipt to decision: signoff {}, existing {} · median handling: signoff {}, existing {}",
        took(r.signoff_median_ms),
        took(r.existing_median_ms),
        took(r.signoff_median_handle_ms),
        took(r.existing_median_handle_ms)
    );
    let disagreed: Vec<_> = r
        .items
        .iter()
        .filter(|i| !i.differences.is_empty())
        .collect();
    if !disagreed.is_empty() {
        let _ = writeln!(o);
        let mut t = Table::new(&[
            ("item", 0),
            ("source/external_id", 32),
            ("field", 0),
            ("signoff", 28),
            ("existing", 28),
            ("signoff took", 0),
            ("existing took", 0),
        ]);
        for i in disagreed {
            for (k, d) in i.differences.iter().enumerate() {
                let first = k == 0;
                t.row(vec![
                    if first {
                        format!("#{}", i.id)
                    } else {
                        String::new()
                    },
                    if first {
                        format!("{}/{}", i.source, i.external_id)
                    } else {
                        String::new()
                    },
                    d.field.clone(),
                    d.signoff.clone().unwrap_or_else(|| "-".into()),
                    d.existing.clone().unwrap_or_else(|| "-".into()),
                    if first {
                        took(i.signoff_ms)
                    } else {
                        String::new()
                    },
                    if first {
                        took(i.existing_ms)
                    } else {
                        String::new()
                    },
                ]);
            }
        }
        o.push_str(&t.render());
    }
    for (what, list) in [
        ("undecided in signoff", &r.undecided),
        ("not in signoff", &r.missing),
    ] {
        if !list.is_empty() {
            let shown: Vec<String> = list
                .iter()
                .take(10)
                .map(|k| sanitize(k).into_owned())
                .collect();
            let more = if list.len() > 10 {
                format!(" … {} more", list.len() - 10)
            } else {
                String::new()
            };
            let _ = writeln!(o, "{what}: {}{more}", shown.join(", "));
        }
    }
    o
}
