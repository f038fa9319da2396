//! Logging to a file in the state dir: non-blocking, rotated daily, a capped number of
//! files, level from `SIGNOFF_LOG` or the config. Never to the terminal: a console owns it.
//! Logs name items and reviewers, so they are the user's alone: the directory is 0700, and
//! the files 0600 (the binary's umask covers the files the appender creates later; files
//! left by an earlier version are narrowed here).
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;

/// Starts logging; keep the guard alive until exit so buffered lines are written.
/// Fails quietly (returns `None`) when the log dir cannot be created: logging must never
/// stop a reviewer from working.
pub fn init(log_dir: &Path, level: &str, max_files: usize) -> Option<WorkerGuard> {
    private_dir(log_dir).ok()?;
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

/// Creates the log directory 0700 (whatever the umask) and takes group and other access off
/// the log files already in it that this user owns.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let Ok(meta) = entry.metadata() else { continue };
        if name.to_string_lossy().starts_with("signoff")
            && meta.is_file()
            && meta.uid() == me
            && meta.mode() & 0o077 != 0
        {
            let _ = std::fs::set_permissions(
                entry.path(),
                std::fs::Permissions::from_mode(meta.mode() & 0o700),
            );
        }
    }
    Ok(())
}
