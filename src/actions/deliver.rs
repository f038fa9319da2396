//! Delivering one rendered action: the provider flows (monday find → create/update → note;
//! Slack post; Gmail draft with token refresh), each reconciling first when an earlier
//! attempt may have taken effect. What is learned on the way (item id, ts, draft id) goes
//! into [`Progress`], stored with the row after every attempt.
use std::time::Duration;

use reqwest::Client;
use serde_json::{Value, json};

use super::classify::{self, Outcome, Response};
use super::config::ActionsConfig;
use super::http;
use super::payload::{HttpRequest, Provider, Rendered};
use super::ratelimit::Limits;
use super::reconcile;
use super::token::Tokens;
use crate::clock::Millis;

/// What is known about a row's effect, kept in `outbox.response`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Progress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Slack message id: a string, never a float (a float loses digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// When the effect first left (ms), for Slack's history window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_sent_at: Option<i64>,
    /// When the last attempt to post started (ms): the history window's other end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<i64>,
    /// An earlier attempt may have taken effect: look it up before sending.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub maybe_sent: bool,
    /// A person sent the dead letter again: what cannot be looked up may be reposted. Kept
    /// through attempts that provably applied nothing (a 4xx, a 429, a refused connection);
    /// spent by one that applied or may have (or whose worker died mid-attempt).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resent: bool,
    /// Attempts made before the last resend (the budget restarts there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_base: Option<i64>,
    /// The effect was found by a lookup rather than created by this attempt.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reconciled: bool,
    /// Why the row stayed on this machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// When a monday create of this row last ended without an answer (ms): it may have
    /// made the item. Until `actions.monday.lookup_window_secs` after it, a lookup that
    /// finds nothing looks again later instead of creating the item again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_uncertain_at: Option<i64>,
    /// The item was created again after that window found nothing: at this time (ms) the
    /// row looks once more, for the earlier create having landed after all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recheck_at: Option<i64>,
    /// Every monday item holding this row's key, when a lookup found more than one: a
    /// duplicate for a person to merge.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<String>,
    /// This attempt's lookup answered that the effect an earlier attempt may have had is
    /// absent: if this attempt then fails without applying, nothing unknown is left behind.
    /// Not stored: `maybe_sent` stays set, so later attempts still look before sending.
    #[serde(skip)]
    pub settled: bool,
    /// This attempt let a request with an effect go (past its rate limit): cut off after
    /// that, the attempt may have taken effect; before it, it sent nothing. Not stored.
    #[serde(skip)]
    pub sending: bool,
    /// The request this attempt let go last was monday's create_item: an uncertain end
    /// of the attempt may have made the item. Not stored.
    #[serde(skip)]
    pub creating: bool,
}

impl Progress {
    /// The end (ms) of the lookup window of an uncertain create, while the item is not
    /// known: `window_secs` after [`Progress::create_uncertain_at`].
    pub fn lookup_until(&self, window_secs: u64) -> Option<i64> {
        if self.item_id.is_some() {
            return None;
        }
        let window = i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.create_uncertain_at.map(|at| at.saturating_add(window))
    }
}

/// Live credentials and shared state of one dispatcher run.
pub struct Env {
    pub http: Client,
    pub cfg: ActionsConfig,
    pub monday_token: Option<String>,
    pub slack_token: Option<String>,
    pub webhook_url: Option<String>,
    pub gmail: Option<Tokens>,
    pub limits: Limits,
    /// The dispatcher's "now" (the store's clock): schedules and lease times.
    pub clock: crate::clock::Clock,
}

impl Env {
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Why `provider` stays in sandbox, or `None` when it is live.
    pub fn sandbox_reason(&self, provider: Provider) -> Option<String> {
        match self.cfg.mode {
            super::config::Mode::Sandbox => return Some("actions.mode is sandbox".into()),
            super::config::Mode::Shadow => {
                return Some(
                    "actions.mode is shadow: a parallel run, the existing process acts".into(),
                );
            }
            super::config::Mode::Live => {}
        }
        let missing = match provider {
            Provider::Monday => self
                .monday_token
                .is_none()
                .then_some("actions.monday.token"),
            Provider::Slack => self.slack_token.is_none().then_some("actions.slack.token"),
            Provider::SlackWebhook => self
                .webhook_url
                .is_none()
                .then_some("actions.slack.webhook_url"),
            Provider::Gmail => self
                .gmail
                .is_none()
                .then_some("actions.gmail.client_id/client_secret/refresh_token"),
        };
        missing.map(|k| format!("no credentials ({k} is not set)"))
    }

    /// One request under the rate limit `limit` (key, per second, burst), its answer
    /// classified by `classify` ([`http::exchange`]). For a request that has an effect
    /// (a write, a post, a draft), `sending` is set once the rate limit lets it go: an
    /// attempt cut off before that sent nothing.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        req: &HttpRequest,
        url: &str,
        auth: Option<(&str, &str)>,
        body: Option<Vec<u8>>,
        limit: (&str, f64, f64),
        sending: Option<&mut bool>,
        classify: impl FnOnce(&Response) -> Outcome,
    ) -> Outcome {
        self.limits.acquire(limit.0, limit.1, limit.2).await;
        if let Some(s) = sending {
            *s = true;
        }
        http::exchange(&self.http, req, url, auth, body, classify).await
    }
}

fn step<'a>(r: &'a Rendered, name: &str) -> Result<&'a HttpRequest, Outcome> {
    r.step(name).ok_or_else(|| {
        Outcome::Permanent(format!(
            "the stored {} request has no '{name}' step; approve it again",
            r.provider.as_str()
        ))
    })
}

/// A stored body with `variables.item` filled in.
fn with_item(req: &HttpRequest, item: &str) -> Vec<u8> {
    let mut body = req.body.clone();
    if let Some(vars) = body.get_mut("variables").and_then(Value::as_object_mut) {
        vars.insert("item".into(), json!(item));
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

macro_rules! tryo {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(o) => return o,
        }
    };
}

/// Delivers one row; `reconcile` when an earlier attempt may have taken effect.
pub async fn deliver(
    env: &Env,
    r: &Rendered,
    p: &mut Progress,
    reconcile: bool,
    now: i64,
) -> Outcome {
    match r.provider {
        Provider::Monday => monday(env, r, p, reconcile, now).await,
        Provider::Slack => slack(env, r, p, reconcile, now).await,
        Provider::SlackWebhook => webhook(env, r, p, reconcile, now).await,
        Provider::Gmail => gmail(env, r, p, reconcile, now).await,
    }
}

/// One monday request; `field` is the root field whose value means success.
async fn monday_call(
    env: &Env,
    req: &HttpRequest,
    body: Option<Vec<u8>>,
    field: &str,
    sending: Option<&mut bool>,
) -> Result<Value, Outcome> {
    let token = env.monday_token.as_deref().unwrap_or_default();
    let limit = (
        "monday",
        f64::from(env.cfg.monday.requests_per_minute) / 60.0,
        10.0,
    );
    env.exchange(
        req,
        &req.url,
        Some(("Authorization", token)),
        body,
        limit,
        sending,
        |r| classify::monday(r, field),
    )
    .await
    .into_result()
}

/// Item ids holding the key (`items_page_by_column_values`, limit 2).
async fn monday_find(env: &Env, find: &HttpRequest) -> Result<Vec<String>, Outcome> {
    let page = monday_call(env, find, None, "items_page_by_column_values", None).await?;
    Ok(reconcile::monday_items(&page))
}

/// Looks the key up once more after the row created its item again (the lookup window of
/// an earlier, uncertain create found nothing): a second item now holding the key is that
/// create having landed late, recorded in [`Progress::duplicates`] for a person to merge.
/// A failed lookup, or one that does not yet show even this row's own item, proves
/// nothing: the row looks again a window later, while it has attempts left.
async fn monday_recheck(env: &Env, r: &Rendered, p: &mut Progress, item: &str, window_ms: i64) {
    let Some(find) = r.step("find") else {
        p.recheck_at = None;
        return;
    };
    let again = || Some(env.now().saturating_add(window_ms));
    match monday_find(env, find).await {
        Ok(ids) if ids.is_empty() => p.recheck_at = again(),
        Ok(ids) => {
            p.recheck_at = None;
            if ids.iter().any(|i| i != item) {
                let mut all = ids;
                if !all.iter().any(|i| i == item) {
                    all.push(item.to_string());
                }
                tracing::warn!(
                    key = %r.key,
                    "duplicate monday items: {}; merge them in monday",
                    all.join(", ")
                );
                p.duplicates = all;
            }
        }
        Err(o) => {
            tracing::info!(key = %r.key, "looking for a duplicate monday item failed: {}", o.message());
            p.recheck_at = again();
        }
    }
}

async fn monday(env: &Env, r: &Rendered, p: &mut Progress, reconcile: bool, now: i64) -> Outcome {
    let window = env.cfg.monday.lookup_window_secs;
    let window_ms = i64::try_from(window.saturating_mul(1000)).unwrap_or(i64::MAX);
    let key = r.meta_str("ext_key").unwrap_or(&r.key);
    let column = r.meta_str("key_column").unwrap_or("?");
    if let (Some(item), Some(at)) = (p.item_id.clone(), p.recheck_at)
        && at <= now
    {
        monday_recheck(env, r, p, &item, window_ms).await;
    }
    if p.item_id.is_none() {
        // Always look first: an earlier create may have landed (or another decision's).
        let find = tryo!(step(r, "find"));
        let ids = tryo!(monday_find(env, find).await);
        match ids.as_slice() {
            [] => {
                p.duplicates.clear();
                // An earlier create of this row may have made the item without it being
                // searchable yet: look again later (the row is rescheduled, nothing here
                // waits) until the window after that create has passed.
                if let (Some(until), Some(since)) = (p.lookup_until(window), p.create_uncertain_at)
                {
                    let at = env.now();
                    if at < until {
                        return Outcome::Retry {
                            after: None,
                            why: format!(
                                "no monday item has {column} = '{key}' yet; the create {:.1} s ago may still become searchable: looking again until {window} s after it",
                                (at - since) as f64 / 1000.0
                            ),
                        };
                    }
                }
                if reconcile {
                    p.settled = true;
                }
                let create = tryo!(step(r, "create"));
                p.first_sent_at.get_or_insert(now);
                p.creating = true;
                let v = tryo!(
                    monday_call(env, create, None, "create_item", Some(&mut p.sending)).await
                );
                match reconcile::id_string(v.get("id")) {
                    Some(id) => {
                        p.creating = false;
                        p.item_id = Some(id);
                        // Created again after an uncertain create's window found nothing:
                        // that create may still land, a duplicate. Look once more later.
                        if p.create_uncertain_at.is_some() && window > 0 {
                            p.recheck_at = Some(env.now().saturating_add(window_ms));
                        }
                    }
                    None => {
                        return Outcome::Ambiguous(
                            "monday created an item but returned no id".into(),
                        );
                    }
                }
            }
            [one] => {
                p.duplicates.clear();
                if reconcile {
                    p.reconciled = true;
                }
                let update = tryo!(step(r, "update"));
                let body = Some(with_item(update, one));
                tryo!(
                    monday_call(
                        env,
                        update,
                        body,
                        "change_multiple_column_values",
                        Some(&mut p.sending)
                    )
                    .await
                );
                p.item_id = Some(one.clone());
            }
            many => {
                p.duplicates = many.to_vec();
                return Outcome::Permanent(format!(
                    "conflict: {} monday items on board {} have {column} = '{key}' (ids {}); merge them in monday, then press R",
                    many.len(),
                    r.meta_str("board").unwrap_or("?"),
                    many.join(", ")
                ));
            }
        }
    }
    let item = p.item_id.clone().unwrap_or_default();
    if let Some(note) = r.step("note")
        && p.update_id.is_none()
    {
        if reconcile {
            let find = tryo!(step(r, "find_note"));
            let body = Some(with_item(find, &item));
            let items = tryo!(monday_call(env, find, body, "items", None).await);
            match reconcile::monday_note(&items, &r.key) {
                Some(id) => {
                    p.update_id = Some(id);
                    p.reconciled = true;
                }
                None => p.settled = true,
            }
        }
        if p.update_id.is_none() {
            p.first_sent_at.get_or_insert(now);
            let body = Some(with_item(note, &item));
            let v =
                tryo!(monday_call(env, note, body, "create_update", Some(&mut p.sending)).await);
            p.update_id = reconcile::id_string(v.get("id"));
        }
    }
    Outcome::Ok(json!({"item_id": p.item_id, "update_id": p.update_id}))
}

async fn slack(env: &Env, r: &Rendered, p: &mut Progress, reconcile: bool, now: i64) -> Outcome {
    let bearer = format!("Bearer {}", env.slack_token.as_deref().unwrap_or_default());
    let auth = Some(("Authorization", bearer.as_str()));
    let channel = r.meta_str("channel").unwrap_or_default().to_string();
    let cfg = &env.cfg.slack;
    let limit_key = format!("slack:{channel}");
    let limit = (
        limit_key.as_str(),
        cfg.per_channel_per_second,
        f64::from(cfg.burst),
    );
    if reconcile {
        if cfg.history_lookup {
            let lookup = tryo!(step(r, "lookup"));
            let window = (
                p.first_sent_at.unwrap_or(now),
                p.last_sent_at.unwrap_or(now) + env.cfg.dispatch.timeout_ms as i64,
            );
            match slack_lookup(env, lookup, auth, window, &r.key, r.meta_str("origin")).await {
                Ok(Some(ts)) => {
                    p.ts = Some(ts);
                    p.channel = Some(channel);
                    p.reconciled = true;
                    return Outcome::Ok(json!({"channel": p.channel, "ts": p.ts}));
                }
                Ok(None) => p.settled = true,
                Err(Outcome::Permanent(why)) if !p.resent => {
                    return Outcome::Permanent(format!(
                        "an earlier post may have gone out and it cannot be looked up ({why}); check the channel, then press R to post again"
                    ));
                }
                Err(Outcome::Permanent(_)) => {}
                Err(other) => return other,
            }
        } else if !p.resent {
            return Outcome::Permanent(
                "an earlier post may have gone out and actions.slack.history_lookup is off; check the channel, then press R to post again".into(),
            );
        }
    }
    let post = tryo!(step(r, "post"));
    p.first_sent_at.get_or_insert(now);
    p.last_sent_at = Some(now);
    let mut out = slack_post(env, post, auth, limit, &mut p.sending).await;
    // not_in_channel means nothing was posted: join (public channels, channels:join) and
    // post once more.
    if let (Outcome::Permanent(why), Some(join)) = (&out, r.step("join"))
        && why.starts_with("Slack: not_in_channel")
    {
        let joined = env
            .exchange(
                join,
                &join.url,
                auth,
                None,
                ("slack:join", 0.0, 1.0),
                None,
                classify::slack,
            )
            .await;
        out = match joined {
            Outcome::Ok(_) => slack_post(env, post, auth, limit, &mut p.sending).await,
            Outcome::Permanent(e) => Outcome::Permanent(format!(
                "{why}; joining it failed ({e}): invite the bot, then press R"
            )),
            other => other,
        };
    }
    match out {
        Outcome::Ok(v) => {
            p.ts = v.get("ts").and_then(Value::as_str).map(str::to_string);
            p.channel = v
                .get("channel")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or(Some(channel));
            Outcome::Ok(json!({"channel": p.channel, "ts": p.ts}))
        }
        other => other,
    }
}

/// One `chat.postMessage` under the channel's rate limit.
async fn slack_post(
    env: &Env,
    post: &HttpRequest,
    auth: Option<(&str, &str)>,
    limit: (&str, f64, f64),
    sending: &mut bool,
) -> Outcome {
    env.exchange(
        post,
        &post.url,
        auth,
        None,
        limit,
        Some(sending),
        classify::slack,
    )
    .await
}

/// Pages through the channel's history between shortly before the first post and shortly
/// after the last one could have landed (`window`, ms; two minutes either side for clock
/// skew), looking for our key. A busy channel has more than a page in that window.
async fn slack_lookup(
    env: &Env,
    lookup: &HttpRequest,
    auth: Option<(&str, &str)>,
    window: (i64, i64),
    key: &str,
    origin: Option<&str>,
) -> Result<Option<String>, Outcome> {
    const PAGES: usize = 50;
    const SKEW_S: i64 = 120;
    let oldest = window.0 / 1000 - SKEW_S;
    let latest = window.1 / 1000 + SKEW_S;
    let mut cursor: Option<String> = None;
    for _ in 0..PAGES {
        let mut url = format!("{}&oldest={oldest}&latest={latest}", lookup.url);
        if let Some(c) = &cursor {
            url.push_str(&format!(
                "&cursor={}",
                super::render::gmail::query_escape(c)
            ));
        }
        // History reads have their own, looser limit; don't spend the channel's tokens.
        let page = env
            .exchange(
                lookup,
                &url,
                auth,
                None,
                ("slack:history", 0.0, 1.0),
                None,
                classify::slack,
            )
            .await
            .into_result()?;
        if let Some(ts) = reconcile::slack_message(&page, key, origin) {
            return Ok(Some(ts));
        }
        cursor = page
            .pointer("/response_metadata/next_cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        if cursor.is_none() {
            return Ok(None);
        }
    }
    Err(Outcome::Permanent(format!(
        "looked through {PAGES} pages of channel history without reaching the end"
    )))
}

async fn webhook(env: &Env, r: &Rendered, p: &mut Progress, reconcile: bool, now: i64) -> Outcome {
    if reconcile && !p.resent {
        // Webhooks return no id and cannot be looked up: at most once.
        return Outcome::Permanent(
            "the webhook may have posted this already and webhooks cannot be looked up; check the channel, then press R to post again".into(),
        );
    }
    let post = tryo!(step(r, "post"));
    let url = env.webhook_url.clone().unwrap_or_default();
    let cfg = &env.cfg.slack;
    p.first_sent_at.get_or_insert(now);
    env.exchange(
        post,
        &url,
        None,
        None,
        (
            "slack:webhook",
            cfg.per_channel_per_second,
            f64::from(cfg.burst),
        ),
        Some(&mut p.sending),
        classify::slack_webhook,
    )
    .await
}

/// One Gmail request with the 401 → refresh once → retry once rule.
async fn gmail_call(
    env: &Env,
    tokens: &Tokens,
    req: &HttpRequest,
    mut sending: Option<&mut bool>,
) -> Result<Value, Outcome> {
    let limit = (
        "gmail",
        env.cfg.gmail.per_second,
        env.cfg.gmail.per_second.max(1.0),
    );
    let mut tok = tokens.get().await?;
    for first in [true, false] {
        let bearer = format!("Bearer {tok}");
        let auth = Some(("Authorization", bearer.as_str()));
        match env
            .exchange(
                req,
                &req.url,
                auth,
                None,
                limit,
                sending.as_deref_mut(),
                classify::gmail,
            )
            .await
        {
            Outcome::AuthRefresh(why) if first => {
                tracing::info!(%why, "Gmail refused the access token; refreshing once");
                tok = tokens.refresh_after_401(&tok).await?;
            }
            Outcome::AuthRefresh(why) => {
                return Err(Outcome::Retry {
                    after: None,
                    why: format!("{why} (even after a token refresh)"),
                });
            }
            other => return other.into_result(),
        }
    }
    Err(Outcome::Retry {
        after: None,
        why: "Gmail token refresh loop".into(),
    })
}

async fn gmail(env: &Env, r: &Rendered, p: &mut Progress, reconcile: bool, now: i64) -> Outcome {
    let Some(tokens) = &env.gmail else {
        return Outcome::Permanent("Gmail credentials are not configured".into());
    };
    if reconcile {
        let lookup = tryo!(step(r, "lookup"));
        let list = tryo!(gmail_call(env, tokens, lookup, None).await);
        if let Some((id, thread)) = reconcile::gmail_draft(&list) {
            p.draft_id = Some(id);
            p.thread_id = thread;
            p.reconciled = true;
            return Outcome::Ok(json!({"draft_id": p.draft_id, "thread_id": p.thread_id}));
        }
        p.settled = true;
    }
    let create = tryo!(step(r, "create"));
    p.first_sent_at.get_or_insert(now);
    let v = tryo!(gmail_call(env, tokens, create, Some(&mut p.sending)).await);
    p.draft_id = v.get("id").and_then(Value::as_str).map(str::to_string);
    p.thread_id = v
        .pointer("/message/threadId")
        .and_then(Value::as_str)
        .map(str::to_string);
    Outcome::Ok(json!({"draft_id": p.draft_id, "thread_id": p.thread_id}))
}

/// How long one attempt may take at most: four request timeouts (monday's find, write and
/// note, or Gmail's lookup, refresh and create). The dispatcher cuts an attempt off there
/// (ambiguous once a request with an effect has gone out, a retry before that), so it
/// always ends inside its lease.
pub fn attempt_budget(cfg: &ActionsConfig) -> Duration {
    Duration::from_millis(cfg.dispatch.timeout_ms.saturating_mul(4))
}
