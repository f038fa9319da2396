//! Listings, counts, item detail, timelines, previews and statistics on PostgreSQL.
use crate::model::DecisionKind;
use crate::queue::{ActionPreview, AuditEntry, Counts, ItemDetail, ListQuery, Millis, Page};

use super::{PgDb, Result, not_yet};

impl PgDb {
    pub async fn list(&self, _q: &ListQuery) -> Result<Page> {
        Err(not_yet("list"))
    }
    pub async fn counts(&self) -> Result<Counts> {
        Err(not_yet("counts"))
    }
    pub async fn get(&self, _id: i64) -> Result<ItemDetail> {
        Err(not_yet("get"))
    }
    pub async fn timeline(&self, _id: i64) -> Result<Vec<AuditEntry>> {
        Err(not_yet("timeline"))
    }
    pub async fn actions_paused(&self) -> Result<bool> {
        Err(not_yet("actions_paused"))
    }
    pub async fn preview_actions(
        &self,
        _id: i64,
        _kind: &DecisionKind,
        _reviewer: &str,
        _note: Option<&str>,
    ) -> Result<Vec<ActionPreview>> {
        Err(not_yet("preview_actions"))
    }
    pub async fn volume(&self) -> Result<crate::stats::Volume> {
        Err(not_yet("volume"))
    }
    pub async fn stats(&self, _since: Option<Millis>) -> Result<crate::stats::Stats> {
        Err(not_yet("stats"))
    }
}
