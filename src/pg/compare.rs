//! The comparing parts of the stats on PostgreSQL: the rows per prompt version or model
//! and the drift against the signed-off validation, tallied as on SQLite
//! (`crate::store::compare`).
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::read::pg;
use super::{PgDb, Result};
use crate::queue::Millis;
use crate::stats::{Baseline, Drift, GroupStats};
use crate::store::SIGNED_OFF_KIND;
use crate::store::compare::{
    DriftDecision, GroupBy, GroupRows, NONE_LABEL, drift_start, tally_drift, tally_groups,
    validated_baseline,
};
use crate::store::validation::{IN_FORCE_KEY, InForce, signed_off};

impl PgDb {
    /// Items, decisions, edit rates, agreement, escalations and outcomes per prompt
    /// version or model, over decisions since `from`.
    pub(super) async fn groups_in(
        &self,
        c: &impl GenericClient,
        from: Millis,
        by: GroupBy,
    ) -> Result<Vec<GroupStats>> {
        let col = by.column();
        let items = c
            .prepare_cached(&format!(
                "SELECT COALESCE({col}, $2), COUNT(*) FROM requests WHERE ingested_at >= $1
                 GROUP BY 1"
            ))
            .await?;
        // Decisions in force, with their group and whether intent or priority changed.
        let decided = c
            .prepare_cached(&format!(
                "SELECT d.request_id, COALESCE(r.{col}, $2), d.kind,
                    EXISTS (SELECT 1 FROM edits e WHERE e.request_id = d.request_id
                            AND e.field IN ('intent', 'priority') AND e.at <= d.at)
                 FROM decisions d JOIN requests r ON r.id = d.request_id
                 WHERE d.undone_at IS NULL AND d.at >= $1"
            ))
            .await?;
        let edited = c
            .prepare_cached(
                "SELECT DISTINCT e.request_id, e.field FROM edits e
                 JOIN decisions d ON d.request_id = e.request_id
                 WHERE d.undone_at IS NULL AND d.at >= $1 AND e.at <= d.at",
            )
            .await?;
        let outcomes = c
            .prepare_cached(
                "SELECT o.request_id, o.value FROM outcomes o
                 WHERE o.id = (SELECT MAX(id) FROM outcomes WHERE request_id = o.request_id)",
            )
            .await?;
        let grouped: [&(dyn ToSql + Sync); 2] = [&from, &NONE_LABEL];
        let since: [&(dyn ToSql + Sync); 1] = [&from];
        let (items, decided, edited, outcomes) = tokio::try_join!(
            pg(c.query(&items, &grouped)),
            pg(c.query(&decided, &grouped)),
            pg(c.query(&edited, &since)),
            pg(c.query(&outcomes, &[])),
        )?;
        let pairs = |rows: Vec<tokio_postgres::Row>| {
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>>>()
        };
        Ok(tally_groups(GroupRows {
            items: items
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.max(0) as u64)))
                .collect::<Result<_>>()?,
            decided: decided
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect::<Result<_>>()?,
            edited: pairs(edited)?,
            outcomes: pairs(outcomes)?,
        }))
    }

    /// The baseline: the signed-off validation the threshold in force stands on, else the
    /// newest passing one.
    async fn baseline_in(&self, c: &impl GenericClient) -> Result<Option<Baseline>> {
        let meta = c
            .prepare_cached("SELECT value FROM meta WHERE key = $1")
            .await?;
        let in_force = c
            .query_opt(&meta, &[&IN_FORCE_KEY])
            .await?
            .map(|r| r.try_get::<_, String>(0))
            .transpose()?
            .and_then(|v| serde_json::from_str::<InForce>(&v).ok())
            .unwrap_or_else(InForce::defaults);
        // The one in force first, then the passing ones, newest first.
        let signed = c
            .prepare_cached(
                "SELECT seq, at, actor, os_user, detail FROM audit
                 WHERE kind = $1 AND (seq = $2 OR (detail::jsonb -> 'passed') = 'true'::jsonb)
                 ORDER BY seq = $2 DESC NULLS LAST, seq DESC LIMIT 1",
            )
            .await?;
        let Some(r) = c
            .query_opt(&signed, &[&SIGNED_OFF_KIND, &in_force.validation])
            .await?
        else {
            return Ok(None);
        };
        let detail: String = r.try_get(4)?;
        Ok(signed_off(
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            &detail,
        )
        .map(validated_baseline))
    }

    /// Agreement, escalation rate and volume per week for the last 8 weeks, agreement by
    /// confidence over the last 7 days, against the validated baseline.
    pub(super) async fn drift_in(&self, c: &impl GenericClient, now: Millis) -> Result<Drift> {
        let start = drift_start(now);
        let ingested = c
            .prepare_cached("SELECT ingested_at FROM requests WHERE ingested_at >= $1")
            .await?;
        let decisions = c
            .prepare_cached(
                "SELECT d.at, d.kind, r.confidence,
                    EXISTS (SELECT 1 FROM edits e WHERE e.request_id = d.request_id
                            AND e.field IN ('intent', 'priority') AND e.at <= d.at)
                 FROM decisions d JOIN requests r ON r.id = d.request_id
                 WHERE d.undone_at IS NULL AND d.at >= $1",
            )
            .await?;
        let since: [&(dyn ToSql + Sync); 1] = [&start];
        let (ingested, decisions, baseline) = tokio::try_join!(
            pg(c.query(&ingested, &since)),
            pg(c.query(&decisions, &since)),
            self.baseline_in(c),
        )?;
        let ingested = ingested
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<Millis>, _>>()?;
        let decisions = decisions
            .iter()
            .map(|r| {
                Ok(DriftDecision {
                    at: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    confidence: r.try_get(2)?,
                    changed_class: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(tally_drift(now, ingested, &decisions, baseline))
    }
}
