//! A backend wrapper that sends fewer bytes over slow links: where two changed cells on a
//! row are separated by a few unchanged ones, it reprints those instead of a cursor move
//! (`ESC[row;colH`, 6–8 bytes), when that is shorter and needs no colour change. What the
//! unchanged cells hold comes from the previous frame, handed over with [`GapFill::sync`];
//! without a synced frame nothing is filled.
use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::{Position, Rect, Size};

/// Reprint at most this many unchanged cells to save a cursor move.
const MAX_GAP: u16 = 6;

/// Wraps a backend; `Write` passes through (synchronized-output sequences).
pub struct GapFill<B: Backend> {
    inner: B,
    /// What the terminal shows, as far as this backend drew it.
    shadow: Buffer,
    /// Off: pass cells through untouched.
    pub enabled: bool,
}

impl<B: Backend> GapFill<B> {
    pub fn new(inner: B) -> Self {
        GapFill {
            inner,
            shadow: Buffer::empty(Rect::default()),
            enabled: true,
        }
    }

    /// Takes the frame just drawn as what the screen shows. Called after each
    /// `Terminal::draw` with its completed buffer, so the cells reprinted in a gap are
    /// exactly what ratatui believes is on screen (hidden halves of wide characters
    /// included, which a copy built from drawn cells alone would get wrong).
    pub fn sync(&mut self, frame: &Buffer) {
        self.shadow.area = frame.area;
        self.shadow.content.clone_from(&frame.content);
    }

    /// [`GapFill::sync`] with a frame the caller already owns (no second copy).
    pub fn sync_owned(&mut self, frame: Buffer) {
        self.shadow = frame;
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

fn move_cost(x: u16, y: u16) -> usize {
    // ESC [ row ; col H with 1-based row and column.
    4 + digits(y + 1) + digits(x + 1)
}

fn digits(n: u16) -> usize {
    n.to_string().len()
}

fn same_style(a: &Cell, b: &Cell) -> bool {
    a.fg == b.fg
        && a.bg == b.bg
        && a.modifier == b.modifier
        && a.underline_color == b.underline_color
}

impl<B: Backend> Backend for GapFill<B> {
    type Error = B::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        if !self.enabled {
            return self.inner.draw(content);
        }
        let shadow = &self.shadow;
        let area = shadow.area;
        // References only: the cells come from ratatui's frame or from the shadow frame.
        let mut out: Vec<(u16, u16, &Cell)> = Vec::new();
        let mut last: Option<(u16, u16, u16)> = None; // x, y, width of the last cell sent
        for (x, y, c) in content {
            if let Some((lx, ly, lw)) = last {
                let next = lx.saturating_add(lw.max(1));
                if ly == y && x > next && x - next <= MAX_GAP && x < area.width && y < area.height {
                    // The cells in between, as the terminal shows them.
                    let prev = out.last().map(|(_, _, c)| *c);
                    let start = out.len();
                    let mut bytes = 0;
                    let mut ok = true;
                    let mut gx = next;
                    while gx < x {
                        let cell = &shadow[(gx, y)];
                        let w = crate::text::width(cell.symbol()).max(1) as u16;
                        if gx + w > x
                            || cell.symbol().is_empty()
                            || prev.is_some_and(|p| !same_style(p, cell))
                        {
                            ok = false;
                            break;
                        }
                        bytes += cell.symbol().len();
                        out.push((gx, y, cell));
                        gx += w;
                    }
                    if !(ok && gx == x && bytes < move_cost(x, y)) {
                        out.truncate(start);
                    }
                }
            }
            let w = crate::text::width(c.symbol()) as u16;
            last = Some((x, y, w));
            out.push((x, y, c));
        }
        self.inner.draw(out.into_iter())
    }

    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> Result<(), Self::Error> {
        self.shadow = Buffer::empty(self.shadow.area);
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        // Only a full clear keeps the shadow exact; anything else forgets it (no gap fill
        // until cells are drawn again), which is always safe.
        self.shadow = Buffer::empty(Rect::default());
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }

    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Backend::flush(&mut self.inner)
    }
}

impl<B: Backend + Write> Write for GapFill<B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(&mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell as StdCell;
    use std::rc::Rc;

    use ratatui::Terminal;
    use ratatui::backend::CrosstermBackend;
    use ratatui::widgets::Paragraph;

    use super::*;

    #[derive(Clone, Default)]
    struct Count(Rc<StdCell<usize>>);

    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.set(self.0.get() + buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Bytes written for a sequence of one-line frames, with or without gap filling.
    fn frames(texts: &[&str], fill: bool) -> usize {
        let fixed = || ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(Rect::new(0, 0, 40, 1)),
        };
        let count = Count::default();
        let draw = |f: &mut ratatui::Frame, t: &str| {
            f.render_widget(Paragraph::new(t.to_string()), f.area())
        };
        if fill {
            let backend = GapFill::new(CrosstermBackend::new(count.clone()));
            let mut term = Terminal::with_options(backend, fixed()).unwrap();
            for t in texts {
                let b = term.draw(|f| draw(f, t)).unwrap().buffer.clone();
                term.backend_mut().sync(&b);
            }
        } else {
            let mut term =
                Terminal::with_options(CrosstermBackend::new(count.clone()), fixed()).unwrap();
            for t in texts {
                term.draw(|f| draw(f, t)).unwrap();
            }
        }
        count.0.get()
    }

    #[test]
    fn small_gaps_are_reprinted_not_jumped() {
        let texts = ["order 41 of 57 at 19h", "order 42 of 58 at 18h"];
        let plain = frames(&texts, false);
        let filled = frames(&texts, true);
        assert!(filled < plain, "{filled} vs {plain}");
    }

    #[test]
    fn the_screen_ends_up_the_same() {
        // Wide characters next to a gap are never split.
        // Wide characters replaced by narrow text with small gaps: the hidden right halves
        // must never be reprinted from stale content (a bug a shadow built from drawn cells
        // alone had).
        let texts = [
            "日本語 abc 東京 xyz",
            "日本人 abd 東京 xyz",
            "a",
            "佐藤 美咲 <misaki@kanto.example> 18h",
            "at our last QBR.   a  p  e  a  s  o",
            "at our last QBR.                   ",
            "陈志远 <chen@huaxin> 合作意向",
            "nobody mentioned this at our last",
        ];
        let mut term = Terminal::with_options(
            GapFill::new(ratatui::backend::TestBackend::new(40, 1)),
            ratatui::TerminalOptions {
                viewport: ratatui::Viewport::Fixed(Rect::new(0, 0, 40, 1)),
            },
        )
        .unwrap();
        for t in texts {
            term.draw(|f| f.render_widget(Paragraph::new(t), f.area()))
                .unwrap();
            let shown = term.backend().inner().buffer().clone();
            let mut want = Buffer::empty(Rect::new(0, 0, 40, 1));
            ratatui::widgets::Widget::render(Paragraph::new(t), want.area, &mut want);
            // Compare what a terminal shows: symbols, skipping the hidden right halves of
            // wide characters (TestBackend keeps stale text there, with or without gap fill).
            let mut hidden = 0;
            for (i, (a, b)) in shown.content.iter().zip(want.content.iter()).enumerate() {
                if hidden > 0 {
                    hidden -= 1;
                    continue;
                }
                assert_eq!(a.symbol(), b.symbol(), "{t}: cell {i}");
                hidden = crate::text::width(b.symbol()).saturating_sub(1);
            }
        }
    }
}
