//! `signoff shadow import OUTCOMES` and `signoff shadow report`.
use crate::config::Loaded;

#[derive(clap::Subcommand, Debug)]
pub enum ShadowCommand {
    /// Import what the existing process did.
    Import {
        file: std::path::PathBuf,
    },
    /// Compare item by item.
    Report {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(_loaded: &Loaded, _command: &ShadowCommand, _read_only: bool) -> anyhow::Result<i32> {
    Ok(super::EXIT_FAILED)
}
