//! The help overlay, which is the command palette.

use super::*;
use crate::tui::action::{Cmd, Effect};
use crate::tui::app::{App, Level};

/// Commands the palette lists: the table of the mode it was opened from.
pub fn palette_items(app: &App) -> Vec<(Cmd, String, &'static str)> {
    let q = app.palette.text.to_lowercase();
    app.keymap
        .table(app.return_mode)
        .iter()
        .filter(|b| !super::hidden(app, b.cmd))
        .filter(|b| {
            q.is_empty() || b.label.contains(q.as_str()) || b.cmd.name().contains(q.as_str())
        })
        .map(|b| {
            let keys = b
                .keys
                .iter()
                .map(|k| crate::tui::keymap::seq_label(k))
                .collect::<Vec<_>>()
                .join(" ");
            (b.cmd, keys, b.label)
        })
        .collect()
}

pub(super) fn help_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let n = palette_items(app).len();
    match c {
        Cmd::Down => app.palette_sel = (app.palette_sel + 1).min(n.saturating_sub(1)),
        Cmd::Up => app.palette_sel = app.palette_sel.saturating_sub(1),
        Cmd::Back => app.mode = app.return_mode,
        Cmd::Submit => {
            let items = palette_items(app);
            let Some((cmd, _, _)) = items.get(app.palette_sel).cloned() else {
                return Vec::new();
            };
            app.mode = app.return_mode;
            if !enabled(app, app.mode, cmd) {
                let why = why_disabled(app, cmd);
                say(app, Level::Warn, why);
                return Vec::new();
            }
            return command(app, cmd);
        }
        _ => app.dirty = false,
    }
    Vec::new()
}
