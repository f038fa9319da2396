//! Reaching the database: the URL (`postgres://` or `postgresql://`), where its password
//! comes from, TLS through rustls, and the connection pool.
use std::path::Path;
use std::sync::Arc;

use tokio_postgres::config::SslMode;

use super::{PgError, PgOptions, Result};

/// Whether `s` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail: String = tail
        .split('&')
        .map(|kv| {
            let (k, _) = kv.split_once('=').unwrap_or((kv, ""));
            if k.trim_start_matches('?') == "password" {
                format!("{k}=***")
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

/// A parsed database URL with its password resolved.
pub struct PgTarget {
    config: tokio_postgres::Config,
    shown: String,
    ca_file: Option<std::path::PathBuf>,
}

impl PgTarget {
    pub fn parse(url: &str, opts: &PgOptions) -> Result<PgTarget> {
        let shown = redact(url);
        let bad = |why: String| PgError::Url {
            url: shown.clone(),
            why,
        };
        if !is_url(url) {
            return Err(bad("it must start with postgres:// or postgresql://".into()));
        }
        // `sslrootcert` is libpq's; this client takes the file from the URL or the config.
        let mut ca_file = opts.ca_file.clone();
        let mut kept = Vec::new();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            match kv.split_once('=') {
                Some(("sslrootcert", v)) => ca_file = Some(v.into()),
                _ => kept.push(kv),
            }
        }
        let cleaned = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: tokio_postgres::Config = cleaned
            .parse()
            .map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
        if config.get_user().is_none() {
            config.user(crate::identity::os_user());
        }
        if config.get_dbname().is_none() {
            let user = config.get_user().unwrap_or_default().to_string();
            config.dbname(&user);
        }
        if config.get_application_name().is_none() {
            config.application_name("signoff");
        }
        match config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
        {
            Some(p) if p.starts_with("env:") || p.starts_with("file:") => {
                let value = crate::secret::Secret::new(p.clone())
                    .resolve()
                    .map_err(|e| bad(format!("its password ({p}): {e}")))?;
                config.password(value);
            }
            Some(_) => {}
            None => {
                if let Some(secret) = &opts.password {
                    let value = secret
                        .resolve()
                        .map_err(|e| bad(format!("store.password: {e}")))?;
                    config.password(value);
                } else if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
                    config.password(p);
                } else if let Some(p) = from_passfile(&config) {
                    config.password(p);
                }
            }
        }
        Ok(PgTarget {
            config,
            shown,
            ca_file,
        })
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// A pool of at most `size` connections, over TLS when the URL's `sslmode` asks for it.
    pub fn pool(&self, size: usize) -> Result<deadpool_postgres::Pool> {
        let manager_config = deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        };
        let manager = match self.config.get_ssl_mode() {
            SslMode::Disable => deadpool_postgres::Manager::from_config(
                self.config.clone(),
                tokio_postgres::NoTls,
                manager_config,
            ),
            _ => deadpool_postgres::Manager::from_config(
                self.config.clone(),
                self.tls()?,
                manager_config,
            ),
        };
        deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::Connect {
                url: self.shown.clone(),
                why: e.to_string(),
            })
    }

    /// A connection outside the pool (the change listener holds one for `LISTEN`).
    pub async fn connect(
        &self,
    ) -> Result<(
        tokio_postgres::Client,
        tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::AsyncMessage>,
    )> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        macro_rules! drive {
            ($conn:expr) => {{
                let mut conn = $conn;
                tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                            Some(Ok(m)) => {
                                if tx.send(m).is_err() {
                                    break;
                                }
                            }
                            Some(Err(e)) => {
                                tracing::warn!(
                                    "the queue database's listening connection ended: {e}"
                                );
                                break;
                            }
                            None => break,
                        }
                    }
                });
            }};
        }
        let client = match self.config.get_ssl_mode() {
            SslMode::Disable => {
                let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
                drive!(conn);
                client
            }
            _ => {
                let (client, conn) = self.config.connect(self.tls()?).await?;
                drive!(conn);
                client
            }
        };
        Ok((client, rx))
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in read_pem(path).map_err(|why| PgError::Url {
                    url: self.shown.clone(),
                    why,
                })? {
                    roots.add(cert).map_err(|e| PgError::Url {
                        url: self.shown.clone(),
                        why: format!("{}: {e}", path.display()),
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Url {
            url: self.shown.clone(),
            why: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

fn read_pem(
    path: &Path,
) -> std::result::Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("the CA file {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the CA file {} holds no certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// The password for `config` from the password file (`PGPASSFILE`, else `~/.pgpass`):
/// lines `host:port:database:user:password`, `*` matching anything, `\` escaping `:`.
/// Like libpq, a file readable by group or others is ignored (with a warning).
fn from_passfile(config: &tokio_postgres::Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the password file is readable by others: ignored (chmod 0600 it)"
            );
            return None;
        }
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => {
            let _ = p;
            "localhost".into()
        }
        None => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config.get_dbname().unwrap_or_default();
    let user = config.get_user().unwrap_or_default();
    passfile_lookup(&text, &host, &port, db, user)
}

/// The first line of a password file that matches.
pub(crate) fn passfile_lookup(
    text: &str,
    host: &str,
    port: &str,
    db: &str,
    user: &str,
) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        let ok = |pat: &str, v: &str| pat == "*" || pat == v;
        if ok(&fields[0], host)
            && ok(&fields[1], port)
            && ok(&fields[2], db)
            && ok(&fields[3], user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_told_from_a_path_and_shown_without_its_password() {
        assert!(is_url("postgres://u@h/db"));
        assert!(is_url("PostgreSQL://u@h/db"));
        assert!(!is_url("/var/lib/signoff/queue.db"));
        assert!(!is_url("postgres.db"));
        assert_eq!(
            redact("postgres://ops:s3cret@db.internal:5432/signoff?sslmode=require"),
            "postgres://ops:***@db.internal:5432/signoff?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://db/signoff?user=ops&password=hunter2"),
            "postgresql://db/signoff?user=ops&password=***"
        );
    }

    #[test]
    fn the_password_file_matches_like_libpq() {
        let text =
            "# comment\nother:5432:*:ops:nope\ndb\\:1:*:signoff:ops:pa\\:ss\n*:*:*:*:fallback\n";
        assert_eq!(
            passfile_lookup(text, "db:1", "5432", "signoff", "ops").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            passfile_lookup(text, "elsewhere", "5432", "signoff", "ops").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn a_password_from_a_missing_variable_is_refused_by_name() {
        let err = PgTarget::parse(
            "postgres://ops:env:SIGNOFF_TEST_NO_SUCH_VAR@localhost/q",
            &PgOptions::default(),
        )
        .err()
        .expect("refused");
        let msg = err.to_string();
        assert!(msg.contains("SIGNOFF_TEST_NO_SUCH_VAR"), "{msg}");
        assert!(!msg.contains("env:SIGNOFF_TEST_NO_SUCH_VAR@"), "{msg}");
    }
}
