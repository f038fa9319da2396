//! `signoff serve` and `signoff token add|list|revoke`.
use std::path::PathBuf;

use super::output::{Table, print_json, timestamp};
use super::{EXIT_OK, EXIT_USAGE, remote_queue, runtime, store_options};
use crate::config::{Loaded, Role};
use crate::queue::wire::NewToken;
use crate::server::{ServeOptions, check_token_name, new_token, parse_age};
use crate::store::{Store, TokenRecord};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The Unix socket (default: server.socket, else $XDG_RUNTIME_DIR/signoff.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Do not listen on a Unix socket (TCP only; needs --bind).
    #[arg(long, conflicts_with = "socket")]
    pub no_socket: bool,
    /// Also listen on TCP at ADDR (HOST:PORT). Loopback only, unless TLS is configured or
    /// --behind-proxy says a proxy in front terminates TLS.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// A proxy terminates TLS in front of --bind: plain HTTP on a non-loopback address.
    #[arg(long)]
    pub behind_proxy: bool,
    /// PEM certificate chain for TLS on --bind (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on --bind.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token for a TCP caller; it is printed once and only its hash is kept.
    Add {
        /// Who the token is for: recorded on everything done with it.
        name: String,
        /// observer, reviewer, admin or ingest.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// How long it lives (90d, 12h, 30m); default: until revoked.
        #[arg(long, value_name = "AGE")]
        expires: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once.
    Revoke { name: String },
}

pub fn serve(loaded: &Loaded, args: &ServeArgs) -> anyhow::Result<i32> {
    crate::server::run(
        loaded,
        ServeOptions {
            socket: args.socket.clone(),
            no_socket: args.no_socket,
            bind: args.bind.clone(),
            behind_proxy: args.behind_proxy,
            tls_cert: args.tls_cert.clone(),
            tls_key: args.tls_key.clone(),
        },
    )
}

pub fn token(loaded: &Loaded, command: &TokenCommand) -> anyhow::Result<i32> {
    if let TokenCommand::Add {
        name,
        role,
        expires,
    } = command
    {
        if let Err(e) = check_token_name(name) {
            eprintln!("signoff: {e}");
            return Ok(EXIT_USAGE);
        }
        if Role::parse(role).is_none() {
            eprintln!("signoff: --role {role}: use observer, reviewer, admin or ingest");
            return Ok(EXIT_USAGE);
        }
        if let Some(e) = expires
            && parse_age(e).is_none()
        {
            eprintln!("signoff: --expires {e}: write an age like 90d, 12h, 30m or 45s");
            return Ok(EXIT_USAGE);
        }
    }
    if let Some(remote) = remote_queue(loaded, false)? {
        return token_remote(&remote, command);
    }
    if let Some(url) = loaded.paths.db.to_str().filter(|s| crate::pg::is_url(s)) {
        return token_pg(loaded, url, command);
    }
    let policy = std::sync::Arc::new(loaded.config.policy.clone());
    let mut store = Store::open(&loaded.paths.db, policy, &store_options(loaded))?;
    let by = crate::identity::os_user().to_string();
    match command {
        TokenCommand::Add {
            name,
            role,
            expires,
        } => {
            let expires_at = expires
                .as_deref()
                .and_then(parse_age)
                .map(|ms| store.now() + ms);
            let (token, hash) = new_token()?;
            match store.add_token(name, role, &hash, expires_at, &by) {
                Ok(r) => {
                    print_issued(&token, &r);
                    Ok(EXIT_OK)
                }
                Err(e) => Ok(super::report_queue_error(&e.into())),
            }
        }
        TokenCommand::List { json } => {
            let records = store.tokens()?;
            print_tokens(&records, *json, store.now())?;
            Ok(EXIT_OK)
        }
        TokenCommand::Revoke { name } => match store.revoke_token(name, &by) {
            Ok(()) => {
                println!("token '{name}' revoked");
                Ok(EXIT_OK)
            }
            Err(e) => Ok(super::report_queue_error(&e.into())),
        },
    }
}

/// The token commands on a PostgreSQL queue, straight to the database (an administrator on
/// a server host, with its credentials).
fn token_pg(loaded: &Loaded, url: &str, command: &TokenCommand) -> anyhow::Result<i32> {
    let rt = runtime()?;
    rt.block_on(async {
        let policy = std::sync::Arc::new(loaded.config.policy.clone());
        let db = crate::pg::PgDb::open(url, policy, &super::pg_options(loaded)).await?;
        let by = crate::identity::os_user().to_string();
        match command {
            TokenCommand::Add {
                name,
                role,
                expires,
            } => {
                let expires_at = expires
                    .as_deref()
                    .and_then(parse_age)
                    .map(|ms| db.now() + ms);
                let (token, hash) = new_token()?;
                match db.add_token(name, role, &hash, expires_at, &by).await {
                    Ok(r) => {
                        print_issued(&token, &r);
                        Ok(EXIT_OK)
                    }
                    Err(e) => Ok(super::report_queue_error(&e.into())),
                }
            }
            TokenCommand::List { json } => {
                let records = db.tokens().await?;
                print_tokens(&records, *json, db.now())?;
                Ok(EXIT_OK)
            }
            TokenCommand::Revoke { name } => match db.revoke_token(name, &by).await {
                Ok(()) => {
                    println!("token '{name}' revoked");
                    Ok(EXIT_OK)
                }
                Err(e) => Ok(super::report_queue_error(&e.into())),
            },
        }
    })
}

fn token_remote(remote: &crate::queue::RemoteQueue, command: &TokenCommand) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let result = rt.block_on(async {
        match command {
            TokenCommand::Add {
                name,
                role,
                expires,
            } => {
                let issued = remote
                    .add_token(&NewToken {
                        name: name.clone(),
                        role: Role::parse(role).unwrap_or(Role::Observer),
                        expires: expires.clone(),
                    })
                    .await?;
                print_issued(&issued.token, &issued.record);
                Ok(())
            }
            TokenCommand::List { json } => {
                let records = remote.tokens().await?;
                print_tokens(&records, *json, crate::clock::Clock::process().now())
                    .map_err(|e| crate::queue::QueueError::Storage(e.to_string()))?;
                Ok(())
            }
            TokenCommand::Revoke { name } => {
                remote.revoke_token(name).await?;
                println!("token '{name}' revoked");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => Ok(EXIT_OK),
        Err(e) => Ok(super::report_queue_error(&e)),
    }
}

fn print_issued(token: &str, r: &TokenRecord) {
    println!("{token}");
    eprintln!(
        "token '{}' ({}{}): shown this once; only its hash is kept. Give it to its holder as SIGNOFF_TOKEN or a --token-file.",
        r.name,
        r.role,
        r.expires_at
            .map(|e| format!(", expires {}", timestamp(e)))
            .unwrap_or_default()
    );
}

fn print_tokens(records: &[TokenRecord], json: bool, now: i64) -> anyhow::Result<()> {
    if json {
        return print_json(&records);
    }
    let mut t = Table::new(&[
        ("NAME", 0),
        ("ROLE", 0),
        ("STATE", 0),
        ("CREATED", 0),
        ("BY", 0),
        ("EXPIRES", 0),
    ]);
    for r in records {
        let state = if r.revoked_at.is_some() {
            "revoked"
        } else if r.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "live"
        };
        t.row(vec![
            r.name.clone(),
            r.role.clone(),
            state.into(),
            timestamp(r.created_at),
            r.created_by.clone(),
            r.expires_at.map(timestamp).unwrap_or_else(|| "-".into()),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}
