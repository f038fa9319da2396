//! Decisions: approve, reject with a reason (and note), escalate to a queue.

use super::*;
use crate::model::{DecisionKind, EditableField};
use crate::queue::Decision;
use crate::tui::action::{Cmd, Effect};
use crate::tui::app::{App, Level, LineInput, Mode};

/// Field edits the form holds that the queue has not confirmed, for a decision's `sets`.
pub(super) fn unsaved_sets(app: &App) -> Vec<(EditableField, Option<String>)> {
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

/// Why a decision on the item in the state is not a decision on the item on screen, if
/// it is not: the last frame drew another item, another revision of it, or nothing (a
/// refresh or a move reached the state in the same batch of input as the key).
fn not_on_screen(app: &App, id: i64, revision: i64) -> Option<String> {
    match app.shown {
        Some(shown) if shown == (id, revision) => None,
        Some((shown_id, shown_rev)) if shown_id == id => Some(format!(
            "#{id} changed while you read it (revision {shown_rev} → {revision}): nothing was decided; the new version is on screen now: read it, then decide"
        )),
        _ => Some(format!(
            "#{id} was not on screen yet: nothing was decided; read it, then decide"
        )),
    }
}

pub(super) fn decide(app: &mut App, kind: DecisionKind, note: Option<String>) -> Vec<Effect> {
    let back_from_picker = |app: &mut App| {
        if matches!(app.mode, Mode::Reject | Mode::Escalate | Mode::Note) {
            app.mode = app.return_mode;
        }
    };
    if !can_decide(app) {
        let why = why_disabled(app, Cmd::Approve);
        say(app, Level::Warn, why);
        back_from_picker(app);
        return Vec::new();
    }
    // The decision is for the item whose detail is on screen, at the revision shown.
    let Some((id, revision)) = app
        .current_detail()
        .map(|d| (d.summary.id, d.summary.revision))
    else {
        return Vec::new();
    };
    if let Some(why) = not_on_screen(app, id, revision) {
        say(app, Level::Warn, why);
        back_from_picker(app);
        return Vec::new();
    }
    if let Some(c) = app.claim.as_ref().filter(|c| c.id != id) {
        let why = format!(
            "the claim held is on #{} but #{id} is on screen: nothing was decided; press esc and open the item again",
            c.id
        );
        say(app, Level::Error, why);
        back_from_picker(app);
        return Vec::new();
    }
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
    let claim = app.claim.clone();
    let verb = kind.verb();
    app.deciding = Some(id);
    back_from_picker(app);
    say(app, Level::Info, format!("{verb}: #{id}…"));
    vec![Effect::Decide {
        id,
        claim,
        decision: Decision {
            kind,
            revision: Some(revision),
            note,
            sets,
        },
    }]
}

pub(super) fn picker_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let reject = app.mode == Mode::Reject;
    let n = if reject {
        app.policy.reject_reasons.len()
    } else {
        app.policy.escalation_queues.len()
    };
    let i = match pick(app, c, n) {
        Picked::Chosen(i) => i,
        Picked::Done => return Vec::new(),
        Picked::Other => return picker_other(app, c, reject),
    };
    if bulk_mode(app) {
        app.pick = i;
        let kind = if reject {
            DecisionKind::Reject {
                reason: app.policy.reject_reasons[i].key.clone(),
            }
        } else {
            DecisionKind::Escalate {
                queue: app.policy.escalation_queues[i].name.clone(),
            }
        };
        return ask_bulk(app, kind);
    }
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

/// Esc, and `p` in the escalation picker.
fn picker_other(app: &mut App, c: Cmd, reject: bool) -> Vec<Effect> {
    match c {
        Cmd::Back => {
            app.mode = app.return_mode;
            Vec::new()
        }
        Cmd::Preview if !reject => {
            // What escalating to the highlighted queue would send; Esc comes back here.
            let (Some(id), Some(q)) =
                (app.current_id(), app.policy.escalation_queues.get(app.pick))
            else {
                return Vec::new();
            };
            let queue = q.name.clone();
            app.preview = None;
            app.preview_escalation = Some(queue.clone());
            app.overlay_scroll = 0;
            app.mode = Mode::Preview;
            vec![Effect::LoadPreview(id, DecisionKind::Escalate { queue })]
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}
