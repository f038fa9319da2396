//! Plans the bytes of one frame. Given what the screen shows and the cells ratatui says
//! changed, it finds the shortest output that leaves every changed cell as ratatui drew it
//! and every other cell as it was, choosing per row among:
//!
//! - printing the changed cells, with the shortest SGR change before each;
//! - reprinting a few unchanged cells instead of a cursor move when that is shorter;
//! - erasing a run of blank cells (`ESC[nX`, or `ESC[K` up to the end of the row) instead
//!   of printing spaces, with the run's background;
//! - the shortest cursor move (absolute, column, relative, line feeds).
//!
//! Blank cells (a space with no attribute that shows on blanks) are only their background
//! on screen, so they are printed or erased with whatever foreground the pen holds.
//!
//! The search is a shortest path over (cells done, cursor, pen) per row, carried from row
//! to row. The cursor is only trusted where every terminal agrees: after a glyph whose
//! width terminals may disagree on (emoji sequences, anything wide but CJK) the next move
//! is absolute, and after the last column only absolute columns are used.
use ratatui::buffer::{Buffer, Cell, CellWidth};
use ratatui::layout::Position;
use ratatui::style::Color;

use super::ansi::{self, Cursor, Pen};

/// What the screen shows outside the changed cells.
#[derive(Clone, Copy)]
pub enum Shown<'a> {
    /// Not known (first frame, after a partial clear): only changed cells are touched.
    Unknown,
    /// Blank in the default colours (after a full clear).
    Blank,
    /// This frame (the previous one).
    Frame(&'a Buffer),
}

/// Reprint at most this many unchanged cells to save a cursor move (a move forward is 3–5
/// bytes, a printed cell at least 1).
const MAX_FILL: u16 = 4;
/// States kept per position; more are never needed in practice (a few pens × cursors).
const MAX_STATES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Start,
    /// `update`: index into the frame's updates, or `NONE` for an unchanged cell.
    Print {
        x: u16,
        y: u16,
        update: u32,
    },
    Erase {
        x: u16,
        y: u16,
        n: u16,
        to_end: bool,
    },
}

#[derive(Clone, Copy, Debug)]
struct Node {
    parent: u32,
    cost: u32,
    cur: Cursor,
    pen: Pen,
    op: Op,
}

/// One cell of the row being planned.
#[derive(Clone, Copy, Default)]
struct Slot<'a> {
    /// What the cell must show; `None` when unknown (unchanged, screen unknown).
    cell: Option<&'a Cell>,
    changed: bool,
    /// Index into the frame's updates when changed.
    update: u32,
    /// Under the right part of a wide glyph to its left.
    covered: bool,
    /// Width as ratatui lays it out (at least 1).
    width: u16,
    /// The terminal surely agrees on `width`.
    trusted: bool,
    /// End of the run of blank cells of one background starting here (itself when the
    /// cell is not blank or not known).
    run_end: u16,
    /// The first changed cell at or after this one.
    next: u16,
    /// Where the glyph on screen over this cell starts and ends (itself when unknown).
    old_start: u16,
    old_end: u16,
}

/// Reusable memory for [`Planner::plan`].
#[derive(Default)]
pub struct Planner {
    nodes: Vec<Node>,
    buckets: Vec<Vec<u32>>,
    ends: Vec<u32>,
    chain: Vec<u32>,
}

/// Terminals agree on a glyph's width when it is one cell wide, or one wide CJK character.
/// Emoji (with variation selectors, ZWJ sequences, skin tones, flags) are where they
/// differ; after those the cursor is placed absolutely.
fn trusted(symbol: &str, width: u16) -> bool {
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

/// Pens to print `cell` with, starting from `pen`: its own, or for a blank cell anything
/// that shows the same blank (the current pen with the background changed and attributes
/// that show on blanks dropped, or a reset with that background).
fn print_pens(pen: Pen, cell: &Cell, blank: bool) -> ([Pen; 3], usize) {
    let own = Pen::of(cell);
    if !blank {
        return ([own; 3], 1);
    }
    let (a, b) = erase_pens(pen, cell.bg);
    let mut v = [own, a, b];
    let mut n = 1;
    for i in 1..3 {
        if !v[..n].contains(&v[i]) {
            v[n] = v[i];
            n += 1;
        }
    }
    (v, n)
}

/// Pens that erase to a blank of `bg`: the current one adjusted, or a reset one.
fn erase_pens(pen: Pen, bg: Color) -> (Pen, Pen) {
    (
        Pen {
            fg: pen.fg,
            bg,
            mods: pen.mods - ansi::VISIBLE_ON_BLANK,
        },
        Pen {
            fg: Color::Reset,
            bg,
            mods: ratatui::style::Modifier::empty(),
        },
    )
}

impl Planner {
    fn push(&mut self, bucket: usize, node: Node) {
        let nodes = &mut self.nodes;
        let b = &mut self.buckets[bucket];
        for &i in b.iter() {
            let old = &mut nodes[i as usize];
            if old.cur == node.cur && old.pen == node.pen {
                if node.cost < old.cost {
                    *old = node;
                }
                return;
            }
        }
        if b.len() >= MAX_STATES {
            // Replace the most expensive state if this one is cheaper.
            let (k, worst) = b
                .iter()
                .enumerate()
                .map(|(k, &i)| (k, nodes[i as usize].cost))
                .max_by_key(|&(_, c)| c)
                .unwrap_or((0, 0));
            if node.cost < worst {
                let i = b[k] as usize;
                nodes[i] = node;
            }
            return;
        }
        b.push(nodes.len() as u32);
        nodes.push(node);
    }

    /// Appends to `out` the bytes that bring the screen from `shown` to `shown` with
    /// `updates` applied (ratatui's diff, in its order: row by row, left to right), from the
    /// default pen and ending with it. `width` is the terminal's width when known.
    pub fn plan(
        &mut self,
        out: &mut Vec<u8>,
        shown: Shown<'_>,
        width: Option<u16>,
        updates: &[(u16, u16, &Cell)],
    ) {
        if updates.is_empty() {
            return;
        }
        self.nodes.clear();
        self.ends.clear();
        self.nodes.push(Node {
            parent: 0,
            cost: 0,
            cur: Cursor::Unknown,
            pen: Pen::DEFAULT,
            op: Op::Start,
        });
        self.ends.push(0);
        let mut slots: Vec<Slot> = Vec::new();
        let mut i = 0;
        while i < updates.len() {
            let y = updates[i].1;
            let mut j = i;
            while j < updates.len() && updates[j].1 == y {
                j += 1;
            }
            self.row(&mut slots, shown, width, y, &updates[i..j], i);
            i = j;
        }
        // The cheapest way through, ending with the default pen.
        let best = self
            .ends
            .iter()
            .copied()
            .min_by_key(|&n| {
                let n = &self.nodes[n as usize];
                n.cost as usize + ansi::sgr_len(n.pen, Pen::DEFAULT)
            })
            .unwrap_or(0);
        self.chain.clear();
        let mut n = best;
        while n != 0 {
            self.chain.push(n);
            n = self.nodes[n as usize].parent;
        }
        let mut cur = Cursor::Unknown;
        let mut pen = Pen::DEFAULT;
        let start = out.len();
        for &k in self.chain.iter().rev() {
            let node = self.nodes[k as usize];
            let (x, y) = match node.op {
                Op::Print { x, y, .. } | Op::Erase { x, y, .. } => (x, y),
                Op::Start => continue,
            };
            if !at(cur, x, y) {
                ansi::best_move(cur, x, y).write(out);
            }
            ansi::write_sgr(out, pen, node.pen);
            match node.op {
                Op::Print { x, y, update } => {
                    let c = match updates.get(update as usize) {
                        Some(u) => Some(u.2),
                        None => known(shown, x, y),
                    };
                    out.extend_from_slice(c.map_or(" ", |c| c.symbol()).as_bytes());
                }
                Op::Erase { n, to_end, .. } => {
                    if to_end {
                        out.extend_from_slice(ansi::EL);
                    } else {
                        ansi::write_ech(out, n);
                    }
                }
                Op::Start => {}
            }
            cur = node.cur;
            pen = node.pen;
        }
        ansi::write_sgr(out, pen, Pen::DEFAULT);
        debug_assert_eq!(
            out.len() - start,
            self.nodes[best as usize].cost as usize + ansi::sgr_len(pen, Pen::DEFAULT)
        );
    }

    /// Extends the states in `self.ends` through one row's changes.
    fn row<'a>(
        &mut self,
        slots: &mut Vec<Slot<'a>>,
        shown: Shown<'a>,
        width: Option<u16>,
        y: u16,
        updates: &[(u16, u16, &'a Cell)],
        first: usize,
    ) {
        let max_x = updates.iter().map(|u| u.0).max().unwrap_or(0);
        let len = width.unwrap_or(0).max(max_x.saturating_add(1));
        let l = usize::from(len);
        slots.clear();
        slots.extend((0..len).map(|x| Slot {
            cell: known(shown, x, y),
            update: NONE,
            ..Slot::default()
        }));
        // The glyphs on screen now (unchanged cells show what the screen shows).
        let mut x = 0;
        while x < l {
            let w = slots[x]
                .cell
                .map_or(1, |c| usize::from(c.cell_width().max(1)));
            for s in &mut slots[x..(x + w).min(l)] {
                s.old_start = x as u16;
                s.old_end = (x + w) as u16;
            }
            x += w;
        }
        for (k, &(x, _, c)) in updates.iter().enumerate() {
            let s = &mut slots[usize::from(x)];
            s.cell = Some(c);
            s.changed = true;
            s.update = (first + k) as u32;
        }
        // Widths and what wide glyphs cover, as ratatui lays the row out.
        let mut x = 0;
        while x < l {
            let Some(c) = slots[x].cell else {
                x += 1;
                continue;
            };
            let w = c.cell_width().max(1);
            slots[x].width = w;
            slots[x].trusted = trusted(c.symbol(), c.cell_width());
            for s in &mut slots[x + 1..(x + usize::from(w)).min(l)] {
                s.covered = true;
                // A changed cell under a glyph (ratatui refreshes those after some emoji)
                // is printed as it is, and nothing after it is trusted.
                if let Some(c) = s.cell {
                    s.width = c.cell_width().max(1);
                }
            }
            x += usize::from(w);
        }
        // A glyph drawn over part of a wide glyph on screen blanks the rest of it, in a
        // style terminals do not agree on. ratatui's diff does not always redraw that rest
        // (a wide character replaced by another one a column to the left): redraw it.
        for &(x, _, _) in updates {
            let x = usize::from(x);
            if slots[x].covered {
                continue;
            }
            let last = (x + usize::from(slots[x].width)).min(l) - 1;
            let (from, to) = (slots[x].old_start, slots[last].old_end);
            for i in (usize::from(from)..x).chain(last + 1..usize::from(to).min(l)) {
                if !slots[i].changed && !slots[i].covered && slots[i].cell.is_some() {
                    slots[i].changed = true;
                }
            }
        }
        let mut next = len;
        for x in (0..l).rev() {
            let s = slots[x];
            let blank = !s.covered && s.cell.is_some_and(ansi::is_blank);
            let run_end = match (blank, s.cell) {
                (true, Some(c)) => {
                    let n = slots.get(x + 1);
                    match n {
                        Some(n)
                            if n.run_end > x as u16 + 1
                                && n.cell.is_some_and(|nc| nc.bg == c.bg) =>
                        {
                            n.run_end
                        }
                        _ => x as u16 + 1,
                    }
                }
                _ => x as u16,
            };
            if s.changed {
                next = x as u16;
            }
            slots[x].run_end = run_end;
            slots[x].next = next;
        }

        if self.buckets.len() < l + 1 {
            self.buckets.resize_with(l + 1, Vec::new);
        }
        for b in &mut self.buckets[..=l] {
            b.clear();
        }
        self.buckets[0].append(&mut self.ends);
        for d in 0..=l {
            let here = std::mem::take(&mut self.buckets[d]);
            let nx = slots.get(d).map_or(len, |s| s.next);
            if nx >= len {
                for n in &here {
                    self.push_end(*n);
                }
                self.buckets[d] = here;
                continue;
            }
            let target = slots[usize::from(nx)];
            let Some(cell) = target.cell else {
                continue;
            };
            let blank = !target.covered && ansi::is_blank(cell);
            for &ni in &here {
                let n = self.nodes[ni as usize];
                let mv = if at(n.cur, nx, y) {
                    0
                } else {
                    ansi::best_move(n.cur, nx, y).bytes()
                };
                // Print the changed cell.
                let end = nx.saturating_add(target.width).min(len);
                let cur = if target.trusted && !target.covered {
                    Cursor::At {
                        x: end,
                        y,
                        wrap: width.is_none_or(|w| end >= w),
                    }
                } else {
                    Cursor::Unknown
                };
                let (pens, k) = print_pens(n.pen, cell, blank);
                for &p in &pens[..k] {
                    let cost = n.cost as usize + mv + ansi::sgr_len(n.pen, p) + cell.symbol().len();
                    self.push(
                        usize::from(end),
                        Node {
                            parent: ni,
                            cost: cost as u32,
                            cur,
                            pen: p,
                            op: Op::Print {
                                x: nx,
                                y,
                                update: target.update,
                            },
                        },
                    );
                }
                // Erase the run of blanks it starts.
                if blank && target.run_end >= nx + 2 {
                    let to_end = width == Some(target.run_end);
                    let op_len = if to_end {
                        ansi::EL.len()
                    } else {
                        ansi::ech_len(target.run_end - nx)
                    };
                    let (a, b) = erase_pens(n.pen, cell.bg);
                    for p in [a, b] {
                        let cost = n.cost as usize + mv + ansi::sgr_len(n.pen, p) + op_len;
                        self.push(
                            usize::from(target.run_end),
                            Node {
                                parent: ni,
                                cost: cost as u32,
                                cur: Cursor::At {
                                    x: nx,
                                    y,
                                    wrap: false,
                                },
                                pen: p,
                                op: Op::Erase {
                                    x: nx,
                                    y,
                                    n: target.run_end - nx,
                                    to_end,
                                },
                            },
                        );
                    }
                }
                // Reprint the unchanged cell under the cursor to get to `nx`.
                let d16 = d as u16;
                if d16 < nx && nx - d16 <= MAX_FILL && at(n.cur, d16, y) {
                    let s = slots[d];
                    if let Some(c) = s.cell
                        && !s.covered
                        && s.trusted
                        && d16 + s.width <= nx
                    {
                        let (pens, k) = print_pens(n.pen, c, ansi::is_blank(c));
                        for &p in &pens[..k] {
                            let cost = n.cost as usize + ansi::sgr_len(n.pen, p) + c.symbol().len();
                            self.push(
                                d + usize::from(s.width),
                                Node {
                                    parent: ni,
                                    cost: cost as u32,
                                    cur: Cursor::At {
                                        x: d16 + s.width,
                                        y,
                                        wrap: false,
                                    },
                                    pen: p,
                                    op: Op::Print {
                                        x: d16,
                                        y,
                                        update: NONE,
                                    },
                                },
                            );
                        }
                    }
                }
            }
            self.buckets[d] = here;
        }
    }

    fn push_end(&mut self, n: u32) {
        let node = self.nodes[n as usize];
        for e in self.ends.iter_mut() {
            let old = self.nodes[*e as usize];
            if old.cur == node.cur && old.pen == node.pen {
                if node.cost < old.cost {
                    *e = n;
                }
                return;
            }
        }
        if self.ends.len() >= MAX_STATES {
            if let Some((k, _)) = self
                .ends
                .iter()
                .enumerate()
                .map(|(k, &e)| (k, self.nodes[e as usize].cost))
                .max_by_key(|&(_, c)| c)
                .filter(|&(_, c)| node.cost < c)
            {
                self.ends[k] = n;
            }
            return;
        }
        self.ends.push(n);
    }
}

/// What an unchanged cell shows, when known.
fn known<'a>(shown: Shown<'a>, x: u16, y: u16) -> Option<&'a Cell> {
    match shown {
        Shown::Unknown => None,
        Shown::Blank => Some(&BLANK),
        Shown::Frame(b) => b.cell(Position { x, y }),
    }
}

static BLANK: Cell = Cell::EMPTY;

const NONE: u32 = u32::MAX;

/// The cursor is on (`x`, `y`). Also in the pending-wrap state: a cell at `x` exists, so
/// `x` is not past the end of the row.
fn at(cur: Cursor, x: u16, y: u16) -> bool {
    matches!(cur, Cursor::At { x: cx, y: cy, .. } if cx == x && cy == y)
}

/// The escape hatch (`SIGNOFF_TUI_PLAIN=1`): every changed cell printed where it goes, an
/// absolute move whenever the next cell is not the one right after the last (as crossterm
/// does), the shortest SGR between them.
pub fn plain(out: &mut Vec<u8>, updates: &[(u16, u16, &Cell)]) {
    let mut pen = Pen::DEFAULT;
    let mut last: Option<(u16, u16)> = None;
    for &(x, y, c) in updates {
        if !matches!(last, Some((lx, ly)) if ly == y && lx + 1 == x) {
            ansi::best_move(Cursor::Unknown, x, y).write(out);
        }
        last = Some((x, y));
        ansi::write_sgr(out, pen, Pen::of(c));
        pen = Pen::of(c);
        out.extend_from_slice(c.symbol().as_bytes());
    }
    ansi::write_sgr(out, pen, Pen::DEFAULT);
}

#[cfg(test)]
mod tests {
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    use super::*;

    fn line(w: u16, text: &str) -> Buffer {
        let mut b = Buffer::empty(Rect::new(0, 0, w, 2));
        b.set_string(0, 0, text, Style::default());
        b
    }

    fn planned(prev: &Buffer, next: &Buffer) -> String {
        let mut out = Vec::new();
        let updates = prev.diff(next);
        Planner::default().plan(
            &mut out,
            Shown::Frame(prev),
            Some(prev.area.width),
            &updates,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn blanks_are_erased_and_gaps_reprinted() {
        let prev = line(30, "order 41 of 57 at 19h, urgent");
        let next = line(30, "order 42 of 58 at 18h");
        // One absolute move, moves forward over the gaps (one cell reprinted), the tail
        // erased to the end of the row.
        assert_eq!(planned(&prev, &next), "\x1b[1;8H2\x1b[5C8\x1b[5C8h\x1b[K");
        let next = line(30, "order 42 of 57            !");
        // Two spaces are shorter than an erase to the end of the row.
        assert_eq!(
            planned(&prev, &next),
            "\x1b[1;8H2\x1b[7C\x1b[11X\x1b[11C!  "
        );
    }

    #[test]
    fn after_the_last_column_only_absolute_columns() {
        let mut prev = Buffer::empty(Rect::new(0, 0, 100, 2));
        let mut next = prev.clone();
        next.set_string(95, 0, "abcde", Style::default());
        next.set_string(99, 1, "z", Style::default());
        prev.set_string(0, 1, "", Style::default());
        // From column 99 a move down and one left would do; after writing the last column
        // terminals disagree on where the cursor is, so: line feed, absolute column.
        assert_eq!(planned(&prev, &next), "\x1b[1;96Habcde\n\x1b[100Gz");
    }

    #[test]
    fn emoji_are_followed_by_an_absolute_move_cjk_is_not() {
        let prev = Buffer::empty(Rect::new(0, 0, 20, 2));
        let next = line(20, "日本 👩‍💻 ok");
        assert_eq!(planned(&prev, &next), "\x1b[H日本 👩\u{200d}💻\x1b[1;9Hok");
    }
}
