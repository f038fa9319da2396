//! The one guard that owns the terminal: raw mode, alternate screen and bracketed paste on
//! entry; the reverse on exit, on drop, before `$EDITOR`, and in a panic hook that chains
//! the previous hook.
use std::io::{self, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};

/// Mouse reporting was turned on (`ui.mouse`): the restore turns it off again.
static MOUSE: AtomicBool = AtomicBool::new(false);
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};

/// Restores the terminal when dropped.
pub struct TerminalGuard {
    active: bool,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<TerminalGuard> {
        TerminalGuard::enter_with(false)
    }

    /// With `mouse`, the terminal reports clicks and the wheel (`ui.mouse = true`).
    pub fn enter_with(mouse: bool) -> io::Result<TerminalGuard> {
        install_panic_hook();
        MOUSE.store(mouse, Ordering::Relaxed);
        let mut g = TerminalGuard { active: false };
        g.resume()?;
        Ok(g)
    }

    /// Back to the shell's screen (before `$EDITOR`).
    pub fn suspend(&mut self) -> io::Result<()> {
        if self.active {
            self.active = false;
            restore()?;
        }
        Ok(())
    }

    pub fn resume(&mut self) -> io::Result<()> {
        if !self.active {
            enable_raw_mode()?;
            let mut out = io::stdout();
            if let Err(e) = execute!(
                out,
                EnterAlternateScreen,
                EnableBracketedPaste,
                cursor::Hide
            ) {
                let _ = restore();
                return Err(e);
            }
            if MOUSE.load(Ordering::Relaxed)
                && let Err(e) = execute!(out, EnableMouseCapture)
            {
                let _ = restore();
                return Err(e);
            }
            self.active = true;
        }
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if self.active {
            self.active = false;
            let _ = restore();
        }
    }
}

/// Leaves raw mode and the alternate screen, whatever state the terminal is in.
pub fn restore() -> io::Result<()> {
    let mut out = io::stdout();
    // Each step on its own: one failing (a hung-up terminal) must not skip the others.
    let a = execute!(
        out,
        crossterm::terminal::EndSynchronizedUpdate,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let m = if MOUSE.load(Ordering::Relaxed) {
        execute!(out, DisableMouseCapture)
    } else {
        Ok(())
    };
    let b = disable_raw_mode();
    let _ = out.flush();
    a.and(m).and(b)
}

/// A panic restores the terminal, then runs the previous hook (which prints the message)
/// and exits: a half-restored console must not keep running.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore();
            tracing::error!("panic: {info}");
            previous(info);
            std::process::exit(101);
        }));
    });
}
