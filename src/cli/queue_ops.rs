//! `signoff undo | release | pause | resume | resend`: one queue operation each, through
//! the Queue trait (a local database or a server).
use super::output::timestamp;
use super::{EXIT_FAILED, EXIT_OK, open_queue, runtime};
use crate::config::Loaded;
use crate::queue::{Claim, QueueError};

pub fn undo(loaded: &Loaded, id: i64, read_only: bool) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, read_only)?;
    match rt.block_on(queue.undo(id, &loaded.reviewer())) {
        Ok(c) => {
            println!(
                "item {id} undone: claimed by {} (fence {}) until {}",
                crate::text::sanitize(&c.reviewer),
                c.fence,
                timestamp(c.lease_expires)
            );
            Ok(EXIT_OK)
        }
        Err(e) => Ok(super::report_queue_error(&e)),
    }
}

/// Gives an item back; the fence defaults to the item's current one (your own claim).
pub fn release(
    loaded: &Loaded,
    id: i64,
    fence: Option<i64>,
    read_only: bool,
) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, read_only)?;
    let result = rt.block_on(async {
        let fence = match fence {
            Some(f) => f,
            None => queue.get(id).await?.fence,
        };
        let claim = Claim {
            id,
            reviewer: loaded.reviewer(),
            fence,
            lease_expires: 0,
        };
        queue.release(&claim).await
    });
    match result {
        Ok(()) => {
            println!("item {id} released");
            Ok(EXIT_OK)
        }
        Err(e) => Ok(super::report_queue_error(&e)),
    }
}

/// The actions kill switch: `pause` stops all sending, `resume` starts it again.
pub fn set_paused(loaded: &Loaded, paused: bool, read_only: bool) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, read_only)?;
    match rt.block_on(queue.set_actions_paused(paused, &loaded.reviewer())) {
        Ok(()) => {
            println!(
                "{}",
                if paused {
                    "actions paused: nothing is sent until `signoff resume`"
                } else {
                    "actions resumed"
                }
            );
            Ok(EXIT_OK)
        }
        Err(e) => Ok(super::report_queue_error(&e)),
    }
}

/// Queues dead letters (outbox entries, `signoff show` lists them) to be sent again.
pub fn resend(
    loaded: &Loaded,
    actions: &[i64],
    json: bool,
    read_only: bool,
) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, read_only)?;
    let mut failed: Option<QueueError> = None;
    let mut results = Vec::new();
    for &a in actions {
        match rt.block_on(queue.resend(a, &loaded.reviewer())) {
            Ok(()) => {
                if !json {
                    println!("action {a} queued to be sent again");
                }
                results.push(serde_json::json!({"action": a, "queued": true}));
            }
            Err(e) => {
                eprintln!("signoff: action {a}: {e}");
                results.push(
                    serde_json::json!({"action": a, "queued": false, "error": e.to_string()}),
                );
                failed = Some(e);
            }
        }
    }
    if json {
        super::output::print_json(&results)?;
    }
    Ok(match failed {
        None => EXIT_OK,
        Some(QueueError::Invalid(_)) => super::EXIT_USAGE,
        Some(_) => EXIT_FAILED,
    })
}
