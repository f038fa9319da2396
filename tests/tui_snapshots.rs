//! Whole-screen snapshots through ratatui's TestBackend, driven headless over a real
//! SQLite queue seeded with hostile fixtures (CJK, emoji ZWJ, RTL, escape sequences).
mod tui_common;

use ratatui::style::{Color, Modifier};
use signoff::tui::action::Action;
use signoff::tui::app::Mode;
use signoff::tui::theme::ColorMode;
use tui_common::*;

async fn at(width: u16, height: u16) -> (Db, Headless) {
    let db = seeded_db();
    let h = Headless::new(&db, width, height).await;
    (db, h)
}

fn assert_no_control_chars(screen: &str) {
    for c in screen.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "control character {c:?} reached the screen"
        );
    }
}

#[tokio::test]
async fn list_80x24() {
    let (_db, h) = at(80, 24).await;
    let s = h.screen();
    assert_no_control_chars(&s);
    insta::assert_snapshot!(s);
}

#[tokio::test]
async fn list_120x40() {
    let (_db, h) = at(120, 40).await;
    let s = h.screen();
    assert_no_control_chars(&s);
    insta::assert_snapshot!(s);
}

#[tokio::test]
async fn review_escapes_120x40() {
    let (_db, mut h) = at(120, 40).await;
    // The item with escape sequences sorts first (its priority is not allowed).
    h.keys("enter").await;
    assert_eq!(h.app.mode, Mode::Review);
    let s = h.screen();
    assert_no_control_chars(&s);
    assert!(s.contains("␛[31mOVERDUE"), "{s}");
    assert!(s.contains("hidden characters"), "{s}");
    insta::assert_snapshot!(s);
}

#[tokio::test]
async fn review_rtl_80x24() {
    let (_db, mut h) = at(80, 24).await;
    h.keys("j enter").await;
    let s = h.screen();
    assert_no_control_chars(&s);
    insta::assert_snapshot!(s);
}

#[tokio::test]
async fn review_cjk_and_zwj_120x40() {
    let (_db, mut h) = at(120, 40).await;
    h.keys("j j enter").await;
    let cjk = h.screen();
    h.keys("esc G k enter").await;
    let zwj = h.screen();
    insta::assert_snapshot!("review_cjk_120x40", cjk);
    insta::assert_snapshot!("review_zwj_120x40", zwj);
}

#[tokio::test]
async fn edit_form_diff_and_preview_120x40() {
    let db = seeded_db();
    let mut h = Headless::with_renderer(&db, 120, 40).await;
    h.keys("j j e").await;
    assert_eq!(h.app.mode, Mode::Edit);
    for a in type_text("Reissue: ") {
        h.send(a).await;
    }
    h.keys("tab right tab tab").await;
    let form = h.screen();
    h.keys("esc d").await;
    let diff = h.screen();
    h.keys("esc p").await;
    let preview = h.screen();
    insta::assert_snapshot!("edit_form_120x40", form);
    insta::assert_snapshot!("diff_120x40", diff);
    insta::assert_snapshot!("preview_120x40", preview);
}

#[tokio::test]
async fn edit_form_80x24_with_an_error() {
    let (_db, mut h) = at(80, 24).await;
    h.keys("enter e ctrl-a ctrl-k ctrl-k ctrl-s").await;
    let s = h.screen();
    assert!(s.contains("summary is missing"), "{s}");
    insta::assert_snapshot!(s);
}

#[tokio::test]
async fn reject_picker_and_help_80x24() {
    let (_db, mut h) = at(80, 24).await;
    h.keys("r").await;
    let reject = h.screen();
    h.keys("esc ?").await;
    let help = h.screen();
    for a in type_text("pa") {
        h.send(a).await;
    }
    let filtered = h.screen();
    insta::assert_snapshot!("reject_80x24", reject);
    insta::assert_snapshot!("help_80x24", help);
    insta::assert_snapshot!("help_filtered_80x24", filtered);
}

#[tokio::test]
async fn filter_line_and_empty_result_80x24() {
    let (_db, mut h) = at(80, 24).await;
    h.keys("f").await;
    for a in type_text("p:low c>=0.9") {
        h.send(a).await;
    }
    let typing = h.screen();
    h.keys("enter").await;
    let one = h.screen();
    h.keys("f ctrl-u").await;
    for a in type_text("nothing-matches-this") {
        h.send(a).await;
    }
    h.keys("enter").await;
    let none = h.screen();
    insta::assert_snapshot!("filter_typing_80x24", typing);
    insta::assert_snapshot!("filter_one_80x24", one);
    insta::assert_snapshot!("filter_none_80x24", none);
}

#[tokio::test]
async fn after_approve_and_reject_120x40() {
    let (_db, mut h) = at(120, 40).await;
    h.keys("a").await;
    h.keys("r 1").await;
    let s = h.screen();
    assert!(s.contains("rejected #"), "{s}");
    insta::assert_snapshot!(s);
    h.keys("L").await;
    insta::assert_snapshot!("timeline_120x40", h.screen());
}

#[tokio::test]
async fn tiny_sizes_do_not_panic() {
    let (_db, mut h) = at(20, 5).await;
    insta::assert_snapshot!("tiny_20x5", h.screen());
    for (w, hgt) in [
        (1, 1),
        (0, 0),
        (39, 9),
        (40, 10),
        (41, 14),
        (60, 17),
        (99, 30),
        (250, 80),
    ] {
        h.send(Action::Resize(w, hgt)).await;
        for k in [
            "enter", "e", "tab", "esc", "d", "esc", "p", "esc", "?", "esc", "r", "esc", "esc",
        ] {
            h.keys(k).await;
            let _ = h.screen();
        }
    }
    h.send(Action::Resize(1, 1)).await;
    assert_eq!(h.screen(), "…\n");
}

#[tokio::test]
async fn no_color_keeps_the_selection_visible() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 80, 24).await;
    h.app.theme = signoff::tui::theme::Theme::load("dark", None, ColorMode::None).unwrap();
    let b = render_buffer(&h.app);
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            let c = &b[(x, y)];
            assert!(
                matches!(c.fg, Color::Reset) && matches!(c.bg, Color::Reset),
                "colour at {x},{y}"
            );
        }
    }
    // Row 1 holds the column headers; row 2 is the selected row: marked and reversed.
    assert_eq!(b[(1, 2)].symbol(), "▶");
    assert!(b[(5, 2)].modifier.contains(Modifier::REVERSED));
    assert!(!b[(5, 3)].modifier.contains(Modifier::REVERSED));
}

/// Colour carries meaning here (selection, priority, confidence band, SLA): the buffer's
/// debug form keeps styles, which a plain text snapshot drops.
#[tokio::test]
async fn list_colours_debug_buffer() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 80, 12).await;
    h.keys("j").await;
    let b = render_buffer(&h.app);
    insta::assert_debug_snapshot!(b);
}

#[test]
fn stats_120x40() {
    let mut a = loaded_app(120, 40);
    update_keys(&mut a, "S");
    signoff::tui::update::update(
        &mut a,
        Action::Loaded(signoff::tui::action::Loaded::Stats(Box::new(Ok(stats())))),
    );
    let s = render(&a);
    assert_no_control_chars(&s);
    insta::assert_snapshot!(s);
}

#[test]
fn stats_scrolled_120x40() {
    let mut a = loaded_app(120, 40);
    update_keys(&mut a, "S");
    signoff::tui::update::update(
        &mut a,
        Action::Loaded(signoff::tui::action::Loaded::Stats(Box::new(Ok(stats())))),
    );
    update_keys(&mut a, "G");
    let s = render(&a);
    assert_no_control_chars(&s);
    insta::assert_snapshot!(s);
}

#[test]
fn action_states_120x40() {
    use signoff::model::{ActionKind, DecisionKind, State};
    use signoff::queue::{ActionStatus, DecisionRecord};
    let mut a = loaded_app(120, 40);
    let d = a.details.get_mut(&1).expect("detail 1");
    d.summary.state = State::Approved;
    d.summary.sample = true;
    d.decision = Some(DecisionRecord {
        id: 1,
        kind: DecisionKind::Approve,
        note: None,
        reviewer: "ana".into(),
        at: NOW - 60_000,
        undo_until: NOW - 30_000,
        undone: false,
    });
    let st = |id, action, status: &str, attempts, next, err: Option<&str>, resp: Option<&str>| {
        ActionStatus {
            id,
            action,
            idempotency_key: format!("k-{id}"),
            status: status.into(),
            attempts,
            next_attempt_at: next,
            last_error: err.map(Into::into),
            response: resp.map(Into::into),
        }
    };
    d.actions = vec![
        st(
            10,
            ActionKind::Crm,
            "sent",
            1,
            None,
            None,
            Some(r#"{"item_id":"98","update_id":"99"}"#),
        ),
        st(
            11,
            ActionKind::Slack,
            "retrying",
            3,
            Some(NOW + 305_000),
            Some("429 ratelimited"),
            None,
        ),
        st(
            12,
            ActionKind::Gmail,
            "dead",
            5,
            None,
            Some("invalid_grant: re-authorize \u{1b}[2J"),
            None,
        ),
        st(
            13,
            ActionKind::Crm,
            "sandbox",
            0,
            None,
            None,
            Some(r#"{"sandbox":"actions.mode = sandbox"}"#),
        ),
    ];
    a.list.page.items[0].sample = true;
    let mut c = a.counts.clone().expect("counts");
    c.actions_paused = true;
    signoff::tui::update::update(
        &mut a,
        Action::Loaded(signoff::tui::action::Loaded::Counts(Ok(c))),
    );
    let s = render(&a);
    assert_no_control_chars(&s);
    assert!(s.contains("PAUSED"), "{s}");
    insta::assert_snapshot!(s);
    // Colour carries the meaning: the dead state is drawn in the error colour.
    let b = render_buffer(&a);
    let (x, y) = find(&b, "dead").expect("dead on screen");
    assert_eq!(b[(x, y)].fg, a.theme.error.fg.unwrap_or(Color::Reset));
}

fn update_keys(a: &mut signoff::tui::app::App, keys: &str) {
    for k in parse_keys(keys) {
        signoff::tui::update::update(a, Action::Key(k));
    }
}

fn find(b: &ratatui::buffer::Buffer, needle: &str) -> Option<(u16, u16)> {
    for y in 0..b.area.height {
        let row: Vec<&str> = (0..b.area.width).map(|x| b[(x, y)].symbol()).collect();
        for x in 0..row.len() {
            if row[x..]
                .iter()
                .take(needle.len())
                .copied()
                .collect::<String>()
                == needle
            {
                return Some((x as u16, y));
            }
        }
    }
    None
}

#[tokio::test]
async fn kill_switch_and_outcome_against_a_real_queue() {
    let (_db, mut h) = at(120, 40).await;
    h.keys("K y").await;
    assert_eq!(h.queue.actions_paused().await.ok(), Some(true));
    assert!(h.screen().contains(" PAUSED "), "{}", h.screen());
    h.keys("K y").await;
    assert_eq!(h.queue.actions_paused().await.ok(), Some(false));
    assert!(!h.screen().contains(" PAUSED "));
    // Approve the first item, list decided items, record an outcome on it.
    h.keys("j a").await;
    let (m, _) = h.app.message.clone().expect("message");
    assert!(m.starts_with("approved"), "{m}");
    h.keys("D").await;
    assert!(h.screen().contains("Decided · 1"), "{}", h.screen());
    h.keys("O 5").await;
    let (m, _) = h.app.message.clone().expect("message");
    assert!(m.contains("outcome 'won' recorded"), "{m}");
    // Stats come from the same queue and count it.
    h.keys("S G").await;
    assert!(h.screen().contains("won 1"), "{}", h.screen());
}

/// A hostile request with a 2 MB one-line body and a 200 KB AI summary: the detail shows
/// the start of each (only what the screen holds is sanitised and wrapped), and says
/// where the summary stops.
#[test]
fn huge_texts_show_their_start_and_where_a_field_stops() {
    use signoff::queue::Page;
    use signoff::tui::action::{Effect, Loaded};
    use signoff::tui::update::{init, update};
    let mut a = app(120, 40);
    let generation = init(&mut a)
        .iter()
        .find_map(|e| match e {
            Effect::LoadPage { generation, .. } => Some(*generation),
            _ => None,
        })
        .expect("init loads a page");
    let body = format!("BEGIN {}", "A".repeat(2_000_000));
    let summary = format!("START {}", "x".repeat(200_000));
    let v = serde_json::json!({
        "source": "h", "external_id": "big", "received_at": "2026-11-20T10:00:00Z",
        "raw": {"body": body, "subject": "huge"},
        "ai": {"summary": summary, "intent": "sales_lead", "priority": "normal", "confidence": 0.5}
    });
    let d = detail(1, &v);
    let page = Page {
        items: vec![d.summary.clone()],
        total: 1,
        offset: 0,
    };
    update(
        &mut a,
        Action::Loaded(Loaded::Page {
            generation,
            result: Ok(page),
        }),
    );
    update(&mut a, Action::Loaded(Loaded::Details(vec![(1, Ok(d))])));
    let screen = render(&a);
    assert!(screen.contains("BEGIN AAAA"), "{screen}");
    assert!(screen.contains("START xxxx"), "{screen}");
    // Scrolled to its end, the AI pane says what it left out.
    a.ai_scroll = u16::MAX;
    let screen = render(&a);
    assert!(
        screen.contains(&format!("{} more bytes not shown", 200_006 - 16 * 1024)),
        "{screen}"
    );
}

#[tokio::test]
async fn bulk_reject_confirmation_80x24() {
    let (_db, mut h) = at(80, 24).await;
    h.keys("g g v v v r 1").await;
    let s = h.screen();
    assert!(s.contains("reject 3 items as"), "{s}");
    insta::assert_snapshot!("bulk_confirm_80x24", s);
}

#[tokio::test]
async fn no_color_marks_the_focused_pane_in_its_title() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    h.app.theme = signoff::tui::theme::Theme::load("dark", None, ColorMode::None).unwrap();
    let first = |s: &str, needle: &str| {
        s.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_string()
    };
    let s = h.screen();
    assert!(first(&s, "Queue ·").contains("● Queue"), "{s}");
    h.keys("enter").await;
    let s = h.screen();
    assert!(!first(&s, "Queue ·").contains("●"), "{s}");
    let line = first(&s, "AI triage");
    assert!(
        line.contains("● AI triage") && !line.contains("● Request"),
        "{line}"
    );
    h.keys("tab").await;
    let line = first(&h.screen(), "AI triage");
    assert!(
        line.contains("● Request") && !line.contains("● AI triage"),
        "{line}"
    );
    // With colours the border says it, and the title carries no mark.
    h.app.theme = signoff::tui::theme::Theme::load("dark", None, ColorMode::Ansi16).unwrap();
    assert!(!h.screen().contains('●'));
}

/// The stats screen with a signed-off validation to compare the weeks with, a drift
/// warning, and two prompt versions side by side (hostile names included).
#[test]
fn stats_drift_and_prompts_120x70() {
    use signoff::stats::*;
    let mut st = stats();
    let week: i64 = 7 * 24 * 3_600_000;
    st.drift = Drift {
        weeks: (0..8)
            .map(|k| Week {
                start: NOW - (8 - k) * week,
                volume: 300 + k as u64 * 10,
                decided: 290,
                agreed: if k == 7 { 232 } else { 270 },
                agreement: if k == 7 { 0.8 } else { 270.0 / 290.0 },
                escalated: 9,
                escalation_rate: 9.0 / 290.0,
            })
            .collect(),
        baseline: Some(Baseline {
            validation: 812,
            signed_by: "dana".into(),
            at: NOW - 9 * week,
            input: "history-\u{1b}[2J.jsonl".into(),
            agreement: 0.93,
            escalation_rate: 0.03,
            cases_per_week: Some(310.0),
            buckets: vec![Bucket {
                bucket: "0.9–1.0".into(),
                decided: 3000,
                agreed: 2970,
                rate: 0.99,
            }],
            tolerance: 0.05,
            min_cases: 20,
        }),
        recent: vec![Bucket {
            bucket: "0.9–1.0".into(),
            decided: 120,
            agreed: 101,
            rate: 101.0 / 120.0,
        }],
        warnings: vec![
            "agreement at confidence 0.9–1.0 is 84% over the last 7 days (101 of 120), below the validated 99% (tolerance 5 points)".into(),
        ],
    };
    let group = |value: &str, agreement: f64, intent_rate: f64| GroupStats {
        value: value.into(),
        items: 150,
        decided: 140,
        edits: [
            "summary",
            "intent",
            "priority",
            "recommended_next_step",
            "draft_reply",
        ]
        .iter()
        .map(|f| FieldEdits {
            field: f.to_string(),
            edited: 0,
            rate: if *f == "intent" { intent_rate } else { 0.1 },
        })
        .collect(),
        agreement,
        approved: 120,
        rejected: 10,
        escalated: 10,
        escalation_rate: 10.0 / 140.0,
        outcomes: vec![("won".into(), 3)],
    };
    st.by_prompt_version = vec![
        group("triage-v6", 0.91, 0.05),
        group("triage-v7\u{202e}", 0.78, 0.2),
    ];
    let mut a = loaded_app(120, 70);
    update_keys(&mut a, "S");
    signoff::tui::update::update(
        &mut a,
        Action::Loaded(signoff::tui::action::Loaded::Stats(Box::new(Ok(st)))),
    );
    let s = render(&a);
    assert_no_control_chars(&s);
    assert!(
        s.contains("⚠ agreement at confidence 0.9–1.0 is 84%"),
        "{s}"
    );
    insta::assert_snapshot!(s);
}
