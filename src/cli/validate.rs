//! `signoff validate HISTORY [--json] [--html FILE] [--sign-off]` and
//! `signoff policy [adopt [--force]]`: judging the AI against history, signing the result
//! off, and which validation the threshold in force stands on.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::output::print_json;
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, store_options};
use crate::config::Loaded;
use crate::store::{PolicyCheck, Store};
use crate::text::sanitize;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Historical cases: requests in the ingest schema, each with `actual` (what people
    /// did: decision, intent, priority, optionally summary, recommended_next_step, reply).
    pub history: PathBuf,
    /// The report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as an HTML page to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Record this run in the audit log under your name (input digest, policy version,
    /// results, required accuracy, pass or fail).
    #[arg(long)]
    pub sign_off: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Take the configured threshold and auto-approval into force now.
    Adopt {
        /// Without a passing signed-off validation (recorded in the audit log as forced).
        #[arg(long)]
        force: bool,
    },
}

/// How many problems with the history are printed before the count of the rest.
const PROBLEMS_SHOWN: usize = 20;

pub fn validate(loaded: &Loaded, args: &ValidateArgs, read_only: bool) -> anyhow::Result<i32> {
    if args.sign_off && read_only {
        eprintln!("signoff: --sign-off writes to the audit log; not with --read-only");
        return Ok(EXIT_USAGE);
    }
    if args.sign_off && loaded.config.remote.is_some() {
        eprintln!(
            "signoff: --sign-off records in this machine's database; use --db (the queue server's host signs off there)"
        );
        return Ok(EXIT_USAGE);
    }
    let name = args.history.display().to_string();
    let bytes = match std::fs::read(&args.history) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("signoff: cannot read {name}: {e}");
            return Ok(EXIT_FAILED);
        }
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            eprintln!(
                "signoff: {name}:{line}: not valid UTF-8 (byte {})",
                e.valid_up_to()
            );
            return Ok(EXIT_FAILED);
        }
    };
    let (cases, problems) = crate::validate::read(&name, text);
    if !problems.is_empty() {
        for p in problems.iter().take(PROBLEMS_SHOWN) {
            eprintln!("{}", sanitize(&p.to_string()));
        }
        if problems.len() > PROBLEMS_SHOWN {
            eprintln!("… and {} more", problems.len() - PROBLEMS_SHOWN);
        }
        eprintln!(
            "signoff: {} of the cases in {name} cannot be used; nothing was judged (a validation covers the whole history)",
            problems.len()
        );
        return Ok(EXIT_FAILED);
    }
    if cases.is_empty() {
        eprintln!("signoff: {name} holds no cases");
        return Ok(EXIT_FAILED);
    }
    let report = crate::validate::evaluate(
        &name,
        &crate::validate::digest(&bytes),
        &cases,
        &loaded.config.policy,
        &loaded.config.validation,
    );
    if let Some(path) = &args.html {
        write_private(path, crate::validate::html(&report).as_bytes())?;
    }
    if args.json {
        print_json(&report)?;
    } else {
        print!("{}", report.text());
        if let Some(path) = &args.html {
            println!("HTML report: {}", path.display());
        }
    }
    if args.sign_off {
        let mut store = open(loaded)?;
        let who = loaded.reviewer();
        let seq = store.sign_off_validation(&who, &report, &loaded.config.validation)?;
        let line = format!(
            "signed off by {} as audit entry {seq}: {} for policy version {}",
            sanitize(&who),
            if report.passed { "passed" } else { "failed" },
            report.policy_version
        );
        // With --json, stdout holds only the document.
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(EXIT_OK)
}

/// Writes a report file the owner alone can read (it holds request text).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

fn open(loaded: &Loaded) -> anyhow::Result<Store> {
    Ok(Store::open(
        &loaded.paths.db,
        Arc::new(loaded.config.policy.clone()),
        &store_options(loaded),
    )?)
}

fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// `signoff policy`: the configured threshold and auto-approval, those in force, and the
/// validation they stand on.
pub fn policy(
    loaded: &Loaded,
    command: Option<&PolicyCommand>,
    read_only: bool,
) -> anyhow::Result<i32> {
    if loaded.config.remote.is_some() {
        eprintln!("signoff: `signoff policy` reads this machine's database; use --db");
        return Ok(EXIT_USAGE);
    }
    let mut store = open(loaded)?;
    if let Some(PolicyCommand::Adopt { force }) = command {
        if read_only {
            eprintln!("signoff: `policy adopt` writes to the audit log; not with --read-only");
            return Ok(EXIT_USAGE);
        }
        let who = loaded.reviewer();
        return Ok(match store.check_policy(&who)? {
            PolicyCheck::InForce => {
                println!("the configured threshold and auto-approval are already in force");
                EXIT_OK
            }
            PolicyCheck::Adopted { seq, validation } => {
                println!(
                    "taken into force as audit entry {seq}{}",
                    validation.map_or_else(String::new, |v| format!(
                        ", on the validation signed off as entry {v}"
                    ))
                );
                EXIT_OK
            }
            PolicyCheck::Refused(why) if !force => {
                eprintln!("signoff: {why}");
                EXIT_USAGE
            }
            PolicyCheck::Refused(_) => {
                let seq = store.adopt_policy(&who, None, true)?;
                println!(
                    "taken into force WITHOUT a passing validation (--force), recorded as audit entry {seq} under {}",
                    sanitize(&who)
                );
                EXIT_OK
            }
        });
    }
    let p = &loaded.config.policy;
    let f = store.policy_in_force()?;
    println!(
        "configured   policy {} · threshold {:.2} · auto-approve {}",
        p.version(),
        p.confidence_threshold,
        if p.auto_approve { "on" } else { "off" }
    );
    let since = match (f.seq, f.at, &f.by) {
        (Some(seq), Some(at), Some(by)) => format!(
            " · since {} by {} (audit entry {seq})",
            when(at),
            sanitize(by)
        ),
        _ => " · the built-in defaults".into(),
    };
    println!(
        "in force     threshold {:.2} · auto-approve {}{since}",
        f.confidence_threshold,
        if f.auto_approve { "on" } else { "off" }
    );
    match (f.validation, f.forced) {
        (Some(seq), _) => match store.signed_off_validation(seq)? {
            Some(v) => {
                println!(
                    "stands on    validation {} ({} cases, sha256 {}) signed off by {} on {} (audit entry {}): {}",
                    sanitize(&v.input),
                    v.cases,
                    &v.input_sha256[..v.input_sha256.len().min(16)],
                    sanitize(&v.signed_by),
                    when(v.at),
                    v.seq,
                    if v.passed { "passed" } else { "failed" }
                );
                println!("             {}", sanitize(&v.verdict));
            }
            None => {
                println!("stands on    audit entry {seq}, which is not a signed-off validation")
            }
        },
        (None, true) => println!("stands on    nothing: taken into force with --force"),
        (None, false) if f.seq.is_none() => {
            println!("stands on    nothing: the defaults (auto-approval off) need no validation")
        }
        (None, false) => println!("stands on    nothing: auto-approval off needs no validation"),
    }
    if !f.covers(p) {
        let version = p.version();
        let passing = store
            .signed_off_validations(Some(&version))?
            .into_iter()
            .find(|v| v.passed);
        match (f.needs_evidence_for(p), passing) {
            (false, _) => println!(
                "pending      the configured policy turns auto-approval off; the next ingest takes it into force"
            ),
            (true, Some(v)) => println!(
                "pending      the configured policy has a passing validation (audit entry {}); the next ingest takes it into force",
                v.seq
            ),
            (true, None) => println!(
                "refused      the configured threshold or auto-approval has no passing signed-off validation for policy {version}; ingest and serve refuse to run (`signoff validate HISTORY --sign-off`, or `signoff policy adopt --force`)"
            ),
        }
    }
    let all = store.signed_off_validations(None)?;
    if !all.is_empty() {
        println!("\nsigned-off validations (newest first)");
        for v in all.iter().take(10) {
            println!(
                "  entry {:<6} {}  {:<4}  policy {}  threshold {:.2}  required {:.1} %  {} cases  by {}  {}",
                v.seq,
                when(v.at),
                if v.passed { "pass" } else { "FAIL" },
                v.policy_version,
                v.confidence_threshold,
                v.required_accuracy * 100.0,
                v.cases,
                sanitize(&v.signed_by),
                sanitize(&v.input)
            );
        }
    }
    Ok(EXIT_OK)
}

/// Before a command that ingests (where auto-approval acts): the configured threshold and
/// auto-approval must be in force, or be taken into force on a passing signed-off
/// validation. Returns the refusal to print, if refused.
pub fn gate(loaded: &Loaded) -> anyhow::Result<Option<String>> {
    if loaded.config.remote.is_some() {
        return Ok(None);
    }
    let check = match loaded.paths.db.to_str().filter(|d| crate::pg::is_url(d)) {
        Some(url) => super::runtime()?.block_on(async {
            let policy = Arc::new(loaded.config.policy.clone());
            let db = crate::pg::PgDb::open(url, policy, &super::pg_options(loaded)).await?;
            anyhow::Ok(db.check_policy(&loaded.reviewer()).await?)
        })?,
        None => open(loaded)?.check_policy(&loaded.reviewer())?,
    };
    Ok(match check {
        PolicyCheck::Refused(why) => Some(why),
        PolicyCheck::Adopted { seq, validation } => {
            tracing::info!(
                seq,
                ?validation,
                "policy threshold and auto-approval taken into force"
            );
            None
        }
        PolicyCheck::InForce => None,
    })
}
