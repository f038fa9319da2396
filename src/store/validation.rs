//! Signed-off validations and the policy in force. A sign-off is an audit entry
//! (`validation_signed_off`): the input's digest, the policy version it judged, the
//! results, the required accuracy and pass or fail, under the signer's name, so
//! `audit verify` covers it. The confidence threshold and auto-approval in force are
//! recorded the same way (`policy_adopted`, naming the validation they stand on, or
//! `forced`), with a copy in `meta` so checking them reads one row.
use rusqlite::params;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::recheck::{meta, set_meta};
use super::{Result, Store};
use crate::model::Policy;
use crate::queue::Millis;

/// The audit kind of a sign-off.
pub const SIGNED_OFF_KIND: &str = "validation_signed_off";
/// The audit kind of a change of threshold or auto-approval taken into force.
pub const ADOPTED_KIND: &str = "policy_adopted";
/// The `meta` key of the copy of the policy in force.
pub(crate) const IN_FORCE_KEY: &str = "policy_in_force";

/// A validation someone signed off, as its audit entry records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedOff {
    /// The audit entry's sequence number.
    pub seq: i64,
    pub at: Millis,
    pub signed_by: String,
    pub os_user: Option<String>,
    pub input: String,
    pub input_sha256: String,
    pub cases: u64,
    pub policy_version: String,
    pub confidence_threshold: f64,
    pub auto_approve: bool,
    pub required_accuracy: f64,
    pub passed: bool,
    pub verdict: String,
    /// The results as recorded (accuracies, calibration, recommendation).
    pub results: Value,
}

/// The threshold and auto-approval in force, and what they stand on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InForce {
    /// The `policy_adopted` entry; None for the built-in defaults nobody adopted.
    pub seq: Option<i64>,
    pub at: Option<Millis>,
    pub by: Option<String>,
    pub policy_version: Option<String>,
    pub confidence_threshold: f64,
    pub auto_approve: bool,
    /// The signed-off validation (its audit seq) they stand on.
    pub validation: Option<i64>,
    /// Taken into force with `--force`, without a passing validation.
    pub forced: bool,
}

impl InForce {
    /// What a store that never adopted anything runs under: the built-in threshold with
    /// auto-approval off.
    pub fn defaults() -> InForce {
        InForce {
            seq: None,
            at: None,
            by: None,
            policy_version: None,
            confidence_threshold: Policy::default().confidence_threshold,
            auto_approve: false,
            validation: None,
            forced: false,
        }
    }

    /// Whether `policy` asks for what this record does not cover: another threshold, or
    /// auto-approval turned on. Turning auto-approval off needs no evidence.
    pub fn needs_evidence_for(&self, policy: &Policy) -> bool {
        policy.confidence_threshold != self.confidence_threshold
            || (policy.auto_approve && !self.auto_approve)
    }

    /// Whether `policy` runs under exactly this record's threshold and auto-approval.
    pub fn covers(&self, policy: &Policy) -> bool {
        policy.confidence_threshold == self.confidence_threshold
            && policy.auto_approve == self.auto_approve
    }
}

/// What [`Store::check_policy`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyCheck {
    /// The policy's threshold and auto-approval are those in force.
    InForce,
    /// A change taken into force now (audited): on this validation, or needing none.
    Adopted { seq: i64, validation: Option<i64> },
    /// A change that needs a passing signed-off validation of this policy version.
    Refused(String),
}

/// A sign-off from its audit row; None where the detail is not JSON.
pub(crate) fn signed_off(
    seq: i64,
    at: Millis,
    actor: String,
    os_user: Option<String>,
    detail: &str,
) -> Option<SignedOff> {
    let v: Value = serde_json::from_str(detail).ok()?;
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or_default();
    Some(SignedOff {
        seq,
        at,
        signed_by: actor,
        os_user,
        input: s("input"),
        input_sha256: s("input_sha256"),
        cases: v.get("cases").and_then(Value::as_u64).unwrap_or_default(),
        policy_version: s("policy_version"),
        confidence_threshold: f("confidence_threshold"),
        auto_approve: v
            .get("auto_approve")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        required_accuracy: f("required_accuracy"),
        passed: v.get("passed").and_then(Value::as_bool).unwrap_or(false),
        verdict: s("verdict"),
        results: v.get("results").cloned().unwrap_or(Value::Null),
    })
}

impl Store {
    /// Records a sign-off of a validation `report` (its JSON) by `actor`; returns the
    /// audit entry's sequence number.
    pub fn sign_off_validation(
        &mut self,
        actor: &str,
        report: &crate::validate::Report,
        cfg: &crate::validate::ValidationConfig,
    ) -> Result<i64> {
        let results = json!({
            "fields": report.fields,
            "agreement": report.agreement,
            "escalation_rate": report.escalation_rate,
            "cases_per_week": report.cases_per_week,
            "calibration": report.calibration,
            "eligible": report.eligible,
            "at_policy_threshold": report.at_policy_threshold,
            "recommended_threshold": report.recommendation.as_ref().map(|r| r.point.threshold),
            "recommendation": report.recommendation.as_ref().map(|r| &r.point),
            "wrong_at_recommendation": report.recommendation.as_ref().map(|r| r.wrong.len()),
            "drift_tolerance": cfg.drift_tolerance,
            "drift_min_cases": cfg.drift_min_cases,
        });
        let detail = json!({
            "input": report.input,
            "input_sha256": report.input_sha256,
            "cases": report.cases,
            "policy_version": report.policy_version,
            "confidence_threshold": report.confidence_threshold,
            "auto_approve": report.auto_approve,
            "required_accuracy": report.required_accuracy,
            "min_cases": report.min_cases,
            "passed": report.passed,
            "verdict": report.verdict,
            "results": results,
        });
        self.write_audited(|tx, now, _, audit| {
            audit.append(tx, now, actor, None, SIGNED_OFF_KIND, &detail)
        })
    }

    /// Signed-off validations, newest first; only those of `policy_version` when given.
    pub fn signed_off_validations(&self, policy_version: Option<&str>) -> Result<Vec<SignedOff>> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, actor, os_user, detail FROM audit WHERE kind = ?1
               AND (?2 IS NULL OR json_extract(detail, '$.policy_version') = ?2)
             ORDER BY seq DESC",
        )?;
        let rows = stmt.query_map(params![SIGNED_OFF_KIND, policy_version], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, actor, os_user, detail) = row?;
            out.extend(signed_off(seq, at, actor, os_user, &detail));
        }
        Ok(out)
    }

    /// One signed-off validation by its audit sequence number.
    pub fn signed_off_validation(&self, seq: i64) -> Result<Option<SignedOff>> {
        use rusqlite::OptionalExtension;
        let row: Option<(i64, Millis, String, Option<String>, String)> = self
            .conn
            .query_row(
                "SELECT seq, at, actor, os_user, detail FROM audit WHERE seq = ?1 AND kind = ?2",
                params![seq, SIGNED_OFF_KIND],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        Ok(row.and_then(|(seq, at, actor, os_user, detail)| {
            signed_off(seq, at, actor, os_user, &detail)
        }))
    }

    /// The threshold and auto-approval in force.
    pub fn policy_in_force(&self) -> Result<InForce> {
        Ok(meta(&self.conn, IN_FORCE_KEY)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_else(InForce::defaults))
    }

    /// Takes this store's policy's threshold and auto-approval into force: an audit entry
    /// naming the validation they stand on (or `forced`), and the `meta` copy.
    pub fn adopt_policy(
        &mut self,
        actor: &str,
        validation: Option<i64>,
        forced: bool,
    ) -> Result<i64> {
        let previous = self.policy_in_force()?;
        let (version, threshold, auto) = (
            self.policy.version(),
            self.policy.confidence_threshold,
            self.policy.auto_approve,
        );
        self.write_audited(|tx, now, _, audit| {
            let seq = audit.append(
                tx,
                now,
                actor,
                None,
                ADOPTED_KIND,
                &adopted_detail(&version, threshold, auto, validation, forced, &previous),
            )?;
            let record = InForce {
                seq: Some(seq),
                at: Some(now),
                by: Some(actor.to_string()),
                policy_version: Some(version.clone()),
                confidence_threshold: threshold,
                auto_approve: auto,
                validation,
                forced,
            };
            set_meta(
                tx,
                IN_FORCE_KEY,
                &serde_json::to_string(&record).unwrap_or_default(),
            )?;
            Ok(seq)
        })
    }

    /// Checks this store's policy against the threshold and auto-approval in force. A
    /// change that needs evidence is taken into force only on a passing signed-off
    /// validation of this policy version; one that needs none (auto-approval turned off)
    /// is taken into force as it is. Both are audited.
    pub fn check_policy(&mut self, actor: &str) -> Result<PolicyCheck> {
        let in_force = self.policy_in_force()?;
        let passing = if in_force.needs_evidence_for(&self.policy) {
            self.signed_off_validations(Some(&self.policy.version()))?
                .into_iter()
                .find(|v| v.passed)
                .map(|v| v.seq)
        } else {
            None
        };
        match policy_verdict(&in_force, &self.policy, passing) {
            PolicyVerdict::InForce => Ok(PolicyCheck::InForce),
            PolicyVerdict::Adopt(validation) => {
                let seq = self.adopt_policy(actor, validation, false)?;
                Ok(PolicyCheck::Adopted { seq, validation })
            }
            PolicyVerdict::Refuse(why) => Ok(PolicyCheck::Refused(why)),
        }
    }
}

/// What a store does with its configured policy against the one in force.
pub(crate) enum PolicyVerdict {
    InForce,
    /// Take it into force, standing on this signed-off validation (none needed).
    Adopt(Option<i64>),
    Refuse(String),
}

/// The verdict for `policy` against `in_force`, given the newest passing signed-off
/// validation of this policy version (`passing`, looked up only when evidence is needed).
pub(crate) fn policy_verdict(
    in_force: &InForce,
    policy: &Policy,
    passing: Option<i64>,
) -> PolicyVerdict {
    if in_force.covers(policy) {
        return PolicyVerdict::InForce;
    }
    if !in_force.needs_evidence_for(policy) {
        return PolicyVerdict::Adopt(None);
    }
    if let Some(seq) = passing {
        return PolicyVerdict::Adopt(Some(seq));
    }
    let mut what = Vec::new();
    if policy.confidence_threshold != in_force.confidence_threshold {
        what.push(format!(
            "policy.confidence_threshold {} (in force: {})",
            policy.confidence_threshold, in_force.confidence_threshold
        ));
    }
    if policy.auto_approve && !in_force.auto_approve {
        what.push("policy.auto_approve = true (in force: off)".into());
    }
    PolicyVerdict::Refuse(format!(
        "refused: {} has no passing signed-off validation for policy version {}; \
         run `signoff validate HISTORY --sign-off` with this config (it must pass), \
         or take it into force without one with `signoff policy adopt --force` (audited)",
        what.join(" and "),
        policy.version()
    ))
}

/// The detail of a `policy_adopted` entry.
pub(crate) fn adopted_detail(
    version: &str,
    threshold: f64,
    auto: bool,
    validation: Option<i64>,
    forced: bool,
    previous: &InForce,
) -> Value {
    json!({
        "policy_version": version,
        "confidence_threshold": threshold,
        "auto_approve": auto,
        "validation": validation,
        "forced": forced,
        "previous": {
            "confidence_threshold": previous.confidence_threshold,
            "auto_approve": previous.auto_approve,
            "policy_version": previous.policy_version,
        },
    })
}
