//! What the queue server needs of a store beyond the [`Queue`] calls: API tokens,
//! idempotency records, ingest and the outbox's totals. The SQLite queue and the
//! PostgreSQL one both provide it, so the routes never know which they serve.
use std::sync::Arc;

use crate::queue::{LocalQueue, Millis, Queue, Result};
use crate::store::{IdempotentAnswer, TokenRecord};

/// A queue the server can serve.
#[async_trait::async_trait]
pub trait Backend: Queue {
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;
    async fn add_token(
        &self,
        name: &str,
        role: &str,
        sha256: &str,
        expires_at: Option<Millis>,
        by: &str,
    ) -> Result<TokenRecord>;
    async fn revoke_token(&self, name: &str, by: &str) -> Result<()>;
    async fn idempotent_answer(&self, caller: &str, key: &str) -> Result<Option<IdempotentAnswer>>;
    async fn store_idempotent_answer(
        &self,
        caller: &str,
        key: &str,
        answer: &IdempotentAnswer,
    ) -> Result<()>;
    /// Ingests `body` as `signoff ingest` reads a file.
    async fn ingest(
        &self,
        origin: &str,
        body: Vec<u8>,
        actor: &str,
    ) -> Result<(crate::ingest::Report, Vec<crate::ingest::Problem>)>;
    /// Outbox rows per status.
    async fn outbox_totals(&self) -> Result<Vec<(String, i64)>>;
}

#[async_trait::async_trait]
impl Backend for LocalQueue {
    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.on_reader(|st| st.tokens()).await
    }

    async fn add_token(
        &self,
        name: &str,
        role: &str,
        sha256: &str,
        expires_at: Option<Millis>,
        by: &str,
    ) -> Result<TokenRecord> {
        let (name, role, sha256, by) = (
            name.to_string(),
            role.to_string(),
            sha256.to_string(),
            by.to_string(),
        );
        self.on_writer(move |st| st.add_token(&name, &role, &sha256, expires_at, &by))
            .await
    }

    async fn revoke_token(&self, name: &str, by: &str) -> Result<()> {
        let (name, by) = (name.to_string(), by.to_string());
        self.on_writer(move |st| st.revoke_token(&name, &by)).await
    }

    async fn idempotent_answer(&self, caller: &str, key: &str) -> Result<Option<IdempotentAnswer>> {
        let (caller, key) = (caller.to_string(), key.to_string());
        self.on_reader(move |st| st.idempotent_answer(&caller, &key))
            .await
    }

    async fn store_idempotent_answer(
        &self,
        caller: &str,
        key: &str,
        answer: &IdempotentAnswer,
    ) -> Result<()> {
        let (caller, key, answer) = (caller.to_string(), key.to_string(), answer.clone());
        self.on_writer(move |st| st.store_idempotent_answer(&caller, &key, &answer))
            .await
    }

    async fn ingest(
        &self,
        origin: &str,
        body: Vec<u8>,
        actor: &str,
    ) -> Result<(crate::ingest::Report, Vec<crate::ingest::Problem>)> {
        LocalQueue::ingest(self, origin, body, actor).await
    }

    async fn outbox_totals(&self) -> Result<Vec<(String, i64)>> {
        self.on_reader(|st| st.outbox_totals()).await
    }
}

#[async_trait::async_trait]
impl Backend for crate::pg::PgQueue {
    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        Ok(self.db().tokens().await?)
    }

    async fn add_token(
        &self,
        name: &str,
        role: &str,
        sha256: &str,
        expires_at: Option<Millis>,
        by: &str,
    ) -> Result<TokenRecord> {
        Ok(self
            .db()
            .add_token(name, role, sha256, expires_at, by)
            .await?)
    }

    async fn revoke_token(&self, name: &str, by: &str) -> Result<()> {
        Ok(self.db().revoke_token(name, by).await?)
    }

    async fn idempotent_answer(&self, caller: &str, key: &str) -> Result<Option<IdempotentAnswer>> {
        Ok(self.db().idempotent_answer(caller, key).await?)
    }

    async fn store_idempotent_answer(
        &self,
        caller: &str,
        key: &str,
        answer: &IdempotentAnswer,
    ) -> Result<()> {
        Ok(self
            .db()
            .store_idempotent_answer(caller, key, answer)
            .await?)
    }

    async fn ingest(
        &self,
        origin: &str,
        body: Vec<u8>,
        actor: &str,
    ) -> Result<(crate::ingest::Report, Vec<crate::ingest::Problem>)> {
        crate::pg::PgQueue::ingest(self, origin, body, actor).await
    }

    async fn outbox_totals(&self) -> Result<Vec<(String, i64)>> {
        Ok(self.db().outbox_totals().await?)
    }
}

/// The queue a server was given, as the routes use it.
pub type Served = Arc<dyn Backend>;
