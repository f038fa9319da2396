//! Ingest into the store: new items, counted duplicates, revisions of undecided items and
//! conflicts for decided ones, in batched transactions.
use std::sync::Arc;

use rusqlite::{ToSql, Transaction, params, params_from_iter};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::audit::{AuditWriter, hex};
use super::{Result, Store};
use crate::model::{Policy, Request, State, validate};
use crate::queue::Millis;
use crate::text::has_hidden;

/// One parsed payload ready for the store.
#[derive(Clone, Debug)]
pub struct IngestItem {
    /// The payload's JSON text exactly as it came in.
    pub payload: String,
    pub request: Request,
    /// [`payload_hash`] of the parsed payload.
    pub sha256: String,
    /// The `ai` object as JSON, for the "ingested" audit row (serialized where the item is
    /// parsed, so the writer only copies it).
    pub ai: Box<RawValue>,
    /// Where it came from, for reports: `FILE:LINE`.
    pub origin: String,
    /// Columns derived under a policy ahead of the write (the ingest parser thread does
    /// this); used only when that policy is the store's own.
    pub(crate) derived: Option<(Arc<Policy>, Derived)>,
}

impl IngestItem {
    /// Takes the parsed `value` for its hash and AI output; the tree itself is not kept.
    pub fn new(payload: String, value: Value, request: Request, origin: String) -> IngestItem {
        let sha256 = payload_hash(&value);
        let ai = value
            .get("ai")
            .and_then(|ai| serde_json::value::to_raw_value(ai).ok())
            .unwrap_or_else(|| RawValue::from_string("null".into()).expect("null is JSON"));
        IngestItem {
            payload,
            request,
            sha256,
            ai,
            origin,
            derived: None,
        }
    }

    /// Derives the listing columns and validation flags now, under `policy`, so the
    /// store's write does not.
    pub fn derive_with(&mut self, policy: &Arc<Policy>) {
        self.derived = Some((policy.clone(), derive(&self.request, policy)));
    }

    /// The derived columns under `policy`: the ones computed ahead when that was the
    /// policy, else computed now.
    pub(crate) fn derived_under(&self, policy: &Policy) -> std::borrow::Cow<'_, Derived> {
        match &self.derived {
            Some((p, d)) if std::ptr::eq(&**p, policy) => std::borrow::Cow::Borrowed(d),
            _ => std::borrow::Cow::Owned(derive(&self.request, policy)),
        }
    }
}

/// What ingest did with one payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    Inserted {
        id: i64,
    },
    /// The same payload (same canonical JSON) was already there.
    Duplicate {
        id: i64,
    },
    Revised {
        id: i64,
        revision: i64,
    },
    /// A changed payload for an item already decided; kept in quarantine.
    Conflict {
        id: i64,
        state: State,
    },
}

/// SHA-256 of the payload's canonical JSON (object keys sorted, no whitespace): the same
/// request re-sent with other formatting or key order is a duplicate, not a revision.
pub fn payload_hash(v: &Value) -> String {
    let mut buf = Vec::with_capacity(1024);
    canonical(v, &mut buf);
    hex(&Sha256::digest(&buf))
}

fn canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(x, out);
            }
            out.push(b']');
        }
        leaf => {
            let _ = serde_json::to_writer(&mut *out, leaf);
        }
    }
}

/// The audit detail of an ingest or a revision: the AI output as received (borrowed, not
/// copied: bodies and drafts can be large) and the policy version it was checked against.
#[derive(serde::Serialize)]
pub(crate) struct IngestDetail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<&'a str>,
    pub revision: i64,
    pub payload_sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<&'a str>,
    pub policy_version: &'a str,
    pub ai: &'a RawValue,
    pub flags: &'a [String],
}

/// Columns derived from a payload for listing and ordering.
#[derive(Clone, Debug)]
pub(crate) struct Derived {
    /// None: missing or not RFC 3339 (the item is then received when it is stored).
    pub received_at: Option<Millis>,
    /// The priority as the policy reads it (as sent when it does not know it).
    pub priority: Option<String>,
    pub priority_rank: i64,
    pub confidence: Option<f64>,
    pub confidence_raw: Option<String>,
    pub ai_escalation: bool,
    pub flags: String,
    pub flag_count: usize,
    pub flag_messages: Vec<String>,
    pub hidden: bool,
}

fn derive(r: &Request, policy: &Policy) -> Derived {
    let received_at = r
        .received_at
        .as_deref()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis);
    let checked = PolicyColumns::of(r, policy);
    let hidden = request_has_hidden(r);
    Derived {
        received_at,
        priority: checked.priority,
        priority_rank: checked.priority_rank,
        confidence: r.ai.confidence.value(),
        confidence_raw: match &r.ai.confidence {
            crate::model::Confidence::Invalid(s) => Some(s.clone()),
            _ => None,
        },
        ai_escalation: r
            .ai
            .escalation_reason
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty()),
        flags: checked.flags,
        flag_count: checked.flag_count,
        flag_messages: checked.flag_messages,
        hidden,
    }
}

/// The columns of an item that depend on the policy: what [`super::recheck`] brings up to
/// date when the policy changes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PolicyColumns {
    /// The priority as the policy reads it (as sent when it does not know it).
    pub priority: Option<String>,
    pub priority_rank: i64,
    /// The validation flags as JSON.
    pub flags: String,
    pub flag_count: usize,
    pub flag_messages: Vec<String>,
}

impl PolicyColumns {
    /// The columns of a request under `policy`, from the AI's values as sent.
    pub fn of(r: &Request, policy: &Policy) -> PolicyColumns {
        let flags = validate(r, policy);
        PolicyColumns {
            priority: r
                .ai
                .priority
                .as_deref()
                .map(|p| policy.priority_as_read(p).to_string()),
            priority_rank: policy.priority_rank(r.ai.priority.as_deref()),
            flags: serde_json::to_string(&flags).unwrap_or_else(|_| "[]".into()),
            flag_count: flags.len(),
            flag_messages: flags.into_iter().map(|f| f.message).collect(),
        }
    }
}

/// Whether any text of the request holds characters the sanitizer neutralises.
pub(crate) fn request_has_hidden(r: &Request) -> bool {
    let raw = &r.raw;
    let ai = &r.ai;
    [
        &raw.channel,
        &raw.from,
        &raw.subject,
        &raw.body,
        &ai.summary,
        &ai.intent,
        &ai.priority,
        &ai.recommended_next_step,
        &ai.escalation_reason,
        &ai.draft_reply,
    ]
    .into_iter()
    .flatten()
    .any(|s| has_hidden(s))
        || has_hidden(&r.source)
        || has_hidden(&r.external_id)
        || ai.missing_info.iter().any(|s| has_hidden(s))
        || raw
            .fields
            .iter()
            .any(|(k, v)| has_hidden(k) || v.as_str().is_some_and(has_hidden))
}

impl Store {
    /// Ingests a batch in one transaction. Returns one outcome per item, in order.
    pub fn ingest_batch(
        &mut self,
        items: &[IngestItem],
        actor: &str,
    ) -> Result<Vec<IngestOutcome>> {
        let renderer = self.renderer.clone();
        self.write_audited(|tx, now, policy, audit| {
            let policy_version = policy.version();
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                let outcome = ingest_one(tx, audit, item, actor, now, policy, &policy_version)?;
                if let IngestOutcome::Inserted { id } = outcome
                    && policy.auto_approve
                {
                    route_new(tx, audit, id, item, now, policy, renderer.as_ref())?;
                }
                outcomes.push(outcome);
            }
            Ok(outcomes)
        })
    }

    /// Keeps a payload that could not be queued, with its reason, so nothing is lost.
    pub fn quarantine(&mut self, entries: &[(String, Option<u64>, String, String)]) -> Result<()> {
        self.write(|tx, now, _| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO quarantine (at, origin, line, reason, raw) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (origin, line, reason, raw) in entries {
                stmt.execute(params![now, origin, line.map(|l| l as i64), reason, raw])?;
            }
            Ok(())
        })
    }

    /// Number of quarantined inputs.
    pub fn quarantine_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM quarantine", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }
}

fn ingest_one(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    item: &IngestItem,
    actor: &str,
    now: Millis,
    policy: &Policy,
    policy_version: &str,
) -> Result<IngestOutcome> {
    let r = &item.request;
    let d = &*item.derived_under(policy);
    let received_at = d.received_at.unwrap_or(now);
    let ai = &*item.ai;
    // New items are the common case: insert first, look up only on a key conflict.
    let head: [&dyn ToSql; 2] = [&r.source, &r.external_id];
    let inserted = tx
        .prepare_cached(
            "INSERT INTO requests (source, external_id, payload_sha256, received_at, ingested_at,
                updated_at, priority_rank, intent, priority, confidence, confidence_raw, channel,
                sender, subject, summary, ai_escalation, flags, flag_count, hidden_chars, ai_priority,
                model, prompt_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                ?20, ?21)
             ON CONFLICT (source, external_id) DO NOTHING",
        )?
        .execute(params_from_iter(
            head.into_iter().chain(derived_params(item, d, &received_at, &now)),
        ))?;
    let existing: Option<(i64, String, i64, String)> = if inserted == 1 {
        None
    } else {
        Some(
            tx.prepare_cached(
                "SELECT id, state, revision, payload_sha256 FROM requests WHERE source = ?1 AND external_id = ?2",
            )?
            .query_row(params![r.source, r.external_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?,
        )
    };
    match existing {
        None => {
            let id = tx.last_insert_rowid();
            insert_revision(tx, id, 1, item, now)?;
            audit.append(
                tx,
                now,
                actor,
                Some(id),
                "ingested",
                &IngestDetail {
                    source: Some(&r.source),
                    external_id: Some(&r.external_id),
                    revision: 1,
                    payload_sha256: &item.sha256,
                    previous_sha256: None,
                    policy_version,
                    ai,
                    flags: &d.flag_messages,
                },
            )?;
            Ok(IngestOutcome::Inserted { id })
        }
        Some((id, _, _, sha)) if sha == item.sha256 => Ok(IngestOutcome::Duplicate { id }),
        Some((id, state, revision, sha)) => {
            let state: State = state.parse().unwrap_or(State::Pending);
            if state.is_decided() {
                tx.prepare_cached(
                    "INSERT INTO quarantine (at, origin, line, reason, raw) VALUES (?1, ?2, NULL, ?3, ?4)",
                )?
                .execute(params![
                    now,
                    item.origin,
                    conflict_reason(id, r, state),
                    item.payload
                ])?;
                audit.append(
                    tx,
                    now,
                    actor,
                    Some(id),
                    "conflict",
                    &conflict_detail(state, &item.sha256, &sha),
                )?;
                return Ok(IngestOutcome::Conflict { id, state });
            }
            let revision = revision + 1;
            let head: [&dyn ToSql; 2] = [&id, &revision];
            tx.prepare_cached(
                "UPDATE requests SET revision = ?2, payload_sha256 = ?3, received_at = ?4, updated_at = ?5,
                    priority_rank = ?6, intent = ?7, priority = ?8, confidence = ?9, confidence_raw = ?10,
                    channel = ?11, sender = ?12, subject = ?13, summary = ?14, ai_escalation = ?15,
                    flags = ?16, flag_count = ?17, hidden_chars = ?18, ai_priority = ?19,
                    model = ?20, prompt_version = ?21
                 WHERE id = ?1",
            )?
            .execute(params_from_iter(
                head.into_iter().chain(derived_params(item, d, &received_at, &now)),
            ))?;
            insert_revision(tx, id, revision, item, now)?;
            audit.append(
                tx,
                now,
                actor,
                Some(id),
                "revised",
                &IngestDetail {
                    source: None,
                    external_id: None,
                    revision,
                    payload_sha256: &item.sha256,
                    previous_sha256: Some(&sha),
                    policy_version,
                    ai,
                    flags: &d.flag_messages,
                },
            )?;
            Ok(IngestOutcome::Revised { id, revision })
        }
    }
}

/// Why a changed payload for a decided item was quarantined.
pub(crate) fn conflict_reason(id: i64, r: &Request, state: State) -> String {
    format!(
        "conflict: item {id} ({} / {}) was already {state}; a changed payload cannot revise it",
        r.source, r.external_id
    )
}

/// The audit detail of a conflict.
pub(crate) fn conflict_detail(state: State, payload_sha256: &str, current_sha256: &str) -> Value {
    json!({"state": state, "payload_sha256": payload_sha256, "current_sha256": current_sha256})
}

/// Where `auto_approve` sends a new item.
pub(crate) enum AutoRoute {
    /// A review rule holds it back: it stays in the queue.
    Review,
    /// Drawn for the random audit sample: it stays in the queue, marked "sample", with
    /// this audit detail.
    Sample(Value),
    /// Approved by policy with these fields, actions and note.
    Approve {
        fields: crate::model::FieldValues,
        plan: crate::model::ActionPlan,
        note: String,
    },
}

impl AutoRoute {
    /// Under `auto_approve`: an item no review rule holds back is either drawn for the
    /// random audit sample or approved by policy.
    pub(crate) fn of(item: &IngestItem, policy: &Policy) -> AutoRoute {
        let r = &item.request;
        let flags = validate(r, policy);
        if !crate::model::review_reasons(r, &flags, policy).is_empty() {
            return AutoRoute::Review;
        }
        // Deterministic draw from the payload hash: the same request always draws the same.
        let draw =
            u64::from_str_radix(&item.sha256[..16], 16).unwrap_or(0) as f64 / u64::MAX as f64;
        if draw < policy.sample_rate {
            return AutoRoute::Sample(
                json!({"sample_rate": policy.sample_rate, "why": "random audit sample of items that would be auto-approved"}),
            );
        }
        let fields = crate::model::FieldValues::read_from_ai(&r.ai, policy);
        let plan = policy.plan_actions(&crate::model::DecisionKind::Approve, &fields, &r.ai);
        let note = format!(
            "auto-approved by policy: confidence {} at or above {:.2}, no review rule applies",
            r.ai.confidence.display(),
            policy.confidence_threshold
        );
        AutoRoute::Approve { fields, plan, note }
    }
}

/// Under `auto_approve`: an item no review rule holds back is either drawn for the random
/// audit sample (stays in the queue, marked "sample") or approved by policy.
fn route_new(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    id: i64,
    item: &IngestItem,
    now: Millis,
    policy: &Policy,
    renderer: Option<&std::sync::Arc<dyn super::ActionRenderer>>,
) -> Result<()> {
    match AutoRoute::of(item, policy) {
        AutoRoute::Review => Ok(()),
        AutoRoute::Sample(detail) => {
            tx.prepare_cached("UPDATE requests SET sample = 1 WHERE id = ?1")?
                .execute([id])?;
            audit.append(tx, now, "system", Some(id), "sampled", &detail)?;
            Ok(())
        }
        AutoRoute::Approve { fields, plan, note } => {
            super::review::record_decision(
                tx,
                audit,
                &super::review::NewDecision::auto_approval(
                    id,
                    &item.payload,
                    &fields,
                    &plan,
                    &note,
                ),
                now,
                policy,
                renderer,
            )?;
            Ok(())
        }
    }
}

/// The columns both a new item and a revision set, in statement order from `?3`.
fn derived_params<'a>(
    item: &'a IngestItem,
    d: &'a Derived,
    received_at: &'a Millis,
    now: &'a Millis,
) -> [&'a dyn ToSql; 19] {
    let r = &item.request;
    [
        &item.sha256,
        received_at,
        now,
        &d.priority_rank,
        &r.ai.intent,
        &d.priority,
        &d.confidence,
        &d.confidence_raw,
        &r.raw.channel,
        &r.raw.from,
        &r.raw.subject,
        &r.ai.summary,
        &d.ai_escalation,
        &d.flags,
        &d.flag_count,
        &d.hidden,
        &r.ai.priority,
        &r.ai.model,
        &r.ai.prompt_version,
    ]
}

fn insert_revision(
    tx: &Transaction<'_>,
    id: i64,
    revision: i64,
    item: &IngestItem,
    now: Millis,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO revisions (request_id, revision, payload, payload_sha256, ingested_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, revision, item.payload, item.sha256, now])?;
    Ok(())
}
