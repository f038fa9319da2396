//! One changed row laid out for the planner: what each cell must show, how wide it is and
//! whether terminals agree on that, what wide glyphs cover (now and on screen), runs of
//! blanks, where the next change is.
use ratatui::buffer::{Buffer, Cell, CellDiffOption, CellWidth};
use ratatui::layout::Position;
use ratatui::style::{Color, Modifier};

use super::{NONE, Planner, Shown};
use crate::tui::ansi::{self, Pen};

/// One cell of a row being planned, as the new frame has it.
#[derive(Clone, Copy, Default)]
pub(super) struct Slot {
    /// What the cell must show is known (changed, or the screen is known).
    pub(super) known: bool,
    pub(super) changed: bool,
    /// Index into the frame's updates when ratatui changed it.
    pub(super) update: u32,
    /// Under the right part of a wide glyph to its left.
    pub(super) covered: bool,
    /// A space that shows nothing but its background.
    pub(super) blank: bool,
    /// Width as ratatui lays it out (at least 1).
    pub(super) width: u16,
    /// The terminal surely agrees on `width`.
    pub(super) trusted: bool,
    /// Bytes of the symbol.
    pub(super) len: u16,
    /// The cell's own pen, and a reset pen with its background (for blanks).
    pub(super) pen: u16,
    pub(super) bg_pen: u16,
    /// End of the run of blank cells of one background starting here (itself when the
    /// cell is not blank or not known).
    pub(super) run_end: u16,
    /// The first changed cell at or after this one.
    pub(super) next: u16,
    /// Where the glyph on screen over this cell starts and ends (itself when unknown).
    pub(super) old_start: u16,
    pub(super) old_end: u16,
}

/// A changed row: its cells are `slots[base..base + len]`.
#[derive(Clone, Copy)]
pub(super) struct Row {
    pub(super) y: u16,
    pub(super) base: usize,
    pub(super) len: u16,
}

/// Terminals agree on a glyph's width when it is one cell wide, or one wide CJK character.
/// Emoji (with variation selectors, ZWJ sequences, skin tones, flags) are where they
/// differ; after those the cursor is placed absolutely.
fn trusted(symbol: &str, width: u16) -> bool {
    if symbol.len() == 1 {
        return true;
    }
    let mut chars = symbol.chars();
    let Some(c) = chars.next() else {
        return false;
    };
    match width {
        1 => !symbol.contains(['\u{200d}', '\u{fe0f}']),
        2 => chars.next().is_none() && is_cjk_wide(c),
        _ => false,
    }
}

fn is_cjk_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x2FFFD
        | 0x30000..=0x3FFFD)
}

/// Width as ratatui lays the cell out (ASCII without the lookup).
fn width_of(c: &Cell) -> u16 {
    if c.symbol().len() == 1 && c.diff_option == CellDiffOption::None {
        1
    } else {
        c.cell_width().max(1)
    }
}

/// What unchanged cells of one row show.
#[derive(Clone, Copy)]
pub(super) enum Known<'a> {
    Unknown,
    Blank,
    Row(&'a [Cell]),
    Frame(&'a Buffer, u16),
}

impl<'a> Known<'a> {
    pub(super) fn row(shown: Shown<'a>, y: u16) -> Known<'a> {
        match shown {
            Shown::Unknown => Known::Unknown,
            Shown::Blank => Known::Blank,
            Shown::Frame(b) => {
                let a = b.area;
                if a.x == 0 && y >= a.y && y < a.bottom() {
                    let w = usize::from(a.width);
                    let start = usize::from(y - a.y) * w;
                    b.content
                        .get(start..start + w)
                        .map_or(Known::Frame(b, y), Known::Row)
                } else {
                    Known::Frame(b, y)
                }
            }
        }
    }

    pub(super) fn get(self, x: u16) -> Option<&'a Cell> {
        match self {
            Known::Unknown => None,
            Known::Blank => Some(&BLANK),
            Known::Row(r) => r.get(usize::from(x)),
            Known::Frame(b, y) => b.cell(Position { x, y }),
        }
    }
}

static BLANK: Cell = Cell::EMPTY;

impl Planner {
    /// Lays out one changed row: what each cell must show, widths, wide glyphs, runs of
    /// blanks, where the next change is.
    pub(super) fn build_row(
        &mut self,
        shown: Shown<'_>,
        width: Option<u16>,
        y: u16,
        updates: &[(u16, u16, &Cell)],
        first: usize,
    ) {
        let max_x = updates.iter().map(|u| u.0).max().unwrap_or(0);
        let len = width.unwrap_or(0).max(max_x.saturating_add(1));
        let l = usize::from(len);
        let known = Known::row(shown, y);
        let base = self.slots.len();
        self.rows.push(Row { y, base, len });
        self.slots.resize(base + l, Slot::default());

        // The glyphs on screen now.
        let mut x = 0;
        while x < l {
            let w = known.get(x as u16).map_or(1, |c| usize::from(width_of(c)));
            for s in &mut self.slots[base + x..base + (x + w).min(l)] {
                s.old_start = x as u16;
                s.old_end = (x + w) as u16;
            }
            x += w;
        }
        for (k, &(x, _, _)) in updates.iter().enumerate() {
            let s = &mut self.slots[base + usize::from(x)];
            s.changed = true;
            s.update = (first + k) as u32;
        }
        // The new row: widths, pens, what wide glyphs cover.
        let mut x = 0;
        let mut covered_to = 0;
        while x < l {
            let s = self.slots[base + x];
            let cell = if s.changed {
                Some(updates[s.update as usize - first].2)
            } else {
                known.get(x as u16)
            };
            let Some(c) = cell else {
                self.slots[base + x].update = if s.changed { s.update } else { NONE };
                x += 1;
                continue;
            };
            let sym = c.symbol();
            let w = if sym.len() == 1 && c.diff_option == CellDiffOption::None {
                1
            } else {
                c.cell_width().max(1)
            };
            let pen = self.pen_id(Pen::of(c));
            let blank = sym == " " && !c.modifier.intersects(ansi::VISIBLE_ON_BLANK);
            let bg_pen = if blank {
                self.pen_id(Pen {
                    fg: Color::Reset,
                    bg: c.bg,
                    mods: Modifier::empty(),
                })
            } else {
                pen
            };
            let covered = x < covered_to;
            let s = &mut self.slots[base + x];
            if !s.changed {
                s.update = NONE;
            }
            s.known = true;
            s.covered = covered;
            s.blank = blank && !covered;
            s.width = w;
            s.trusted = !covered && (sym.len() == 1 || trusted(sym, c.cell_width()));
            s.len = sym.len() as u16;
            s.pen = pen;
            s.bg_pen = bg_pen;
            if !covered {
                covered_to = x + usize::from(w);
            }
            x += 1;
        }
        // A glyph drawn over part of a wide glyph on screen blanks the rest of it, in a
        // style terminals do not agree on. ratatui's diff does not always redraw that rest
        // (a wide character replaced by another one a column to the left): redraw it.
        let row = &mut self.slots[base..base + l];
        for &(x, _, _) in updates {
            let x = usize::from(x);
            if row[x].covered {
                continue;
            }
            let last = (x + usize::from(row[x].width)).min(l) - 1;
            let (from, to) = (
                usize::from(row[x].old_start),
                usize::from(row[last].old_end),
            );
            for i in (from..x).chain(last + 1..to.min(l)) {
                let s = &mut row[i];
                if !s.changed && !s.covered && s.known {
                    s.changed = true;
                }
            }
        }
        let mut next = len;
        for x in (0..l).rev() {
            let n = row.get(x + 1).copied();
            let s = &mut row[x];
            s.run_end = match n {
                _ if !s.blank => x as u16,
                Some(n) if n.blank && n.bg_pen == s.bg_pen => n.run_end,
                _ => x as u16 + 1,
            };
            if s.changed {
                next = x as u16;
            }
            s.next = next;
        }
    }
}
