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
use ratatui::buffer::{Buffer, Cell};

use super::ansi::{self, Cursor, Pen};

mod row;

use row::{Known, Row, Slot};

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
            self.through_row(r, width);
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

    /// Extends the states in `self.ends` through the changes of row `r`. States are kept
    /// in buckets by how far along the row they are done.
    fn through_row(&mut self, r: usize, width: Option<u16>) {
        let Row { y, base, len } = self.rows[r];
        let span = usize::from(len);
        if self.buckets.len() < span + 1 {
            self.buckets.resize_with(span + 1, Vec::new);
        }
        for b in &mut self.buckets[..=span] {
            b.clear();
        }
        let mut starts = std::mem::take(&mut self.ends);
        self.buckets[0].append(&mut starts);
        self.ends = starts;
        for d in 0..=len {
            let here = std::mem::take(&mut self.buckets[usize::from(d)]);
            let nx = if d < len {
                self.slots[base + usize::from(d)].next
            } else {
                len
            };
            if nx >= len {
                for &n in &here {
                    self.push_end(n);
                }
                self.buckets[usize::from(d)] = here;
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
                let end = nx.saturating_add(t.width).min(len);
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
                self.print(ni, n, usize::from(end), cur, t, mv, op);
                // Erase the run of blanks it starts.
                let run_end = t.run_end;
                if t.blank && run_end >= nx + 2 {
                    let to_end = width == Some(run_end);
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
                    let bucket = usize::from(run_end);
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
                        self.print(ni, n, usize::from(end), cur, s, 0, op);
                    }
                }
            }
            self.buckets[usize::from(d)] = here;
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
