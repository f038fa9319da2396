//! Reading requests to ingest: a JSON object, a JSON array or JSON Lines, streamed from a
//! file or stdin (a 1 GB file is never held in memory), written to the store in batched
//! transactions. A bad entry is reported as `FILE:LINE: reason` and kept in quarantine
//! with its raw text; it never stops the good ones.
//!
//! Two threads: this one reads entries and writes them to the store; a parser thread turns
//! their text into items (JSON parse, validation, hashing) and frees the items the store
//! is done with. When the parser thread falls behind (it shares the second core with the
//! store's checkpoint thread), this one parses the next chunk itself instead of waiting.
//! Entries and problems keep their input order.
use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, Read};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::model::{Policy, Request};
use crate::store::{IngestItem, IngestOutcome, Store, StoreError};

/// One input kept in quarantine: its origin, its line (when known), why it was not
/// queued, and its raw text.
pub type Quarantined = (String, Option<u64>, String, String);

/// Where the ingester writes: a batch of parsed items in one transaction (one outcome per
/// item, in order) and the entries that could not be queued. The reading, parsing,
/// validation and batching are the ingester's, the same for every backend.
pub trait IngestSink {
    /// The policy items are derived under (the one the writes enforce).
    fn policy(&self) -> Arc<Policy>;
    fn ingest_batch(
        &mut self,
        items: &[IngestItem],
        actor: &str,
    ) -> Result<Vec<IngestOutcome>, StoreError>;
    fn quarantine(&mut self, entries: &[Quarantined]) -> Result<(), StoreError>;
}

impl IngestSink for Store {
    fn policy(&self) -> Arc<Policy> {
        self.policy_arc()
    }
    fn ingest_batch(
        &mut self,
        items: &[IngestItem],
        actor: &str,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        Store::ingest_batch(self, items, actor)
    }
    fn quarantine(&mut self, entries: &[Quarantined]) -> Result<(), StoreError> {
        Store::quarantine(self, entries)
    }
}

/// Items per transaction.
const BATCH_ITEMS: usize = 2_000;
/// Payload bytes per transaction (a few huge bodies flush early).
const BATCH_BYTES: usize = 16 << 20;
/// Entries handed to the parser thread at a time.
const PARSE_CHUNK: usize = 256;
/// Entry bytes handed to the parser thread at a time (huge entries go alone).
const PARSE_CHUNK_BYTES: usize = 4 << 20;
/// Chunks out with the parser thread; past that this thread parses too (and at most
/// twice as many chunks wait in all, which bounds memory).
const IN_FLIGHT: usize = 4;

/// One entry for the parser thread: its text, or a problem the reader already found
/// (so problems stay in input order).
enum Raw {
    Entry(u64, String),
    Problem(u64, String, String),
}

/// What the parser made of one entry.
enum Parsed {
    Item(u64, Box<IngestItem>),
    Problem(u64, String, String),
}

struct Chunk {
    origin: Arc<str>,
    entries: Vec<Raw>,
    /// Items the store is done with: freed on the parser thread.
    garbage: Vec<IngestItem>,
}

struct ParsedChunk {
    origin: Arc<str>,
    results: Vec<Parsed>,
}

/// The parser thread and its two channels.
struct Parser {
    to: Option<SyncSender<Chunk>>,
    from: Receiver<ParsedChunk>,
    thread: Option<JoinHandle<()>>,
    /// Chunks in input order: out with the parser thread, or parsed here.
    slots: std::collections::VecDeque<Slot>,
    /// Chunks out with the parser thread.
    out: usize,
    policy: Arc<crate::model::Policy>,
}

enum Slot {
    Thread,
    Ready(ParsedChunk),
}

impl Parser {
    fn start(policy: Arc<crate::model::Policy>) -> Parser {
        let (to, chunks) = std::sync::mpsc::sync_channel::<Chunk>(IN_FLIGHT);
        let (done, from) = std::sync::mpsc::channel::<ParsedChunk>();
        let mine = policy.clone();
        let thread = std::thread::Builder::new()
            .name("signoff-parse".into())
            .spawn(move || {
                for chunk in chunks {
                    drop(chunk.garbage);
                    if done
                        .send(parse_chunk(chunk.origin, chunk.entries, &policy))
                        .is_err()
                    {
                        return;
                    }
                }
            })
            .ok();
        Parser {
            to: Some(to),
            from,
            thread,
            slots: Default::default(),
            out: 0,
            policy: mine,
        }
    }
}

impl Drop for Parser {
    fn drop(&mut self) {
        self.to = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses a chunk of entries, in order (on the parser thread, or on the reading thread
/// when the parser is behind or could not start).
fn parse_chunk(
    origin: Arc<str>,
    entries: Vec<Raw>,
    policy: &Arc<crate::model::Policy>,
) -> ParsedChunk {
    let results = entries
        .into_iter()
        .map(|raw| parse(&origin, raw, policy))
        .collect();
    ParsedChunk { origin, results }
}

/// Parses one entry and derives its columns under `policy`.
fn parse(origin: &str, raw: Raw, policy: &Arc<crate::model::Policy>) -> Parsed {
    match raw {
        Raw::Problem(line, reason, text) => Parsed::Problem(line, reason, text),
        Raw::Entry(line, text) => {
            let value: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => return Parsed::Problem(line, format!("not valid JSON: {e}"), text),
            };
            match Request::from_value(&value) {
                Ok(request) => {
                    let mut item =
                        IngestItem::new(text, value, request, format!("{origin}:{line}"));
                    item.derive_with(policy);
                    Parsed::Item(line, Box::new(item))
                }
                Err(e) => Parsed::Problem(line, e.to_string(), text),
            }
        }
    }
}

/// Totals of one ingest run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub ingested: u64,
    pub duplicates: u64,
    pub revised: u64,
    pub rejected: u64,
    pub conflicts: u64,
}

impl Report {
    /// Everything was taken.
    pub fn clean(&self) -> bool {
        self.rejected == 0 && self.conflicts == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ingested {}, duplicates {}, revised {}, rejected {}",
            self.ingested, self.duplicates, self.revised, self.rejected
        )?;
        if self.conflicts > 0 {
            write!(f, ", conflicts {}", self.conflicts)?;
        }
        Ok(())
    }
}

/// One entry that was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub origin: String,
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.origin, self.line, self.reason)
    }
}

/// Collects entries into batches and writes them to the store (or another sink).
pub struct Ingester<'s> {
    store: &'s mut dyn IngestSink,
    actor: String,
    batch: Vec<IngestItem>,
    /// The line of each batched item.
    lines: Vec<u64>,
    batch_bytes: usize,
    quarantine: Vec<Quarantined>,
    pub report: Report,
    on_problem: Box<dyn FnMut(&Problem) + 's>,
    on_progress: Box<dyn FnMut(u64, u64) + 's>,
    bytes_read: u64,
    entries: u64,
    /// Entries read but not yet handed to the parser, and their input.
    pending: Vec<Raw>,
    pending_bytes: usize,
    pending_origin: Arc<str>,
    /// Items written, waiting to be freed by the parser thread.
    garbage: Vec<IngestItem>,
    parser: Parser,
}

impl<'s> Ingester<'s> {
    /// Also gives the store's connection a page cache large enough for one batch (a
    /// 2,000-item transaction dirties ~12 MB; spilling mid-transaction writes pages twice).
    pub fn new(store: &'s mut Store, actor: &str) -> Ingester<'s> {
        if let Err(e) = store.set_cache_size_mib(32) {
            tracing::warn!(error = %e, "could not enlarge the page cache for ingest");
        }
        Ingester::with_sink(store, actor)
    }

    /// Writes through `sink` instead of a SQLite store.
    pub fn with_sink(sink: &'s mut dyn IngestSink, actor: &str) -> Ingester<'s> {
        let policy = sink.policy();
        Ingester {
            store: sink,
            actor: actor.to_string(),
            batch: Vec::new(),
            lines: Vec::new(),
            batch_bytes: 0,
            quarantine: Vec::new(),
            report: Report::default(),
            on_problem: Box::new(|_| {}),
            on_progress: Box::new(|_, _| {}),
            bytes_read: 0,
            entries: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            pending_origin: Arc::from(""),
            garbage: Vec::new(),
            parser: Parser::start(policy),
        }
    }

    /// Called for every entry not taken.
    pub fn on_problem(mut self, f: impl FnMut(&Problem) + 's) -> Self {
        self.on_problem = Box::new(f);
        self
    }

    /// Called after each batch with (entries seen, bytes read).
    pub fn on_progress(mut self, f: impl FnMut(u64, u64) + 's) -> Self {
        self.on_progress = Box::new(f);
        self
    }

    /// Queues an entry for the parser, in input order.
    fn push(&mut self, origin: &str, raw: Raw) -> Result<(), StoreError> {
        if *self.pending_origin != *origin {
            self.send_pending()?;
            self.pending_origin = Arc::from(origin);
        }
        self.pending_bytes += match &raw {
            Raw::Entry(_, t) | Raw::Problem(_, _, t) => t.len(),
        };
        self.pending.push(raw);
        if self.pending.len() >= PARSE_CHUNK || self.pending_bytes >= PARSE_CHUNK_BYTES {
            self.send_pending()?;
        }
        Ok(())
    }

    /// A problem the reader found itself (it still goes through the parser, to keep order).
    /// Fails when queueing it wrote a full batch and the store refused that batch.
    fn reject(
        &mut self,
        origin: &str,
        line: u64,
        reason: String,
        raw: String,
    ) -> Result<(), StoreError> {
        self.push(origin, Raw::Problem(line, reason, raw))
    }

    /// Takes one entry's JSON text.
    fn entry(&mut self, origin: &str, line: u64, text: &str) -> Result<(), StoreError> {
        self.entries += 1;
        self.push(origin, Raw::Entry(line, text.to_string()))
    }

    /// Hands the pending entries to the parser thread, or parses them here when that
    /// thread is behind (as many chunks out as allowed: this thread would only wait), then
    /// takes whatever is ready, in input order.
    fn send_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let origin = self.pending_origin.clone();
        let entries = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let sent = match &self.parser.to {
            Some(to) if self.parser.out < IN_FLIGHT => {
                let chunk = Chunk {
                    origin: origin.clone(),
                    entries,
                    garbage: std::mem::take(&mut self.garbage),
                };
                to.send(chunk).map_err(|e| e.0.entries)
            }
            _ => Err(entries),
        };
        match sent {
            Ok(()) => {
                self.parser.slots.push_back(Slot::Thread);
                self.parser.out += 1;
            }
            Err(entries) => {
                let parsed = parse_chunk(origin, entries, &self.parser.policy);
                self.parser.slots.push_back(Slot::Ready(parsed));
            }
        }
        while self.take_front(false)? {}
        while self.parser.slots.len() > 2 * IN_FLIGHT {
            self.take_front(true)?;
        }
        Ok(())
    }

    /// Takes the oldest chunk if it is parsed (waiting for the thread when `wait`).
    /// Returns whether one was taken.
    fn take_front(&mut self, wait: bool) -> Result<bool, StoreError> {
        use std::sync::mpsc::TryRecvError;
        let parsed = match self.parser.slots.front() {
            None => return Ok(false),
            Some(Slot::Ready(_)) => match self.parser.slots.pop_front() {
                Some(Slot::Ready(p)) => p,
                _ => return Ok(false),
            },
            Some(Slot::Thread) => {
                let got = if wait {
                    self.parser
                        .from
                        .recv()
                        .map_err(|_| TryRecvError::Disconnected)
                } else {
                    self.parser.from.try_recv()
                };
                match got {
                    Ok(p) => {
                        self.parser.slots.pop_front();
                        self.parser.out -= 1;
                        p
                    }
                    Err(TryRecvError::Empty) => return Ok(false),
                    Err(TryRecvError::Disconnected) => {
                        // The parser thread is gone (it panicked): what it held is lost.
                        self.parser.slots.clear();
                        self.parser.out = 0;
                        self.parser.to = None;
                        return Err(StoreError::Queue(crate::queue::QueueError::Storage(
                            "the ingest parser thread stopped".into(),
                        )));
                    }
                }
            }
        };
        self.take_parsed(parsed)?;
        Ok(true)
    }

    /// Batches parsed items and records problems, writing full batches.
    fn take_parsed(&mut self, parsed: ParsedChunk) -> Result<(), StoreError> {
        let origin = parsed.origin;
        for result in parsed.results {
            match result {
                Parsed::Item(line, item) => {
                    self.batch_bytes += item.payload.len();
                    self.batch.push(*item);
                    self.lines.push(line);
                }
                Parsed::Problem(line, reason, raw) => {
                    let p = Problem {
                        origin: origin.to_string(),
                        line,
                        reason,
                    };
                    (self.on_problem)(&p);
                    self.report.rejected += 1;
                    self.quarantine
                        .push((origin.to_string(), Some(line), p.reason, raw));
                }
            }
            if self.batch.len() >= BATCH_ITEMS
                || self.batch_bytes >= BATCH_BYTES
                || self.quarantine.len() >= BATCH_ITEMS
            {
                self.write_batch()?;
            }
        }
        Ok(())
    }

    /// Writes what is pending: everything read so far is parsed, then stored.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.send_pending()?;
        while self.take_front(true)? {}
        self.write_batch()
    }

    /// Writes the batch and the quarantine to the store.
    fn write_batch(&mut self) -> Result<(), StoreError> {
        if !self.quarantine.is_empty() {
            self.store.quarantine(&self.quarantine)?;
            self.quarantine.clear();
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let lines = std::mem::take(&mut self.lines);
        self.batch_bytes = 0;
        let outcomes = self.store.ingest_batch(&batch, &self.actor)?;
        for ((item, line), outcome) in batch.iter().zip(lines).zip(outcomes) {
            match outcome {
                IngestOutcome::Inserted { .. } => self.report.ingested += 1,
                IngestOutcome::Duplicate { .. } => self.report.duplicates += 1,
                IngestOutcome::Revised { .. } => self.report.revised += 1,
                IngestOutcome::Conflict { id, state } => {
                    self.report.conflicts += 1;
                    let origin = item.origin.rsplit_once(':').map_or("", |(o, _)| o);
                    (self.on_problem)(&Problem {
                        origin: origin.to_string(),
                        line,
                        reason: format!(
                            "conflict: item {id} ({} / {}) is already {state}; the changed payload was kept in quarantine",
                            item.request.source, item.request.external_id
                        ),
                    });
                }
            }
        }
        self.garbage.extend(batch);
        (self.on_progress)(self.entries, self.bytes_read);
        Ok(())
    }

    /// Reads one input to its end. `origin` names it in reports (a path, or `<stdin>`).
    pub fn read(&mut self, origin: &str, input: impl Read) -> Result<(), StoreError> {
        let bytes = Rc::new(Cell::new(0u64));
        let mut reader = std::io::BufReader::with_capacity(
            1 << 16,
            Counting {
                inner: input,
                lines: Rc::new(Cell::new(0)),
                bytes: bytes.clone(),
            },
        );
        let start = self.bytes_read;
        let mut skipped_lines = 0u64;
        // Peek at the first meaningful byte: `[` is an array, anything else lines/objects.
        let first = loop {
            let buf = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) => {
                    self.reject(origin, 1, format!("cannot read: {e}"), String::new())?;
                    return self.flush();
                }
            };
            if buf.is_empty() {
                return self.flush();
            }
            let skip = buf
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(buf.len());
            let bom = buf[skip..].starts_with(b"\xEF\xBB\xBF");
            skipped_lines += buf[..skip].iter().filter(|b| **b == b'\n').count() as u64;
            if skip < buf.len() && !bom {
                let first = buf[skip];
                reader.consume(skip);
                break first;
            }
            reader.consume(if bom { skip + 3 } else { skip });
        };
        if first == b'[' {
            self.read_array(origin, &mut reader, skipped_lines)?;
        } else {
            // The blank lines before the first entry were consumed: count them.
            self.read_lines(origin, &mut reader, skipped_lines)?;
        }
        self.bytes_read = start + bytes.get();
        self.flush()
    }

    fn read_lines<R: BufRead>(
        &mut self,
        origin: &str,
        reader: &mut R,
        skipped_lines: u64,
    ) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        let mut line_no = skipped_lines;
        let mut first = true;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    self.reject(
                        origin,
                        line_no + 1,
                        format!("cannot read: {e}"),
                        String::new(),
                    )?;
                    return Ok(());
                }
            }
            line_no += 1;
            let text = match std::str::from_utf8(&buf) {
                Ok(t) => t.trim(),
                Err(e) => {
                    self.reject(
                        origin,
                        line_no,
                        format!("not valid UTF-8 (byte {})", e.valid_up_to()),
                        String::from_utf8_lossy(&buf).into_owned(),
                    )?;
                    continue;
                }
            };
            if text.is_empty() {
                continue;
            }
            // A first object spread over several lines: the input is pretty-printed JSON
            // (one object, or several one after another), not JSON Lines. Unless the next
            // line is a whole object by itself: then this is JSON Lines whose first line
            // is broken.
            if first && is_unfinished(text) {
                first = false;
                let mut next = Vec::new();
                let mut blank = 0u64;
                loop {
                    next.clear();
                    match reader.read_until(b'\n', &mut next) {
                        Ok(n) if n > 0 && next.iter().all(u8::is_ascii_whitespace) => blank += 1,
                        _ => break,
                    }
                }
                let next_is_whole = std::str::from_utf8(&next).is_ok_and(|t| {
                    let t = t.trim();
                    t.starts_with('{') && serde_json::from_str::<de::IgnoredAny>(t).is_ok()
                });
                if !next_is_whole {
                    let mut head = std::mem::take(&mut buf);
                    head.extend(std::iter::repeat_n(b'\n', blank as usize));
                    head.extend_from_slice(&next);
                    let chained = std::io::Cursor::new(head).chain(reader);
                    return self.read_stream(origin, chained, line_no);
                }
                let text = text.to_string();
                self.entry(origin, line_no, &text)?;
                line_no += blank + 1;
                if let Ok(t) = std::str::from_utf8(&next) {
                    self.entry(origin, line_no, t.trim())?;
                }
                continue;
            }
            first = false;
            self.entry(origin, line_no, text)?;
        }
    }

    /// Values one after another (pretty-printed objects), first one starting at `first_line`.
    fn read_stream(
        &mut self,
        origin: &str,
        input: impl Read,
        first_line: u64,
    ) -> Result<(), StoreError> {
        let lines = Rc::new(Cell::new(0u64));
        let counting = Counting {
            inner: input,
            lines: lines.clone(),
            bytes: Rc::new(Cell::new(0)),
        };
        let mut stream =
            serde_json::Deserializer::from_reader(counting).into_iter::<Box<RawValue>>();
        loop {
            match stream.next() {
                None => return Ok(()),
                Some(Ok(raw)) => {
                    let text = raw.get();
                    let end = first_line + lines.get();
                    let start = end.saturating_sub(text.matches('\n').count() as u64);
                    self.entry(origin, start, text)?;
                }
                Some(Err(e)) => {
                    let line = first_line + (e.line() as u64).saturating_sub(1);
                    self.reject(
                        origin,
                        line,
                        format!("not valid JSON: {e}; the rest of this input was not read"),
                        String::new(),
                    )?;
                    return Ok(());
                }
            }
        }
    }

    fn read_array<R: BufRead>(
        &mut self,
        origin: &str,
        reader: &mut R,
        skipped_lines: u64,
    ) -> Result<(), StoreError> {
        // serde_json reads byte by byte from its reader, so counting here tracks exactly
        // how far the parser has got (the BufReader below does the real buffering).
        let lines = Rc::new(Cell::new(skipped_lines));
        let counting = Counting {
            inner: reader,
            lines: lines.clone(),
            bytes: Rc::new(Cell::new(0)),
        };
        let mut de = serde_json::Deserializer::from_reader(counting);
        let mut failure: Option<StoreError> = None;
        let seed = ArraySeed {
            ingester: self,
            origin,
            lines: lines.clone(),
            failure: &mut failure,
        };
        let res = de::Deserializer::deserialize_seq(&mut de, seed).and_then(|_| de.end());
        if let Some(f) = failure {
            return Err(f);
        }
        if let Err(e) = res {
            let line = skipped_lines + e.line() as u64;
            self.reject(
                origin,
                line.max(1),
                format!("not valid JSON: {e}; the rest of this array was not read"),
                String::new(),
            )?;
        }
        Ok(())
    }
}

/// True when a line is the start of a JSON object that continues on later lines.
fn is_unfinished(text: &str) -> bool {
    text.starts_with('{')
        && matches!(
            serde_json::from_str::<de::IgnoredAny>(text),
            Err(e) if e.is_eof()
        )
}

/// Feeds each array element to the ingester as it is parsed.
struct ArraySeed<'a, 's> {
    ingester: &'a mut Ingester<'s>,
    origin: &'a str,
    lines: Rc<Cell<u64>>,
    failure: &'a mut Option<StoreError>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of request objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            let text = raw.get();
            let end = self.lines.get() + 1;
            let start = end.saturating_sub(text.matches('\n').count() as u64);
            if let Err(e) = self.ingester.entry(self.origin, start, text) {
                *self.failure = Some(e);
                return Err(de::Error::custom("storage failed"));
            }
        }
        Ok(())
    }
}

/// Counts lines and bytes as they are read.
struct Counting<R> {
    inner: R,
    lines: Rc<Cell<u64>>,
    bytes: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let nl = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.lines.set(self.lines.get() + nl);
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}
