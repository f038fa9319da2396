//! A throwaway PostgreSQL cluster for the tests: one per test process, started on first
//! use, each test in a fresh database of its own.
//!
//! The cluster is Debian's `postgresql` package: `initdb` into a temp dir, then the
//! `postgres` server on a free 127.0.0.1 port with its socket in that dir and `trust`
//! authentication. PostgreSQL refuses to run as root, so under root (CI) the temp dir is
//! given to the `postgres` user and the server runs as that user.
//!
//! Nothing outlives the test binary: the server is a child of a thread that lives as long
//! as the process and is started with a parent-death signal (`SIGQUIT`, PostgreSQL's
//! immediate shutdown), so even a killed test binary takes it down; on a normal exit an
//! `atexit` hook shuts it down the same way, waits for it, and removes the temp dir
//! (test binaries never run a static's `Drop`).
//!
//! Where PostgreSQL is not installed, [`database`] prints a loud "skipped: no PostgreSQL"
//! and returns `None`, except under `CI=true`, where it fails the test: CI must never
//! pass by skipping.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The superuser of the test cluster.
pub const SUPERUSER: &str = "postgres";

/// A running test cluster.
pub struct Cluster {
    pub port: u16,
    /// Holds the data directory, the socket and the server log.
    pub dir: PathBuf,
    pub bindir: PathBuf,
    pub version: String,
}

/// A fresh database in the test cluster.
pub struct TestDb {
    pub name: String,
    /// `postgres://postgres@127.0.0.1:PORT/NAME`
    pub url: String,
}

impl Cluster {
    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{name}?connect_timeout=10",
            self.port
        )
    }

    /// The server's log so far (for a failure message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// What the `atexit` hook stops and removes.
struct Running {
    child: Child,
    dir: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, Missing>> = OnceLock::new();
static RUNNING: Mutex<Option<Running>> = Mutex::new(None);
static NEXT_DB: AtomicU64 = AtomicU64::new(1);

/// Why there is no cluster: PostgreSQL is not installed.
#[derive(Clone, Debug)]
pub struct Missing(pub String);

/// Whether this run is CI (`CI` set, as the other tests read it, unless to `false` or
/// `0`), where a missing PostgreSQL fails instead of skipping.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The test cluster, started on first use; `None` (after a loud notice) when PostgreSQL is
/// not installed outside CI. Panics under `CI=true` when it is missing, and whenever it is
/// installed but does not start (with the server's log).
pub fn cluster() -> Option<&'static Cluster> {
    match CLUSTER.get_or_init(start) {
        Ok(c) => Some(c),
        Err(Missing(why)) => {
            if in_ci() {
                panic!(
                    "PostgreSQL is required under CI=true but {why}; install the Debian package `postgresql` (.ci/run does)"
                );
            }
            static TOLD: std::sync::Once = std::sync::Once::new();
            TOLD.call_once(|| {
                loud(&format!(
                    "skipped: no PostgreSQL ({why}); every test here that needs it passes without running; install the Debian package `postgresql`"
                ))
            });
            None
        }
    }
}

/// Writes `what` to the real stderr, past the test harness's capture: a skip must show
/// even when the test passes.
pub fn loud(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!! {what} !!!\n");
}

/// A fresh, empty database (`t_<n>`) in the test cluster, or `None` when the test is to be
/// skipped (see [`cluster`]).
pub fn database() -> Option<TestDb> {
    let c = cluster()?;
    let name = format!("t_{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let admin = c.url("postgres");
    let sql = format!("CREATE DATABASE {name}");
    // On a thread of its own with its own runtime: callable from sync and async tests.
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for CREATE DATABASE");
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot connect to the test cluster: {e}\n{}", c.log())
                    });
                let conn = tokio::spawn(conn);
                client
                    .batch_execute(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                drop(client);
                let _ = conn.await;
            })
        })
        .join()
        .expect("CREATE DATABASE thread")
    });
    Some(TestDb {
        url: c.url(&name),
        name,
    })
}

/// Where the PostgreSQL server binaries are: `SIGNOFF_PG_BINDIR`, the newest
/// `/usr/lib/postgresql/*/bin`, `pg_config --bindir`, or the directory of `initdb` on PATH.
pub fn find_bindir() -> Option<PathBuf> {
    let complete = |d: &Path| ["initdb", "postgres"].iter().all(|b| d.join(b).is_file());
    if let Some(d) = std::env::var_os("SIGNOFF_PG_BINDIR").map(PathBuf::from) {
        return complete(&d).then_some(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| complete(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if complete(&d) {
            return Some(d);
        }
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| complete(d))
}

/// The user the server runs as: this one, or `postgres` when this is root.
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Option<RunAs> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new(SUPERUSER).expect("no NUL in a user name");
    // SAFETY: getpwnam gets a valid C string; the record it returns is read at once, before
    // anything else could call it again on this thread.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        panic!(
            "the tests run as root and PostgreSQL refuses root, but there is no `{SUPERUSER}` user to run it as (the Debian package `postgresql` creates it)"
        );
    }
    // SAFETY: pw is non-null and points at the record getpwnam filled in.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some(RunAs { uid, gid })
}

/// A PostgreSQL command, as the cluster's user, without the test's faked clock: libfaketime
/// in `LD_PRELOAD` must not reach the server (its clock is not the one under test, and it
/// breaks the server's timers).
fn pg_command(bindir: &Path, program: &str, as_user: &Option<RunAs>) -> Command {
    let mut c = Command::new(bindir.join(program));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k == "LD_PRELOAD" || k.starts_with("FAKETIME") || k.starts_with("PG") {
            c.env_remove(&*k);
        }
    }
    c.env("LC_ALL", "C").env("TZ", "UTC");
    if let Some(u) = as_user {
        c.uid(u.uid).gid(u.gid);
    }
    c
}

/// Where the cluster's temp dir goes: `SIGNOFF_PG_TMPDIR`, else `/dev/shm` when it has
/// room (a cluster in memory starts, syncs and is removed in a fraction of the time it
/// takes on disk: removing a few thousand files took seconds), else the temp dir.
fn base_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SIGNOFF_PG_TMPDIR") {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    let path = std::ffi::CString::new("/dev/shm").expect("no NUL");
    // SAFETY: statvfs fills the zeroed struct it is given from a valid C path.
    let free = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut st) == 0)
            .then(|| st.f_bavail.saturating_mul(st.f_frsize))
    };
    if shm.is_dir() && free.is_some_and(|f| f >= 1 << 30) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn start() -> Result<Cluster, Missing> {
    let Some(bindir) = find_bindir() else {
        return Err(Missing(
            "no initdb/postgres in /usr/lib/postgresql/*/bin, pg_config --bindir or PATH".into(),
        ));
    };
    let as_user = run_as();
    let dir = tempfile::Builder::new()
        .prefix("signoff-pg-")
        .tempdir_in(base_dir())
        .expect("a temp dir for the test cluster")
        .keep();
    if let Some(u) = &as_user {
        std::os::unix::fs::chown(&dir, Some(u.uid), Some(u.gid))
            .unwrap_or_else(|e| panic!("chown {} to {SUPERUSER}: {e}", dir.display()));
    }
    let data = dir.join("data");
    let out = pg_command(&bindir, "initdb", &as_user)
        .args([
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ])
        .arg(format!("--username={SUPERUSER}"))
        .arg("-D")
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}/initdb: {e}", bindir.display()));
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        panic!(
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let version = String::from_utf8_lossy(
        &pg_command(&bindir, "postgres", &as_user)
            .arg("--version")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .to_string();
    // A port picked free can be taken before the server binds it: try a few.
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        match spawn_server(&bindir, &data, &dir, port, &as_user) {
            Ok(()) => {
                // SAFETY: `stop` is an `extern "C" fn()` that never unwinds.
                unsafe { libc::atexit(stop) };
                return Ok(Cluster {
                    port,
                    dir,
                    bindir,
                    version,
                });
            }
            Err(why) => last = why,
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    panic!("the test PostgreSQL cluster did not start:\n{last}");
}

/// Starts the server and waits until it accepts connections. The server is spawned from
/// a thread that never ends: its parent-death signal fires when its parent *thread* ends,
/// and a test's thread ends with the test.
fn spawn_server(
    bindir: &Path,
    data: &Path,
    dir: &Path,
    port: u16,
    as_user: &Option<RunAs>,
) -> Result<(), String> {
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    if let Some(u) = as_user {
        let _ = std::os::unix::fs::chown(dir.join("server.log"), Some(u.uid), Some(u.gid));
    }
    let mut cmd = pg_command(bindir, "postgres", as_user);
    cmd.arg("-D")
        .arg(data)
        .arg("-k")
        .arg(dir)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        // Many tests, each with its pools, share the cluster.
        .args(["-c", "max_connections=300"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec. The uid change (done
    // before this hook) clears a parent-death signal, so it is set here, after it.
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may already be gone: then nobody would stop the server.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("pg-cluster".into())
        .spawn(move || {
            let _ = tx.send(cmd.spawn());
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("cannot start the cluster's thread: {e}"))?;
    let mut child = rx
        .recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot run {}/postgres: {e}", bindir.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "postgres exited ({status}) on port {port}:\n{}",
                read_log(dir)
            ));
        }
        // pg_ctl's own test: the postmaster.pid status line says "ready".
        let ready = std::fs::read_to_string(data.join("postmaster.pid"))
            .is_ok_and(|pid| pid.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
        if ready {
            *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = Some(Running {
                child,
                dir: dir.to_path_buf(),
            });
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "postgres did not become ready in 60s on port {port}:\n{}",
                read_log(dir)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_log(dir: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(dir.join("server.log")) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// The `atexit` hook: an immediate shutdown (what `pg_ctl stop -m immediate` sends), a
/// wait for the server (it waits for its own processes first), then the temp dir goes.
extern "C" fn stop() {
    let Ok(mut running) = RUNNING.lock() else {
        return;
    };
    let Some(Running { mut child, dir }) = running.take() else {
        return;
    };
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
