//! `signoff ingest [FILE ...|-]`.
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, store_options};
use crate::config::Loaded;
use crate::ingest::Ingester;
use crate::store::Store;
use crate::text::sanitize;

pub fn run(loaded: &Loaded, files: &[PathBuf]) -> anyhow::Result<i32> {
    if let Some(remote) = super::remote_queue(loaded, false)? {
        return run_remote(&remote, files);
    }
    let policy = Arc::new(loaded.config.policy.clone());
    // Bulk writes: checkpoints run beside the ingest, not inside its commits.
    let opts = crate::store::StoreOptions {
        background_checkpoint: true,
        ..store_options(loaded)
    };
    let mut store = Store::open(&loaded.paths.db, policy, &opts)
        .with_context(|| format!("opening {}", loaded.paths.db.display()))?;
    let progress_tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = Instant::now();
    let shown = std::cell::Cell::new(false);
    let mut ingester = Ingester::new(&mut store, "system")
        .on_problem(|p| {
            let mut err = std::io::stderr().lock();
            if shown.get() {
                let _ = write!(err, "\r\x1b[2K");
            }
            let _ = writeln!(err, "{}", sanitize(&p.to_string()));
        })
        .on_progress(|entries, bytes| {
            // A progress line only for large inputs, only on a terminal.
            if progress_tty
                && started.elapsed() > Duration::from_secs(1)
                && last.elapsed() > Duration::from_millis(250)
            {
                last = Instant::now();
                shown.set(true);
                let rate = entries as f64 / started.elapsed().as_secs_f64();
                let _ = write!(
                    std::io::stderr().lock(),
                    "\r\x1b[2Kingesting: {entries} entries, {:.1} MB, {rate:.0}/s",
                    bytes as f64 / 1e6
                );
            }
        });
    let inputs: Vec<PathBuf> = if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files.to_vec()
    };
    let mut failed = false;
    for path in &inputs {
        let res = if path.as_os_str() == "-" {
            ingester.read("<stdin>", std::io::stdin().lock())
        } else {
            match std::fs::File::open(path) {
                Ok(f) => ingester.read(&path.display().to_string(), f),
                Err(e) => {
                    eprintln!("signoff: cannot read {}: {e}", path.display());
                    failed = true;
                    continue;
                }
            }
        };
        if let Err(e) = res {
            eprintln!("signoff: ingest of {} failed: {e}", path.display());
            failed = true;
            break;
        }
    }
    let report = ingester.report;
    drop(ingester);
    if shown.get() {
        eprint!("\r\x1b[2K");
    }
    println!("{report}");
    tracing::info!(%report, "ingest finished");
    Ok(if failed {
        EXIT_FAILED
    } else if report.clean() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    })
}

/// `signoff ingest` against a queue server: each input is one request to `/v1/ingest`,
/// reported as the local command reports it.
fn run_remote(remote: &crate::queue::RemoteQueue, files: &[PathBuf]) -> anyhow::Result<i32> {
    use std::io::Read;
    let rt = super::runtime()?;
    let inputs: Vec<PathBuf> = if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files.to_vec()
    };
    let mut report = crate::ingest::Report::default();
    let mut failed = false;
    for path in &inputs {
        let (origin, body) = if path.as_os_str() == "-" {
            let mut buf = Vec::new();
            if let Err(e) = std::io::stdin().lock().read_to_end(&mut buf) {
                eprintln!("signoff: cannot read stdin: {e}");
                failed = true;
                continue;
            }
            ("<stdin>".to_string(), buf)
        } else {
            match std::fs::read(path) {
                Ok(b) => (path.display().to_string(), b),
                Err(e) => {
                    eprintln!("signoff: cannot read {}: {e}", path.display());
                    failed = true;
                    continue;
                }
            }
        };
        match rt.block_on(remote.ingest(body, None)) {
            Ok(answer) => {
                for p in &answer.problems {
                    eprintln!(
                        "{}",
                        sanitize(&format!("{origin}:{}: {}", p.line, p.reason))
                    );
                }
                report.ingested += answer.ingested;
                report.duplicates += answer.duplicates;
                report.revised += answer.revised;
                report.rejected += answer.rejected;
                report.conflicts += answer.conflicts;
            }
            Err(e) => {
                eprintln!("signoff: ingest of {origin} failed: {e}");
                failed = true;
                break;
            }
        }
    }
    println!("{report}");
    Ok(if failed {
        EXIT_FAILED
    } else if report.clean() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    })
}
