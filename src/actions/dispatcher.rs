//! The outbox worker: claims due rows with a lease, sends each rendered action, classifies
//! the answer and records it (sent, retry at a backed-off time, dead letter, or sandbox),
//! with an audit entry per attempt and outcome. Runs headless (`signoff dispatch`) or in the
//! console's background; several workers may share one database.
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinSet;

use super::backoff;
use super::classify::Outcome;
use super::config::ActionsConfig;
use super::deliver::{self, Env, Progress};
use super::payload::{Provider, Rendered};
use super::ratelimit::Limits;
use super::token::Tokens;
use crate::model::Policy;
use crate::store::{AttemptRecord, Claimed, ClaimedRow, Disposition, Store, StoreOptions};

/// The dispatcher's two calls on the queue database: lease due rows, record outcomes.
/// Implemented by the SQLite store ([`StoreOutbox`]) and by the PostgreSQL queue.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` due rows for `worker` for `lease_ms` (see
    /// [`Store::claim_due`]).
    async fn claim_due(&self, worker: &str, lease_ms: i64, limit: u32) -> Result<Claimed, String>;
    /// Records outcomes, each only while `worker` still holds the row's lease (see
    /// [`Store::record_attempts`]). Returns how many were recorded.
    async fn record_attempts(
        &self,
        worker: &str,
        records: Vec<AttemptRecord>,
    ) -> Result<usize, String>;
}

/// The outbox of a SQLite store, its calls run off the async runtime.
pub struct StoreOutbox(pub Arc<Mutex<Store>>);

impl StoreOutbox {
    async fn on_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .map_err(|_| "the store connection was poisoned by a panic".to_string())?;
            f(&mut guard).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("dispatch task failed: {e}"))?
    }
}

#[async_trait::async_trait]
impl Outbox for StoreOutbox {
    async fn claim_due(&self, worker: &str, lease_ms: i64, limit: u32) -> Result<Claimed, String> {
        let worker = worker.to_string();
        self.on_store(move |s| s.claim_due(&worker, lease_ms, limit))
            .await
    }
    async fn record_attempts(
        &self,
        worker: &str,
        records: Vec<AttemptRecord>,
    ) -> Result<usize, String> {
        let worker = worker.to_string();
        self.on_store(move |s| s.record_attempts(&worker, &records))
            .await
    }
}

/// What a dispatcher run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DispatchSummary {
    pub attempts: u64,
    pub sent: u64,
    /// Found already done by a lookup (an earlier attempt had taken effect).
    pub reconciled: u64,
    pub retrying: u64,
    pub dead: u64,
    pub sandbox: u64,
    /// The kill switch was on at some point.
    pub paused: bool,
}

impl fmt::Display for DispatchSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} attempts: {} sent ({} found already done), {} to retry, {} dead, {} sandbox",
            self.attempts, self.sent, self.reconciled, self.retrying, self.dead, self.sandbox
        )?;
        if self.paused {
            write!(f, "; sending is paused (kill switch)")?;
        }
        Ok(())
    }
}

/// Why the dispatcher cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("cannot open the queue database {path} for dispatch: {source}")]
    Store {
        path: String,
        source: crate::store::StoreError,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("the outbox database failed: {0}")]
    Db(String),
    #[error(
        "{key} is configured but cannot be read ({why}); in live mode nothing is sent without it"
    )]
    Secret { key: &'static str, why: String },
    #[error("invalid [actions] config: {key}: {message}")]
    Config { key: String, message: String },
}

/// Reads the credentials of `cfg`; one that is missing or unreadable leaves its provider
/// in sandbox (the doctor reports which).
pub fn env(cfg: &ActionsConfig) -> Result<Env, DispatchError> {
    read_env(cfg).map(|(env, _)| env)
}

/// [`env`] for sending. In live mode a credential that is configured but cannot be read is
/// an error: treating it as absent would finish that provider's rows as "sandbox" (never
/// sent) — for instance in a reviewer's console that lacks the server's secrets, where the
/// rows must instead wait for the dispatcher that has them.
fn env_for_sending(cfg: &ActionsConfig) -> Result<Env, DispatchError> {
    match read_env(cfg)? {
        (_, Some((key, why))) if cfg.mode == super::Mode::Live => {
            Err(DispatchError::Secret { key, why })
        }
        (env, _) => Ok(env),
    }
}

/// The credentials, and the first configured one that could not be read.
type Unreadable = Option<(&'static str, String)>;

fn read_env(cfg: &ActionsConfig) -> Result<(Env, Unreadable), DispatchError> {
    let http = super::http::client(&cfg.dispatch)?;
    let mut unreadable: Unreadable = None;
    let mut get = |key: &'static str, s: &Option<crate::secret::Secret>| -> Option<String> {
        match s.as_ref()?.resolve() {
            Ok(v) => Some(v),
            Err(e) => {
                if unreadable.is_none() {
                    unreadable = Some((key, e.to_string()));
                }
                None
            }
        }
    };
    let gmail = match (
        get("actions.gmail.client_id", &cfg.gmail.client_id),
        get("actions.gmail.client_secret", &cfg.gmail.client_secret),
        get("actions.gmail.refresh_token", &cfg.gmail.refresh_token),
    ) {
        (Some(id), Some(secret), Some(refresh)) => Some(Tokens::new(
            http.clone(),
            cfg.gmail.token_url.clone(),
            id,
            secret,
            refresh,
        )),
        _ => None,
    };
    let monday_token = get("actions.monday.token", &cfg.monday.token);
    let slack_token = get("actions.slack.token", &cfg.slack.token);
    let webhook_url = get("actions.slack.webhook_url", &cfg.slack.webhook_url);
    let env = Env {
        monday_token,
        slack_token,
        webhook_url,
        gmail,
        limits: Limits::default(),
        cfg: cfg.clone(),
        http,
        clock: crate::clock::Clock::system(),
    };
    Ok((env, unreadable))
}

/// The longest wait between polls of an empty outbox.
const IDLE_POLL_MAX: Duration = Duration::from_secs(8);

/// Runs the outbox until `shutdown` resolves, or — with `once` — until nothing is due.
pub async fn run(
    db: &Path,
    policy: Arc<Policy>,
    opts: &StoreOptions,
    cfg: &ActionsConfig,
    once: bool,
    worker: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<DispatchSummary, DispatchError> {
    // A lookup window the attempts cannot cover would end rows as dead letters instead
    // of lookups (the config loader refuses it too; this guards other callers).
    if let Some((key, message)) = super::check::lookup_window(cfg) {
        return Err(DispatchError::Config { key, message });
    }
    // Opening creates directories and may wait on a busy lock: off the async runtime.
    let store = {
        let (db, opts) = (db.to_path_buf(), opts.clone());
        blocking(move || {
            Store::open(&db, policy, &opts).map_err(|source| DispatchError::Store {
                path: db.display().to_string(),
                source,
            })
        })
        .await?
    };
    let outbox: Arc<dyn Outbox> = Arc::new(StoreOutbox(Arc::new(Mutex::new(store))));
    run_on(outbox, opts.clock.clone(), cfg, once, worker, shutdown).await
}

/// Runs the outbox of `outbox` until `shutdown` resolves, or — with `once` — until nothing
/// is due. `clock` is the queue's (leases, retry times).
pub async fn run_on(
    outbox: Arc<dyn Outbox>,
    clock: crate::clock::Clock,
    cfg: &ActionsConfig,
    once: bool,
    worker: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<DispatchSummary, DispatchError> {
    if let Some((key, message)) = super::check::lookup_window(cfg) {
        return Err(DispatchError::Config { key, message });
    }
    let env = Arc::new(Env {
        clock,
        ..env_for_sending(cfg)?
    });
    let mut summary = DispatchSummary::default();
    // A claimed row starts at once (claims never exceed the free permits), but CRM rows of
    // one item share a task: the lease covers two attempt budgets.
    let budget = deliver::attempt_budget(cfg);
    let lease_ms =
        (cfg.dispatch.lease_seconds * 1000).max(2 * budget.as_millis() as u64 + 1000) as i64;
    let poll = Duration::from_millis(cfg.dispatch.poll_ms.max(10));
    // No claimed row waits for a permit while its lease runs.
    let batch = cfg
        .dispatch
        .batch
        .max(1)
        .min(cfg.dispatch.concurrency.max(1)) as usize;
    let sem = Arc::new(tokio::sync::Semaphore::new(
        cfg.dispatch.concurrency.max(1) as usize
    ));
    let mut tasks: JoinSet<Vec<AttemptRecord>> = JoinSet::new();
    let mut stopping = false;
    // While nothing is being sent, polls back off from `poll` to IDLE_POLL_MAX (a row
    // that falls due sooner still wakes it on time): an idle console, whose process runs
    // this dispatcher, should not wake every second, nor should a retry minutes away.
    // Rows are queued for the undo window first (30 s by default), so a row found by the
    // next idle poll still goes out when it falls due.
    let mut idle_wait = poll;
    tokio::pin!(shutdown);
    // A pipeline, not rounds: rows are claimed while less than half a batch is in flight,
    // and outcomes are recorded as they finish, so one slow request (up to its timeout)
    // never holds up the others.
    loop {
        if !stopping {
            // Ctrl-C (or the console closing) stops claiming; what is in flight finishes
            // and is recorded.
            stopping = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(shutdown.as_mut().poll(cx).is_ready())
            })
            .await;
        }
        let mut next_due = None;
        // Tasks in flight (one per row, or per item for its CRM rows).
        let in_flight = tasks.len();
        if !stopping && in_flight * 2 <= batch {
            if cfg.paused {
                summary.paused = true;
            } else {
                let claimed = outbox
                    .claim_due(worker, lease_ms, (batch - in_flight) as u32)
                    .await
                    .map_err(DispatchError::Db)?;
                summary.paused |= claimed.paused;
                next_due = claimed.next_due;
                spawn_groups(&mut tasks, &env, &sem, claimed.rows);
                if !tasks.is_empty() {
                    idle_wait = poll;
                }
            }
        }
        if tasks.is_empty() {
            if once || stopping {
                break;
            }
            let now = env.now();
            // Sleep until the next row falls due, or the (backing-off) idle poll finds
            // rows other processes queued, whichever comes first.
            let until_due = next_due.map(|t| Duration::from_millis((t - now).max(0) as u64));
            let wait = until_due.map_or(idle_wait, |d| d.min(idle_wait));
            idle_wait = (idle_wait * 2).min(IDLE_POLL_MAX.max(poll));
            tokio::select! {
                _ = &mut shutdown => stopping = true,
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        // Wait for something to finish (or, with room to claim, at most a poll interval).
        let first = if stopping || tasks.len() * 2 > batch {
            tasks.join_next().await
        } else {
            match tokio::time::timeout(poll, tasks.join_next()).await {
                Ok(done) => done,
                Err(_) => continue,
            }
        };
        let mut records = Vec::new();
        let mut done = first;
        while let Some(result) = done {
            match result {
                Ok(recs) => records.extend(recs),
                Err(e) => tracing::error!(
                    "a dispatch task failed: {e}; its rows are retried when their lease runs out"
                ),
            }
            done = tasks.try_join_next();
        }
        if records.is_empty() {
            continue;
        }
        tally(&mut summary, &records);
        for r in &records {
            let (action, key) = (
                r.audit["action"].as_str().unwrap_or(""),
                r.audit["key"].as_str().unwrap_or(""),
            );
            match (&r.disposition, &r.error) {
                (Disposition::Dead, Some(e)) => tracing::warn!(
                    outbox_id = r.id,
                    action,
                    key,
                    attempt = r.attempt,
                    "dead letter: {e}"
                ),
                (Disposition::Retry(at), Some(e)) => tracing::info!(
                    outbox_id = r.id,
                    action,
                    key,
                    attempt = r.attempt,
                    next_attempt_at = at,
                    "will retry: {e}"
                ),
                (d, _) => tracing::info!(
                    outbox_id = r.id,
                    action,
                    key,
                    attempt = r.attempt,
                    "{}",
                    match d {
                        Disposition::Sent => "sent",
                        Disposition::Sandbox => "sandbox: not sent",
                        _ => "done",
                    }
                ),
            }
        }
        outbox
            .record_attempts(worker, records)
            .await
            .map_err(DispatchError::Db)?;
    }
    Ok(summary)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DispatchError> + Send + 'static,
) -> Result<T, DispatchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DispatchError::Db(format!("dispatch task failed: {e}")))?
}

/// Starts a claimed batch; each task waits for one of `concurrency` permits. CRM rows of
/// one item go one after the other in one task (monday has no unique constraint: racing
/// writers would make two items).
fn spawn_groups(
    tasks: &mut JoinSet<Vec<AttemptRecord>>,
    env: &Arc<Env>,
    sem: &Arc<tokio::sync::Semaphore>,
    rows: Vec<ClaimedRow>,
) {
    let mut groups: Vec<Vec<ClaimedRow>> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|g| {
            row.action == "crm" && g[0].action == "crm" && g[0].request_id == row.request_id
        }) {
            Some(g) => g.push(row),
            None => groups.push(vec![row]),
        }
    }
    for group in groups {
        let (env, sem) = (env.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let mut out = Vec::with_capacity(group.len());
            for row in group {
                out.push(attempt(&env, row).await);
            }
            out
        });
    }
}

fn tally(summary: &mut DispatchSummary, records: &[AttemptRecord]) {
    for r in records {
        summary.attempts += 1;
        match r.disposition {
            Disposition::Sent => summary.sent += 1,
            Disposition::Retry(_) => summary.retrying += 1,
            Disposition::Dead => summary.dead += 1,
            Disposition::Sandbox => summary.sandbox += 1,
        }
        if r.audit.get("reconciled") == Some(&json!(true)) {
            summary.reconciled += 1;
        }
    }
}

/// One attempt of one row, ending in the record to write.
async fn attempt(env: &Env, row: ClaimedRow) -> AttemptRecord {
    let mut p: Progress = row
        .response
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let rendered: Option<Rendered> = row
        .payload
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let now = env.now();
    if row.prior_status == "sending" {
        // The last worker died mid-attempt: that attempt may have taken effect. Look it up
        // now and on every later attempt until one succeeds (a failed lookup must not let
        // the next attempt send blind), and a resend's permission to repost what cannot be
        // looked up is spent: it covered what a person had checked, not this attempt.
        p.maybe_sent = true;
        p.resent = false;
        // It may have created the CRM item: looked up through the lookup window, like
        // any uncertain create.
        if row.action == "crm" && p.item_id.is_none() {
            p.create_uncertain_at.get_or_insert(now);
        }
    }
    let reconcile = p.maybe_sent;
    let outcome = match &rendered {
        None => match env.sandbox_reason(provider_of(&row.action)) {
            Some(why) => {
                p.sandbox = Some(why);
                None
            }
            None => Some(Outcome::Permanent(
                "nothing was rendered for this action at approval (no renderer was configured); it cannot be sent".into(),
            )),
        },
        Some(r) => match env.sandbox_reason(r.provider) {
            Some(why) => {
                p.sandbox = Some(why);
                None
            }
            None => {
                let budget = deliver::attempt_budget(&env.cfg);
                let run = deliver::deliver(env, r, &mut p, reconcile, now);
                let finished = tokio::time::timeout(budget, run).await;
                let cut = format!(
                    "the attempt ran past its {:.1} s budget",
                    budget.as_secs_f64()
                );
                Some(match finished {
                    Ok(outcome) => outcome,
                    Err(_) if p.sending => Outcome::Ambiguous(format!(
                        "{cut} and was cut off; it may have taken effect"
                    )),
                    // Cut off waiting for the rate limit or a lookup: nothing left.
                    Err(_) => Outcome::Retry {
                        after: None,
                        why: format!(
                            "{cut} before it sent anything (waiting for the rate limit or a lookup)"
                        ),
                    },
                })
            }
        },
    };
    // When the answer came (or the attempt was cut off): waits count from here.
    let answered = env.now();
    if matches!(outcome, Some(Outcome::Ambiguous(_))) && p.creating && p.item_id.is_none() {
        // The create may have made the item, not yet searchable: the lookup window starts.
        p.create_uncertain_at = Some(answered);
    }
    // Whether an effect of this row may exist that nobody has seen: this attempt was
    // ambiguous, or an earlier one was and this attempt's lookup did not settle it (the
    // lookup itself failed, or there is none: a webhook). A definite failure after a
    // lookup found nothing leaves nothing unknown.
    let maybe_applied = match &outcome {
        None | Some(Outcome::Ok(_)) => false,
        Some(Outcome::Ambiguous(_)) => true,
        Some(_) => p.maybe_sent && !p.settled,
    };
    // A resend's permission to repost is spent by an attempt that applied or may have;
    // one that provably applied nothing (a 4xx, a 429, a refused connection) keeps it, so
    // its retry is not stopped as "cannot be looked up" again.
    if matches!(outcome, Some(Outcome::Ok(_) | Outcome::Ambiguous(_))) {
        p.resent = false;
    }
    let budget_used = row.attempts - p.attempts_base.unwrap_or(0);
    let max = i64::from(env.cfg.dispatch.max_attempts.max(1));
    let d = &env.cfg.dispatch;
    let (disposition, error) = match &outcome {
        None => (Disposition::Sandbox, None),
        Some(Outcome::Ok(_)) => {
            p.maybe_sent = false;
            match p.recheck_at {
                // Created again after an uncertain create's lookup window: look once more
                // for that create having landed late, while attempts are left.
                Some(at) if budget_used < max => (
                    Disposition::Retry(at.max(answered)),
                    Some(format!(
                        "created monday item {} after the lookup window of an uncertain create found nothing; looking once more for that create having landed late",
                        p.item_id.as_deref().unwrap_or("?")
                    )),
                ),
                Some(_) => {
                    tracing::warn!(
                        outbox_id = row.id,
                        key = %row.idempotency_key,
                        "no attempts left to look for a duplicate monday item once more"
                    );
                    p.recheck_at = None;
                    (Disposition::Sent, None)
                }
                None => (Disposition::Sent, None),
            }
        }
        Some(Outcome::Permanent(m)) => (Disposition::Dead, Some(m.clone())),
        Some(
            o @ (Outcome::Retry { .. }
            | Outcome::Busy { .. }
            | Outcome::Ambiguous(_)
            | Outcome::AuthRefresh(_)),
        ) => {
            if matches!(o, Outcome::Ambiguous(_)) {
                p.maybe_sent = true;
            }
            let floor = match o {
                Outcome::Retry { after, .. } => *after,
                _ => None,
            };
            if budget_used >= max {
                // The dead letter says what the last attempt left: an unknown effect, or
                // (after a definite failure) none.
                let maybe = if maybe_applied {
                    " (an attempt may have taken effect: check before sending again)"
                } else {
                    ""
                };
                (
                    Disposition::Dead,
                    Some(format!(
                        "gave up after {budget_used} attempts{maybe}: {}",
                        o.message()
                    )),
                )
            } else {
                let n = budget_used.max(1) as u32;
                let window_end = p
                    .lookup_until(env.cfg.monday.lookup_window_secs)
                    .filter(|&until| until > answered);
                let wait = match (o, window_end) {
                    // A momentary lock: its own short wait, not a backed-off one.
                    (Outcome::Busy { after, .. }, _) => *after,
                    // Inside the lookup window of an uncertain create: looks spread out by
                    // at least half the backoff (so the window fits the attempts, see
                    // `check::lookup_window`), the last one at the window's end; never
                    // before a server's hint.
                    (_, Some(until)) => {
                        backoff::lookup_delay(n, d.backoff_base_ms, d.backoff_cap_ms)
                            .min(Duration::from_millis((until - answered) as u64))
                            .max(floor.unwrap_or_default())
                    }
                    _ => backoff::delay(n, d.backoff_base_ms, d.backoff_cap_ms, floor),
                };
                (
                    // From when the answer came, not from when the attempt started: a
                    // `Retry-After` counts from the response.
                    Disposition::Retry(answered.saturating_add(wait.as_millis() as i64)),
                    Some(o.message()),
                )
            }
        }
    };
    let response = serde_json::to_string(&p).unwrap_or_else(|_| "{}".into());
    let audit = json!({
        "outbox_id": row.id,
        "action": row.action,
        "key": row.idempotency_key,
        "attempt": row.attempts,
        "outcome": outcome.as_ref().map_or("sandbox", Outcome::label),
        "maybe_applied": maybe_applied,
        "error": error,
        "result": serde_json::from_str::<serde_json::Value>(&response).unwrap_or_default(),
        "reconciled": p.reconciled && matches!(disposition, Disposition::Sent),
        "next_attempt_at": match disposition { Disposition::Retry(at) => Some(at), _ => None },
    });
    AttemptRecord {
        id: row.id,
        request_id: row.request_id,
        attempt: row.attempts,
        disposition,
        error,
        response,
        audit,
    }
}

fn provider_of(action: &str) -> Provider {
    match action {
        "crm" => Provider::Monday,
        "gmail" => Provider::Gmail,
        _ => Provider::Slack,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn an_unreadable_secret_in_live_mode_stops_the_dispatcher_instead_of_sandboxing() {
        let mut cfg = ActionsConfig::default();
        cfg.slack.token = Some(Secret::new("env:SIGNOFF_TEST_NO_SUCH_SLACK_TOKEN"));
        // Sandbox mode: the provider just stays in sandbox.
        assert!(env_for_sending(&cfg).is_ok());
        cfg.mode = super::super::Mode::Live;
        assert!(env(&cfg).is_ok(), "the doctor still gets its client");
        let err = env_for_sending(&cfg)
            .err()
            .expect("live mode refuses")
            .to_string();
        assert!(
            err.starts_with("actions.slack.token is configured but cannot be read"),
            "{err}"
        );
        // Not configured at all: that provider stays in sandbox, live or not.
        cfg.slack.token = None;
        assert!(env_for_sending(&cfg).is_ok());
    }
}
