//! Numbered pickers (reject reasons, escalation queues, outcomes): one way to open them and
//! one way to move and choose in them.

use super::*;
use crate::tui::action::Cmd;
use crate::tui::app::{App, Level, Mode};

/// Opens the picker `mode` over the current mode (Esc returns to it), on its first entry.
pub(super) fn open_picker(app: &mut App, mode: Mode) {
    app.return_mode = app.mode;
    app.mode = mode;
    app.pick = 0;
}

/// What a command did in a picker of `n` entries.
pub(super) enum Picked {
    /// Entry `i` was chosen (its number, or Enter on the highlighted one).
    Chosen(usize),
    /// Handled here: the highlight moved, or a number out of range was refused.
    Done,
    /// Not a picker command (Esc, a picker's own keys): the caller's.
    Other,
}

/// j/k move the highlight, 1–9 choose that entry, Enter the highlighted one.
pub(super) fn pick(app: &mut App, c: Cmd, n: usize) -> Picked {
    let chosen = match c {
        Cmd::Down => {
            app.pick = (app.pick + 1).min(n.saturating_sub(1));
            return Picked::Done;
        }
        Cmd::Up => {
            app.pick = app.pick.saturating_sub(1);
            return Picked::Done;
        }
        Cmd::Pick(k) => usize::from(k).checked_sub(1),
        Cmd::Submit => Some(app.pick),
        _ => return Picked::Other,
    };
    match chosen.filter(|i| *i < n) {
        Some(i) => Picked::Chosen(i),
        None => {
            say(app, Level::Warn, format!("choose 1–{n}"));
            Picked::Done
        }
    }
}
