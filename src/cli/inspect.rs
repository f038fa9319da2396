//! `signoff outbox`, `signoff quarantine list | show`, `signoff completions`, `signoff man`.
use std::sync::Arc;

use super::output::{Table, age, print_json, timestamp};
use super::{Cli, EXIT_FAILED, EXIT_OK, store_options};
use crate::config::Loaded;
use crate::store::Store;

/// `--status` of `signoff outbox`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutboxStatus {
    Queued,
    Retrying,
    Dead,
    Sent,
    Sandbox,
    Cancelled,
}

impl OutboxStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Queued => "queued",
            OutboxStatus::Retrying => "retrying",
            OutboxStatus::Dead => "dead",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Sandbox => "sandbox",
            OutboxStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum QuarantineCommand {
    /// The kept inputs, newest first: where they came from and why they were refused.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One kept input in full, with its raw text.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

fn open(loaded: &Loaded) -> anyhow::Result<Store> {
    if let Some(r) = &loaded.config.remote {
        anyhow::bail!(
            "this reads the queue database on this machine, and the queue is at {r}: run it on the server, or give --db PATH"
        );
    }
    Ok(Store::open(
        &loaded.paths.db,
        Arc::new(loaded.config.policy.clone()),
        &store_options(loaded),
    )?)
}

pub fn outbox(
    loaded: &Loaded,
    status: Option<OutboxStatus>,
    item: Option<i64>,
    limit: u32,
    json: bool,
) -> anyhow::Result<i32> {
    let store = open(loaded)?;
    let rows = store.outbox_list(status.map(OutboxStatus::as_str), item, limit)?;
    if json {
        print_json(&rows)?;
        return Ok(EXIT_OK);
    }
    if rows.is_empty() {
        println!("no actions match");
        return Ok(EXIT_OK);
    }
    print!("{}", outbox_table(&rows).render());
    Ok(EXIT_OK)
}

/// Outbox rows as a table: id, item, action, status, attempts, last update, last error.
fn outbox_table(rows: &[crate::store::OutboxEntry]) -> Table {
    let now = crate::clock::Clock::process().now();
    let mut t = Table::new(&[
        ("ID", 0),
        ("ITEM", 0),
        ("ACTION", 0),
        ("STATUS", 0),
        ("ATTEMPTS", 0),
        ("UPDATED", 0),
        ("LAST ERROR", 80),
    ]);
    for r in rows {
        t.row(vec![
            r.id.to_string(),
            r.item.to_string(),
            r.action.clone(),
            r.status.clone(),
            r.attempts.to_string(),
            format!("{} ago", age(now, r.updated_at)),
            r.last_error.clone().unwrap_or_default(),
        ]);
    }
    t
}

pub fn quarantine(loaded: &Loaded, command: &QuarantineCommand) -> anyhow::Result<i32> {
    let store = open(loaded)?;
    match command {
        QuarantineCommand::List { limit, json } => {
            let rows = store.quarantine_list(*limit)?;
            if *json {
                print_json(&rows)?;
                return Ok(EXIT_OK);
            }
            if rows.is_empty() {
                println!("the quarantine is empty");
                return Ok(EXIT_OK);
            }
            let mut t = Table::new(&[
                ("ID", 0),
                ("AT", 0),
                ("ORIGIN", 40),
                ("LINE", 0),
                ("REASON", 80),
            ]);
            for r in &rows {
                t.row(vec![
                    r.id.to_string(),
                    timestamp(r.at),
                    r.origin.clone(),
                    r.line.map(|l| l.to_string()).unwrap_or_default(),
                    r.reason.clone(),
                ]);
            }
            print!("{}", t.render());
            Ok(EXIT_OK)
        }
        QuarantineCommand::Show { id, json } => {
            let Some(r) = store.quarantine_get(*id)? else {
                eprintln!(
                    "signoff: no quarantined input {id}; `signoff quarantine list` shows them"
                );
                return Ok(EXIT_FAILED);
            };
            if *json {
                print_json(&r)?;
                return Ok(EXIT_OK);
            }
            let clean = |s: &str| crate::text::sanitize(s).into_owned();
            println!("id      {}", r.id);
            println!("at      {}", timestamp(r.at));
            println!(
                "origin  {}{}",
                clean(&r.origin),
                r.line.map(|l| format!(":{l}")).unwrap_or_default()
            );
            println!("reason  {}", clean(&r.reason));
            println!("raw");
            for line in crate::text::sanitize_lines(&r.raw) {
                println!("  {line}");
            }
            Ok(EXIT_OK)
        }
    }
}

pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "signoff", &mut std::io::stdout());
    EXIT_OK
}

pub fn man() -> i32 {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut out = std::io::stdout();
    match clap_mangen::Man::new(cmd).render(&mut out) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("signoff: cannot write the man page: {e}");
            EXIT_FAILED
        }
    }
}

/// `signoff resend --dead`: every dead letter of this machine's database, listed with its
/// error and its count, then queued to be sent again — after a yes at the terminal, or
/// with `--yes`. Without a terminal to ask at and without `--yes`, nothing is sent.
pub fn resend_dead(loaded: &Loaded, yes: bool, json: bool, read_only: bool) -> anyhow::Result<i32> {
    use std::io::{BufRead, IsTerminal, Write};
    let rows = open(loaded)?.outbox_list(Some("dead"), None, u32::MAX)?;
    if rows.is_empty() {
        if json {
            print_json(&Vec::<serde_json::Value>::new())?;
        } else {
            println!("no dead letters");
        }
        return Ok(EXIT_OK);
    }
    let n = rows.len();
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "signoff: {n} dead letter{}; nothing sent: add --yes to send them again without being asked",
                if n == 1 { "" } else { "s" }
            );
            return Ok(super::EXIT_USAGE);
        }
        print!("{}", outbox_table(&rows).render());
        print!("send these {n} dead letters again? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            println!("nothing sent");
            return Ok(EXIT_OK);
        }
    } else if !json {
        println!(
            "{n} dead letter{} to send again",
            if n == 1 { "" } else { "s" }
        );
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    super::queue_ops::resend(loaded, &ids, json, read_only)
}
