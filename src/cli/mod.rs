//! The command line (clap): the console by default, and headless commands for ingest,
//! review, audit and configuration. Exit codes: 0 done, 1 failed, 2 bad usage or config,
//! 3 partly done.
mod actions;
mod analytics;
mod audit;
mod config_cmd;
mod ingest;
mod inspect;
mod migrate;
mod output;
mod queue_ops;
mod review;
mod serve;
mod shadow;
mod validate;

pub(crate) use actions::worker_name;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{self, Flags, Loaded};
use crate::queue::{LocalQueue, Queue};
use crate::store::StoreOptions;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_PARTIAL: i32 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "signoff",
    version,
    about = "Review AI-prepared requests before anything reaches a CRM, Slack or a customer's inbox",
    long_about = None,
)]
pub struct Cli {
    /// The queue database (default: <data dir>/queue.db; see `signoff info`).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// A config file instead of <config dir>/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Your name on claims, edits and decisions (default: your Unix user).
    #[arg(long, global = true, value_name = "NAME")]
    pub reviewer: Option<String>,
    /// Show everything, decide nothing.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Use a queue server: unix:/path/to.sock, https://host:port or http://127.0.0.1:port
    /// (default: `remote` in the config; --db means this machine's database instead).
    #[arg(long, global = true, value_name = "URL", env = "SIGNOFF_REMOTE")]
    pub remote: Option<String>,
    /// A file holding the bearer token for a TCP --remote (default: SIGNOFF_TOKEN, then
    /// `remote_token` in the config).
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Seed a realistic sample queue (when it is empty) and open the console; actions stay in sandbox.
    Demo,
    /// Add requests from JSON (an object, an array, or JSON Lines); `-` reads stdin.
    Ingest {
        /// Files to read; none or `-` means stdin.
        files: Vec<PathBuf>,
    },
    /// List items.
    List {
        /// pending, in_review, approved, rejected or escalated (repeatable; default: pending and in_review).
        #[arg(long = "state", value_name = "S")]
        states: Vec<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Skip this many rows.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long)]
        json: bool,
    },
    /// Show one item in full.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Claim the next item in queue order (priority, then age).
    Claim {
        #[arg(long)]
        json: bool,
    },
    /// Decide an item: approve, reject with a reason, or escalate to a queue.
    Decide(review::DecideArgs),
    /// Take back your last decision on an item while its undo window is open.
    Undo { id: i64 },
    /// Give a claimed item back to the queue.
    Release {
        id: i64,
        /// The claim's fence (default: the item's current one, i.e. your claim).
        #[arg(long)]
        fence: Option<i64>,
    },
    /// Turn the actions kill switch on: nothing is sent until `resume`.
    Pause,
    /// Turn the actions kill switch off.
    Resume,
    /// Send dead letters again (outbox entry ids, as `signoff show ID --json` lists them).
    Resend {
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        actions: Vec<i64>,
        /// Every dead letter (this machine's database): lists them and asks first.
        #[arg(long)]
        dead: bool,
        /// With --dead: do not ask (scripts; required when stdin is not a terminal).
        #[arg(long, requires = "dead")]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run the queue server: the store, the dispatcher and the HTTP API for consoles and
    /// scripts (docs/serving.md).
    Serve(serve::ServeArgs),
    /// Bearer tokens for the queue server's TCP callers.
    Token {
        #[command(subcommand)]
        command: serve::TokenCommand,
    },
    /// Record what happened after a decision (qualified, meeting_booked, lost, …).
    Outcome {
        id: i64,
        /// A value from the policy's outcome list.
        value: String,
        /// Why (required for some outcomes, e.g. lost).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Review analytics: queue depth and age, decisions, edit rates, agreement with the AI
    /// by confidence, volume against baseline, actions, outcomes.
    Stats {
        /// From this time: a date (2026-12-01, from midnight UTC), RFC 3339, or an age
        /// like 24h or 7d.
        #[arg(long)]
        since: Option<String>,
        /// Compare the AI's prompt versions or models: edit rate per field, agreement,
        /// escalation rate and outcomes of the items each produced.
        #[arg(long, value_enum, value_name = "WHAT")]
        by: Option<analytics::StatsBy>,
        #[arg(long)]
        json: bool,
    },
    /// Judge the AI against historical cases (what people really did): accuracy per field,
    /// intent confusion, calibration by confidence, and the lowest threshold that reaches
    /// `validation.required_accuracy`. Nothing is queued or sent.
    Validate(validate::ValidateArgs),
    /// The threshold and auto-approval in force and the signed-off validation they stand
    /// on; `adopt` takes the configured ones into force.
    Policy {
        #[command(subcommand)]
        command: Option<validate::PolicyCommand>,
    },
    /// A parallel run beside an existing process (actions.mode = "shadow"): import what the
    /// existing process did, and compare item by item.
    Shadow {
        #[command(subcommand)]
        command: shadow::ShadowCommand,
    },
    /// The outbox: each outbound action with its status, attempts and last error.
    Outbox {
        /// Only actions in this state.
        #[arg(long, value_enum)]
        status: Option<inspect::OutboxStatus>,
        /// Only this item's actions.
        #[arg(long, value_name = "ID")]
        item: Option<i64>,
        /// At most this many rows.
        #[arg(long, default_value_t = 500)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Inputs that could not be queued, kept with their reason.
    Quarantine {
        #[command(subcommand)]
        command: inspect::QuarantineCommand,
    },
    /// Print a shell completion script (`signoff completions bash > /etc/bash_completion.d/signoff`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout (`signoff man > signoff.1`).
    Man,
    /// Send what the outbox holds (the console also does this in the background).
    Dispatch {
        /// Stop when nothing is due instead of waiting for more.
        #[arg(long)]
        once: bool,
    },
    /// Check each configured integration: credentials, token, board and columns, channel, Gmail scope.
    Doctor,
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Print the example config, or the effective config with where each value came from.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Print every resolved path: config, data, database, logs, themes.
    Info,
    /// Copy a SQLite queue into PostgreSQL (resumable; both audit logs verified after).
    Migrate(migrate::MigrateArgs),
}

/// Runs the command line and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    run(cli)
}

pub fn run(cli: Cli) -> i32 {
    if let Err(e) = crate::clock::Clock::init_process() {
        eprintln!("signoff: {e}");
        return EXIT_USAGE;
    }
    // Completions and the man page need no config either.
    match &cli.command {
        Some(Command::Completions { shell }) => return inspect::completions(*shell),
        Some(Command::Man) => return inspect::man(),
        _ => {}
    }
    // `config example` needs no config at all (it is how you write one).
    if let Some(Command::Config {
        command: config_cmd::ConfigCommand::Example,
    }) = &cli.command
    {
        print!("{}", config::EXAMPLE);
        return EXIT_OK;
    }
    let flags = Flags {
        config: cli.config.clone(),
        db: cli.db.clone(),
        reviewer: cli.reviewer.clone(),
    };
    let mut loaded = match config::load(&flags) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("signoff: {e}");
            return EXIT_USAGE;
        }
    };
    if let Err(e) = apply_remote(&cli, &mut loaded) {
        eprintln!("signoff: {e}");
        return EXIT_USAGE;
    }
    if matches!(cli.command, Some(Command::Serve(_))) {
        // The server's files (logs included, made next) are its user's alone.
        // SAFETY: umask only sets this process's file mode mask.
        unsafe {
            libc::umask(0o077);
        }
    }
    let _log = crate::logging::init(
        &loaded.paths.log_dir,
        &loaded.config.log.level,
        loaded.config.log.max_files,
    );
    tracing::info!(command = ?cli.command.as_ref().map(command_name), "start");
    // Commands that act under the reviewer's name; reading needs no name, and the demo's
    // sandbox queue takes any.
    let acts = match &cli.command {
        None => !cli.read_only,
        Some(
            Command::Claim { .. }
            | Command::Decide(_)
            | Command::Outcome { .. }
            | Command::Dispatch { .. },
        ) => true,
        Some(Command::Validate(v)) => v.sign_off,
        Some(Command::Policy {
            command: Some(validate::PolicyCommand::Adopt { .. }),
        }) => true,
        _ => false,
    };
    if acts {
        if let Err(e) = loaded.check_reviewer() {
            tracing::error!("{e}");
            eprintln!("signoff: {e}");
            return EXIT_USAGE;
        }
        let (reviewer, me) = (loaded.reviewer(), crate::identity::os_user());
        if reviewer != me {
            tracing::info!(
                reviewer,
                os_user = me,
                "acting under another reviewer name (reviewer.allow_override)"
            );
        }
    }
    let result = dispatch(&cli, &loaded);
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("signoff: error: {e:#}");
            EXIT_FAILED
        }
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Demo => "demo",
        Command::Ingest { .. } => "ingest",
        Command::List { .. } => "list",
        Command::Show { .. } => "show",
        Command::Claim { .. } => "claim",
        Command::Decide(_) => "decide",
        Command::Undo { .. } => "undo",
        Command::Release { .. } => "release",
        Command::Pause => "pause",
        Command::Resume => "resume",
        Command::Resend { .. } => "resend",
        Command::Serve(_) => "serve",
        Command::Token { .. } => "token",
        Command::Outcome { .. } => "outcome",
        Command::Stats { .. } => "stats",
        Command::Validate(_) => "validate",
        Command::Policy { .. } => "policy",
        Command::Shadow { .. } => "shadow",
        Command::Dispatch { .. } => "dispatch",
        Command::Doctor => "doctor",
        Command::Audit { .. } => "audit",
        Command::Config { .. } => "config",
        Command::Info => "info",
        Command::Outbox { .. } => "outbox",
        Command::Quarantine { .. } => "quarantine",
        Command::Completions { .. } => "completions",
        Command::Man => "man",
        Command::Migrate(_) => "migrate",
    }
}

fn dispatch(cli: &Cli, loaded: &Loaded) -> anyhow::Result<i32> {
    match &cli.command {
        None => console(cli, loaded, &loaded.paths.db),
        Some(Command::Demo) => {
            let db = cli
                .db
                .clone()
                .unwrap_or_else(|| loaded.paths.data_dir.join("demo.db"));
            let seeded = crate::demo::seed(&db, loaded)?;
            if seeded > 0 {
                tracing::info!(seeded, db = %db.display(), "demo queue seeded");
            }
            // The demo never sends anything, whatever the config says.
            let mut demo = loaded.clone();
            demo.config.actions.mode = crate::actions::Mode::Sandbox;
            demo.config.remote = None;
            // A sample queue: any reviewer name will do (the Unix user is still recorded).
            demo.config.reviewer.allow_override = true;
            console(cli, &demo, &db)
        }
        Some(Command::Ingest { files }) => {
            if let Some(why) = validate::gate(loaded)? {
                eprintln!("signoff: {why}");
                return Ok(EXIT_USAGE);
            }
            ingest::run(loaded, files)
        }
        Some(Command::List {
            states,
            limit,
            offset,
            json,
        }) => review::list(loaded, states, *limit, *offset, *json),
        Some(Command::Show { id, json }) => review::show(loaded, *id, *json),
        Some(Command::Claim { json }) => review::claim(loaded, *json, cli.read_only),
        Some(Command::Decide(args)) => review::decide(loaded, args, cli.read_only),
        Some(Command::Undo { id }) => queue_ops::undo(loaded, *id, cli.read_only),
        Some(Command::Release { id, fence }) => {
            queue_ops::release(loaded, *id, *fence, cli.read_only)
        }
        Some(Command::Pause) => queue_ops::set_paused(loaded, true, cli.read_only),
        Some(Command::Resume) => queue_ops::set_paused(loaded, false, cli.read_only),
        Some(Command::Resend {
            actions,
            dead,
            yes,
            json,
        }) => {
            if *dead {
                inspect::resend_dead(loaded, *yes, *json, cli.read_only)
            } else {
                queue_ops::resend(loaded, actions, *json, cli.read_only)
            }
        }
        Some(Command::Serve(args)) => {
            // The server is the store's owner: a `remote` in the config is for clients.
            let mut local = loaded.clone();
            local.config.remote = None;
            if let Some(why) = validate::gate(&local)? {
                eprintln!("signoff: {why}");
                return Ok(EXIT_USAGE);
            }
            serve::serve(&local, args)
        }
        Some(Command::Token { command }) => serve::token(loaded, command),
        Some(Command::Outcome { id, value, reason }) => {
            analytics::outcome(loaded, *id, value, reason.as_deref(), cli.read_only)
        }
        Some(Command::Stats { since, by, json }) => {
            analytics::stats(loaded, since.as_deref(), *by, *json)
        }
        Some(Command::Validate(args)) => validate::validate(loaded, args, cli.read_only),
        Some(Command::Policy { command }) => {
            validate::policy(loaded, command.as_ref(), cli.read_only)
        }
        Some(Command::Shadow { command }) => shadow::run(loaded, command, cli.read_only),
        Some(Command::Dispatch { once }) => actions::dispatch(loaded, *once),
        Some(Command::Doctor) => actions::doctor(loaded),
        Some(Command::Audit { command }) => audit::run(loaded, command),
        Some(Command::Config { command }) => config_cmd::run(loaded, command),
        Some(Command::Info) => config_cmd::info(loaded),
        Some(Command::Outbox {
            status,
            item,
            limit,
            json,
        }) => inspect::outbox(loaded, *status, *item, *limit, *json),
        Some(Command::Quarantine { command }) => inspect::quarantine(loaded, command),
        Some(Command::Completions { shell }) => Ok(inspect::completions(*shell)),
        Some(Command::Man) => Ok(inspect::man()),
        Some(Command::Migrate(args)) => migrate::run(loaded, args),
    }
}

/// Store options from config.
pub(crate) fn store_options(loaded: &Loaded) -> StoreOptions {
    StoreOptions {
        durability: loaded.config.store.durability,
        busy_timeout: std::time::Duration::from_millis(loaded.config.store.busy_timeout_ms),
        read_only: false,
        background_checkpoint: false,
        group: loaded
            .config
            .store
            .group
            .as_deref()
            .and_then(crate::identity::group_id),
        clock: crate::clock::Clock::process(),
    }
}

/// How to open a PostgreSQL queue (`store.path` or `--db` a `postgres://` URL).
pub(crate) fn pg_options(loaded: &Loaded) -> crate::pg::PgOptions {
    let store = &loaded.config.store;
    crate::pg::PgOptions {
        clock: crate::clock::Clock::process(),
        key_path: store
            .audit_key
            .clone()
            .unwrap_or_else(|| loaded.paths.data_dir.join(crate::store::KEY_FILE)),
        read_only: false,
        pool_size: store.pool_size.max(2) as usize,
        password: store.password.clone(),
        ca_file: store.tls_ca.clone(),
    }
}

/// Settles where the queue is: `--remote` (or SIGNOFF_REMOTE) over the config's `remote`;
/// `--db` means this machine's database whatever the config says. The token for a TCP
/// remote: `--token-file`, then SIGNOFF_TOKEN, then `remote_token`.
fn apply_remote(cli: &Cli, loaded: &mut Loaded) -> Result<(), String> {
    if let Some(r) = &cli.remote {
        loaded.config.remote = Some(r.clone());
        loaded
            .sources
            .insert("remote".into(), config::Source::Flag("--remote".into()));
    } else if cli.db.is_some() {
        loaded.config.remote = None;
    }
    if let Some(f) = &cli.token_file {
        let token = crate::queue::read_token_file(f)?;
        loaded.config.remote_token = Some(crate::secret::Secret::new(token));
    } else if let Ok(t) = std::env::var("SIGNOFF_TOKEN")
        && !t.trim().is_empty()
    {
        loaded.config.remote_token = Some(crate::secret::Secret::new(t.trim()));
    }
    if let Some(r) = &loaded.config.remote {
        crate::queue::RemoteTarget::parse(r).map_err(|e| format!("remote: {e}"))?;
    }
    Ok(())
}

/// The queue server configured, if any.
pub(crate) fn remote_queue(
    loaded: &Loaded,
    read_only: bool,
) -> anyhow::Result<Option<crate::queue::RemoteQueue>> {
    let Some(url) = &loaded.config.remote else {
        return Ok(None);
    };
    let target =
        crate::queue::RemoteTarget::parse(url).map_err(|e| anyhow::anyhow!("remote: {e}"))?;
    let token = match &loaded.config.remote_token {
        Some(s) => Some(
            s.resolve()
                .map_err(|e| anyhow::anyhow!("remote_token: {e}"))?,
        ),
        None => None,
    };
    let ca_pem = match &loaded.config.remote_ca {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("remote_ca: cannot read {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let q = crate::queue::RemoteQueue::new(
        target,
        crate::queue::RemoteOptions {
            token,
            ca_pem,
            read_only,
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(q))
}

/// Opens the queue: the configured server, or the local database.
pub(crate) fn open_queue(
    loaded: &Loaded,
    db: &std::path::Path,
    read_only: bool,
) -> anyhow::Result<Arc<dyn Queue>> {
    if let Some(remote) = remote_queue(loaded, read_only)? {
        return Ok(Arc::new(remote));
    }
    let policy = Arc::new(loaded.config.policy.clone());
    let renderer = crate::actions::renderer(&loaded.config.actions, policy.clone())?;
    let mut q = LocalQueue::open(db, policy, &store_options(loaded))?.with_renderer(renderer);
    if read_only {
        q = q.read_only();
    }
    Ok(Arc::new(q))
}

/// Prints a refused queue operation; a request the policy refuses is bad usage (2), anything
/// else a failure (1).
pub(crate) fn report_queue_error(e: &crate::queue::QueueError) -> i32 {
    eprintln!("signoff: {e}");
    match e {
        crate::queue::QueueError::Invalid(_) => EXIT_USAGE,
        _ => EXIT_FAILED,
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The console on a queue server: the name and role are the server's word, and so is
/// the policy (reject reasons, escalation queues, lease length); the server dispatches.
fn remote_console(
    cli: &Cli,
    loaded: &Loaded,
    rt: tokio::runtime::Runtime,
    remote: crate::queue::RemoteQueue,
) -> anyhow::Result<i32> {
    let location = remote.location();
    let (who, policy) = rt
        .block_on(async {
            Ok::<_, crate::queue::QueueError>((remote.whoami().await?, remote.policy().await?))
        })
        .map_err(|e| anyhow::anyhow!("{location}: {e}"))?;
    let read_only =
        cli.read_only || !matches!(who.role, config::Role::Reviewer | config::Role::Admin);
    let remote = if read_only {
        remote.read_only()
    } else {
        remote
    };
    let opts = crate::tui::TuiOptions {
        reviewer: who.name,
        read_only,
        policy: Arc::new(policy),
        ui: loaded.config.ui.clone(),
        actions_mode: "server".into(),
        themes_dir: Some(loaded.paths.themes_dir.clone()),
        state_dir: Some(loaded.paths.state_dir.clone()),
    };
    rt.block_on(crate::tui::run(Arc::new(remote), opts))?;
    Ok(EXIT_OK)
}

fn console(cli: &Cli, loaded: &Loaded, db: &std::path::Path) -> anyhow::Result<i32> {
    let rt = runtime()?;
    if let Some(remote) = remote_queue(loaded, cli.read_only)? {
        return remote_console(cli, loaded, rt, remote);
    }
    let queue = open_queue(loaded, db, cli.read_only)?;
    let policy = Arc::new(loaded.config.policy.clone());
    let opts = crate::tui::TuiOptions {
        reviewer: loaded.reviewer(),
        read_only: cli.read_only,
        policy: policy.clone(),
        ui: loaded.config.ui.clone(),
        actions_mode: format!("{:?}", loaded.config.actions.mode).to_lowercase(),
        themes_dir: Some(loaded.paths.themes_dir.clone()),
        state_dir: Some(loaded.paths.state_dir.clone()),
    };
    // The outbox runs in the background while the console is open (not in read-only
    // mode); it logs to the file, never to the terminal.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = (!cli.read_only).then(|| {
        let (db, cfg, store) = (
            db.to_path_buf(),
            loaded.config.actions.clone(),
            store_options(loaded),
        );
        let worker = actions::worker_name(loaded);
        rt.spawn(async move {
            let res =
                crate::actions::dispatch_with(&db, policy, &store, &cfg, false, &worker, async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = res {
                tracing::error!("background dispatcher stopped: {e:#}");
            }
        })
    });
    let result = rt.block_on(crate::tui::run(queue, opts));
    let _ = stop.send(());
    if let Some(handle) = dispatcher {
        // The timer is made inside the runtime (a tokio timer needs its context).
        let _ = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), handle).await
        });
    }
    result?;
    Ok(EXIT_OK)
}
