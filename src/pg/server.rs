//! What the queue server reads of PostgreSQL beyond the queue calls.
use super::{PgDb, Result};

impl PgDb {
    /// Outbox rows per status.
    pub async fn outbox_totals(&self) -> Result<Vec<(String, i64)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
