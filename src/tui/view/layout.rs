//! Where things go at a given terminal size. Pure and shared by `draw` and `update` (which
//! needs the list's height to page the queue). All arithmetic saturates.
use ratatui::layout::Rect;

use crate::tui::action::Pane;
use crate::tui::app::{App, Mode};

/// Below this the console shows one "enlarge the terminal" line.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;
/// From this width the raw request and the AI triage sit side by side.
pub const SIDE_BY_SIDE: u16 = 100;

/// The regions of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regions {
    /// Set when the terminal is too small for anything else.
    pub tiny: Option<Rect>,
    pub list: Option<Rect>,
    pub raw: Option<Rect>,
    pub ai: Option<Rect>,
    /// Where overlays (pickers, help, diff…) go.
    pub body: Rect,
    pub status: Rect,
    pub footer: Rect,
}

/// Below the minimum size: one "enlarge the terminal" line and nothing else is drawn.
pub fn too_small(width: u16, height: u16) -> bool {
    width < MIN_WIDTH || height < MIN_HEIGHT
}

pub fn regions(app: &App, area: Rect) -> Regions {
    let mut r = Regions::default();
    if too_small(area.width, area.height) {
        r.tiny = Some(area);
        return r;
    }
    let body_h = area.height.saturating_sub(3);
    r.body = Rect::new(area.x, area.y, area.width, body_h);
    r.status = Rect::new(area.x, area.y + body_h, area.width, 2);
    r.footer = Rect::new(area.x, area.y + body_h + 2, area.width, 1);
    let open = app.open.is_some() || matches!(app.mode, Mode::Edit);
    let detail = if open {
        Some(r.body)
    } else if body_h >= 14 {
        let list_h = list_height(app, body_h);
        r.list = Some(Rect::new(area.x, area.y, area.width, list_h));
        Some(Rect::new(
            area.x,
            area.y + list_h,
            area.width,
            body_h.saturating_sub(list_h),
        ))
    } else {
        r.list = Some(r.body);
        None
    };
    if let Some(d) = detail {
        if d.width >= SIDE_BY_SIDE {
            let left = d.width / 2;
            r.raw = Some(Rect::new(d.x, d.y, left, d.height));
            r.ai = Some(Rect::new(
                d.x + left,
                d.y,
                d.width.saturating_sub(left),
                d.height,
            ));
        } else if d.height >= 16 {
            let top = d.height * 2 / 5;
            r.raw = Some(Rect::new(d.x, d.y, d.width, top));
            r.ai = Some(Rect::new(
                d.x,
                d.y + top,
                d.width,
                d.height.saturating_sub(top),
            ));
        } else if app.focus == Pane::Raw {
            r.raw = Some(d);
        } else {
            r.ai = Some(d);
        }
    }
    r
}

/// The list's height beside the detail: its share of the body (`+`/`-` change it), at
/// least 7 rows, and never so tall that the detail gets fewer than 5.
fn list_height(app: &App, body_h: u16) -> u16 {
    let share = u32::from(app.list_pct.clamp(MIN_LIST_PCT, MAX_LIST_PCT));
    let h = u16::try_from(u32::from(body_h) * share / 100).unwrap_or(body_h);
    h.max(7).min(body_h.saturating_sub(5)).max(1)
}

/// The list's share of the body, in percent, and how far `+`/`-` can take it.
pub const DEFAULT_LIST_PCT: u16 = 40;
pub const MIN_LIST_PCT: u16 = 20;
pub const MAX_LIST_PCT: u16 = 80;

/// Rows of the list that show items (inside its border).
/// The same whether or not an item is open, so the selection keeps its place.
pub fn list_rows(app: &App) -> u16 {
    if too_small(app.width, app.height) {
        return 1;
    }
    let body_h = app.height.saturating_sub(3);
    let list_h = if body_h >= 14 {
        list_height(app, body_h)
    } else {
        body_h
    };
    let inner = list_h.saturating_sub(2);
    if has_header(inner) {
        inner - 1
    } else {
        inner.max(1)
    }
}

/// The list shows column headers when its inside has room for them and three rows.
pub fn has_header(inner_height: u16) -> bool {
    inner_height >= 4
}

/// Whether a frame at the app's size has room for the item's detail (the raw request or
/// the AI triage), beside the list or instead of it.
pub fn shows_detail(app: &App) -> bool {
    let r = regions(app, Rect::new(0, 0, app.width, app.height));
    r.raw.is_some() || r.ai.is_some()
}
