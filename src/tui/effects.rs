//! Runs the queue side of an [`Effect`] and says what came back. The event loop spawns
//! this in a tokio task; the headless test runner awaits it, so both use one code path.
use super::action::{Effect, Loaded};
use crate::queue::Queue;

/// Performs a queue effect. `None` for effects that belong to the terminal
/// (`OpenEditor`, `ClearScreen`, `Quit`), which the caller handles.
pub async fn perform(q: &dyn Queue, reviewer: &str, fx: Effect) -> Option<Loaded> {
    Some(match fx {
        Effect::LoadPage { query, generation } => Loaded::Page {
            generation,
            result: q.list(&query).await,
        },
        Effect::LoadCounts => Loaded::Counts(q.counts().await),
        Effect::LoadDetails(ids) => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push((id, q.get(id).await));
            }
            Loaded::Details(out)
        }
        Effect::PollToken => Loaded::Token(q.change_token().await),
        Effect::Claim(id) => Loaded::Claimed(id, q.claim(id, reviewer).await),
        Effect::Release(c) => {
            let _ = q.release(&c).await;
            Loaded::Released(c.id)
        }
        Effect::SaveEdit(c, field, value) => Loaded::Edited(field, q.edit(&c, field, value).await),
        Effect::Decide {
            id,
            claim,
            decision,
        } => {
            let took = claim.is_none();
            let claim = match claim {
                // A claim decides the item it is on: never another item than the one shown.
                Some(c) if c.id != id => Err(crate::queue::QueueError::Invalid(format!(
                    "the claim held is on item {} but item {id} is on screen; nothing was decided",
                    c.id
                ))),
                Some(c) => Ok(c),
                None => q.claim(id, reviewer).await,
            };
            let result = match &claim {
                Ok(c) => q.decide(c, &decision).await,
                Err(e) => Err(e.clone()),
            };
            // A claim taken just for this decision goes back when the decision fails.
            if took
                && result.is_err()
                && let Ok(c) = &claim
            {
                let _ = q.release(c).await;
            }
            Loaded::Decided {
                id,
                verb: decision.kind.verb(),
                result,
            }
        }
        Effect::Undo(id) => Loaded::Undone(id, q.undo(id, reviewer).await),
        Effect::LoadTimeline(id) => Loaded::Timeline(id, q.timeline(id).await),
        Effect::RecordPreview(id, digest) => {
            Loaded::PreviewRecorded(id, q.preview_rendered(id, reviewer, &digest).await)
        }
        Effect::LoadPreview(id, kind) => {
            Loaded::Preview(id, q.preview(id, &kind, reviewer, None).await)
        }
        Effect::Resend(id, actions) => {
            let mut queued = 0;
            let mut failed = Vec::new();
            for a in actions {
                match q.resend(a, reviewer).await {
                    Ok(()) => queued += 1,
                    Err(e) => failed.push(format!("action {a}: {e}")),
                }
            }
            Loaded::Resent { id, queued, failed }
        }
        Effect::SetPaused(p) => Loaded::Paused(p, q.set_actions_paused(p, reviewer).await),
        Effect::RecordOutcome { id, value, reason } => {
            let result = q
                .record_outcome(id, &value, reason.as_deref(), reviewer)
                .await;
            Loaded::OutcomeRecorded { id, value, result }
        }
        Effect::LoadStats => Loaded::Stats(Box::new(q.stats(None).await)),
        Effect::LoadVolume => Loaded::Volume(Box::new(q.volume().await)),
        Effect::MarkAll(query) => Loaded::MarkAll(q.list(&query).await),
        Effect::DecideMany { items, kind } => {
            let mut done = Vec::new();
            let mut failed = Vec::new();
            for (id, revision) in items {
                let claim = match q.claim(id, reviewer).await {
                    Ok(c) => c,
                    Err(e) => {
                        failed.push((id, e.to_string()));
                        continue;
                    }
                };
                let decision = crate::queue::Decision {
                    kind: kind.clone(),
                    revision: Some(revision),
                    note: None,
                    sets: Vec::new(),
                };
                match q.decide(&claim, &decision).await {
                    Ok(_) => done.push(id),
                    Err(e) => {
                        let _ = q.release(&claim).await;
                        failed.push((id, e.to_string()));
                    }
                }
            }
            Loaded::DecidedMany {
                verb: kind.verb(),
                done,
                failed,
            }
        }
        Effect::SaveHistory(path, entries) => Loaded::Persisted(
            crate::tui::persist::save_history(&path, &entries)
                .map_err(|e| format!("command history not saved to {}: {e}", path.display())),
        ),
        Effect::SaveUiState(path, state) => Loaded::Persisted(
            crate::tui::persist::save_ui_state(&path, &state)
                .map_err(|e| format!("console state not saved to {}: {e}", path.display())),
        ),
        Effect::OpenEditor(..)
        | Effect::ClearScreen
        | Effect::CopyToClipboard(_)
        | Effect::OpenLink { .. }
        | Effect::Quit => return None,
    })
}
