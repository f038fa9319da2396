//! Shared by the console tests: hostile fixtures (CJK, emoji ZWJ, RTL, escape sequences),
//! an App at a fixed clock, pure page/detail fixtures, a headless runner over a real
//! SQLite queue, and rendering through ratatui's TestBackend.
#![allow(dead_code)]
use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use serde_json::{Value, json};
use signoff::model::{FieldValues, Policy, Request, State, validate};
use signoff::queue::{ItemDetail, ItemSummary, LocalQueue, Millis, Page, Queue};
use signoff::store::{IngestItem, Store, StoreOptions};
use signoff::tui::action::{Action, Effect, Loaded};
use signoff::tui::app::{App, AppInit};
use signoff::tui::keymap::Keymap;
use signoff::tui::theme::{ColorMode, Theme};
use signoff::tui::update::{init, update};

/// 2026-11-21T12:00:00Z: the tests' "now".
pub const NOW: Millis = 1_795_262_400_000;
const MIN: i64 = 60_000;

fn at(ago_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(NOW - ago_ms) * 1_000_000)
        .expect("valid time");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// Six requests, most urgent first, with the text a console must survive.
pub fn fixtures() -> Vec<Value> {
    vec![
        json!({"source": "gmail", "external_id": "rtl-1", "received_at": at(50 * MIN),
            "raw": {"channel": "email", "from": "خالد العتيبي <k.alotaibi@najd.example>",
                    "subject": "שלום – בקשה להחזר כספי",
                    "body": "مرحبا، لم تصل الشحنة منذ أسبوع.\nשלום, המשלוח לא הגיע.\nPlease refund order 4471."},
            "ai": {"summary": "Customer (Arabic/Hebrew) reports a shipment a week late and asks for a refund.",
                   "intent": "complaint", "priority": "urgent", "confidence": 0.55,
                   "recommended_next_step": "Check carrier scan history for order 4471; offer refund.",
                   "escalation_reason": "Refund demand on a late enterprise shipment",
                   "missing_info": ["order date"],
                   "draft_reply": "مرحبا خالد،\nWe are sorry your shipment is late. We are checking with the carrier.",
                   "model": "triage-llm-2", "prompt_version": "v7"}}),
        json!({"source": "webform", "external_id": "esc-2", "received_at": at(3 * 60 * MIN),
            "raw": {"channel": "email", "from": "Mallory <m@evil.example>",
                    "subject": "Invoice \u{1b}[31mOVERDUE\u{1b}[0m \u{202e}txt.exe",
                    "body": "Click \u{1b}]8;;https://evil.example\u{7}here\u{1b}]8;;\u{7} to pay.\r\nBell\u{7} and \u{1b}[2J clear."},
            "ai": {"summary": "Suspicious invoice with terminal escapes", "intent": "refund",
                   "priority": "asap", "confidence": 1.3,
                   "recommended_next_step": "Treat as phishing", "model": "triage-llm-2", "prompt_version": "v7"}}),
        json!({"source": "gmail", "external_id": "cjk-3", "received_at": at(90 * MIN),
            "raw": {"channel": "email", "from": "山田 太郎 <yamada@example.jp>",
                    "subject": "請求書の再発行について（至急）",
                    "body": "いつもお世話になっております。\n先月の請求書を再発行していただけますか。\n宛名は「株式会社山田運輸」でお願いします。"},
            "ai": {"summary": "Asks for last month's invoice to be reissued to 株式会社山田運輸.",
                   "intent": "billing_question", "priority": "high", "confidence": 0.82,
                   "recommended_next_step": "Reissue the October invoice with the new company name.",
                   "draft_reply": "山田様\n\n請求書を再発行いたしました。", "model": "triage-llm-2", "prompt_version": "v7"}}),
        json!({"source": "chat", "external_id": "zwj-4", "received_at": at(20 * MIN),
            "raw": {"channel": "chat", "from": "Family 👩‍👩‍👧‍👦 Travel <fam@example.com>",
                    "subject": "Group booking 👨‍👩‍👧 + 🏳️‍🌈 parade float",
                    "body": "Hi! We'd like a quote for 12 vans 🚐🚐 for the parade 🏳️‍🌈.\nThanks 👍🏽"},
            "ai": {"summary": "Quote request for 12 vans for a parade.", "intent": "sales_lead",
                   "priority": "Normal", "confidence": 0.91,
                   "recommended_next_step": "Send the group rate sheet.",
                   "crm_update_required": true, "human_review_required": false,
                   "draft_reply": "Hello!\n\nThanks for reaching out. A quote for 12 vans is attached.",
                   "model": "triage-llm-2", "prompt_version": "v7"}}),
        json!({"source": "webform", "external_id": "form-5", "received_at": at(26 * 60 * MIN),
            "raw": {"channel": "form", "from": "Ola Nordmann <ola@fjord.example>",
                    "subject": "Support: driver app login",
                    "body": "The driver app logs me out every morning.",
                    "fields": {"account": "ACME-42", "drivers": 17, "plan": "fleet"}},
            "ai": {"summary": "Driver app logs the user out daily.", "intent": "support_request",
                   "priority": "low", "confidence": 0.97,
                   "recommended_next_step": "Send the token-refresh fix article.",
                   "model": "triage-llm-2", "prompt_version": "v7"}}),
        json!({"source": "sms", "external_id": "min-6", "received_at": at(5 * MIN),
            "raw": {"channel": "sms", "from": "+47 555 01 234", "body": "call me back pls"},
            "ai": {"summary": "Asks for a call back", "intent": "other", "priority": "normal",
                   "recommended_next_step": "Call back", "crm_update_required": false,
                   "human_review_required": true}}),
    ]
}

pub fn policy() -> Arc<Policy> {
    Arc::new(Policy::default())
}

pub fn app_with(width: u16, height: u16, color: ColorMode) -> App {
    let (keymap, issues) = Keymap::build(&Default::default());
    assert!(issues.is_empty(), "{issues:?}");
    App::new(AppInit {
        policy: policy(),
        reviewer: "ana".into(),
        read_only: false,
        location: "/srv/signoff/queue.db".into(),
        actions_mode: "sandbox".into(),
        theme: Theme::load("dark", None, color).expect("dark theme"),
        keymap,
        now: NOW,
        width,
        height,
    })
}

pub fn app(width: u16, height: u16) -> App {
    app_with(width, height, ColorMode::Ansi16)
}

fn millis(rfc3339: &str) -> Millis {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(NOW)
}

/// An item as the queue would return it, without a queue (for pure `update` tests).
pub fn detail(id: i64, v: &Value) -> ItemDetail {
    let req = Request::from_value(v).expect("fixture");
    let flags = validate(&req, &Policy::default());
    let payload = v.to_string();
    let summary = ItemSummary {
        decided: None,
        id,
        source: req.source.clone(),
        external_id: req.external_id.clone(),
        state: State::Pending,
        revision: 1,
        intent: req.ai.intent.clone(),
        // As the store lists it: the priority as the policy reads it.
        priority: req
            .ai
            .priority
            .as_deref()
            .map(|p| Policy::default().priority_as_read(p).to_string()),
        confidence: req.ai.confidence.value(),
        confidence_invalid: match &req.ai.confidence {
            signoff::model::Confidence::Invalid(s) => Some(s.clone()),
            _ => None,
        },
        channel: req.raw.channel.clone(),
        sender: req.raw.from.clone(),
        subject: req.raw.subject.clone(),
        summary: req.ai.summary.clone(),
        received_at: millis(req.received_at.as_deref().unwrap_or("")),
        ai_escalation: req.ai.escalation_reason.is_some() || !flags.is_empty(),
        flag_count: flags.len() as u32,
        hidden_chars: signoff::text::has_hidden(&payload),
        edited: false,
        sample: false,
        claimed_by: None,
        lease_expires: None,
    };
    ItemDetail {
        summary,
        fields: FieldValues::read_from_ai(&req.ai, &Policy::default()),
        confidence: req.ai.confidence.clone(),
        payload,
        request: req,
        flags,
        edits: vec![],
        decision: None,
        actions: vec![],
        fence: 1,
    }
}

/// An app with the fixtures loaded as a page, with details, as after start-up.
pub fn loaded_app(width: u16, height: u16) -> App {
    let mut a = app(width, height);
    let fx = init(&mut a);
    let generation = fx
        .iter()
        .find_map(|e| match e {
            Effect::LoadPage { generation, .. } => Some(*generation),
            _ => None,
        })
        .expect("init loads a page");
    let details: Vec<ItemDetail> = fixtures()
        .iter()
        .enumerate()
        .map(|(i, v)| detail(i as i64 + 1, v))
        .collect();
    let page = Page {
        items: details.iter().map(|d| d.summary.clone()).collect(),
        total: details.len() as u64,
        offset: 0,
    };
    update(
        &mut a,
        Action::Loaded(Loaded::Page {
            generation,
            result: Ok(page),
        }),
    );
    update(
        &mut a,
        Action::Loaded(Loaded::Details(
            details.into_iter().map(|d| (d.summary.id, Ok(d))).collect(),
        )),
    );
    update(
        &mut a,
        Action::Loaded(Loaded::Counts(Ok(signoff::queue::Counts {
            pending: 6,
            in_review: 0,
            approved: 0,
            rejected: 0,
            escalated: 0,
            oldest_open: Some(NOW - 26 * 60 * MIN),
            sla_breaches: 2,
            actions_paused: false,
        }))),
    );
    a
}

pub fn render_buffer(app: &App) -> Buffer {
    let backend = TestBackend::new(app.width, app.height);
    let mut t = Terminal::new(backend).expect("test terminal");
    t.draw(|f| signoff::tui::view::draw(app, f)).expect("draw");
    t.backend().buffer().clone()
}

/// The screen as text, one line per row.
pub fn render(app: &App) -> String {
    let b = render_buffer(app);
    let mut out = String::new();
    for y in 0..b.area.height {
        let mut line = String::new();
        let mut skip = 0usize;
        for x in 0..b.area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = b[(x, y)].symbol();
            line.push_str(sym);
            skip = signoff::text::width(sym).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Store options with the store's clock pinned at the tests' [`NOW`].
pub fn store_options() -> StoreOptions {
    StoreOptions {
        clock: signoff::clock::Clock::fixed(NOW),
        ..StoreOptions::default()
    }
}

/// A seeded database in a temp dir.
pub struct Db {
    pub dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
}

pub fn seeded_db() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let mut store = Store::open(&path, policy(), &store_options()).expect("open");
    let items: Vec<IngestItem> = fixtures()
        .into_iter()
        .map(|v| {
            let r = Request::from_value(&v).expect("fixture");
            IngestItem::new(v.to_string(), v, r, "fixture:1".into())
        })
        .collect();
    store.ingest_batch(&items, "test").expect("ingest");
    Db { dir, path }
}

/// Runs the app against a real queue with no terminal: effects run to completion and their
/// results are fed back; the queue's clock is the tests' [`NOW`].
pub struct Headless {
    pub app: App,
    pub queue: Arc<dyn Queue>,
    pub quit: bool,
    pub editor_requests: Vec<String>,
}

impl Headless {
    pub async fn new(db: &Db, width: u16, height: u16) -> Headless {
        Headless::open(db, width, height, false).await
    }

    /// With the actions renderer of the default (sandbox) actions config, so the preview
    /// shows the requests approval would store.
    pub async fn with_renderer(db: &Db, width: u16, height: u16) -> Headless {
        Headless::open(db, width, height, true).await
    }

    async fn open(db: &Db, width: u16, height: u16, render: bool) -> Headless {
        let mut q = LocalQueue::open(&db.path, policy(), &store_options()).expect("queue");
        if render {
            let cfg = signoff::actions::ActionsConfig::default();
            q = q.with_renderer(signoff::actions::renderer(&cfg, policy()).expect("renderer"));
        }
        let queue: Arc<dyn Queue> = Arc::new(q);
        let mut h = Headless {
            app: app(width, height),
            queue,
            quit: false,
            editor_requests: Vec::new(),
        };
        h.app.location = "/srv/signoff/queue.db".into();
        let fx = init(&mut h.app);
        h.run_effects(fx).await;
        h.drawn();
        h
    }

    /// Each action and what it set off, then a frame: as the event loop draws once the
    /// queue's answers are in.
    pub async fn send(&mut self, a: Action) {
        let fx = update(&mut self.app, a);
        self.run_effects(fx).await;
        self.drawn();
    }

    /// An action handled with no frame drawn after it: the next key arrives in the same
    /// batch of input, before the reviewer could see what it changed.
    pub async fn send_unseen(&mut self, a: Action) {
        let fx = update(&mut self.app, a);
        self.run_effects(fx).await;
    }

    /// A frame of the current state is on screen: decision keys act on what it shows.
    pub fn drawn(&mut self) {
        self.app.shown = signoff::tui::view::shown_item(&self.app);
    }

    pub async fn keys(&mut self, keys: &str) {
        for k in parse_keys(keys) {
            self.send(Action::Key(k)).await;
        }
    }

    async fn run_effects(&mut self, fx: Vec<Effect>) {
        let mut queue_fx: std::collections::VecDeque<Effect> = fx.into();
        while let Some(e) = queue_fx.pop_front() {
            let loaded = match e {
                Effect::OpenEditor(_, text) => {
                    self.editor_requests.push(text);
                    continue;
                }
                Effect::Quit => {
                    self.quit = true;
                    continue;
                }
                other => {
                    match signoff::tui::effects::perform(
                        self.queue.as_ref(),
                        &self.app.reviewer,
                        other,
                    )
                    .await
                    {
                        Some(l) => l,
                        None => continue,
                    }
                }
            };
            let more = update(&mut self.app, Action::Loaded(loaded));
            queue_fx.extend(more);
        }
    }

    pub fn screen(&self) -> String {
        render(&self.app)
    }
}

/// `"j j enter a"`, `"ctrl-d"`, `"esc"`: keys separated by spaces (`space` for ' ').
pub fn parse_keys(s: &str) -> Vec<crossterm::event::KeyEvent> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    s.split_whitespace()
        .map(|k| {
            let key = signoff::tui::keymap::Key::parse(k).expect("key");
            let mods = if matches!(key.code, KeyCode::Char(c) if c.is_ascii_uppercase()) {
                key.mods | KeyModifiers::SHIFT
            } else {
                key.mods
            };
            KeyEvent::new(key.code, mods)
        })
        .collect()
}

/// Typing text into a focused field.
pub fn type_text(s: &str) -> Vec<Action> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    s.chars()
        .map(|c| Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)))
        .collect()
}

/// Statistics as the queue would return them, with a volume alert and hostile names.
pub fn stats() -> signoff::stats::Stats {
    use signoff::stats::*;
    let mut per_hour: Vec<u64> = (0..24).map(|h| [4, 6, 5, 7, 3, 6][h % 6]).collect();
    per_hour[22] = 19;
    per_hour[23] = 48;
    let mut esc: Vec<u64> = (0..24).map(|h| [0, 1, 0, 2][h % 4]).collect();
    esc[23] = 7;
    Stats {
        now: NOW,
        since: None,
        queue: signoff::queue::Counts {
            pending: 42,
            in_review: 3,
            approved: 120,
            rejected: 31,
            escalated: 9,
            oldest_open: Some(NOW - 26 * 60 * MIN),
            sla_breaches: 2,
            actions_paused: false,
        },
        open_age: Some(Percentiles {
            p50: 12 * MIN,
            p90: 95 * MIN,
            p99: 20 * 60 * MIN,
            max: 26 * 60 * MIN,
        }),
        decisions: Decisions {
            total: 160,
            approved: 120,
            rejected: 31,
            escalated: 9,
            undone: 4,
        },
        reviewers: vec![
            ReviewerStats {
                reviewer: "ana".into(),
                decisions: 97,
                median_handle_ms: Some(48_000),
            },
            ReviewerStats {
                reviewer: "bo\u{1b}[31mb 山田".into(),
                decisions: 63,
                median_handle_ms: Some(3 * MIN + 5_000),
            },
        ],
        reject_reasons: vec![
            ("wrong_intent".into(), 14),
            ("spam".into(), 9),
            ("duplicate".into(), 5),
            ("needs_info \u{202e}cba".into(), 3),
        ],
        escalation_queues: vec![("legal".into(), 6), ("billing".into(), 3)],
        edits: vec![
            FieldEdits {
                field: "summary".into(),
                edited: 22,
                rate: 0.1375,
            },
            FieldEdits {
                field: "draft_reply".into(),
                edited: 41,
                rate: 0.25625,
            },
        ],
        agreement: vec![
            Bucket {
                bucket: "0.9–1.0".into(),
                decided: 80,
                agreed: 74,
                rate: 0.925,
            },
            Bucket {
                bucket: "0.7–0.9".into(),
                decided: 50,
                agreed: 38,
                rate: 0.76,
            },
            Bucket {
                bucket: "0.0–0.7".into(),
                decided: 25,
                agreed: 11,
                rate: 0.44,
            },
            Bucket {
                bucket: "unknown".into(),
                decided: 5,
                agreed: 1,
                rate: 0.2,
            },
        ],
        volume: Volume {
            per_hour,
            baseline_per_hour: 5.5,
            escalations_per_hour: esc,
            alert: Some("48 requests this hour, 8.7× the baseline of 5.5/h".into()),
        },
        actions: vec![
            ProviderStats {
                action: "crm".into(),
                total: 120,
                sent: 116,
                dead: 2,
                pending: 2,
                sandbox: 0,
                cancelled: 0,
                success_rate: 116.0 / 118.0,
                dead_rate: 2.0 / 118.0,
            },
            ProviderStats {
                action: "gmail".into(),
                total: 60,
                sent: 51,
                dead: 6,
                pending: 1,
                sandbox: 0,
                cancelled: 2,
                success_rate: 51.0 / 57.0,
                dead_rate: 6.0 / 57.0,
            },
        ],
        outcomes: vec![
            OutcomeCount {
                intent: "sales_lead".into(),
                outcome: "won".into(),
                count: 7,
            },
            OutcomeCount {
                intent: "sales_lead".into(),
                outcome: "lost".into(),
                count: 4,
            },
        ],
        ..Default::default()
    }
}
