//! `signoff doctor` for actions: per integration, are the credentials there, does the token
//! work, do the board and its mapped columns exist, are the channels reachable, does the
//! Gmail token carry a compose scope — asked of the configured base URLs, and said plainly.
use std::fmt;

use serde_json::{Value, json};

use super::classify::{self, Outcome};
use super::config::{ActionsConfig, Mode};
use super::http::exchange;
use super::payload::HttpRequest;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

/// One line of the doctor's report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DoctorCheck {
    /// `actions`, `monday`, `slack`, `gmail`.
    pub integration: String,
    pub check: String,
    pub status: Status,
    pub detail: String,
}

impl fmt::Display for DoctorCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        write!(f, "[{mark}] {}: {}", self.integration, self.check)?;
        if !self.detail.is_empty() {
            write!(f, " — {}", self.detail)?;
        }
        Ok(())
    }
}

fn line(integration: &str, check: &str, status: Status, detail: impl Into<String>) -> DoctorCheck {
    DoctorCheck {
        integration: integration.into(),
        check: check.into(),
        status,
        detail: detail.into(),
    }
}

pub async fn doctor(cfg: &ActionsConfig) -> Vec<DoctorCheck> {
    let mut out = Vec::new();
    for (k, m) in super::check::check(cfg) {
        out.push(line("actions", &k, Status::Fail, m));
    }
    out.push(line(
        "actions",
        "mode",
        if cfg.mode == Mode::Live { Status::Ok } else { Status::Warn },
        match (cfg.mode, cfg.paused) {
            (_, true) => "paused (actions.paused = true): nothing is sent".to_string(),
            (Mode::Sandbox, _) => "sandbox: actions are rendered and stored, nothing is sent (set actions.mode = \"live\")".into(),
            (Mode::Shadow, _) => "shadow: a parallel run; actions are rendered and stored, nothing is sent (`signoff shadow report` compares with the existing process)".into(),
            (Mode::Live, _) => "live".into(),
        },
    ));
    let env = match super::dispatcher::env(cfg) {
        Ok(e) => e,
        Err(e) => {
            out.push(line("actions", "http client", Status::Fail, e.to_string()));
            return out;
        }
    };
    monday(cfg, &env, &mut out).await;
    slack(cfg, &env, &mut out).await;
    gmail(cfg, &env, &mut out).await;
    out
}

async fn monday(cfg: &ActionsConfig, env: &super::deliver::Env, out: &mut Vec<DoctorCheck>) {
    let m = &cfg.monday;
    let Some(token) = &env.monday_token else {
        let why = m
            .token
            .as_ref()
            .map_or("actions.monday.token is not set".into(), |s| {
                format!("actions.monday.token: {}", s.describe())
            });
        out.push(line(
            "monday",
            "credentials",
            Status::Skip,
            format!("{why}; CRM actions stay in sandbox"),
        ));
        return;
    };
    out.push(line(
        "monday",
        "credentials",
        Status::Ok,
        m.token.as_ref().map(|s| s.describe()).unwrap_or_default(),
    ));
    let ask = |query: &str, vars: Value| {
        let mut r = HttpRequest::post_json(
            "doctor",
            m.api_url.clone(),
            json!({"query": query, "variables": vars}),
        );
        r.headers
            .insert("API-Version".into(), m.api_version.clone());
        r
    };
    let me = ask("query { me { id name } }", json!({}));
    let auth = Some(("Authorization", token.as_str()));
    match exchange(&env.http, &me, &m.api_url, auth, None, |r| {
        classify::monday(r, "me")
    })
    .await
    {
        Outcome::Ok(v) => out.push(line(
            "monday",
            "token works",
            Status::Ok,
            format!(
                "user {}",
                v.get("name").and_then(Value::as_str).unwrap_or("?")
            ),
        )),
        o => {
            out.push(line("monday", "token works", Status::Fail, o.message()));
            return;
        }
    }
    if m.board_id.is_empty() {
        out.push(line(
            "monday",
            "board",
            Status::Fail,
            "actions.monday.board_id is not set",
        ));
        return;
    }
    let q = ask(
        "query ($board: [ID!]) { boards(ids: $board) { id name columns { id title type } } }",
        json!({"board": [m.board_id]}),
    );
    let boards = match exchange(&env.http, &q, &m.api_url, auth, None, |r| {
        classify::monday(r, "boards")
    })
    .await
    {
        Outcome::Ok(v) => v,
        o => {
            out.push(line("monday", "board", Status::Fail, o.message()));
            return;
        }
    };
    let Some(board) = boards.as_array().and_then(|a| a.first()) else {
        out.push(line(
            "monday",
            "board",
            Status::Fail,
            format!(
                "board {} not found or not visible to this token",
                m.board_id
            ),
        ));
        return;
    };
    out.push(line(
        "monday",
        "board",
        Status::Ok,
        format!(
            "{} ({})",
            board.get("name").and_then(Value::as_str).unwrap_or("?"),
            m.board_id
        ),
    ));
    let cols: Vec<(String, String)> = board
        .get("columns")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c.get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        c.get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let known = cols
        .iter()
        .map(|(i, t)| format!("{i} ({t})"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut want: Vec<(&str, &str)> = vec![(m.key_column.as_str(), "text")];
    want.extend(
        m.columns
            .iter()
            .map(|(id, c)| (id.as_str(), c.kind.as_str())),
    );
    for (id, kind) in want {
        match cols.iter().find(|(i, _)| i == id) {
            Some((_, t)) if t == kind => {
                out.push(line("monday", &format!("column {id}"), Status::Ok, kind))
            }
            Some((_, t)) => out.push(line(
                "monday",
                &format!("column {id}"),
                Status::Fail,
                format!("is a {t} column, the mapping says {kind}"),
            )),
            None => out.push(line(
                "monday",
                &format!("column {id}"),
                Status::Fail,
                format!("not on the board; columns: {known}"),
            )),
        }
    }
}

async fn slack(cfg: &ActionsConfig, env: &super::deliver::Env, out: &mut Vec<DoctorCheck>) {
    let s = &cfg.slack;
    let Some(token) = &env.slack_token else {
        if env.webhook_url.is_some() {
            out.push(line("slack", "webhook", Status::Warn, "set; not tested (a test would post a message); webhook posts cannot be looked up, so an ambiguous one is never reposted"));
        } else {
            out.push(line(
                "slack",
                "credentials",
                Status::Skip,
                "neither actions.slack.token nor webhook_url is set; Slack actions stay in sandbox",
            ));
        }
        return;
    };
    let base = s.api_url.trim_end_matches('/');
    let bearer = format!("Bearer {token}");
    let auth = Some(("Authorization", bearer.as_str()));
    let test = HttpRequest::post_json("doctor", format!("{base}/auth.test"), json!({}));
    match exchange(&env.http, &test, &test.url, auth, None, classify::slack).await {
        Outcome::Ok(v) => out.push(line(
            "slack",
            "token works",
            Status::Ok,
            format!(
                "team {}, bot {}",
                v.get("team").and_then(Value::as_str).unwrap_or("?"),
                v.get("user").and_then(Value::as_str).unwrap_or("?")
            ),
        )),
        o => {
            out.push(line("slack", "token works", Status::Fail, o.message()));
            return;
        }
    }
    let mut channels: Vec<&String> = s
        .channels
        .values()
        .chain(s.intent_channels.values())
        .collect();
    if !s.default_channel.is_empty() {
        channels.push(&s.default_channel);
    }
    channels.sort();
    channels.dedup();
    for c in channels {
        let info = HttpRequest::get("doctor", format!("{base}/conversations.info?channel={c}"));
        match exchange(&env.http, &info, &info.url, auth, None, classify::slack).await {
            Outcome::Ok(v) => {
                let member = v
                    .pointer("/channel/is_member")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let archived = v
                    .pointer("/channel/is_archived")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let name = v
                    .pointer("/channel/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let (st, d) = match (archived, member) {
                    (true, _) => (Status::Fail, format!("#{name} is archived")),
                    (false, false) => (
                        Status::Fail,
                        format!("the bot is not in #{name}: invite it"),
                    ),
                    _ => (Status::Ok, format!("#{name}")),
                };
                out.push(line("slack", &format!("channel {c}"), st, d));
            }
            o => out.push(line(
                "slack",
                &format!("channel {c}"),
                Status::Fail,
                o.message(),
            )),
        }
    }
}

async fn gmail(cfg: &ActionsConfig, env: &super::deliver::Env, out: &mut Vec<DoctorCheck>) {
    let g = &cfg.gmail;
    let Some(tokens) = &env.gmail else {
        out.push(line("gmail", "credentials", Status::Skip, "actions.gmail.client_id, client_secret and refresh_token are not all set; Gmail actions stay in sandbox"));
        return;
    };
    let tok = match tokens.get().await {
        Ok(t) => t,
        Err(o) => {
            out.push(line("gmail", "token refresh", Status::Fail, o.message()));
            return;
        }
    };
    out.push(line("gmail", "token refresh", Status::Ok, ""));
    let scope = tokens.scope().await.unwrap_or_default();
    let compose = scope.split_whitespace().any(|s| {
        s.ends_with("/gmail.compose")
            || s.ends_with("/gmail.modify")
            || s == "https://mail.google.com/"
    });
    out.push(line(
        "gmail",
        "scope",
        if compose { Status::Ok } else { Status::Fail },
        if compose { scope } else { format!("'{scope}' cannot create drafts; re-authorize with https://www.googleapis.com/auth/gmail.compose") },
    ));
    let base = g.api_url.trim_end_matches('/');
    let profile = HttpRequest::get(
        "doctor",
        format!("{base}/gmail/v1/users/{}/profile", g.user),
    );
    let bearer = format!("Bearer {tok}");
    let auth = Some(("Authorization", bearer.as_str()));
    match exchange(
        &env.http,
        &profile,
        &profile.url,
        auth,
        None,
        classify::gmail,
    )
    .await
    {
        Outcome::Ok(v) => out.push(line(
            "gmail",
            "mailbox",
            Status::Ok,
            v.get("emailAddress").and_then(Value::as_str).unwrap_or("?"),
        )),
        o => out.push(line("gmail", "mailbox", Status::Fail, o.message())),
    }
}
