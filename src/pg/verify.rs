//! `signoff audit verify` on PostgreSQL: the chain, every MAC, and the head row.
use crate::store::VerifyReport;

use super::{PgDb, Result, not_yet};

impl PgDb {
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        Err(not_yet("verify_audit"))
    }
}
