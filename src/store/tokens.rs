//! The queue server's API tokens and idempotent-request answers.
//!
//! A token is shown once when it is made; the database keeps only its SHA-256, so a copy
//! of the database (a backup) holds no usable token. Adding and revoking are audited.
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::{Result, Store};
use crate::queue::{Millis, QueueError};

/// One token as stored (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TokenRecord {
    pub name: String,
    /// observer, reviewer, admin or ingest.
    pub role: String,
    /// Hex SHA-256 of the token.
    #[serde(skip_serializing, default)]
    pub sha256: String,
    pub created_at: Millis,
    pub created_by: String,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// The first answer given to an idempotent request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentAnswer {
    pub body_sha256: String,
    pub status: u16,
    pub answer: String,
}

/// Idempotency records older than this are forgotten.
pub(crate) const IDEMPOTENCY_KEEP_MS: Millis = 7 * 24 * 3600 * 1000;

/// Why a token cannot be added under `name`: a live one has it.
pub(crate) fn token_in_use(name: &str) -> QueueError {
    QueueError::Invalid(format!(
        "a token named '{name}' exists; revoke it first (signoff token revoke {name})"
    ))
}

/// Why a token cannot be revoked: no live one has that name.
pub(crate) fn no_live_token(name: &str) -> QueueError {
    QueueError::Invalid(format!(
        "no live token named '{name}' (signoff token list shows them)"
    ))
}

impl Store {
    /// Stores a new token's hash under `name`. A name in use by a token that is neither
    /// revoked nor expired is refused; an old one of that name is replaced.
    pub fn add_token(
        &mut self,
        name: &str,
        role: &str,
        sha256: &str,
        expires_at: Option<Millis>,
        by: &str,
    ) -> Result<TokenRecord> {
        self.write_audited(|tx, now, _, audit| {
            let live: Option<String> = tx
                .query_row(
                    "SELECT name FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > ?2)",
                    params![name, now],
                    |r| r.get(0),
                )
                .optional()?;
            if live.is_some() {
                return Err(token_in_use(name).into());
            }
            tx.execute("DELETE FROM api_tokens WHERE name = ?1", [name])?;
            tx.execute(
                "INSERT INTO api_tokens (name, role, sha256, created_at, created_by, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, role, sha256, now, by, expires_at],
            )?;
            audit.append(
                tx,
                now,
                by,
                None,
                "token_added",
                &json!({"name": name, "role": role, "expires_at": expires_at}),
            )?;
            Ok(TokenRecord {
                name: name.to_string(),
                role: role.to_string(),
                sha256: sha256.to_string(),
                created_at: now,
                created_by: by.to_string(),
                expires_at,
                revoked_at: None,
            })
        })
    }

    /// Every token, revoked and expired ones included, by name.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, role, sha256, created_at, created_by, expires_at, revoked_at
             FROM api_tokens ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TokenRecord {
                name: r.get(0)?,
                role: r.get(1)?,
                sha256: r.get(2)?,
                created_at: r.get(3)?,
                created_by: r.get(4)?,
                expires_at: r.get(5)?,
                revoked_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revokes the token named `name`; fails with `NotFound`-like `Invalid` when there is
    /// no live token of that name.
    pub fn revoke_token(&mut self, name: &str, by: &str) -> Result<()> {
        self.write_audited(|tx, now, _, audit| {
            let n = tx.execute(
                "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, now],
            )?;
            if n == 0 {
                return Err(no_live_token(name).into());
            }
            audit.append(tx, now, by, None, "token_revoked", &json!({"name": name}))?;
            Ok(())
        })
    }

    /// The answer stored for `(caller, key)`, if any.
    pub fn idempotent_answer(&self, caller: &str, key: &str) -> Result<Option<IdempotentAnswer>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT body_sha256, status, answer FROM idempotency WHERE caller = ?1 AND key = ?2",
            )?
            .query_row([caller, key], |r| {
                Ok(IdempotentAnswer {
                    body_sha256: r.get(0)?,
                    status: r.get(1)?,
                    answer: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// Keeps the first answer to `(caller, key)` (a later one for the same pair is
    /// ignored) and forgets answers older than a week.
    pub fn store_idempotent_answer(
        &mut self,
        caller: &str,
        key: &str,
        answer: &IdempotentAnswer,
    ) -> Result<()> {
        self.write(|tx, now, _| {
            tx.execute(
                "DELETE FROM idempotency WHERE at < ?1",
                [now - IDEMPOTENCY_KEEP_MS],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO idempotency (caller, key, body_sha256, status, answer, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    caller,
                    key,
                    answer.body_sha256,
                    answer.status,
                    answer.answer,
                    now
                ],
            )?;
            Ok(())
        })
    }
}
