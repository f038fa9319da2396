//! The `[actions]` section of the config: mode and kill switch, the dispatcher's timing,
//! and one table per provider (base URLs, credentials by reference, mapping, templates,
//! routing, rate limits). Every default works with no file at all: actions then render
//! and stay in sandbox.
use std::collections::BTreeMap;

use crate::secret::Secret;

/// Whether actions leave the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Render and store every action; send nothing.
    #[default]
    Sandbox,
    /// A parallel run beside the existing process: reviewers decide in signoff, actions
    /// are rendered and stored, and marked not sent (like sandbox); the existing process
    /// keeps acting, and `signoff shadow report` compares the two.
    Shadow,
    Live,
}

/// `[actions]`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionsConfig {
    pub mode: Mode,
    /// Kill switch: nothing is sent while true.
    pub paused: bool,
    pub dispatch: DispatchConfig,
    pub monday: MondayConfig,
    pub slack: SlackConfig,
    pub gmail: GmailConfig,
}

/// `[actions.dispatch]`: how the outbox worker claims, sends and retries.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// Rows claimed at once (at most `concurrency`: no claimed row waits while its lease runs).
    pub batch: u32,
    /// Requests in flight at once.
    pub concurrency: u32,
    /// How long a claim lasts; a worker that dies releases its rows when it runs out. At
    /// least two attempt budgets (4 × `timeout_ms` each) are used whatever is set here.
    pub lease_seconds: u64,
    /// Attempts before a row becomes a dead letter.
    pub max_attempts: u32,
    /// Backoff: the first retry waits up to this long (full jitter) …
    pub backoff_base_ms: u64,
    /// … doubling per attempt up to this cap.
    pub backoff_cap_ms: u64,
    pub connect_timeout_ms: u64,
    /// Whole request, connect to last byte.
    pub timeout_ms: u64,
    /// How often an idle worker looks for due rows.
    pub poll_ms: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            batch: 16,
            concurrency: 16,
            lease_seconds: 180,
            max_attempts: 8,
            backoff_base_ms: 2_000,
            backoff_cap_ms: 600_000,
            connect_timeout_ms: 5_000,
            timeout_ms: 20_000,
            poll_ms: 1_000,
        }
    }
}

/// A monday.com column type the mapping knows how to fill (INTEGRATIONS.md §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Text,
    LongText,
    Status,
    Date,
    /// Comma-separated ids; `team:9` for a team, otherwise a person.
    People,
    /// Comma-separated labels.
    Dropdown,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::LongText => "long_text",
            ColumnType::Status => "status",
            ColumnType::Date => "date",
            ColumnType::People => "people",
            ColumnType::Dropdown => "dropdown",
        }
    }
}

/// One mapped column: its type and the template giving its value.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMap {
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Template; an empty result leaves the column alone.
    pub value: String,
}

/// `[actions.monday]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MondayConfig {
    pub api_url: String,
    /// Pinned `API-Version` (≥ 2025-01 for the unified error format).
    pub api_version: String,
    /// API token (`env:MONDAY_TOKEN`); sent bare in `Authorization`.
    pub token: Option<Secret>,
    pub board_id: String,
    /// Group new items go to; empty = the board's top group.
    pub group_id: String,
    /// Text column holding the item's external key (how an item is found again).
    pub key_column: String,
    /// Template of the key stored in `key_column`.
    pub key: String,
    /// Template of a new item's name (≤ 255 characters).
    pub item_name: String,
    /// Template of the update (note) posted on the item; HTML, values escaped.
    pub note: String,
    /// Columns by column id.
    pub columns: BTreeMap<String, ColumnMap>,
    pub create_labels_if_missing: bool,
    /// Calls per minute this worker allows itself (0 = no limit).
    pub requests_per_minute: u32,
    /// After a create that may have landed (a timeout after the request left, a broken
    /// connection, a 5xx), keep looking the item up by `key_column` for this long before
    /// creating it again: a fresh item may take a while to become searchable. Each look is
    /// an attempt of the row, spaced by the dispatcher's backoff (at least half of it), so
    /// the window must fit inside `actions.dispatch` max_attempts and backoff (checked at
    /// load). 0 = create again after the first look finds nothing.
    pub lookup_window_secs: u64,
}

impl Default for MondayConfig {
    fn default() -> Self {
        let col = |kind, value: &str| ColumnMap {
            kind,
            value: value.into(),
        };
        MondayConfig {
            api_url: "https://api.monday.com/v2".into(),
            api_version: "2025-04".into(),
            token: None,
            board_id: String::new(),
            group_id: String::new(),
            key_column: "ext_id".into(),
            key: "{{ request.source }}:{{ request.external_id }}".into(),
            item_name: "{{ request.from or request.external_id }}".into(),
            note: "<p>{{ fields.summary }}</p><p>Next step: {{ fields.recommended_next_step }}</p><p>Approved by {{ decision.reviewer }}{% if decision.note %}: {{ decision.note }}{% endif %}</p>".into(),
            columns: BTreeMap::from([
                ("status".into(), col(ColumnType::Status, "{{ fields.intent }}")),
                ("priority".into(), col(ColumnType::Status, "{{ fields.priority }}")),
            ]),
            create_labels_if_missing: false,
            requests_per_minute: 1_000,
            lookup_window_secs: 30,
        }
    }
}

/// `[actions.slack]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    pub api_url: String,
    /// Bot token (`env:SLACK_BOT_TOKEN`, `xoxb-…`) for chat.postMessage.
    pub token: Option<Secret>,
    /// Incoming webhook URL (a secret: `env:SLACK_WEBHOOK_URL`), used when there is no token.
    pub webhook_url: Option<Secret>,
    /// Channel ID when no route below matches.
    pub default_channel: String,
    /// Channel ID by priority.
    pub channels: BTreeMap<String, String>,
    /// Channel ID by intent; wins over the priority route.
    pub intent_channels: BTreeMap<String, String>,
    /// Template of the notification fallback `text`.
    pub text: String,
    /// Template of the section block (Slack mrkdwn, values escaped).
    pub blocks: String,
    /// Messages per second per channel (Slack allows about 1).
    pub per_channel_per_second: f64,
    /// Burst allowance per channel.
    pub burst: u32,
    /// Look an ambiguous post up in conversations.history (needs channels:history).
    pub history_lookup: bool,
    /// On `not_in_channel`, join the (public) channel and post again (needs channels:join).
    pub join_channels: bool,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            api_url: "https://slack.com/api/".into(),
            token: None,
            webhook_url: None,
            default_channel: String::new(),
            channels: BTreeMap::new(),
            intent_channels: BTreeMap::new(),
            text: "{{ fields.priority }} {{ fields.intent }}: {{ fields.summary }}".into(),
            blocks: "*{{ fields.intent }}* ({{ fields.priority }}) from {{ request.from }}\n{{ fields.summary }}\n_Next:_ {{ fields.recommended_next_step }} · approved by {{ decision.reviewer }}".into(),
            per_channel_per_second: 1.0,
            burst: 3,
            history_lookup: true,
            join_channels: false,
        }
    }
}

/// `[actions.gmail]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GmailConfig {
    pub api_url: String,
    pub token_url: String,
    /// The mailbox (`me` = the authorized user).
    pub user: String,
    pub client_id: Option<Secret>,
    pub client_secret: Option<Secret>,
    pub refresh_token: Option<Secret>,
    /// `From` of the draft: an address, optionally `Name <address>`.
    pub from: String,
    /// Template of the subject; empty = `Re: ` + the request's subject (keeps Gmail threading).
    pub subject: String,
    /// Template of the body (plain text).
    pub body: String,
    /// Form field (`raw.fields`) holding the Gmail thread id of the inbound message.
    pub thread_id_field: String,
    /// Form field holding the inbound message's `Message-ID`.
    pub message_id_field: String,
    /// Domain of our own `Message-ID`s.
    pub message_id_domain: String,
    /// Drafts per second this worker allows itself.
    pub per_second: f64,
}

impl Default for GmailConfig {
    fn default() -> Self {
        GmailConfig {
            api_url: "https://gmail.googleapis.com".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            user: "me".into(),
            client_id: None,
            client_secret: None,
            refresh_token: None,
            from: String::new(),
            subject: String::new(),
            body: "{{ fields.draft_reply }}".into(),
            thread_id_field: "gmail_thread_id".into(),
            message_id_field: "message_id".into(),
            message_id_domain: "signoff.invalid".into(),
            per_second: 20.0,
        }
    }
}
