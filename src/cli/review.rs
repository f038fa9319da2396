//! Headless review: list, show, claim, decide — through the Queue trait, like the console.
use std::io::IsTerminal;

use anyhow::Context;

use super::output::{Table, age, print_json, timestamp};
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, open_queue, runtime};
use crate::config::Loaded;
use crate::model::{DecisionKind, EditableField, State};
use crate::queue::{Claim, Decision, ItemDetail, ListQuery, QueueError};
use crate::text::sanitize_lines;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("decision").required(true).args(["approve", "reject", "escalate"])))]
pub struct DecideArgs {
    /// The item id.
    pub id: i64,
    /// Approve (with any --set edits).
    #[arg(long)]
    pub approve: bool,
    /// Reject with a reason key from the policy's taxonomy.
    #[arg(long, value_name = "REASON")]
    pub reject: Option<String>,
    /// Escalate to a named queue.
    #[arg(long, value_name = "QUEUE")]
    pub escalate: Option<String>,
    /// Edit a field first: summary, intent, priority, recommended_next_step (next_step),
    /// escalation_reason, draft_reply. An empty VALUE clears it.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub sets: Vec<String>,
    /// A note for the record.
    #[arg(long)]
    pub note: Option<String>,
    /// The fence of your claim (from `signoff claim`); without it the item is claimed now.
    #[arg(long)]
    pub fence: Option<i64>,
    /// The revision you reviewed (`signoff show` prints it); the decision is refused if the
    /// item has another revision now. Without it, the revision this command reads when it
    /// loads the item.
    #[arg(long, value_name = "REV")]
    pub revision: Option<i64>,
}

pub fn list(
    loaded: &Loaded,
    states: &[String],
    limit: u32,
    offset: u64,
    json: bool,
) -> anyhow::Result<i32> {
    let states = match states
        .iter()
        .map(|s| s.parse::<State>())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("signoff: --state: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, true)?;
    let page = rt.block_on(queue.list(&ListQuery {
        states,
        limit,
        offset,
        ..Default::default()
    }))?;
    if json {
        print_json(&page.items)?;
        return Ok(EXIT_OK);
    }
    let now = crate::clock::Clock::process().now();
    let wide = std::io::stdout().is_terminal();
    let mut t = Table::new(&[
        ("ID", 0),
        ("STATE", 0),
        ("PRIORITY", 10),
        ("CONF", 0),
        ("INTENT", 18),
        ("FROM / SUBJECT", if wide { 48 } else { 80 }),
        ("AGE", 0),
        ("FLAGS", 0),
    ]);
    for i in &page.items {
        let conf = match (&i.confidence, &i.confidence_invalid) {
            (Some(c), _) => format!("{c:.2}"),
            (None, Some(bad)) => format!("!{bad}"),
            _ => "?".into(),
        };
        let who = match (&i.sender, &i.subject) {
            (Some(s), Some(sub)) => format!("{s} — {sub}"),
            (Some(s), None) => s.clone(),
            (None, Some(sub)) => sub.clone(),
            (None, None) => i.summary.clone().unwrap_or_default(),
        };
        let mut flags = Vec::new();
        if i.ai_escalation {
            flags.push("esc".to_string());
        }
        if i.flag_count > 0 {
            flags.push(format!("invalid:{}", i.flag_count));
        }
        if i.hidden_chars {
            flags.push("hidden-chars".into());
        }
        if i.edited {
            flags.push("edited".into());
        }
        if let (State::InReview, Some(by)) = (i.state, &i.claimed_by) {
            let left = i.lease_expires.map_or(0, |e| (e - now) / 1000).max(0);
            flags.push(format!("claimed:{by}({left}s)"));
        }
        t.row(vec![
            i.id.to_string(),
            i.state.to_string(),
            i.priority.clone().unwrap_or_else(|| "?".into()),
            conf,
            i.intent.clone().unwrap_or_else(|| "?".into()),
            who,
            age(now, i.received_at),
            flags.join(" "),
        ]);
    }
    print!("{}", t.render());
    if page.total > page.items.len() as u64 + offset {
        eprintln!(
            "({} of {} shown; --offset {} for more)",
            page.items.len(),
            page.total,
            offset + page.items.len() as u64
        );
    }
    Ok(EXIT_OK)
}

/// `show --json`: the payload as ingested, the reviewed fields and the record.
#[derive(serde::Serialize)]
struct ShowJson<'a> {
    id: i64,
    state: State,
    revision: i64,
    fence: i64,
    payload: serde_json::Value,
    fields: &'a crate::model::FieldValues,
    /// The priority as the AI sent it, when it was read as another value (an alias,
    /// another case): `fields.priority` holds the value it was read as.
    #[serde(skip_serializing_if = "Option::is_none")]
    priority_sent: Option<&'a str>,
    /// The AI's yes/no flags (null: the AI did not say).
    crm_update_required: Option<bool>,
    human_review_required: Option<bool>,
    flags: &'a [crate::model::Flag],
    hidden_chars: bool,
    edits: &'a [crate::queue::Edit],
    decision: &'a Option<crate::queue::DecisionRecord>,
    actions: &'a [crate::queue::ActionStatus],
    claimed_by: &'a Option<String>,
    lease_expires: Option<i64>,
}

pub fn show(loaded: &Loaded, id: i64, json: bool) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, true)?;
    let d = match rt.block_on(queue.get(id)) {
        Ok(d) => d,
        Err(e @ QueueError::NotFound(_)) => {
            eprintln!("signoff: {e}");
            return Ok(EXIT_FAILED);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        let payload: serde_json::Value =
            serde_json::from_str(&d.payload).context("stored payload is not JSON")?;
        print_json(&ShowJson {
            id: d.summary.id,
            state: d.summary.state,
            revision: d.summary.revision,
            fence: d.fence,
            payload,
            fields: &d.fields,
            priority_sent: priority_sent(&d),
            crm_update_required: d.request.ai.crm_update_required,
            human_review_required: d.request.ai.human_review_required,
            flags: &d.flags,
            hidden_chars: d.summary.hidden_chars,
            edits: &d.edits,
            decision: &d.decision,
            actions: &d.actions,
            claimed_by: &d.summary.claimed_by,
            lease_expires: d.summary.lease_expires,
        })?;
    } else {
        print!("{}", render_detail(&d));
    }
    Ok(EXIT_OK)
}

/// The priority as sent when the reviewed value is the AI's, read as another value.
fn priority_sent(d: &ItemDetail) -> Option<&str> {
    let sent = d.request.ai.priority.as_deref()?;
    let edited = d
        .edits
        .iter()
        .any(|e| e.field == EditableField::Priority.as_str());
    (!edited && d.fields.priority.as_deref() != Some(sent)).then_some(sent)
}

/// `label        value`, continuation lines indented; `empty` stands in for no value.
fn field_line(out: &mut String, label: &str, value: &str, empty: &str) {
    let lines = sanitize_lines(value);
    let (first, rest) = lines
        .split_first()
        .map_or((empty, &[][..]), |(f, r)| (f.as_ref(), r));
    out.push_str(&format!("{label:<14}{first}\n"));
    for l in rest {
        out.push_str(&format!("{:<14}{l}\n", ""));
    }
}

fn render_detail(d: &ItemDetail) -> String {
    let mut out = String::new();
    let mut kv = |k: &str, v: &str| field_line(&mut out, k, v, "");
    let s = &d.summary;
    let r = &d.request;
    kv(
        "item",
        &format!(
            "{}  {}  ({} / {}, revision {})",
            s.id, s.state, r.source, r.external_id, s.revision
        ),
    );
    if s.hidden_chars {
        kv(
            "warning",
            "this request holds hidden characters (shown as ␛, ⟨U+…⟩)",
        );
    }
    if let Some(by) = &s.claimed_by {
        kv("claimed by", by);
    }
    kv("received", &timestamp(s.received_at));
    kv("channel", r.raw.channel.as_deref().unwrap_or("-"));
    kv("from", r.raw.from.as_deref().unwrap_or("-"));
    kv("subject", r.raw.subject.as_deref().unwrap_or("-"));
    for (k, v) in &r.raw.fields {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        kv(&format!("  {k}"), &v);
    }
    out.push('\n');
    out.push_str("── body ");
    out.push_str(&"─".repeat(40));
    out.push('\n');
    for l in sanitize_lines(r.raw.body.as_deref().unwrap_or("")) {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str("── AI triage ");
    out.push_str(&"─".repeat(35));
    out.push('\n');
    let mut kv = |k: &str, v: &str| field_line(&mut out, k, v, "-");
    let edited = |f: EditableField| d.edits.iter().any(|e| e.field == f.as_str());
    for f in EditableField::ALL {
        let mark = if edited(f) { " *" } else { "" };
        let value = match (f, priority_sent(d)) {
            (EditableField::Priority, Some(sent)) => {
                format!("{} (sent {sent:?})", d.fields.get(f).unwrap_or(""))
            }
            _ => d.fields.get(f).unwrap_or("").to_string(),
        };
        kv(&format!("{}{mark}", f.label()), &value);
        if f == EditableField::Priority {
            kv("Confidence", &d.confidence.display());
            kv("AI flags", &r.ai.flags_text());
        }
    }
    if !r.ai.missing_info.is_empty() {
        kv("Missing info", &r.ai.missing_info.join("; "));
    }
    kv(
        "Model",
        &format!(
            "{} / {}",
            r.ai.model.as_deref().unwrap_or("-"),
            r.ai.prompt_version.as_deref().unwrap_or("-")
        ),
    );
    for f in &d.flags {
        kv("Flag", &f.message);
    }
    for e in &d.edits {
        kv(
            "Edit",
            &format!(
                "{} by {}: {:?} → {:?}",
                e.field,
                e.reviewer,
                e.old.as_deref().unwrap_or(""),
                e.new.as_deref().unwrap_or("")
            ),
        );
    }
    if let Some(dec) = &d.decision {
        let what = match &dec.kind {
            DecisionKind::Approve => "approved".to_string(),
            DecisionKind::Reject { reason } => format!("rejected ({reason})"),
            DecisionKind::Escalate { queue } => format!("escalated to {queue}"),
        };
        kv(
            "Decision",
            &format!(
                "{what} by {} at {}{}{}",
                dec.reviewer,
                timestamp(dec.at),
                dec.note
                    .as_deref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default(),
                if dec.undone { " (undone)" } else { "" }
            ),
        );
    }
    let now = crate::clock::Clock::process().now();
    for a in &d.actions {
        // What came of it (the CRM item, the Slack message, the Gmail draft) and, while it
        // waits, when it is tried next, in words.
        let result = a
            .response
            .as_deref()
            .and_then(crate::actions::result_text)
            .map(|r| format!(" · {r}"))
            .unwrap_or_default();
        let next = match (a.status.as_str(), a.next_attempt_at) {
            ("queued" | "retrying", Some(at)) if at > now => format!(
                " · next attempt in {} ({})",
                super::output::age(at, now),
                super::output::timestamp(at)
            ),
            ("queued" | "retrying", Some(_)) => " · next attempt now".to_string(),
            _ => String::new(),
        };
        kv(
            "Action",
            &format!(
                "{} {} (attempts {}){result}{next}{}",
                a.action.as_str(),
                a.status,
                a.attempts,
                a.last_error
                    .as_deref()
                    .filter(|_| a.status != "sent")
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        );
    }
    out
}

pub fn claim(loaded: &Loaded, json: bool, read_only: bool) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, read_only)?;
    let reviewer = loaded.reviewer();
    let claim = rt.block_on(queue.claim_next(&reviewer))?;
    if json {
        print_json(&claim)?;
    } else {
        match &claim {
            Some(c) => println!(
                "claimed item {} (fence {}) for {} until {}",
                c.id,
                c.fence,
                crate::text::sanitize(&c.reviewer),
                timestamp(c.lease_expires)
            ),
            None => println!("nothing to claim: no pending items"),
        }
    }
    Ok(EXIT_OK)
}

pub fn decide(loaded: &Loaded, args: &DecideArgs, read_only: bool) -> anyhow::Result<i32> {
    let kind = match (&args.reject, &args.escalate) {
        (Some(reason), _) => DecisionKind::Reject {
            reason: reason.clone(),
        },
        (_, Some(queue)) => DecisionKind::Escalate {
            queue: queue.clone(),
        },
        _ => DecisionKind::Approve,
    };
    let mut sets = Vec::new();
    for s in &args.sets {
        let Some((field, value)) = s.split_once('=') else {
            eprintln!(
                "signoff: --set {s:?}: expected FIELD=VALUE, e.g. --set intent=billing_question"
            );
            return Ok(EXIT_USAGE);
        };
        let field: EditableField = match field.parse() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("signoff: --set {field}: {e}");
                return Ok(EXIT_USAGE);
            }
        };
        sets.push((field, Some(value.to_string()).filter(|v| !v.is_empty())));
    }
    let rt = runtime()?;
    let queue = open_queue(loaded, &loaded.paths.db, read_only)?;
    let reviewer = loaded.reviewer();
    let result = rt.block_on(async {
        // The decision names the revision it was made on: the one given, else the one read
        // here. A payload ingested after that is refused by the store, not decided blind.
        let revision = match args.revision {
            Some(r) => r,
            None => queue.get(args.id).await?.summary.revision,
        };
        let decision = Decision {
            kind,
            revision: Some(revision),
            note: args.note.clone(),
            sets,
        };
        let (claim, claimed_here) = match args.fence {
            Some(fence) => (
                Claim {
                    id: args.id,
                    reviewer: reviewer.clone(),
                    fence,
                    lease_expires: 0,
                },
                false,
            ),
            None => (queue.claim(args.id, &reviewer).await?, true),
        };
        let res = queue.decide(&claim, &decision).await;
        if res.is_err() && claimed_here {
            // Our own claim for this command: give the item back rather than leave it
            // locked until the lease runs out.
            let _ = queue.release(&claim).await;
        }
        res
    });
    match result {
        Ok(receipt) => {
            let actions: Vec<&str> = receipt.actions.iter().map(|a| a.action.as_str()).collect();
            println!(
                "item {} {}{}; undo until {}",
                receipt.id,
                receipt.state,
                if actions.is_empty() {
                    String::new()
                } else {
                    format!(", queued: {}", actions.join(", "))
                },
                timestamp(receipt.undo_until)
            );
            for (action, why) in &receipt.skipped {
                println!("not queued: {}: {why}", action.as_str());
            }
            Ok(EXIT_OK)
        }
        Err(e) => Ok(super::report_queue_error(&e)),
    }
}
