//! Claims with fenced leases, edits, decisions with their audit and outbox rows, undo, the
//! kill switch, resends and outcomes on PostgreSQL.
use crate::model::EditableField;
use crate::queue::{Claim, Decision, Receipt};

use super::{PgDb, Result, not_yet};

impl PgDb {
    pub async fn claim_next(&self, _reviewer: &str) -> Result<Option<Claim>> {
        Err(not_yet("claim_next"))
    }
    pub async fn claim(&self, _id: i64, _reviewer: &str) -> Result<Claim> {
        Err(not_yet("claim"))
    }
    pub async fn heartbeat(&self, _claim: &Claim) -> Result<Claim> {
        Err(not_yet("heartbeat"))
    }
    pub async fn release(&self, _claim: &Claim) -> Result<()> {
        Err(not_yet("release"))
    }
    pub async fn edit(
        &self,
        _claim: &Claim,
        _field: EditableField,
        _value: Option<String>,
    ) -> Result<()> {
        Err(not_yet("edit"))
    }
    pub async fn decide(&self, _claim: &Claim, _decision: &Decision) -> Result<Receipt> {
        Err(not_yet("decide"))
    }
    pub async fn undo(&self, _id: i64, _reviewer: &str) -> Result<Claim> {
        Err(not_yet("undo"))
    }
    pub async fn set_actions_paused(&self, _paused: bool, _reviewer: &str) -> Result<()> {
        Err(not_yet("set_actions_paused"))
    }
    pub async fn resend(&self, _action_id: i64, _reviewer: &str) -> Result<()> {
        Err(not_yet("resend"))
    }
    pub async fn record_outcome(
        &self,
        _id: i64,
        _value: &str,
        _reason: Option<&str>,
        _reviewer: &str,
    ) -> Result<()> {
        Err(not_yet("record_outcome"))
    }
    /// Appends one audit entry in a transaction of its own.
    pub async fn audit_event(
        &self,
        _actor: &str,
        _request_id: Option<i64>,
        _kind: &str,
        _detail: &serde_json::Value,
    ) -> Result<i64> {
        Err(not_yet("audit_event"))
    }
}
