//! Results coming back from the queue, and time passing.

use super::*;
use crate::queue::QueueError;
use crate::tui::action::{Cmd, Effect, Loaded, Pane};
use crate::tui::app::{App, FieldInput, FormField, Level, Mode};

pub(super) fn tick(app: &mut App, now: i64) -> Vec<Effect> {
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

pub(super) fn describe(e: &QueueError) -> String {
    match e {
        QueueError::LeaseLost { id, holder, .. } => format!(
            "lease lost on #{id}{}: nothing was decided; your edits are kept here — press a to claim again and decide",
            holder
                .as_ref()
                .map(|h| format!(" (now held by {h})"))
                .unwrap_or_default()
        ),
        QueueError::StaleRevision { id, shown, current } => format!(
            "#{id} changed since you opened it (revision {shown} → {current}): nothing was decided; read the new version, then decide"
        ),
        other => other.to_string(),
    }
}

/// What the console says while the queue server cannot be reached.
pub(super) const OFFLINE: &str = "offline — retrying · your edits are kept here";

/// Notes that the queue cannot be reached (said once, not on every retry).
fn gone_offline(app: &mut App) {
    if !app.offline {
        app.offline = true;
        say(app, Level::Warn, OFFLINE);
    } else {
        app.dirty = false;
    }
}

/// Why an item is no longer in the list, from its detail.
fn why_it_left(d: &crate::queue::ItemDetail) -> String {
    use crate::model::DecisionKind;
    match (&d.decision, d.summary.state.is_decided()) {
        (Some(dec), true) => {
            let what = match &dec.kind {
                DecisionKind::Approve => "approved".to_string(),
                DecisionKind::Reject { reason } => format!("rejected ({reason})"),
                DecisionKind::Escalate { queue } => format!("escalated to {queue}"),
            };
            crate::text::sanitize(&format!("{what} by {}", dec.reviewer)).into_owned()
        }
        (None, true) => d.summary.state.to_string(),
        _ => "it no longer matches this list".into(),
    }
}

/// Reloads what is on screen. The details shown stay up until their fresh copies arrive
/// (a decision on one meanwhile names the revision shown, which the queue refuses if it has
/// moved on).
fn refresh_shown(app: &mut App) -> Vec<Effect> {
    let shown: Vec<i64> = app.open.into_iter().chain(app.list.selected_id).collect();
    app.details.retain(|id, _| shown.contains(id));
    app.details_requested.clear();
    let mut fx = reload(app);
    for id in shown {
        if !app.details_requested.contains(&id) {
            fx.push(refetch_detail(app, id));
        }
    }
    fx.push(Effect::LoadCounts);
    fx.extend(stats_if_due(app));
    fx
}

pub(super) fn loaded(app: &mut App, l: Loaded) -> Vec<Effect> {
    match l {
        Loaded::Token(Ok(t)) if app.offline => {
            // Back: refresh everything and send the edits made meanwhile.
            app.offline = false;
            app.token = Some(t);
            say(app, Level::Ok, "back online");
            let mut fx = save_form(app);
            fx.extend(refresh_shown(app));
            fx
        }
        Loaded::Token(Err(QueueError::Unavailable(_))) => {
            gone_offline(app);
            Vec::new()
        }
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
            refresh_shown(app)
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
                    let l = &app.list;
                    let before = (l.selected, l.top, l.selected_id, l.left);
                    let changed = page != app.list.page;
                    app.list.page = page;
                    let mut fx = place_selection(app);
                    follow_selection(app);
                    fx.extend(ensure_window(app));
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
                    let l = &app.list;
                    let moved = before != (l.selected, l.top, l.selected_id, l.left);
                    app.dirty = changed || moved || !fx.is_empty();
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
                match r {
                    Ok(d) if app.list.left == Some(id) && app.open != Some(id) => {
                        let why = why_it_left(&d);
                        say(app, Level::Warn, left_message(id, Some(&why)));
                    }
                    Ok(d) => {
                        let before = app.details.get(&id).map(|old| old.summary.revision);
                        let revision = d.summary.revision;
                        app.details.insert(id, d);
                        if app.current_id() == Some(id)
                            && let Some(before) = before.filter(|b| *b != revision)
                        {
                            say(
                                app,
                                Level::Warn,
                                format!(
                                    "#{id} has a new revision ({before} → {revision}), shown now: read it again before deciding"
                                ),
                            );
                        }
                    }
                    Err(QueueError::NotFound(_)) if app.list.left == Some(id) => {
                        say(
                            app,
                            Level::Warn,
                            left_message(id, Some("it no longer exists")),
                        );
                    }
                    // The item on screen says why it has no detail, instead of "loading…".
                    Err(e) if app.current_id() == Some(id) => {
                        say(
                            app,
                            Level::Error,
                            format!("cannot load #{id}: {}", describe(&e)),
                        );
                    }
                    Err(e) => tracing::warn!("loading item {id} failed: {e}"),
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
                    say_while(
                        app,
                        Level::Ok,
                        format!("#{id} is yours while it is open"),
                        crate::tui::app::MessageWhile::Claim(id),
                    );
                    let mut fx = vec![refetch_detail(app, id), Effect::LoadCounts];
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
        Loaded::Heartbeat { id, fence, result } => {
            // The heartbeat of a claim given back, lost or taken again since (its task is
            // aborted, but a result may already be on its way) says nothing about this one.
            if !app
                .claim
                .as_ref()
                .is_some_and(|c| c.id == id && c.fence == fence)
            {
                app.dirty = false;
                return Vec::new();
            }
            match result {
                Ok(c) => app.claim = Some(c),
                // The lease may well still be ours: keep it and the edits until the
                // server answers again.
                Err(QueueError::Unavailable(_)) => gone_offline(app),
                Err(e) => {
                    app.claim = None;
                    say(app, Level::Error, describe(&e));
                }
            }
            Vec::new()
        }
        Loaded::Released(_) => {
            app.dirty = false;
            Vec::new()
        }
        Loaded::Edited(field, r) => {
            if let Err(e) = r {
                if matches!(e, QueueError::LeaseLost { .. }) {
                    app.claim = None;
                }
                // Not saved after all: the last confirmed value is what the queue holds, so
                // the next save (or the decision) sends this field again.
                if let Some(form) = app.form.as_mut()
                    && let Some(f) = form.fields.iter_mut().find(|f| f.field == field)
                {
                    f.saved = app
                        .details
                        .get(&form.id)
                        .and_then(|d| d.fields.get(field))
                        .map(str::to_owned);
                }
                if matches!(e, QueueError::Unavailable(_)) {
                    // Sent again when the server is back.
                    app.offline = false;
                    gone_offline(app);
                    app.dirty = true;
                } else {
                    say(
                        app,
                        Level::Error,
                        format!("{} not saved: {}", field.label(), describe(&e)),
                    );
                }
                Vec::new()
            } else if app.form.is_none()
                && let Some(id) = app.open
            {
                // Saves and the detail reload race; the last save to land reloads again.
                app.dirty = false;
                vec![refetch_detail(app, id)]
            } else {
                app.dirty = false;
                Vec::new()
            }
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
                    let not_queued = if receipt.skipped.is_empty() {
                        String::new()
                    } else {
                        let names: Vec<&str> =
                            receipt.skipped.iter().map(|(a, _)| a.as_str()).collect();
                        format!(" · not queued: {}", names.join(", "))
                    };
                    say(
                        app,
                        Level::Ok,
                        format!(
                            "{past} #{id} · {n} action{} queued ({}){not_queued} · {undo} to undo ({secs}s)",
                            if n == 1 { "" } else { "s" },
                            app.actions_mode
                        ),
                    );
                    app.last_decision = Some((id, receipt.undo_until, past.to_string()));
                    // The reviewer's own decision moves the selection on: the row that takes
                    // the decided item's place is selected once the list comes back.
                    if app.list.selected_id == Some(id) || app.list.left == Some(id) {
                        app.list.selected_id = None;
                        app.list.left = None;
                    }
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
                Err(QueueError::Unavailable(_)) => {
                    // Nothing was decided; the item, the claim and the edits stay.
                    gone_offline(app);
                    app.dirty = true;
                    Vec::new()
                }
                Err(e) => {
                    if matches!(e, QueueError::LeaseLost { .. }) {
                        app.claim = None;
                    }
                    say(app, Level::Error, describe(&e));
                    let mut fx = reload(app);
                    if matches!(e, QueueError::StaleRevision { .. }) {
                        // The revision it was refused for goes on screen next (in place of
                        // the old one, not as news that would hide the refusal).
                        app.details.remove(&id);
                        fx.push(refetch_detail(app, id));
                    }
                    fx
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
                let mut fx = vec![refetch_detail(app, id), Effect::LoadCounts];
                fx.extend(reload(app));
                fx
            }
            Err(e) => {
                say(app, Level::Error, describe(&e));
                Vec::new()
            }
        },
        Loaded::PreviewRecorded(_, r) => {
            // Only a record; a failure is logged, never in the reviewer's way.
            if let Err(e) = r {
                tracing::warn!("recording the preview failed: {e}");
            }
            app.dirty = false;
            Vec::new()
        }
        Loaded::Timeline(id, r) => {
            match r {
                Ok(entries) => app.timeline = Some((id, entries)),
                Err(e) => say(app, Level::Error, format!("timeline of #{id}: {e}")),
            }
            Vec::new()
        }
        l @ (Loaded::Preview(..)
        | Loaded::Resent { .. }
        | Loaded::Paused(..)
        | Loaded::OutcomeRecorded { .. }
        | Loaded::Stats(_)
        | Loaded::Volume(_)) => loaded_actions(app, l),
        Loaded::MarkAll(r) => {
            match r {
                Ok(page) => mark_rows(app, &page.items, page.total),
                Err(e) => say(app, Level::Error, format!("cannot mark the list: {e}")),
            }
            Vec::new()
        }
        Loaded::DecidedMany { verb, done, failed } => bulk_done(app, verb, done, failed),
        Loaded::Persisted(r) => {
            match r {
                Ok(()) => app.dirty = false,
                Err(e) => say(app, Level::Warn, e),
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
