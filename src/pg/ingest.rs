//! Ingest on PostgreSQL: new requests and revisions, quarantine, the policy re-check.
use super::{PgDb, Result, not_yet};

impl PgDb {
    pub async fn ingest(
        &self,
        _origin: &str,
        _body: Vec<u8>,
        _actor: &str,
    ) -> Result<(crate::ingest::Report, Vec<crate::ingest::Problem>)> {
        Err(not_yet("ingest"))
    }
}
