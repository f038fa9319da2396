//! `update(&mut App, Action) -> Vec<Effect>`: the only place state changes. Pure: no I/O,
//! no clock (time arrives as `Action::Tick`), so every action is testable without a terminal.
use crossterm::event::KeyEvent;

mod actions;
mod bulk;
mod cmdline;
mod copy;
mod decide;
mod edit;
mod list;
mod loaded;
mod palette;
mod picker;
mod search;

use actions::*;
pub use actions::{STATS_EVERY_MS, confirm_question, dead_actions, is_decided, preview_digest};
pub use bulk::bulk_question;
use bulk::*;
pub use cmdline::COMMANDS;
use cmdline::*;
use copy::*;
pub use copy::{copy_items, first_link, osc52};
use decide::*;
use edit::*;
pub use list::restore;
use list::*;
use loaded::*;
pub use palette::palette_items;
use palette::*;
use picker::*;
use search::*;

use super::action::{Action, Cmd, Effect};
use super::app::{App, FieldInput, Level, LineInput, Mode};
use super::keymap::{Key, Resolved};
use crate::model::DecisionKind;
use crate::tui::filter;

/// Unsaved text in the edit form is saved after this long without a keystroke.
pub const SAVE_DEBOUNCE_MS: i64 = 800;

/// Applies one action.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    app.dirty = true;
    let fx = update_inner(app, action);
    drop_stale_message(app);
    fx
}

fn update_inner(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(ev) => key(app, ev),
        Action::Cmd(c) => command(app, c),
        // Nothing is typed into a field the reviewer cannot see.
        Action::Paste(_) if app.too_small() => {
            app.dirty = false;
            Vec::new()
        }
        Action::Paste(text) => paste(app, &text),
        Action::Resize(w, h) => {
            app.width = w;
            app.height = h;
            follow_selection(app);
            clamp_overlay_scroll(app);
            ensure_window(app)
        }
        Action::Mouse(m) => mouse(app, m),
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
    fx.extend(stats_if_due(app));
    fx
}

pub(super) fn say(app: &mut App, level: Level, text: impl Into<String>) {
    app.message = Some((text.into(), level));
    app.message_while = None;
}

/// A message that is cleared once `cond` no longer holds (a released or lost claim, a
/// closed form), so the message line never says what has stopped being true.
pub(super) fn say_while(
    app: &mut App,
    level: Level,
    text: impl Into<String>,
    cond: crate::tui::app::MessageWhile,
) {
    say(app, level, text);
    app.message_while = Some(cond);
}

/// With `ui.mouse`: the wheel moves the list's selection or scrolls the pane under the
/// pointer; a click on a list row selects it (as `j`/`k` would: nothing is opened or
/// decided by the mouse). Anything else, and everything while an overlay or a form has
/// the keys, is ignored.
fn mouse(app: &mut App, m: crossterm::event::MouseEvent) -> Vec<Effect> {
    use crossterm::event::{MouseButton, MouseEventKind};
    use ratatui::layout::{Position, Rect};
    if !app.mouse || app.too_small() || !matches!(app.mode, Mode::List | Mode::Review) {
        app.dirty = false;
        return Vec::new();
    }
    let r = crate::tui::view::layout::regions(app, Rect::new(0, 0, app.width, app.height));
    let at = Position::new(m.column, m.row);
    let over = |area: Option<Rect>| area.is_some_and(|a| a.contains(at));
    let wheel = match m.kind {
        MouseEventKind::ScrollDown => Some(true),
        MouseEventKind::ScrollUp => Some(false),
        _ => None,
    };
    if let Some(down) = wheel {
        if over(r.list) {
            return command(app, if down { Cmd::Down } else { Cmd::Up });
        }
        let step = |v: u16| {
            if down {
                v.saturating_add(3)
            } else {
                v.saturating_sub(3)
            }
        };
        if over(r.raw) {
            app.raw_scroll = step(app.raw_scroll);
        } else if over(r.ai) {
            app.ai_scroll = step(app.ai_scroll);
        } else {
            app.dirty = false;
        }
        return Vec::new();
    }
    if let (MouseEventKind::Down(MouseButton::Left), Some(list)) = (m.kind, r.list)
        && list.contains(at)
        && app.open.is_none()
    {
        let inner_top = list.y.saturating_add(1);
        let header = u16::from(crate::tui::view::layout::has_header(
            list.height.saturating_sub(2),
        ));
        let first = inner_top.saturating_add(header);
        let last = list.y.saturating_add(list.height).saturating_sub(1);
        if m.row >= first && m.row < last {
            let abs = app.list.top + u64::from(m.row - first);
            if abs < app.list.page.total {
                return search::select_row(app, abs);
            }
        }
    }
    app.dirty = false;
    Vec::new()
}

fn drop_stale_message(app: &mut App) {
    use crate::tui::app::MessageWhile;
    let holds = match app.message_while {
        None => return,
        Some(MessageWhile::Claim(id)) => app.claim.as_ref().is_some_and(|c| c.id == id),
        Some(MessageWhile::Form) => app.form.is_some(),
    };
    if !holds {
        app.message = None;
        app.message_while = None;
        app.dirty = true;
    }
}

/// Below the minimum size nothing of the item is on screen, so nothing may act on it:
/// only quit and help take keys (as on the queue screen, whatever the mode, so that `q`
/// is never typed into a field that cannot be seen), and Esc out of help.
fn paused_key(app: &mut App, ev: KeyEvent) -> Vec<Effect> {
    let k = Key::from_event(&ev);
    app.pending_key = None;
    let mode = app.mode;
    let lets_through = |c: Cmd| {
        matches!(c, Cmd::Quit | Cmd::ForceQuit | Cmd::Help)
            || (mode == Mode::Help && c == Cmd::Back)
    };
    let cmd = [mode, Mode::List].into_iter().find_map(|m| {
        match app.keymap.resolve(m, None, k, |_| true) {
            Resolved::Cmd(c) if lets_through(c) => Some(c),
            _ => None,
        }
    });
    match cmd {
        Some(c) => command(app, c),
        None => {
            // The enlarge line already says keys are paused.
            app.dirty = false;
            Vec::new()
        }
    }
}

pub(super) fn key(app: &mut App, ev: KeyEvent) -> Vec<Effect> {
    if app.too_small() {
        return paused_key(app, ev);
    }
    let k = Key::from_event(&ev);
    let mode = app.mode;
    let pending = app.pending_key.take();
    let res = app
        .keymap
        .resolve(mode, pending, k, |c| enabled(app, mode, c));
    // A count before a movement (`5j`): digits nothing else takes, on the list.
    if matches!(mode, Mode::List | Mode::Review)
        && pending.is_none()
        && res == Resolved::None
        && k.mods.is_empty()
        && let crossterm::event::KeyCode::Char(d @ '0'..='9') = k.code
        && (d != '0' || app.count.is_some())
    {
        let n = app.count.unwrap_or(0).saturating_mul(10) + (d as u32 - '0' as u32);
        app.count = Some(n.min(99_999));
        return Vec::new();
    }
    match res {
        Resolved::Cmd(c) => {
            let fx = command(app, c);
            app.count = None;
            fx
        }
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
            app.count = None;
            // A bound but disabled command says why; any other key says it is not bound.
            if let Resolved::Cmd(c) = app.keymap.resolve(mode, None, k, |_| true) {
                let why = why_disabled(app, c);
                say(app, Level::Warn, why);
            } else if is_modifier_only(&ev) {
                app.dirty = false;
            } else {
                let help = app
                    .keymap
                    .key_for(mode, Cmd::Help)
                    .or_else(|| app.keymap.key_for(Mode::List, Cmd::Help))
                    .unwrap_or_else(|| "?".into());
                say(
                    app,
                    Level::Info,
                    format!("{k} is not bound here · {help} lists keys"),
                );
            }
            Vec::new()
        }
    }
}

/// Keys that are only a modifier (some terminals report shift or ctrl on their own).
fn is_modifier_only(ev: &KeyEvent) -> bool {
    matches!(
        ev.code,
        crossterm::event::KeyCode::Modifier(_) | crossterm::event::KeyCode::Null
    )
}

/// Who holds the item, if someone else does and their lease is live.
pub(super) fn held_by_other(app: &App, id: i64) -> Option<(String, i64)> {
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

/// Whether approve, reject and escalate take their key: an item's detail is on screen
/// (loaded, with room to draw it) and nobody else holds it.
pub fn can_decide(app: &App) -> bool {
    may_change(app) && crate::tui::view::layout::shows_detail(app) && app.current_detail().is_some()
}

/// Whether the current item may be changed (edited, or decided once its detail is drawn).
/// The state of the current item when it is decided (it is then only read).
fn decided_state(app: &App) -> Option<crate::model::State> {
    let id = app.current_id()?;
    app.list
        .page
        .items
        .iter()
        .find(|r| r.id == id)
        .or_else(|| app.details.get(&id).map(|d| &d.summary))
        .map(|r| r.state)
        .filter(|s| s.is_decided())
}

fn may_change(app: &App) -> bool {
    !app.read_only
        && decided_state(app).is_none()
        && app.deciding.is_none()
        && !app.too_small()
        && app
            .current_id()
            .is_some_and(|id| held_by_other(app, id).is_none())
}

pub(super) fn undo_open(app: &App) -> bool {
    app.undo_closes_at().is_some()
}

/// Whether a command can never work for this reviewer here: a change to the queue in a
/// read-only console (`--read-only`, or an observer on a server). The footer and the help
/// leave such keys out instead of showing them muted.
pub fn hidden(app: &App, c: Cmd) -> bool {
    app.read_only
        && matches!(
            c,
            Cmd::Approve
                | Cmd::Reject
                | Cmd::Edit
                | Cmd::Escalate
                | Cmd::Undo
                | Cmd::Outcome
                | Cmd::Resend
                | Cmd::KillSwitch
                | Cmd::Mark
                | Cmd::MarkAll
        )
}

/// Whether a command takes its key now. Disabled commands show muted in the footer and leave
/// their key to a focused text field.
pub fn enabled(app: &App, mode: Mode, c: Cmd) -> bool {
    match c {
        Cmd::Reject | Cmd::Escalate if bulk_mode(app) => !app.read_only,
        Cmd::Approve if bulk_mode(app) => true,
        Cmd::Approve | Cmd::Reject | Cmd::Escalate => can_decide(app),
        // Edit opens the item first: it need not be on screen yet.
        Cmd::Edit => may_change(app),
        Cmd::Undo => undo_open(app),
        Cmd::Open => app.selected_row().is_some(),
        Cmd::Diff | Cmd::Preview | Cmd::Timeline => app.current_id().is_some(),
        Cmd::Resend => !app.read_only && !dead_actions(app).is_empty(),
        Cmd::KillSwitch => !app.read_only && app.counts.is_some(),
        Cmd::Decided => app.open.is_none(),
        Cmd::Outcome => !app.read_only && is_decided(app) && !app.policy.outcomes.is_empty(),
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
        Cmd::Back if mode == Mode::List => {
            !app.list.filter_text.is_empty() || !app.marked.is_empty()
        }
        Cmd::Search
        | Cmd::SearchNext
        | Cmd::SearchPrev
        | Cmd::NextFlagged
        | Cmd::PrevFlagged
        | Cmd::ScreenTop
        | Cmd::ScreenMiddle
        | Cmd::ScreenBottom
        | Cmd::View(_)
        | Cmd::GrowList
        | Cmd::ShrinkList => app.open.is_none(),
        Cmd::Mark => app.open.is_none() && !app.read_only && app.selected_row().is_some(),
        Cmd::MarkAll => app.open.is_none() && !app.read_only,
        _ => true,
    }
}

pub(super) fn why_disabled(app: &App, c: Cmd) -> String {
    if app.read_only
        && matches!(
            c,
            Cmd::Approve
                | Cmd::Reject
                | Cmd::Escalate
                | Cmd::Edit
                | Cmd::Undo
                | Cmd::Resend
                | Cmd::KillSwitch
                | Cmd::Outcome
        )
    {
        return "read-only: this console shows everything and decides nothing".into();
    }
    match c {
        Cmd::Resend => return "no dead actions on this item: nothing to resend".into(),
        Cmd::KillSwitch => return "the queue's counts have not loaded yet".into(),
        Cmd::Outcome if app.policy.outcomes.is_empty() => {
            return "the policy lists no outcomes".into();
        }
        Cmd::Outcome => return "outcomes are recorded on decided items".into(),
        _ => {}
    }
    if app.too_small() {
        return format!(
            "the terminal ({}×{}) is too small to show the item: enlarge it to at least {}×{}",
            app.width,
            app.height,
            crate::tui::view::layout::MIN_WIDTH,
            crate::tui::view::layout::MIN_HEIGHT
        );
    }
    if app.current_id().is_none()
        && let Some(id) = app.list.left
    {
        return format!("#{id} left the list: nothing is selected; move (j/k) to select an item");
    }
    if let Some((who, left)) = app.current_id().and_then(|id| held_by_other(app, id)) {
        return format!(
            "{} is reviewing this item ({} left); pick another",
            who,
            fmt_left(left)
        );
    }
    if let (Some(state), Some(id)) = (decided_state(app), app.current_id())
        && matches!(c, Cmd::Approve | Cmd::Reject | Cmd::Escalate | Cmd::Edit)
    {
        return format!("#{id} is already {state}: it is shown, not decided again");
    }
    let deciding = matches!(c, Cmd::Approve | Cmd::Reject | Cmd::Escalate);
    match (c, app.current_id()) {
        (Cmd::Undo, _) => {
            "nothing to undo: the undo window has closed or no decision was made".into()
        }
        _ if app.deciding.is_some() => "a decision is on its way…".into(),
        (_, None) => "no item selected".into(),
        (_, Some(id)) if deciding && !crate::tui::view::layout::shows_detail(app) => format!(
            "the terminal is too short to show #{id} beside the list: open it (enter) and read it before deciding"
        ),
        (_, Some(id)) if deciding && app.current_detail().is_none() => {
            format!("#{id} is still loading: nothing to decide on until it is on screen")
        }
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

pub(super) fn command(app: &mut App, c: Cmd) -> Vec<Effect> {
    match c {
        Cmd::ForceQuit | Cmd::Quit => quit(app),
        Cmd::Redraw => vec![Effect::ClearScreen],
        Cmd::Palette if app.mode != Mode::Command => open_cmdline(app),
        Cmd::Help => {
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
                Cmd::Complete => {
                    app.message = None;
                    let text = app.filter_input.text.clone();
                    let (head, word) = match text.rfind(' ') {
                        Some(i) => (&text[..=i], &text[i + 1..]),
                        None => ("", text.as_str()),
                    };
                    let (done, options) = filter::complete(word, &app.policy);
                    app.filter_input.text = format!("{head}{done}");
                    app.completions = options;
                    Vec::new()
                }
                Cmd::Back => {
                    app.mode = Mode::List;
                    app.filter_input = LineInput::with(&app.list.filter_text);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Mode::Help => help_command(app, c),
            Mode::Command => cmdline_command(app, c),
            Mode::Search => search_command(app, c),
            Mode::Copy => copy_command(app, c),
            Mode::Message => {
                if c == Cmd::Back {
                    app.mode = app.return_mode;
                } else {
                    app.dirty = false;
                }
                Vec::new()
            }
            Mode::Confirm => confirm_command(app, c),
            Mode::Outcome => outcome_command(app, c),
            Mode::OutcomeNote => outcome_note_command(app, c),
            Mode::Diff | Mode::Preview | Mode::Timeline | Mode::Stats => match c {
                Cmd::Back if app.mode == Mode::Preview && app.preview_escalation.is_some() => {
                    app.preview_escalation = None;
                    app.mode = Mode::Escalate;
                    app.overlay_scroll = 0;
                    Vec::new()
                }
                Cmd::Back => {
                    app.mode = app.return_mode;
                    app.overlay_scroll = 0;
                    Vec::new()
                }
                _ => {
                    scroll(&mut app.overlay_scroll, c, app.height);
                    clamp_overlay_scroll(app);
                    Vec::new()
                }
            },
        },
    }
}

pub(super) fn quit(app: &mut App) -> Vec<Effect> {
    let mut fx = save_form(app);
    fx.extend(save_ui_state(app));
    if let Some(claim) = app.claim.take() {
        fx.push(Effect::Release(claim));
    }
    app.quit = true;
    fx.push(Effect::Quit);
    fx
}

/// Keeps an overlay's scroll within its content (G then k moves at once; a larger terminal
/// shows more and scrolls less).
pub(super) fn clamp_overlay_scroll(app: &mut App) {
    if matches!(
        app.mode,
        Mode::Diff | Mode::Preview | Mode::Timeline | Mode::Stats
    ) {
        app.overlay_scroll = app
            .overlay_scroll
            .min(crate::tui::view::overlay_max_scroll(app));
    }
}

/// Scrolls an offset by a movement command.
pub(super) fn scroll(offset: &mut u16, c: Cmd, height: u16) {
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

pub(super) fn is_move(c: Cmd) -> bool {
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
