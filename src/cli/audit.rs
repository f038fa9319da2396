//! `signoff audit verify`.
use std::io::IsTerminal;
use std::sync::Arc;

use super::{EXIT_FAILED, EXIT_OK, store_options};
use crate::config::Loaded;
use crate::store::Store;

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain and report the first broken link (exit 1 on any break).
    Verify,
}

pub fn run(loaded: &Loaded, command: &AuditCommand) -> anyhow::Result<i32> {
    match command {
        AuditCommand::Verify => {
            let store = Store::open(
                &loaded.paths.db,
                Arc::new(loaded.config.policy.clone()),
                &store_options(loaded, false),
            )?;
            let tty = std::io::stderr().is_terminal();
            let report = store.verify_audit(|n| {
                if tty {
                    eprint!("\r\x1b[2Kverified {n} entries");
                }
            })?;
            if tty {
                eprint!("\r\x1b[2K");
            }
            match (&report.broken, &report.head) {
                (Some((seq, why)), _) => {
                    println!("audit chain BROKEN at entry {seq}: {why}");
                    Ok(EXIT_FAILED)
                }
                (None, Some(head)) => {
                    println!(
                        "audit chain intact: {} entries, head {} {}",
                        report.entries, head.seq, head.hash
                    );
                    Ok(EXIT_OK)
                }
                (None, None) => {
                    println!("audit chain empty");
                    Ok(EXIT_OK)
                }
            }
        }
    }
}
