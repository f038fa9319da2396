//! After the decision: resending dead actions, the kill switch (with its yes/no question),
//! the preview of what approval would send, outcomes, and the statistics screen with the
//! volume alert it carries.

use super::*;
use crate::queue::ActionPreview;
use crate::tui::action::{Cmd, Effect, Loaded};
use crate::tui::app::{App, Level, LineInput, Mode};

/// The volume alert is reloaded with the queue's changes, at most this often.
pub const STATS_EVERY_MS: i64 = 60_000;

/// Outbox ids of the current item's dead actions.
pub fn dead_actions(app: &App) -> Vec<i64> {
    app.current_detail()
        .map(|d| {
            d.actions
                .iter()
                .filter(|a| a.status == "dead")
                .map(|a| a.id)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the current item has a decision that stands (outcomes are recorded on those).
pub fn is_decided(app: &App) -> bool {
    app.current_detail()
        .and_then(|d| d.decision.as_ref())
        .is_some_and(|d| !d.undone)
}

/// Asks for the statistics (start-up, the queue changed, `S`) and notes when.
pub(super) fn load_stats(app: &mut App) -> Vec<Effect> {
    app.stats_at = Some(app.now);
    vec![Effect::LoadStats]
}

/// The volume (and its alert) when the last load is a minute old: the queue changed and
/// the alert may have too. Only the cheap volume query, not the whole stats.
pub(super) fn stats_if_due(app: &mut App) -> Vec<Effect> {
    match app.stats_at {
        Some(at) if app.now.saturating_sub(at) < STATS_EVERY_MS => Vec::new(),
        _ => {
            app.stats_at = Some(app.now);
            vec![Effect::LoadVolume]
        }
    }
}

pub(super) fn actions_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    if !enabled(app, app.mode, c) {
        let why = why_disabled(app, c);
        say(app, Level::Warn, why);
        return Vec::new();
    }
    match c {
        Cmd::Resend => {
            let Some(id) = app.current_id() else {
                return Vec::new();
            };
            let dead = dead_actions(app);
            let n = dead.len();
            say(
                app,
                Level::Info,
                format!(
                    "#{id}: sending {n} dead action{} again…",
                    if n == 1 { "" } else { "s" }
                ),
            );
            vec![Effect::Resend(id, dead)]
        }
        Cmd::KillSwitch => {
            let paused = app.counts.as_ref().is_some_and(|c| c.actions_paused);
            app.confirm_pause = Some(!paused);
            app.return_mode = app.mode;
            app.mode = Mode::Confirm;
            Vec::new()
        }
        Cmd::Outcome => {
            app.outcome_item = app.current_id();
            app.outcome_value = None;
            open_picker(app, Mode::Outcome);
            Vec::new()
        }
        Cmd::Decided => {
            use crate::model::State;
            let l = &mut app.list;
            let decided = l.query.states.is_empty();
            l.query.states = if decided {
                vec![State::Approved, State::Rejected, State::Escalated]
            } else {
                Vec::new()
            };
            // Decided items read best by most recent decision; the queue goes back to its own order.
            l.query.sort = if decided {
                crate::queue::Sort::RecentlyDecided
            } else {
                crate::queue::Sort::Queue
            };
            requery(
                app,
                Level::Info,
                if decided {
                    "decided items, most recent decision first: action states, resend, outcomes"
                } else {
                    "the open queue"
                },
            )
        }
        Cmd::Stats => {
            app.return_mode = app.mode;
            app.mode = Mode::Stats;
            app.overlay_scroll = 0;
            load_stats(app)
        }
        _ => Vec::new(),
    }
}

/// The question the confirm mode asks.
pub fn confirm_question(app: &App) -> &'static str {
    match app.confirm_pause {
        Some(true) => "pause all outbound actions for everyone? y/n",
        _ => "resume outbound actions for everyone? y/n",
    }
}

pub(super) fn confirm_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    if app.bulk.is_some() && matches!(c, Cmd::Submit | Cmd::Back) {
        return confirm_bulk(app, c == Cmd::Submit);
    }
    match c {
        Cmd::Submit => {
            app.mode = app.return_mode;
            let Some(p) = app.confirm_pause.take() else {
                return Vec::new();
            };
            say(
                app,
                Level::Info,
                if p {
                    "pausing outbound actions…"
                } else {
                    "resuming outbound actions…"
                },
            );
            vec![Effect::SetPaused(p)]
        }
        Cmd::Back => {
            app.mode = app.return_mode;
            app.confirm_pause = None;
            say(app, Level::Info, "kill switch unchanged");
            Vec::new()
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}

pub(super) fn outcome_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let i = match pick(app, c, app.policy.outcomes.len()) {
        Picked::Chosen(i) => i,
        Picked::Done => return Vec::new(),
        Picked::Other if c == Cmd::Back => {
            app.mode = app.return_mode;
            app.outcome_item = None;
            return Vec::new();
        }
        Picked::Other => {
            app.dirty = false;
            return Vec::new();
        }
    };
    let o = app.policy.outcomes[i].clone();
    app.pick = i;
    if o.needs_reason {
        app.outcome_value = Some(o.key);
        app.note = LineInput::default();
        app.mode = Mode::OutcomeNote;
        return Vec::new();
    }
    record_outcome(app, o.key, None)
}

pub(super) fn outcome_note_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    match c {
        Cmd::Submit => {
            let reason = app.note.text.trim().to_string();
            if reason.is_empty() {
                say(app, Level::Warn, "this outcome needs a reason: type why");
                return Vec::new();
            }
            let value = app.outcome_value.take().unwrap_or_default();
            record_outcome(app, value, Some(reason))
        }
        Cmd::Back => {
            app.mode = Mode::Outcome;
            app.outcome_value = None;
            Vec::new()
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}

fn record_outcome(app: &mut App, value: String, reason: Option<String>) -> Vec<Effect> {
    app.mode = app.return_mode;
    let Some(id) = app.outcome_item.take() else {
        return Vec::new();
    };
    say(app, Level::Info, format!("recording outcome of #{id}…"));
    vec![Effect::RecordOutcome { id, value, reason }]
}

/// SHA-256 of the rendered actions the preview showed, for the audit.
pub fn preview_digest(previews: &[ActionPreview]) -> String {
    use sha2::{Digest, Sha256};
    let shown = serde_json::to_string(previews).unwrap_or_default();
    let digest = Sha256::digest(shown.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The results of the effects above.
pub(super) fn loaded_actions(app: &mut App, l: Loaded) -> Vec<Effect> {
    match l {
        Loaded::Preview(id, r) => {
            if app.mode != Mode::Preview {
                app.dirty = false;
                return Vec::new();
            }
            match r {
                Ok(v) => {
                    let digest = preview_digest(&v);
                    app.preview = Some((id, Ok(v)));
                    // The audit records what the reviewer saw before deciding.
                    if app.read_only {
                        Vec::new()
                    } else {
                        vec![Effect::RecordPreview(id, digest)]
                    }
                }
                Err(e) => {
                    app.preview = Some((id, Err(e.to_string())));
                    Vec::new()
                }
            }
        }
        Loaded::Resent { id, queued, failed } => {
            if failed.is_empty() {
                say(
                    app,
                    Level::Ok,
                    format!(
                        "#{id}: {queued} action{} queued again; the dispatcher sends {}",
                        if queued == 1 { "" } else { "s" },
                        if queued == 1 { "it" } else { "them" }
                    ),
                );
            } else {
                say(
                    app,
                    Level::Error,
                    format!(
                        "#{id}: {queued} queued again, {} not: {}",
                        failed.len(),
                        failed.join("; ")
                    ),
                );
            }
            vec![refetch_detail(app, id)]
        }
        Loaded::Paused(p, r) => {
            match r {
                Ok(()) => say(
                    app,
                    if p { Level::Warn } else { Level::Ok },
                    if p {
                        "outbound actions PAUSED for everyone; nothing leaves until resumed"
                    } else {
                        "outbound actions resumed"
                    },
                ),
                Err(e) => say(app, Level::Error, format!("kill switch not changed: {e}")),
            }
            vec![Effect::LoadCounts]
        }
        Loaded::OutcomeRecorded { id, value, result } => {
            match result {
                Ok(()) => say(
                    app,
                    Level::Ok,
                    format!(
                        "#{id}: outcome '{}' recorded",
                        crate::text::sanitize(&value)
                    ),
                ),
                Err(e) => say(
                    app,
                    Level::Error,
                    format!("outcome of #{id} not recorded: {e}"),
                ),
            }
            Vec::new()
        }
        Loaded::Volume(r) => {
            match *r {
                Ok(v) => {
                    app.dirty = app.volume.as_ref() != Some(&v);
                    app.volume = Some(v);
                }
                Err(e) => {
                    tracing::warn!("loading the volume failed: {e}");
                    app.dirty = false;
                }
            }
            Vec::new()
        }
        Loaded::Stats(r) => {
            match *r {
                Ok(s) => {
                    app.dirty = app.stats.as_deref() != Some(&s);
                    app.volume = Some(s.volume.clone());
                    app.stats = Some(Box::new(s));
                }
                Err(e) => {
                    // The alert is a side line; only the stats screen reports a failure.
                    if app.mode == Mode::Stats {
                        say(app, Level::Error, format!("cannot load stats: {e}"));
                    } else {
                        tracing::warn!("loading stats failed: {e}");
                        app.dirty = false;
                    }
                }
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}
