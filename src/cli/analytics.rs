//! `signoff outcome ID VALUE` and `signoff stats`.
use super::output::{parse_since, print_json};
use super::{EXIT_OK, EXIT_USAGE, open_queue, runtime};
use crate::config::Loaded;

pub fn outcome(
    loaded: &Loaded,
    id: i64,
    value: &str,
    reason: Option<&str>,
    read_only: bool,
) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, read_only)?;
    match rt.block_on(queue.record_outcome(id, value, reason, &loaded.reviewer())) {
        Ok(()) => {
            println!("item {id}: outcome {value} recorded");
            Ok(EXIT_OK)
        }
        Err(e) => Ok(super::report_queue_error(&e)),
    }
}

pub fn stats(loaded: &Loaded, since: Option<&str>, json: bool) -> anyhow::Result<i32> {
    let now = crate::clock::Clock::process().now();
    let since = match since.map(|s| parse_since(s, now)).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("signoff: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, true)?;
    let stats = rt.block_on(queue.stats(since))?;
    if json {
        print_json(&stats)?;
    } else {
        print!("{}", stats.report());
    }
    Ok(EXIT_OK)
}
