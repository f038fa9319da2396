//! Config checks for `[actions]` at load: every problem as `(dotted key, message naming
//! what is allowed)`, so the config loader can report file, key and fix together.
use super::backoff;
use super::config::{ActionsConfig, Mode};
use super::templates::Templates;

pub fn check(cfg: &ActionsConfig) -> Vec<(String, String)> {
    let mut errs: Vec<(String, String)> = Vec::new();
    let mut err = |k: &str, m: String| errs.push((k.to_string(), m));
    if let Err(t) = Templates::compile(cfg) {
        for (k, m) in t {
            err(&k, m);
        }
    }
    let d = &cfg.dispatch;
    if d.batch == 0 {
        err("actions.dispatch.batch", "must be at least 1".into());
    }
    if d.concurrency == 0 {
        err("actions.dispatch.concurrency", "must be at least 1".into());
    }
    if d.max_attempts == 0 {
        err("actions.dispatch.max_attempts", "must be at least 1".into());
    }
    if d.backoff_base_ms == 0 || d.backoff_cap_ms < d.backoff_base_ms {
        err(
            "actions.dispatch.backoff_cap_ms",
            format!(
                "must be at least backoff_base_ms ({}), and the base above 0",
                d.backoff_base_ms
            ),
        );
    }
    if d.timeout_ms < d.connect_timeout_ms || d.connect_timeout_ms == 0 {
        err(
            "actions.dispatch.timeout_ms",
            format!(
                "must be at least connect_timeout_ms ({} ms), both above 0",
                d.connect_timeout_ms
            ),
        );
    }
    for (key, url) in [
        ("actions.monday.api_url", &cfg.monday.api_url),
        ("actions.slack.api_url", &cfg.slack.api_url),
        ("actions.gmail.api_url", &cfg.gmail.api_url),
        ("actions.gmail.token_url", &cfg.gmail.token_url),
    ] {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            err(key, format!("'{url}' is not an http(s) URL"));
        }
    }
    let m = &cfg.monday;
    if !m.api_version.is_empty() {
        let ok = m.api_version.len() == 7
            && m.api_version.as_bytes()[4] == b'-'
            && m.api_version[..4].chars().all(|c| c.is_ascii_digit())
            && matches!(&m.api_version[5..], "01" | "04" | "07" | "10");
        if !ok {
            err(
                "actions.monday.api_version",
                format!(
                    "'{}' is not a monday API version; use YYYY-MM with MM 01, 04, 07 or 10 (2025-01 or later)",
                    m.api_version
                ),
            );
        }
    }
    if !m.board_id.is_empty() && !m.board_id.chars().all(|c| c.is_ascii_digit()) {
        err(
            "actions.monday.board_id",
            format!(
                "'{}' is not a board id (digits, from the board's URL)",
                m.board_id
            ),
        );
    }
    if m.key_column.trim().is_empty() {
        err(
            "actions.monday.key_column",
            "must name the text column holding the item's key".into(),
        );
    }
    if let Some((k, msg)) = lookup_window(cfg) {
        err(&k, msg);
    }
    if m.columns.contains_key(&m.key_column) {
        err(
            &format!("actions.monday.columns.{}", m.key_column),
            "is the key column; signoff fills it with actions.monday.key".into(),
        );
    }
    let slack_ok = |c: &str| {
        c.len() >= 9
            && c.starts_with(['C', 'G', 'D'])
            && c.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    let s = &cfg.slack;
    for (k, v) in s
        .channels
        .iter()
        .map(|(k, v)| (format!("actions.slack.channels.{k}"), v))
        .chain(
            s.intent_channels
                .iter()
                .map(|(k, v)| (format!("actions.slack.intent_channels.{k}"), v)),
        )
        .chain((!s.default_channel.is_empty()).then(|| {
            (
                "actions.slack.default_channel".to_string(),
                &s.default_channel,
            )
        }))
    {
        if !slack_ok(v) {
            err(
                &k,
                format!(
                    "'{v}' is not a Slack channel ID; use the ID (like C0123ABCD, from the channel's details), not its name"
                ),
            );
        }
    }
    if !(s.per_channel_per_second >= 0.0 && s.per_channel_per_second.is_finite()) {
        err(
            "actions.slack.per_channel_per_second",
            "must be a rate ≥ 0 (0 = no limit)".into(),
        );
    }
    let g = &cfg.gmail;
    if !g.from.is_empty()
        && let Err(e) = super::render::gmail::mailbox("actions.gmail.from", &g.from)
    {
        err("actions.gmail.from", e);
    }
    if g.message_id_domain.is_empty() || g.message_id_domain.contains(['<', '>', '@', ' ']) {
        err(
            "actions.gmail.message_id_domain",
            format!("'{}' is not a domain", g.message_id_domain),
        );
    }
    if cfg.mode == Mode::Live {
        // Unreadable secrets are not config errors: reviewers' consoles load this config
        // without the dispatcher's credentials. A provider whose secret cannot be read
        // stays in sandbox; `signoff doctor` says so.
        if m.token.is_some() && m.board_id.is_empty() {
            errs.push((
                "actions.monday.board_id".into(),
                "is required in live mode with a monday token".into(),
            ));
        }
        if s.token.is_some() && s.default_channel.is_empty() {
            errs.push((
                "actions.slack.default_channel".into(),
                "is required in live mode with a bot token (items no route matches go there)"
                    .into(),
            ));
        }
    }
    errs
}

/// `actions.monday.lookup_window_secs` against the dispatcher's attempt budget: each look
/// after an uncertain create is an attempt, spaced by at least half the backoff, so a row
/// can be looked up for [`backoff::lookup_reach_ms`] at least before its attempts run
/// out. A longer window would turn into a dead letter instead of ending in a lookup.
pub fn lookup_window(cfg: &ActionsConfig) -> Option<(String, String)> {
    let (d, window) = (&cfg.dispatch, cfg.monday.lookup_window_secs);
    let reach_ms = backoff::lookup_reach_ms(d.max_attempts, d.backoff_base_ms, d.backoff_cap_ms);
    (window.saturating_mul(1000) > reach_ms).then(|| {
        (
            "actions.monday.lookup_window_secs".to_string(),
            format!(
                "{window} s does not fit inside the dispatcher's attempt budget of {} s (actions.dispatch.max_attempts = {}, backoff_base_ms = {}, backoff_cap_ms = {}: after a create that may have landed, the row's attempts may be spent that long after it); lower the window to {} or less, or raise max_attempts or the backoff",
                reach_ms / 1000,
                d.max_attempts,
                d.backoff_base_ms,
                d.backoff_cap_ms,
                reach_ms / 1000,
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_values_name_their_key() {
        assert_eq!(check(&ActionsConfig::default()), vec![]);
        let mut cfg = ActionsConfig::default();
        cfg.slack.channels.insert("urgent".into(), "#alerts".into());
        cfg.monday.api_version = "2025-02".into();
        let errs = check(&cfg);
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "actions.monday.api_version",
                "actions.slack.channels.urgent"
            ],
            "{errs:?}"
        );
    }

    #[test]
    fn a_lookup_window_longer_than_the_attempt_budget_is_refused_naming_both() {
        let mut cfg = ActionsConfig::default();
        // Defaults: 30 s inside 127 s (halves of 2 .. 128 s of backoff over 7 retries).
        assert_eq!(lookup_window(&cfg), None);
        cfg.monday.lookup_window_secs = 127;
        assert_eq!(lookup_window(&cfg), None, "exactly the budget fits");
        cfg.monday.lookup_window_secs = 128;
        let (key, msg) = lookup_window(&cfg).expect("refused");
        assert_eq!(key, "actions.monday.lookup_window_secs");
        assert!(
            msg.starts_with("128 s does not fit inside the dispatcher's attempt budget of 127 s (actions.dispatch.max_attempts = 8, backoff_base_ms = 2000, backoff_cap_ms = 600000"),
            "{msg}"
        );
        assert!(check(&cfg).iter().any(|(k, _)| k == &key));
        // Fewer attempts, a smaller budget.
        cfg.monday.lookup_window_secs = 30;
        cfg.dispatch.max_attempts = 5;
        assert!(
            lookup_window(&cfg)
                .unwrap()
                .1
                .contains("attempt budget of 15 s")
        );
        cfg.dispatch.max_attempts = 1;
        assert!(
            lookup_window(&cfg)
                .unwrap()
                .1
                .contains("attempt budget of 0 s")
        );
        cfg.monday.lookup_window_secs = 0;
        assert_eq!(lookup_window(&cfg), None, "no window needs no budget");
    }
}
