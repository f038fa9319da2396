//! Change notification: one task follows the store's change token (woken at once by the
//! server's own writes, and every [`POLL`] for everyone else's: the dispatcher, a local
//! `signoff ingest`), and `/v1/events` streams each new value to consoles as a
//! Server-Sent Event.
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::{Notify, watch};

use super::Shared;
use super::auth::{Identity, Perm};
use super::error::ApiResult;
use crate::queue::wire::ChangeToken;

/// How often the store is checked for changes the server did not make itself.
pub const POLL: Duration = Duration::from_millis(250);
/// A comment line on an idle stream keeps proxies from closing it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The latest change token, and a way to say "look now".
pub struct ChangeFeed {
    tx: watch::Sender<u64>,
    poke: Notify,
}

impl ChangeFeed {
    pub fn new(initial: u64) -> ChangeFeed {
        ChangeFeed {
            tx: watch::Sender::new(initial),
            poke: Notify::new(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// The server changed the store: check the token now rather than at the next poll.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    fn set(&self, token: u64) {
        self.tx.send_if_modified(|v| {
            let changed = *v != token;
            *v = token;
            changed
        });
    }
}

/// Follows the store's change token until `shutdown` turns true.
pub async fn follow_store(
    queue: super::backend::Served,
    feed: Arc<ChangeFeed>,
    mut shutdown: watch::Receiver<bool>,
) {
    // A store that announces its changes (PostgreSQL: other instances' commits too) wakes
    // the feed at once; the poll stays as the floor.
    let mut announced = queue.changes();
    loop {
        match queue.change_token().await {
            Ok(t) => feed.set(t),
            Err(e) => tracing::warn!("reading the change token failed: {e}"),
        }
        let changed = async {
            match announced.as_mut() {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = feed.poke.notified() => {}
            _ = changed => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

fn change_event(token: u64) -> Event {
    let data = serde_json::to_string(&ChangeToken {
        token: token.to_string(),
    })
    .unwrap_or_default();
    Event::default()
        .event("change")
        .id(token.to_string())
        .data(data)
}

/// The stream of change tokens: the current one at once, then each new one.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "queue",
    responses(
        (status = 200, description = "Server-Sent Events: `event: change`, `data: {\"token\": \"…\"}` now and on every change; a comment every 15 s", content_type = "text/event-stream", body = ChangeToken),
        (status = 401, body = crate::queue::wire::ErrorBody),
    )
)]
pub async fn events(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    me.require(Perm::Read)?;
    let rx = s.feed.subscribe();
    let shutdown = s.shutdown.clone();
    let open = super::metrics::StreamGuard::new(s.clone());
    let stream = futures_util::stream::unfold(
        (rx, shutdown, true, open),
        |(mut rx, mut shutdown, first, open)| async move {
            if *shutdown.borrow() {
                return None;
            }
            if !first {
                tokio::select! {
                    r = rx.changed() => r.ok()?,
                    // Ends the stream so a graceful shutdown is not held up by it.
                    _ = shutdown.wait_for(|stop| *stop) => return None,
                }
            }
            let token = *rx.borrow_and_update();
            Some((Ok(change_event(token)), (rx, shutdown, false, open)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
