//! Ingest on PostgreSQL: new requests and revisions, quarantine, the policy re-check.
//!
//! Reading, parsing and validating an input is the shared [`Ingester`]'s, on a blocking
//! thread; it hands each batch and each quarantine entry over a channel to the calling
//! task, which writes it here (one transaction per batch) and answers with the outcomes.
//! A new item is inserted with `ON CONFLICT DO NOTHING`; an existing one is locked
//! (`FOR UPDATE`) before it is revised, so two instances ingesting the same request wait
//! for each other instead of both revising it.
use std::sync::Arc;

use deadpool_postgres::GenericClient;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgAudit, PgDb, PgError, Result};
use crate::ingest::{IngestSink, Ingester, Problem, Quarantined, Report};
use crate::model::{Policy, Request, State};
use crate::queue::{Millis, QueueError};
use crate::store::ingest::{
    AutoRoute, IngestDetail, PolicyColumns, conflict_detail, conflict_reason,
};
use crate::store::recheck::{DIGEST_KEY, RULES_KEY, WINDOW, differs, from_columns, from_payload};
use crate::store::{IngestItem, IngestOutcome, QuarantineEntry, Recheck, StoreError};

/// A write the ingester asks the calling task for.
enum SinkCall {
    Batch(
        Vec<IngestItem>,
        String,
        oneshot::Sender<std::result::Result<Vec<IngestOutcome>, QueueError>>,
    ),
    Quarantine(
        Vec<Quarantined>,
        oneshot::Sender<std::result::Result<(), QueueError>>,
    ),
}

/// The ingester's sink on its blocking thread: each call waits for the task's answer.
struct ChannelSink {
    policy: Arc<Policy>,
    calls: mpsc::Sender<SinkCall>,
}

fn gone() -> StoreError {
    StoreError::Queue(QueueError::Storage(
        "the ingest writer stopped before the input was written".into(),
    ))
}

impl IngestSink for ChannelSink {
    fn policy(&self) -> Arc<Policy> {
        self.policy.clone()
    }

    fn ingest_batch(
        &mut self,
        items: &[IngestItem],
        actor: &str,
    ) -> std::result::Result<Vec<IngestOutcome>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .blocking_send(SinkCall::Batch(items.to_vec(), actor.to_string(), reply))
            .map_err(|_| gone())?;
        answer
            .blocking_recv()
            .map_err(|_| gone())?
            .map_err(StoreError::Queue)
    }

    fn quarantine(&mut self, entries: &[Quarantined]) -> std::result::Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .blocking_send(SinkCall::Quarantine(entries.to_vec(), reply))
            .map_err(|_| gone())?;
        answer
            .blocking_recv()
            .map_err(|_| gone())?
            .map_err(StoreError::Queue)
    }
}

impl PgDb {
    /// Ingests `body` (an object, an array or JSON Lines) as `signoff ingest` reads a
    /// file: the totals and each entry not taken, with its line. Bad entries are
    /// quarantined and never stop the good ones.
    pub async fn ingest(
        &self,
        origin: &str,
        body: Vec<u8>,
        actor: &str,
    ) -> Result<(Report, Vec<Problem>)> {
        self.writable()?;
        let (calls, mut asked) = mpsc::channel::<SinkCall>(1);
        let mut sink = ChannelSink {
            policy: self.policy().clone(),
            calls,
        };
        let (origin, actor) = (origin.to_string(), actor.to_string());
        let reader = tokio::task::spawn_blocking(move || {
            let mut problems = Vec::new();
            let report = {
                let mut ingester =
                    Ingester::with_sink(&mut sink, &actor).on_problem(|p| problems.push(p.clone()));
                ingester.read(&origin, std::io::Cursor::new(body))?;
                ingester.report
            };
            Ok::<_, StoreError>((report, problems))
        });
        while let Some(call) = asked.recv().await {
            match call {
                SinkCall::Batch(items, actor, reply) => {
                    let r = self.ingest_batch(&items, &actor).await;
                    let _ = reply.send(r.map_err(QueueError::from));
                }
                SinkCall::Quarantine(entries, reply) => {
                    let r = self.quarantine(&entries).await;
                    let _ = reply.send(r.map_err(QueueError::from));
                }
            }
        }
        let read = reader
            .await
            .map_err(|e| QueueError::Storage(format!("the ingest task failed: {e}")))?;
        read.map_err(|e| PgError::Queue(e.into()))
    }

    /// Ingests a batch in one transaction. Returns one outcome per item, in order.
    pub async fn ingest_batch(
        &self,
        items: &[IngestItem],
        actor: &str,
    ) -> Result<Vec<IngestOutcome>> {
        self.writable()?;
        let now = self.now();
        let policy = self.policy().clone();
        let policy_version = policy.version();
        let renderer = self.renderer();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let outcome =
                ingest_one(&tx, &mut audit, item, actor, now, &policy, &policy_version).await?;
            if let IngestOutcome::Inserted { id } = outcome
                && policy.auto_approve
            {
                route_new(&tx, &mut audit, id, item, now, &policy, renderer.as_ref()).await?;
            }
            outcomes.push(outcome);
        }
        audit.append(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(outcomes)
    }

    /// Keeps payloads that could not be queued, with their reasons, so nothing is lost.
    pub async fn quarantine(&self, entries: &[Quarantined]) -> Result<()> {
        self.writable()?;
        if entries.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO quarantine (at, origin, line, reason, raw) VALUES ($1, $2, $3, $4, $5)",
            )
            .await?;
        for (origin, line, reason, raw) in entries {
            let line = line.map(|l| l as i64);
            tx.execute(&insert, &[&now, origin, &line, reason, raw])
                .await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    /// Number of quarantined inputs.
    pub async fn quarantine_count(&self) -> Result<u64> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one("SELECT COUNT(*) FROM quarantine", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// Quarantined inputs, newest first.
    pub async fn quarantine_list(&self, limit: u32) -> Result<Vec<QuarantineEntry>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, at, origin, line, reason, raw FROM quarantine ORDER BY id DESC LIMIT $1",
                &[&i64::from(limit)],
            )
            .await?;
        Ok(rows.iter().map(quarantine_row).collect())
    }

    pub async fn quarantine_get(&self, id: i64) -> Result<Option<QuarantineEntry>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, at, origin, line, reason, raw FROM quarantine WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(quarantine_row))
    }

    /// The policy digest the open items were last checked under, if any.
    pub async fn checked_policy_digest(&self) -> Result<Option<String>> {
        let client = self.client().await?;
        meta(&client, DIGEST_KEY).await
    }

    /// Checks the open items again under this queue's policy when the digest recorded
    /// differs from the policy's (or none is recorded). Returns `None` when nothing had to
    /// be done. Instances starting together check once: the pass holds the digest's row.
    pub async fn recheck_open_items(&self) -> Result<Option<Recheck>> {
        let policy = self.policy().clone();
        let digest = policy.validation_digest();
        if self.checked_policy_digest().await?.as_deref() == Some(digest.as_str()) {
            return Ok(None);
        }
        if self.read_only() {
            return Ok(None);
        }
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One pass at a time: the first instance's pass holds this row until it commits;
        // the others then find the digest it recorded.
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, '') ON CONFLICT (key) DO NOTHING",
            &[&DIGEST_KEY],
        )
        .await?;
        let stored: Option<String> = tx
            .query_opt(
                "SELECT value FROM meta WHERE key = $1 FOR UPDATE",
                &[&DIGEST_KEY],
            )
            .await?
            .map(|r| r.get::<_, String>(0))
            .filter(|v| !v.is_empty());
        if stored.as_deref() == Some(digest.as_str()) {
            return Ok(None);
        }
        let old = meta(&tx, RULES_KEY)
            .await?
            .and_then(|r| serde_json::from_str(&r).ok())
            .and_then(|r| Policy::with_validation_rules(&r));
        let done = recheck(&tx, old.as_ref(), &policy).await?;
        set_meta(&tx, DIGEST_KEY, &digest).await?;
        set_meta(&tx, RULES_KEY, &policy.validation_rules().to_string()).await?;
        let mut audit = self.audit();
        if done.changed > 0 {
            audit.push(
                now,
                "system",
                None,
                "policy_rechecked",
                &done.detail(&digest, stored.as_deref()),
            );
        }
        audit.append(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(Some(done))
    }
}

fn quarantine_row(r: &Row) -> QuarantineEntry {
    QuarantineEntry {
        id: r.get(0),
        at: r.get(1),
        origin: r.get(2),
        line: r.get(3),
        reason: r.get(4),
        raw: r.get(5),
    }
}

async fn ingest_one(
    tx: &deadpool_postgres::Transaction<'_>,
    audit: &mut PgAudit,
    item: &IngestItem,
    actor: &str,
    now: Millis,
    policy: &Policy,
    policy_version: &str,
) -> Result<IngestOutcome> {
    let r = &item.request;
    let d = item.derived_under(policy);
    let received_at = d.received_at.unwrap_or(now);
    let flag_count = d.flag_count as i64;
    let (ai_escalation, hidden) = (i64::from(d.ai_escalation), i64::from(d.hidden));
    // The columns a new item and a revision both set, in statement order from `$3`.
    let columns: [&(dyn ToSql + Sync); 19] = [
        &item.sha256,
        &received_at,
        &now,
        &d.priority_rank,
        &r.ai.intent,
        &d.priority,
        &d.confidence,
        &d.confidence_raw,
        &r.raw.channel,
        &r.raw.from,
        &r.raw.subject,
        &r.ai.summary,
        &ai_escalation,
        &d.flags,
        &flag_count,
        &hidden,
        &r.ai.priority,
        &r.ai.model,
        &r.ai.prompt_version,
    ];
    let ai = &*item.ai;
    // Looked up first, under the row's lock: an insert that met the key would still use
    // up an id (a sequence value is not given back), so re-sent inputs would leave gaps
    // in the item numbers. The insert meets the key only when another instance inserts
    // the same request at the same moment; it is looked up again then.
    let lookup = tx
        .prepare_cached(
            "SELECT id, state, revision, payload_sha256 FROM requests
             WHERE source = $1 AND external_id = $2 FOR UPDATE",
        )
        .await?;
    let found = tx.query_opt(&lookup, &[&r.source, &r.external_id]).await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO requests (source, external_id, payload_sha256, received_at, ingested_at,
                updated_at, priority_rank, intent, priority, confidence, confidence_raw, channel,
                sender, subject, summary, ai_escalation, flags, flag_count, hidden_chars, ai_priority,
                model, prompt_version)
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                $20, $21)
             ON CONFLICT (source, external_id) DO NOTHING RETURNING id",
        )
        .await?;
    let inserted = if found.is_some() {
        None
    } else {
        let head: [&(dyn ToSql + Sync); 2] = [&r.source, &r.external_id];
        let params: Vec<_> = head.into_iter().chain(columns.iter().copied()).collect();
        tx.query_opt(&insert, &params).await?
    };
    if let Some(row) = inserted {
        let id: i64 = row.get(0);
        insert_revision(tx, id, 1, item, now).await?;
        audit.push(
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
        );
        return Ok(IngestOutcome::Inserted { id });
    }
    let row = match found {
        Some(row) => row,
        None => tx.query_one(&lookup, &[&r.source, &r.external_id]).await?,
    };
    let (id, state, revision, sha): (i64, String, i64, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if sha == item.sha256 {
        return Ok(IngestOutcome::Duplicate { id });
    }
    let state: State = state.parse().unwrap_or(State::Pending);
    if state.is_decided() {
        tx.execute(
            "INSERT INTO quarantine (at, origin, line, reason, raw) VALUES ($1, $2, NULL, $3, $4)",
            &[
                &now,
                &item.origin,
                &conflict_reason(id, r, state),
                &item.payload,
            ],
        )
        .await?;
        audit.push(
            now,
            actor,
            Some(id),
            "conflict",
            &conflict_detail(state, &item.sha256, &sha),
        );
        return Ok(IngestOutcome::Conflict { id, state });
    }
    let revision = revision + 1;
    tx.execute(
        "UPDATE requests SET revision = $2, payload_sha256 = $3, received_at = $4, updated_at = $5,
            priority_rank = $6, intent = $7, priority = $8, confidence = $9, confidence_raw = $10,
            channel = $11, sender = $12, subject = $13, summary = $14, ai_escalation = $15,
            flags = $16, flag_count = $17, hidden_chars = $18, ai_priority = $19,
            model = $20, prompt_version = $21
         WHERE id = $1",
        &[&id as &(dyn ToSql + Sync), &revision]
            .into_iter()
            .chain(columns.iter().copied())
            .collect::<Vec<_>>(),
    )
    .await?;
    insert_revision(tx, id, revision, item, now).await?;
    audit.push(
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
    );
    Ok(IngestOutcome::Revised { id, revision })
}

async fn insert_revision(
    tx: &deadpool_postgres::Transaction<'_>,
    id: i64,
    revision: i64,
    item: &IngestItem,
    now: Millis,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO revisions (request_id, revision, payload, payload_sha256, ingested_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(&stmt, &[&id, &revision, &item.payload, &item.sha256, &now])
        .await?;
    Ok(())
}

/// Under `auto_approve`: an item no review rule holds back is either drawn for the random
/// audit sample (stays in the queue, marked "sample") or approved by policy, through the
/// decision path reviewers' approvals take.
async fn route_new(
    tx: &deadpool_postgres::Transaction<'_>,
    audit: &mut PgAudit,
    id: i64,
    item: &IngestItem,
    now: Millis,
    policy: &Policy,
    renderer: Option<&Arc<dyn crate::store::ActionRenderer>>,
) -> Result<()> {
    match AutoRoute::of(item, policy) {
        AutoRoute::Review => Ok(()),
        AutoRoute::Sample(detail) => {
            tx.execute("UPDATE requests SET sample = 1 WHERE id = $1", &[&id])
                .await?;
            audit.push(now, "system", Some(id), "sampled", &detail);
            Ok(())
        }
        AutoRoute::Approve { fields, plan, note } => {
            super::review::record_decision(
                tx,
                audit,
                &crate::store::review::NewDecision::auto_approval(
                    id,
                    &item.payload,
                    &fields,
                    &plan,
                    &note,
                ),
                now,
                policy,
                renderer,
            )
            .await?;
            Ok(())
        }
    }
}

async fn meta(c: &impl GenericClient, key: &str) -> Result<Option<String>> {
    Ok(
        c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .await?
            .map(|r| r.get(0)),
    )
}

async fn set_meta(c: &impl GenericClient, key: &str, value: &str) -> Result<()> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await?;
    Ok(())
}

/// The re-check pass over the open items, in id windows (as the SQLite store's).
async fn recheck(
    tx: &deadpool_postgres::Transaction<'_>,
    old: Option<&Policy>,
    policy: &Policy,
) -> Result<Recheck> {
    use crate::model::EditableField;
    use crate::store::recheck::Row as Open;
    let mut done = Recheck::default();
    let max: i64 = tx
        .query_one("SELECT COALESCE(MAX(id), 0) FROM requests", &[])
        .await?
        .get(0);
    let select = tx
        .prepare_cached(
            "SELECT id, edited, intent, ai_priority, summary, priority, priority_rank, flags,
                flag_count
             FROM requests WHERE id > $1 AND id <= $2 AND state IN ('pending','in_review')
             ORDER BY id FOR UPDATE",
        )
        .await?;
    let mut from = 0i64;
    while from < max {
        let to = from.saturating_add(WINDOW);
        let rows: Vec<Open> = tx
            .query(&select, &[&from, &to])
            .await?
            .iter()
            .map(|r| Open {
                id: r.get(0),
                edited: r.get::<_, i64>(1) != 0,
                intent: r.get(2),
                ai_priority: r.get(3),
                summary: r.get(4),
                columns: PolicyColumns {
                    priority: r.get(5),
                    priority_rank: r.get(6),
                    flags: r.get(7),
                    flag_count: r.get::<_, i64>(8) as usize,
                    flag_messages: Vec::new(),
                },
            })
            .collect();
        for row in rows {
            done.checked += 1;
            let quick = match old {
                Some(old) if !row.edited => from_columns(&row, old, policy),
                _ => None,
            };
            let now = match quick {
                Some(c) => c,
                None => {
                    done.reread += 1;
                    let text: String = tx
                        .query_one(
                            "SELECT v.payload FROM requests r
                             JOIN revisions v ON v.request_id = r.id AND v.revision = r.revision
                             WHERE r.id = $1",
                            &[&row.id],
                        )
                        .await?
                        .get(0);
                    // A payload that no longer reads is left as it is (ingest took it).
                    let Ok((_, request)) = Request::from_json(&text) else {
                        continue;
                    };
                    if request.ai.priority != row.ai_priority {
                        tx.execute(
                            "UPDATE requests SET ai_priority = $2 WHERE id = $1",
                            &[&row.id, &request.ai.priority],
                        )
                        .await?;
                    }
                    let edit: Option<Option<String>> = if row.edited {
                        tx.query_opt(
                            "SELECT new_value FROM edits WHERE request_id = $1 AND field = $2
                             ORDER BY id DESC LIMIT 1",
                            &[&row.id, &EditableField::Priority.as_str()],
                        )
                        .await?
                        .map(|r| r.get(0))
                    } else {
                        None
                    };
                    from_payload(&request, edit, policy)
                }
            };
            if differs(&now, &row.columns) {
                tx.execute(
                    "UPDATE requests SET priority = $2, priority_rank = $3, flags = $4, flag_count = $5
                     WHERE id = $1",
                    &[
                        &row.id,
                        &now.priority,
                        &now.priority_rank,
                        &now.flags,
                        &(now.flag_count as i64),
                    ],
                )
                .await?;
                done.changed += 1;
            }
        }
        from = to;
    }
    Ok(done)
}
