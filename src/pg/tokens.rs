//! The queue server's API tokens and idempotency records on PostgreSQL.
use crate::queue::Millis;
use crate::store::{IdempotentAnswer, TokenRecord};

use super::{PgDb, Result, not_yet};

impl PgDb {
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        Err(not_yet("tokens"))
    }
    pub async fn add_token(
        &self,
        _name: &str,
        _role: &str,
        _sha256: &str,
        _expires_at: Option<Millis>,
        _by: &str,
    ) -> Result<TokenRecord> {
        Err(not_yet("add_token"))
    }
    pub async fn revoke_token(&self, _name: &str, _by: &str) -> Result<()> {
        Err(not_yet("revoke_token"))
    }
    pub async fn idempotent_answer(
        &self,
        _caller: &str,
        _key: &str,
    ) -> Result<Option<IdempotentAnswer>> {
        Err(not_yet("idempotent_answer"))
    }
    pub async fn store_idempotent_answer(
        &self,
        _caller: &str,
        _key: &str,
        _answer: &IdempotentAnswer,
    ) -> Result<()> {
        Err(not_yet("store_idempotent_answer"))
    }
}
