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

pub(super) fn decide(app: &mut App, kind: DecisionKind, note: Option<String>) -> Vec<Effect> {
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
