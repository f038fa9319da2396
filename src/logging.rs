//! Logging to a file in the state dir: non-blocking, rotated daily, a capped number of
//! files, level from `SIGNOFF_LOG` or the config. Never to the terminal: a console owns it.
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;

/// Starts logging; keep the guard alive until exit so buffered lines are written.
/// Fails quietly (returns `None`) when the log dir cannot be created: logging must never
/// stop a reviewer from working.
pub fn init(log_dir: &Path, level: &str, max_files: usize) -> Option<WorkerGuard> {
    std::fs::create_dir_all(log_dir).ok()?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("signoff")
        .filename_suffix("log")
        .max_log_files(max_files.max(1))
        .build(log_dir)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = std::env::var("SIGNOFF_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // tracing-subscriber ≥ 0.3.20 escapes control characters in recorded values, so text
    // from requests cannot inject terminal sequences into someone's `tail -f`.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true)
        .try_init()
        .ok()?;
    Some(guard)
}
