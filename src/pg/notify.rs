//! The change token and feed: `LISTEN signoff_changes` on a connection of its own, counting
//! every change any instance announced, plus this process's own commits at once.
//!
//! The token is the number of announcements heard plus the commits this process made
//! (`PgDb::local_changes`), so it only grows. When the listening connection drops, the
//! feed says the queue is unavailable and the connection is made again, waiting 1 s, then
//! twice as long each time up to 30 s; once it is back the token moves, since changes made
//! meanwhile were not heard. The task stops when the [`Listener`] is dropped.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;

use super::{CHANGES_CHANNEL, PgDb, PgOptions, PgTarget, Result};
use crate::queue::{Changes, QueueError};

/// The first wait before connecting again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a quiet listening connection is checked, and how long the check may take: a
/// connection lost without a word (a dead peer, a cut network) is noticed this way.
const PING_EVERY: Duration = Duration::from_secs(20);
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Follows the database's change announcements.
pub struct Listener {
    db: Arc<PgDb>,
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

/// What the listening task and the queue share.
struct Shared {
    /// Announcements heard, plus one for each reconnection.
    heard: AtomicU64,
    feed: watch::Sender<crate::queue::Result<u64>>,
}

impl Shared {
    fn token(&self, db: &PgDb) -> u64 {
        self.heard.load(Ordering::SeqCst) + db.local_changes()
    }

    /// Something changed: the token moves and the feed carries it.
    fn bump(&self, db: &PgDb) {
        self.heard.fetch_add(1, Ordering::SeqCst);
        // The value replaced is of no interest.
        let _old = self.feed.send_replace(Ok(self.token(db)));
    }
}

/// A listening connection: the client (dropping it closes the connection) and its
/// messages.
type Connection = (tokio_postgres::Client, UnboundedReceiver<AsyncMessage>);

impl Listener {
    /// Connects and listens (failing when that fails), then follows the announcements in a
    /// task of its own.
    pub async fn start(url: &str, opts: &PgOptions, db: Arc<PgDb>) -> Result<Listener> {
        let target = PgTarget::parse(url, opts)?;
        let conn = listen(&target).await?;
        let (feed, _) = watch::channel(Ok(db.local_changes()));
        let shared = Arc::new(Shared {
            heard: AtomicU64::new(0),
            feed,
        });
        let task = tokio::spawn(follow(target, conn, Arc::downgrade(&db), shared.clone()));
        Ok(Listener {
            db,
            shared,
            task: task.abort_handle(),
        })
    }

    /// The current change token.
    pub fn token(&self) -> u64 {
        self.shared.token(&self.db)
    }

    pub fn subscribe(&self) -> Changes {
        self.shared.feed.subscribe()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A new connection listening on the changes channel.
async fn listen(target: &PgTarget) -> Result<Connection> {
    let (client, messages) = target.connect().await?;
    client
        .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
        .await?;
    Ok((client, messages))
}

/// Counts announcements until the connection drops, then connects again; ends when the
/// queue is gone.
async fn follow(target: PgTarget, mut conn: Connection, db: Weak<PgDb>, shared: Arc<Shared>) {
    loop {
        let why = hear(&mut conn, &db, &shared).await;
        let Some(why) = why else {
            return;
        };
        tracing::warn!("the queue database's change feed is down ({why}); connecting again");
        let _old = shared
            .feed
            .send_replace(Err(QueueError::Unavailable(format!(
                "the queue database's change feed is down: {why}"
            ))));
        drop(conn);
        let mut wait = FIRST_BACKOFF;
        conn = loop {
            tokio::time::sleep(wait).await;
            if db.strong_count() == 0 {
                return;
            }
            match listen(&target).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!("the queue database's change feed: {e}");
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        };
        tracing::info!("the queue database's change feed is back");
        // What changed while no one listened was not heard: say that something may have.
        let Some(db) = db.upgrade() else {
            return;
        };
        shared.bump(&db);
    }
}

/// Counts announcements on `conn` until it fails (`Some(why)`) or the queue is gone
/// (`None`).
async fn hear(conn: &mut Connection, db: &Weak<PgDb>, shared: &Shared) -> Option<String> {
    let (client, messages) = conn;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            m = messages.recv() => match m {
                Some(AsyncMessage::Notification(n)) if n.channel() == CHANGES_CHANNEL => {
                    let db = db.upgrade()?;
                    shared.bump(&db);
                }
                Some(_) => {}
                None => return Some("the connection closed".into()),
            },
            _ = ping.tick() => {
                if db.strong_count() == 0 {
                    return None;
                }
                match tokio::time::timeout(PING_TIMEOUT, client.simple_query("")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Some(super::describe(&e)),
                    Err(_) => return Some("the server did not answer".into()),
                }
            }
        }
    }
}
