//! `draw(&App, &mut Frame)`: the whole screen as a pure function of the state.
pub mod fmt;
pub mod layout;

mod actions;
mod bars;
mod detail;
mod form;
mod list;
mod overlay;
mod stats;

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

/// Draws one frame. Reads the state, changes nothing.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let r = layout::regions(app, area);
    if let Some(tiny) = r.tiny {
        let msg = format!(
            "enlarge the terminal to at least {}×{}",
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        );
        let line = Line::styled(fmt::pad(&msg, usize::from(tiny.width)), app.theme.warn);
        frame.render_widget(Paragraph::new(line), tiny);
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
