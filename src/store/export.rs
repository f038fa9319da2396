//! `signoff audit export`: audit entries for auditors, and per-item records (AI proposal,
//! reviewer edits, final payload, decision, outcome) for training data. Streamed: rows are
//! written as they are read.
use std::io::Write;

use rusqlite::params;
use serde_json::{Value, json};

use super::{Result, Store, StoreError};
use crate::model::{EditableField, FieldValues, Request};
use crate::queue::Millis;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

/// What to export.
#[derive(Clone, Debug, Default)]
pub struct ExportQuery {
    pub since: Option<Millis>,
    pub item: Option<i64>,
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Sql(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A CSV cell: quoted when needed; a leading `=`, `+`, `-`, `@`, tab or CR is prefixed
/// with `'` so a spreadsheet shows the text instead of running it as a formula.
///
/// ```
/// use signoff::store::csv_cell;
/// assert_eq!(csv_cell("=cmd|'/c calc'!A1"), "'=cmd|'/c calc'!A1");
/// assert_eq!(csv_cell("Smith, Dana"), "\"Smith, Dana\"");
/// ```
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_line(out: &mut dyn Write, cells: &[String]) -> std::io::Result<()> {
    let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    writeln!(out, "{}", line.join(","))
}

fn iso(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// One audit entry as `audit export` writes it.
pub(crate) struct AuditExportRow {
    pub seq: i64,
    pub at: Millis,
    pub actor: String,
    pub item: Option<i64>,
    pub kind: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    pub os_user: Option<String>,
}

/// The CSV header of `audit export` (nothing for JSON Lines).
pub(crate) fn write_audit_header(out: &mut dyn Write, format: Format) -> std::io::Result<()> {
    if format == Format::Csv {
        csv_line(
            out,
            &[
                "seq",
                "at",
                "actor",
                "item",
                "kind",
                "detail",
                "prev_hash",
                "hash",
                "os_user",
            ]
            .map(String::from),
        )?;
    }
    Ok(())
}

/// One line of `audit export`.
pub(crate) fn write_audit_row(
    out: &mut dyn Write,
    format: Format,
    r: AuditExportRow,
) -> std::io::Result<()> {
    match format {
        Format::Jsonl => {
            let detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::String(r.detail));
            let line = json!({"seq": r.seq, "at": iso(r.at), "actor": r.actor, "item": r.item,
                "kind": r.kind, "detail": detail, "prev_hash": r.prev_hash, "hash": r.hash,
                "os_user": r.os_user});
            writeln!(out, "{line}")
        }
        Format::Csv => csv_line(
            out,
            &[
                r.seq.to_string(),
                iso(r.at),
                r.actor,
                r.item.map(|i| i.to_string()).unwrap_or_default(),
                r.kind,
                r.detail,
                r.prev_hash,
                r.hash,
                r.os_user.unwrap_or_default(),
            ],
        ),
    }
}

impl Store {
    /// Writes audit entries, oldest first. Returns how many.
    pub fn export_audit(
        &self,
        q: &ExportQuery,
        format: Format,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user FROM audit
             WHERE at >= ?1 AND (?2 IS NULL OR request_id = ?2) ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![q.since.unwrap_or(i64::MIN), q.item])?;
        write_audit_header(out, format).map_err(io_err)?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let row = AuditExportRow {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                item: r.get(3)?,
                kind: r.get(4)?,
                detail: r.get(5)?,
                prev_hash: r.get(6)?,
                hash: r.get(7)?,
                os_user: r.get(8)?,
            };
            write_audit_row(out, format, row).map_err(io_err)?;
            n += 1;
        }
        Ok(n)
    }

    /// Writes one record per decided item: the AI proposal, the edits, the final fields,
    /// the decision and the latest outcome — the edit-diff data. Returns how many.
    pub fn export_items(
        &self,
        q: &ExportQuery,
        format: Format,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let mut stmt = self.conn.prepare(
            "SELECT d.request_id, r.source, r.external_id, r.received_at, v.payload, d.kind, d.reason,
                    d.queue, d.note, d.reviewer, d.at, d.fields, d.id,
                    (SELECT value FROM outcomes o WHERE o.request_id = d.request_id ORDER BY o.id DESC LIMIT 1),
                    (SELECT reason FROM outcomes o WHERE o.request_id = d.request_id ORDER BY o.id DESC LIMIT 1)
             FROM decisions d
             JOIN requests r ON r.id = d.request_id
             JOIN revisions v ON v.request_id = d.request_id AND v.revision = d.revision
             WHERE d.undone_at IS NULL AND d.at >= ?1 AND (?2 IS NULL OR d.request_id = ?2)
             ORDER BY d.id",
        )?;
        let mut edits_stmt = self.conn.prepare(
            "SELECT field, old_value, new_value, reviewer, at FROM edits
             WHERE request_id = ?1 AND at <= ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query(params![q.since.unwrap_or(i64::MIN), q.item])?;
        if format == Format::Csv {
            let mut h: Vec<String> = [
                "item",
                "source",
                "external_id",
                "received_at",
                "decision",
                "reason",
                "queue",
                "reviewer",
                "decided_at",
                "outcome",
                "confidence",
            ]
            .map(String::from)
            .to_vec();
            for f in EditableField::ALL {
                h.push(format!("ai_{}", f.as_str()));
                h.push(format!("final_{}", f.as_str()));
                h.push(format!("edited_{}", f.as_str()));
            }
            csv_line(out, &h).map_err(io_err)?;
        }
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let payload: String = r.get(4)?;
            let decided_at: i64 = r.get(10)?;
            let fields: String = r.get(11)?;
            let request = Request::from_json(&payload).map(|(_, r)| r).ok();
            let ai = request
                .as_ref()
                .map(|r| FieldValues::from_ai(&r.ai))
                .unwrap_or_default();
            let final_fields: FieldValues = serde_json::from_str::<Value>(&fields)
                .ok()
                .map(|v| {
                    let mut f = FieldValues::default();
                    for e in EditableField::ALL {
                        f.set(
                            e,
                            v.get(e.as_str()).and_then(Value::as_str).map(str::to_owned),
                        );
                    }
                    f
                })
                .unwrap_or_default();
            let edits: Vec<Value> = edits_stmt
                .query_map(params![id, decided_at], |e| {
                    Ok(json!({"field": e.get::<_, String>(0)?, "old": e.get::<_, Option<String>>(1)?,
                        "new": e.get::<_, Option<String>>(2)?, "reviewer": e.get::<_, String>(3)?,
                        "at": iso(e.get(4)?)}))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let confidence = request.as_ref().and_then(|r| r.ai.confidence.value());
            let (kind, reason, queue, note, reviewer): (
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                String,
            ) = (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
            let (outcome, outcome_reason): (Option<String>, Option<String>) =
                (r.get(13)?, r.get(14)?);
            match format {
                Format::Jsonl => {
                    let line = json!({
                        "item": id, "source": r.get::<_, String>(1)?, "external_id": r.get::<_, String>(2)?,
                        "received_at": iso(r.get(3)?),
                        "ai": ai, "confidence": confidence,
                        "model": request.as_ref().and_then(|r| r.ai.model.clone()),
                        "prompt_version": request.as_ref().and_then(|r| r.ai.prompt_version.clone()),
                        "edits": edits, "final": final_fields,
                        "decision": kind, "reason": reason, "queue": queue, "note": note,
                        "reviewer": reviewer, "decided_at": iso(decided_at), "decision_id": r.get::<_, i64>(12)?,
                        "outcome": outcome, "outcome_reason": outcome_reason,
                    });
                    writeln!(out, "{line}").map_err(io_err)?;
                }
                Format::Csv => {
                    let mut cells = vec![
                        id.to_string(),
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        iso(r.get(3)?),
                        kind,
                        reason.unwrap_or_default(),
                        queue.unwrap_or_default(),
                        reviewer,
                        iso(decided_at),
                        outcome.unwrap_or_default(),
                        confidence.map(|c| c.to_string()).unwrap_or_default(),
                    ];
                    for f in EditableField::ALL {
                        let (a, b) = (ai.get(f).unwrap_or(""), final_fields.get(f).unwrap_or(""));
                        cells.push(a.to_string());
                        cells.push(b.to_string());
                        cells.push((a != b).to_string());
                    }
                    csv_line(out, &cells).map_err(io_err)?;
                }
            }
            n += 1;
        }
        Ok(n)
    }
}
