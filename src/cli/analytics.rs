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

/// `stats --by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsBy {
    /// The `prompt_version` of the AI output.
    #[value(name = "prompt_version", alias = "prompt-version")]
    PromptVersion,
    /// The `model` that produced it.
    Model,
}

pub fn stats(
    loaded: &Loaded,
    since: Option<&str>,
    by: Option<StatsBy>,
    json: bool,
) -> anyhow::Result<i32> {
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
    match (by, json) {
        (None, true) => print_json(&stats)?,
        (None, false) => print!("{}", stats.report()),
        (Some(by), json) => {
            let (what, groups) = match by {
                StatsBy::PromptVersion => ("prompt version", &stats.by_prompt_version),
                StatsBy::Model => ("model", &stats.by_model),
            };
            if json {
                print_json(groups)?;
            } else {
                print!("{}", crate::stats::groups_report(what, groups));
            }
        }
    }
    Ok(EXIT_OK)
}
