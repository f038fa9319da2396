//! The Queue seam: everything a reviewer's console or CLI does to the queue goes through
//! [`Queue`]. The local SQLite store implements it now; a remote HTTP client and a
//! PostgreSQL backend fit the same trait later. Async and backend-neutral: no SQL types
//! cross this boundary.
//!
//! Every type here is (de)serialisable: `signoff serve` sends them over HTTP as they are and
//! [`RemoteQueue`] reads them back, so a field added here reaches remote consoles unchanged.
mod local;
mod remote;
pub mod wire;

pub use crate::store::ActionPreview;
pub(crate) use local::acting as acting_user;
pub use local::{LocalQueue, acting_for};
pub use remote::{RemoteOptions, RemoteQueue, RemoteTarget, read_token_file};

use crate::model::{
    ActionKind, Confidence, DecisionKind, EditableField, FieldValues, Flag, Request, State,
};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Errors a queue operation reports to its caller.
///
/// On the wire (`signoff serve`'s error bodies) a variant is `{"code": "<snake_case
/// name>", "detail": <its fields>}`: the code is stable and a client reads the fields back.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum QueueError {
    #[error("item {0} not found")]
    NotFound(i64),
    #[error(
        "lease lost on item {id}: it is no longer claimed by you with fence {fence}{}; nothing was changed",
        holder.as_ref().map(|h| format!(" (now held by {h})")).unwrap_or_default()
    )]
    LeaseLost {
        id: i64,
        fence: i64,
        holder: Option<String>,
    },
    #[error("item {id} is being reviewed by {reviewer} (lease ends in {}s)", (until - now).max(0) / 1000)]
    HeldBy {
        id: i64,
        reviewer: String,
        until: Millis,
        now: Millis,
    },
    #[error("item {id} is already {state}")]
    AlreadyDecided { id: i64, state: State },
    /// The decision names a revision the item has moved on from (a new payload was ingested
    /// after the decider read it).
    #[error(
        "item {id} changed since you opened it (revision {shown} → {current}); reopen it to see the new version; nothing was changed"
    )]
    StaleRevision { id: i64, shown: i64, current: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot undo item {id}: {why}")]
    CannotUndo { id: i64, why: String },
    /// The store refused to write: its audit log does not match the anchor (the message
    /// says how, and what to run).
    #[error("{0}")]
    AuditRefused(String),
    /// A file of the store this process may not read or write (the message names it, its
    /// owner and mode, and what to do).
    #[error("{0}")]
    Permission(String),
    #[error("the queue is read-only")]
    ReadOnly,
    #[error("queue storage failed: {0}")]
    Storage(String),
    /// The queue server cannot be reached (a remote queue): nothing was changed. The
    /// console says "offline — retrying" and keeps what the reviewer typed.
    #[error("{0}")]
    Unavailable(String),
    /// The queue server refused the request for a reason of its own (`code`: forbidden,
    /// unauthorized, rate_limited, payload_too_large, bad_request, …).
    #[error("{message}")]
    Refused { code: String, message: String },
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// A live feed of the queue's change token (the latest value, or why it cannot be had
/// now), for a queue that is told of changes instead of being polled.
pub type Changes = tokio::sync::watch::Receiver<Result<u64>>;

/// The order of a listing.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Priority, then age (oldest first): the order claims follow.
    #[default]
    Queue,
    Oldest,
    Newest,
    /// Least confident first.
    Confidence,
    /// Most recently decided first (for decided items; not in the `s` cycle).
    RecentlyDecided,
    /// Least urgent first, then newest.
    LeastUrgent,
    /// Most confident first.
    MostConfident,
    /// The SLA deadline (received + the priority's SLA minutes) soonest first; items
    /// whose priority has no SLA last.
    SlaDue,
    /// The SLA deadline latest first.
    SlaLast,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Queue, Sort::Oldest, Sort::Newest, Sort::Confidence];

    pub fn label(self) -> &'static str {
        match self {
            Sort::Queue => "priority, age",
            Sort::Oldest => "oldest first",
            Sort::Newest => "newest first",
            Sort::Confidence => "least confident",
            Sort::RecentlyDecided => "recently decided",
            Sort::LeastUrgent => "least urgent first",
            Sort::MostConfident => "most confident first",
            Sort::SlaDue => "SLA due soonest",
            Sort::SlaLast => "SLA due latest",
        }
    }

    /// The `:sort` key and direction this order is (`priority asc`, `age desc`…).
    pub fn key_dir(self) -> (&'static str, &'static str) {
        match self {
            Sort::Queue => ("priority", "asc"),
            Sort::LeastUrgent => ("priority", "desc"),
            Sort::Oldest => ("age", "desc"),
            Sort::Newest => ("age", "asc"),
            Sort::Confidence => ("confidence", "asc"),
            Sort::MostConfident => ("confidence", "desc"),
            Sort::SlaDue => ("sla", "asc"),
            Sort::SlaLast => ("sla", "desc"),
            Sort::RecentlyDecided => ("decided", "desc"),
        }
    }

    /// The order `:sort KEY [asc|desc]` names. Without a direction each key takes the one
    /// a reviewer most often wants: most urgent, oldest, least confident, SLA due soonest.
    pub fn from_key(key: &str, dir: Option<&str>) -> Result<Sort, String> {
        let desc = match dir.map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("asc") => Some(false),
            Some("desc") => Some(true),
            Some(other) => return Err(format!("'{other}' is not a direction; use asc or desc")),
        };
        Ok(match (key.to_ascii_lowercase().as_str(), desc) {
            ("priority" | "p", Some(true)) => Sort::LeastUrgent,
            ("priority" | "p", _) => Sort::Queue,
            ("age", Some(false)) => Sort::Newest,
            ("age", _) => Sort::Oldest,
            ("confidence" | "c", Some(true)) => Sort::MostConfident,
            ("confidence" | "c", _) => Sort::Confidence,
            ("sla", Some(true)) => Sort::SlaLast,
            ("sla", _) => Sort::SlaDue,
            ("decided", _) => Sort::RecentlyDecided,
            (other, _) => {
                return Err(format!(
                    "cannot sort by '{other}'; use priority, age, confidence or sla, then asc or desc"
                ));
            }
        })
    }

    pub fn next(self) -> Sort {
        let i = Sort::ALL.iter().position(|s| *s == self).unwrap_or(0);
        Sort::ALL[(i + 1) % Sort::ALL.len()]
    }
}

/// Filters a listing. Every set field must match.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Filter {
    /// Case-insensitive substring of sender, subject, summary or external id.
    pub text: Option<String>,
    pub priorities: Vec<String>,
    pub intent: Option<String>,
    /// Confidence strictly below / at least this; items without a confidence match `conf_below`.
    pub conf_below: Option<f64>,
    pub conf_at_least: Option<f64>,
    /// Received more than / less than this many ms ago.
    pub older_than: Option<Millis>,
    pub newer_than: Option<Millis>,
    /// Only items with an escalation reason (AI's or a validation flag).
    pub escalation: bool,
    /// Only items holding hidden characters.
    pub hidden: bool,
}

/// One page of a listing.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct ListQuery {
    /// Empty means pending and in review.
    pub states: Vec<State>,
    pub filter: Filter,
    pub sort: Sort,
    pub offset: u64,
    pub limit: u32,
    /// An item the page must hold if it matches the query: the page then moves (its
    /// `offset` changes) to take it in. The console's selection follows its item this way
    /// wherever a refresh, a new filter or a new sort puts it; an item that is not in the
    /// page is not in the list.
    #[serde(default)]
    pub around: Option<i64>,
}

/// A row of the queue list.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ItemSummary {
    pub id: i64,
    pub source: String,
    pub external_id: String,
    pub state: State,
    pub revision: i64,
    pub intent: Option<String>,
    pub priority: Option<String>,
    pub confidence: Option<f64>,
    /// The confidence as sent when it was not a number in 0..1.
    pub confidence_invalid: Option<String>,
    pub channel: Option<String>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub summary: Option<String>,
    pub received_at: Millis,
    pub ai_escalation: bool,
    pub flag_count: u32,
    pub hidden_chars: bool,
    pub edited: bool,
    pub sample: bool,
    pub claimed_by: Option<String>,
    pub lease_expires: Option<Millis>,
    /// The standing decision of a decided item: what, by whom, when.
    #[serde(default)]
    pub decided: Option<Decided>,
}

/// A decision as a list row shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Decided {
    /// approve, reject or escalate.
    pub kind: String,
    /// The reject reason or the escalation queue.
    pub detail: Option<String>,
    pub reviewer: String,
    pub at: Millis,
}

/// A page of rows and the number of rows matching the query.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Page {
    pub items: Vec<ItemSummary>,
    pub total: u64,
    pub offset: u64,
}

/// Queue depth and age, for the status bar.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Counts {
    pub pending: u64,
    pub in_review: u64,
    pub approved: u64,
    pub rejected: u64,
    pub escalated: u64,
    /// Receipt time of the oldest undecided item.
    pub oldest_open: Option<Millis>,
    /// Undecided items past their priority's SLA.
    pub sla_breaches: u64,
    /// The actions kill switch is on: nothing is being sent.
    #[serde(default)]
    pub actions_paused: bool,
}

/// A held lease on one item. Present it to change the item.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Claim {
    pub id: i64,
    pub reviewer: String,
    pub fence: i64,
    pub lease_expires: Millis,
}

/// A reviewer's edit of one field.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Edit {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reviewer: String,
    pub at: Millis,
}

/// A decision to record.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub kind: DecisionKind,
    /// The revision of the item the decider was shown. The store refuses the decision with
    /// [`QueueError::StaleRevision`] when the item has another revision now. `None` only
    /// for a caller that has been shown nothing (a script deciding by id alone).
    #[serde(default)]
    pub revision: Option<i64>,
    pub note: Option<String>,
    /// Field edits applied in the same transaction, before the decision.
    pub sets: Vec<(EditableField, Option<String>)>,
}

/// A recorded decision.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DecisionRecord {
    pub id: i64,
    pub kind: DecisionKind,
    pub note: Option<String>,
    pub reviewer: String,
    pub at: Millis,
    pub undo_until: Millis,
    pub undone: bool,
}

/// An outbound action's state.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ActionStatus {
    pub id: i64,
    pub action: ActionKind,
    pub idempotency_key: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<Millis>,
    pub last_error: Option<String>,
    /// What is known of the effect (JSON: CRM item id, Slack ts, draft id, sandbox note);
    /// `crate::actions::result_text` makes it one readable line.
    #[serde(default)]
    pub response: Option<String>,
}

/// What a decision set in motion.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    pub decision_id: i64,
    pub id: i64,
    pub state: State,
    pub actions: Vec<ActionStatus>,
    /// Actions the policy names that this item does not get, with why (nothing queued
    /// for them).
    #[serde(default)]
    pub skipped: Vec<(ActionKind, crate::model::Skip)>,
    pub undo_until: Millis,
}

/// Everything about one item.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ItemDetail {
    pub summary: ItemSummary,
    /// The current revision's payload, verbatim as ingested.
    pub payload: String,
    pub request: Request,
    pub confidence: Confidence,
    pub flags: Vec<Flag>,
    /// The AI's values with the reviewer's edits on top.
    pub fields: FieldValues,
    pub edits: Vec<Edit>,
    pub decision: Option<DecisionRecord>,
    pub actions: Vec<ActionStatus>,
    pub fence: i64,
}

/// One audit entry, for the item timeline.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Millis,
    pub actor: String,
    pub request_id: Option<i64>,
    pub kind: String,
    pub detail: serde_json::Value,
    /// The Unix user of the process that wrote the entry (absent on entries written before
    /// it was recorded).
    #[serde(default)]
    pub os_user: Option<String>,
}

/// The review queue, wherever it lives.
#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    /// Where the queue is, for the status bar ("/var/lib/signoff/queue.db", a URL).
    fn location(&self) -> String;
    /// A page of items, filtered and sorted; never loads the whole queue.
    async fn list(&self, query: &ListQuery) -> Result<Page>;
    async fn counts(&self) -> Result<Counts>;
    async fn get(&self, id: i64) -> Result<ItemDetail>;
    /// Claims the next item in queue order, if any.
    async fn claim_next(&self, reviewer: &str) -> Result<Option<Claim>>;
    /// Claims one item (opening it in the console does this).
    async fn claim(&self, id: i64, reviewer: &str) -> Result<Claim>;
    /// Renews a lease; fails with [`QueueError::LeaseLost`] when it was lost.
    async fn heartbeat(&self, claim: &Claim) -> Result<Claim>;
    /// Gives an item back to the queue.
    async fn release(&self, claim: &Claim) -> Result<()>;
    /// Saves one field edit as it is made (`None` clears the field).
    async fn edit(&self, claim: &Claim, field: EditableField, value: Option<String>) -> Result<()>;
    /// Records a decision, its audit rows and its outbox rows in one transaction.
    async fn decide(&self, claim: &Claim, decision: &Decision) -> Result<Receipt>;
    /// Takes back this reviewer's last decision on the item while its undo window is open and
    /// none of its actions has left; the item comes back claimed by the reviewer.
    async fn undo(&self, id: i64, reviewer: &str) -> Result<Claim>;
    /// The item's audit entries, oldest first.
    async fn timeline(&self, id: i64) -> Result<Vec<AuditEntry>>;
    /// Changes whenever anything in the queue changed (any writer); cheap to poll.
    async fn change_token(&self) -> Result<u64>;
    /// The change token as it changes, when the queue can push it (a remote queue follows
    /// the server's event stream); `None` means poll [`Queue::change_token`].
    fn changes(&self) -> Option<Changes> {
        None
    }
    /// Whether the actions kill switch is on.
    async fn actions_paused(&self) -> Result<bool>;
    /// Turns the kill switch on or off for everyone using this queue.
    async fn set_actions_paused(&self, paused: bool, reviewer: &str) -> Result<()>;
    /// Queues a dead letter (an outbox entry, [`ActionStatus::id`]) to be sent again.
    async fn resend(&self, action_id: i64, reviewer: &str) -> Result<()>;
    /// Records what happened after a decision (a value from the policy's outcome list).
    async fn record_outcome(
        &self,
        id: i64,
        value: &str,
        reason: Option<&str>,
        reviewer: &str,
    ) -> Result<()>;
    /// Records that a reviewer looked at the rendered actions of an item (the preview), with
    /// a digest of what was shown, so the audit says what the person saw before deciding.
    async fn preview_rendered(&self, id: i64, reviewer: &str, digest: &str) -> Result<()>;
    /// What deciding `kind` on the item now would send: each action rendered from the
    /// current (edited) fields, exactly as approval would store it (the `p` preview).
    async fn preview(
        &self,
        id: i64,
        kind: &DecisionKind,
        reviewer: &str,
        note: Option<&str>,
    ) -> Result<Vec<ActionPreview>>;
    /// Ingest and escalation volume per hour with the volume alert: the cheap part of
    /// [`Queue::stats`], for a status bar.
    async fn volume(&self) -> Result<crate::stats::Volume>;
    /// Review analytics since a time (all time when `None`).
    async fn stats(&self, since: Option<Millis>) -> Result<crate::stats::Stats>;
}
