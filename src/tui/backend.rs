//! The console's terminal backend: crossterm's, except that frames are written by the
//! planner ([`super::plan`]), which knows what the screen shows (the previous frame,
//! handed over with [`AnsiBackend::sync_owned`]) and sends the fewest bytes that make it
//! show the next one. Over a slow SSH link that is most of what a key costs.
//!
//! It assumes the frame spans the terminal's full width (a full-screen viewport): a blank
//! run that reaches the frame's right edge is erased with `ESC[K`, to the end of the row.
use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::{Position, Size};

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
    /// The terminal's width from the last size query.
    width: std::cell::Cell<Option<u16>>,
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
            width: std::cell::Cell::new(None),
        }
    }

    /// Takes the frame just drawn (`CompletedFrame::buffer`) as what the screen shows.
    /// Called after each `Terminal::draw`: the planner reprints and erases unchanged cells
    /// from exactly what ratatui believes is on screen (hidden halves of wide characters
    /// included, which a copy built from the drawn cells alone would get wrong). Without
    /// it the next frame touches only changed cells.
    pub fn sync_owned(&mut self, frame: Buffer) {
        self.screen = Screen::Frame(frame);
    }

    /// [`AnsiBackend::sync_owned`] reusing this backend's copy.
    pub fn sync(&mut self, frame: &Buffer) {
        match &mut self.screen {
            Screen::Frame(b) if b.area == frame.area => b.content.clone_from(&frame.content),
            _ => self.screen = Screen::Frame(frame.clone()),
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
                Screen::Unknown => (Shown::Unknown, self.width.get()),
                Screen::Blank => (Shown::Blank, self.width.get()),
                Screen::Frame(b) => (Shown::Frame(b), (b.area.x == 0).then_some(b.area.width)),
            };
            self.planner.plan(&mut self.out, shown, width, &updates);
        } else {
            plain(&mut self.out, &updates);
        }
        // Until the caller syncs the frame, the screen is only known where it was drawn.
        if let Screen::Frame(_) | Screen::Blank = self.screen {
            self.screen = Screen::Unknown;
        }
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
        self.inner.clear()?;
        self.forget();
        self.screen = Screen::Blank;
        Ok(())
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)?;
        // The frame ends with the default pen, so a full clear leaves default blanks;
        // anything partial forgets the screen (the next frame touches only what changed).
        self.forget();
        if clear_type == ClearType::All {
            self.screen = Screen::Blank;
        }
        Ok(())
    }

    fn size(&self) -> io::Result<Size> {
        let s = self.inner.size()?;
        self.width.set(Some(s.width));
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
