//! Configuration: built-in defaults in the binary, the user's TOML file with overrides
//! only, `SIGNOFF_*` environment variables, then flags (each overriding the one before).
//!
//! Any key can come from the environment as `SIGNOFF_<SECTION>__<KEY>` (double underscore
//! between levels, e.g. `SIGNOFF_POLICY__CONFIDENCE_THRESHOLD=0.8`); a few have short
//! names: `SIGNOFF_DB`, `SIGNOFF_REVIEWER`. Paths follow the XDG base directories
//! (`directories`), overridable with `SIGNOFF_CONFIG_DIR`, `SIGNOFF_DATA_DIR` and
//! `SIGNOFF_STATE_DIR`. A bad config fails with file, line, key and what is allowed.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::actions::ActionsConfig;
use crate::model::Policy;
use crate::secret::Secret;
use crate::store::Durability;
use crate::tui::UiConfig;

/// The system-wide config, read under the user's (`SIGNOFF_SYSTEM_CONFIG` overrides the path).
pub const SYSTEM_CONFIG: &str = "/etc/signoff/config.toml";

/// The commented example config (`signoff config example`); config.example.toml is this text.
pub const EXAMPLE: &str = include_str!("../config.example.toml");

/// `[store]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The queue database; default `<data dir>/queue.db`.
    pub path: Option<PathBuf>,
    /// full: every commit on disk before it returns; normal: faster, may lose the last
    /// commits on power loss (never corrupts).
    pub durability: Durability,
    /// How long a writer waits for another's lock before retrying.
    pub busy_timeout_ms: u64,
    /// A Unix group that shares the store: its files are created mode 0660 and given to
    /// this group instead of 0600 (owner only).
    pub group: Option<String>,
    /// PostgreSQL (`path` a `postgres://` URL): the password when the URL has none
    /// (inline, `env:NAME` or `file:PATH`; else `PGPASSWORD` or the password file).
    pub password: Option<crate::secret::Secret>,
    /// PostgreSQL: a PEM file of the CAs that sign the database server's certificate
    /// (with `sslmode=require` in the URL); the public web roots otherwise.
    pub tls_ca: Option<PathBuf>,
    /// PostgreSQL: connections each server keeps open.
    pub pool_size: u32,
    /// PostgreSQL: the audit key every server on the database shares (32 bytes, mode
    /// 0600); default `<data dir>/audit.key`.
    pub audit_key: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            durability: Durability::Full,
            busy_timeout_ms: 10_000,
            group: None,
            password: None,
            tls_ca: None,
            pool_size: 16,
            audit_key: None,
        }
    }
}

/// `[reviewer]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewerConfig {
    /// Name recorded on claims, edits and decisions; default: the Unix user.
    pub name: Option<String>,
    /// Lets `name` differ from the Unix user this runs as (both are audited). Off: a
    /// name that is not yours is refused.
    pub allow_override: bool,
}

/// A role on the queue server: what a caller may do.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, changes nothing.
    Observer,
    /// Claims, edits, decides, undoes, records outcomes.
    Reviewer,
    /// A reviewer who also flips the kill switch, resends dead letters and manages tokens.
    Admin,
    /// Posts requests to `/v1/ingest` and nothing else (the upstream AI service).
    Ingest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Observer, Role::Reviewer, Role::Admin, Role::Ingest]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// `[server.access]`: who may use the queue server over its Unix socket. Users and Unix
/// groups map to a role; a user's own entry wins over their groups', and of several groups
/// the strongest role (admin, then reviewer, then observer) counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    pub users: BTreeMap<String, Role>,
    pub groups: BTreeMap<String, Role>,
}

impl AccessConfig {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

/// `[server]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The Unix socket; default `$XDG_RUNTIME_DIR/signoff.sock`.
    pub socket: Option<PathBuf>,
    /// A TCP address to listen on as well (`127.0.0.1:8787`); none by default.
    pub bind: Option<String>,
    /// PEM certificate chain and private key: TCP is served over TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A TLS-terminating proxy sits in front: a non-loopback `bind` is allowed without TLS.
    pub behind_proxy: bool,
    /// The shared secret upstream signs `/v1/ingest` bodies with (`env:` or `file:`).
    pub webhook_secret: Option<Secret>,
    pub access: AccessConfig,
    /// The largest request body, except ingest.
    pub max_body_bytes: usize,
    /// The largest `/v1/ingest` body.
    pub max_ingest_bytes: usize,
    /// Requests per second each caller may make on average, and in a burst.
    pub rate_per_second: f64,
    pub rate_burst: u32,
    /// A request taking longer is answered 503 (the event stream excepted).
    pub request_timeout_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            socket: None,
            bind: None,
            tls_cert: None,
            tls_key: None,
            behind_proxy: false,
            webhook_secret: None,
            access: AccessConfig::default(),
            max_body_bytes: 1 << 20,
            max_ingest_bytes: 32 << 20,
            rate_per_second: 50.0,
            rate_burst: 200,
            request_timeout_seconds: 60,
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter (`info`, `signoff=debug`); `SIGNOFF_LOG` overrides it.
    pub level: String,
    /// Daily log files kept.
    pub max_files: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            max_files: 14,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A queue server to use instead of a local database: `unix:/run/signoff/signoff.sock`,
    /// `https://host:port` or `http://127.0.0.1:port`.
    pub remote: Option<String>,
    /// The bearer token for a TCP `remote` (`env:` or `file:`); `SIGNOFF_TOKEN` and
    /// `--token-file` override it.
    pub remote_token: Option<Secret>,
    /// A PEM CA certificate to trust for an `https` remote (a private CA, a self-signed server).
    pub remote_ca: Option<PathBuf>,
    pub store: StoreConfig,
    pub reviewer: ReviewerConfig,
    pub policy: Policy,
    pub actions: ActionsConfig,
    pub ui: UiConfig,
    pub server: ServerConfig,
    pub log: LogConfig,
    pub validation: crate::validate::ValidationConfig,
}

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

/// A config problem: where, which key, what is wrong and what is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, or `environment variable X`, or `flag --x`.
    pub origin: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config error in {}", self.origin)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Resolved directories and files.
#[derive(Clone, Debug, PartialEq)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The config file read (or that would be read: it may not exist).
    pub config_file: PathBuf,
    /// The system-wide config read under it (it may not exist).
    pub system_config_file: PathBuf,
    pub db: PathBuf,
    pub log_dir: PathBuf,
    pub themes_dir: PathBuf,
}

/// What flags override.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub reviewer: Option<String>,
}

/// A loaded configuration with its paths and where each value came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub paths: Paths,
    /// Whether the config file exists and was read.
    pub file_read: bool,
    /// Dotted key → source, for keys not at their default.
    pub sources: BTreeMap<String, Source>,
}

impl Loaded {
    pub fn source_of(&self, key: &str) -> Source {
        source_of_key(&self.sources, key)
    }

    /// The reviewer name: flag, env, config, then the Unix user.
    pub fn reviewer(&self) -> String {
        self.config
            .reviewer
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| crate::identity::os_user().to_string())
    }

    /// Refuses a reviewer name other than the Unix user this process runs as, unless
    /// `reviewer.allow_override` is on: the audit log records both, but a name that is not
    /// yours must be intended.
    pub fn check_reviewer(&self) -> Result<(), ConfigError> {
        let me = crate::identity::os_user();
        let name = self.reviewer();
        if name == me || self.config.reviewer.allow_override {
            return Ok(());
        }
        let (origin, line) = match self.source_of("reviewer.name") {
            Source::Flag(n) => (format!("flag {n}"), None),
            Source::Env(v) => (format!("environment variable {v}"), None),
            Source::File(p) => {
                let line = std::fs::read_to_string(&p)
                    .ok()
                    .and_then(|t| find_key_line(&t, "reviewer.name"));
                (p.display().to_string(), line)
            }
            Source::Default => ("the configuration".into(), None),
        };
        Err(ConfigError {
            origin,
            line,
            key: Some("reviewer.name".into()),
            message: format!(
                "reviewer '{name}' is not you: signoff runs as Unix user '{me}' and the audit log records who really acted; leave the reviewer name out (it defaults to '{me}'), or set reviewer.allow_override = true where acting under another name is intended (both names are then recorded)"
            ),
        })
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Resolves the directories from the environment and XDG.
pub fn base_dirs() -> (PathBuf, PathBuf, PathBuf) {
    let proj = directories::ProjectDirs::from("", "", "signoff");
    let home_fallback = || {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    let config_dir = env_path("SIGNOFF_CONFIG_DIR").unwrap_or_else(|| {
        proj.as_ref()
            .map(|p| p.config_dir().to_path_buf())
            .unwrap_or_else(|| home_fallback().join(".config/signoff"))
    });
    let data_override = env_path("SIGNOFF_DATA_DIR");
    let data_dir = data_override.clone().unwrap_or_else(|| {
        proj.as_ref()
            .map(|p| p.data_dir().to_path_buf())
            .unwrap_or_else(|| home_fallback().join(".local/share/signoff"))
    });
    // With SIGNOFF_DATA_DIR set, state (logs) goes beside the data unless told otherwise,
    // so one variable isolates a whole installation (tests, demos).
    let state_dir = env_path("SIGNOFF_STATE_DIR").unwrap_or_else(|| match data_override {
        Some(d) => d.join("state"),
        None => proj
            .as_ref()
            .and_then(|p| p.state_dir().map(Path::to_path_buf))
            .unwrap_or_else(|| data_dir.join("state")),
    });
    (config_dir, data_dir, state_dir)
}

/// Loads the configuration: defaults, file, environment, flags.
pub fn load(flags: &Flags) -> Result<Loaded, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SIGNOFF_"))
        .collect();
    load_with(flags, &env)
}

/// [`load`] with an explicit environment (tests).
pub fn load_with(flags: &Flags, env: &[(String, String)]) -> Result<Loaded, ConfigError> {
    let (config_dir, data_dir, state_dir) = base_dirs();
    let env_file = env
        .iter()
        .find(|(k, _)| k == "SIGNOFF_CONFIG")
        .map(|(_, v)| PathBuf::from(v));
    let explicit = flags.config.clone().or(env_file);
    let config_file = explicit
        .clone()
        .unwrap_or_else(|| config_dir.join("config.toml"));
    let mut sources = BTreeMap::new();

    // 0. The system-wide file (a shared host's `remote = ...`), under the user's.
    let system_file = env
        .iter()
        .find(|(k, _)| k == "SIGNOFF_SYSTEM_CONFIG")
        .map(|(_, v)| PathBuf::from(v))
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CONFIG));
    let (system_table, system_text) = match std::fs::read_to_string(&system_file) {
        Ok(text) => (parse_file(&text, &system_file)?, Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (toml::Table::new(), None),
        Err(e) => {
            return Err(ConfigError {
                origin: system_file.display().to_string(),
                line: None,
                key: None,
                message: format!("cannot read the system config file: {e}"),
            });
        }
    };
    for key in leaf_keys(&toml::Value::Table(system_table.clone())) {
        sources.insert(key, Source::File(system_file.clone()));
    }

    // 1. The file, checked alone first so its errors carry its own lines. It holds
    // overrides only: it is merged key by key over the system file and the built-in
    // defaults below.
    let (user_table, text) = match std::fs::read_to_string(&config_file) {
        Ok(text) => {
            let table = parse_file(&text, &config_file)?;
            (table, Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            (toml::Table::new(), None)
        }
        Err(e) => {
            return Err(ConfigError {
                origin: config_file.display().to_string(),
                line: None,
                key: None,
                message: format!("cannot read the config file: {e}"),
            });
        }
    };
    for key in leaf_keys(&toml::Value::Table(user_table.clone())) {
        sources.insert(key, Source::File(config_file.clone()));
    }
    let mut table = {
        let mut merged = toml::Value::Table(system_table);
        merge(&mut merged, &user_table);
        match merged {
            toml::Value::Table(t) => t,
            _ => user_table,
        }
    };

    // 2. The environment.
    let mut env_keys: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in env {
        let key = match name.as_str() {
            "SIGNOFF_DB" => "store.path".to_string(),
            "SIGNOFF_REVIEWER" => "reviewer.name".to_string(),
            n => match n.strip_prefix("SIGNOFF_") {
                Some(rest) if rest.contains("__") => rest.to_ascii_lowercase().replace("__", "."),
                _ => continue,
            },
        };
        let parsed = parse_env_value(&key, value);
        let env_err = |message: String| ConfigError {
            origin: format!("environment variable {name}"),
            line: None,
            key: Some(key.clone()),
            message,
        };
        set_path(&mut table, &key, parsed).map_err(env_err)?;
        // Checked one variable at a time, so a bad value names its variable.
        over_defaults(&table)
            .try_into::<Config>()
            .map_err(|e| env_err(e.message().trim().to_string()))?;
        env_keys.insert(key.clone(), name.clone());
        sources.insert(key, Source::Env(name.clone()));
    }
    // The file was checked alone and each variable on its own: an error left is one only
    // the merge shows (a table the file completes wrongly); it is placed by its key.
    let mut config: Config = over_defaults(&table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let key = error_key(&e);
            let (origin, line) = match key.as_deref().map(|k| source_of_key(&sources, k)) {
                Some(Source::Env(n)) => (format!("environment variable {n}"), None),
                Some(Source::File(f)) if f == system_file => (
                    system_file.display().to_string(),
                    system_text
                        .as_deref()
                        .zip(key.as_deref())
                        .and_then(|(t, k)| find_key_line(t, k)),
                ),
                _ => (
                    config_file.display().to_string(),
                    text.as_deref()
                        .zip(key.as_deref())
                        .and_then(|(t, k)| find_key_line(t, k)),
                ),
            };
            ConfigError {
                origin,
                line,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
    // Defaults that name values the user's lists no longer have (an SLA for a priority
    // they removed) are dropped, not reported: the user did not write them.
    config
        .policy
        .drop_stale_defaults(|k| user_set(&sources, &format!("policy.{k}")));

    // 3. Flags.
    if let Some(db) = &flags.db {
        config.store.path = Some(db.clone());
        sources.insert("store.path".into(), Source::Flag("--db".into()));
    }
    if let Some(r) = &flags.reviewer {
        config.reviewer.name = Some(r.clone());
        sources.insert("reviewer.name".into(), Source::Flag("--reviewer".into()));
    }

    // 4. Meaning: contradictions in the policy, keymap, actions.
    let mut problems: Vec<(String, String)> = config
        .policy
        .check()
        .into_iter()
        .map(|p| (p.key, p.message))
        .collect();
    problems.extend(crate::tui::check_ui(&config.ui));
    problems.extend(crate::actions::check_config(&config.actions));
    problems.extend(config.validation.check());
    if config.store.busy_timeout_ms == 0 {
        problems.push((
            "store.busy_timeout_ms".into(),
            "must be more than 0 (milliseconds, e.g. 10000)".into(),
        ));
    }
    if let Some(group) = &config.store.group
        && crate::identity::group_id(group).is_none()
    {
        problems.push((
            "store.group".into(),
            format!("'{group}' is not a Unix group on this host (see /etc/group)"),
        ));
    }
    if config.log.max_files == 0 {
        problems.push(("log.max_files".into(), "must keep at least 1 file".into()));
    }
    if let Some((key, message)) = problems.into_iter().next() {
        let (origin, line) = match sources.get(&key).or_else(|| {
            sources
                .iter()
                .find(|(k, _)| key.starts_with(k.as_str()) || k.starts_with(&key))
                .map(|(_, s)| s)
        }) {
            Some(Source::Env(n)) => (format!("environment variable {n}"), None),
            Some(Source::Flag(n)) => (format!("flag {n}"), None),
            Some(Source::File(f)) if *f == system_file => (
                system_file.display().to_string(),
                system_text.as_deref().and_then(|t| find_key_line(t, &key)),
            ),
            _ => (
                config_file.display().to_string(),
                text.as_deref().and_then(|t| find_key_line(t, &key)),
            ),
        };
        return Err(ConfigError {
            origin,
            line,
            key: Some(key),
            message,
        });
    }

    let db = config
        .store
        .path
        .clone()
        .map(|p| PathBuf::from(crate::secret::expand_home(&p.to_string_lossy())))
        .unwrap_or_else(|| data_dir.join("queue.db"));
    let paths = Paths {
        system_config_file: system_file,
        themes_dir: config_dir.join("themes"),
        log_dir: state_dir.join("logs"),
        config_file,
        db,
        config_dir,
        data_dir,
        state_dir,
    };
    Ok(Loaded {
        config,
        paths,
        file_read: text.is_some(),
        sources,
    })
}

/// The built-in defaults as TOML, with `user` (file and environment) merged over them key
/// by key at every depth: tables merge, any other value (lists too) replaces.
fn over_defaults(user: &toml::Table) -> toml::Value {
    let mut base = toml::Value::try_from(Config::default())
        .unwrap_or_else(|_| toml::Value::Table(toml::Table::new()));
    merge(&mut base, user);
    base
}

/// Merges `over` into `base`: a table merges into a table, anything else replaces.
fn merge(base: &mut toml::Value, over: &toml::Table) {
    let Some(base) = base.as_table_mut() else {
        *base = toml::Value::Table(over.clone());
        return;
    };
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(b @ toml::Value::Table(_)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The dotted key a deserialisation error of a TOML value is about (`toml` names it on
/// the error's last line: "in `policy.lease_seconds`").
fn error_key(e: &toml::de::Error) -> Option<String> {
    let text = e.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    // A problem at the top level has no "in" line.
    let key = last
        .trim()
        .strip_prefix("in `")
        .and_then(|k| k.strip_suffix('`'));
    // An unknown field is reported at the table holding it: name the field itself.
    let field = e
        .message()
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next());
    match (key, field) {
        (Some(k), Some(f)) => Some(format!("{k}.{f}")),
        (Some(k), None) => Some(k.to_string()),
        (None, Some(f)) => Some(f.to_string()),
        (None, None) => None,
    }
}

/// Where a key's value came from: the most specific recorded key that is it or a parent.
fn source_of_key(sources: &BTreeMap<String, Source>, key: &str) -> Source {
    let mut k = key;
    loop {
        if let Some(s) = sources.get(k) {
            return s.clone();
        }
        match k.rfind('.') {
            Some(i) => k = &k[..i],
            None => return Source::Default,
        }
    }
}

/// Whether the user's file or environment set `key`, a parent of it, or a key inside it.
fn user_set(sources: &BTreeMap<String, Source>, key: &str) -> bool {
    source_of_key(sources, key) != Source::Default
        || sources
            .range(format!("{key}.")..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&format!("{key}.")))
}

/// Parses and checks the file alone, mapping errors to line and key. A table the file
/// leaves incomplete is no error here (the defaults complete it when merged).
fn parse_file(text: &str, path: &Path) -> Result<toml::Table, ConfigError> {
    let err = |e: toml::de::Error| {
        let (line, key) = match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                (Some(line), key_at_line(text, line))
            }
            None => (None, None),
        };
        ConfigError {
            origin: path.display().to_string(),
            line,
            key,
            message: e.message().trim().to_string(),
        }
    };
    let table: toml::Table = toml::from_str(text).map_err(err)?;
    match toml::from_str::<Config>(text) {
        Err(e) if !e.message().starts_with("missing field") => Err(err(e)),
        _ => Ok(table),
    }
}

/// The dotted key defined at a 1-based line: `[table]` headers plus the line's key.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(h) = header(t) {
            table = h;
        }
        if i + 1 == line {
            if let Some(h) = header(t) {
                return Some(h);
            }
            let k = t.split('=').next()?.trim().trim_matches('"');
            if k.is_empty() || t.starts_with('#') {
                return (!table.is_empty()).then_some(table);
            }
            return Some(if table.is_empty() {
                k.to_string()
            } else {
                format!("{table}.{k}")
            });
        }
    }
    None
}

fn header(line: &str) -> Option<String> {
    let l = line.split('#').next()?.trim();
    let inner = l.strip_prefix("[[").and_then(|x| x.strip_suffix("]]"));
    let inner = inner.or_else(|| l.strip_prefix('[').and_then(|x| x.strip_suffix(']')))?;
    Some(inner.trim().replace(['"', ' '], ""))
}

/// The 1-based line where a dotted key (or its nearest parent) is set in the file.
pub fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let mut table = String::new();
    let mut best: Option<(usize, usize)> = None; // (matched length, line)
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        let full = if let Some(h) = header(t) {
            table = h.clone();
            h
        } else if let Some((k, _)) = t.split_once('=') {
            let k = k.trim().trim_matches('"');
            if table.is_empty() {
                k.to_string()
            } else {
                format!("{table}.{k}")
            }
        } else {
            continue;
        };
        let matches = key == full || key.starts_with(&format!("{full}."));
        if matches && best.is_none_or(|(len, _)| full.len() > len) {
            best = Some((full.len(), i + 1));
        }
    }
    best.map(|(_, line)| line)
}

/// An environment value as TOML (numbers, booleans, arrays), or a plain string.
fn parse_env_value(key: &str, raw: &str) -> toml::Value {
    if key.ends_with("path")
        || key.ends_with("name")
        || key.ends_with("level")
        || key.ends_with("group")
    {
        return toml::Value::String(raw.to_string());
    }
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().ok_or("empty key")?;
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a table"))?;
    }
    t.insert(last.to_string(), value);
    Ok(())
}

/// Every leaf key of a TOML value (arrays are leaves).
pub fn leaf_keys(v: &toml::Value) -> Vec<String> {
    fn walk(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) if !t.is_empty() || prefix.is_empty() => {
                for (k, v) in t {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(v, &p, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(v, "", &mut out);
    out
}

/// A value as `config print` shows it: masked secrets (see [`crate::secret::masked`]) as
/// their bare description, the server's token list as a count.
fn shown(key: &str, v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) if s.starts_with(crate::secret::MASK_MARK) => {
            s.trim_start_matches(crate::secret::MASK_MARK).to_string()
        }
        toml::Value::Array(items) if key == "server.tokens" => {
            let n = items.len();
            format!(
                "[{n} token{}, values hidden]",
                if n == 1 { "" } else { "s" }
            )
        }
        other => other.to_string(),
    }
}

/// The effective configuration as TOML-like lines, each with where it came from; secrets
/// masked.
pub fn render_effective(loaded: &Loaded) -> String {
    let value = crate::secret::masked(|| toml::Value::try_from(&loaded.config))
        .unwrap_or(toml::Value::Table(Default::default()));
    let mut out = String::new();
    out.push_str(&format!(
        "# effective configuration; file: {} ({})\n",
        loaded.paths.config_file.display(),
        if loaded.file_read {
            "read"
        } else {
            "not present: defaults"
        }
    ));
    let empty = toml::Table::new();
    let sections = value.as_table().unwrap_or(&empty);
    // Keys outside any table first (TOML needs them before the first header), then one
    // header per section.
    let (plain, tables): (Vec<_>, Vec<_>) = sections.iter().partition(|(_, v)| !v.is_table());
    let line = |out: &mut String, key: &str, rest: &str, v: &toml::Value| {
        let line = format!("{rest} = {}", shown(key, v));
        out.push_str(&format!("{line:<60} # {}\n", loaded.source_of(key)));
    };
    for (k, v) in plain {
        line(&mut out, k, k, v);
    }
    for (sec, v) in tables {
        out.push_str(&format!("\n[{sec}]\n"));
        if v.as_table().is_some_and(toml::Table::is_empty) {
            out.push_str("# nothing set: every key at its default\n");
            continue;
        }
        for rest in leaf_keys(v) {
            let mut x = v;
            for p in rest.split('.') {
                x = match x.get(p) {
                    Some(y) => y,
                    None => break,
                };
            }
            line(&mut out, &format!("{sec}.{rest}"), &rest, x);
        }
    }
    if loaded.config.store.path.is_none() {
        out.push_str(&format!(
            "\n# store.path unset: the queue is {}\n",
            loaded.paths.db.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_at_their_lines() {
        let text = "# c\n[policy]\nintents = [\"a\"]\n\n[policy.review]\nintents = [\"x\"]\n";
        assert_eq!(find_key_line(text, "policy.intents"), Some(3));
        assert_eq!(find_key_line(text, "policy.review.intents"), Some(6));
        assert_eq!(find_key_line(text, "policy.lease_seconds"), Some(2));
        assert_eq!(
            key_at_line(text, 6).as_deref(),
            Some("policy.review.intents")
        );
    }

    #[test]
    fn env_values_parse_as_toml_or_strings() {
        assert_eq!(
            parse_env_value("policy.confidence_threshold", "0.8"),
            toml::Value::Float(0.8)
        );
        assert_eq!(
            parse_env_value("policy.intents", "[\"a\",\"b\"]"),
            toml::Value::Array(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            parse_env_value("store.path", "123"),
            toml::Value::String("123".into())
        );
        assert_eq!(
            parse_env_value("ui.theme", "light"),
            toml::Value::String("light".into())
        );
    }

    #[test]
    fn secrets_are_masked_by_type() {
        let mut c = Config::default();
        c.actions.slack.token = Some(Secret::new("xoxb-1"));
        c.server.webhook_secret = Some(Secret::new("env:NOPE_NOT_SET"));
        let v = crate::secret::masked(|| toml::Value::try_from(&c)).unwrap();
        let at = |k: &str| {
            let mut x = &v;
            for p in k.split('.') {
                x = x.get(p).unwrap();
            }
            shown(k, x)
        };
        assert_eq!(at("actions.slack.token"), "******** (inline)");
        assert!(at("server.webhook_secret").starts_with("env:NOPE_NOT_SET"));
        assert_eq!(
            at("actions.gmail.token_url"),
            "\"https://oauth2.googleapis.com/token\""
        );
        // Outside `masked`, a secret serialises as its value.
        let v = toml::Value::try_from(&c).unwrap();
        assert_eq!(v["actions"]["slack"]["token"].as_str(), Some("xoxb-1"));
    }

    #[test]
    fn user_tables_merge_over_the_defaults_at_every_depth() {
        let user: toml::Table = toml::from_str(
            "[policy.sla_minutes]\nurgent = 10\n[policy.actions]\nother = []\n[policy]\nintents = [\"other\", \"sales_lead\"]\n",
        )
        .unwrap();
        let c: Config = over_defaults(&user).try_into().unwrap();
        assert_eq!(c.policy.sla_minutes["urgent"], 10);
        assert_eq!(c.policy.sla_minutes["high"], 60);
        assert_eq!(c.policy.actions["other"], vec![]);
        assert_eq!(c.policy.actions["sales_lead"].len(), 3);
        // Lists replace.
        assert_eq!(c.policy.intents, vec!["other", "sales_lead"]);
    }
}
