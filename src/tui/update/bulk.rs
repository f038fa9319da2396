//! Bulk work without approving the unseen: `v` marks items, `V` marks every item the
//! filter shows; reject (one reason) or escalate (one queue) then decides every marked
//! item after a confirmation that names the count and lists them. Approval is never
//! offered in bulk. Each item is claimed and decided at the revision the list showed;
//! one failure is reported and does not stop the others.

use super::*;
use crate::model::DecisionKind;
use crate::tui::action::{Cmd, Effect};
use crate::tui::app::{App, Level, Marked, Mode};

/// Rows `V` marks at most in one go.
pub const MARK_ALL_MAX: u64 = 1000;

pub(super) fn mark_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    if !enabled(app, app.mode, c) {
        let why = if app.read_only {
            "read-only: nothing can be marked for a decision".to_string()
        } else if app.open.is_some() {
            "marks are made on the list: esc closes the item".to_string()
        } else {
            "no item selected".to_string()
        };
        say(app, Level::Warn, why);
        return Vec::new();
    }
    if !app.list.query.states.is_empty() {
        say(
            app,
            Level::Warn,
            "decided items cannot be marked: D goes back to the queue",
        );
        return Vec::new();
    }
    match c {
        Cmd::Mark => {
            let Some(row) = app.selected_row().cloned() else {
                return Vec::new();
            };
            if app.marked.remove(&row.id).is_none() {
                app.marked.insert(row.id, Marked::of(&row));
            }
            let n = app.marked.len();
            say(app, Level::Info, marked_message(n));
            // Marking moves on, so `v v v` marks three rows.
            move_selection(app, Cmd::Down)
        }
        _ => {
            if !app.marked.is_empty() {
                let n = app.marked.len();
                app.marked.clear();
                say(app, Level::Info, format!("{n} marks cleared"));
                return Vec::new();
            }
            let total = app.list.page.total;
            let page = &app.list.page;
            if page.offset == 0 && page.items.len() as u64 >= total {
                let rows: Vec<_> = page.items.clone();
                mark_rows(app, &rows, total);
                return Vec::new();
            }
            say(app, Level::Info, "marking every item the filter shows…");
            let query = crate::queue::ListQuery {
                offset: 0,
                limit: MARK_ALL_MAX as u32,
                around: None,
                ..app.list.query.clone()
            };
            vec![Effect::MarkAll(query)]
        }
    }
}

fn marked_message(n: usize) -> String {
    if n == 0 {
        "no items marked".into()
    } else {
        format!(
            "{n} item{} marked · r rejects, x escalates them all (approve is one at a time) · esc clears",
            if n == 1 { "" } else { "s" }
        )
    }
}

/// Marks the rows given (all the filter shows, up to [`MARK_ALL_MAX`]).
pub(super) fn mark_rows(app: &mut App, rows: &[crate::queue::ItemSummary], total: u64) {
    for r in rows {
        app.marked.insert(r.id, Marked::of(r));
    }
    let mut m = marked_message(app.marked.len());
    if total > rows.len() as u64 {
        m = format!("{m} (only the first {} of {total})", rows.len());
    }
    say(app, Level::Info, m);
}

/// Approve with marks: refused, it is one item at a time.
pub(super) fn refuse_bulk_approve(app: &mut App) -> Vec<Effect> {
    let n = app.marked.len();
    say(
        app,
        Level::Warn,
        format!(
            "{n} item{} marked: approval is never done in bulk; esc clears the marks, then approve items one by one",
            if n == 1 { " is" } else { "s are" }
        ),
    );
    Vec::new()
}

/// The reason or queue was picked: ask before deciding all marked items.
pub(super) fn ask_bulk(app: &mut App, kind: DecisionKind) -> Vec<Effect> {
    app.bulk = Some(kind);
    app.mode = Mode::Confirm;
    app.overlay_scroll = 0;
    Vec::new()
}

/// The confirm question for a bulk decision.
pub fn bulk_question(app: &App) -> Option<String> {
    let kind = app.bulk.as_ref()?;
    let n = app.marked.len();
    let what = match kind {
        DecisionKind::Reject { reason } => format!("reject {n} item{} as '{reason}'", plural(n)),
        DecisionKind::Escalate { queue } => {
            format!("escalate {n} item{} to '{queue}'", plural(n))
        }
        DecisionKind::Approve => format!("approve {n} items"),
    };
    Some(format!("{what}? y/n"))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(super) fn confirm_bulk(app: &mut App, yes: bool) -> Vec<Effect> {
    let Some(kind) = app.bulk.take() else {
        return Vec::new();
    };
    app.mode = Mode::List;
    if !yes {
        say(app, Level::Info, "nothing decided; the marks stay");
        return Vec::new();
    }
    let items: Vec<(i64, i64)> = app.marked.iter().map(|(id, m)| (*id, m.revision)).collect();
    let n = items.len();
    say(
        app,
        Level::Info,
        format!("{}: {n} item{}…", kind.verb(), plural(n)),
    );
    vec![Effect::DecideMany { items, kind }]
}

/// What came back: the items decided leave the marks; failures are named.
pub(super) fn bulk_done(
    app: &mut App,
    verb: &'static str,
    done: Vec<i64>,
    failed: Vec<(i64, String)>,
) -> Vec<Effect> {
    for id in &done {
        app.marked.remove(id);
        app.details.remove(id);
    }
    let ok = done.len();
    if failed.is_empty() {
        say(
            app,
            Level::Ok,
            format!("{verb}: {ok} item{} done", plural(ok)),
        );
    } else {
        let why: Vec<String> = failed.iter().map(|(id, e)| format!("#{id}: {e}")).collect();
        say(
            app,
            Level::Error,
            format!(
                "{verb}: {ok} done, {} not (still marked): {}",
                failed.len(),
                why.join("; ")
            ),
        );
    }
    let mut fx = reload(app);
    fx.push(Effect::LoadCounts);
    fx
}
