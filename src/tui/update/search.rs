//! Finding rows: `/` incremental search with `n`/`N`, `]`/`[` to the next flagged or
//! SLA-breached row, `H`/`M`/`B` to the rows on screen, and count prefixes (`5j`).
//!
//! Search and `]`/`[` look through the rows fetched around the screen (a few screens
//! either side); `:filter` asks the whole queue.

use super::*;
use crate::queue::ItemSummary;
use crate::tui::action::{Cmd, Effect};
use crate::tui::app::{App, Level, LineInput, Mode};
use crate::tui::view::layout::list_rows;

/// Whether a row holds `needle` (lower case) in its number, sender, subject, summary,
/// external id, intent or priority.
fn row_matches(r: &ItemSummary, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let id = r.id.to_string();
    if needle.trim_start_matches('#') == id {
        return true;
    }
    [
        r.sender.as_deref(),
        r.subject.as_deref(),
        r.summary.as_deref(),
        Some(r.external_id.as_str()),
        r.intent.as_deref(),
        r.priority.as_deref(),
    ]
    .into_iter()
    .flatten()
    .any(|f| f.to_lowercase().contains(needle))
}

/// Flagged (validation flags, an AI escalation) or past its SLA.
pub(super) fn row_needs_eyes(app: &App, r: &ItemSummary) -> bool {
    let over_sla = app
        .policy
        .sla_minutes_for(r.priority.as_deref())
        .is_some_and(|m| {
            let sla = i64::try_from(m).unwrap_or(i64::MAX / 60_000) * 60_000;
            app.now.saturating_sub(r.received_at) > sla
        });
    r.flag_count > 0 || r.ai_escalation || over_sla
}

/// The absolute row of the first fetched row after (or before) `from` that `pred` takes,
/// wrapping around the fetched rows when `wrap`; `from` itself only when `inclusive`.
fn find_row(
    app: &App,
    from: u64,
    forward: bool,
    inclusive: bool,
    wrap: bool,
    pred: impl Fn(&ItemSummary) -> bool,
) -> Option<u64> {
    let items = &app.list.page.items;
    let n = items.len();
    if n == 0 {
        return None;
    }
    let off = app.list.page.offset;
    let start = usize::try_from(from.saturating_sub(off))
        .unwrap_or(0)
        .min(n - 1);
    let steps: Vec<usize> = if inclusive {
        (0..n).collect()
    } else {
        (1..n + usize::from(wrap)).collect()
    };
    for k in steps {
        let i = if forward {
            let i = start + k;
            if i >= n {
                if !wrap {
                    break;
                }
                i - n
            } else {
                i
            }
        } else {
            match start.checked_sub(k) {
                Some(i) => i,
                None if wrap => start + n - k,
                None => break,
            }
        };
        if let Some(r) = items.get(i)
            && pred(r)
        {
            return Some(off + i as u64);
        }
    }
    None
}

/// Puts the selection on absolute row `abs` and fetches what the screen needs.
pub(super) fn select_row(app: &mut App, abs: u64) -> Vec<Effect> {
    app.list.selected = abs;
    app.list.left = None;
    take_selected_row(app);
    app.raw_scroll = 0;
    app.ai_scroll = 0;
    follow_selection(app);
    ensure_window(app)
}

pub(super) fn start_search(app: &mut App) -> Vec<Effect> {
    app.search_from = Some((app.list.selected_id, app.list.selected));
    app.search_input = LineInput::default();
    app.return_mode = app.mode;
    app.mode = Mode::Search;
    Vec::new()
}

/// The selection follows the first match at or after where the search started.
pub(super) fn search_typed(app: &mut App) -> Vec<Effect> {
    let needle = app.search_input.text.to_lowercase();
    let from = app.search_from.map_or(app.list.selected, |(_, row)| row);
    match find_row(app, from, true, true, true, |r| row_matches(r, &needle)) {
        Some(abs) => {
            app.message = None;
            select_row(app, abs)
        }
        None if needle.is_empty() => Vec::new(),
        None => {
            say(
                app,
                Level::Warn,
                format!("no loaded row holds '{}'", crate::text::sanitize(&needle)),
            );
            Vec::new()
        }
    }
}

pub(super) fn search_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    match c {
        Cmd::Submit => {
            app.mode = Mode::List;
            app.search = app.search_input.text.trim().to_lowercase();
            app.search_from = None;
            if !app.search.is_empty() {
                let n = app
                    .list
                    .page
                    .items
                    .iter()
                    .filter(|r| row_matches(r, &app.search))
                    .count();
                say(
                    app,
                    if n == 0 { Level::Warn } else { Level::Info },
                    format!(
                        "/{}: {n} loaded row{} match · n next · N previous · :filter searches the whole queue",
                        crate::text::sanitize(&app.search),
                        if n == 1 { "" } else { "s" }
                    ),
                );
            }
            Vec::new()
        }
        Cmd::Back => {
            app.mode = Mode::List;
            let Some((id, row)) = app.search_from.take() else {
                return Vec::new();
            };
            app.list.selected_id = id;
            app.list.selected = row;
            follow_selection(app);
            app.message = None;
            ensure_window(app)
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}

/// How many times a movement runs (`5j`): the count typed before it, else once.
pub(super) fn count(app: &App) -> u64 {
    u64::from(app.count.unwrap_or(1).max(1))
}

/// `n`/`N`, `]`/`[`, `H`/`M`/`B`.
pub(super) fn find_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let from = app.list.selected;
    let times = count(app);
    let target = match c {
        Cmd::SearchNext | Cmd::SearchPrev => {
            if app.search.is_empty() {
                say(app, Level::Warn, "no search yet: / searches");
                return Vec::new();
            }
            let needle = app.search.clone();
            let mut at = Some(from);
            for _ in 0..times {
                at = at.and_then(|f| {
                    find_row(app, f, c == Cmd::SearchNext, false, true, |r| {
                        row_matches(r, &needle)
                    })
                });
            }
            if at.is_none() {
                say(
                    app,
                    Level::Warn,
                    format!("no loaded row holds '{}'", crate::text::sanitize(&needle)),
                );
            }
            at
        }
        Cmd::NextFlagged | Cmd::PrevFlagged => {
            let mut at = Some(from);
            for _ in 0..times {
                at = at.and_then(|f| {
                    find_row(app, f, c == Cmd::NextFlagged, false, false, |r| {
                        row_needs_eyes(app, r)
                    })
                });
            }
            if at.is_none() {
                say(
                    app,
                    Level::Info,
                    format!(
                        "no flagged or over-SLA item {} in the loaded rows",
                        if c == Cmd::NextFlagged {
                            "below"
                        } else {
                            "above"
                        }
                    ),
                );
            }
            at
        }
        Cmd::ScreenTop | Cmd::ScreenMiddle | Cmd::ScreenBottom => {
            let rows = u64::from(list_rows(app).max(1));
            let top = app.list.top;
            let last = (top + rows).min(app.list.page.total).saturating_sub(1);
            Some(match c {
                Cmd::ScreenTop => top,
                Cmd::ScreenMiddle => top + (last - top.min(last)) / 2,
                _ => last,
            })
        }
        _ => None,
    };
    match target {
        Some(abs) if abs != from || app.list.left.is_some() => select_row(app, abs),
        _ => Vec::new(),
    }
}
