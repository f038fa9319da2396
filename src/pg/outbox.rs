//! The outbox on PostgreSQL: due rows leased with `FOR UPDATE SKIP LOCKED`, so every
//! instance's dispatcher attempts each row alone.
use crate::store::{AttemptRecord, Claimed};

use super::{PgDb, Result, not_yet};

impl PgDb {
    pub async fn claim_due(&self, _worker: &str, _lease_ms: i64, _limit: u32) -> Result<Claimed> {
        Err(not_yet("claim_due"))
    }
    pub async fn record_attempts(
        &self,
        _worker: &str,
        _records: &[AttemptRecord],
    ) -> Result<usize> {
        Err(not_yet("record_attempts"))
    }
}
