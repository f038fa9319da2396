//! WAL checkpoints on a thread of their own, so a busy writer (bulk ingest, the dispatcher,
//! a server) never pays for one inside a commit.
//!
//! SQLite's automatic checkpoint runs in the committing call: every ~1,000 WAL pages one
//! commit copies them into the database file and syncs it (a fifth of a claim+decide's CPU
//! and most of its I/O waits in `benches/store.rs`). Here commits only poke this thread,
//! which copies frames concurrently (`PASSIVE`: never blocks the writer). A writer that
//! never pauses keeps appending, so the WAL would never start over: once it holds
//! [`RESTART_FRAMES`] the thread finishes with a `RESTART` checkpoint, which waits for the
//! writer to finish its transaction, copies the few frames left and makes the next commit
//! write from the start of the file again. The writer's own auto-checkpoint stays on as a
//! backstop at [`BACKSTOP_FRAMES`], in case this thread falls behind.
//!
//! Idle, the thread sleeps on a condition variable: no timers, no wake-ups.
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// WAL size (pages) at which the thread forces the log to start over.
pub const RESTART_FRAMES: i64 = 4_000;
/// The writer's own auto-checkpoint while this thread runs (pages).
pub const BACKSTOP_FRAMES: i64 = 4 * RESTART_FRAMES;
/// How long commits accumulate before a checkpoint copies them (one copy of a page that
/// many commits touched instead of one per commit).
const GATHER: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Shared {
    commits: AtomicU64,
    waiting: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
}

pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread with its own connection to `path`.
    pub fn start(path: &Path) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // RESTART waits for the writer's current transaction; a short wait, then try later.
        conn.busy_timeout(Duration::from_millis(200))?;
        let shared = Arc::new(Shared::default());
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("signoff-checkpoint".into())
            .spawn(move || run(&conn, &inner))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Called after each commit: one atomic add, and a wake-up only when the thread sleeps.
    pub fn poke(&self) {
        self.shared.commits.fetch_add(1, Ordering::Release);
        if self.shared.waiting.load(Ordering::Acquire) {
            // Taking the lock orders this wake-up after the thread started waiting.
            let _guard = self.shared.stop.lock();
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, shared: &Shared) {
    let mut seen = 0u64;
    loop {
        {
            let Ok(mut stop) = shared.stop.lock() else {
                return;
            };
            loop {
                if *stop {
                    return;
                }
                let now = shared.commits.load(Ordering::Acquire);
                if now != seen {
                    seen = now;
                    break;
                }
                shared.waiting.store(true, Ordering::Release);
                // Re-check after announcing: a poke between the load and here saw `waiting`
                // false and did not notify, but it did bump the counter.
                if shared.commits.load(Ordering::Acquire) != seen {
                    shared.waiting.store(false, Ordering::Release);
                    continue;
                }
                stop = match shared.wake.wait(stop) {
                    Ok(g) => g,
                    Err(_) => return,
                };
                shared.waiting.store(false, Ordering::Release);
            }
        }
        std::thread::sleep(GATHER);
        match checkpoint(conn, "PASSIVE") {
            Ok((log, _)) if log >= RESTART_FRAMES => {
                if let Err(e) = checkpoint(conn, "RESTART") {
                    tracing::debug!(error = %e, "WAL restart checkpoint deferred");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
        }
    }
}

/// Runs one checkpoint; returns (frames in the WAL, frames copied).
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}
