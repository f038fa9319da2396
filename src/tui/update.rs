//! `update(&mut App, Action) -> Vec<Effect>`: the only place state changes. Pure: no I/O,
//! no clock (time arrives as `Action::Tick`), so every action is testable without a terminal.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Action, Cmd, Effect, Loaded, Pane};
use super::app::{App, EditForm, FieldInput, FormField, Level, LineInput, Mode};
use super::filter;
use super::keymap::{Key, Resolved};
use super::view::layout::list_rows;
use crate::model::{DecisionKind, EditableField, FieldValues, check_fields};
use crate::queue::{Decision, ListQuery, QueueError};

/// Unsaved text in the edit form is saved after this long without a keystroke.
pub const SAVE_DEBOUNCE_MS: i64 = 800;

/// Applies one action.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    app.dirty = true;
    match action {
        Action::Key(ev) => key(app, ev),
        Action::Cmd(c) => command(app, c),
        Action::Paste(text) => paste(app, &text),
        Action::Resize(w, h) => {
            app.width = w;
            app.height = h;
            follow_selection(app);
            ensure_window(app)
        }
        Action::Tick(now) => tick(app, now),
        Action::Poll => {
            app.dirty = false;
            vec![Effect::PollToken]
        }
        Action::Loaded(l) => loaded(app, l),
    }
}

/// What to ask for when the console starts.
pub fn init(app: &mut App) -> Vec<Effect> {
    let mut fx = reload(app);
    fx.push(Effect::LoadCounts);
    fx.push(Effect::PollToken);
    fx
}

fn say(app: &mut App, level: Level, text: impl Into<String>) {
    app.message = Some((text.into(), level));
}

fn key(app: &mut App, ev: KeyEvent) -> Vec<Effect> {
    let k = Key::from_event(&ev);
    let mode = app.mode;
    let pending = app.pending_key.take();
    let res = app
        .keymap
        .resolve(mode, pending, k, |c| enabled(app, mode, c));
    match res {
        Resolved::Cmd(c) => command(app, c),
        Resolved::Prefix => {
            app.pending_key = Some(k);
            app.dirty = false;
            Vec::new()
        }
        Resolved::None if pending.is_some() => {
            // `g` then something else: take the second key on its own.
            key(app, ev)
        }
        Resolved::None => {
            if mode.takes_text() {
                return text_key(app, ev);
            }
            // A bound but disabled command says why; anything else is ignored quietly.
            if let Resolved::Cmd(c) = app.keymap.resolve(mode, None, k, |_| true) {
                let why = why_disabled(app, c);
                say(app, Level::Warn, why);
            } else {
                app.dirty = false;
            }
            Vec::new()
        }
    }
}

/// Who holds the item, if someone else does and their lease is live.
fn held_by_other(app: &App, id: i64) -> Option<(String, i64)> {
    let row = app
        .list
        .page
        .items
        .iter()
        .find(|r| r.id == id)
        .or_else(|| app.details.get(&id).map(|d| &d.summary))?;
    match (&row.claimed_by, row.lease_expires) {
        (Some(who), Some(until)) if *who != app.reviewer && until > app.now => {
            Some((who.clone(), until - app.now))
        }
        _ => None,
    }
}

pub fn can_decide(app: &App) -> bool {
    !app.read_only
        && app.deciding.is_none()
        && app
            .current_id()
            .is_some_and(|id| held_by_other(app, id).is_none())
}

fn undo_open(app: &App) -> bool {
    !app.read_only
        && app
            .last_decision
            .as_ref()
            .is_some_and(|(_, until, _)| *until > app.now)
}

/// Whether a command takes its key now. Disabled commands show muted in the footer and leave
/// their key to a focused text field.
pub fn enabled(app: &App, mode: Mode, c: Cmd) -> bool {
    match c {
        Cmd::Approve | Cmd::Reject | Cmd::Escalate | Cmd::Edit => can_decide(app),
        Cmd::Undo => undo_open(app),
        Cmd::Open => app.selected_row().is_some(),
        Cmd::Diff | Cmd::Preview | Cmd::Timeline => app.current_id().is_some(),
        Cmd::PickNext | Cmd::PickPrev => {
            mode == Mode::Edit
                && app.form.as_ref().is_some_and(|f| {
                    matches!(
                        f.fields.get(f.focus).map(|x| &x.input),
                        Some(FieldInput::Pick { .. })
                    )
                })
        }
        Cmd::ExternalEditor => {
            mode == Mode::Edit
                && app.form.as_ref().is_some_and(|f| {
                    matches!(
                        f.fields.get(f.focus).map(|x| &x.input),
                        Some(FieldInput::Text(_))
                    )
                })
        }
        Cmd::Back if mode == Mode::List => !app.list.filter_text.is_empty(),
        _ => true,
    }
}

fn why_disabled(app: &App, c: Cmd) -> String {
    if app.read_only
        && matches!(
            c,
            Cmd::Approve | Cmd::Reject | Cmd::Escalate | Cmd::Edit | Cmd::Undo
        )
    {
        return "read-only: this console shows everything and decides nothing".into();
    }
    if let Some((who, left)) = app.current_id().and_then(|id| held_by_other(app, id)) {
        return format!(
            "{} is reviewing this item ({} left); pick another",
            who,
            fmt_left(left)
        );
    }
    match c {
        Cmd::Undo => "nothing to undo: the undo window has closed or no decision was made".into(),
        _ if app.deciding.is_some() => "a decision is on its way…".into(),
        _ if app.current_id().is_none() => "no item selected".into(),
        _ => format!("{} is not available here", c.name()),
    }
}

pub fn fmt_left(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn command(app: &mut App, c: Cmd) -> Vec<Effect> {
    match c {
        Cmd::ForceQuit | Cmd::Quit => quit(app),
        Cmd::Redraw => vec![Effect::ClearScreen],
        Cmd::Help | Cmd::Palette => {
            if app.mode != Mode::Help {
                app.return_mode = app.mode;
            }
            app.mode = Mode::Help;
            app.palette = LineInput::default();
            app.palette_sel = 0;
            Vec::new()
        }
        _ => match app.mode {
            Mode::List | Mode::Review => base_command(app, c),
            Mode::Edit => edit_command(app, c),
            Mode::Reject | Mode::Escalate => picker_command(app, c),
            Mode::Note => match c {
                Cmd::Submit => {
                    let reason = app.reject_reason.clone().unwrap_or_default();
                    let note = app.note.text.trim().to_string();
                    decide(
                        app,
                        DecisionKind::Reject { reason },
                        Some(note).filter(|n| !n.is_empty()),
                    )
                }
                Cmd::Back => {
                    app.mode = Mode::Reject;
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Mode::Filter => match c {
                Cmd::Submit => apply_filter(app),
                Cmd::Back => {
                    app.mode = Mode::List;
                    app.filter_input = LineInput::with(&app.list.filter_text);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Mode::Help => help_command(app, c),
            Mode::Diff | Mode::Preview | Mode::Timeline => match c {
                Cmd::Back => {
                    app.mode = app.return_mode;
                    app.overlay_scroll = 0;
                    Vec::new()
                }
                _ => {
                    scroll(&mut app.overlay_scroll, c, app.height);
                    Vec::new()
                }
            },
        },
    }
}

fn quit(app: &mut App) -> Vec<Effect> {
    let mut fx = save_form(app);
    if let Some(claim) = app.claim.take() {
        fx.push(Effect::Release(claim));
    }
    app.quit = true;
    fx.push(Effect::Quit);
    fx
}

/// Scrolls an offset by a movement command.
fn scroll(offset: &mut u16, c: Cmd, height: u16) {
    let half = (height / 2).max(1);
    *offset = match c {
        Cmd::Down => offset.saturating_add(1),
        Cmd::Up => offset.saturating_sub(1),
        Cmd::HalfPageDown => offset.saturating_add(half),
        Cmd::HalfPageUp => offset.saturating_sub(half),
        Cmd::PageDown => offset.saturating_add(half * 2),
        Cmd::PageUp => offset.saturating_sub(half * 2),
        Cmd::Top => 0,
        Cmd::Bottom => u16::MAX / 2,
        _ => *offset,
    };
}

fn is_move(c: Cmd) -> bool {
    matches!(
        c,
        Cmd::Down
            | Cmd::Up
            | Cmd::Top
            | Cmd::Bottom
            | Cmd::HalfPageDown
            | Cmd::HalfPageUp
            | Cmd::PageDown
            | Cmd::PageUp
    )
}

fn base_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    if is_move(c) {
        if app.mode == Mode::Review || app.focus != Pane::List {
            let h = app.height;
            match app.focus {
                Pane::Raw => scroll(&mut app.raw_scroll, c, h),
                _ => scroll(&mut app.ai_scroll, c, h),
            }
            return Vec::new();
        }
        return move_selection(app, c);
    }
    match c {
        Cmd::SwitchPane => {
            app.focus = match (app.mode, app.focus) {
                (Mode::Review, Pane::Raw) => Pane::Ai,
                (Mode::Review, _) => Pane::Raw,
                (_, Pane::List) => Pane::Raw,
                (_, Pane::Raw) => Pane::Ai,
                (_, Pane::Ai) => Pane::List,
            };
            Vec::new()
        }
        Cmd::Open => open(app, None),
        Cmd::Back => {
            if app.mode == Mode::Review {
                close(app)
            } else if !app.list.filter_text.is_empty() {
                app.list.filter_text.clear();
                app.filter_input = LineInput::default();
                app.list.query.filter = Default::default();
                app.list.selected = 0;
                app.list.top = 0;
                say(app, Level::Info, "filter cleared");
                reload(app)
            } else {
                app.dirty = false;
                Vec::new()
            }
        }
        Cmd::Approve => decide(app, DecisionKind::Approve, None),
        Cmd::Reject | Cmd::Escalate => {
            if !can_decide(app) {
                let why = why_disabled(app, c);
                say(app, Level::Warn, why);
                return Vec::new();
            }
            let (mode, n) = if c == Cmd::Reject {
                (Mode::Reject, app.policy.reject_reasons.len())
            } else {
                (Mode::Escalate, app.policy.escalation_queues.len())
            };
            if n == 0 {
                say(
                    app,
                    Level::Warn,
                    format!(
                        "the policy lists no {}",
                        if c == Cmd::Reject {
                            "reject reasons"
                        } else {
                            "escalation queues"
                        }
                    ),
                );
                return Vec::new();
            }
            app.return_mode = app.mode;
            app.mode = mode;
            app.pick = 0;
            app.note = LineInput::default();
            Vec::new()
        }
        Cmd::Edit => {
            if !can_decide(app) {
                let why = why_disabled(app, c);
                say(app, Level::Warn, why);
                return Vec::new();
            }
            if app.open.is_none() || app.claim.is_none() {
                return open(app, Some(Cmd::Edit));
            }
            start_edit(app)
        }
        Cmd::Undo => match app.last_decision.clone() {
            Some((id, until, _)) if until > app.now && !app.read_only => {
                say(app, Level::Info, format!("undoing the decision on #{id}…"));
                vec![Effect::Undo(id)]
            }
            _ => {
                let why = why_disabled(app, Cmd::Undo);
                say(app, Level::Warn, why);
                Vec::new()
            }
        },
        Cmd::Diff | Cmd::Preview | Cmd::Timeline => {
            let Some(id) = app.current_id() else {
                say(app, Level::Warn, "no item selected");
                return Vec::new();
            };
            app.return_mode = app.mode;
            app.overlay_scroll = 0;
            app.mode = match c {
                Cmd::Diff => Mode::Diff,
                Cmd::Preview => Mode::Preview,
                _ => Mode::Timeline,
            };
            if c == Cmd::Timeline {
                app.timeline = None;
                return vec![Effect::LoadTimeline(id)];
            }
            Vec::new()
        }
        Cmd::Filter => {
            app.mode = Mode::Filter;
            app.filter_input = LineInput::with(&app.list.filter_text);
            Vec::new()
        }
        Cmd::Sort => {
            app.list.query.sort = app.list.query.sort.next();
            app.list.selected = 0;
            app.list.top = 0;
            let label = app.list.query.sort.label();
            say(app, Level::Info, format!("sorted by {label}"));
            reload(app)
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}

fn move_selection(app: &mut App, c: Cmd) -> Vec<Effect> {
    let total = app.list.page.total;
    if total == 0 {
        app.dirty = false;
        return Vec::new();
    }
    let rows = u64::from(list_rows(app).max(1));
    let half = (rows / 2).max(1);
    let last = total - 1;
    let sel = app.list.selected;
    let new = match c {
        Cmd::Down => sel.saturating_add(1),
        Cmd::Up => sel.saturating_sub(1),
        Cmd::Top => 0,
        Cmd::Bottom => last,
        Cmd::HalfPageDown => sel.saturating_add(half),
        Cmd::HalfPageUp => sel.saturating_sub(half),
        Cmd::PageDown => sel.saturating_add(rows),
        Cmd::PageUp => sel.saturating_sub(rows),
        _ => sel,
    }
    .min(last);
    if new == sel {
        app.dirty = false;
        return Vec::new();
    }
    app.list.selected = new;
    app.raw_scroll = 0;
    app.ai_scroll = 0;
    follow_selection(app);
    ensure_window(app)
}

/// Keeps the selection on screen.
fn follow_selection(app: &mut App) {
    let rows = u64::from(list_rows(app).max(1));
    let l = &mut app.list;
    if l.page.total > 0 {
        l.selected = l.selected.min(l.page.total - 1);
    } else {
        l.selected = 0;
    }
    // Past an edge the list jumps half a screen rather than one row: the rows move on
    // screen once per half page instead of on every key, which over a slow link is most
    // of the bytes a `j` costs.
    if l.selected < l.top {
        l.top = l.selected.saturating_sub(rows / 2);
    } else if l.selected >= l.top + rows {
        l.top = (l.selected + 1 + rows / 2).saturating_sub(rows);
    }
    let max_top = l.page.total.saturating_sub(rows);
    l.top = l.top.min(max_top);
}

/// The page request for the rows around the screen.
fn page_effect(app: &mut App) -> Effect {
    let rows = u64::from(list_rows(app).max(1));
    let offset = app.list.top.saturating_sub(rows);
    let limit = (rows * 3).clamp(30, 600);
    app.list.generation += 1;
    app.list.loading = true;
    app.list.requested = Some((offset, offset + limit));
    let query = ListQuery {
        offset,
        limit: limit as u32,
        ..app.list.query.clone()
    };
    Effect::LoadPage {
        query,
        generation: app.list.generation,
    }
}

/// Asks again for the rows on screen (the query or the queue changed).
fn reload(app: &mut App) -> Vec<Effect> {
    vec![page_effect(app)]
}

/// Fetches the rows on screen when the page does not hold them, and their details.
fn ensure_window(app: &mut App) -> Vec<Effect> {
    let rows = u64::from(list_rows(app).max(1));
    let l = &app.list;
    // Rows that exist on screen; none (an empty result) needs no fetch.
    let want = (l.top, (l.top + rows).min(l.page.total));
    let have = (l.page.offset, l.page.offset + l.page.items.len() as u64);
    let covered = |r: (u64, u64)| want.0 >= want.1 || (r.0 <= want.0 && want.1 <= r.1);
    let mut fx = Vec::new();
    if !covered(have) && !l.requested.is_some_and(covered) {
        fx.push(page_effect(app));
    }
    fx.extend(fetch_details(app));
    fx
}

/// Details of the rows on screen and half a screen either side (so `j` past the edge finds
/// its detail already there) that are not cached or asked for yet.
fn fetch_details(app: &mut App) -> Vec<Effect> {
    let rows = u64::from(list_rows(app).max(1));
    let margin = rows / 2 + 1;
    let l = &app.list;
    let (lo, hi) = (l.top.saturating_sub(margin), l.top + rows + margin);
    let ids: Vec<i64> = l
        .page
        .items
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let abs = l.page.offset + *i as u64;
            abs >= lo && abs < hi
        })
        .map(|(_, r)| r.id)
        .filter(|id| !app.details.contains_key(id) && !app.details_requested.contains(id))
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    app.details_requested.extend(ids.iter().copied());
    vec![Effect::LoadDetails(ids)]
}

fn open(app: &mut App, then: Option<Cmd>) -> Vec<Effect> {
    let Some(row) = app.selected_row() else {
        say(app, Level::Warn, "no item selected");
        return Vec::new();
    };
    let id = row.id;
    if app.read_only {
        app.open = Some(id);
        app.mode = Mode::Review;
        app.focus = Pane::Ai;
        say(app, Level::Info, "read-only: viewing, not claiming");
        return fetch_details(app);
    }
    if let Some((who, left)) = held_by_other(app, id) {
        say(
            app,
            Level::Warn,
            format!(
                "{who} is reviewing #{id} ({} left); pick another",
                fmt_left(left)
            ),
        );
        return Vec::new();
    }
    app.claiming = Some(id);
    app.after_claim = then;
    say(app, Level::Info, format!("claiming #{id}…"));
    vec![Effect::Claim(id)]
}

fn close(app: &mut App) -> Vec<Effect> {
    let mut fx = save_form(app);
    if let Some(id) = app.open.take() {
        app.details.remove(&id);
        app.details_requested.remove(&id);
    }
    app.form = None;
    if let Some(claim) = app.claim.take() {
        fx.push(Effect::Release(claim));
    }
    app.mode = Mode::List;
    app.focus = Pane::List;
    app.raw_scroll = 0;
    app.ai_scroll = 0;
    fx.extend(reload(app));
    fx
}

/// Field edits the form holds that the queue has not confirmed, for a decision's `sets`.
fn unsaved_sets(app: &App) -> Vec<(EditableField, Option<String>)> {
    app.form
        .as_ref()
        .map(|f| {
            f.fields
                .iter()
                .filter(|x| x.value() != x.saved)
                .map(|x| (x.field, x.value()))
                .collect()
        })
        .unwrap_or_default()
}

fn decide(app: &mut App, kind: DecisionKind, note: Option<String>) -> Vec<Effect> {
    if !can_decide(app) {
        let why = why_disabled(app, Cmd::Approve);
        say(app, Level::Warn, why);
        if matches!(app.mode, Mode::Reject | Mode::Escalate | Mode::Note) {
            app.mode = app.return_mode;
        }
        return Vec::new();
    }
    let Some(id) = app.current_id() else {
        return Vec::new();
    };
    let mut sets = unsaved_sets(app);
    // Fields saved while the lease was lost are in the form, not the queue: send them all.
    if app.claim.is_none()
        && let Some(f) = &app.form
    {
        sets = f
            .fields
            .iter()
            .map(|x| (x.field, x.value()))
            .filter(|(field, v)| {
                app.details
                    .get(&id)
                    .is_none_or(|d| d.fields.get(*field) != v.as_deref())
            })
            .collect();
    }
    let claim = app.claim.clone().filter(|c| c.id == id);
    let verb = kind.verb();
    app.deciding = Some(id);
    if matches!(app.mode, Mode::Reject | Mode::Escalate | Mode::Note) {
        app.mode = app.return_mode;
    }
    say(app, Level::Info, format!("{verb}: #{id}…"));
    vec![Effect::Decide {
        id,
        claim,
        decision: Decision { kind, note, sets },
    }]
}

fn picker_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let reject = app.mode == Mode::Reject;
    let n = if reject {
        app.policy.reject_reasons.len()
    } else {
        app.policy.escalation_queues.len()
    };
    let chosen = match c {
        Cmd::Down => {
            app.pick = (app.pick + 1).min(n.saturating_sub(1));
            return Vec::new();
        }
        Cmd::Up => {
            app.pick = app.pick.saturating_sub(1);
            return Vec::new();
        }
        Cmd::Back => {
            app.mode = app.return_mode;
            return Vec::new();
        }
        Cmd::Pick(k) => usize::from(k).checked_sub(1),
        Cmd::Submit => Some(app.pick),
        _ => {
            app.dirty = false;
            return Vec::new();
        }
    };
    let Some(i) = chosen.filter(|i| *i < n) else {
        say(app, Level::Warn, format!("choose 1–{n}"));
        return Vec::new();
    };
    if reject {
        let key = app.policy.reject_reasons[i].key.clone();
        if c == Cmd::Submit {
            app.reject_reason = Some(key);
            app.note = LineInput::default();
            app.mode = Mode::Note;
            return Vec::new();
        }
        decide(app, DecisionKind::Reject { reason: key }, None)
    } else {
        let queue = app.policy.escalation_queues[i].name.clone();
        decide(app, DecisionKind::Escalate { queue }, None)
    }
}

fn start_edit(app: &mut App) -> Vec<Effect> {
    let Some(id) = app.open else {
        return Vec::new();
    };
    let Some(detail) = app.details.get(&id) else {
        say(app, Level::Warn, "the item is still loading; try again");
        return Vec::new();
    };
    let values: &FieldValues = &detail.fields;
    let pick = |opts: &Vec<String>, v: Option<&str>| FieldInput::Pick {
        options: opts.clone(),
        index: v.and_then(|v| opts.iter().position(|o| o == v)),
        original: v.map(str::to_string),
    };
    let fields = EditableField::ALL
        .into_iter()
        .map(|f| {
            let v = values.get(f);
            let mut ff = FormField {
                field: f,
                input: match f {
                    EditableField::Intent => pick(&app.policy.intents, v),
                    EditableField::Priority => pick(&app.policy.priorities, v),
                    _ => FieldInput::Text(FormField::text_area(v)),
                },
                saved: None,
            };
            // Made-visible hidden characters are not an edit until the reviewer edits.
            ff.saved = ff.value();
            ff
        })
        .collect();
    app.form = Some(EditForm {
        id,
        fields,
        focus: 0,
        errors: Default::default(),
        unsaved_since: None,
    });
    app.mode = Mode::Edit;
    say(app, Level::Info, "editing: changes are saved as you go");
    Vec::new()
}

/// Saves the fields whose value differs from the last saved one.
fn save_form(app: &mut App) -> Vec<Effect> {
    let Some(form) = app.form.as_mut() else {
        return Vec::new();
    };
    form.unsaved_since = None;
    let Some(claim) = app.claim.clone().filter(|c| c.id == form.id) else {
        return Vec::new();
    };
    let mut fx = Vec::new();
    for f in &mut form.fields {
        let v = f.value();
        if v != f.saved {
            f.saved = v.clone();
            fx.push(Effect::SaveEdit(claim.clone(), f.field, v));
        }
    }
    fx
}

fn save_focused(app: &mut App) -> Vec<Effect> {
    let Some(form) = app.form.as_mut() else {
        return Vec::new();
    };
    form.unsaved_since = None;
    let Some(claim) = app.claim.clone().filter(|c| c.id == form.id) else {
        return Vec::new();
    };
    let Some(f) = form.fields.get_mut(form.focus) else {
        return Vec::new();
    };
    let v = f.value();
    if v == f.saved {
        return Vec::new();
    }
    f.saved = v.clone();
    vec![Effect::SaveEdit(claim, f.field, v)]
}

fn flag_field(field: &str) -> Option<EditableField> {
    field.trim_start_matches("ai.").parse().ok()
}

fn edit_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let Some(n) = app.form.as_ref().map(|f| f.fields.len()) else {
        app.mode = app.base_mode();
        return Vec::new();
    };
    match c {
        Cmd::NextField | Cmd::PrevField => {
            let fx = save_focused(app);
            if let Some(f) = app.form.as_mut() {
                f.focus = if c == Cmd::NextField {
                    (f.focus + 1) % n
                } else {
                    (f.focus + n - 1) % n
                };
            }
            fx
        }
        Cmd::PickNext | Cmd::PickPrev => {
            if let Some(form) = app.form.as_mut()
                && let Some(FormField {
                    input: FieldInput::Pick { options, index, .. },
                    ..
                }) = form.fields.get_mut(form.focus)
            {
                let len = options.len();
                if len > 0 {
                    *index = Some(match (*index, c) {
                        (None, _) => 0,
                        (Some(i), Cmd::PickNext) => (i + 1) % len,
                        (Some(i), _) => (i + len - 1) % len,
                    });
                }
            }
            save_focused(app)
        }
        Cmd::Save => {
            let Some(form) = app.form.as_mut() else {
                return Vec::new();
            };
            let mut values = FieldValues::default();
            for f in &form.fields {
                values.set(f.field, f.value());
            }
            form.errors.clear();
            for flag in check_fields(&values, &app.policy) {
                if let Some(f) = flag_field(&flag.field) {
                    form.errors.insert(f, flag.message);
                }
            }
            let ok = form.errors.is_empty();
            let fx = save_form(app);
            if ok {
                app.form = None;
                app.mode = Mode::Review;
                say(app, Level::Ok, "edits saved and valid");
                let mut fx = fx;
                if let Some(id) = app.open {
                    app.details_requested.insert(id);
                    fx.push(Effect::LoadDetails(vec![id]));
                }
                fx
            } else {
                say(
                    app,
                    Level::Error,
                    "some fields are not valid; see the marks beside them",
                );
                fx
            }
        }
        Cmd::ExternalEditor => {
            let fx = save_focused(app);
            let Some(form) = app.form.as_ref() else {
                return fx;
            };
            let Some(f) = form.fields.get(form.focus) else {
                return fx;
            };
            let mut fx = fx;
            fx.push(Effect::OpenEditor(f.field, f.value().unwrap_or_default()));
            fx
        }
        Cmd::Back => {
            let mut fx = save_form(app);
            app.form = None;
            app.mode = Mode::Review;
            if let Some(id) = app.open {
                app.details_requested.insert(id);
                fx.push(Effect::LoadDetails(vec![id]));
            }
            fx
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}

/// Commands the palette lists: the table of the mode it was opened from.
pub fn palette_items(app: &App) -> Vec<(Cmd, String, &'static str)> {
    let q = app.palette.text.to_lowercase();
    app.keymap
        .table(app.return_mode)
        .iter()
        .filter(|b| {
            q.is_empty() || b.label.contains(q.as_str()) || b.cmd.name().contains(q.as_str())
        })
        .map(|b| {
            let keys = b
                .keys
                .iter()
                .map(|k| super::keymap::seq_label(k))
                .collect::<Vec<_>>()
                .join(" ");
            (b.cmd, keys, b.label)
        })
        .collect()
}

fn help_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let n = palette_items(app).len();
    match c {
        Cmd::Down => app.palette_sel = (app.palette_sel + 1).min(n.saturating_sub(1)),
        Cmd::Up => app.palette_sel = app.palette_sel.saturating_sub(1),
        Cmd::Back => app.mode = app.return_mode,
        Cmd::Submit => {
            let items = palette_items(app);
            let Some((cmd, _, _)) = items.get(app.palette_sel).cloned() else {
                return Vec::new();
            };
            app.mode = app.return_mode;
            if !enabled(app, app.mode, cmd) {
                let why = why_disabled(app, cmd);
                say(app, Level::Warn, why);
                return Vec::new();
            }
            return command(app, cmd);
        }
        _ => app.dirty = false,
    }
    Vec::new()
}

fn apply_filter(app: &mut App) -> Vec<Effect> {
    match filter::parse(&app.filter_input.text) {
        Ok(f) => {
            app.list.query.filter = f;
            app.list.filter_text = app.filter_input.text.trim().to_string();
            app.list.selected = 0;
            app.list.top = 0;
            app.mode = Mode::List;
            if app.list.filter_text.is_empty() {
                say(app, Level::Info, "filter cleared");
            } else {
                let t = app.list.filter_text.clone();
                say(app, Level::Info, format!("filter: {t}"));
            }
            reload(app)
        }
        Err(e) => {
            say(app, Level::Error, e);
            Vec::new()
        }
    }
}

/// Typing into a one-line input.
fn edit_line(input: &mut LineInput, ev: &KeyEvent) -> bool {
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    match ev.code {
        KeyCode::Char('u') if ctrl => input.text.clear(),
        KeyCode::Char('w') if ctrl => {
            let t = input.text.trim_end();
            let cut = t.rfind(char::is_whitespace).map_or(0, |i| i + 1);
            input.text.truncate(cut);
        }
        KeyCode::Char(c) if !ctrl => input.text.push(c),
        KeyCode::Backspace => {
            input.text.pop();
        }
        _ => return false,
    }
    true
}

fn text_key(app: &mut App, ev: KeyEvent) -> Vec<Effect> {
    match app.mode {
        Mode::Filter => {
            app.dirty = edit_line(&mut app.filter_input, &ev);
        }
        Mode::Note => {
            app.dirty = edit_line(&mut app.note, &ev);
        }
        Mode::Help => {
            app.dirty = edit_line(&mut app.palette, &ev);
            app.palette_sel = 0;
        }
        Mode::Edit => {
            let now = app.now;
            if let Some(form) = app.form.as_mut()
                && let Some(FormField {
                    input: FieldInput::Text(t),
                    ..
                }) = form.fields.get_mut(form.focus)
            {
                if t.input(ev) {
                    form.unsaved_since = Some(now);
                }
            } else {
                app.dirty = false;
            }
        }
        _ => app.dirty = false,
    }
    Vec::new()
}

fn paste(app: &mut App, text: &str) -> Vec<Effect> {
    // Pasted text goes only to a focused text field, never to shortcuts.
    match app.mode {
        Mode::Filter | Mode::Note | Mode::Help => {
            // Pasted text is outside text too: hidden characters become visible marks.
            let line: String = crate::text::sanitize_lines(text).join(" ");
            let input = match app.mode {
                Mode::Filter => &mut app.filter_input,
                Mode::Note => &mut app.note,
                _ => &mut app.palette,
            };
            input.text.push_str(&line);
        }
        Mode::Edit => {
            let now = app.now;
            if let Some(form) = app.form.as_mut()
                && let Some(FormField {
                    input: FieldInput::Text(t),
                    ..
                }) = form.fields.get_mut(form.focus)
            {
                t.insert_str(crate::text::sanitize_lines(text).join("\n"));
                form.unsaved_since = Some(now);
            }
        }
        _ => {
            app.dirty = false;
            say(app, Level::Info, "paste ignored: no text field is focused");
        }
    }
    Vec::new()
}

fn tick(app: &mut App, now: i64) -> Vec<Effect> {
    let old_secs = app.now / 1000;
    app.now = now;
    // Only a visible countdown (an open, claimed item) or an expired undo window redraws.
    let undo_closed = app
        .last_decision
        .as_ref()
        .is_some_and(|(_, until, _)| *until <= now && *until > old_secs * 1000);
    app.dirty = (app.claim.is_some() && now / 1000 != old_secs) || undo_closed;
    let due = app
        .form
        .as_ref()
        .and_then(|f| f.unsaved_since)
        .is_some_and(|t| now - t >= SAVE_DEBOUNCE_MS);
    if due {
        return save_focused(app);
    }
    Vec::new()
}

fn describe(e: &QueueError) -> String {
    match e {
        QueueError::LeaseLost { id, holder, .. } => format!(
            "lease lost on #{id}{}: nothing was decided; your edits are kept here — press a to claim again and decide",
            holder
                .as_ref()
                .map(|h| format!(" (now held by {h})"))
                .unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

fn loaded(app: &mut App, l: Loaded) -> Vec<Effect> {
    match l {
        Loaded::Token(Ok(t)) => {
            if app.token == Some(t) {
                app.dirty = false;
                return Vec::new();
            }
            let first = app.token.is_none();
            app.token = Some(t);
            app.dirty = false;
            if first {
                return Vec::new();
            }
            // Someone changed the queue: refresh what is on screen.
            let keep = app.open;
            app.details.retain(|id, _| Some(*id) == keep);
            app.details_requested.clear();
            let mut fx = reload(app);
            fx.push(Effect::LoadCounts);
            fx
        }
        Loaded::Token(Err(e)) => {
            say(app, Level::Error, format!("cannot reach the queue: {e}"));
            Vec::new()
        }
        Loaded::Page { generation, result } => {
            if generation != app.list.generation {
                app.dirty = false;
                return Vec::new();
            }
            app.list.loading = false;
            app.list.requested = None;
            match result {
                Ok(page) => {
                    let changed = page != app.list.page;
                    app.list.page = page;
                    follow_selection(app);
                    let mut fx = ensure_window(app);
                    // Keep details of rows near the page only; bounded memory at any queue size.
                    let keep: std::collections::HashSet<i64> = app
                        .list
                        .page
                        .items
                        .iter()
                        .map(|r| r.id)
                        .chain(app.open)
                        .collect();
                    app.details.retain(|id, _| keep.contains(id));
                    app.dirty = changed || !fx.is_empty();
                    fx.extend(fetch_details(app));
                    fx
                }
                Err(e) => {
                    say(app, Level::Error, format!("cannot load the queue: {e}"));
                    Vec::new()
                }
            }
        }
        Loaded::Counts(r) => {
            match r {
                Ok(c) => {
                    app.dirty = app.counts.as_ref() != Some(&c);
                    app.counts = Some(c);
                }
                Err(e) => say(app, Level::Error, format!("cannot count the queue: {e}")),
            }
            Vec::new()
        }
        Loaded::Details(list) => {
            for (id, r) in list {
                app.details_requested.remove(&id);
                if let Ok(d) = r {
                    app.details.insert(id, d);
                }
            }
            Vec::new()
        }
        Loaded::Claimed(id, r) => {
            app.claiming = None;
            let then = app.after_claim.take();
            match r {
                Ok(claim) => {
                    app.open = Some(id);
                    app.claim = Some(claim);
                    app.mode = Mode::Review;
                    app.focus = Pane::Ai;
                    app.raw_scroll = 0;
                    app.ai_scroll = 0;
                    say(app, Level::Ok, format!("#{id} is yours while it is open"));
                    app.details_requested.insert(id);
                    let mut fx = vec![Effect::LoadDetails(vec![id])];
                    if then == Some(Cmd::Edit) {
                        // Edit on the cached detail; the fresh one arrives right after.
                        fx.extend(start_edit(app));
                    }
                    fx
                }
                Err(e) => {
                    say(app, Level::Warn, describe(&e));
                    reload(app)
                }
            }
        }
        Loaded::Heartbeat(r) => match r {
            Ok(c) => {
                if app.claim.as_ref().is_some_and(|x| x.id == c.id) {
                    app.claim = Some(c);
                }
                Vec::new()
            }
            Err(e) => {
                app.claim = None;
                say(app, Level::Error, describe(&e));
                Vec::new()
            }
        },
        Loaded::Released(_) => {
            app.dirty = false;
            Vec::new()
        }
        Loaded::Edited(field, r) => {
            if let Err(e) = r {
                if matches!(e, QueueError::LeaseLost { .. }) {
                    app.claim = None;
                }
                say(
                    app,
                    Level::Error,
                    format!("{} not saved: {}", field.label(), describe(&e)),
                );
            } else {
                app.dirty = false;
            }
            Vec::new()
        }
        Loaded::Decided { id, verb, result } => {
            app.deciding = None;
            match result {
                Ok(receipt) => {
                    let past = match verb {
                        "approve" => "approved",
                        "reject" => "rejected",
                        _ => "escalated",
                    };
                    let n = receipt.actions.len();
                    let undo = app
                        .keymap
                        .key_for(Mode::List, Cmd::Undo)
                        .unwrap_or_else(|| "undo".into());
                    let secs = ((receipt.undo_until - app.now).max(0) + 999) / 1000;
                    say(
                        app,
                        Level::Ok,
                        format!(
                            "{past} #{id} · {n} action{} queued ({}) · {undo} to undo ({secs}s)",
                            if n == 1 { "" } else { "s" },
                            app.actions_mode
                        ),
                    );
                    app.last_decision = Some((id, receipt.undo_until, past.to_string()));
                    if app.open == Some(id) {
                        app.open = None;
                        app.claim = None;
                        app.form = None;
                        app.focus = Pane::List;
                    }
                    if matches!(app.mode, Mode::Review | Mode::Edit)
                        || app.open.is_none() && app.mode != Mode::Help
                    {
                        app.mode = Mode::List;
                    }
                    app.details.remove(&id);
                    let mut fx = reload(app);
                    fx.push(Effect::LoadCounts);
                    fx
                }
                Err(e) => {
                    if matches!(e, QueueError::LeaseLost { .. }) {
                        app.claim = None;
                    }
                    say(app, Level::Error, describe(&e));
                    reload(app)
                }
            }
        }
        Loaded::Undone(id, r) => match r {
            Ok(claim) => {
                app.last_decision = None;
                app.open = Some(id);
                app.claim = Some(claim);
                app.mode = Mode::Review;
                app.focus = Pane::Ai;
                say(app, Level::Ok, format!("undone: #{id} is back with you"));
                app.details.remove(&id);
                app.details_requested.insert(id);
                let mut fx = vec![Effect::LoadDetails(vec![id]), Effect::LoadCounts];
                fx.extend(reload(app));
                fx
            }
            Err(e) => {
                say(app, Level::Error, describe(&e));
                Vec::new()
            }
        },
        Loaded::Timeline(id, r) => {
            match r {
                Ok(entries) => app.timeline = Some((id, entries)),
                Err(e) => say(app, Level::Error, format!("timeline of #{id}: {e}")),
            }
            Vec::new()
        }
        Loaded::Editor(field, r) => match r {
            Ok(text) => {
                if let Some(form) = app.form.as_mut()
                    && let Some(i) = form.fields.iter().position(|f| f.field == field)
                {
                    let text = text.trim_end_matches('\n');
                    form.fields[i].input = FieldInput::Text(FormField::text_area(Some(text)));
                    form.focus = i;
                }
                say(
                    app,
                    Level::Ok,
                    format!("{} updated from $EDITOR", field.label()),
                );
                save_focused(app)
            }
            Err(e) => {
                say(app, Level::Error, format!("$EDITOR: {e}"));
                Vec::new()
            }
        },
    }
}
