//! The `[actions]` part of config.example.toml.

/// Every action setting with a working example per provider. Secrets are `env:` (or
/// `file:`) references, never values.
pub const EXAMPLE: &str = r##"# Approval renders each action (per policy.actions) into the exact HTTP requests it will
# send, stores them with the decision, and the dispatcher sends them. Preview with `p`.
[actions]
# "sandbox": render and store, send nothing (the default; `signoff demo` always is).
# "shadow": a parallel run beside the existing process: reviewers decide here, actions
# are rendered and stored but not sent; `signoff shadow import` / `report` compare.
# "live": send — per provider, only when its credentials can be read; a provider
# without credentials stays in sandbox (`signoff doctor` says which).
mode = "sandbox"
# Kill switch: true stops all outbound sending at once (the console's key does the same
# for everyone sharing the database).
paused = false

[actions.dispatch]
batch = 16                 # rows claimed at once (at most `concurrency`)
concurrency = 16           # attempts in flight
lease_seconds = 180        # a dead worker's rows wait this long (at least 8 x timeout_ms)
max_attempts = 8           # then the row is a dead letter (R sends it again)
backoff_base_ms = 2000     # first retry within 0..2 s (full jitter) ...
backoff_cap_ms = 600000    # ... doubling up to 10 min; never before Retry-After
connect_timeout_ms = 5000
timeout_ms = 20000         # whole request
poll_ms = 1000             # idle worker looks for due rows this often

# monday.com: find the item by its key column, update it or create it, add a note.
[actions.monday]
api_url = "https://api.monday.com/v2"
api_version = "2025-04"                # pinned; 2025-01 or later
token = "env:MONDAY_TOKEN"             # sent bare in Authorization (no "Bearer")
board_id = "1234567890"                # from the board's URL
group_id = ""                          # new items' group; "" = the board's top group
key_column = "text_ext_id"             # a text column holding each item's key
key = "{{ request.source }}:{{ request.external_id }}"
item_name = "{{ request.from or request.external_id }}"
# The note (an update on the item); HTML, values are escaped. "" = no note.
note = "<p>{{ fields.summary }}</p><p>Next step: {{ fields.recommended_next_step }}</p><p>Approved by {{ decision.reviewer }}{% if decision.note %}: {{ decision.note }}{% endif %}</p>"
create_labels_if_missing = false       # true needs board-structure permission
requests_per_minute = 1000
# After a create that may have landed (timeout, dropped connection, 5xx), keep looking
# the item up for this long before creating it again (monday's search may lag behind a
# create). Must fit inside max_attempts and the backoff of [actions.dispatch].
lookup_window_secs = 30

# Columns by column id (not title: see `signoff doctor`). type is one of text,
# long_text, status, date, people ("12, team:9"), dropdown ("Hot, EU").
# An empty value leaves the column as it is.
[actions.monday.columns.status]
type = "status"
value = "{{ fields.intent }}"
[actions.monday.columns.priority]
type = "status"
value = "{{ fields.priority }}"
[actions.monday.columns.long_text_summary]
type = "long_text"
value = "{{ fields.summary }}"
[actions.monday.columns.date4]
type = "date"
value = "{{ request.received_at }}"

# Slack: chat.postMessage with a bot token (scopes chat:write, channels:history for
# finding an uncertain post again), or an incoming webhook when no token is set.
[actions.slack]
api_url = "https://slack.com/api/"
token = "env:SLACK_BOT_TOKEN"
# webhook_url = "env:SLACK_WEBHOOK_URL"   # the URL is the secret
default_channel = "C0123ABCD"             # channel IDs, not names
per_channel_per_second = 1.0              # Slack allows about 1 message/s per channel
burst = 3
history_lookup = true
join_channels = false                     # on not_in_channel, join (public channels; channels:join)
text = "{{ fields.priority }} {{ fields.intent }}: {{ fields.summary }}"
blocks = "*{{ fields.intent }}* ({{ fields.priority }}) from {{ request.from }}\n{{ fields.summary }}\n_Next:_ {{ fields.recommended_next_step }} · approved by {{ decision.reviewer }}"

[actions.slack.channels]                  # by priority
urgent = "C0URGENT01"
high = "C0123ABCD"

[actions.slack.intent_channels]           # by intent; wins over priority
complaint = "C0COMPLNT1"

# Gmail: a draft reply (users.drafts.create), never a sent mail. OAuth client of a
# Google Cloud project with the gmail.compose scope and an offline refresh token.
[actions.gmail]
api_url = "https://gmail.googleapis.com"
token_url = "https://oauth2.googleapis.com/token"
user = "me"
client_id = "env:GMAIL_CLIENT_ID"
client_secret = "env:GMAIL_CLIENT_SECRET"
refresh_token = "env:GMAIL_REFRESH_TOKEN"
from = "Support <support@example.com>"
subject = ""                              # "" = "Re: " + the request's subject (keeps the thread)
body = "{{ fields.draft_reply }}"
thread_id_field = "gmail_thread_id"       # raw.fields entry with the inbound Gmail thread id
message_id_field = "message_id"           # raw.fields entry with the inbound Message-ID
message_id_domain = "signoff.invalid"
per_second = 20.0
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::ActionsConfig;

    #[test]
    fn the_example_parses_and_passes_the_checks() {
        #[derive(serde::Deserialize)]
        struct Doc {
            actions: ActionsConfig,
        }
        let doc: Doc = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(crate::actions::check_config(&doc.actions), vec![]);
        assert!(doc.actions.slack.token.is_some());
        assert_eq!(doc.actions.monday.columns.len(), 4);
    }

    #[test]
    fn the_config_round_trips_through_toml() {
        // `signoff config print` serializes the effective config.
        for cfg in [ActionsConfig::default(), {
            #[derive(serde::Deserialize)]
            struct Doc {
                actions: ActionsConfig,
            }
            toml::from_str::<Doc>(EXAMPLE).unwrap().actions
        }] {
            let text = toml::to_string(&cfg).unwrap();
            let back: ActionsConfig = toml::from_str(&text).unwrap();
            assert_eq!(back, cfg);
        }
    }

    #[test]
    fn every_setting_is_in_the_example() {
        fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
            if let toml::Value::Table(t) = v {
                for (k, v) in t {
                    // Map entries (column ids, channel routes) are examples, not settings.
                    if prefix.ends_with("columns") || prefix.ends_with("channels") {
                        continue;
                    }
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    if v.is_table() {
                        keys(v, &path, out);
                    }
                    out.push(path);
                }
            }
        }
        let mut all = Vec::new();
        keys(
            &toml::Value::try_from(ActionsConfig::default()).unwrap(),
            "",
            &mut all,
        );
        for secret in [
            "monday.token",
            "slack.token",
            "slack.webhook_url",
            "gmail.client_id",
            "gmail.client_secret",
            "gmail.refresh_token",
        ] {
            all.push(secret.into());
        }
        for key in all {
            let (section, name) = key
                .rsplit_once('.')
                .map_or(("", key.as_str()), |(s, n)| (s, n));
            let table = if section.is_empty() {
                "[actions]".to_string()
            } else {
                format!("[actions.{section}]")
            };
            let start = EXAMPLE.find(&format!("\n{table}\n"));
            let in_table = start.is_some_and(|i| {
                let rest = &EXAMPLE[i + table.len() + 2..];
                let body = &rest[..rest.find("\n[").unwrap_or(rest.len())];
                body.lines().any(|l| {
                    let l = l.trim_start_matches("# ").trim_start();
                    l.starts_with(&format!("{name} ="))
                        || l.starts_with(&format!("[actions.{section}.{name}"))
                })
            });
            let is_table = EXAMPLE.contains(&format!("[actions.{key}"));
            assert!(
                in_table || is_table,
                "actions.{key} is not documented in EXAMPLE"
            );
        }
    }
}
