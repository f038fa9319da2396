//! The queue server's API tokens and idempotency records on PostgreSQL, with the SQLite
//! store's rules: a name is taken by a live token only, adding and revoking are audited,
//! the first answer to an idempotent request is kept for a week.
use tokio_postgres::error::SqlState;

use crate::queue::Millis;
use crate::store::tokens::{IDEMPOTENCY_KEEP_MS, no_live_token, token_in_use};
use crate::store::{IdempotentAnswer, TokenRecord};

use super::{PgDb, PgError, Result};

impl PgDb {
    /// Every token, revoked and expired ones included, by name.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, role, sha256, created_at, created_by, expires_at, revoked_at
                 FROM api_tokens ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TokenRecord {
                name: r.get(0),
                role: r.get(1),
                sha256: r.get(2),
                created_at: r.get(3),
                created_by: r.get(4),
                expires_at: r.get(5),
                revoked_at: r.get(6),
            })
            .collect())
    }

    /// Stores a new token's hash under `name`. A name in use by a token that is neither
    /// revoked nor expired is refused; an old one of that name is replaced.
    pub async fn add_token(
        &self,
        name: &str,
        role: &str,
        sha256: &str,
        expires_at: Option<Millis>,
        by: &str,
    ) -> Result<TokenRecord> {
        self.writable()?;
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let live = tx
            .query_opt(
                "SELECT name FROM api_tokens WHERE name = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > $2) FOR UPDATE",
                &[&name, &now],
            )
            .await?;
        if live.is_some() {
            return Err(PgError::Queue(token_in_use(name)));
        }
        tx.execute("DELETE FROM api_tokens WHERE name = $1", &[&name])
            .await?;
        let inserted = tx
            .execute(
                "INSERT INTO api_tokens (name, role, sha256, created_at, created_by, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&name, &role, &sha256, &now, &by, &expires_at],
            )
            .await;
        match inserted {
            // Another instance added a token of this name since the check.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(PgError::Queue(token_in_use(name)));
            }
            other => {
                other?;
            }
        }
        let mut audit = self.audit();
        audit.push(
            now,
            by,
            None,
            "token_added",
            &serde_json::json!({"name": name, "role": role, "expires_at": expires_at}),
        );
        audit.append(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(TokenRecord {
            name: name.to_string(),
            role: role.to_string(),
            sha256: sha256.to_string(),
            created_at: now,
            created_by: by.to_string(),
            expires_at,
            revoked_at: None,
        })
    }

    /// Revokes the token named `name`; refused when there is no live token of that name.
    pub async fn revoke_token(&self, name: &str, by: &str) -> Result<()> {
        self.writable()?;
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                &[&name, &now],
            )
            .await?;
        if n == 0 {
            return Err(PgError::Queue(no_live_token(name)));
        }
        let mut audit = self.audit();
        audit.push(
            now,
            by,
            None,
            "token_revoked",
            &serde_json::json!({"name": name}),
        );
        audit.append(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    /// The answer stored for `(caller, key)`, if any.
    pub async fn idempotent_answer(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotentAnswer>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body_sha256, status, answer FROM idempotency WHERE caller = $1 AND key = $2",
                &[&caller, &key],
            )
            .await?;
        Ok(row.map(|r| IdempotentAnswer {
            body_sha256: r.get(0),
            status: r.get::<_, i64>(1) as u16,
            answer: r.get(2),
        }))
    }

    /// Keeps the first answer to `(caller, key)` (a later one for the same pair is
    /// ignored) and forgets answers older than a week.
    pub async fn store_idempotent_answer(
        &self,
        caller: &str,
        key: &str,
        answer: &IdempotentAnswer,
    ) -> Result<()> {
        self.writable()?;
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM idempotency WHERE at < $1",
            &[&(now - IDEMPOTENCY_KEEP_MS)],
        )
        .await?;
        tx.execute(
            "INSERT INTO idempotency (caller, key, body_sha256, status, answer, at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (caller, key) DO NOTHING",
            &[
                &caller,
                &key,
                &answer.body_sha256,
                &i64::from(answer.status),
                &answer.answer,
                &now,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
