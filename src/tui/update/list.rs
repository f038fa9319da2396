//! The list and the item lifecycle: moving the selection over a window of the queue,
//! paging, prefetching details, opening (claiming) and closing (releasing), filter and sort.

use super::*;
use crate::model::DecisionKind;
use crate::queue::ListQuery;
use crate::tui::action::{Cmd, Effect, Pane};
use crate::tui::app::{App, Level, LineInput, Mode};
use crate::tui::filter;
use crate::tui::view::layout::list_rows;

pub(super) fn base_command(app: &mut App, c: Cmd) -> Vec<Effect> {
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
        Cmd::Approve if bulk_mode(app) => refuse_bulk_approve(app),
        Cmd::Reject | Cmd::Escalate if bulk_mode(app) => {
            if c == Cmd::Reject && app.policy.reject_reasons.is_empty()
                || c == Cmd::Escalate && app.policy.escalation_queues.is_empty()
            {
                say(
                    app,
                    Level::Warn,
                    "the policy lists no reasons or queues for that",
                );
                return Vec::new();
            }
            open_picker(
                app,
                if c == Cmd::Reject {
                    Mode::Reject
                } else {
                    Mode::Escalate
                },
            );
            Vec::new()
        }
        Cmd::Back => {
            if app.mode == Mode::Review {
                close(app)
            } else if !app.marked.is_empty() {
                let n = app.marked.len();
                app.marked.clear();
                say(app, Level::Info, format!("{n} marks cleared"));
                Vec::new()
            } else if !app.list.filter_text.is_empty() {
                app.list.filter_text.clear();
                app.filter_input = LineInput::default();
                app.list.query.filter = Default::default();
                requery(app, Level::Info, "filter cleared")
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
            open_picker(app, mode);
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
            if c == Cmd::Preview {
                // Always fetched afresh: an edit since the last preview changes what it sends.
                app.preview = None;
                app.preview_escalation = None;
                return vec![Effect::LoadPreview(id, DecisionKind::Approve)];
            }
            Vec::new()
        }
        Cmd::Resend | Cmd::KillSwitch | Cmd::Outcome | Cmd::Stats | Cmd::Decided => {
            actions_command(app, c)
        }
        Cmd::Search => start_search(app),
        Cmd::SearchNext
        | Cmd::SearchPrev
        | Cmd::NextFlagged
        | Cmd::PrevFlagged
        | Cmd::ScreenTop
        | Cmd::ScreenMiddle
        | Cmd::ScreenBottom => find_command(app, c),
        Cmd::View(n) => match app.views.get(usize::from(n).saturating_sub(1)) {
            Some(v) => {
                let name = v.name.clone();
                apply_view(app, &name)
            }
            None => {
                say(
                    app,
                    Level::Warn,
                    format!("no saved view {n}: add [[ui.views]] entries to the config"),
                );
                Vec::new()
            }
        },
        Cmd::Mark | Cmd::MarkAll => mark_command(app, c),
        Cmd::Copy => open_copy(app),
        Cmd::OpenLink => open_link(app),
        Cmd::ShowMessage => show_message(app),
        Cmd::GrowList | Cmd::ShrinkList => {
            use crate::tui::view::layout::{MAX_LIST_PCT, MIN_LIST_PCT};
            let p = if c == Cmd::GrowList {
                app.list_pct.saturating_add(10)
            } else {
                app.list_pct.saturating_sub(10)
            }
            .clamp(MIN_LIST_PCT, MAX_LIST_PCT);
            if p == app.list_pct {
                app.dirty = false;
                return Vec::new();
            }
            app.list_pct = p;
            follow_selection(app);
            let mut fx = ensure_window(app);
            fx.extend(save_ui_state(app));
            fx
        }
        Cmd::Filter => {
            app.mode = Mode::Filter;
            app.filter_input = LineInput::with(&app.list.filter_text);
            Vec::new()
        }
        Cmd::Sort => {
            app.list.query.sort = app.list.query.sort.next();
            let label = app.list.query.sort.label();
            requery(app, Level::Info, format!("sorted by {label}"))
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}

/// Reject and escalate act on the marked items (the list is showing, and some are marked).
pub(super) fn bulk_mode(app: &App) -> bool {
    app.open.is_none() && !app.marked.is_empty()
}

pub(super) fn move_selection(app: &mut App, c: Cmd) -> Vec<Effect> {
    let total = app.list.page.total;
    if total == 0 {
        app.dirty = false;
        return Vec::new();
    }
    let rows = u64::from(list_rows(app).max(1));
    let half = (rows / 2).max(1);
    let last = total - 1;
    let sel = app.list.selected;
    let n = count(app);
    if app.count.is_some() && matches!(c, Cmd::Top | Cmd::Bottom) {
        // `5G`: row 5.
        let fx = select_row(app, (n - 1).min(last));
        return fx;
    }
    // The selected item left the list and the rows below it moved up: down takes the row
    // now in its place, up the one above.
    let gone = app.list.left.is_some();
    let new = match c {
        Cmd::Down if gone => sel.saturating_add(n - 1),
        Cmd::Down => sel.saturating_add(n),
        Cmd::Up => sel.saturating_sub(n),
        Cmd::Top => 0,
        Cmd::Bottom => last,
        Cmd::HalfPageDown => sel.saturating_add(half * n),
        Cmd::HalfPageUp => sel.saturating_sub(half * n),
        Cmd::PageDown => sel.saturating_add(rows * n),
        Cmd::PageUp => sel.saturating_sub(rows * n),
        _ => sel,
    }
    .min(last);
    if new == sel && !gone {
        app.dirty = false;
        return Vec::new();
    }
    app.list.selected = new;
    app.list.left = None;
    take_selected_row(app);
    app.raw_scroll = 0;
    app.ai_scroll = 0;
    follow_selection(app);
    ensure_window(app)
}

/// Puts the selection on the item in the row at `selected`, or on no item until that row
/// is loaded.
pub(super) fn take_selected_row(app: &mut App) {
    let l = &mut app.list;
    l.selected_id = l
        .selected
        .checked_sub(l.page.offset)
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| l.page.items.get(i))
        .map(|r| r.id);
}

/// A new page is in: the selection goes to wherever its item is now. The page was asked
/// for around the selected item, so an item it does not hold has left the list: after the
/// reviewer's own new query (filter, sort) the selection starts again from the top row;
/// otherwise the message line says so and nothing is selected until the reviewer moves.
pub(super) fn place_selection(app: &mut App) -> Vec<Effect> {
    let refocus = std::mem::take(&mut app.list.refocus);
    let l = &mut app.list;
    let Some(id) = l.selected_id else {
        if refocus {
            l.selected = 0;
            l.top = 0;
            l.left = None;
        }
        if l.left.is_none() {
            take_selected_row(app);
        }
        return Vec::new();
    };
    if let Some(i) = l.page.items.iter().position(|r| r.id == id) {
        l.selected = l.page.offset + i as u64;
        if l.jump.take_if(|j| j.0 == id).is_some() {
            say(app, Level::Info, format!("#{id}"));
            follow_selection(app);
            return ensure_window(app);
        }
        return Vec::new();
    }
    if l.asked_around != Some(id) {
        // A page asked for before the selection came to this item says nothing about it.
        l.refocus = refocus;
        return reload(app);
    }
    if let Some((_, before, row)) = l.jump.take_if(|j| j.0 == id) {
        l.selected_id = before;
        l.selected = row;
        say(
            app,
            Level::Warn,
            format!(
                "#{id} is not in this list (the filter hides it, it is decided, or there is no such item)"
            ),
        );
        return reload(app);
    }
    if refocus {
        l.selected = 0;
        l.top = 0;
        take_selected_row(app);
        return Vec::new();
    }
    l.selected_id = None;
    l.left = Some(id);
    say(app, Level::Warn, left_message(id, None));
    // Its detail says why it left (decided, and by whom).
    vec![refetch_detail(app, id)]
}

/// The message line for an item that left the list, with why when known.
pub(super) fn left_message(id: i64, why: Option<&str>) -> String {
    format!(
        "#{id} left the list{}; nothing is selected: move (j/k) to select an item",
        why.map(|w| format!(": {w}")).unwrap_or_default()
    )
}

/// Keeps the selection on screen.
pub(super) fn follow_selection(app: &mut App) {
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
pub(super) fn page_effect(app: &mut App) -> Effect {
    let rows = u64::from(list_rows(app).max(1));
    // Two screens either side of the one shown; `ensure_window` asks again once the
    // selection comes within a screen of either end.
    let offset = app.list.top.saturating_sub(2 * rows);
    let limit = (rows * 5).clamp(50, 1000);
    app.list.generation += 1;
    app.list.loading = true;
    app.list.requested = Some((offset, offset + limit));
    app.list.asked_around = app.list.selected_id;
    let query = ListQuery {
        offset,
        limit: limit as u32,
        around: app.list.selected_id,
        ..app.list.query.clone()
    };
    Effect::LoadPage {
        query,
        generation: app.list.generation,
    }
}

/// Asks again for the rows on screen (the query or the queue changed).
pub(super) fn reload(app: &mut App) -> Vec<Effect> {
    vec![page_effect(app)]
}

/// Fetches the rows on screen when the page does not hold them, and their details.
pub(super) fn ensure_window(app: &mut App) -> Vec<Effect> {
    let rows = u64::from(list_rows(app).max(1));
    let l = &app.list;
    // Rows on screen and a screen either side, so the next page is asked for before the
    // selection reaches the edge of the fetched one; none (an empty result) needs no fetch.
    let want = (
        l.top.saturating_sub(rows),
        (l.top + 2 * rows).min(l.page.total),
    );
    let have = (l.page.offset, l.page.offset + l.page.items.len() as u64);
    let covered = |r: (u64, u64)| want.0 >= want.1 || (r.0 <= want.0 && want.1 <= r.1);
    let mut fx = Vec::new();
    if !covered(have) && !l.requested.is_some_and(covered) {
        fx.push(page_effect(app));
    }
    fx.extend(fetch_details(app));
    fx
}

/// Asks again for one item's detail (it changed: saved, decided, resent), marked as asked
/// for so the prefetch does not ask twice.
pub(super) fn refetch_detail(app: &mut App, id: i64) -> Effect {
    app.details_requested.insert(id);
    Effect::LoadDetails(vec![id])
}

/// The query changed (filter, sort, open queue or decided items): say so and ask for the
/// rows again. The selection stays on its item if the new list holds it, else it starts
/// from the top row.
pub(super) fn requery(app: &mut App, level: Level, message: impl Into<String>) -> Vec<Effect> {
    app.list.refocus = true;
    app.list.top = 0;
    say(app, level, message);
    reload(app)
}

/// Details of the rows on screen and half a screen either side (so `j` past the edge finds
/// its detail already there) that are not cached or asked for yet.
pub(super) fn fetch_details(app: &mut App) -> Vec<Effect> {
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

pub(super) fn open(app: &mut App, then: Option<Cmd>) -> Vec<Effect> {
    let Some(row) = app.selected_row() else {
        say(app, Level::Warn, "no item selected");
        return Vec::new();
    };
    let id = row.id;
    let decided = row.state.is_decided();
    if app.read_only || decided {
        app.open = Some(id);
        app.mode = Mode::Review;
        app.focus = Pane::Ai;
        say(
            app,
            Level::Info,
            if decided {
                format!(
                    "#{id} is decided: shown read-only (L timeline, d diff, o outcome, R resend)"
                )
            } else {
                "read-only: viewing, not claiming".to_string()
            },
        );
        return fetch_details(app);
    }
    // One claim at a time: a second Enter before the first claim lands would leave the
    // first item claimed and forgotten until its lease ran out.
    if let Some(claiming) = app.claiming {
        say(app, Level::Info, format!("still claiming #{claiming}…"));
        return Vec::new();
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

pub(super) fn close(app: &mut App) -> Vec<Effect> {
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

/// The list's state written for the next start (sort, filter, selection, decided items).
pub(super) fn save_ui_state(app: &App) -> Vec<Effect> {
    let Some(dir) = &app.state_dir else {
        return Vec::new();
    };
    let l = &app.list;
    vec![Effect::SaveUiState(
        crate::tui::persist::ui_state_path(dir, &app.reviewer),
        crate::tui::persist::UiState {
            sort: Some(l.query.sort),
            filter: l.filter_text.clone(),
            selected: l.selected_id.or(l.left),
            decided: !l.query.states.is_empty(),
            list_pct: Some(app.list_pct),
        },
    )]
}

/// The list as the last run left it (before the first page is asked for).
pub fn restore(app: &mut App, s: crate::tui::persist::UiState) {
    let l = &mut app.list;
    if s.decided {
        use crate::model::State;
        l.query.states = vec![State::Approved, State::Rejected, State::Escalated];
    }
    if let Some(sort) = s.sort {
        l.query.sort = sort;
    }
    match filter::parse(&s.filter) {
        Ok(f) => {
            l.query.filter = f;
            l.filter_text = s.filter.trim().to_string();
            app.filter_input = LineInput::with(&l.filter_text);
        }
        Err(e) => tracing::warn!("the saved filter '{}' no longer parses: {e}", s.filter),
    }
    l.selected_id = s.selected;
    if let Some(p) = s.list_pct {
        use crate::tui::view::layout::{MAX_LIST_PCT, MIN_LIST_PCT};
        app.list_pct = p.clamp(MIN_LIST_PCT, MAX_LIST_PCT);
    }
    let l = &mut app.list;
    // An item decided since then is not looked for: the list starts from the top.
    l.refocus = true;
}

/// `:view NAME` and F1–F9: a saved view's filter and sort.
pub(super) fn apply_view(app: &mut App, name: &str) -> Vec<Effect> {
    let Some(v) = app.views.iter().find(|v| v.name == name).cloned() else {
        let names: Vec<&str> = app.views.iter().map(|v| v.name.as_str()).collect();
        let known = if names.is_empty() {
            "no views are configured; add [[ui.views]] with name, filter and sort".to_string()
        } else {
            format!("views: {}", names.join(", "))
        };
        say(
            app,
            Level::Error,
            format!("no view named '{}'; {known}", crate::text::sanitize(name)),
        );
        return Vec::new();
    };
    let filter = match filter::parse(&v.filter) {
        Ok(f) => f,
        Err(e) => {
            say(app, Level::Error, format!("view '{}': filter: {e}", v.name));
            return Vec::new();
        }
    };
    let sort = if v.sort.trim().is_empty() {
        crate::queue::Sort::Queue
    } else {
        let mut w = v.sort.split_whitespace();
        match crate::queue::Sort::from_key(w.next().unwrap_or(""), w.next()) {
            Ok(s) => s,
            Err(e) => {
                say(app, Level::Error, format!("view '{}': sort: {e}", v.name));
                return Vec::new();
            }
        }
    };
    if app.open.is_some() {
        let _ = close(app);
    }
    app.list.query.filter = filter;
    app.list.query.sort = sort;
    app.list.filter_text = v.filter.trim().to_string();
    app.filter_input = LineInput::with(&app.list.filter_text);
    app.mode = Mode::List;
    let mut fx = requery(app, Level::Info, format!("view {}", v.name));
    fx.extend(save_ui_state(app));
    fx
}

pub(super) fn apply_filter(app: &mut App) -> Vec<Effect> {
    match filter::parse(&app.filter_input.text) {
        Ok(f) => {
            app.list.query.filter = f;
            app.list.filter_text = app.filter_input.text.trim().to_string();
            app.mode = Mode::List;
            let message = if app.list.filter_text.is_empty() {
                "filter cleared".to_string()
            } else {
                format!("filter: {}", app.list.filter_text)
            };
            let mut fx = requery(app, Level::Info, message);
            fx.extend(save_ui_state(app));
            fx
        }
        Err(e) => {
            say(app, Level::Error, format!("filter not applied: {e}"));
            Vec::new()
        }
    }
}
