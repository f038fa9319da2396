//! Property tests over every parser that reads outside input: the ingest schema and
//! reader, the sanitizer, the config, keymap and theme files, the filter language, the
//! Gmail message builder, the webhook signature check and the HTTP API's JSON bodies.
//!
//! Each target runs `SIGNOFF_FUZZ_CASES` cases (else `PROPTEST_CASES`, else
//! [`DEFAULT_CASES`], small enough for CI) and prints how many it ran and how long that
//! took. RELIABILITY.md has the command of the full run and its figures. Inputs that once
//! broke something are kept below as plain tests (`regression_*`).
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};

use signoff::actions::{ActionsConfig, Renderer};
use signoff::config::{Flags, load_with};
use signoff::model::{ActionKind, DecisionKind, FieldValues, IngestError, Policy, Request};
use signoff::server::auth::{SignatureRefusal, check_signature, sign};
use signoff::store::{Durability, RenderContext, Store, StoreOptions};
use signoff::text::{sanitize, sanitize_bytes, sanitize_lines};
use signoff::tui::keymap::{Key, Keymap, parse_seq};
use signoff::tui::theme::{ColorMode, Theme, parse_style};

/// Cases per target when neither variable is set: the whole binary stays well under a
/// minute in a debug build on two cores.
const DEFAULT_CASES: u32 = 1_500;

fn cases() -> u32 {
    ["SIGNOFF_FUZZ_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Runs `test` over `cases()` values of `strategy`; a failure is shrunk and reported with
/// the smallest input found.
fn fuzz<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    fuzz_n(name, cases(), strategy, test)
}

fn fuzz_n<S>(name: &str, n: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = ProptestConfig {
        cases: n,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    };
    // A fixed seed unless `SIGNOFF_FUZZ_SEED` names another (a number, or `random`): the
    // test suite is repeatable, a long campaign can roam.
    let seed: u64 = match std::env::var("SIGNOFF_FUZZ_SEED").ok().as_deref() {
        Some("random") => fastrand::u64(..),
        Some(n) => n.trim().parse().unwrap_or(0x5167_6e6f_6666),
        None => 0x5167_6e6f_6666,
    };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &bytes,
        ),
    );
    let ran = std::cell::Cell::new(0u64);
    let started = Instant::now();
    let result = runner.run(&strategy, |v| {
        ran.set(ran.get() + 1);
        test(v)
    });
    eprintln!(
        "fuzz {name}: {} cases in {:.1} s (seed {seed})",
        ran.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Inputs

/// Characters that break parsers and terminals, weighted, with arbitrary ones mixed in.
fn hostile_char() -> impl Strategy<Value = char> {
    let tricky = vec![
        '\u{1b}',
        '\u{1b}',
        '\u{9b}',
        '\u{9d}',
        '\u{90}',
        '\u{9c}',
        '\u{85}',
        '\u{7}',
        '\0',
        '\u{7f}',
        '\u{8}',
        '\u{b}',
        '\u{c}',
        '\r',
        '\n',
        '\t',
        '[',
        ']',
        '\\',
        ';',
        '"',
        '\'',
        '=',
        '#',
        '{',
        '}',
        ',',
        ':',
        '<',
        '>',
        '@',
        ' ',
        '.',
        '-',
        '0',
        '1',
        '9',
        'a',
        'm',
        'P',
        '\u{202e}',
        '\u{2066}',
        '\u{2069}',
        '\u{200b}',
        '\u{feff}',
        '\u{2028}',
        '\u{2029}',
        '\u{e0041}',
        '漢',
        '\u{301}',
        '👩',
        '\u{200d}',
        'é',
        'ש',
    ];
    prop_oneof![
        4 => proptest::sample::select(tricky),
        1 => any::<char>(),
    ]
}

fn hostile_string(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(hostile_char(), 0..max).prop_map(String::from_iter),
        1 => any::<String>(),
        1 => proptest::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter),
    ]
}

/// Arbitrary JSON whose object keys are often the names the schemas use.
fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        3 => proptest::sample::select(keys).prop_map(str::to_string),
        1 => hostile_string(8),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        (-2.0f64..2.0).prop_map(|f| json!(f)),
        proptest::sample::select(keys).prop_map(|s| json!(s)),
        hostile_string(24).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every key of the ingest schema and of the API's bodies.
const SCHEMA_KEYS: &[&str] = &[
    "source",
    "external_id",
    "received_at",
    "correlation_id",
    "raw",
    "ai",
    "channel",
    "from",
    "subject",
    "body",
    "fields",
    "summary",
    "intent",
    "priority",
    "confidence",
    "recommended_next_step",
    "escalation_reason",
    "crm_update_required",
    "human_review_required",
    "missing_info",
    "draft_reply",
    "model",
    "prompt_version",
    "fence",
    "field",
    "value",
    "decision",
    "kind",
    "reason",
    "queue",
    "note",
    "digest",
    "paused",
    "name",
    "role",
    "expires",
    "approve",
    "reject",
    "escalate",
    "revision",
    "edits",
    "reviewer",
    "item",
    "id",
    "ai_missing",
    "type_errors",
];

/// JSON text: serialised values, fragments and plain garbage.
fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => json_value(SCHEMA_KEYS).prop_map(|v| v.to_string()),
        2 => (json_value(SCHEMA_KEYS), any::<prop::sample::Index>(), hostile_string(6)).prop_map(
            |(v, at, junk)| {
                // A valid document with junk spliced in at a character boundary.
                let t = v.to_string();
                let bounds: Vec<usize> = t.char_indices().map(|(i, _)| i).chain([t.len()]).collect();
                let i = bounds[at.index(bounds.len())];
                format!("{}{}{}", &t[..i], junk, &t[i..])
            }
        ),
        1 => hostile_string(64),
    ]
}

/// A request that is valid by construction, with hostile text in every free field.
#[derive(Clone, Debug)]
struct GoodRequest {
    source: String,
    external_id: String,
    received_at: Option<String>,
    correlation_id: Option<String>,
    channel: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    fields: Vec<(String, Value)>,
    summary: Option<String>,
    intent: Option<String>,
    priority: Option<String>,
    confidence: Option<f64>,
    crm: Option<bool>,
    human: Option<bool>,
    missing_info: Vec<String>,
    draft_reply: Option<String>,
}

fn non_blank(max: usize) -> impl Strategy<Value = String> {
    hostile_string(max).prop_filter("a key is never blank", |s| !s.trim().is_empty())
}

fn good_request() -> impl Strategy<Value = GoodRequest> {
    let text = || proptest::option::of(hostile_string(40));
    (
        (non_blank(16), non_blank(24), text(), text(), text(), text()),
        (
            text(),
            text(),
            proptest::collection::vec((hostile_string(8), json_value(SCHEMA_KEYS)), 0..4),
        ),
        (
            text(),
            text(),
            text(),
            proptest::option::of(0.0f64..=1.0),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        (proptest::collection::vec(hostile_string(12), 0..3), text()),
    )
        .prop_map(
            |(
                (source, external_id, received_at, correlation_id, channel, from),
                (subject, body, fields),
                (summary, intent, priority, confidence, crm, human),
                (missing_info, draft_reply),
            )| {
                // Later duplicates of a form field replace earlier ones in a JSON object.
                let mut seen = BTreeMap::new();
                for (k, v) in fields {
                    seen.insert(k, v);
                }
                GoodRequest {
                    source,
                    external_id,
                    received_at,
                    correlation_id,
                    channel,
                    from,
                    subject,
                    body,
                    fields: seen.into_iter().collect(),
                    summary,
                    intent,
                    priority,
                    confidence,
                    crm,
                    human,
                    missing_info,
                    draft_reply,
                }
            },
        )
}

impl GoodRequest {
    fn to_json(&self) -> Value {
        let fields: serde_json::Map<String, Value> = self.fields.iter().cloned().collect();
        json!({
            "source": self.source,
            "external_id": self.external_id,
            "received_at": self.received_at,
            "correlation_id": self.correlation_id,
            "raw": {
                "channel": self.channel, "from": self.from, "subject": self.subject,
                "body": self.body, "fields": fields,
            },
            "ai": {
                "summary": self.summary, "intent": self.intent, "priority": self.priority,
                "confidence": self.confidence, "crm_update_required": self.crm,
                "human_review_required": self.human, "missing_info": self.missing_info,
                "draft_reply": self.draft_reply,
            },
        })
    }
}

// ---------------------------------------------------------------------------------------
// Ingest

#[test]
fn ingest_parser_never_panics_and_refuses_clearly() {
    fuzz("ingest: Request::from_json", json_text(), |text| {
        match Request::from_json(&text) {
            Ok((v, r)) => {
                prop_assert!(v.is_object());
                prop_assert!(!r.source.trim().is_empty() && !r.external_id.trim().is_empty());
                for e in &r.type_errors {
                    prop_assert!(e.contains(": expected "), "{e}");
                }
                // A decision reads only the AI fields: they must be the same ones.
                let ai = Request::triage_from_json(&text);
                prop_assert_eq!(ai.as_ref(), Ok(&r.ai));
            }
            Err(e) => {
                let clear = match &e {
                    IngestError::NotJson(m) => !m.is_empty(),
                    IngestError::NotAnObject(t) => !t.is_empty(),
                    IngestError::MissingKey(k) => ["source", "external_id"].contains(k),
                    IngestError::BadKey { field, found } => {
                        ["source", "external_id"].contains(field) && !found.is_empty()
                    }
                };
                prop_assert!(clear, "{e:?}");
            }
        }
        Ok(())
    });
}

#[test]
fn ingest_good_requests_round_trip() {
    fuzz("ingest: good input round-trips", good_request(), |g| {
        let text = g.to_json().to_string();
        let (_, r) = Request::from_json(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&r.source, &g.source);
        prop_assert_eq!(&r.external_id, &g.external_id);
        prop_assert_eq!(&r.received_at, &g.received_at);
        prop_assert_eq!(&r.correlation_id, &g.correlation_id);
        prop_assert_eq!(&r.raw.channel, &g.channel);
        prop_assert_eq!(&r.raw.from, &g.from);
        prop_assert_eq!(&r.raw.subject, &g.subject);
        prop_assert_eq!(&r.raw.body, &g.body);
        prop_assert_eq!(&r.raw.fields, &g.fields);
        prop_assert_eq!(&r.ai.summary, &g.summary);
        prop_assert_eq!(&r.ai.intent, &g.intent);
        prop_assert_eq!(&r.ai.priority, &g.priority);
        prop_assert_eq!(r.ai.confidence.value(), g.confidence);
        prop_assert_eq!(r.ai.crm_update_required, g.crm);
        prop_assert_eq!(r.ai.human_review_required, g.human);
        prop_assert_eq!(&r.ai.missing_info, &g.missing_info);
        prop_assert_eq!(&r.ai.draft_reply, &g.draft_reply);
        prop_assert!(r.type_errors.is_empty(), "{:?}", r.type_errors);
        prop_assert!(!r.ai_missing);
        // The typed view travels the API as JSON: it must come back the same.
        let back: Request = serde_json::from_str(&serde_json::to_string(&r).unwrap())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, r);
        Ok(())
    });
}

/// One entry of a generated ingest input.
#[derive(Clone, Debug)]
enum Entry {
    Good(Box<GoodRequest>),
    Bad(String),
}

fn ingest_input() -> impl Strategy<Value = (Vec<Entry>, bool)> {
    let entry = prop_oneof![
        2 => good_request().prop_map(|g| Entry::Good(Box::new(g))),
        1 => json_text().prop_map(|t| Entry::Bad(t.replace(['\n', '\r'], " "))),
    ];
    (proptest::collection::vec(entry, 0..6), any::<bool>())
}

#[test]
fn ingest_reader_takes_good_lines_and_quarantines_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        &dir.path().join("q.db"),
        Arc::new(Policy::default()),
        &StoreOptions {
            durability: Durability::Normal,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let store = RefCell::new(&mut store);
    let serial = std::cell::Cell::new(0u64);
    fuzz(
        "ingest: reader (JSON Lines, arrays, bytes)",
        ingest_input(),
        |(entries, array)| {
            serial.set(serial.get() + 1);
            let mut store = store.borrow_mut();
            // A source of its own per case: every good entry is new.
            let mut lines = Vec::new();
            let mut good = 0u64;
            let mut bad = 0u64;
            for (i, e) in entries.iter().enumerate() {
                match e {
                    Entry::Good(g) => {
                        let mut v = g.to_json();
                        v["source"] = json!(format!("fuzz-{}", serial.get()));
                        v["external_id"] = json!(format!("{i}"));
                        lines.push(v.to_string());
                        good += 1;
                    }
                    Entry::Bad(t) => {
                        // Only entries that are certainly not a request count as bad.
                        match Request::from_json(t) {
                            Ok(_) => continue,
                            Err(_) if t.trim().is_empty() => continue,
                            Err(_) => {}
                        }
                        lines.push(t.clone());
                        bad += 1;
                    }
                }
            }
            let first_good = matches!(entries.first(), Some(Entry::Good(_)));
            let input = if array {
                format!("[{}]", lines.join(",\n"))
            } else {
                lines.join("\n")
            };
            let problems = Rc::new(RefCell::new(Vec::new()));
            let seen = problems.clone();
            let mut ing = signoff::ingest::Ingester::new(&mut store, "fuzz")
                .on_problem(move |p| seen.borrow_mut().push(p.clone()));
            ing.read("fuzz.jsonl", input.as_bytes())
                .map_err(|e| TestCaseError::fail(format!("the reader failed: {e}")))?;
            let report = ing.report;
            drop(ing);
            for p in problems.borrow().iter() {
                prop_assert!(p.line >= 1 && !p.reason.is_empty(), "{p:?}");
            }
            prop_assert_eq!(report.duplicates + report.revised + report.conflicts, 0);
            if !array && first_good {
                // JSON Lines: each line on its own.
                prop_assert_eq!(report.ingested, good, "{:?}", problems.borrow());
                prop_assert_eq!(report.rejected, bad, "{:?}", problems.borrow());
            } else if array && bad == 0 {
                prop_assert_eq!(report.ingested, good);
            } else {
                prop_assert!(report.ingested <= good);
            }
            Ok(())
        },
    );
}

#[test]
fn ingest_reader_survives_arbitrary_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        &dir.path().join("q.db"),
        Arc::new(Policy::default()),
        &StoreOptions {
            durability: Durability::Normal,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let store = RefCell::new(&mut store);
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        json_text().prop_map(String::into_bytes),
        (json_text(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(t, b)| [
            t.into_bytes(),
            b
        ]
        .concat()),
    ];
    fuzz("ingest: reader on arbitrary bytes", bytes, |b| {
        let mut store = store.borrow_mut();
        let mut ing = signoff::ingest::Ingester::new(&mut store, "fuzz");
        ing.read("<stdin>", b.as_slice())
            .map_err(|e| TestCaseError::fail(format!("the reader failed: {e}")))?;
        let r = ing.report;
        let taken = r.ingested + r.duplicates + r.revised + r.rejected + r.conflicts;
        // Anything but blanks and an empty array is an entry or a problem.
        let empty_array =
            serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&b).is_ok_and(|v| v.is_empty());
        // Lines of only Unicode white space (U+0085, U+2028, …) are blank lines too.
        let blank = std::str::from_utf8(&b)
            .is_ok_and(|t| t.trim_start_matches('\u{feff}').trim().is_empty());
        if !blank && !empty_array {
            prop_assert!(taken >= 1, "{:?}: nothing taken, nothing refused", b);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Sanitizer

/// What a terminal might act on: C0 and C1 controls, DEL, and the invisible characters the
/// sanitizer promises to mark (bidi controls, zero-width, BOM, line separators).
fn terminal_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

fn assert_safe(out: &str, input: &dyn Debug) -> Result<(), TestCaseError> {
    if let Some(c) = out.chars().find(|&c| terminal_unsafe(c)) {
        return Err(TestCaseError::fail(format!(
            "{c:?} came out: {input:?} -> {out:?}"
        )));
    }
    Ok(())
}

#[test]
fn sanitizer_lets_no_control_out_of_strings() {
    fuzz("sanitizer: strings", hostile_string(96), |s| {
        assert_safe(&sanitize(&s), &s)?;
        for line in sanitize_lines(&s) {
            assert_safe(&line, &s)?;
        }
        assert_safe(&signoff::text::truncate(&sanitize(&s), 20), &s)?;
        Ok(())
    });
}

#[test]
fn sanitizer_lets_no_control_out_of_bytes() {
    let byte = prop_oneof![
        3 => proptest::sample::select(vec![
            0x1b, 0x9b, 0x9c, 0x9d, 0x90, 0x07, 0x00, 0x7f, 0x0d, 0x0a, b'[', b']', b'\\',
            b';', b'1', b'm', 0xc2, 0xe2, 0x80, 0x81, 0xae, 0xa8, 0xef, 0xbb, 0xbf, 0xf3,
            0xa0, 0xff, 0xfe,
        ]),
        1 => any::<u8>(),
    ];
    fuzz(
        "sanitizer: bytes (8-bit CSI, C1, invalid UTF-8)",
        proptest::collection::vec(byte, 0..128),
        |b| {
            let out = sanitize_bytes(&b);
            assert_safe(&out, &b)?;
            // And the output is inert: a second pass changes nothing.
            let again = sanitize(&out);
            prop_assert_eq!(again.as_ref(), out.as_str());
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Config, keymap, theme

/// A config file: real keys and random ones, values of every TOML type, hostile text, and
/// sometimes a splice of garbage.
fn config_text() -> impl Strategy<Value = String> {
    let keys = signoff::config::leaf_keys(
        &toml::Value::try_from(signoff::config::Config::default()).unwrap(),
    );
    let key = prop_oneof![
        4 => proptest::sample::select(keys),
        1 => "[a-z_]{1,8}(\\.[a-z_]{1,8}){0,2}",
        1 => "ui\\.keymap\\.[a-z_]{1,10}",
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0i64..100_000).prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        hostile_string(16).prop_map(|s| toml::Value::String(s).to_string()),
        proptest::sample::select(vec![
            "\"dark\"",
            "\"none\"",
            "\"auto\"",
            "\"sandbox\"",
            "\"live\"",
            "\"full\"",
            "\"normal\"",
            "[]",
            "[\"a\"]",
            "[\"ctrl-x\", \"g g\"]",
            "{}",
            "\"env:HOME\"",
            "\"file:/nonexistent\"",
            "\"\"",
            "0",
            "-1",
            "1e400",
            "nan",
            "inf",
            "[1, \"a\"]",
            "\"urgent\"",
            "\"0.0.0.0:0\"",
            "\"unix:/x\"",
            "\"https://h\"",
        ])
        .prop_map(str::to_string),
    ];
    let line = (key, value).prop_map(|(k, v)| format!("{k} = {v}"));
    let doc = proptest::collection::vec(
        prop_oneof![
            6 => line,
            1 => proptest::sample::select(vec![
                "[store]", "[policy]", "[ui]", "[ui.keymap]", "[actions.gmail]", "[server]",
                "[[ui.views]]", "[log]", "# comment", "", "[policy.sla]", "[reviewer]",
            ]).prop_map(str::to_string),
            1 => hostile_string(20),
        ],
        0..10,
    )
    .prop_map(|lines| lines.join("\n"));
    prop_oneof![
        4 => doc,
        1 => hostile_string(64),
    ]
}

#[test]
fn config_parser_never_panics_and_errors_say_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let env = vec![(
        "SIGNOFF_SYSTEM_CONFIG".to_string(),
        dir.path().join("none.toml").display().to_string(),
    )];
    fuzz("config: file", config_text(), |text| {
        std::fs::write(&path, &text).unwrap();
        let flags = Flags {
            config: Some(path.clone()),
            ..Flags::default()
        };
        if let Err(e) = load_with(&flags, &env) {
            prop_assert_eq!(&e.origin, &path.display().to_string(), "{:?}", e);
            prop_assert!(!e.message.trim().is_empty(), "{e:?}");
            prop_assert!(
                e.line.is_some() || e.key.is_some(),
                "no line, no key: {e:?}"
            );
            if let Some(l) = e.line {
                prop_assert!(l >= 1 && l <= text.lines().count().max(1), "{e:?}");
            }
        }
        Ok(())
    });
}

#[test]
fn keymap_overrides_never_panic_and_problems_name_the_action() {
    let names: Vec<String> = signoff::tui::action::Cmd::ALL
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let name = prop_oneof![
        4 => proptest::sample::select(names),
        1 => hostile_string(10),
    ];
    let key = prop_oneof![
        proptest::sample::select(vec![
            "a",
            "G",
            "?",
            "ctrl-d",
            "ctrl-c",
            "c-x",
            "alt-x",
            "shift-tab",
            "enter",
            "esc",
            "pgdn",
            "f5",
            "f13",
            "f0",
            "space",
            "g g",
            "g g g",
            "ctrl-",
            "ctrl-ctrl-a",
            "shift-a",
            "",
            " ",
            "C-",
            "F1",
            "ctrl+shift+up",
            "j",
            "k",
            "q",
            "/",
            ":",
        ])
        .prop_map(str::to_string),
        hostile_string(8),
    ];
    let overrides =
        proptest::collection::btree_map(name, proptest::collection::vec(key.clone(), 0..3), 0..6);
    fuzz("keymap: overrides", (overrides, key), |(over, one)| {
        let (_, issues) = Keymap::build(&over);
        for (at, message) in &issues {
            prop_assert!(at.starts_with("ui.keymap."), "{at}: {message}");
            prop_assert!(!message.is_empty());
        }
        if let Ok(k) = Key::parse(&one) {
            // What the help shows for a character key reads back as the same key.
            if let crossterm::event::KeyCode::Char(c) = k.code
                && !c.is_whitespace()
            {
                prop_assert_eq!(Key::parse(&k.to_string()), Ok(k), "{:?}", one);
            }
        }
        let _ = parse_seq(&one);
        Ok(())
    });
}

fn theme_text() -> impl Strategy<Value = String> {
    let style_key = prop_oneof![
        4 => proptest::sample::select(vec![
            "base", "muted", "accent", "selection", "warn", "error", "priority_0",
            "priority_4", "conf_low", "badge_alert",
        ]).prop_map(str::to_string),
        1 => "[a-z_]{1,10}",
    ];
    let word = prop_oneof![
        4 => proptest::sample::select(vec![
            "red", "bright-blue", "dark_gray", "on", "bold", "reverse", "#ff0000", "#FFF",
            "#gggggg", "#+12345", "255", "256", "-1", "black", "white", "reset", "italic",
        ]).prop_map(str::to_string),
        1 => hostile_string(8),
    ];
    let style = proptest::collection::vec(word, 0..4).prop_map(|w| w.join(" "));
    let line = (style_key, style).prop_map(|(k, v)| format!("{k} = {}", toml::Value::String(v)));
    let inherits = proptest::option::of(proptest::sample::select(vec![
        "dark", "light", "mono", "fuzz", "nothing", "",
    ]));
    (
        inherits,
        proptest::collection::vec(line, 0..6),
        hostile_string(6),
        any::<bool>(),
    )
        .prop_map(|(inh, lines, junk, spoil)| {
            let mut t = String::new();
            if let Some(i) = inh {
                t.push_str(&format!("inherits = \"{i}\"\n"));
            }
            t.push_str("[styles]\n");
            t.push_str(&lines.join("\n"));
            if spoil {
                t.push_str(&junk);
            }
            t
        })
}

#[test]
fn theme_files_never_panic_and_errors_name_the_theme() {
    let dir = tempfile::tempdir().unwrap();
    let modes = [
        ColorMode::None,
        ColorMode::Ansi16,
        ColorMode::Ansi256,
        ColorMode::TrueColor,
    ];
    fuzz(
        "theme: files and styles",
        (theme_text(), 0usize..4, hostile_string(16)),
        |(text, mode, spec)| {
            std::fs::write(dir.path().join("fuzz.toml"), &text).unwrap();
            if let Err(e) = Theme::load("fuzz", Some(dir.path()), modes[mode]) {
                prop_assert!(
                    e.contains("fuzz") || e.contains("theme '"),
                    "error names no theme: {e}"
                );
            }
            let _ = parse_style(&spec);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Filter language

#[test]
fn filter_parser_never_panics_and_keeps_values_in_range() {
    let token = prop_oneof![
        proptest::sample::select(vec![
            "p:high",
            "p:",
            "p:,,",
            "priority:urgent,high",
            "c<0.6",
            "c<=1",
            "c>=0",
            "c>1.5",
            "c<nan",
            "c<inf",
            "c<-0",
            "c>=1e-400",
            "age>2h",
            "age<30m",
            "age>",
            "age>-5m",
            "age>99999999999999999999d",
            "age>9223372036854775807d",
            "age<1x",
            "esc",
            "hidden",
            "intent:",
            "i:billing",
            "x:y",
            "a@b:c",
            "ümlaut:x",
            "ABC:def",
        ])
        .prop_map(str::to_string),
        hostile_string(10),
    ];
    fuzz(
        "filter: parse",
        proptest::collection::vec(token, 0..6).prop_map(|t| t.join(" ")),
        |line| {
            match signoff::tui::filter::parse(&line) {
                Ok(f) => {
                    for c in [f.conf_below, f.conf_at_least].into_iter().flatten() {
                        prop_assert!((0.0..=1.0).contains(&c), "{line:?}: {c}");
                    }
                    for a in [f.older_than, f.newer_than].into_iter().flatten() {
                        prop_assert!(a >= 0, "{line:?}: {a}");
                    }
                }
                Err(e) => prop_assert!(!e.is_empty()),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Gmail message builder

#[derive(Clone, Debug)]
struct MailInput {
    request: GoodRequest,
    message_id: Option<String>,
    thread_id: Option<String>,
    from_cfg: String,
    subject_tpl: String,
}

fn address_like() -> impl Strategy<Value = String> {
    prop_oneof![
        (hostile_string(10), "[a-z]{1,6}", "[a-z]{1,6}\\.[a-z]{2,3}")
            .prop_map(|(name, user, host)| format!("{name} <{user}@{host}>")),
        ("[a-z]{1,6}", hostile_string(6), "[a-z]{1,6}")
            .prop_map(|(user, junk, host)| format!("{user}{junk}@{host}.example")),
        hostile_string(24),
    ]
}

fn mail_input() -> impl Strategy<Value = MailInput> {
    (
        good_request(),
        proptest::option::of(address_like()),
        proptest::option::of(hostile_string(20)),
        proptest::option::of(hostile_string(12)),
        prop_oneof![Just(String::new()), address_like()],
        prop_oneof![
            3 => Just(String::new()),
            1 => Just("{{ request.subject }}".to_string()),
            1 => Just("Re: {{ fields.summary }}".to_string()),
        ],
        hostile_string(40),
    )
        .prop_map(
            |(mut request, from, message_id, thread_id, from_cfg, subject_tpl, reply)| {
                request.from = from;
                request.draft_reply = Some(format!("Hello,\n{reply}"));
                MailInput {
                    request,
                    message_id,
                    thread_id,
                    from_cfg,
                    subject_tpl,
                }
            },
        )
}

/// The header block of a raw message: (name, value) in order, folded lines joined.
fn headers_of(raw: &str) -> Result<Vec<(String, String)>, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .map_err(|e| e.to_string())?;
    let msg = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    let (head, _) = msg.split_once("\r\n\r\n").ok_or("no blank line")?;
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if let Some(rest) = line.strip_prefix(' ') {
            let last = out.last_mut().ok_or("a continuation line first")?;
            last.1.push(' ');
            last.1.push_str(rest);
            continue;
        }
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("not a header line: {line:?}"))?;
        out.push((name.to_string(), value.to_string()));
    }
    if head.contains(['\r', '\n']) && head.split("\r\n").any(|l| l.contains(['\r', '\n'])) {
        return Err("a bare CR or LF in the header block".into());
    }
    Ok(out)
}

/// Renders the Gmail action for `m`; `None` when the config itself is refused.
fn render_mail(
    m: &MailInput,
    policy: &Arc<Policy>,
) -> Option<Result<signoff::actions::payload::Rendered, String>> {
    let mut cfg = ActionsConfig::default();
    cfg.gmail.from = m.from_cfg.clone();
    cfg.gmail.subject = m.subject_tpl.clone();
    let renderer = Renderer::new(&cfg, policy.clone()).ok()?;
    let mut v = m.request.to_json();
    if let Some(id) = &m.message_id {
        v["raw"]["fields"]["message_id"] = json!(id);
    }
    if let Some(t) = &m.thread_id {
        v["raw"]["fields"]["gmail_thread_id"] = json!(t);
    }
    let request = Request::from_value(&v).ok()?;
    let fields = FieldValues::from_ai(&request.ai);
    let ctx = RenderContext {
        request_id: 1,
        decision_id: 1,
        action: ActionKind::Gmail,
        idempotency_key: "k-1",
        request: &request,
        fields: &fields,
        decision: &DecisionKind::Approve,
        note: None,
        reviewer: "ada",
    };
    Some(renderer.render_action(&ctx))
}

#[test]
fn gmail_builder_never_lets_request_text_write_a_header() {
    let policy = Arc::new(Policy::default());
    fuzz("gmail: message builder", mail_input(), |m| {
        let rendered = match render_mail(&m, &policy) {
            None => return Ok(()),
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                prop_assert!(!e.is_empty());
                return Ok(());
            }
        };
        let create = &rendered.requests[0];
        let raw = create.body["message"]["raw"]
            .as_str()
            .ok_or_else(|| TestCaseError::fail("no raw"))?;
        let headers = headers_of(raw).map_err(TestCaseError::fail)?;
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let mut want = Vec::new();
        if !m.from_cfg.trim().is_empty() {
            want.push("From");
        }
        want.extend(["To", "Subject", "Date", "Message-ID"]);
        if names.contains(&"In-Reply-To") {
            want.extend(["In-Reply-To", "References"]);
        }
        want.extend([
            "X-Signoff-Key",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
        ]);
        prop_assert_eq!(&names, &want);
        for (name, value) in &headers {
            prop_assert!(
                !value.chars().any(|c| c.is_control() && c != '\t'),
                "{name}: {value:?}"
            );
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Webhook signatures

#[derive(Clone, Debug)]
enum Tamper {
    None,
    Body(prop::sample::Index, u8),
    Timestamp(i64),
    Secret(String),
    SignatureChar(prop::sample::Index, char),
    Signature(String),
    TimestampText(String),
}

#[test]
fn webhook_signature_passes_only_when_exact() {
    let now = 1_800_000_000i64;
    let tamper = prop_oneof![
        2 => Just(Tamper::None),
        1 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, x)| Tamper::Body(i, x)),
        1 => prop_oneof![any::<i64>(), -400i64..400].prop_map(Tamper::Timestamp),
        1 => hostile_string(12).prop_map(Tamper::Secret),
        1 => (any::<prop::sample::Index>(), any::<char>())
            .prop_map(|(i, c)| Tamper::SignatureChar(i, c)),
        1 => hostile_string(80).prop_map(Tamper::Signature),
        1 => prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            hostile_string(12),
            Just(format!("+{now}")),
            Just(format!(" {now} ")),
            Just(format!("0{now}")),
            Just(i64::MIN.to_string()),
            Just((i64::MIN + now).to_string()),
        ]
        .prop_map(Tamper::TimestampText),
    ];
    let input = (
        hostile_string(24),
        -300i64..=300,
        proptest::collection::vec(any::<u8>(), 0..64),
        tamper,
    );
    fuzz(
        "webhook: HMAC over timestamp.body",
        input,
        |(secret, skew, body, tamper)| {
            let ts = (now + skew).to_string();
            let sig = sign(&secret, &ts, &body);
            let (mut secret2, mut ts2, mut sig2, mut body2) =
                (secret.clone(), ts.clone(), sig.clone(), body.clone());
            match &tamper {
                Tamper::None => {}
                Tamper::Body(i, x) if !body2.is_empty() => {
                    let i = i.index(body2.len());
                    body2[i] ^= x;
                }
                Tamper::Body(_, x) => body2.push(*x),
                Tamper::Timestamp(t) => ts2 = t.to_string(),
                Tamper::Secret(s) => {
                    secret2 = s.clone();
                    sig2 = sign(&secret2, &ts, &body);
                }
                Tamper::SignatureChar(i, c) => {
                    let mut chars: Vec<char> = sig2.chars().collect();
                    let i = i.index(chars.len());
                    chars[i] = *c;
                    sig2 = chars.into_iter().collect();
                }
                Tamper::Signature(s) => sig2 = s.clone(),
                Tamper::TimestampText(t) => ts2 = t.clone(),
            }
            let result = check_signature(Some(&secret), &ts2, &sig2, &body2, now);
            // The one way through: the same secret, the same timestamp (its text, give or
            // take surrounding blanks, which the check trims before the MAC too), the same
            // body and that exact signature (hex digits in either case).
            let exact = secret2 == secret
                && ts2.trim() == ts
                && body2 == body
                && sig2.starts_with("sha256=")
                && sig2.to_ascii_lowercase() == sig
                && sig2.is_ascii();
            if exact {
                prop_assert_eq!(result, Ok(()), "{:?}", tamper);
            } else {
                prop_assert!(result.is_err(), "accepted a tampered request: {:?}", tamper);
            }
            // With no secret configured nothing passes.
            prop_assert_eq!(
                check_signature(None, &ts2, &sig2, &body2, now),
                Err(SignatureRefusal::NoSecret)
            );
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// The API's JSON bodies

/// Deserialises `v` as `T`; what is accepted must serialise and read back the same.
fn round_trips<T>(v: &Value) -> Result<(), TestCaseError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + Debug,
{
    if let Ok(t) = serde_json::from_value::<T>(v.clone()) {
        let again = serde_json::to_value(&t).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: T = serde_json::from_value(again.clone()).map_err(|e| {
            TestCaseError::fail(format!(
                "{} accepted {v} but not its own {again}: {e}",
                std::any::type_name::<T>()
            ))
        })?;
        prop_assert_eq!(back, t);
    }
    let _ = serde_json::from_str::<T>(&v.to_string());
    Ok(())
}

#[test]
fn api_bodies_never_panic_and_round_trip() {
    use signoff::queue::wire::*;
    use signoff::queue::{Decision, Edit, Filter, ListQuery};
    fuzz("api: JSON bodies", json_value(SCHEMA_KEYS), |v| {
        round_trips::<FenceBody>(&v)?;
        round_trips::<EditBody>(&v)?;
        round_trips::<DecideBody>(&v)?;
        round_trips::<PreviewBody>(&v)?;
        round_trips::<DigestBody>(&v)?;
        round_trips::<OutcomeBody>(&v)?;
        round_trips::<KillSwitch>(&v)?;
        round_trips::<NewToken>(&v)?;
        round_trips::<Decision>(&v)?;
        round_trips::<Edit>(&v)?;
        round_trips::<ListQuery>(&v)?;
        round_trips::<Filter>(&v)?;
        round_trips::<Request>(&v)?;
        round_trips::<signoff::model::Triage>(&v)?;
        round_trips::<FieldValues>(&v)?;
        round_trips::<DecisionKind>(&v)?;
        if let Some(text) = v.as_str() {
            let _ = signoff::server::auth::parse_age(text);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Inputs the targets above once found failing, kept as plain tests.

#[test]
fn regression_a_top_level_unknown_key_is_named_with_its_line() {
    // Another table's error hid the unknown key from the file's own check; the error
    // left from the merge named neither a line nor a key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "b = 0\nactions.monday.columns.priority.value = \"\"").unwrap();
    let flags = Flags {
        config: Some(path.clone()),
        ..Flags::default()
    };
    let env = vec![(
        "SIGNOFF_SYSTEM_CONFIG".to_string(),
        dir.path().join("none.toml").display().to_string(),
    )];
    let e = load_with(&flags, &env).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("b"), "{e}");
    assert_eq!(e.line, Some(1), "{e}");
}

#[test]
fn regression_a_message_id_with_a_control_character_is_refused() {
    // `<ESC>` went into In-Reply-To and References as it was.
    let policy = Arc::new(Policy::default());
    let request = GoodRequest {
        source: "s".into(),
        external_id: "e".into(),
        received_at: None,
        correlation_id: None,
        channel: None,
        from: Some(" <a@a.aa>".into()),
        subject: Some("Invoice \u{1b}[31m due".into()),
        body: None,
        fields: Vec::new(),
        summary: None,
        intent: None,
        priority: None,
        confidence: None,
        crm: None,
        human: None,
        missing_info: Vec::new(),
        draft_reply: Some("Hello,\n".into()),
    };
    for id in ["\u{1b}", "\u{7f}", "¡\u{1}¡", "a b"] {
        let m = MailInput {
            request: request.clone(),
            message_id: Some(id.into()),
            thread_id: None,
            from_cfg: String::new(),
            subject_tpl: String::new(),
        };
        let e = render_mail(&m, &policy).unwrap().unwrap_err();
        assert!(e.contains("Message-ID"), "{id:?}: {e}");
    }
    // The subject's ESC is encoded, never written raw.
    let m = MailInput {
        request,
        message_id: Some("abc@mail.example".into()),
        thread_id: None,
        from_cfg: String::new(),
        subject_tpl: String::new(),
    };
    let r = render_mail(&m, &policy).unwrap().unwrap();
    let headers = headers_of(r.requests[0].body["message"]["raw"].as_str().unwrap()).unwrap();
    let subject = &headers.iter().find(|(n, _)| n == "Subject").unwrap().1;
    assert!(subject.starts_with("=?UTF-8?B?"), "{subject}");
}

#[test]
fn regression_a_timestamp_near_i64_min_is_stale_not_a_panic() {
    // `now - ts` overflowed (a panic in debug builds, a wrap into the window in release).
    let now = 1_800_000_000i64;
    for ts in [i64::MIN, i64::MIN + now, i64::MAX] {
        let t = ts.to_string();
        let sig = sign("s", &t, b"{}");
        assert!(matches!(
            check_signature(Some("s"), &t, &sig, b"{}", now),
            Err(SignatureRefusal::Stale { .. })
        ));
    }
}

#[test]
fn regression_numbers_read_back_to_the_same_f64() {
    // serde_json's default float reading could be one bit off: a confidence or a form value
    // changed its last digit between the payload and the typed view sent over the API.
    let text = r#"{"source":"s","external_id":"e","raw":{"fields":{"n":[6.248421043803506e-299]}},"ai":{"confidence":0.9265949289860816}}"#;
    let (_, r) = Request::from_json(text).unwrap();
    assert_eq!(r.ai.confidence.value(), Some(0.9265949289860816));
    assert_eq!(r.raw.fields[0].1, json!([6.248421043803506e-299]));
    let back: Request = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn regression_a_line_of_unicode_white_space_is_a_blank_line() {
    // C2 85 (U+0085) alone: neither an entry nor a problem, as a blank line is.
    let dir = tempfile::tempdir().unwrap();
    let mut store = common::open(&dir.path().join("q.db"));
    let mut ing = signoff::ingest::Ingester::new(&mut store, "fuzz");
    ing.read("<stdin>", &b"\xc2\x85"[..]).unwrap();
    assert_eq!(ing.report, signoff::ingest::Report::default());
}
