//! WAL checkpoints on a thread of their own, so a busy writer (bulk ingest, the dispatcher,
//! a server) never pays for copying its pages into the database file inside a commit.
//!
//! SQLite's automatic checkpoint runs in the committing call: every ~1,000 WAL pages one
//! commit copies them into the database file and syncs it (a fifth of a claim+decide's CPU
//! and most of its I/O waits in `benches/store.rs`). Here commits only poke this thread,
//! which copies frames concurrently (`PASSIVE`: never blocks the writer).
//!
//! A writer that never pauses keeps appending, and SQLite starts the log over only when a
//! transaction begins with every frame already copied. Waiting for that from this thread
//! (`RESTART`) does not work against a busy writer: its busy handler sleeps while the
//! writer's lock is free for microseconds between transactions, and the log grew to
//! hundreds of MB in the bench. So once the log holds [`RESTART_FRAMES`] this thread catches
//! up and raises a flag; the writer, just before its next transaction, copies the few
//! frames written since (a `PASSIVE` checkpoint of its own) and that transaction starts
//! the log over. The writer's own auto-checkpoint stays on as a backstop at [`BACKSTOP_FRAMES`].
//!
//! Idle, the thread sleeps on a condition variable: no timers, no wake-ups.
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// WAL size (pages) at which the log is made to start over.
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
    /// Caught up with a long log: the writer should finish the cycle.
    restart: AtomicBool,
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
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // Its copies go out as runs of consecutive pages (see `vfs.rs`).
        let conn = match super::vfs::checkpoint_name() {
            Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
            None => Connection::open_with_flags(path, flags),
        }?;
        // PASSIVE never waits for the writer; a busy lock means "next time".
        conn.busy_timeout(Duration::from_millis(0))?;
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

    /// Whether the writer should finish a log cycle before its next transaction.
    pub fn wants_cycle(&self) -> bool {
        self.shared.restart.load(Ordering::Acquire)
    }

    /// On the writer's connection, just before its next transaction (the thread has had
    /// the time since the last commit to copy it, so little is left even after a large
    /// batch): copies the frames the thread has not, so this transaction starts the log
    /// over. Busy (the thread is mid-pass) or behind: the next transaction tries again.
    pub fn finish_cycle(&self, writer: &Connection) {
        match checkpoint(writer, "PASSIVE") {
            Ok((log, copied)) if log == copied => {
                self.shared.restart.store(false, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "WAL cycle checkpoint deferred"),
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
                // Catch up with what was written during that pass, then hand the last
                // few frames to the writer.
                let _ = checkpoint(conn, "PASSIVE");
                shared.restart.store(true, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
        }
    }
}

/// Runs one checkpoint; returns (frames in the WAL, frames copied), or busy as an error.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64)> {
    let (busy, log, copied): (i64, i64, i64) = conn
        .prepare_cached(&format!("PRAGMA wal_checkpoint({mode})"))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    if busy != 0 {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("checkpoint busy".into()),
        ));
    }
    Ok((log, copied))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DecisionKind, Policy};
    use crate::queue::Decision;
    use crate::store::{Durability, IngestItem, Store, StoreOptions};

    /// The WAL header's checkpoint sequence: it goes up by one each time the log starts over.
    fn wal_cycles(db: &Path) -> u32 {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let head = std::fs::read(wal).unwrap_or_default();
        head.get(12..16)
            .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()))
    }

    /// A writer that never pauses still gets its log started over: once the thread has
    /// caught up with a long log it raises the flag, and the writer's next transaction
    /// copies the rest first and writes from the start of the file.
    #[test]
    fn the_writer_finishes_the_cycle_the_thread_asks_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut store = Store::open(
            &path,
            Arc::new(Policy::default()),
            &StoreOptions {
                durability: Durability::Normal,
                background_checkpoint: true,
                ..Default::default()
            },
        )
        .unwrap();
        let item = |i: usize| {
            let v = serde_json::json!({
                "source": "t", "external_id": format!("e{i}"),
                "raw": {"body": "x".repeat(2_000)},
                "ai": {"summary": "s", "intent": "sales_lead", "priority": "medium",
                       "confidence": 0.9, "draft_reply": "d"}
            });
            let r = crate::model::Request::from_value(&v).unwrap();
            IngestItem::new(v.to_string(), v, r, "t:1".into())
        };
        let shared = store.checkpointer.as_ref().unwrap().shared.clone();
        let approve = Decision {
            kind: DecisionKind::Approve,
            revision: None,
            note: None,
            sets: vec![],
        };
        // Write well past the restart size.
        let mut next = 0;
        for _ in 0..8 {
            let chunk: Vec<IngestItem> = (next..next + 100).map(item).collect();
            next += 100;
            store.ingest_batch(&chunk, "system").unwrap();
        }
        for _ in 0..150 {
            let c = store.claim_next("rita").unwrap().unwrap();
            store.decide(&c, &approve).unwrap();
        }
        // Then stop writing, once the thread has asked for a cycle: with no commit to take
        // it, the flag stays up. Whether the last cycle fell inside the writes above or is
        // still to come depends on how fast the thread kept up, so write on without a
        // pause (a pause lets the thread copy everything, and the next write starts the
        // log over by itself) until the flag is seen up between two batches.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !shared.restart.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread never asked for a cycle"
            );
            let chunk: Vec<IngestItem> = (next..next + 50).map(item).collect();
            next += 50;
            store.ingest_batch(&chunk, "system").unwrap();
        }
        // Wait for the thread to be idle too: a pass still running would make the writer's
        // checkpoint busy (the writer rightly leaves the cycle to its next transaction then).
        while !shared.waiting.load(Ordering::Acquire) {
            assert!(std::time::Instant::now() < deadline, "the thread went idle");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            shared.restart.load(Ordering::Acquire),
            "the thread asked for a cycle"
        );
        let cycles = wal_cycles(&path);
        store.claim_next("rita").unwrap().unwrap();
        assert!(
            !shared.restart.load(Ordering::Acquire),
            "the writer finished it"
        );
        assert_eq!(
            wal_cycles(&path),
            cycles + 1,
            "its transaction started the log over"
        );
    }
}
