//! Plans the bytes of one frame. Given what the screen shows and the cells ratatui says
//! changed, it finds the shortest output that leaves every changed cell as ratatui drew it
//! and every other cell as it was, choosing among:
//!
//! - printing the changed cells, with the shortest SGR change before each;
//! - reprinting a few unchanged cells instead of a cursor move when that is shorter;
//! - erasing a run of blank cells (`ESC[nX`, or `ESC[K` up to the end of the row) instead
//!   of printing spaces, with the run's background;
//! - the shortest cursor move (absolute, column, relative, line feeds).
//!
//! (Drawing a side-by-side screen one side at a time, to switch colours less often, was
//! tried: within a few bytes of row by row either way, so rows it is.)
//!
//! Blank cells (a space with no attribute that shows on blanks) are only their background
//! on screen, so they are printed or erased with whatever foreground the pen holds.
//!
//! The search is a shortest path over (cells done, cursor, pen) along the rows, carried
//! from row to row. The cursor is only trusted where every terminal agrees: after a glyph
//! whose width terminals may disagree on (emoji sequences, anything wide but CJK) the next
//! move is absolute, and after the last column only absolute columns are used.
use ratatui::buffer::{Buffer, Cell, CellDiffOption, CellWidth};
use ratatui::layout::Position;
use ratatui::style::{Color, Modifier};

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
/// Pens with an id below this have their SGR costs cached.
const PEN_CACHE: usize = 64;
const NONE: u32 = u32::MAX;

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
    pen: u16,
    op: Op,
}

/// One cell of a row being planned, as the new frame has it.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// What the cell must show is known (changed, or the screen is known).
    known: bool,
    changed: bool,
    /// Index into the frame's updates when ratatui changed it.
    update: u32,
    /// Under the right part of a wide glyph to its left.
    covered: bool,
    /// A space that shows nothing but its background.
    blank: bool,
    /// Width as ratatui lays it out (at least 1).
    width: u16,
    /// The terminal surely agrees on `width`.
    trusted: bool,
    /// Bytes of the symbol.
    len: u16,
    /// The cell's own pen, and a reset pen with its background (for blanks).
    pen: u16,
    bg_pen: u16,
    /// End of the run of blank cells of one background starting here (itself when the
    /// cell is not blank or not known).
    run_end: u16,
    /// The first changed cell at or after this one.
    next: u16,
    /// Where the glyph on screen over this cell starts and ends (itself when unknown).
    old_start: u16,
    old_end: u16,
}

/// A changed row: its cells are `slots[base..base + len]`.
#[derive(Clone, Copy)]
struct Row {
    y: u16,
    base: usize,
    len: u16,
}

/// Reusable memory for [`Planner::plan`].
#[derive(Default)]
pub struct Planner {
    nodes: Vec<Node>,
    buckets: Vec<Vec<u32>>,
    ends: Vec<u32>,
    chain: Vec<u32>,
    slots: Vec<Slot>,
    rows: Vec<Row>,
    pens: Vec<Pen>,
    /// SGR bytes between pens `a` and `b` at `a * PEN_CACHE + b`, `u8::MAX` unknown.
    sgr_cache: Vec<u8>,
    /// The pen that erases to `b`'s background from pen `a`, at `a * PEN_CACHE + b`.
    erase_cache: Vec<u16>,
    last_pen: Option<(Pen, u16)>,
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
enum Known<'a> {
    Unknown,
    Blank,
    Row(&'a [Cell]),
    Frame(&'a Buffer, u16),
}

impl<'a> Known<'a> {
    fn row(shown: Shown<'a>, y: u16) -> Known<'a> {
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

    fn get(self, x: u16) -> Option<&'a Cell> {
        match self {
            Known::Unknown => None,
            Known::Blank => Some(&BLANK),
            Known::Row(r) => r.get(usize::from(x)),
            Known::Frame(b, y) => b.cell(Position { x, y }),
        }
    }
}

static BLANK: Cell = Cell::EMPTY;

/// The cursor is on (`x`, `y`). Also in the pending-wrap state: a cell at `x` exists, so
/// `x` is not past the end of the row.
fn at(cur: Cursor, x: u16, y: u16) -> bool {
    matches!(cur, Cursor::At { x: cx, y: cy, .. } if cx == x && cy == y)
}

impl Planner {
    fn pen_id(&mut self, p: Pen) -> u16 {
        // Neighbouring cells mostly share a pen.
        if let Some((last, id)) = self.last_pen
            && last == p
        {
            return id;
        }
        let id = match self.pens.iter().position(|q| *q == p) {
            Some(i) => i as u16,
            None => {
                self.pens.push(p);
                (self.pens.len() - 1) as u16
            }
        };
        self.last_pen = Some((p, id));
        id
    }

    fn sgr(&mut self, a: u16, b: u16) -> u32 {
        if a == b {
            return 0;
        }
        let (ua, ub) = (usize::from(a), usize::from(b));
        if ua < PEN_CACHE && ub < PEN_CACHE {
            let k = ua * PEN_CACHE + ub;
            if self.sgr_cache[k] == u8::MAX {
                let n = ansi::sgr_len(self.pens[ua], self.pens[ub]);
                self.sgr_cache[k] = n.min(254) as u8;
                if n >= 254 {
                    return n as u32;
                }
            }
            return u32::from(self.sgr_cache[k]);
        }
        ansi::sgr_len(self.pens[ua], self.pens[ub]) as u32
    }

    /// The pen `pen` becomes to show blanks like `bg_pen` (a reset pen with the wanted
    /// background): its background changed, attributes that show on blanks dropped.
    fn blank_pen(&mut self, pen: u16, bg_pen: u16) -> u16 {
        let (ua, ub) = (usize::from(pen), usize::from(bg_pen));
        let cached = ua < PEN_CACHE && ub < PEN_CACHE;
        if cached && self.erase_cache[ua * PEN_CACHE + ub] != u16::MAX {
            return self.erase_cache[ua * PEN_CACHE + ub];
        }
        let p = self.pens[ua];
        let id = self.pen_id(Pen {
            fg: p.fg,
            bg: self.pens[ub].bg,
            mods: p.mods - ansi::VISIBLE_ON_BLANK,
        });
        if cached {
            self.erase_cache[ua * PEN_CACHE + ub] = id;
        }
        id
    }

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
            // Replace the most expensive state if this one is cheaper. (Nodes in a bucket
            // have no children yet, so they can be overwritten.)
            if let Some((k, _)) = b
                .iter()
                .enumerate()
                .map(|(k, &i)| (k, nodes[i as usize].cost))
                .max_by_key(|&(_, c)| c)
                .filter(|&(_, c)| node.cost < c)
            {
                nodes[b[k] as usize] = node;
            }
            return;
        }
        b.push(nodes.len() as u32);
        nodes.push(node);
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
        self.pens.clear();
        self.pens.push(Pen::DEFAULT);
        self.last_pen = None;
        self.sgr_cache.clear();
        self.sgr_cache.resize(PEN_CACHE * PEN_CACHE, u8::MAX);
        self.erase_cache.clear();
        self.erase_cache.resize(PEN_CACHE * PEN_CACHE, u16::MAX);
        self.slots.clear();
        self.rows.clear();
        let mut i = 0;
        while i < updates.len() {
            let y = updates[i].1;
            let mut j = i;
            while j < updates.len() && updates[j].1 == y {
                j += 1;
            }
            self.build_row(shown, width, y, &updates[i..j], i);
            i = j;
        }

        self.nodes.clear();
        self.nodes.push(Node {
            parent: 0,
            cost: 0,
            cur: Cursor::Unknown,
            pen: 0,
            op: Op::Start,
        });
        // Row by row.
        self.ends.clear();
        self.ends.push(0);
        for r in 0..self.rows.len() {
            let len = self.rows[r].len;
            self.segment(r, 0, len, width);
        }
        let best = self.best_end();
        self.emit(out, shown, updates, best);
    }

    /// The cheapest end state, with its cost including the reset to the default pen.
    fn best_end(&mut self) -> (u32, u32) {
        let mut best = (0, u32::MAX);
        for k in 0..self.ends.len() {
            let n = self.ends[k];
            let node = self.nodes[n as usize];
            let cost = node.cost + self.sgr(node.pen, 0);
            if cost < best.1 {
                best = (n, cost);
            }
        }
        best
    }

    fn emit(
        &mut self,
        out: &mut Vec<u8>,
        shown: Shown<'_>,
        updates: &[(u16, u16, &Cell)],
        best: (u32, u32),
    ) {
        self.chain.clear();
        let mut n = best.0;
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
            let p = self.pens[usize::from(node.pen)];
            ansi::write_sgr(out, pen, p);
            match node.op {
                Op::Print { x, y, update } => {
                    let c = match updates.get(update as usize) {
                        Some(u) => Some(u.2),
                        None => Known::row(shown, y).get(x),
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
            pen = p;
        }
        ansi::write_sgr(out, pen, Pen::DEFAULT);
        debug_assert_eq!((out.len() - start) as u32, best.1);
    }

    /// Lays out one changed row: what each cell must show, widths, wide glyphs, runs of
    /// blanks, where the next change is.
    fn build_row(
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

    /// Extends the states in `self.ends` through the changes of row `r` in columns
    /// `lo..hi`.
    fn segment(&mut self, r: usize, lo: u16, hi: u16, width: Option<u16>) {
        let Row { y, base, len } = self.rows[r];
        let at_lo = self.slots[base + usize::from(lo)].next;
        if at_lo >= hi {
            return;
        }
        let span = usize::from(hi - lo);
        if self.buckets.len() < span + 1 {
            self.buckets.resize_with(span + 1, Vec::new);
        }
        for b in &mut self.buckets[..=span] {
            b.clear();
        }
        let mut starts = std::mem::take(&mut self.ends);
        self.buckets[0].append(&mut starts);
        self.ends = starts;
        for d in lo..=hi {
            let here = std::mem::take(&mut self.buckets[usize::from(d - lo)]);
            let nx = if d < hi {
                self.slots[base + usize::from(d)].next.min(hi)
            } else {
                hi
            };
            if nx >= hi {
                for &n in &here {
                    self.push_end(n);
                }
                self.buckets[usize::from(d - lo)] = here;
                continue;
            }
            let t = self.slots[base + usize::from(nx)];
            for &ni in &here {
                let n = self.nodes[ni as usize];
                let mv = if at(n.cur, nx, y) {
                    0
                } else {
                    ansi::best_move(n.cur, nx, y).bytes() as u32
                };
                // Print the changed cell.
                let end = nx.saturating_add(t.width).min(hi);
                let cur = if t.trusted {
                    Cursor::At {
                        x: end,
                        y,
                        wrap: width.is_none_or(|w| end >= w),
                    }
                } else {
                    Cursor::Unknown
                };
                let op = Op::Print {
                    x: nx,
                    y,
                    update: t.update,
                };
                self.print(ni, n, usize::from(end - lo), cur, t, mv, op);
                // Erase the run of blanks it starts.
                let run_end = t.run_end.min(hi);
                if t.blank && run_end >= nx + 2 {
                    let to_end = hi == len && width == Some(run_end);
                    let op_len = if to_end {
                        ansi::EL.len() as u32
                    } else {
                        ansi::ech_len(run_end - nx) as u32
                    };
                    let cur = Cursor::At {
                        x: nx,
                        y,
                        wrap: false,
                    };
                    let op = Op::Erase {
                        x: nx,
                        y,
                        n: run_end - nx,
                        to_end,
                    };
                    let bucket = usize::from(run_end - lo);
                    for p in [self.blank_pen(n.pen, t.bg_pen), t.bg_pen] {
                        let cost = n.cost + mv + self.sgr(n.pen, p) + op_len;
                        self.push(
                            bucket,
                            Node {
                                parent: ni,
                                cost,
                                cur,
                                pen: p,
                                op,
                            },
                        );
                    }
                }
                // Reprint the unchanged cell under the cursor on the way to `nx`.
                if d < nx && nx - d <= MAX_FILL && at(n.cur, d, y) {
                    let s = self.slots[base + usize::from(d)];
                    if s.known && !s.covered && s.trusted && d + s.width <= nx {
                        let end = d + s.width;
                        let cur = Cursor::At {
                            x: end,
                            y,
                            wrap: false,
                        };
                        let op = Op::Print {
                            x: d,
                            y,
                            update: NONE,
                        };
                        self.print(ni, n, usize::from(end - lo), cur, s, 0, op);
                    }
                }
            }
            self.buckets[usize::from(d - lo)] = here;
        }
    }

    /// Pushes the states after printing cell `s` from node `n`: with its own pen, or for a
    /// blank any pen that shows it.
    #[allow(clippy::too_many_arguments)]
    fn print(&mut self, ni: u32, n: Node, bucket: usize, cur: Cursor, s: Slot, mv: u32, op: Op) {
        let base = n.cost + mv + u32::from(s.len);
        let mut pens = [s.pen, s.pen, s.pen];
        let mut k = 1;
        if s.blank {
            for p in [self.blank_pen(n.pen, s.bg_pen), s.bg_pen] {
                if !pens[..k].contains(&p) {
                    pens[k] = p;
                    k += 1;
                }
            }
        }
        for &p in &pens[..k] {
            let cost = base + self.sgr(n.pen, p);
            self.push(
                bucket,
                Node {
                    parent: ni,
                    cost,
                    cur,
                    pen: p,
                    op,
                },
            );
        }
    }
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
