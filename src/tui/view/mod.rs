//! `draw(&App, &mut Frame)`: the whole screen as a pure function of the state.
pub mod fmt;
pub mod layout;

/// Marks the pane that has the keys in its title when there is no colour to do it.
pub const FOCUS_MARK: &str = " ●";

mod actions;
mod bars;
mod detail;
mod form;
mod list;
mod overlay;
mod stats;
pub mod timeline;
pub mod worddiff;

use ratatui::Frame;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::app::{App, Mode};

/// How far the open scrolling overlay (diff, preview, timeline, stats) can scroll at the
/// current size: `update` keeps its offset within this.
pub fn overlay_max_scroll(app: &App) -> u16 {
    let r = layout::regions(app, ratatui::layout::Rect::new(0, 0, app.width, app.height));
    overlay::max_scroll(app, r.body)
}

/// The item (id, revision) whose detail a frame at the app's size draws, if any. Once
/// that frame is on screen it is what a decision key acts on.
pub fn shown_item(app: &App) -> Option<(i64, i64)> {
    if !layout::shows_detail(app) {
        return None;
    }
    app.current_detail()
        .map(|d| (d.summary.id, d.summary.revision))
}

/// The one thing drawn below the minimum size: what is wrong, what is needed, and that
/// keys other than quit and help do nothing meanwhile. Wrapped into the lines there are;
/// `…` where it does not fit.
fn enlarge_lines(width: u16, height: u16) -> Vec<String> {
    let parts = [
        "enlarge the terminal".to_string(),
        format!(
            "({width}×{height}, needs ≥ {}×{})",
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        ),
        "· keys are paused".to_string(),
        "(q quits)".to_string(),
    ];
    let w = usize::from(width);
    // Whole parts to a line where they fit; a part wider than a line goes word by word.
    let tokens = parts.iter().flat_map(|p| {
        if fmt::cells(p) <= w {
            vec![p.clone()]
        } else {
            p.split(' ').map(|t| fmt::cut(t, w)).collect()
        }
    });
    let mut lines: Vec<String> = Vec::new();
    for t in tokens {
        match lines.last_mut() {
            Some(last) if fmt::cells(last) + 1 + fmt::cells(&t) <= w => {
                last.push(' ');
                last.push_str(&t);
            }
            _ => lines.push(t),
        }
    }
    let room = usize::from(height).max(1);
    if lines.len() > room {
        lines.truncate(room);
        if let Some(last) = lines.last_mut() {
            *last = fmt::cut(&format!("{last}…"), w);
        }
    }
    lines.iter().map(|l| fmt::pad(l, w)).collect()
}

/// Draws one frame. Reads the state, changes nothing.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let r = layout::regions(app, area);
    if let Some(tiny) = r.tiny {
        let lines: Vec<Line> = enlarge_lines(tiny.width, tiny.height)
            .into_iter()
            .map(|l| Line::styled(l, app.theme.warn))
            .collect();
        frame.render_widget(Paragraph::new(lines), tiny);
        return;
    }
    if let Some(l) = r.list {
        list::draw(app, frame, l);
    }
    if app.mode == Mode::Edit {
        let target = match (r.raw, r.ai) {
            (Some(raw), Some(ai)) if raw.y == ai.y => {
                detail::draw_raw(app, frame, raw);
                ai
            }
            _ => r.body,
        };
        form::draw(app, frame, target);
    } else {
        if let Some(raw) = r.raw {
            detail::draw_raw(app, frame, raw);
        }
        if let Some(ai) = r.ai {
            detail::draw_ai(app, frame, ai);
        }
    }
    overlay::draw(app, frame, r.body);
    bars::draw_status(app, frame, r.status);
    bars::draw_footer(app, frame, r.footer);
}
