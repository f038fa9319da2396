//! The console's terminal backend: crossterm's, except that frames are written by the
//! planner ([`super::plan`]), which knows what the screen shows (a copy of the frames it
//! drew) and sends the fewest bytes that make it show the next one. Over a slow SSH link
//! that is most of what a key costs.
//!
//! It assumes the frame spans the terminal's full width (a full-screen viewport): a blank
//! run that reaches the frame's right edge is erased with `ESC[K`, to the end of the row.
use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::{Buffer, Cell, CellWidth};
use ratatui::layout::{Position, Rect, Size};

use super::plan::{Planner, Shown, plain};

/// What the screen shows, as far as this backend knows.
enum Screen {
    Unknown,
    /// All blank, default colours (after a full clear).
    Blank,
    Frame(Buffer),
}

pub struct AnsiBackend<W: Write> {
    inner: CrosstermBackend<W>,
    screen: Screen,
    planner: Planner,
    out: Vec<u8>,
    /// Off: every changed cell at an absolute position, as crossterm writes them
    /// (`SIGNOFF_TUI_PLAIN=1`, should a terminal disagree with the planner).
    pub planned: bool,
    /// Whether the cursor is hidden, when known: ratatui hides it on every frame.
    cursor_hidden: Option<bool>,
    /// The terminal's size from the last query (ratatui asks before every frame).
    size: std::cell::Cell<Option<Size>>,
}

impl<W: Write> AnsiBackend<W> {
    pub fn new(writer: W) -> Self {
        AnsiBackend {
            inner: CrosstermBackend::new(writer),
            screen: Screen::Unknown,
            planner: Planner::default(),
            out: Vec::with_capacity(16 * 1024),
            planned: true,
            cursor_hidden: None,
            size: std::cell::Cell::new(None),
        }
    }

    /// Takes `frame` as what the screen shows: the frame ratatui just drew
    /// (`CompletedFrame::buffer`). The backend keeps that copy up to date itself from the
    /// cells it draws; it needs one again only when [`AnsiBackend::needs_sync`] says so
    /// (at the start, and after a partial clear). Without it the next frame touches only
    /// changed cells.
    pub fn sync_owned(&mut self, frame: Buffer) {
        self.screen = Screen::Frame(frame);
    }

    /// After the next frame the backend will not know what the screen shows unless it is
    /// handed that frame with [`AnsiBackend::sync_owned`]. Ask before drawing.
    pub fn needs_sync(&self) -> bool {
        match self.screen {
            Screen::Unknown => true,
            Screen::Blank => self.size.get().is_none(),
            Screen::Frame(_) => false,
        }
    }

    /// Applies the cells just drawn to the copy of the screen, as ratatui's buffer has
    /// them: the cells a wide glyph covers are reset (ratatui's diff skips them).
    fn remember(&mut self, updates: &[(u16, u16, &Cell)]) {
        if let (Screen::Blank, Some(size)) = (&self.screen, self.size.get()) {
            self.screen = Screen::Frame(Buffer::empty(Rect::new(0, 0, size.width, size.height)));
        }
        let Screen::Frame(b) = &mut self.screen else {
            self.screen = Screen::Unknown;
            return;
        };
        for &(x, y, c) in updates {
            let Some(cell) = b.cell_mut(Position { x, y }) else {
                self.screen = Screen::Unknown;
                return;
            };
            cell.clone_from(c);
            for k in 1..c.cell_width() {
                if let Some(cell) = b.cell_mut(Position { x: x + k, y }) {
                    cell.reset();
                }
            }
        }
    }

    fn forget(&mut self) {
        self.screen = Screen::Unknown;
        self.cursor_hidden = None;
    }
}

impl<W: Write> Backend for AnsiBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let updates: Vec<(u16, u16, &Cell)> = content.collect();
        self.out.clear();
        if self.planned {
            let (shown, width) = match &self.screen {
                Screen::Unknown => (Shown::Unknown, self.size.get().map(|s| s.width)),
                Screen::Blank => (Shown::Blank, self.size.get().map(|s| s.width)),
                Screen::Frame(b) => (Shown::Frame(b), (b.area.x == 0).then_some(b.area.width)),
            };
            self.planner.plan(&mut self.out, shown, width, &updates);
        } else {
            plain(&mut self.out, &updates);
        }
        self.remember(&updates);
        self.inner.write_all(&self.out)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.cursor_hidden != Some(true) {
            self.inner.hide_cursor()?;
            self.cursor_hidden = Some(true);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        if self.cursor_hidden != Some(false) {
            self.inner.show_cursor()?;
            self.cursor_hidden = Some(false);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> io::Result<()> {
        // Erases take the pen's background: make sure it is the default (after `$EDITOR`
        // the terminal may hold any pen).
        self.inner.write_all(b"\x1b[m")?;
        self.inner.clear()?;
        self.forget();
        self.screen = Screen::Blank;
        Ok(())
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.write_all(b"\x1b[m")?;
        self.inner.clear_region(clear_type)?;
        // With the default pen a full clear leaves default blanks; anything partial
        // forgets the screen (the next frame touches only what changed).
        self.forget();
        if clear_type == ClearType::All {
            self.screen = Screen::Blank;
        }
        Ok(())
    }

    fn size(&self) -> io::Result<Size> {
        let s = self.inner.size()?;
        self.size.set(Some(s));
        Ok(s)
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

/// Passes through (synchronized-output sequences around a frame).
impl<W: Write> Write for AnsiBackend<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(&mut self.inner)
    }
}
