//! Pure `update` tests: every action, no terminal, no queue. And headless runs over a
//! real SQLite queue where the race is between the screen and other writers (an ingest,
//! another reviewer): the console acts only on the item it shows.
mod tui_common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use signoff::model::ActionKind;
use signoff::model::{DecisionKind, EditableField, State};
use signoff::queue::{
    ActionPreview, ActionStatus, Claim, Decision, DecisionRecord, LocalQueue, Queue, QueueError,
    Receipt,
};
use signoff::tui::action::{Action, Cmd, Effect, Loaded, Pane};
use signoff::tui::app::{App, FieldInput, Level, Mode};
use signoff::tui::update::{SAVE_DEBOUNCE_MS, update};
use tui_common::*;

fn claim(id: i64) -> Claim {
    Claim {
        id,
        reviewer: "ana".into(),
        fence: 7,
        lease_expires: NOW + 300_000,
    }
}

/// Keys typed one at a time, each after a frame of the state before it.
fn key(app: &mut App, k: &str) -> Vec<Effect> {
    let mut fx = Vec::new();
    for ev in parse_keys(k) {
        app.shown = signoff::tui::view::shown_item(app);
        fx.extend(update(app, Action::Key(ev)));
    }
    fx
}

/// The app with item #1 open and claimed.
fn opened() -> App {
    let mut a = loaded_app(120, 40);
    let fx = key(&mut a, "enter");
    assert_eq!(fx, vec![Effect::Claim(1)]);
    update(&mut a, Action::Loaded(Loaded::Claimed(1, Ok(claim(1)))));
    assert_eq!(a.mode, Mode::Review);
    a
}

fn decided(id: i64, state: State) -> Loaded {
    Loaded::Decided {
        id,
        verb: match state {
            State::Approved => "approve",
            State::Rejected => "reject",
            _ => "escalate",
        },
        result: Ok(Receipt {
            decision_id: 1,
            id,
            state,
            actions: vec![],
            skipped: vec![],
            undo_until: NOW + 30_000,
        }),
    }
}

#[test]
fn moves_keep_the_selection_in_range() {
    let mut a = loaded_app(120, 40);
    assert_eq!(a.list.selected, 0);
    key(&mut a, "j");
    assert_eq!(a.list.selected, 1);
    key(&mut a, "down down");
    assert_eq!(a.list.selected, 3);
    key(&mut a, "k");
    assert_eq!(a.list.selected, 2);
    key(&mut a, "up up up up");
    assert_eq!(a.list.selected, 0);
    key(&mut a, "G");
    assert_eq!(a.list.selected, 5);
    key(&mut a, "j");
    assert_eq!(a.list.selected, 5, "no wrap past the end");
    assert!(!a.dirty, "a move that moves nothing draws nothing");
    key(&mut a, "g g");
    assert_eq!(a.list.selected, 0);
    key(&mut a, "end");
    assert_eq!(a.list.selected, 5);
    key(&mut a, "home");
    assert_eq!(a.list.selected, 0);
    key(&mut a, "ctrl-d");
    assert_eq!(
        a.list.selected, 5,
        "half a page of 12 rows is past the 6 items"
    );
    key(&mut a, "ctrl-u");
    assert_eq!(a.list.selected, 0);
    key(&mut a, "pgdn");
    assert_eq!(a.list.selected, 5);
    key(&mut a, "pgup");
    assert_eq!(a.list.selected, 0);
}

#[test]
fn a_pending_g_waits_and_other_keys_still_work() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "j j g");
    assert!(a.pending_key.is_some());
    key(&mut a, "k");
    assert_eq!(a.pending_key, None);
    assert_eq!(a.list.selected, 1, "g then k moves up once");
}

#[test]
fn paging_a_huge_queue_fetches_only_the_window() {
    let mut a = loaded_app(120, 40);
    // Pretend the queue holds a million items: the page only has six.
    a.list.page.total = 1_000_000;
    let fx = key(&mut a, "G");
    assert_eq!(a.list.selected, 999_999);
    let page = fx
        .iter()
        .find_map(|e| match e {
            Effect::LoadPage { query, .. } => Some(query.clone()),
            _ => None,
        })
        .expect("a page request");
    assert!(page.limit <= 1000, "{}", page.limit);
    assert!(page.offset + u64::from(page.limit) >= 999_999);
    assert!(page.offset >= 999_999 - 5 * 40);
    // A page from an older request is dropped.
    let stale = update(
        &mut a,
        Action::Loaded(Loaded::Page {
            generation: 1,
            result: Ok(Default::default()),
        }),
    );
    assert!(stale.is_empty());
    assert_eq!(a.list.page.total, 1_000_000);
}

#[test]
fn switch_pane_cycles_and_scrolls_the_focused_pane() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "tab");
    assert_eq!(a.focus, Pane::Raw);
    key(&mut a, "j j");
    assert_eq!((a.raw_scroll, a.list.selected), (2, 0));
    key(&mut a, "tab");
    assert_eq!(a.focus, Pane::Ai);
    key(&mut a, "j");
    assert_eq!(a.ai_scroll, 1);
    key(&mut a, "tab");
    assert_eq!(a.focus, Pane::List);
}

#[test]
fn open_claims_and_back_releases() {
    let mut a = opened();
    assert_eq!(a.open, Some(1));
    assert_eq!(a.focus, Pane::Ai);
    let fx = key(&mut a, "esc");
    assert!(fx.contains(&Effect::Release(claim(1))), "{fx:?}");
    assert_eq!(a.mode, Mode::List);
    assert_eq!(a.open, None);
    assert_eq!(a.claim, None);
}

#[test]
fn an_item_held_by_someone_else_cannot_be_opened_or_decided() {
    let mut a = loaded_app(120, 40);
    a.list.page.items[0].claimed_by = Some("bob".into());
    a.list.page.items[0].lease_expires = Some(NOW + 125_000);
    for k in ["enter", "a", "r", "x", "e"] {
        let fx = key(&mut a, k);
        assert!(fx.is_empty(), "{k}: {fx:?}");
        let (msg, level) = a.message.clone().expect("a message");
        assert_eq!(level, Level::Warn);
        assert!(msg.contains("bob") && msg.contains("2m05s"), "{k}: {msg}");
        assert_eq!(a.mode, Mode::List);
    }
}

#[test]
fn a_claim_refused_says_who_holds_it() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "enter");
    update(
        &mut a,
        Action::Loaded(Loaded::Claimed(
            1,
            Err(QueueError::HeldBy {
                id: 1,
                reviewer: "bob".into(),
                until: NOW + 60_000,
                now: NOW,
            }),
        )),
    );
    assert_eq!(a.mode, Mode::List);
    assert!(a.message.unwrap().0.contains("bob"));
}

#[test]
fn approve_from_the_list_is_one_key() {
    let mut a = loaded_app(120, 40);
    let fx = key(&mut a, "a");
    assert_eq!(
        fx,
        vec![Effect::Decide {
            id: 1,
            claim: None,
            decision: Decision {
                kind: DecisionKind::Approve,
                revision: Some(1),
                note: None,
                sets: vec![]
            }
        }]
    );
    assert!(
        key(&mut a, "a").is_empty(),
        "no second decision while one is out"
    );
    let fx = update(&mut a, Action::Loaded(decided(1, State::Approved)));
    assert!(fx.contains(&Effect::LoadCounts));
    assert!(a.message.as_ref().unwrap().0.starts_with("approved #1"));
    assert_eq!(a.last_decision.as_ref().map(|d| d.0), Some(1));
}

#[test]
fn approve_an_open_item_uses_its_claim() {
    let mut a = opened();
    let fx = key(&mut a, "a");
    assert!(matches!(&fx[..], [Effect::Decide { id: 1, claim: Some(c), .. }] if c.fence == 7));
    update(&mut a, Action::Loaded(decided(1, State::Approved)));
    assert_eq!((a.mode, a.open, a.claim.clone()), (Mode::List, None, None));
}

#[test]
fn reject_with_a_reason_is_two_keys() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "r");
    assert_eq!(a.mode, Mode::Reject);
    let fx = key(&mut a, "2");
    assert_eq!(
        fx,
        vec![Effect::Decide {
            id: 1,
            claim: None,
            decision: Decision {
                kind: DecisionKind::Reject {
                    reason: "inaccurate_summary".into()
                },
                revision: Some(1),
                note: None,
                sets: vec![]
            }
        }]
    );
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn reject_with_a_note() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "r j j enter");
    assert_eq!(a.mode, Mode::Note);
    for act in type_text("dup of #9") {
        update(&mut a, act);
    }
    update(&mut a, Action::Paste(" (see\nthread)".into()));
    key(&mut a, "backspace");
    let fx = key(&mut a, "enter");
    match &fx[..] {
        [Effect::Decide { decision, .. }] => {
            assert_eq!(
                decision.kind,
                DecisionKind::Reject {
                    reason: "bad_draft".into()
                }
            );
            assert_eq!(decision.note.as_deref(), Some("dup of #9 (see thread"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reject_picker_esc_and_out_of_range() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "r 9");
    assert_eq!(a.mode, Mode::Reject, "8 reasons: 9 picks nothing");
    assert!(a.message.as_ref().unwrap().0.contains("1–8"));
    key(&mut a, "esc");
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn escalate_picks_a_queue() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "x");
    assert_eq!(a.mode, Mode::Escalate);
    key(&mut a, "j");
    let fx = key(&mut a, "enter");
    assert!(matches!(&fx[..], [Effect::Decide { decision, .. }]
        if decision.kind == DecisionKind::Escalate { queue: "billing".into() }));
    let mut a = loaded_app(120, 40);
    let fx = key(&mut a, "x 3");
    assert!(matches!(&fx[..], [Effect::Decide { decision, .. }]
        if decision.kind == DecisionKind::Escalate { queue: "security".into() }));
    update(&mut a, Action::Loaded(decided(1, State::Escalated)));
    assert!(a.message.unwrap().0.starts_with("escalated #1"));
}

#[test]
fn undo_inside_the_window_only() {
    let mut a = loaded_app(120, 40);
    assert!(key(&mut a, "u").is_empty());
    key(&mut a, "a");
    update(&mut a, Action::Loaded(decided(1, State::Approved)));
    assert_eq!(key(&mut a, "u"), vec![Effect::Undo(1)]);
    update(&mut a, Action::Loaded(Loaded::Undone(1, Ok(claim(1)))));
    assert_eq!((a.mode, a.open), (Mode::Review, Some(1)));
    assert!(a.last_decision.is_none());
    // Past the window, u says so.
    let mut a = loaded_app(120, 40);
    key(&mut a, "a");
    update(&mut a, Action::Loaded(decided(1, State::Approved)));
    update(&mut a, Action::Tick(NOW + 31_000));
    assert!(key(&mut a, "u").is_empty());
    assert!(a.message.unwrap().0.contains("undo window"));
}

/// The undo hint goes out when the window closes, not at the next poll: the loop arms one
/// wake-up for the deadline while the hint is shown, and none otherwise.
#[test]
fn the_undo_hint_goes_out_when_the_window_closes() {
    use signoff::tui::event_loop::undo_timer;
    let mut a = loaded_app(120, 40);
    assert_eq!(undo_timer(&a, NOW), None, "no decision, no timer");
    key(&mut a, "a");
    update(&mut a, Action::Loaded(decided(1, State::Approved)));
    let until = a.last_decision.as_ref().map(|d| d.1).unwrap();
    assert_eq!(a.undo_closes_at(), Some(until));
    assert_eq!(
        undo_timer(&a, NOW + 10_000),
        Some(std::time::Duration::from_millis(
            (until - NOW - 10_000) as u64
        ))
    );
    // The colour of the footer's undo key.
    let undo_fg = |a: &App| {
        let b = render_buffer(a);
        let y = b.area.height - 1;
        let footer: String = (0..b.area.width).map(|x| b[(x, y)].symbol()).collect();
        let at = footer.find("u undo").expect("undo in the footer");
        b[(footer[..at].chars().count() as u16, y)].fg
    };
    let muted = a.theme.muted.fg.unwrap_or(ratatui::style::Color::Reset);
    assert_ne!(undo_fg(&a), muted, "undo offered");
    // The wake-up: time passes to the deadline, the frame must be redrawn without undo.
    a.dirty = false;
    update(&mut a, Action::Tick(until));
    assert!(a.dirty, "the closing window redraws");
    assert_eq!(undo_timer(&a, until), None, "no timer once the hint is out");
    assert_eq!(undo_fg(&a), muted, "undo no longer offered");
    // Read-only consoles offer no undo and arm nothing.
    a.read_only = true;
    a.now = NOW;
    assert_eq!(undo_timer(&a, NOW), None);
}

#[test]
fn undo_refused_by_the_queue_is_reported() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "a");
    update(&mut a, Action::Loaded(decided(1, State::Approved)));
    key(&mut a, "u");
    update(
        &mut a,
        Action::Loaded(Loaded::Undone(
            1,
            Err(QueueError::CannotUndo {
                id: 1,
                why: "an action already left".into(),
            }),
        )),
    );
    assert_eq!(a.message.unwrap().1, Level::Error);
}

#[test]
fn a_lost_lease_keeps_the_edits_and_decides_after_a_new_claim() {
    let mut a = opened();
    key(&mut a, "e");
    assert_eq!(a.mode, Mode::Edit);
    for act in type_text("Urgent: ") {
        update(&mut a, act);
    }
    key(&mut a, "esc");
    let fence = a.claim.as_ref().map_or(0, |c| c.fence);
    update(
        &mut a,
        Action::Loaded(Loaded::Heartbeat {
            id: 1,
            fence,
            result: Err(QueueError::LeaseLost {
                id: 1,
                fence: 7,
                holder: Some("bob".into()),
            }),
        }),
    );
    assert_eq!(a.claim, None);
    assert!(a.message.clone().unwrap().0.contains("lease lost"));
    let fx = key(&mut a, "a");
    assert!(
        matches!(
            &fx[..],
            [Effect::Decide {
                id: 1,
                claim: None,
                ..
            }]
        ),
        "{fx:?}"
    );
    update(
        &mut a,
        Action::Loaded(Loaded::Decided {
            id: 1,
            verb: "approve",
            result: Err(QueueError::LeaseLost {
                id: 1,
                fence: 7,
                holder: None,
            }),
        }),
    );
    assert!(a.message.unwrap().0.contains("your edits are kept"));
    assert_eq!(a.open, Some(1), "the item stays on screen");
}

#[test]
fn edit_form_saves_as_it_goes_and_validates_on_submit() {
    let mut a = opened();
    assert!(key(&mut a, "e").is_empty());
    let form = a.form.as_ref().expect("form");
    assert_eq!(form.fields.len(), 6);
    // Summary: type, then the debounce saves it.
    for act in type_text("URGENT ") {
        update(&mut a, act);
    }
    assert!(update(&mut a, Action::Tick(NOW + 100)).is_empty());
    let fx = update(&mut a, Action::Tick(NOW + SAVE_DEBOUNCE_MS + 1));
    match &fx[..] {
        [Effect::SaveEdit(c, EditableField::Summary, Some(v))] => {
            assert_eq!(c.id, 1);
            assert!(v.starts_with("URGENT Customer"), "{v}");
        }
        other => panic!("{other:?}"),
    }
    // Intent: a picker; arrows move through the allowed values and save nothing until
    // the pick is committed (here by leaving the field): one edit, not one per arrow.
    let fx = key(&mut a, "tab");
    assert!(fx.is_empty(), "nothing unsaved");
    assert!(key(&mut a, "right right right").is_empty());
    assert!(key(&mut a, "left left").is_empty());
    // Letters in a picker do nothing; shift-tab goes back and saves the pick once.
    let fx = key(&mut a, "shift-tab");
    assert!(
        matches!(&fx[..], [Effect::SaveEdit(_, EditableField::Intent, Some(v))] if v == "partnership"),
        "{fx:?}"
    );
    assert_eq!(a.form.as_ref().unwrap().focus, 0);
    // Clear the summary: invalid on submit, message beside the field.
    key(&mut a, "ctrl-a");
    for _ in 0..3 {
        key(&mut a, "ctrl-k");
    }
    let fx = key(&mut a, "ctrl-s");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::SaveEdit(_, EditableField::Summary, _))),
        "{fx:?}"
    );
    let form = a.form.as_ref().expect("form stays open");
    assert_eq!(
        form.errors.get(&EditableField::Summary).map(String::as_str),
        Some("summary is missing")
    );
    assert_eq!(a.mode, Mode::Edit);
    // Fix and submit.
    for act in type_text("Refund request") {
        update(&mut a, act);
    }
    let fx = key(&mut a, "ctrl-s");
    assert!(fx.contains(&Effect::LoadDetails(vec![1])), "{fx:?}");
    assert_eq!(a.mode, Mode::Review);
    assert!(a.form.is_none());
}

#[test]
fn edit_from_the_list_claims_first() {
    let mut a = loaded_app(120, 40);
    assert_eq!(key(&mut a, "e"), vec![Effect::Claim(1)]);
    update(&mut a, Action::Loaded(Loaded::Claimed(1, Ok(claim(1)))));
    assert_eq!(a.mode, Mode::Edit);
}

#[test]
fn paste_goes_to_the_focused_text_field_only() {
    let mut a = loaded_app(120, 40);
    update(&mut a, Action::Paste("aaaa".into()));
    assert_eq!(a.list.selected, 0, "pasted letters are not shortcuts");
    assert_eq!(a.mode, Mode::List);
    let mut a = opened();
    key(&mut a, "e");
    update(
        &mut a,
        Action::Paste("line one\r\nline two\u{1b}[31m".into()),
    );
    let f = &a.form.as_ref().unwrap().fields[0];
    let v = f.value().unwrap();
    assert!(v.starts_with("line one\nline two␛[31m"), "{v:?}");
}

#[test]
fn external_editor_for_text_fields() {
    let mut a = opened();
    key(&mut a, "e");
    let fx = key(&mut a, "ctrl-e");
    assert!(
        matches!(&fx[..], [Effect::OpenEditor(EditableField::Summary, t)] if t.starts_with("Customer")),
        "{fx:?}"
    );
    let fx = update(
        &mut a,
        Action::Loaded(Loaded::Editor(
            EditableField::Summary,
            Ok("Rewritten\nin vim\n".into()),
        )),
    );
    assert!(
        matches!(&fx[..], [Effect::SaveEdit(_, EditableField::Summary, Some(v))] if v == "Rewritten\nin vim"),
        "{fx:?}"
    );
    update(
        &mut a,
        Action::Loaded(Loaded::Editor(EditableField::Summary, Err("boom".into()))),
    );
    assert_eq!(a.message.as_ref().unwrap().1, Level::Error);
    // Pickers have no $EDITOR: ctrl-e is not taken there.
    key(&mut a, "tab");
    assert!(matches!(
        a.form.as_ref().unwrap().fields[1].input,
        FieldInput::Pick { .. }
    ));
    assert!(key(&mut a, "ctrl-e").is_empty());
}

#[test]
fn edited_saves_report_failures() {
    let mut a = opened();
    update(
        &mut a,
        Action::Loaded(Loaded::Edited(
            EditableField::Summary,
            Err(QueueError::LeaseLost {
                id: 1,
                fence: 7,
                holder: None,
            }),
        )),
    );
    assert_eq!(a.claim, None);
    assert!(a.message.unwrap().0.starts_with("Summary not saved"));
    let mut a = opened();
    update(
        &mut a,
        Action::Loaded(Loaded::Edited(EditableField::Summary, Ok(()))),
    );
    assert!(!a.dirty);
}

#[test]
fn diff_preview_timeline_are_overlays() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "d");
    assert_eq!(a.mode, Mode::Diff);
    // No edits: the diff fits, so it does not scroll.
    key(&mut a, "j j G");
    assert_eq!(a.overlay_scroll, 0);
    key(&mut a, "esc");
    assert_eq!((a.mode, a.overlay_scroll), (Mode::List, 0));
    let fx = key(&mut a, "p");
    assert_eq!(a.mode, Mode::Preview);
    assert_eq!(fx, vec![Effect::LoadPreview(1, DecisionKind::Approve)]);
    let fx = update(&mut a, Action::Loaded(Loaded::Preview(1, Ok(vec![]))));
    assert!(
        matches!(&fx[..], [Effect::RecordPreview(1, d)] if d.len() == 64),
        "the audit records what was previewed: {fx:?}"
    );
    update(&mut a, Action::Loaded(Loaded::PreviewRecorded(1, Ok(()))));
    assert!(!a.dirty);
    key(&mut a, "esc");
    assert_eq!(key(&mut a, "L"), vec![Effect::LoadTimeline(1)]);
    assert_eq!(a.mode, Mode::Timeline);
    update(&mut a, Action::Loaded(Loaded::Timeline(1, Ok(vec![]))));
    assert_eq!(a.timeline, Some((1, vec![])));
    key(&mut a, "esc");
    assert_eq!(a.mode, Mode::List);
}

fn entries(n: usize) -> Vec<signoff::queue::AuditEntry> {
    (0..n)
        .map(|i| signoff::queue::AuditEntry {
            seq: i as i64,
            at: NOW,
            actor: "ana".into(),
            request_id: Some(1),
            kind: "edited".into(),
            detail: serde_json::json!({ "field": "summary" }),
            os_user: None,
        })
        .collect()
}

/// G, PgDn and friends stop at the last screenful: the overlay never scrolls past its
/// content, so k after G moves at once.
#[test]
fn overlays_scroll_no_further_than_their_content() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "L");
    update(
        &mut a,
        Action::Loaded(Loaded::Timeline(1, Ok(entries(100)))),
    );
    // 37 rows of body, 2 of them borders: the day and 34 entries on screen, 66 more below.
    let max = 100 + 1 - 35;
    key(&mut a, "G");
    assert_eq!(a.overlay_scroll, max);
    key(&mut a, "k");
    assert_eq!(a.overlay_scroll, max - 1);
    key(&mut a, "pagedown pagedown ctrl-d j");
    assert_eq!(a.overlay_scroll, max);
    assert!(render(&a).contains("ana changed summary"));
    // A taller terminal shows more and scrolls less.
    update(&mut a, Action::Resize(120, 50));
    assert_eq!(a.overlay_scroll, max - 10);
    key(&mut a, "g g");
    assert_eq!(a.overlay_scroll, 0);
    key(&mut a, "esc");
    // The stats screen too.
    key(&mut a, "S");
    update(&mut a, Action::Loaded(Loaded::Stats(Box::new(Ok(stats())))));
    key(&mut a, "G");
    let bottom = a.overlay_scroll;
    assert!(bottom > 0 && bottom < 100, "{bottom}");
    key(&mut a, "j");
    assert_eq!(a.overlay_scroll, bottom);
    key(&mut a, "k");
    assert_eq!(a.overlay_scroll, bottom - 1);
}

#[test]
fn filter_parses_tokens_and_reloads() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "j f");
    assert_eq!(a.mode, Mode::Filter);
    for act in type_text("p:high c<0.9") {
        update(&mut a, act);
    }
    let fx = key(&mut a, "enter");
    match &fx[..] {
        [Effect::LoadPage { query, .. }] => {
            assert_eq!(query.filter.priorities, vec!["high"]);
            assert_eq!(query.filter.conf_below, Some(0.9));
            assert_eq!(query.offset, 0);
            assert_eq!(query.around, Some(2), "asked around the selected item");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.list.top, 0);
    assert_eq!(a.list.filter_text, "p:high c<0.9");
    // Esc in the list clears it.
    let fx = key(&mut a, "esc");
    assert!(
        matches!(&fx[..], [Effect::LoadPage { query, .. }] if query.filter == Default::default())
    );
    // A bad token stays in the input with a message.
    key(&mut a, "f");
    for act in type_text("c<7") {
        update(&mut a, act);
    }
    assert!(key(&mut a, "enter").is_empty());
    assert_eq!(a.mode, Mode::Filter);
    assert_eq!(a.message.as_ref().unwrap().1, Level::Error);
    key(&mut a, "ctrl-u esc");
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn sort_cycles() {
    let mut a = loaded_app(120, 40);
    let fx = key(&mut a, "s");
    assert!(
        matches!(&fx[..], [Effect::LoadPage { query, .. }] if query.sort == signoff::queue::Sort::Oldest)
    );
    key(&mut a, "s s s");
    assert_eq!(a.list.query.sort, signoff::queue::Sort::Queue);
}

#[test]
fn help_is_a_palette_that_runs_commands() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "?");
    assert_eq!((a.mode, a.return_mode), (Mode::Help, Mode::List));
    for act in type_text("preview") {
        update(&mut a, act);
    }
    let items = signoff::tui::update::palette_items(&a);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].0, Cmd::Preview);
    key(&mut a, "enter");
    assert_eq!(a.mode, Mode::Preview);
    // `?` again: arrows move; esc goes back. (`:` is the command line.)
    key(&mut a, "esc ?");
    assert_eq!(a.mode, Mode::Help);
    key(&mut a, "down down up");
    assert_eq!(a.palette_sel, 1);
    key(&mut a, "esc");
    assert_eq!(a.mode, Mode::List);
    key(&mut a, ":");
    assert_eq!(a.mode, Mode::Command);
}

#[test]
fn quit_releases_the_claim_and_ctrl_c_always_quits() {
    let mut a = opened();
    let fx = key(&mut a, "q");
    assert_eq!(fx, vec![Effect::Release(claim(1)), Effect::Quit]);
    assert!(a.quit);
    let mut a = opened();
    key(&mut a, "e");
    let fx = update(
        &mut a,
        Action::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(fx.contains(&Effect::Quit));
    let mut a = loaded_app(120, 40);
    key(&mut a, "f");
    assert!(key(&mut a, "q").is_empty(), "q is typed into the filter");
    assert_eq!(a.filter_input.text, "q");
    assert!(key(&mut a, "ctrl-c").contains(&Effect::Quit));
}

#[test]
fn redraw_clears_the_screen() {
    let mut a = loaded_app(120, 40);
    assert_eq!(key(&mut a, "ctrl-l"), vec![Effect::ClearScreen]);
}

#[test]
fn read_only_shows_and_decides_nothing() {
    let mut a = loaded_app(120, 40);
    a.read_only = true;
    for k in ["a", "r", "x", "e", "u"] {
        assert!(key(&mut a, k).is_empty(), "{k}");
        assert!(a.message.as_ref().unwrap().0.contains("read-only"), "{k}");
    }
    let fx = key(&mut a, "enter");
    assert!(!fx.contains(&Effect::Claim(1)));
    assert_eq!(
        (a.mode, a.open, a.claim.clone()),
        (Mode::Review, Some(1), None)
    );
}

#[test]
fn resize_keeps_the_selection_visible() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "G");
    update(&mut a, Action::Resize(80, 13));
    assert_eq!((a.width, a.height), (80, 13));
    let rows = signoff::tui::view::layout::list_rows(&a) as u64;
    assert!(a.list.top <= 5 && 5 < a.list.top + rows);
    update(&mut a, Action::Resize(1, 1));
    assert!(a.dirty);
}

#[test]
fn tick_redraws_only_for_a_visible_countdown() {
    let mut a = loaded_app(120, 40);
    update(&mut a, Action::Tick(NOW + 5_000));
    assert!(!a.dirty, "nothing counts down in the list");
    let mut a = opened();
    update(&mut a, Action::Tick(NOW + 5_000));
    assert!(a.dirty, "the lease countdown moved");
}

#[test]
fn poll_and_change_token() {
    let mut a = loaded_app(120, 40);
    assert_eq!(update(&mut a, Action::Poll), vec![Effect::PollToken]);
    assert!(!a.dirty);
    assert!(update(&mut a, Action::Loaded(Loaded::Token(Ok(5)))).is_empty());
    assert!(!a.dirty, "the first token is only remembered");
    assert!(update(&mut a, Action::Loaded(Loaded::Token(Ok(5)))).is_empty());
    assert!(!a.dirty, "no change, no redraw");
    let fx = update(&mut a, Action::Loaded(Loaded::Token(Ok(6))));
    assert!(fx.iter().any(|e| matches!(e, Effect::LoadPage { .. })));
    assert!(fx.contains(&Effect::LoadCounts));
    update(
        &mut a,
        Action::Loaded(Loaded::Token(Err(QueueError::Storage("disk".into())))),
    );
    assert_eq!(a.message.unwrap().1, Level::Error);
}

#[test]
fn counts_details_released_and_errors() {
    let mut a = loaded_app(120, 40);
    let c = a.counts.clone().unwrap();
    update(&mut a, Action::Loaded(Loaded::Counts(Ok(c))));
    assert!(!a.dirty, "same counts, no redraw");
    update(&mut a, Action::Loaded(Loaded::Released(1)));
    assert!(!a.dirty);
    update(
        &mut a,
        Action::Loaded(Loaded::Details(vec![(99, Err(QueueError::NotFound(99)))])),
    );
    assert!(!a.details.contains_key(&99));
    update(
        &mut a,
        Action::Loaded(Loaded::Counts(Err(QueueError::Storage("x".into())))),
    );
    assert_eq!(a.message.as_ref().unwrap().1, Level::Error);
    let generation = a.list.generation;
    update(
        &mut a,
        Action::Loaded(Loaded::Page {
            generation,
            result: Err(QueueError::Storage("locked".into())),
        }),
    );
    assert!(a.message.unwrap().0.contains("cannot load the queue"));
}

#[test]
fn heartbeat_renews_the_claim() {
    let mut a = opened();
    let mut renewed = claim(1);
    renewed.lease_expires += 100_000;
    let fence = renewed.fence;
    update(
        &mut a,
        Action::Loaded(Loaded::Heartbeat {
            id: 1,
            fence,
            result: Ok(renewed.clone()),
        }),
    );
    assert_eq!(a.claim, Some(renewed));
}

/// A heartbeat still on its way when the claim was given back and taken again (a new
/// fence) must not end the new claim, nor replace it with the old one.
#[test]
fn a_stale_heartbeat_leaves_a_newer_claim_alone() {
    let mut a = opened();
    let old = a.claim.clone().expect("claimed");
    let mut newer = old.clone();
    newer.fence += 1;
    a.claim = Some(newer.clone());
    update(
        &mut a,
        Action::Loaded(Loaded::Heartbeat {
            id: old.id,
            fence: old.fence,
            result: Err(QueueError::LeaseLost {
                id: old.id,
                fence: old.fence,
                holder: Some("bob".into()),
            }),
        }),
    );
    assert_eq!(a.claim, Some(newer.clone()));
    assert!(!a.dirty, "nothing to redraw");
    update(
        &mut a,
        Action::Loaded(Loaded::Heartbeat {
            id: old.id,
            fence: old.fence,
            result: Ok(old.clone()),
        }),
    );
    assert_eq!(a.claim, Some(newer));
    // Nor one for another item.
    update(
        &mut a,
        Action::Loaded(Loaded::Heartbeat {
            id: 99,
            fence: old.fence + 1,
            result: Err(QueueError::LeaseLost {
                id: 99,
                fence: 1,
                holder: None,
            }),
        }),
    );
    assert!(a.claim.is_some());
}

#[test]
fn every_command_has_a_name_that_round_trips() {
    for c in Cmd::ALL {
        assert_eq!(Cmd::from_name(c.name()), Some(c));
    }
}

// ---- after the decision: action states, resend, kill switch, preview, outcome, stats ----

fn action(id: i64, kind: ActionKind, status: &str) -> ActionStatus {
    ActionStatus {
        id,
        action: kind,
        idempotency_key: format!("k-{id}"),
        status: status.into(),
        attempts: if status == "retrying" { 3 } else { 1 },
        next_attempt_at: (status == "retrying").then_some(NOW + 70_000),
        last_error: match status {
            "retrying" => Some("429 ratelimited".into()),
            "dead" => Some("invalid_grant: re-authorize".into()),
            _ => None,
        },
        response: (status == "sent").then(|| r#"{"item_id":"98","update_id":"99"}"#.into()),
    }
}

/// Item #1 approved by ana, with one action in each interesting state.
fn decided_with_actions() -> App {
    let mut a = loaded_app(120, 40);
    let d = a.details.get_mut(&1).expect("detail 1");
    d.summary.state = State::Approved;
    d.decision = Some(DecisionRecord {
        id: 1,
        kind: DecisionKind::Approve,
        note: None,
        reviewer: "ana".into(),
        at: NOW - 60_000,
        undo_until: NOW - 30_000,
        undone: false,
    });
    d.actions = vec![
        action(10, ActionKind::Crm, "sent"),
        action(11, ActionKind::Slack, "retrying"),
        action(12, ActionKind::Gmail, "dead"),
    ];
    a
}

#[test]
fn action_states_show_one_line_each_coloured_by_meaning() {
    let a = decided_with_actions();
    let s = render(&a);
    assert!(s.contains("crm    sent · item 98, note 99"), "{s}");
    assert!(
        s.contains("slack  retrying (3) · next 12:01:10 · 429 ratelimited"),
        "{s}"
    );
    assert!(
        s.contains("gmail  dead · invalid_grant: re-authorize"),
        "{s}"
    );
}

#[test]
fn resend_sends_all_dead_actions_of_the_item() {
    let mut a = decided_with_actions();
    let fx = key(&mut a, "R");
    assert_eq!(fx, vec![Effect::Resend(1, vec![12])]);
    let fx = update(
        &mut a,
        Action::Loaded(Loaded::Resent {
            id: 1,
            queued: 1,
            failed: vec![],
        }),
    );
    assert_eq!(fx, vec![Effect::LoadDetails(vec![1])]);
    let (m, level) = a.message.clone().expect("message");
    assert_eq!(level, Level::Ok);
    assert!(m.contains("1 action queued again"), "{m}");
    // A refusal is shown as such.
    update(
        &mut a,
        Action::Loaded(Loaded::Resent {
            id: 1,
            queued: 0,
            failed: vec!["action 12: not a dead letter".into()],
        }),
    );
    assert_eq!(a.message.as_ref().map(|m| m.1), Some(Level::Error));
}

#[test]
fn resend_is_disabled_without_dead_actions_and_when_read_only() {
    let mut a = loaded_app(120, 40);
    assert_eq!(key(&mut a, "R"), vec![]);
    assert!(
        a.message
            .as_ref()
            .is_some_and(|m| m.0.contains("no dead actions"))
    );
    let mut a = decided_with_actions();
    a.read_only = true;
    assert_eq!(key(&mut a, "R"), vec![]);
    assert!(
        a.message
            .as_ref()
            .is_some_and(|m| m.0.contains("read-only"))
    );
    assert!(!signoff::tui::update::enabled(&a, Mode::List, Cmd::Resend));
}

#[test]
fn kill_switch_asks_first_and_shows_paused() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "K");
    assert_eq!(a.mode, Mode::Confirm);
    assert_eq!(a.confirm_pause, Some(true));
    assert!(render(&a).contains("pause all outbound actions"));
    assert_eq!(key(&mut a, "n"), vec![]);
    assert_eq!(a.mode, Mode::List);
    key(&mut a, "K");
    assert_eq!(key(&mut a, "y"), vec![Effect::SetPaused(true)]);
    assert_eq!(a.mode, Mode::List);
    let fx = update(&mut a, Action::Loaded(Loaded::Paused(true, Ok(()))));
    assert_eq!(fx, vec![Effect::LoadCounts]);
    let mut c = a.counts.clone().expect("counts");
    c.actions_paused = true;
    update(&mut a, Action::Loaded(Loaded::Counts(Ok(c))));
    assert!(render(&a).contains(" PAUSED "));
    // Now the same key resumes.
    key(&mut a, "K");
    assert_eq!(a.confirm_pause, Some(false));
    assert_eq!(key(&mut a, "enter"), vec![Effect::SetPaused(false)]);
}

#[test]
fn kill_switch_is_remappable_and_disabled_read_only() {
    let mut o = std::collections::BTreeMap::new();
    o.insert("kill_switch".to_string(), vec!["ctrl-k".to_string()]);
    let (km, issues) = signoff::tui::keymap::Keymap::build(&o);
    assert!(issues.is_empty(), "{issues:?}");
    let mut a = loaded_app(120, 40);
    a.keymap = km;
    key(&mut a, "K");
    assert_eq!(a.mode, Mode::List);
    key(&mut a, "ctrl-k");
    assert_eq!(a.mode, Mode::Confirm);
    let mut a = loaded_app(120, 40);
    a.read_only = true;
    key(&mut a, "K");
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn preview_shows_rendered_requests_the_refusal_or_what_is_not_queued() {
    let mut a = loaded_app(120, 40);
    assert_eq!(
        key(&mut a, "p"),
        vec![Effect::LoadPreview(1, DecisionKind::Approve)]
    );
    let rendered = serde_json::json!({
        "provider": "slack", "key": "k-1", "meta": {},
        "requests": [{"step": "post", "method": "POST",
                      "url": "https://slack.com/api/chat.postMessage",
                      "headers": {}, "body": {"channel": "C1", "text": "hello \u{1b}[31m"}}]
    });
    let previews = vec![
        ActionPreview {
            action: ActionKind::Slack,
            idempotency_key: "k-1".into(),
            rendered: Ok(rendered),
            skipped: None,
        },
        ActionPreview {
            action: ActionKind::Crm,
            idempotency_key: "k-2".into(),
            rendered: Err("the item name is empty".into()),
            skipped: None,
        },
        ActionPreview {
            action: ActionKind::Gmail,
            idempotency_key: String::new(),
            rendered: Ok(serde_json::Value::Null),
            skipped: Some(signoff::model::Skip::NoDraft),
        },
    ];
    let fx = update(
        &mut a,
        Action::Loaded(Loaded::Preview(1, Ok(previews.clone()))),
    );
    assert_eq!(
        fx,
        vec![Effect::RecordPreview(
            1,
            signoff::tui::update::preview_digest(&previews)
        )]
    );
    let s = render(&a);
    assert!(
        s.contains("POST https://slack.com/api/chat.postMessage"),
        "{s}"
    );
    assert!(s.contains("approval would be refused"), "{s}");
    assert!(s.contains("the item name is empty"), "{s}");
    // No draft reply is no refusal: the Gmail draft is simply not queued, and the
    // preview says how to get one.
    assert!(s.contains("gmail · not queued"), "{s}");
    assert!(
        s.contains("no Gmail draft: the AI wrote none; press e to write one"),
        "{s}"
    );
    assert!(!s.contains('\u{1b}'));
    // A second `p` (after an edit, say) fetches again instead of showing the old one.
    key(&mut a, "esc");
    assert_eq!(
        key(&mut a, "p"),
        vec![Effect::LoadPreview(1, DecisionKind::Approve)]
    );
    assert_eq!(a.preview, None);
    // Read-only consoles preview without writing to the audit.
    a.read_only = true;
    let fx = update(&mut a, Action::Loaded(Loaded::Preview(1, Ok(previews))));
    assert_eq!(fx, vec![]);
}

#[test]
fn outcome_picks_then_asks_a_reason_when_needed() {
    let mut a = decided_with_actions();
    key(&mut a, "O");
    assert_eq!(a.mode, Mode::Outcome);
    // 5 = won: no reason needed.
    let fx = key(&mut a, "5");
    assert_eq!(
        fx,
        vec![Effect::RecordOutcome {
            id: 1,
            value: "won".into(),
            reason: None
        }]
    );
    assert_eq!(a.mode, Mode::List);
    update(
        &mut a,
        Action::Loaded(Loaded::OutcomeRecorded {
            id: 1,
            value: "won".into(),
            result: Ok(()),
        }),
    );
    assert_eq!(a.message.as_ref().map(|m| m.1), Some(Level::Ok));
    // 6 = lost: needs a reason.
    key(&mut a, "O 6");
    assert_eq!(a.mode, Mode::OutcomeNote);
    assert_eq!(key(&mut a, "enter"), vec![], "an empty reason is refused");
    for act in type_text("price") {
        update(&mut a, act);
    }
    assert_eq!(
        key(&mut a, "enter"),
        vec![Effect::RecordOutcome {
            id: 1,
            value: "lost".into(),
            reason: Some("price".into())
        }]
    );
    update(
        &mut a,
        Action::Loaded(Loaded::OutcomeRecorded {
            id: 1,
            value: "lost".into(),
            result: Err(QueueError::Invalid("no decision".into())),
        }),
    );
    assert_eq!(a.message.as_ref().map(|m| m.1), Some(Level::Error));
}

#[test]
fn outcome_needs_a_decided_item() {
    let mut a = loaded_app(120, 40);
    assert_eq!(key(&mut a, "O"), vec![]);
    assert_eq!(a.mode, Mode::List);
    assert!(a.message.as_ref().is_some_and(|m| m.0.contains("decided")));
}

#[test]
fn stats_screen_loads_scrolls_and_goes_back() {
    let mut a = loaded_app(120, 40);
    assert_eq!(key(&mut a, "S"), vec![Effect::LoadStats]);
    assert_eq!(a.mode, Mode::Stats);
    assert!(render(&a).contains("loading…"));
    update(&mut a, Action::Loaded(Loaded::Stats(Box::new(Ok(stats())))));
    assert!(render(&a).contains("Reject reasons"));
    key(&mut a, "j j");
    assert_eq!(a.overlay_scroll, 2);
    key(&mut a, "esc");
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn volume_alert_shows_and_reloads_at_most_once_a_minute() {
    let mut a = loaded_app(120, 40);
    assert_eq!(a.stats_at, Some(NOW), "start-up asks for stats");
    update(&mut a, Action::Loaded(Loaded::Stats(Box::new(Ok(stats())))));
    assert!(
        render(&a).contains("⚠ 48 requests this hour"),
        "{}",
        render(&a)
    );
    update(&mut a, Action::Loaded(Loaded::Token(Ok(1))));
    let fx = update(&mut a, Action::Loaded(Loaded::Token(Ok(2))));
    assert!(!fx.contains(&Effect::LoadVolume), "{fx:?}");
    update(&mut a, Action::Tick(NOW + 61_000));
    let fx = update(&mut a, Action::Loaded(Loaded::Token(Ok(3))));
    assert!(fx.contains(&Effect::LoadVolume), "{fx:?}");
    assert!(
        !fx.contains(&Effect::LoadStats),
        "only the cheap volume query: {fx:?}"
    );
    // The volume's own answer replaces the alert.
    let mut quiet = stats().volume;
    quiet.alert = None;
    update(&mut a, Action::Loaded(Loaded::Volume(Box::new(Ok(quiet)))));
    assert!(!render(&a).contains("⚠"), "{}", render(&a));
}

#[test]
fn sample_items_are_flagged_in_list_and_detail() {
    let mut a = loaded_app(120, 40);
    a.list.page.items[0].sample = true;
    a.details.get_mut(&1).expect("detail").summary.sample = true;
    let s = render(&a);
    assert!(s.matches("sample").count() >= 2, "{s}");
}

#[test]
fn decided_toggle_lists_decided_items_most_recent_decision_first() {
    let mut a = loaded_app(120, 40);
    let fx = key(&mut a, "D");
    assert!(
        matches!(&fx[..], [Effect::LoadPage { query, .. }]
            if query.states == vec![State::Approved, State::Rejected, State::Escalated]
                && query.sort == signoff::queue::Sort::RecentlyDecided),
        "{fx:?}"
    );
    let fx = key(&mut a, "D");
    assert!(
        matches!(&fx[..], [Effect::LoadPage { query, .. }] if query.states.is_empty()),
        "{fx:?}"
    );
}

#[test]
fn a_queue_change_refetches_decided_details_so_states_move() {
    let mut a = decided_with_actions();
    update(&mut a, Action::Loaded(Loaded::Token(Ok(1))));
    let fx = update(&mut a, Action::Loaded(Loaded::Token(Ok(2))));
    // The selected item's detail stays on screen until its fresh copy is in, and is asked
    // for at once; the other rows' details are dropped.
    assert!(a.details.contains_key(&1));
    assert!(
        !a.details.contains_key(&2),
        "a detail not on screen is dropped"
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadDetails(ids) if ids == &vec![1])),
        "{fx:?}"
    );
    // The page reloads, and its arrival asks for the other details on screen again.
    let generation = a.list.generation;
    assert!(
        fx.iter().any(|e| matches!(e, Effect::LoadPage { .. })),
        "{fx:?}"
    );
    let page = a.list.page.clone();
    let fx = update(
        &mut a,
        Action::Loaded(Loaded::Page {
            generation,
            result: Ok(page),
        }),
    );
    assert!(
        fx.iter().any(
            |e| matches!(e, Effect::LoadDetails(ids) if ids.contains(&2) && !ids.contains(&1))
        ),
        "{fx:?}"
    );
}

#[test]
fn escalate_picker_previews_the_highlighted_queue_and_comes_back() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "x j");
    assert_eq!(a.mode, Mode::Escalate);
    let queue = a.policy.escalation_queues[1].name.clone();
    let fx = key(&mut a, "p");
    assert_eq!(
        fx,
        vec![Effect::LoadPreview(
            1,
            DecisionKind::Escalate {
                queue: queue.clone()
            }
        )]
    );
    assert_eq!(a.mode, Mode::Preview);
    update(&mut a, Action::Loaded(Loaded::Preview(1, Ok(vec![]))));
    assert!(render(&a).contains(&format!("escalating to {queue}")));
    key(&mut a, "esc");
    assert_eq!((a.mode, a.pick), (Mode::Escalate, 1));
    key(&mut a, "esc");
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn a_save_that_failed_is_sent_again() {
    let mut a = opened();
    key(&mut a, "e");
    for act in type_text("URGENT ") {
        update(&mut a, act);
    }
    let fx = update(&mut a, Action::Tick(NOW + SAVE_DEBOUNCE_MS + 1));
    assert!(
        matches!(
            &fx[..],
            [Effect::SaveEdit(_, EditableField::Summary, Some(_))]
        ),
        "{fx:?}"
    );
    update(
        &mut a,
        Action::Loaded(Loaded::Edited(
            EditableField::Summary,
            Err(QueueError::Storage("disk full".into())),
        )),
    );
    // The form no longer counts it as saved: the next save sends it again.
    let fx = key(&mut a, "ctrl-s");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::SaveEdit(_, EditableField::Summary, Some(v)) if v.starts_with("URGENT"))),
        "{fx:?}"
    );
}

#[test]
fn a_second_enter_while_claiming_claims_nothing_more() {
    let mut a = loaded_app(120, 40);
    assert_eq!(key(&mut a, "enter"), vec![Effect::Claim(1)]);
    key(&mut a, "esc");
    key(&mut a, "j");
    let fx = key(&mut a, "enter");
    assert!(!fx.iter().any(|e| matches!(e, Effect::Claim(_))), "{fx:?}");
    update(&mut a, Action::Loaded(Loaded::Claimed(1, Ok(claim(1)))));
    assert_eq!(a.open, Some(1));
}

#[test]
fn a_detail_that_cannot_load_says_so() {
    let mut a = loaded_app(120, 40);
    let id = a.current_id().expect("a row is selected");
    a.details.remove(&id);
    update(
        &mut a,
        Action::Loaded(Loaded::Details(vec![(
            id,
            Err(QueueError::Storage("disk I/O error".into())),
        )])),
    );
    let (text, level) = a.message.clone().expect("a message");
    assert_eq!(level, Level::Error);
    assert!(text.contains(&format!("cannot load #{id}")), "{text}");
}

// ---- one way through: pickers, refetches and requeries share their helpers ----

/// The reject, escalation and outcome pickers move, refuse a wrong number and go back the
/// same way.
#[test]
fn every_picker_moves_chooses_and_goes_back_alike() {
    let cases: [(App, &str, Mode); 3] = [
        (loaded_app(120, 40), "r", Mode::Reject),
        (loaded_app(120, 40), "x", Mode::Escalate),
        (decided_with_actions(), "O", Mode::Outcome),
    ];
    for (mut a, open_key, mode) in cases {
        let before = a.mode;
        key(&mut a, open_key);
        assert_eq!(a.mode, mode, "{open_key}");
        assert_eq!(a.pick, 0);
        key(&mut a, "k");
        assert_eq!(a.pick, 0, "{mode:?}: k at the top stays");
        key(&mut a, "j j");
        assert_eq!(a.pick, 2, "{mode:?}");
        for _ in 0..20 {
            key(&mut a, "j");
        }
        let last = a.pick;
        key(&mut a, "j");
        assert_eq!(a.pick, last, "{mode:?}: j at the bottom stays");
        // A number past the last entry is refused, and the picker stays open.
        if last + 2 <= 9 {
            let n = (last + 2).to_string();
            assert!(key(&mut a, &n).is_empty(), "{mode:?}");
            assert_eq!(a.mode, mode);
            assert!(
                a.message
                    .as_ref()
                    .is_some_and(|m| m.0.starts_with("choose 1–")),
                "{mode:?}: {:?}",
                a.message
            );
        }
        key(&mut a, "esc");
        assert_eq!(a.mode, before, "{mode:?}: esc goes back");
    }
}

/// Filter, clearing it, sort and the decided list each ask once for the rows, around the
/// selected item: the selection stays on that item wherever the new list has it, and starts
/// from the top row when the new list does not hold it (the reviewer asked for another
/// list: no "left the list" message).
type Requery = dyn Fn(&mut App) -> Vec<Effect>;

#[test]
fn every_requery_keeps_the_item_or_starts_from_the_top() {
    let requeries: [&Requery; 4] = [
        &|a| {
            key(a, "f");
            for act in type_text("p:high") {
                update(a, act);
            }
            key(a, "enter")
        },
        &|a| {
            // Esc in the list clears a filter (here one set without a reload).
            a.list.filter_text = "p:high".into();
            key(a, "esc")
        },
        &|a| key(a, "s"),
        &|a| key(a, "D"),
    ];
    let details: Vec<_> = fixtures()
        .iter()
        .enumerate()
        .map(|(i, v)| detail(i as i64 + 1, v))
        .collect();
    let page = |ids: &[i64]| signoff::queue::Page {
        items: ids
            .iter()
            .map(|id| details[*id as usize - 1].summary.clone())
            .collect(),
        total: ids.len() as u64,
        offset: 0,
    };
    let mut a = loaded_app(120, 40);
    for (i, rq) in requeries.iter().enumerate() {
        // The item is in the new list, elsewhere: the selection goes with it.
        key(&mut a, "g g j j");
        assert_eq!(a.list.selected_id, Some(3), "requery {i}");
        let generation = a.list.generation;
        let fx = rq(&mut a);
        assert!(
            matches!(&fx[..], [Effect::LoadPage { generation: g, query }]
                if *g == generation + 1 && query.around == Some(3)),
            "requery {i}: {fx:?}"
        );
        let generation = a.list.generation;
        update(
            &mut a,
            Action::Loaded(Loaded::Page {
                generation,
                result: Ok(page(&[6, 5, 4, 3, 2, 1])),
            }),
        );
        assert_eq!(
            (a.list.selected, a.list.selected_id, a.list.left),
            (3, Some(3), None),
            "requery {i}"
        );
        // The item is not in the new list: the top row is selected, nothing "left".
        key(&mut a, "j");
        assert_eq!(a.list.selected_id, Some(2), "requery {i}");
        rq(&mut a);
        let generation = a.list.generation;
        update(
            &mut a,
            Action::Loaded(Loaded::Page {
                generation,
                result: Ok(page(&[5, 1, 3])),
            }),
        );
        assert_eq!(
            (a.list.selected, a.list.top, a.list.selected_id, a.list.left),
            (0, 0, Some(5), None),
            "requery {i}"
        );
        // Put the whole page back for the next one.
        let generation = a.list.generation;
        update(
            &mut a,
            Action::Loaded(Loaded::Page {
                generation,
                result: Ok(page(&[1, 2, 3, 4, 5, 6])),
            }),
        );
    }
}

/// An item's detail asked for again (after a save, an undo, a resend) is marked as asked
/// for, so moving over it does not ask a second time.
#[test]
fn a_refetched_detail_is_not_asked_for_twice() {
    let mut a = opened();
    key(&mut a, "e");
    let fx = key(&mut a, "esc");
    assert!(fx.contains(&Effect::LoadDetails(vec![1])), "{fx:?}");
    assert!(a.details_requested.contains(&1));
    // The prefetch (here after a resize) leaves it to the request on its way.
    a.details.remove(&1);
    let fx = update(&mut a, Action::Resize(120, 41));
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::LoadDetails(ids) if ids.contains(&1))),
        "{fx:?}"
    );
}

// ---- The console acts only on the item it shows ----

/// Another writer on the same queue file (an ingest, a second reviewer).
fn other_store(db: &Db) -> signoff::store::Store {
    signoff::store::Store::open(&db.path, policy(), &store_options()).expect("second handle")
}

fn ingest(db: &Db, v: serde_json::Value) {
    let r = signoff::model::Request::from_value(&v).expect("request");
    let item = signoff::store::IngestItem::new(v.to_string(), v, r, "test:1".into());
    other_store(db)
        .ingest_batch(&[item], "upstream")
        .expect("ingest");
}

/// (item, decision kind, revision) of every decision made, in order.
fn decisions(db: &Db) -> Vec<(i64, String, i64)> {
    let s = other_store(db);
    let mut stmt = s
        .connection()
        .prepare("SELECT request_id, kind, revision FROM decisions ORDER BY id")
        .expect("query");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("decisions")
}

fn key_event(k: &str) -> KeyEvent {
    parse_keys(k).remove(0)
}

/// The id of the item whose detail the last frame drew.
fn on_screen(h: &Headless) -> i64 {
    h.app.shown.expect("an item on screen").0
}

/// An urgent request received before everything else sorts first in the queue.
fn urgent_newcomer() -> serde_json::Value {
    serde_json::json!({"source": "gmail", "external_id": "urgent-7",
        "received_at": "2026-11-01T08:00:00Z",
        "raw": {"channel": "email", "from": "ops@example.com", "subject": "Outage", "body": "Down."},
        "ai": {"summary": "Reports an outage", "intent": "support_request", "priority": "urgent",
               "confidence": 0.95, "recommended_next_step": "Page on-call"}})
}

/// The screen shows item X; an ingest puts a more urgent item above it and the list is
/// refreshed; then `a`. X is approved, never the item that slid into X's row.
#[tokio::test]
async fn an_ingest_that_reorders_the_list_leaves_the_selection_on_its_item() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    h.keys("j j").await;
    let x = on_screen(&h);
    assert_eq!(h.app.list.selected, 2);
    ingest(&db, urgent_newcomer());
    h.send(Action::Poll).await;
    assert_eq!(h.app.list.page.total, 7, "the refresh is in");
    assert_eq!(
        h.app.list.selected_id,
        Some(x),
        "the selection stayed on its item"
    );
    assert_eq!(h.app.list.selected, 3, "…which moved down a row");
    assert_eq!(on_screen(&h), x);
    let screen = h.screen();
    let marked: Vec<&str> = screen.lines().filter(|l| l.contains('▶')).collect();
    assert_eq!(marked.len(), 1, "{screen}");
    h.keys("a").await;
    assert_eq!(decisions(&db), [(x, "approve".to_string(), 1)]);
    assert!(
        h.app
            .message
            .as_ref()
            .unwrap()
            .0
            .starts_with(&format!("approved #{x}")),
        "{:?}",
        h.app.message
    );
}

/// The same race with no frame between the refresh and the key: the key still acts on
/// the item the reviewer was shown.
#[tokio::test]
async fn a_refresh_in_the_same_batch_as_the_key_still_decides_the_item_shown() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    h.keys("j j").await;
    let x = on_screen(&h);
    ingest(&db, urgent_newcomer());
    h.send_unseen(Action::Poll).await;
    h.keys("a").await;
    assert_eq!(decisions(&db), [(x, "approve".to_string(), 1)]);
}

/// The screen shows item X; another reviewer decides X through their own queue handle and
/// the list is refreshed: X left the list, the message line says so and by whom, and `a`
/// decides nothing until the reviewer moves onto another item.
#[tokio::test]
async fn an_item_decided_by_someone_else_leaves_nothing_selected_until_a_move() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    h.keys("j").await;
    let x = on_screen(&h);
    let carol = LocalQueue::open(&db.path, policy(), &store_options()).expect("carol");
    let c = carol.claim(x, "carol").await.expect("claim");
    carol
        .decide(
            &c,
            &Decision {
                kind: DecisionKind::Approve,
                revision: None,
                note: None,
                sets: vec![],
            },
        )
        .await
        .expect("carol approves");
    h.send(Action::Poll).await;
    assert_eq!(h.app.list.left, Some(x));
    assert_eq!(h.app.list.selected_id, None);
    assert_eq!(h.app.current_id(), None);
    let (m, level) = h.app.message.clone().expect("message");
    assert_eq!(level, Level::Warn);
    assert!(
        m.starts_with(&format!("#{x} left the list: approved by carol")),
        "{m}"
    );
    assert!(!h.screen().contains('▶'), "no row is marked selected");
    for k in ["a", "r", "x", "enter"] {
        let fx = update(&mut h.app, Action::Key(key_event(k)));
        assert!(fx.is_empty(), "{k}: {fx:?}");
        assert_eq!(h.app.mode, Mode::List, "{k}");
    }
    assert!(
        h.app.message.as_ref().unwrap().0.contains("left the list"),
        "{:?}",
        h.app.message
    );
    assert_eq!(decisions(&db).len(), 1, "only carol's decision");
    // A move selects the row now in X's place; that item, once shown, can be decided.
    h.keys("j").await;
    let y = on_screen(&h);
    assert_ne!(y, x);
    assert_eq!(h.app.list.selected_id, Some(y));
    assert_eq!(h.app.list.selected, 1);
    h.keys("a").await;
    assert_eq!(
        decisions(&db),
        [(x, "approve".to_string(), 1), (y, "approve".to_string(), 1)]
    );
}

/// A new revision of the item on screen arrives before the console has refreshed: `a`
/// names the revision shown, the queue refuses it, nothing is decided, and the new
/// revision goes on screen to be read and decided.
#[tokio::test]
async fn a_decision_on_a_revision_that_changed_is_refused_then_made_on_the_new_one() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    h.keys("j j").await;
    let x = on_screen(&h);
    assert_eq!(h.app.shown, Some((3, 1)), "cjk-3, third in queue order");
    let mut v = fixtures()[2].clone();
    v["ai"]["summary"] = "Cancel the reissue: the old invoice was right.".into();
    ingest(&db, v);
    h.keys("a").await;
    assert!(decisions(&db).is_empty(), "nothing decided");
    let (m, level) = h.app.message.clone().expect("message");
    assert_eq!(level, Level::Error);
    assert!(
        m.contains(&format!(
            "#{x} changed since you opened it (revision 1 → 2)"
        )) && m.contains("nothing was decided"),
        "{m}"
    );
    assert_eq!(h.app.shown, Some((x, 2)), "the new revision is on screen");
    assert!(h.screen().contains("Cancel the reissue"), "{}", h.screen());
    assert_eq!(
        h.queue.get(x).await.expect("item").summary.state,
        State::Pending,
        "the claim taken for the decision was given back"
    );
    h.keys("a").await;
    assert_eq!(decisions(&db), [(x, "approve".to_string(), 2)]);
}

/// A decision names the item on screen; a claim on any other item decides nothing, both
/// in `update` and where the effect meets the queue.
#[tokio::test]
async fn a_claim_on_another_item_than_the_one_shown_decides_nothing() {
    let mut a = opened();
    a.claim = Some(claim(2));
    let fx = key(&mut a, "a");
    assert!(fx.is_empty(), "{fx:?}");
    let (m, level) = a.message.clone().expect("message");
    assert_eq!(level, Level::Error);
    assert!(
        m.contains("the claim held is on #2 but #1 is on screen"),
        "{m}"
    );
    assert_eq!(a.deciding, None);

    let db = seeded_db();
    let q = LocalQueue::open(&db.path, policy(), &store_options()).expect("queue");
    let on_1 = q.claim(1, "ana").await.expect("claim");
    let out = signoff::tui::effects::perform(
        &q,
        "ana",
        Effect::Decide {
            id: 3,
            claim: Some(on_1),
            decision: Decision {
                kind: DecisionKind::Approve,
                revision: Some(1),
                note: None,
                sets: vec![],
            },
        },
    )
    .await;
    assert!(
        matches!(&out, Some(Loaded::Decided { id: 3, result: Err(QueueError::Invalid(m)), .. })
            if m.contains("claim held is on item 1 but item 3")),
        "{out:?}"
    );
    assert!(decisions(&db).is_empty());
}

/// A decision key acts on what the last frame drew: a selection or a refresh that reached
/// the state in the same batch of input as the key has not been seen yet.
#[test]
fn a_decision_key_acts_only_on_what_the_last_frame_showed() {
    let mut a = loaded_app(120, 40);
    a.shown = signoff::tui::view::shown_item(&a);
    assert_eq!(a.shown, Some((1, 1)));
    // `j` then `a` with no frame between them.
    update(&mut a, Action::Key(key_event("j")));
    let fx = update(&mut a, Action::Key(key_event("a")));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(
        a.message
            .as_ref()
            .unwrap()
            .0
            .contains("#2 was not on screen yet"),
        "{:?}",
        a.message
    );
    assert_eq!(a.deciding, None);
    // A new revision of the item drawn, not drawn yet itself.
    a.shown = Some((2, 1));
    a.details.get_mut(&2).unwrap().summary.revision = 2;
    let fx = update(&mut a, Action::Key(key_event("a")));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(
        a.message
            .as_ref()
            .unwrap()
            .0
            .contains("#2 changed while you read it (revision 1 → 2)"),
        "{:?}",
        a.message
    );
    // Once drawn, it is what `a` decides.
    let fx = key(&mut a, "a");
    assert!(
        matches!(&fx[..], [Effect::Decide { id: 2, decision, .. }] if decision.revision == Some(2)),
        "{fx:?}"
    );
}

/// The list fills a short terminal with no room for the detail: nothing can be decided
/// from it until the item is opened (and so drawn).
#[test]
fn a_list_too_short_for_the_detail_decides_only_an_opened_item() {
    let mut a = loaded_app(80, 12);
    assert_eq!(a.shown, None);
    for k in ["a", "r", "x"] {
        let fx = key(&mut a, k);
        assert!(fx.is_empty(), "{k}: {fx:?}");
        assert_eq!(a.mode, Mode::List, "{k}");
        assert!(
            a.message
                .as_ref()
                .unwrap()
                .0
                .contains("too short to show #1"),
            "{:?}",
            a.message
        );
    }
    assert_eq!(key(&mut a, "enter"), vec![Effect::Claim(1)]);
    update(&mut a, Action::Loaded(Loaded::Claimed(1, Ok(claim(1)))));
    let fx = key(&mut a, "a");
    assert!(
        matches!(
            &fx[..],
            [Effect::Decide {
                id: 1,
                claim: Some(_),
                ..
            }]
        ),
        "{fx:?}"
    );
}

// ---- No decision while the item cannot be seen ----

/// Below the minimum size only quit and help take keys; the enlarge line says why. After
/// a resize to a usable size the keys work again.
#[tokio::test]
async fn keys_are_paused_while_the_terminal_is_too_small_to_show_the_item() {
    use signoff::tui::view::layout::{MIN_HEIGHT, MIN_WIDTH};
    let db = seeded_db();
    let mut h = Headless::new(&db, 20, 5).await;
    assert!(h.app.too_small());
    assert_eq!(h.app.shown, None);
    let screen = h.screen();
    let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!(
            "enlarge the terminal (20×5, needs ≥ {MIN_WIDTH}×{MIN_HEIGHT}) · keys are paused"
        )),
        "{screen}"
    );
    for k in ["a", "r", "e", "x", "enter", "j", "/", "f", "D", "K", "g"] {
        let fx = update(&mut h.app, Action::Key(key_event(k)));
        assert!(fx.is_empty(), "{k}: {fx:?}");
        assert_eq!(h.app.mode, Mode::List, "{k}");
        assert_eq!(h.app.pending_key, None, "{k}");
    }
    assert_eq!(h.app.list.selected, 0, "j moved nothing");
    assert!(
        update(&mut h.app, Action::Paste("pasted".into())).is_empty(),
        "paste goes nowhere"
    );
    // Help opens and closes.
    h.keys("?").await;
    assert_eq!(h.app.mode, Mode::Help);
    h.keys("esc").await;
    assert_eq!(h.app.mode, Mode::List);
    assert!(decisions(&db).is_empty());
    assert_eq!(
        h.queue.counts().await.expect("counts").in_review,
        0,
        "nothing claimed"
    );
    // Big enough again: `a` approves the item now on screen (the second: the first one's
    // fields need editing before it can be approved).
    h.send(Action::Resize(80, 24)).await;
    h.keys("j").await;
    let x = on_screen(&h);
    h.keys("a").await;
    assert_eq!(decisions(&db), [(x, "approve".to_string(), 1)]);
    // Small again: `q` still quits (from the review screen too, where it is typed nowhere).
    h.keys("j enter").await;
    assert_eq!(h.app.mode, Mode::Review);
    h.send(Action::Resize(20, 5)).await;
    let fx = update(&mut h.app, Action::Key(key_event("a")));
    assert!(fx.is_empty(), "{fx:?}");
    let fx = update(&mut h.app, Action::Key(key_event("q")));
    assert!(fx.contains(&Effect::Quit), "{fx:?}");
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Release(_))),
        "the claim is given back: {fx:?}"
    );
    assert!(h.app.quit);
}

#[test]
fn ctrl_c_quits_while_the_terminal_is_too_small() {
    let mut a = loaded_app(20, 5);
    let fx = key(&mut a, "ctrl-c");
    assert!(fx.contains(&Effect::Quit), "{fx:?}");
}

/// Types a `:` command line and runs it.
fn run(app: &mut App, line: &str) -> Vec<Effect> {
    let mut fx = key(app, ":");
    assert_eq!(app.mode, Mode::Command);
    for a in type_text(line) {
        fx.extend(update(app, a));
    }
    fx.extend(key(app, "enter"));
    fx
}

fn message(app: &App) -> String {
    app.message.clone().map(|(m, _)| m).unwrap_or_default()
}

#[test]
fn command_line_q_quits_because_exact_names_win() {
    let mut a = loaded_app(120, 40);
    let fx = run(&mut a, "q");
    assert!(a.quit);
    assert!(fx.contains(&Effect::Quit), "{fx:?}");
    // The list did not flip to decided items on the way.
    assert!(a.list.query.states.is_empty());
}

#[test]
fn command_line_unknown_command_names_it() {
    let mut a = loaded_app(120, 40);
    let fx = run(&mut a, "frobnicate now");
    assert!(fx.is_empty(), "{fx:?}");
    assert!(
        message(&a).contains("unknown command ':frobnicate'"),
        "{}",
        message(&a)
    );
    assert_eq!(a.mode, Mode::List);
    // A key command by its keymap name runs.
    run(&mut a, "decided");
    assert!(!a.list.query.states.is_empty());
}

#[test]
fn command_line_tab_completes_and_history_recalls() {
    let mut a = loaded_app(120, 40);
    key(&mut a, ":");
    for x in type_text("so") {
        update(&mut a, x);
    }
    key(&mut a, "tab");
    assert_eq!(a.cmdline.text, "sort ");
    update(&mut a, type_text("a").remove(0));
    key(&mut a, "tab");
    assert_eq!(a.cmdline.text, "sort age ");
    let fx = key(&mut a, "enter");
    assert_eq!(a.list.query.sort, signoff::queue::Sort::Oldest);
    assert!(
        fx.iter().any(|e| matches!(e, Effect::LoadPage { .. })),
        "{fx:?}"
    );
    assert!(
        message(&a).contains("sorted by age desc"),
        "{}",
        message(&a)
    );
    run(&mut a, "sort confidence desc");
    assert_eq!(a.list.query.sort, signoff::queue::Sort::MostConfident);
    run(&mut a, "sort sla");
    assert_eq!(a.list.query.sort, signoff::queue::Sort::SlaDue);
    run(&mut a, "sort colour");
    assert!(
        message(&a).contains("cannot sort by 'colour'"),
        "{}",
        message(&a)
    );
    // ↑ recalls the newest first, then older ones; ↓ comes back to an empty line.
    key(&mut a, ":");
    key(&mut a, "up");
    assert_eq!(a.cmdline.text, "sort colour");
    key(&mut a, "up up");
    assert_eq!(a.cmdline.text, "sort confidence desc");
    key(&mut a, "down down down");
    assert_eq!(a.cmdline.text, "");
    key(&mut a, "esc");
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn command_line_history_is_saved_to_the_state_dir() {
    let mut a = loaded_app(120, 40);
    let dir = tempfile::tempdir().unwrap();
    a.state_dir = Some(dir.path().to_path_buf());
    let fx = run(&mut a, "sort age");
    let saved = fx.iter().find_map(|e| match e {
        Effect::SaveHistory(p, h) => Some((p.clone(), h.clone())),
        _ => None,
    });
    assert_eq!(
        saved,
        Some((
            dir.path().join("command_history"),
            vec!["sort age".to_string()]
        ))
    );
    assert!(
        fx.iter().any(|e| matches!(e, Effect::SaveUiState(_, s) if s.sort == Some(signoff::queue::Sort::Oldest))),
        "{fx:?}"
    );
}

#[test]
fn command_line_filter_theme_pause_and_help() {
    let mut a = loaded_app(120, 40);
    run(&mut a, "filter prio:high");
    assert!(
        message(&a).contains("unknown filter 'prio:'"),
        "{}",
        message(&a)
    );
    run(&mut a, "filter p:high");
    assert_eq!(a.list.filter_text, "p:high");
    run(&mut a, "theme light");
    assert!(message(&a).contains("theme light"), "{}", message(&a));
    run(&mut a, "theme nope");
    assert!(message(&a).contains("theme 'nope'"), "{}", message(&a));
    run(&mut a, "pause");
    assert_eq!((a.mode, a.confirm_pause), (Mode::Confirm, Some(true)));
    key(&mut a, "n");
    run(&mut a, "resume");
    assert!(message(&a).contains("not paused"), "{}", message(&a));
    run(&mut a, "help");
    assert_eq!(a.mode, Mode::Help);
    key(&mut a, "esc");
    run(&mut a, "view nope");
    assert!(
        message(&a).contains("no view named 'nope'"),
        "{}",
        message(&a)
    );
}

#[test]
fn filter_values_complete_from_the_policy() {
    let mut a = loaded_app(120, 40);
    run(&mut a, "filter");
    key(&mut a, ":");
    for x in type_text("filter intent:bill") {
        update(&mut a, x);
    }
    key(&mut a, "tab");
    assert_eq!(a.cmdline.text, "filter intent:billing_question ");
}

#[tokio::test]
async fn command_line_jumps_to_an_item_and_keeps_the_selection_for_a_missing_one() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    h.keys(":").await;
    for x in type_text("4") {
        h.send(x).await;
    }
    h.keys("enter").await;
    assert_eq!(h.app.list.selected_id, Some(4));
    assert_eq!(h.app.selected_row().map(|r| r.id), Some(4));
    h.keys(":").await;
    for x in type_text("id 999") {
        h.send(x).await;
    }
    h.keys("enter").await;
    assert_eq!(h.app.list.selected_id, Some(4));
    let m = h.app.message.clone().unwrap().0;
    assert!(m.contains("#999 is not in this list"), "{m}");
}

#[test]
fn slash_searches_incrementally_and_n_moves_between_matches() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "/");
    assert_eq!(a.mode, Mode::Search);
    for x in type_text("fam") {
        update(&mut a, x);
    }
    assert_eq!(
        a.list.selected_id,
        Some(4),
        "the selection follows as it is typed"
    );
    // Esc goes back to where the search started.
    key(&mut a, "esc");
    assert_eq!((a.mode, a.list.selected_id), (Mode::List, Some(1)));
    key(&mut a, "/");
    for x in type_text("Example") {
        update(&mut a, x);
    }
    key(&mut a, "enter");
    assert_eq!((a.mode, a.list.selected), (Mode::List, 0));
    key(&mut a, "n");
    assert_eq!(a.list.selected, 1);
    key(&mut a, "n n");
    assert_eq!(a.list.selected, 3);
    key(&mut a, "N");
    assert_eq!(a.list.selected, 2);
    key(&mut a, "2 n");
    assert_eq!(a.list.selected, 4);
    // The filter moved to `f`.
    key(&mut a, "f");
    assert_eq!(a.mode, Mode::Filter);
}

#[test]
fn counts_repeat_movements() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "3 j");
    assert_eq!((a.list.selected, a.count), (3, None));
    key(&mut a, "2 k");
    assert_eq!(a.list.selected, 1);
    key(&mut a, "5 G");
    assert_eq!(a.list.selected, 4);
    key(&mut a, "1 0 j");
    assert_eq!(a.list.selected, 5, "clamped to the last row");
    key(&mut a, "G g g");
    assert_eq!(a.list.selected, 0);
}

#[test]
fn brackets_go_to_flagged_or_over_sla_items_and_hml_to_the_screen() {
    let mut a = loaded_app(120, 40);
    // #2 has validation flags, #3 (high, 90 min) and #5 (low, 26 h) are past their SLA,
    // #4 (medium, 20 min) is neither.
    key(&mut a, "]");
    assert_eq!(a.list.selected_id, Some(2));
    key(&mut a, "]");
    assert_eq!(a.list.selected_id, Some(3));
    key(&mut a, "]");
    assert_eq!(a.list.selected_id, Some(5));
    key(&mut a, "[");
    assert_eq!(a.list.selected_id, Some(3));
    key(&mut a, "B");
    assert_eq!(a.list.selected, 5);
    key(&mut a, "H");
    assert_eq!(a.list.selected, 0);
    key(&mut a, "M");
    assert_eq!(a.list.selected, 2);
}

#[test]
fn an_unbound_key_says_so() {
    let mut a = loaded_app(120, 40);
    let fx = key(&mut a, "z");
    assert!(fx.is_empty());
    assert_eq!(message(&a), "z is not bound here · ? lists keys");
    key(&mut a, "enter");
    update(&mut a, Action::Loaded(Loaded::Claimed(1, Ok(claim(1)))));
    key(&mut a, "ctrl-y");
    assert_eq!(message(&a), "ctrl-y is not bound here · ? lists keys");
}

#[test]
fn marks_then_reject_asks_with_the_count_and_decides_exactly_those() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "j v v");
    key(&mut a, "j v");
    assert_eq!(a.marked.keys().copied().collect::<Vec<_>>(), vec![2, 3, 5]);
    assert!(message(&a).contains("3 items marked"), "{}", message(&a));
    // No bulk approve.
    assert!(key(&mut a, "a").is_empty());
    assert!(
        message(&a).contains("never done in bulk"),
        "{}",
        message(&a)
    );
    key(&mut a, "r");
    assert_eq!(a.mode, Mode::Reject);
    key(&mut a, "1");
    assert_eq!(a.mode, Mode::Confirm);
    let q = signoff::tui::update::bulk_question(&a).unwrap();
    assert!(q.starts_with("reject 3 items as '"), "{q}");
    let fx = key(&mut a, "y");
    let reason = a.policy.reject_reasons[0].key.clone();
    assert_eq!(
        fx,
        vec![Effect::DecideMany {
            items: vec![(2, 1), (3, 1), (5, 1)],
            kind: DecisionKind::Reject { reason },
        }]
    );
    // A failure is reported and stays marked; the rest leave the marks.
    update(
        &mut a,
        Action::Loaded(Loaded::DecidedMany {
            verb: "reject",
            done: vec![2, 5],
            failed: vec![(3, "held by bob".into())],
        }),
    );
    assert_eq!(a.marked.keys().copied().collect::<Vec<_>>(), vec![3]);
    assert!(message(&a).contains("#3: held by bob"), "{}", message(&a));
    key(&mut a, "esc");
    assert!(a.marked.is_empty());
}

#[test]
fn mark_all_marks_what_the_filter_shows_and_escalate_asks_first() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "V");
    assert_eq!(a.marked.len(), 6);
    key(&mut a, "V");
    assert!(a.marked.is_empty(), "V again clears");
    key(&mut a, "V x");
    assert_eq!(a.mode, Mode::Escalate);
    key(&mut a, "enter");
    assert_eq!(a.mode, Mode::Confirm);
    assert!(
        signoff::tui::update::bulk_question(&a)
            .unwrap()
            .starts_with("escalate 6 items to '")
    );
    assert!(key(&mut a, "n").is_empty());
    assert_eq!((a.mode, a.marked.len()), (Mode::List, 6));
}

#[tokio::test]
async fn bulk_reject_decides_each_marked_item_with_its_own_claim() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    // Someone else holds #4: its failure is reported and the others still go through.
    let bob = LocalQueue::open(&db.path, policy(), &store_options()).expect("bob");
    bob.claim(4, "bob").await.expect("bob claims");
    h.keys(":").await;
    for x in type_text("sort age asc") {
        h.send(x).await;
    }
    h.keys("enter").await;
    let order: Vec<i64> = h.app.list.page.items.iter().map(|r| r.id).collect();
    assert_eq!(order, vec![6, 4, 1, 3, 2, 5]);
    h.keys("g g v v v").await;
    assert_eq!(
        h.app.marked.keys().copied().collect::<Vec<_>>(),
        vec![1, 4, 6]
    );
    h.keys("r 2 y").await;
    let m = h.app.message.clone().unwrap().0;
    assert!(m.contains("2 done, 1 not") && m.contains("#4"), "{m}");
    let store = signoff::store::Store::open(&db.path, policy(), &store_options()).unwrap();
    let states: Vec<(i64, String)> = store
        .connection()
        .prepare("SELECT id, state FROM requests ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        states,
        vec![
            (1, "rejected".to_string()),
            (2, "pending".into()),
            (3, "pending".into()),
            (4, "in_review".into()),
            (5, "pending".into()),
            (6, "rejected".into()),
        ]
    );
    assert_eq!(h.app.marked.keys().copied().collect::<Vec<_>>(), vec![4]);
}

#[test]
fn saved_views_apply_by_key_and_by_name() {
    let mut a = loaded_app(120, 40);
    a.views = vec![
        signoff::tui::ViewConfig {
            name: "urgent billing".into(),
            filter: "p:urgent,high intent:billing_question".into(),
            sort: "age desc".into(),
        },
        signoff::tui::ViewConfig {
            name: "unsure".into(),
            filter: "c<0.6".into(),
            sort: "confidence".into(),
        },
    ];
    let fx = key(&mut a, "f1");
    assert!(
        fx.iter().any(|e| matches!(e, Effect::LoadPage { .. })),
        "{fx:?}"
    );
    assert_eq!(a.list.filter_text, "p:urgent,high intent:billing_question");
    assert_eq!(a.list.query.sort, signoff::queue::Sort::Oldest);
    run(&mut a, "view unsure");
    assert_eq!(a.list.filter_text, "c<0.6");
    assert_eq!(a.list.query.sort, signoff::queue::Sort::Confidence);
    key(&mut a, "f3");
    assert!(message(&a).contains("no saved view 3"), "{}", message(&a));
    // `:view` completes names.
    key(&mut a, ":");
    for x in type_text("view ur") {
        update(&mut a, x);
    }
    key(&mut a, "tab");
    assert_eq!(a.cmdline.text, "view urgent billing ");
}

#[test]
fn a_saved_state_is_restored_and_a_bad_filter_in_it_is_dropped() {
    let mut a = app(120, 40);
    signoff::tui::update::restore(
        &mut a,
        signoff::tui::persist::UiState {
            sort: Some(signoff::queue::Sort::SlaDue),
            filter: "p:high".into(),
            selected: Some(3),
            decided: false,
            list_pct: None,
        },
    );
    assert_eq!(a.list.query.sort, signoff::queue::Sort::SlaDue);
    assert_eq!(a.list.filter_text, "p:high");
    assert_eq!(a.list.selected_id, Some(3));
    let mut b = app(120, 40);
    signoff::tui::update::restore(
        &mut b,
        signoff::tui::persist::UiState {
            filter: "bogus:x".into(),
            ..Default::default()
        },
    );
    assert_eq!(b.list.filter_text, "");
}

#[tokio::test]
async fn a_timeline_reads_as_sentences_with_one_edit_for_a_picker() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    // #3 (high, billing) is opened, its priority moved with several arrow presses and
    // committed, then approved and dispatched in sandbox mode.
    h.keys(":").await;
    for x in type_text("3") {
        h.send(x).await;
    }
    h.keys("enter").await;
    assert_eq!(h.app.list.selected_id, Some(3));
    h.keys("enter").await;
    assert_eq!(h.app.mode, Mode::Review);
    h.keys("e tab tab").await;
    let form = h.app.form.as_ref().unwrap();
    assert_eq!(form.fields[form.focus].field, EditableField::Priority);
    h.keys("right left left").await;
    h.keys("ctrl-s").await;
    assert_eq!(h.app.mode, Mode::Review, "{:?}", h.app.message);
    h.keys("a").await;
    let m = h.app.message.clone().unwrap().0;
    assert!(m.contains("approved #3"), "{m}");
    // Dispatch with the undo window over (the clock moves on).
    let clock = signoff::clock::Clock::fixed(NOW + 3_600_000);
    let cfg = signoff::actions::ActionsConfig::default();
    let opts = signoff::store::StoreOptions {
        clock,
        ..store_options()
    };
    let summary = signoff::actions::dispatch_with(
        &db.path,
        policy(),
        &opts,
        &cfg,
        true,
        "test-worker",
        std::future::pending(),
    )
    .await
    .expect("dispatch");
    assert_eq!(summary.sandbox, 2, "{summary:?}");
    let entries = h.queue.timeline(3).await.unwrap();
    let lines: Vec<String> = signoff::tui::view::timeline::sentences(&entries)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let text = lines.join("\n");
    eprintln!("{text}");
    assert!((4..=6).contains(&lines.len()), "{text}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("changed priority"))
            .count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("ana changed priority high → urgent"),
        "{text}"
    );
    assert!(text.contains("ana opened it for review"), "{text}");
    assert!(text.contains("ana approved"), "{text}");
    assert!(
        !text.contains('{') && !text.contains("1795"),
        "no JSON, no epoch millis: {text}"
    );
}

#[tokio::test]
async fn decided_items_show_their_decision_and_open_read_only() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    // #1 (second in queue order) approved with one key.
    h.keys("j").await;
    assert_eq!(h.app.list.selected_id, Some(1));
    h.keys("a").await;
    assert!(h.app.message.clone().unwrap().0.contains("approved #1"));
    h.keys("D").await;
    assert!(!h.app.list.query.states.is_empty());
    let screen = h.screen();
    assert!(screen.contains("approved · ana · 0s ago"), "{screen}");
    h.keys("g g").await;
    assert_eq!(h.app.list.selected_id, Some(1));
    h.keys("enter").await;
    assert_eq!(h.app.mode, Mode::Review);
    assert_eq!((h.app.open, h.app.claim.clone()), (Some(1), None));
    let m = h.app.message.clone().unwrap();
    assert_eq!(m.1, Level::Info, "{m:?}");
    assert!(m.0.contains("#1 is decided: shown read-only"), "{m:?}");
    h.keys("a").await;
    let m = h.app.message.clone().unwrap().0;
    assert!(m.contains("#1 is already approved"), "{m}");
    h.keys("esc").await;
    assert_eq!(h.app.mode, Mode::List);
}

#[test]
fn plus_and_minus_size_the_list_and_the_size_is_kept() {
    let mut a = loaded_app(120, 40);
    let dir = tempfile::tempdir().unwrap();
    a.state_dir = Some(dir.path().to_path_buf());
    let rows = signoff::tui::view::layout::list_rows(&a);
    let fx = key(&mut a, "+ +");
    assert_eq!(a.list_pct, 60);
    assert!(signoff::tui::view::layout::list_rows(&a) > rows);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::SaveUiState(_, s) if s.list_pct == Some(60))),
        "{fx:?}"
    );
    key(&mut a, "- - - - - -");
    assert_eq!(a.list_pct, 20, "bounded");
    let mut b = app(120, 40);
    signoff::tui::update::restore(
        &mut b,
        signoff::tui::persist::UiState {
            list_pct: Some(70),
            ..Default::default()
        },
    );
    assert_eq!(b.list_pct, 70);
}

#[test]
fn y_copies_a_field_with_osc52() {
    let mut a = loaded_app(120, 40);
    key(&mut a, "j");
    key(&mut a, "y");
    assert_eq!(a.mode, Mode::Copy);
    let items = signoff::tui::update::copy_items(&a);
    assert_eq!(items[0], ("item number", "2".to_string()));
    let i = items.iter().position(|(l, _)| *l == "sender").unwrap();
    let fx = key(&mut a, &(i + 1).to_string());
    assert_eq!(
        fx,
        vec![Effect::CopyToClipboard("Mallory <m@evil.example>".into())]
    );
    assert_eq!(a.mode, Mode::List);
    assert!(message(&a).contains("copied the sender"), "{}", message(&a));
    // Only base64 reaches the terminal, whatever the text holds.
    let seq = signoff::tui::update::osc52("Invoice \u{1b}[31m");
    assert_eq!(seq, "\u{1b}]52;c;SW52b2ljZSAbWzMxbQ==\u{7}");
    key(&mut a, "y esc");
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn a_long_message_says_how_to_read_it_all_and_m_shows_it() {
    let mut a = loaded_app(80, 24);
    let long = format!("start {} end", "word ".repeat(40));
    a.message = Some((long.clone(), Level::Warn));
    let screen = render(&a);
    assert!(screen.contains("… m: all"), "{screen}");
    assert!(
        screen.contains("? help"),
        "the footer keeps ? help: {screen}"
    );
    key(&mut a, "m");
    assert_eq!(a.mode, Mode::Message);
    let screen = render(&a);
    assert!(screen.contains("end"), "{screen}");
    key(&mut a, "esc");
    assert_eq!(a.mode, Mode::List);
}

#[test]
fn offline_keeps_the_claim_and_the_edits_and_sends_them_when_back() {
    let mut a = opened();
    a.token = Some(5);
    key(&mut a, "e");
    for act in type_text("URGENT ") {
        update(&mut a, act);
    }
    let fx = update(&mut a, Action::Tick(NOW + SAVE_DEBOUNCE_MS + 1));
    assert!(
        matches!(&fx[..], [Effect::SaveEdit(_, EditableField::Summary, _)]),
        "{fx:?}"
    );
    let down =
        || QueueError::Unavailable("cannot reach the queue server at unix:/s: refused".into());
    // The save and the heartbeat cannot reach the server.
    update(
        &mut a,
        Action::Loaded(Loaded::Edited(EditableField::Summary, Err(down()))),
    );
    assert!(a.offline);
    assert_eq!(
        a.message.clone().unwrap().0,
        "offline — retrying · your edits are kept here"
    );
    update(
        &mut a,
        Action::Loaded(Loaded::Heartbeat {
            id: 1,
            fence: 7,
            result: Err(down()),
        }),
    );
    assert_eq!(a.claim.as_ref().map(|c| c.id), Some(1), "the claim is kept");
    update(&mut a, Action::Loaded(Loaded::Token(Err(down()))));
    assert_eq!(a.mode, Mode::Edit, "the form stays open");
    // Back: a refresh, and the unsaved edit goes out again.
    let fx = update(&mut a, Action::Loaded(Loaded::Token(Ok(5))));
    assert!(!a.offline);
    assert_eq!(a.message.clone().unwrap().0, "back online");
    assert!(
        fx.iter().any(|e| matches!(e, Effect::SaveEdit(_, EditableField::Summary, Some(v)) if v.starts_with("URGENT"))),
        "{fx:?}"
    );
    assert!(fx.contains(&Effect::LoadCounts), "{fx:?}");
}

#[test]
fn a_read_only_console_lists_no_decision_keys_in_the_footer_or_the_help() {
    let mut a = loaded_app(120, 40);
    let footer = |a: &App| render(a).lines().last().unwrap_or_default().to_string();
    assert!(footer(&a).contains("a approve"), "{}", footer(&a));
    a.read_only = true;
    a.dirty = true;
    let f = footer(&a);
    for gone in ["approve", "reject", "edit", "escalate", "undo"] {
        assert!(!f.contains(gone), "{gone} in the read-only footer: {f}");
    }
    assert!(f.contains("? help"), "{f}");
    key(&mut a, "?");
    let help = render(&a);
    assert!(help.contains("timeline"), "{help}");
    for gone in [
        "approve",
        "reject with",
        "resend dead actions",
        "pause/resume all",
    ] {
        assert!(
            !help.contains(gone),
            "{gone} in the read-only help:\n{help}"
        );
    }
}

#[tokio::test]
async fn messages_that_stop_being_true_are_cleared() {
    let db = seeded_db();
    let mut h = Headless::new(&db, 120, 40).await;
    let msg = |h: &Headless| h.app.message.as_ref().map(|(m, _)| m.clone());
    h.keys("enter").await;
    assert!(
        msg(&h).is_some_and(|m| m.contains("is yours while it is open")),
        "{:?}",
        msg(&h)
    );
    h.keys("e").await;
    assert!(
        msg(&h).is_some_and(|m| m.starts_with("editing")),
        "{:?}",
        msg(&h)
    );
    // Leaving the form: the form's message goes, the claim's does not come back.
    h.keys("esc").await;
    assert!(h.app.form.is_none());
    assert_eq!(msg(&h), None);
    // Opened again, then given back: "is yours" no longer holds.
    h.keys("esc").await;
    h.keys("enter").await;
    assert!(
        msg(&h).is_some_and(|m| m.contains("is yours")),
        "{:?}",
        msg(&h)
    );
    h.keys("esc").await;
    assert!(h.app.claim.is_none());
    assert!(
        !msg(&h).is_some_and(|m| m.contains("is yours")),
        "{:?}",
        msg(&h)
    );
}

#[test]
fn o_opens_the_first_link_with_a_display_and_shows_it_for_copying_without() {
    use signoff::tui::update::first_link;
    let mut a = loaded_app(120, 40);
    // The hostile fixture hides its link in an OSC 8 sequence: the link ends at the BEL.
    let target = a
        .details
        .iter()
        .find(|(_, d)| first_link(d).is_some())
        .map(|(id, _)| *id)
        .expect("a fixture with a link");
    for _ in 0..10 {
        if a.current_id() == Some(target) {
            break;
        }
        key(&mut a, "j");
    }
    assert_eq!(a.current_id(), Some(target));
    a.browser = None;
    assert_eq!(key(&mut a, "o"), vec![]);
    let (m, _) = a.message.clone().expect("message");
    assert_eq!(
        m,
        "link: https://evil.example · no display here to open it: y copies it"
    );
    a.browser = Some("firefox".into());
    assert_eq!(
        key(&mut a, "o"),
        vec![Effect::OpenLink {
            browser: "firefox".into(),
            url: "https://evil.example".into()
        }]
    );
    // y offers it too.
    assert!(
        signoff::tui::update::copy_items(&a)
            .iter()
            .any(|(label, text)| *label == "first link" && text == "https://evil.example")
    );
    // An item without a link says so.
    key(&mut a, "g");
    key(&mut a, "g");
    if first_link(a.current_detail().unwrap()).is_none() {
        assert_eq!(key(&mut a, "o"), vec![]);
        assert_eq!(a.message.clone().unwrap().0, "no link in this request");
    }
}

#[test]
fn links_open_only_with_a_local_display() {
    use signoff::tui::browser_from_env;
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(browser_from_env(env(&[])), None, "over SSH: no display");
    assert_eq!(browser_from_env(env(&[("BROWSER", "firefox")])), None);
    assert_eq!(
        browser_from_env(env(&[("DISPLAY", ":0")])).as_deref(),
        Some("xdg-open")
    );
    assert_eq!(
        browser_from_env(env(&[
            ("WAYLAND_DISPLAY", "wayland-0"),
            ("BROWSER", "firefox")
        ]))
        .as_deref(),
        Some("firefox")
    );
}

#[test]
fn with_ui_mouse_a_click_selects_a_row_and_the_wheel_moves() {
    use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let ev = |kind, column, row| {
        Action::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let mut a = loaded_app(120, 40);
    let click = |row| ev(MouseEventKind::Down(MouseButton::Left), 10, row);
    // Off by default: the mouse does nothing.
    assert_eq!(update(&mut a, click(4)), vec![]);
    assert_eq!(a.list.selected, 0);
    a.mouse = true;
    // Row 0 is the top border, row 1 the column headers: row 4 is the third item.
    update(&mut a, click(4));
    assert_eq!(a.list.selected, 2);
    assert_eq!(a.mode, Mode::List, "a click selects, it never opens");
    update(&mut a, ev(MouseEventKind::ScrollDown, 10, 5));
    assert_eq!(a.list.selected, 3);
    update(&mut a, ev(MouseEventKind::ScrollUp, 10, 5));
    assert_eq!(a.list.selected, 2);
    // The border and the headers select nothing.
    update(&mut a, click(0));
    update(&mut a, click(1));
    assert_eq!(a.list.selected, 2);
    // The wheel over the AI pane scrolls it.
    let ai_row = 30;
    update(&mut a, ev(MouseEventKind::ScrollDown, 100, ai_row));
    assert_eq!((a.list.selected, a.ai_scroll), (2, 3));
}
