//! The threshold and auto-approval in force on PostgreSQL: the same gate as the SQLite
//! store's (`crate::store::validation`), read from `meta` and the audit log's sign-offs.
use crate::queue::Millis;
use crate::store::validation::{
    IN_FORCE_KEY, PolicyVerdict, adopted_detail, policy_verdict, signed_off,
};
use crate::store::{ADOPTED_KIND, InForce, PolicyCheck, SIGNED_OFF_KIND};

use super::{PgDb, Result};

impl PgDb {
    /// The threshold and auto-approval in force.
    pub async fn policy_in_force(&self) -> Result<InForce> {
        let client = self.client().await?;
        let value: Option<String> = client
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&IN_FORCE_KEY])
            .await?
            .map(|r| r.get(0));
        Ok(value
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_else(InForce::defaults))
    }

    /// Checks the configured policy against the one in force: a change that needs evidence
    /// is taken into force only on a passing signed-off validation of this policy version
    /// (audited, with the `meta` copy), as on SQLite.
    pub async fn check_policy(&self, actor: &str) -> Result<PolicyCheck> {
        let in_force = self.policy_in_force().await?;
        let policy = self.policy().clone();
        let version = policy.version();
        let passing = if in_force.needs_evidence_for(&policy) {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT seq, at, actor, os_user, detail FROM audit
                     WHERE kind = $1 AND detail::jsonb ->> 'policy_version' = $2
                     ORDER BY seq DESC",
                    &[&SIGNED_OFF_KIND, &version],
                )
                .await?;
            rows.iter()
                .filter_map(|r| {
                    let detail: String = r.get(4);
                    signed_off(r.get(0), r.get(1), r.get(2), r.get(3), &detail)
                })
                .find(|v| v.passed)
                .map(|v| v.seq)
        } else {
            None
        };
        let validation = match policy_verdict(&in_force, &policy, passing) {
            PolicyVerdict::InForce => return Ok(PolicyCheck::InForce),
            PolicyVerdict::Refuse(why) => return Ok(PolicyCheck::Refused(why)),
            PolicyVerdict::Adopt(validation) => validation,
        };
        self.writable()?;
        let now: Millis = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        audit.push(
            now,
            actor,
            None,
            ADOPTED_KIND,
            &adopted_detail(
                &version,
                policy.confidence_threshold,
                policy.auto_approve,
                validation,
                false,
                &in_force,
            ),
        );
        let seq = audit.append(&tx).await?.first().copied().unwrap_or(0);
        let record = InForce {
            seq: Some(seq),
            at: Some(now),
            by: Some(actor.to_string()),
            policy_version: Some(version),
            confidence_threshold: policy.confidence_threshold,
            auto_approve: policy.auto_approve,
            validation,
            forced: false,
        };
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[
                &IN_FORCE_KEY,
                &serde_json::to_string(&record).unwrap_or_default(),
            ],
        )
        .await?;
        tx.commit().await?;
        self.changed();
        Ok(PolicyCheck::Adopted { seq, validation })
    }
}
