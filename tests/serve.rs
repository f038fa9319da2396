//! `signoff serve` end to end: the real binary serving a real Unix socket and 127.0.0.1
//! TCP; clients are the real binary with `--remote`, raw HTTP, and the library's
//! RemoteQueue. Nothing here asserts how long anything took: waits have generous
//! deadlines and only what arrives is checked.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::run;
use serde_json::{Value, json};

/// How long a test waits for something that should happen promptly, before failing.
const DEADLINE: Duration = Duration::from_secs(20);

/// The binary with an isolated config and data dir under `dir/name`, and no system config.
fn signoff_in(dir: &Path, name: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_signoff"));
    c.env("SIGNOFF_CONFIG_DIR", dir.join(name).join("config"))
        .env("SIGNOFF_DATA_DIR", dir.join(name).join("data"))
        .env("SIGNOFF_SYSTEM_CONFIG", dir.join("no-system-config.toml"))
        .env_remove("SIGNOFF_DB")
        .env_remove("SIGNOFF_REVIEWER")
        .env_remove("SIGNOFF_CONFIG")
        .env_remove("SIGNOFF_REMOTE")
        .env_remove("SIGNOFF_TOKEN")
        .env_remove("XDG_RUNTIME_DIR");
    c
}

struct Server {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
    /// `http://127.0.0.1:PORT`.
    http: String,
}

impl Server {
    /// Starts `signoff serve` on `dir/s.sock` and 127.0.0.1 (a free port, or `port`) with
    /// `config` as the server's config file.
    fn start(dir: &Path, config: &str) -> Server {
        Server::start_on(dir, config, 0)
    }

    fn start_on(dir: &Path, config: &str, port: u16) -> Server {
        Server::start_with(dir, config, &["--bind", &format!("127.0.0.1:{port}")])
    }

    fn start_with(dir: &Path, config: &str, args: &[&str]) -> Server {
        let cfg_dir = dir.join("server").join("config");
        std::fs::create_dir_all(&cfg_dir).unwrap();
        std::fs::write(cfg_dir.join("config.toml"), config).unwrap();
        let socket = dir.join("s.sock");
        let mut child = signoff_in(dir, "server")
            .args(["serve", "--socket"])
            .arg(&socket)
            .args(args)
            .env("SIGNOFF_WEBHOOK_SECRET", "whsec-test")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start signoff serve");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = rx
            .recv_timeout(DEADLINE)
            .expect("signoff serve prints where it listens");
        assert!(
            first.starts_with("signoff serve: listening on unix:"),
            "{first}"
        );
        assert!(first.contains("database "), "{first}");
        let http = first
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(|w| w.trim_end_matches(';').to_string())
            .expect("the TCP address is printed");
        Server {
            child: Some(child),
            dir: dir.to_path_buf(),
            socket,
            http,
        }
    }

    fn port(&self) -> u16 {
        self.http.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn unix(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// `signoff token add NAME --role ROLE` on the server's own database (as its admin
    /// would on the host); returns the token.
    fn token(&self, name: &str, role: &str, extra: &[&str]) -> String {
        let (code, out, err) = run(signoff_in(&self.dir, "server")
            .args(["token", "add", name, "--role", role])
            .args(extra));
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    }

    /// Stops the server with SIGTERM and waits for it; returns its exit code.
    fn stop(&mut self) -> i32 {
        let Some(mut child) = self.child.take() else {
            return 0;
        };
        // SAFETY: kill with a pid we spawned.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let status = child.wait().expect("wait for the server");
        status.code().unwrap_or(-1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client of the server: `signoff --remote URL ...` with its own empty config.
fn client(dir: &Path, remote: &str, token: Option<&str>) -> Command {
    let mut c = signoff_in(dir, "client");
    c.arg("--remote").arg(remote);
    if let Some(t) = token {
        c.env("SIGNOFF_TOKEN", t);
    }
    c
}

/// A raw HTTP/1.1 exchange (Connection: close) over the socket or TCP.
enum To<'a> {
    Unix(&'a Path),
    Tcp(u16),
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn http(to: &To, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut raw = Vec::new();
    let mut exchange = |s: &mut dyn ReadWrite| {
        s.write_all(req.as_bytes()).unwrap();
        // The server may answer (413) before reading all of a large body.
        let _ = s.write_all(body);
        let _ = s.read_to_end(&mut raw);
    };
    match to {
        To::Unix(p) => exchange(&mut UnixStream::connect(p).expect("connect to the socket")),
        To::Tcp(port) => {
            exchange(&mut std::net::TcpStream::connect(("127.0.0.1", *port)).expect("connect"))
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Follows `/v1/events` on a raw connection; each change token arrives on the channel.
fn follow_events(to: To, token: Option<&str>) -> mpsc::Receiver<u64> {
    let mut req =
        "GET /v1/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n".to_string();
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    let mut stream: Box<dyn ReadWrite + Send> = match to {
        To::Unix(p) => Box::new(UnixStream::connect(p).unwrap()),
        To::Tcp(port) => Box::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()),
    };
    stream.write_all(req.as_bytes()).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            // Chunked framing lines and headers carry no `data:`; events do.
            if let Some(data) = line.trim().strip_prefix("data:") {
                let v: Value = serde_json::from_str(data.trim()).unwrap();
                let t: u64 = v["token"].as_str().unwrap().parse().unwrap();
                if tx.send(t).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for an event whose token differs from `than`.
fn next_change(rx: &mpsc::Receiver<u64>, than: u64, what: &str) -> u64 {
    let start = Instant::now();
    loop {
        let left = DEADLINE.saturating_sub(start.elapsed());
        let t = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no change event after {what}"));
        if t != than {
            return t;
        }
    }
}

fn access_for_me(role: &str) -> String {
    format!(
        "[server.access]\nusers = {{ {} = \"{role}\" }}\n",
        signoff::server::current_user()
    )
}

fn requests_file(dir: &Path, exts: &[&str]) -> PathBuf {
    let lines: Vec<String> = exts
        .iter()
        .map(|e| common::request(e, json!({})).to_string())
        .collect();
    let f = dir.join(format!("requests-{}.jsonl", exts.join("-")));
    std::fs::write(&f, lines.join("\n")).unwrap();
    f
}

#[test]
fn consoles_over_the_socket_and_tcp_claim_edit_approve_and_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &access_for_me("admin"));
    let carol = server.token("carol", "reviewer", &[]);
    let unix = server.unix();
    let d = dir.path();

    // Requests come in through the server.
    let file = requests_file(d, &["a-1", "a-2"]);
    let (code, out, err) = run(client(d, &unix, None).arg("ingest").arg(&file));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        "ingested 2, duplicates 0, revised 0, rejected 0"
    );

    // A console on the socket follows the events.
    let events = follow_events(To::Unix(&server.socket), None);
    let t0 = events
        .recv_timeout(DEADLINE)
        .expect("the current token at once");

    // carol, over TCP with her token, claims the first item...
    let (code, out, err) = run(client(d, &server.http, Some(&carol)).args(["claim", "--json"]));
    assert_eq!(code, 0, "{err}");
    let claim: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(claim["reviewer"], "carol", "the name is the token's");
    let (id, fence) = (
        claim["id"].as_i64().unwrap(),
        claim["fence"].as_i64().unwrap(),
    );
    let t1 = next_change(&events, t0, "carol's claim");

    // ...which the socket user cannot take from her.
    let (code, _, err) = run(client(d, &unix, None).args(["decide", &id.to_string(), "--approve"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("being reviewed by carol"), "{err}");

    // carol edits and approves under her claim.
    let (code, out, err) = run(client(d, &server.http, Some(&carol)).args([
        "decide",
        &id.to_string(),
        "--approve",
        "--set",
        "summary=Wants a demo next week",
        "--fence",
        &fence.to_string(),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("item {id} approved")), "{out}");
    let t2 = next_change(&events, t1, "carol's decision");

    // The socket user sees it, with carol's name on the edit and the decision.
    let (code, out, err) = run(client(d, &unix, None).args(["show", &id.to_string(), "--json"]));
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["state"], "approved");
    assert_eq!(shown["decision"]["reviewer"], "carol");
    assert_eq!(shown["edits"][0]["reviewer"], "carol");
    assert_eq!(shown["fields"]["summary"], "Wants a demo next week");

    // The socket user claims, edits and approves the other; carol's events see it.
    let tcp_events = follow_events(To::Tcp(server.port()), Some(&carol));
    let c0 = tcp_events.recv_timeout(DEADLINE).unwrap();
    let (code, out, err) = run(client(d, &unix, None).args(["claim", "--json"]));
    assert_eq!(code, 0, "{err}");
    let claim: Value = serde_json::from_str(&out).unwrap();
    let me = signoff::server::current_user();
    assert_eq!(
        claim["reviewer"],
        me.as_str(),
        "the name is the socket peer's user"
    );
    let other = claim["id"].as_i64().unwrap();
    assert_ne!(other, id);
    let c1 = next_change(&tcp_events, c0, "the socket user's claim");
    let (code, _, err) = run(client(d, &unix, None).args([
        "decide",
        &other.to_string(),
        "--approve",
        "--set",
        "priority=high",
        "--fence",
        &claim["fence"].to_string(),
    ]));
    assert_eq!(code, 0, "{err}");
    next_change(&tcp_events, c1, "the socket user's decision");
    next_change(&events, t2, "the socket user's decision");

    let (code, out, _) =
        run(client(d, &server.http, Some(&carol)).args(["list", "--state", "approved", "--json"]));
    assert_eq!(code, 0);
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);

    assert_eq!(server.stop(), 0, "a clean stop on SIGTERM");
    assert!(
        !server.socket.exists(),
        "the socket file goes with the server"
    );
}

#[test]
fn a_user_not_in_server_access_is_refused_on_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "[server.access]\nusers = { surely-not-this-user = \"reviewer\" }\n",
    );
    let a = http(&To::Unix(&server.socket), "GET", "/v1/counts", &[], b"");
    assert_eq!(a.status, 403, "{}", a.body);
    let e = a.json();
    assert_eq!(e["code"], "forbidden");
    let me = signoff::server::current_user();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{me} is not in [server.access]")),
        "{e}"
    );
    // Health needs nobody.
    let h = http(&To::Unix(&server.socket), "GET", "/healthz", &[], b"");
    assert_eq!(h.status, 200);
    // The CLI says so too.
    let (code, _, err) = run(client(dir.path(), &server.unix(), None).args(["list"]));
    assert_eq!(code, 1);
    assert!(err.contains("not in [server.access]"), "{err}");
}

#[test]
fn tokens_missing_wrong_revoked_or_expired_are_401_and_roles_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &access_for_me("admin"));
    let tcp = To::Tcp(server.port());
    let counts = |headers: &[(&str, &str)]| http(&tcp, "GET", "/v1/counts", headers, b"");

    let a = counts(&[]);
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert!(a.body.contains("bearer token"), "{}", a.body);
    let a = counts(&[("Authorization", "Bearer signoff_not-a-real-token")]);
    assert_eq!(a.status, 401, "{}", a.body);

    let watcher = server.token("wendy", "observer", &[]);
    let bearer = format!("Bearer {watcher}");
    assert_eq!(counts(&[("Authorization", &bearer)]).status, 200);
    // Only the hash is stored.
    let db = std::fs::read(dir.path().join("server/data/queue.db")).unwrap();
    assert!(
        !db.windows(watcher.len()).any(|w| w == watcher.as_bytes()),
        "the token itself is not in the database"
    );

    // An observer reads but does not decide.
    let file = requests_file(dir.path(), &["t-1"]);
    let (code, _, err) = run(client(dir.path(), &server.unix(), None)
        .arg("ingest")
        .arg(&file));
    assert_eq!(code, 0, "{err}");
    let a = http(
        &tcp,
        "POST",
        "/v1/items/1/claim",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let e = a.json();
    assert_eq!(e["code"], "forbidden");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("wendy has the observer role"),
        "{e}"
    );
    let (code, _, err) =
        run(client(dir.path(), &server.http, Some(&watcher)).args(["decide", "1", "--approve"]));
    assert_eq!(code, 1);
    assert!(err.contains("observer role"), "{err}");
    // ...nor flip the kill switch (admin).
    let a = http(
        &tcp,
        "PUT",
        "/v1/kill_switch",
        &[("Authorization", &bearer)],
        br#"{"paused":true}"#,
    );
    assert_eq!(a.status, 403);

    // Revoked: 401 at once.
    let (code, _, err) = run(signoff_in(dir.path(), "server").args(["token", "revoke", "wendy"]));
    assert_eq!(code, 0, "{err}");
    let start = Instant::now();
    loop {
        let a = counts(&[("Authorization", &bearer)]);
        if a.status == 401 {
            assert!(a.body.contains("'wendy' was revoked"), "{}", a.body);
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the revoked token still works");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Expired: a token that lives a second stops working.
    let brief = server.token("brief", "reviewer", &["--expires", "1s"]);
    let bearer = format!("Bearer {brief}");
    let start = Instant::now();
    loop {
        let a = counts(&[("Authorization", &bearer)]);
        if a.status == 401 {
            assert!(a.body.contains("'brief' has expired"), "{}", a.body);
            break;
        }
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(start.elapsed() < DEADLINE, "the token never expired");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Tokens over the API: admins only; the list never shows a token.
    let (code, out, err) =
        run(client(dir.path(), &server.unix(), None).args(["token", "list", "--json"]));
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!out.contains(&brief) && !out.contains("sha256"), "{out}");
}

/// A signed webhook request's headers.
fn signed(body: &[u8], secret: &str, at: i64) -> (String, String) {
    let ts = at.to_string();
    (ts.clone(), signoff::server::sign(secret, &ts, body))
}

/// The webhook's `timestamp`: the server checks it against its own clock (the system's in
/// these tests), so it is signed from that clock; only the distance between them matters.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn the_webhook_checks_its_signature_and_replays_idempotent_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &format!(
            "{}\n[server]\nwebhook_secret = \"env:SIGNOFF_WEBHOOK_SECRET\"\n",
            access_for_me("admin")
        )
        .replace("[server.access]\nusers", "[server.access]\nusers"),
    );
    let tcp = To::Tcp(server.port());
    let good = common::request("w-1", json!({})).to_string();
    let body = format!(
        "{good}\n{{\"source\": \"x\"\n{}\n",
        common::request("w-2", json!({}))
    );
    let post = |body: &[u8], ts: &str, sig: &str, key: Option<&str>| {
        let mut h = vec![
            ("Content-Type", "application/json"),
            ("X-Signoff-Timestamp", ts),
            ("X-Signoff-Signature", sig),
        ];
        if let Some(k) = key {
            h.push(("Idempotency-Key", k));
        }
        http(&tcp, "POST", "/v1/ingest", &h, body)
    };

    // A wrong secret, a changed body, a stale timestamp: 401, nothing taken.
    let (ts, sig) = signed(body.as_bytes(), "not-the-secret", now_secs());
    let a = post(body.as_bytes(), &ts, &sig, None);
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert!(a.body.contains("signature does not match"), "{}", a.body);
    let (ts, sig) = signed(b"{}", "whsec-test", now_secs());
    assert_eq!(post(body.as_bytes(), &ts, &sig, None).status, 401);
    let (ts, sig) = signed(body.as_bytes(), "whsec-test", now_secs() - 3600);
    let a = post(body.as_bytes(), &ts, &sig, None);
    assert_eq!(a.status, 401);
    assert!(a.body.contains("from the server's clock"), "{}", a.body);

    // Signed right: the good lines are taken, the bad one reported with its line.
    let (ts, sig) = signed(body.as_bytes(), "whsec-test", now_secs());
    let a = post(body.as_bytes(), &ts, &sig, Some("batch-1"));
    assert_eq!(a.status, 200, "{}", a.body);
    let first = a.json();
    assert_eq!(first["ingested"], 2);
    assert_eq!(first["rejected"], 1);
    assert_eq!(first["problems"][0]["line"], 2);
    assert!(
        first["problems"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not valid JSON")
    );
    assert_eq!(
        first["summary"],
        "ingested 2, duplicates 0, revised 0, rejected 1"
    );

    // The same key and body: the first answer again (not "duplicates 2").
    let (ts, sig) = signed(body.as_bytes(), "whsec-test", now_secs());
    let a = post(body.as_bytes(), &ts, &sig, Some("batch-1"));
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), first);
    assert_eq!(a.header("idempotent-replayed"), Some("true"));
    // The same key with another body: 422.
    let other = common::request("w-3", json!({})).to_string();
    let (ts, sig) = signed(other.as_bytes(), "whsec-test", now_secs());
    let a = post(other.as_bytes(), &ts, &sig, Some("batch-1"));
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.json()["code"], "idempotency_key_reused");

    // The bad line is in quarantine; the good ones are in the queue.
    let (code, out, _) = run(client(dir.path(), &server.unix(), None).args(["list", "--json"]));
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let db = common::open(&dir.path().join("server/data/queue.db"));
    assert_eq!(common::count(&db, "SELECT count(*) FROM quarantine"), 1);

    // An ingest token works too; a reviewer token does not.
    let feeder = server.token("upstream", "ingest", &[]);
    let a = http(
        &tcp,
        "POST",
        "/v1/ingest",
        &[("Authorization", &format!("Bearer {feeder}"))],
        other.as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["ingested"], 1);
    let a = http(
        &tcp,
        "GET",
        "/v1/counts",
        &[("Authorization", &format!("Bearer {feeder}"))],
        b"",
    );
    assert_eq!(a.status, 403, "an ingest token reads nothing");
}

#[test]
fn bodies_too_large_or_malformed_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &format!(
            "[server]\nmax_body_bytes = 2048\n\n{}",
            access_for_me("admin")
        ),
    );
    let sock = To::Unix(&server.socket);
    let big = format!(
        "{{\"states\": [], \"filter\": {{\"text\": \"{}\"}}}}",
        "x".repeat(64 * 1024)
    );
    let a = http(&sock, "POST", "/v1/items/search", &[], big.as_bytes());
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.json()["code"], "payload_too_large");

    let a = http(
        &sock,
        "POST",
        "/v1/items/search",
        &[],
        b"{\n  \"limit\": 5,\n  \"sort\": }",
    );
    assert_eq!(a.status, 400, "{}", a.body);
    let e = a.json();
    assert_eq!(e["code"], "bad_request");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.starts_with("malformed JSON") && m.contains("line 3 column"),
        "{m}"
    );

    let a = http(
        &sock,
        "POST",
        "/v1/items/search",
        &[],
        br#"{"limit": "many"}"#,
    );
    assert_eq!(a.status, 400);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("line 1 column"),
        "{}",
        a.body
    );

    // axum's own refusals come in the same shape.
    let a = http(&sock, "GET", "/v1/items/not-a-number", &[], b"");
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["code"], "bad_request");
    let a = http(&sock, "GET", "/v1/nowhere", &[], b"");
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (404, Some("no_route"))
    );
    let a = http(&sock, "GET", "/v1/items/99", &[], b"");
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[test]
fn every_route_in_openapi_is_served_and_every_served_route_is_documented() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &access_for_me("admin"));
    let sock = To::Unix(&server.socket);
    let a = http(&sock, "GET", "/openapi.json", &[], b"");
    assert_eq!(a.status, 200);
    let doc = a.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    // The router is built only from documented handlers (`signoff::server::api` registers
    // each route with its documentation in one call). Here: every documented operation
    // answers as a route, and every method a documented path does not list is refused.
    for (path, ops) in paths {
        let concrete = path.replace("{id}", "1").replace("{name}", "nobody");
        let ops = ops.as_object().unwrap();
        for method in ["get", "post", "put", "delete", "patch"] {
            if concrete == "/v1/events" && method == "get" {
                continue;
            }
            let a = http(&sock, &method.to_uppercase(), &concrete, &[], b"{}");
            let code = serde_json::from_str::<Value>(&a.body)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_owned));
            if ops.contains_key(method) {
                assert!(
                    a.status != 405 && code.as_deref() != Some("no_route"),
                    "{method} {path} is documented but not served: {} {}",
                    a.status,
                    a.body
                );
            } else {
                assert_eq!(
                    a.status, 405,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
    for route in [
        "/v1/items/search",
        "/v1/items/{id}/decide",
        "/v1/claims/next",
        "/v1/events",
        "/v1/ingest",
        "/v1/tokens",
        "/v1/kill_switch",
        "/v1/stats",
        "/healthz",
    ] {
        assert!(paths.contains_key(route), "{route} is documented");
    }
}

#[test]
fn a_client_reconnects_when_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = access_for_me("admin");
    let mut server = Server::start(dir.path(), &config);
    let port = server.port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = signoff::queue::RemoteTarget::parse(&server.unix()).unwrap();
    let q = signoff::queue::RemoteQueue::new(target, Default::default()).unwrap();
    use signoff::queue::{Queue, QueueError};
    rt.block_on(async {
        let mut feed = q.changes().expect("a remote queue pushes changes");
        let wait = |feed: &mut signoff::queue::Changes, ok: bool| {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            let mut feed = feed.clone();
            async move {
                loop {
                    if feed.borrow_and_update().is_ok() == ok {
                        return feed.borrow().clone();
                    }
                    tokio::time::timeout_at(deadline, feed.changed())
                        .await
                        .expect("the feed changes")
                        .unwrap();
                }
            }
        };
        wait(&mut feed, true).await.unwrap();
        assert_eq!(q.counts().await.unwrap().pending, 0);

        assert_eq!(server.stop(), 0);
        let down = wait(&mut feed, false).await.unwrap_err();
        assert!(matches!(down, QueueError::Unavailable(_)), "{down:?}");
        let e = q.counts().await.unwrap_err();
        assert!(matches!(e, QueueError::Unavailable(_)), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("cannot reach the queue server at unix:"),
            "{e}"
        );

        let _server = Server::start_on(dir.path(), &config, port);
        wait(&mut feed, true).await.unwrap();
        assert_eq!(q.counts().await.unwrap().pending, 0, "calls work again");
    });
}

#[test]
fn a_system_config_remote_lets_reviewers_just_type_signoff() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &access_for_me("reviewer"));
    let system = dir.path().join("system.toml");
    std::fs::write(
        &system,
        format!(
            "remote = \"{}\"\n[policy]\nlease_seconds = 300\n",
            server.unix()
        ),
    )
    .unwrap();
    let plain = |args: &[&str]| {
        run(signoff_in(dir.path(), "reviewer")
            .env("SIGNOFF_SYSTEM_CONFIG", &system)
            .args(args))
    };
    let file = requests_file(dir.path(), &["s-1"]);
    // A reviewer may not ingest.
    let (code, _, err) = plain(&["ingest", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ingest needs the ingest or admin role"),
        "{err}"
    );
    let (code, _, err) = plain(&["claim"]);
    assert_eq!(code, 0, "{err}");
    // The user's own file is read over the system one; --db means a local database.
    let (code, out, _) = plain(&["config", "print"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("file {}", system.display())), "{out}");
    let (code, out, err) = plain(&[
        "--db",
        dir.path().join("local.db").to_str().unwrap(),
        "list",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[]");
    // Pause is an admin's.
    let (code, _, err) = plain(&["pause"]);
    assert_eq!(code, 1);
    assert!(err.contains("admin role"), "{err}");
}

#[test]
fn the_socket_and_the_database_are_kept_to_their_users() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &access_for_me("admin"));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&server.socket), 0o660);
    let db = dir.path().join("server/data/queue.db");
    assert_eq!(mode(&db), 0o600, "the database is the service user's alone");
    let wal = dir.path().join("server/data/queue.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }

    // A second server on the same socket is refused while the first answers.
    let (code, _, err) = run(signoff_in(dir.path(), "server")
        .args(["serve", "--socket"])
        .arg(&server.socket));
    assert_eq!(code, 1);
    assert!(err.contains("another server is listening"), "{err}");
    assert_eq!(server.stop(), 0);

    // A socket file left by a server that is gone is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&server.socket).unwrap();
    drop(stale);
    assert!(server.socket.exists());
    let server = Server::start(dir.path(), &access_for_me("admin"));
    assert_eq!(
        http(&To::Unix(&server.socket), "GET", "/healthz", &[], b"").status,
        200
    );

    // Something that is not a socket is never removed.
    let not_socket = dir.path().join("file.sock");
    std::fs::write(&not_socket, "keep me").unwrap();
    let (code, _, err) = run(signoff_in(dir.path(), "server")
        .args(["serve", "--socket"])
        .arg(&not_socket));
    assert_eq!(code, 1);
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&not_socket).unwrap(), "keep me");
}

#[test]
fn plain_http_off_loopback_is_refused_unless_a_proxy_terminates_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) =
        run(signoff_in(dir.path(), "server").args(["serve", "--no-socket", "--bind", "0.0.0.0:0"]));
    assert_eq!(code, 1);
    assert!(err.contains("refusing plain HTTP on 0.0.0.0"), "{err}");
    assert!(err.contains("--behind-proxy"), "{err}");
}

#[test]
fn callers_past_their_rate_are_told_when_to_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &format!(
            "[server]\nrate_per_second = 0.01\nrate_burst = 3\n\n{}",
            access_for_me("admin")
        ),
    );
    let sock = To::Unix(&server.socket);
    for _ in 0..3 {
        assert_eq!(http(&sock, "GET", "/v1/counts", &[], b"").status, 200);
    }
    let a = http(&sock, "GET", "/v1/counts", &[], b"");
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.json()["code"], "rate_limited");
    assert!(
        a.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );
    // Health is never limited.
    assert_eq!(http(&sock, "GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn tls_on_tcp_with_a_certificate_the_client_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ca = dir.path().join("ca.pem");
    // A private CA and a server certificate for 127.0.0.1 signed by it.
    let d = dir.path().to_str().unwrap().to_string();
    std::fs::write(
        dir.path().join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: Vec<Vec<String>> = vec![
        [
            &["req", "-x509"][..],
            &ec,
            &["-days", "1", "-subj", "/CN=signoff-test-ca", "-keyout"],
        ]
        .concat()
        .iter()
        .map(|s| s.to_string())
        .chain([format!("{d}/ca.key"), "-out".into(), format!("{d}/ca.pem")])
        .collect(),
        [&["req"][..], &ec, &["-subj", "/CN=127.0.0.1", "-keyout"]]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .chain([
                format!("{d}/key.pem"),
                "-out".into(),
                format!("{d}/leaf.csr"),
            ])
            .collect(),
        ["x509", "-req", "-days", "1", "-in"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                format!("{d}/leaf.csr"),
                "-CA".into(),
                format!("{d}/ca.pem"),
                "-CAkey".into(),
                format!("{d}/ca.key"),
                "-CAcreateserial".into(),
                "-extfile".into(),
                format!("{d}/leaf.ext"),
                "-out".into(),
                format!("{d}/cert.pem"),
            ])
            .collect(),
    ];
    for step in steps {
        let made = Command::new("openssl").args(&step).output();
        if !made.is_ok_and(|o| o.status.success()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "openssl is required in CI (it makes the TLS test's certificates)"
            );
            eprintln!("openssl cannot make test certificates here: skipping the TLS test");
            return;
        }
    }
    let server = Server::start_with(
        dir.path(),
        &access_for_me("admin"),
        &[
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        server.http.starts_with("https://127.0.0.1:"),
        "{}",
        server.http
    );
    let carol = server.token("carol", "reviewer", &[]);
    let client_cfg = dir.path().join("client/config");
    std::fs::create_dir_all(&client_cfg).unwrap();
    std::fs::write(
        client_cfg.join("config.toml"),
        format!("remote_ca = \"{}\"\n", ca.display()),
    )
    .unwrap();
    let (code, out, err) =
        run(client(dir.path(), &server.http, Some(&carol)).args(["list", "--json"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[]");
    // Without trusting the certificate the client refuses the server.
    std::fs::write(client_cfg.join("config.toml"), "").unwrap();
    let (code, _, err) = run(client(dir.path(), &server.http, Some(&carol)).args(["list"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("offline") || err.contains("certificate"),
        "{err}"
    );
}

#[test]
fn a_decision_on_a_revision_that_moved_on_is_refused_with_who_and_what() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &access_for_me("admin"));
    let d = dir.path();
    let unix = server.unix();
    let file = requests_file(d, &["r-1"]);
    assert_eq!(run(client(d, &unix, None).arg("ingest").arg(&file)).0, 0);
    let carol = server.token("carol", "reviewer", &[]);
    let (code, out, err) = run(client(d, &server.http, Some(&carol)).args(["claim", "--json"]));
    assert_eq!(code, 0, "{err}");
    let claim: Value = serde_json::from_str(&out).unwrap();
    let fence = claim["fence"].to_string();

    // A new revision arrives while carol reviews revision 1.
    let v2 = dir.path().join("v2.jsonl");
    std::fs::write(
        &v2,
        common::request("r-1", json!({"ai": {"summary": "Wants a demo, urgently"}})).to_string(),
    )
    .unwrap();
    let (code, out, err) = run(client(d, &unix, None).arg("ingest").arg(&v2));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revised 1"), "{out}");

    let (code, _, err) = run(client(d, &server.http, Some(&carol)).args([
        "decide",
        "1",
        "--approve",
        "--fence",
        &fence,
        "--revision",
        "1",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("revision"), "{err}");
    // On the wire: 409, the stable code and the error's fields.
    let body = json!({"fence": claim["fence"], "decision": {"kind": {"kind": "approve"}, "note": null, "sets": [], "revision": 1}});
    let a = http(
        &To::Tcp(server.port()),
        "POST",
        "/v1/items/1/decide",
        &[("Authorization", &format!("Bearer {carol}"))],
        body.to_string().as_bytes(),
    );
    assert_eq!(a.status, 409, "{}", a.body);
    let e = a.json();
    assert_eq!(e["code"], "stale_revision");
    assert_eq!(e["detail"], json!({"id": 1, "shown": 1, "current": 2}));

    // Someone else's claim is named in the refusal.
    let (code, _, err) = run(client(d, &unix, None).args(["decide", "1", "--approve"]));
    assert_eq!(code, 1);
    assert!(err.contains("carol"), "{err}");
}

/// A console in tmux (skipped without tmux, as in tests/tui_e2e.rs).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path, shell_cmd: &str) -> Option<Tmux> {
        Tmux::start_named(dir, shell_cmd, "console")
    }

    /// One tmux server per console (`tag` tells them apart within one test process).
    fn start_named(dir: &Path, shell_cmd: &str, tag: &str) -> Option<Tmux> {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(std::env::var_os("CI").is_none(), "tmux is required in CI");
            eprintln!("tmux not found: skipping the remote console test");
            return None;
        }
        let t = Tmux {
            socket: format!("signoff-serve-{}-{tag}", std::process::id()),
        };
        let status = Command::new("tmux")
            .args([
                "-L",
                &t.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "110",
                "-y",
                "30",
                "-s",
                "e2e",
                "-c",
            ])
            .arg(dir)
            .arg(shell_cmd)
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux starts");
        assert!(status.success());
        Some(t)
    }

    fn capture(&self) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "e2e"])
            .output()
            .expect("capture");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let s = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "e2e"])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(s.success());
    }

    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "waited for {what}; the screen is:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn a_console_over_the_socket_follows_changes_rides_out_a_restart_and_approves() {
    let dir = tempfile::tempdir().unwrap();
    let config = access_for_me("admin");
    let mut server = Server::start(dir.path(), &config);
    let port = server.port();
    let d = dir.path();
    let first = requests_file(d, &["c-1"]);
    assert_eq!(
        run(client(d, &server.unix(), None).arg("ingest").arg(&first)).0,
        0
    );

    let q = |p: &Path| format!("'{}'", p.display());
    let cmd = format!(
        "env SIGNOFF_CONFIG_DIR={} SIGNOFF_DATA_DIR={} SIGNOFF_SYSTEM_CONFIG={} {} --remote unix:{} 2>{}; echo $? > {}; sleep 30",
        q(&d.join("console/config")),
        q(&d.join("console/data")),
        q(&d.join("none.toml")),
        q(Path::new(env!("CARGO_BIN_EXE_signoff"))),
        server.socket.display(),
        q(&d.join("console-stderr.txt")),
        q(&d.join("console-status.txt")),
    );
    let Some(t) = Tmux::start(d, &cmd) else {
        return;
    };
    let me = signoff::server::current_user();
    t.wait("the queue", |s| s.contains("Queue · 1") && s.contains(&me));

    // Another client's ingest shows up without a key pressed (the event stream).
    let second = requests_file(d, &["c-2"]);
    assert_eq!(
        run(client(d, &server.unix(), None).arg("ingest").arg(&second)).0,
        0
    );
    t.wait("the new item", |s| s.contains("Queue · 2"));

    // The server goes away and comes back; the console says so and carries on.
    assert_eq!(server.stop(), 0);
    t.wait("offline", |s| s.contains("offline — retrying"));
    let server = Server::start_on(d, &config, port);
    t.wait("back online", |s| s.contains("back online"));

    t.keys(&["a"]);
    t.wait("the approval", |s| s.contains("approved #"));
    t.keys(&["q"]);
    let start = Instant::now();
    while !d.join("console-status.txt").exists() {
        assert!(start.elapsed() < DEADLINE, "the console did not quit");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out, _) =
        run(client(d, &server.unix(), None).args(["list", "--state", "approved", "--json"]));
    assert_eq!(code, 0);
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{out}");
    let id = rows[0]["id"].as_i64().unwrap();
    let (_, out, _) =
        run(client(d, &server.unix(), None).args(["show", &id.to_string(), "--json"]));
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["decision"]["reviewer"], me.as_str());
}

/// The shell command that runs a console with its own empty config against `remote`.
fn console_cmd(d: &Path, name: &str, remote: &str, token: Option<&str>) -> String {
    let q = |p: &Path| format!("'{}'", p.display());
    format!(
        "env SIGNOFF_CONFIG_DIR={} SIGNOFF_DATA_DIR={} SIGNOFF_SYSTEM_CONFIG={} SIGNOFF_TOKEN={} {} --remote {remote} 2>{}; sleep 30",
        q(&d.join(name).join("config")),
        q(&d.join(name).join("data")),
        q(&d.join("none.toml")),
        token.unwrap_or(""),
        q(Path::new(env!("CARGO_BIN_EXE_signoff"))),
        q(&d.join(format!("{name}-stderr.txt"))),
    )
}

/// Two consoles, one on the socket (the kernel names its user) and one over TCP (a token
/// names carol): carol claims, edits the priority with the picker and approves; the socket
/// console sees the item leave its queue by the event stream, with no key pressed.
#[test]
fn a_console_over_tcp_claims_edits_and_approves_and_a_socket_console_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &access_for_me("admin"));
    let carol = server.token("carol", "reviewer", &[]);
    let d = dir.path();
    let file = requests_file(d, &["t-1", "t-2"]);
    assert_eq!(
        run(client(d, &server.unix(), None).arg("ingest").arg(&file)).0,
        0
    );

    let Some(sock) = Tmux::start_named(d, &console_cmd(d, "sock", &server.unix(), None), "sock")
    else {
        return;
    };
    let Some(tcp) = Tmux::start_named(d, &console_cmd(d, "tcp", &server.http, Some(&carol)), "tcp")
    else {
        return;
    };
    sock.wait("the socket console's queue", |s| s.contains("Queue · 2"));
    tcp.wait("carol's queue", |s| {
        s.contains("Queue · 2") && s.contains("carol")
    });

    // Carol opens the first item and edits its priority: two steps of the picker, one edit.
    tcp.keys(&["Enter"]);
    tcp.wait("carol's claim", |s| s.contains("is yours while it is open"));
    sock.wait("the claim seen from the socket", |s| {
        s.contains("1 in review")
    });
    tcp.keys(&["e"]);
    tcp.wait("the edit form", |s| s.contains("editing"));
    tcp.keys(&["Tab", "Tab"]);
    tcp.keys(&["Right"]);
    tcp.keys(&["Right"]);
    tcp.keys(&["Escape"]);
    tcp.wait("the form closed on the edited item", |s| {
        s.contains("Priority✎") && s.contains("esc back") && !s.contains("next field")
    });
    tcp.keys(&["a"]);
    tcp.wait("carol's approval", |s| s.contains("approved #"));
    sock.wait("the approval seen from the socket", |s| {
        s.contains("Queue · 1")
    });

    let (code, out, _) =
        run(client(d, &server.unix(), None).args(["list", "--state", "approved", "--json"]));
    assert_eq!(code, 0);
    let rows: Value = serde_json::from_str(&out).unwrap();
    let id = rows[0]["id"].as_i64().expect("one approved item");
    let (_, out, _) =
        run(client(d, &server.unix(), None).args(["show", &id.to_string(), "--json"]));
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["decision"]["reviewer"], "carol");
    let edits = shown["edits"].as_array().expect("edits");
    assert_eq!(edits.len(), 1, "one edit for the picker: {edits:?}");
    assert_eq!(edits[0]["field"], "priority");
    assert_eq!(edits[0]["reviewer"], "carol");
    sock.keys(&["q"]);
    tcp.keys(&["q"]);
}

#[test]
fn metrics_count_requests_streams_and_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &access_for_me("admin"));
    let sock = To::Unix(&server.socket);
    let file = requests_file(dir.path(), &["m-1"]);
    assert_eq!(
        run(client(dir.path(), &server.unix(), None)
            .arg("ingest")
            .arg(&file))
        .0,
        0
    );
    assert_eq!(http(&sock, "GET", "/v1/items/1", &[], b"").status, 200);
    let events = follow_events(To::Unix(&server.socket), None);
    events.recv_timeout(DEADLINE).unwrap();

    let a = http(&sock, "GET", "/metrics", &[], b"");
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = a.body;
    for line in [
        "signoff_up 1",
        "signoff_http_requests_total{method=\"GET\",route=\"/v1/items/{id}\",status=\"200\"} 1",
        "signoff_queue_items{state=\"pending\"} 1",
        "signoff_event_streams 1",
        "signoff_actions_paused 0",
    ] {
        assert!(m.lines().any(|l| l == line), "no `{line}` in\n{m}");
    }
    assert!(
        m.contains("# TYPE signoff_http_request_duration_seconds summary"),
        "{m}"
    );

    // A token for the scraper; none is 401.
    let scraper = server.token("prometheus", "observer", &[]);
    let tcp = To::Tcp(server.port());
    assert_eq!(http(&tcp, "GET", "/metrics", &[], b"").status, 401);
    let a = http(
        &tcp,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {scraper}"))],
        b"",
    );
    assert_eq!(a.status, 200);
}

#[test]
fn ingest_through_the_server_reports_what_the_local_command_reports() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &access_for_me("admin"));
    let lines = [
        common::request("i-1", json!({})).to_string(),
        "{\"source\": \"webform\", \"external_id\": \"broken\", \"ai\": {".to_string(),
        "[1, 2]".to_string(),
        common::request("i-1", json!({})).to_string(),
        common::request("i-2", json!({"ai": {"intent": "refund"}})).to_string(),
    ];
    let file = dir.path().join("mixed.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let remote = run(client(dir.path(), &server.unix(), None)
        .arg("ingest")
        .arg(&file));
    let local = run(signoff_in(dir.path(), "local").arg("ingest").arg(&file));
    assert_eq!(remote.0, 3, "some lines were rejected: {}", remote.2);
    assert_eq!(remote, local, "exit code, report and problems are the same");
    assert_eq!(
        remote.1.trim(),
        "ingested 2, duplicates 1, revised 0, rejected 2"
    );
    let f = file.display().to_string();
    assert!(
        remote.2.starts_with(&format!("{f}:2: not valid JSON")),
        "{}",
        remote.2
    );
}
