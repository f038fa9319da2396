//! The event loop: terminal events, queue results and the few timers become actions;
//! everything queued is drained and applied, then one frame is drawn if anything changed.
//!
//! Wake-ups while idle: the change-token poll and nothing else; it redraws only when the
//! queue changed. The poll runs every [`POLL_EVERY`] after a key or a change and backs off
//! (doubling) to [`POLL_IDLE_MAX`] while nothing happens. A one-second tick runs only while an item is claimed
//! (lease countdown) or an edit waits for its debounced save; one wake-up at the end of the
//! undo window, only while the footer offers undo; heartbeats run in their own task while a
//! claim is held, so `$EDITOR` does not cost the lease.
//!
//! A queue that pushes its changes ([`Queue::changes`]: a server's event stream) delivers
//! each new token, or "offline", the moment it happens; the poll then only runs at the idle
//! rate as a fallback.
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use ratatui::Terminal;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use super::action::{Action, Cmd, Effect, Loaded};
use super::app::App;
use super::backend::AnsiBackend;
use super::terminal::TerminalGuard;
use super::update::update;
use super::{effects, update, view};
use crate::model::EditableField;
use crate::queue::{Claim, Millis, Queue};

/// How often the queue's change token is checked while idle.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// The longest wait between polls of an idle console.
pub const POLL_IDLE_MAX: Duration = Duration::from_secs(30);

/// The console's "now": the process's clock (the system's, or `SIGNOFF_CLOCK`).
pub fn now_ms() -> Millis {
    crate::clock::Clock::process().now()
}

/// Turns a terminal event into an action; `None` for what the console ignores (key
/// releases and repeats of the kitty protocol, focus). Mouse events only come when
/// `ui.mouse` turned reporting on.
pub fn event_action(ev: Event) -> Option<Action> {
    match ev {
        Event::Key(k) if k.kind == KeyEventKind::Press => Some(Action::Key(k)),
        Event::Paste(s) => Some(Action::Paste(s)),
        Event::Resize(w, h) => Some(Action::Resize(w, h)),
        Event::Mouse(m) => Some(Action::Mouse(m)),
        _ => None,
    }
}

/// Draws one frame inside synchronized output (no tearing over slow links).
pub fn draw_frame<W: Write>(
    terminal: &mut Terminal<AnsiBackend<W>>,
    app: &App,
) -> anyhow::Result<()> {
    crossterm::queue!(
        terminal.backend_mut(),
        crossterm::terminal::BeginSynchronizedUpdate
    )?;
    // The backend plans the next frame against what the screen shows; it keeps that up to
    // date itself once it has a whole frame (the first, and after a partial clear).
    let sync = terminal.backend().needs_sync();
    let frame = terminal
        .draw(|f| view::draw(app, f))
        .map_err(|e| anyhow::anyhow!("drawing the console failed: {e}"))?;
    let copy = sync.then(|| frame.buffer.clone());
    if let Some(b) = copy {
        terminal.backend_mut().sync_owned(b);
    }
    crossterm::execute!(
        terminal.backend_mut(),
        crossterm::terminal::EndSynchronizedUpdate
    )?;
    Ok(())
}

/// Runs a queue effect off the UI path; the result comes back on `tx`.
fn spawn_effect(queue: &Arc<dyn Queue>, reviewer: &str, tx: &UnboundedSender<Action>, fx: Effect) {
    let q = queue.clone();
    let tx = tx.clone();
    let reviewer = reviewer.to_string();
    tokio::spawn(async move {
        if let Some(l) = effects::perform(q.as_ref(), &reviewer, fx).await {
            let _ = tx.send(Action::Loaded(l));
        }
    });
}

/// The heartbeat task of the claim held now.
struct Heartbeat {
    id: i64,
    fence: i64,
    task: JoinHandle<()>,
}

fn start_heartbeat(
    queue: &Arc<dyn Queue>,
    tx: &UnboundedSender<Action>,
    claim: Claim,
    every: Duration,
) -> Heartbeat {
    let q = queue.clone();
    let tx = tx.clone();
    let (id, fence) = (claim.id, claim.fence);
    let task = tokio::spawn(async move {
        let mut claim = claim;
        loop {
            tokio::time::sleep(every).await;
            let result = q.heartbeat(&claim).await;
            // An unreachable server is not a lost lease: keep beating until it answers.
            let lost = result
                .as_ref()
                .is_err_and(|e| !matches!(e, crate::queue::QueueError::Unavailable(_)));
            let (id, fence) = (claim.id, claim.fence);
            if let Ok(c) = &result {
                claim = c.clone();
            }
            let _ = tx.send(Action::Loaded(Loaded::Heartbeat { id, fence, result }));
            if lost {
                break;
            }
        }
    });
    Heartbeat { id, fence, task }
}

/// How long until the undo hint in the footer must go out: a one-shot wake-up, armed only
/// while the hint is shown (the window closing is time passing; nothing else would redraw).
pub fn undo_timer(app: &App, now: Millis) -> Option<Duration> {
    app.undo_closes_at()
        .map(|until| Duration::from_millis(u64::try_from(until - now).unwrap_or(0)))
}

/// Runs `$EDITOR` (or `$VISUAL`, else `vi`) on `text`; the caller has left the terminal.
fn run_editor(field: EditableField, text: &str) -> Result<String, String> {
    // A shared server's /tmp: a fresh name, created exclusively (never through a symlink
    // someone planted) and readable by this user only, since the text is customer data.
    let path = std::env::temp_dir().join(format!(
        "signoff-{}-{}-{:016x}.txt",
        std::process::id(),
        field.as_str(),
        fastrand::u64(..)
    ));
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let editor = std::env::var("VISUAL")
        .ok()
        .or_else(|| std::env::var("EDITOR").ok())
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    // `$EDITOR` may carry arguments ("code --wait").
    let mut parts = editor.split_whitespace();
    let prog = parts.next().unwrap_or("vi");
    let status = std::process::Command::new(prog)
        .args(parts)
        .arg(&path)
        .status()
        .map_err(|e| format!("cannot start '{editor}': {e}; set $EDITOR"));
    let out = match status {
        Ok(s) if s.success() => std::fs::read(&path)
            .map(|b| {
                // Keep the lines; make anything hidden visible, as for request text.
                let s = String::from_utf8_lossy(&b).into_owned();
                crate::text::sanitize_lines(&s).join("\n")
            })
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Ok(s) => Err(format!(
            "'{editor}' exited with {s}; the field is unchanged"
        )),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&path);
    out
}

/// Runs the console until it quits. `terminal` draws to the real terminal via `guard`.
pub async fn run<W: Write>(
    queue: Arc<dyn Queue>,
    mut app: App,
    terminal: &mut Terminal<AnsiBackend<W>>,
    guard: &mut TerminalGuard,
) -> anyhow::Result<()> {
    let (tx, mut rx) = unbounded_channel::<Action>();
    let mut events = Some(EventStream::new());
    let reviewer = app.reviewer.clone();
    let hb_every = Duration::from_secs((app.policy.lease_seconds / 3).max(3));
    let mut heartbeat: Option<Heartbeat> = None;
    // A queue that pushes its changes (a server's event stream) is polled only as a
    // fallback, at the idle rate.
    let mut changes = queue.changes();
    let poll_every = if changes.is_some() {
        POLL_IDLE_MAX
    } else {
        POLL_EVERY
    };
    let mut poll_gap = poll_every;
    let mut next_poll = tokio::time::Instant::now() + poll_gap;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    use tokio::signal::unix::{SignalKind, signal};
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let mut pending: Vec<Action> = Vec::new();
    let fx = update::init(&mut app);
    let mut effects = fx;
    draw_frame(terminal, &app)?;
    app.shown = view::shown_item(&app);
    app.dirty = false;
    // For the end-to-end test that a panic leaves the terminal sane.
    if std::env::var_os("SIGNOFF_TUI_TEST_PANIC").is_some() {
        panic!("SIGNOFF_TUI_TEST_PANIC is set: panicking after the first frame");
    }
    loop {
        // Run what the last batch asked for. A batch that releases a claim (close, quit)
        // runs its saves first and in order, so no edit races the release and loses.
        let releasing = effects.iter().any(|e| matches!(e, Effect::Release(_)));
        for fx in std::mem::take(&mut effects) {
            match fx {
                // Awaited: written before a quit ends the process.
                fx @ (Effect::SaveHistory(..) | Effect::SaveUiState(..)) => {
                    if let Some(l) = effects::perform(queue.as_ref(), &reviewer, fx).await {
                        pending.push(Action::Loaded(l));
                    }
                }
                Effect::SaveEdit(..) if releasing => {
                    if let Some(l) = effects::perform(queue.as_ref(), &reviewer, fx).await {
                        pending.push(Action::Loaded(l));
                    }
                }
                Effect::Release(claim) => {
                    // No heartbeat for a claim being given back (it would report "lease lost").
                    if let Some(h) = heartbeat.take_if(|h| h.id == claim.id) {
                        h.task.abort();
                    }
                    // Awaited: on quit the release must land before the process ends.
                    if let Some(l) =
                        effects::perform(queue.as_ref(), &reviewer, Effect::Release(claim)).await
                    {
                        pending.push(Action::Loaded(l));
                    }
                }
                Effect::ClearScreen => {
                    terminal
                        .clear()
                        .map_err(|e| anyhow::anyhow!("clearing the screen failed: {e}"))?;
                    app.dirty = true;
                }
                Effect::OpenEditor(field, text) => {
                    // Stop reading keys first, or the stream steals the editor's input.
                    drop(events.take());
                    guard.suspend()?;
                    let res = tokio::task::spawn_blocking(move || run_editor(field, &text))
                        .await
                        .unwrap_or_else(|e| Err(format!("editor task failed: {e}")));
                    guard.resume()?;
                    events = Some(EventStream::new());
                    terminal
                        .clear()
                        .map_err(|e| anyhow::anyhow!("clearing the screen failed: {e}"))?;
                    pending.push(Action::Loaded(Loaded::Editor(field, res)));
                }
                Effect::CopyToClipboard(text) => {
                    let seq = update::osc52(&text);
                    let b = terminal.backend_mut();
                    b.write_all(seq.as_bytes())?;
                    b.flush()?;
                }
                Effect::OpenLink { browser, url } => {
                    // Detached: the browser's output never reaches this terminal.
                    tokio::task::spawn_blocking(move || {
                        let started = std::process::Command::new(&browser)
                            .arg(&url)
                            .stdin(std::process::Stdio::null())
                            .stdout(std::process::Stdio::null())
                            .stderr(std::process::Stdio::null())
                            .spawn();
                        if let Err(e) = started {
                            tracing::warn!(browser = %browser, error = %e, "could not start the browser");
                        }
                    });
                }
                Effect::Quit => {}
                other => spawn_effect(&queue, &reviewer, &tx, other),
            }
        }
        if app.quit {
            break;
        }
        // Keep exactly one heartbeat task for the claim held now.
        let want = app.claim.as_ref().map(|c| (c.id, c.fence));
        if heartbeat.as_ref().map(|h| (h.id, h.fence)) != want {
            if let Some(h) = heartbeat.take() {
                h.task.abort();
            }
            if let Some(c) = app.claim.clone() {
                heartbeat = Some(start_heartbeat(&queue, &tx, c, hb_every));
            }
        }
        if app.dirty {
            draw_frame(terminal, &app)?;
            // Decision keys act on what this frame showed, not on what the state holds
            // by the time they are read.
            app.shown = view::shown_item(&app);
            app.dirty = false;
        }
        if pending.is_empty() {
            let timer_on =
                app.claim.is_some() || app.form.as_ref().is_some_and(|f| f.unsaved_since.is_some());
            let undo_ends = undo_timer(&app, now_ms()).map(|d| tokio::time::Instant::now() + d);
            let mut feed_gone = false;
            let first = tokio::select! {
                pushed = async {
                    match changes.as_mut() {
                        Some(rx) => rx.changed().await.map(|()| rx.borrow_and_update().clone()),
                        None => std::future::pending().await,
                    }
                } => match pushed {
                    Ok(token) => Some(Action::Loaded(Loaded::Token(token))),
                    Err(_) => {
                        feed_gone = true;
                        None
                    }
                },
                ev = async {
                    match events.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => match ev {
                    Some(Ok(ev)) => event_action(ev),
                    Some(Err(e)) => return Err(anyhow::anyhow!("reading the terminal failed: {e}")),
                    None => Some(Action::Cmd(Cmd::Quit)),
                },
                Some(a) = rx.recv() => Some(a),
                _ = tokio::time::sleep_until(next_poll) => Some(Action::Poll),
                _ = tick.tick(), if timer_on => Some(Action::Tick(now_ms())),
                _ = async {
                    match undo_ends {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => Some(Action::Tick(now_ms())),
                _ = sighup.recv() => Some(Action::Cmd(Cmd::Quit)),
                _ = sigterm.recv() => Some(Action::Cmd(Cmd::Quit)),
            };
            if feed_gone {
                changes = None;
            }
            pending.extend(first);
        }
        // Drain everything already queued, then draw once.
        // Polled in this task's own context (not `now_or_never`, whose no-op waker would
        // leave crossterm's wake-up thread waking nobody: the next key would then wait for
        // the following event or timer).
        while let Some(s) = events.as_mut() {
            let ev = tokio::select! {
                biased;
                ev = s.next() => ev,
                _ = std::future::ready(()) => break,
            };
            match ev {
                Some(Ok(ev)) => pending.extend(event_action(ev)),
                Some(Err(e)) => return Err(anyhow::anyhow!("reading the terminal failed: {e}")),
                None => {
                    pending.push(Action::Cmd(Cmd::Quit));
                    break;
                }
            }
        }
        while let Ok(a) = rx.try_recv() {
            pending.push(a);
        }
        if pending.is_empty() {
            continue;
        }
        // Poll back-off: fast after a key or a change, slower and slower while idle.
        let token_before = app.token;
        let active = pending
            .iter()
            .any(|a| matches!(a, Action::Key(_) | Action::Paste(_) | Action::Resize(..)));
        let polled = pending.iter().any(|a| matches!(a, Action::Poll));
        let was_dirty = app.dirty;
        // Time first: a debounced save that fell due is one of this batch's effects.
        effects.extend(update(&mut app, Action::Tick(now_ms())));
        let mut dirty = was_dirty || app.dirty;
        for a in std::mem::take(&mut pending) {
            effects.extend(update(&mut app, a));
            dirty |= app.dirty;
        }
        app.dirty = dirty;
        if active || app.token != token_before {
            poll_gap = poll_every;
            next_poll = tokio::time::Instant::now() + poll_gap;
        } else if polled {
            poll_gap = (poll_gap * 2).min(POLL_IDLE_MAX);
            next_poll = tokio::time::Instant::now() + poll_gap;
        }
    }
    if let Some(h) = heartbeat.take() {
        h.task.abort();
    }
    Ok(())
}
