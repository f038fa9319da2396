//! The terminal report of `signoff validate`: tables with bars. Every value that came from
//! the history file passes the sanitizer and is cut to its column by display width.
use std::fmt::Write as _;

use super::{Report, ThresholdPoint};
use crate::text::{sanitize, truncate, width};

/// A bar of `width` cells for a share in 0..1, in eighths of a cell.
pub fn bar(share: f64, cells: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (share.clamp(0.0, 1.0) * cells as f64 * 8.0).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8]);
    }
    s
}

/// Sanitized, cut to `n` cells and padded to them.
fn cell(s: &str, n: usize) -> String {
    let clean = sanitize(s);
    let cut = truncate(&clean, n);
    format!("{cut}{}", " ".repeat(n.saturating_sub(width(&cut))))
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn point_line(p: &ThresholdPoint) -> String {
    format!(
        "{} auto-approved ({} of all cases spared review), {} agree ({})",
        p.auto_approved,
        pct(p.spared),
        p.correct,
        pct(p.accuracy)
    )
}

/// How many wrong cases the terminal lists (`--json` and `--html` list all).
const WRONG_SHOWN: usize = 20;

impl Report {
    /// The plain-text report.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "validate {} · {} cases · sha256 {}",
            sanitize(&self.input),
            self.cases,
            &self.input_sha256[..self.input_sha256.len().min(16)]
        );
        let _ = writeln!(
            o,
            "policy {} · threshold {:.2} · auto-approve {} · required accuracy {} on at least {} cases",
            self.policy_version,
            self.confidence_threshold,
            if self.auto_approve { "on" } else { "off" },
            pct(self.required_accuracy),
            self.min_cases
        );

        let _ = writeln!(o, "\naccuracy per field (AI against the final value)");
        for f in &self.fields {
            let extra = match f.mean_similarity {
                Some(m) => format!(
                    "  mean similarity {m:.2}; a match at {:.2} or more",
                    self.similarity_match
                ),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "  {:<22} {:>7}  {:<20} {:>6} of {:<6}{extra}",
                f.field,
                pct(f.accuracy),
                bar(f.accuracy, 20),
                f.matched,
                f.cases
            );
        }
        let _ = writeln!(
            o,
            "  approved as proposed (intent and priority): {} · escalated by people: {}",
            pct(self.agreement),
            pct(self.escalation_rate)
        );

        let c = &self.intents;
        if !c.labels.is_empty() {
            let _ = writeln!(
                o,
                "\nintent confusion (rows: what people said; columns: what the AI said, by number)"
            );
            let colw = c
                .counts
                .iter()
                .flatten()
                .map(|n| n.to_string().len())
                .max()
                .unwrap_or(1)
                .max(c.labels.len().to_string().len())
                + 1;
            let mut head = format!("  {:<24}", "");
            for j in 1..=c.labels.len() {
                let _ = write!(head, "{j:>colw$}");
            }
            let _ = writeln!(o, "{head}");
            for (i, row) in c.counts.iter().enumerate() {
                let mut line = format!("  {:>2} {}", i + 1, cell(&c.labels[i], 21));
                for n in row {
                    let v = if *n == 0 {
                        "·".to_string()
                    } else {
                        n.to_string()
                    };
                    let _ = write!(line, "{v:>colw$}");
                }
                let _ = writeln!(o, "{}", line.trim_end());
            }
        }

        let _ = writeln!(
            o,
            "\nreliability: approved as proposed, by the AI's confidence"
        );
        let _ = writeln!(
            o,
            "  {:<9} {:>6}  {:>9}  {:>7}",
            "bucket", "cases", "mean conf", "right"
        );
        for b in &self.calibration {
            let conf = b
                .mean_confidence
                .map_or_else(|| "-".to_string(), |m| format!("{m:.2}"));
            let _ = writeln!(
                o,
                "  {:<9} {:>6}  {:>9}  {:>7}  {}",
                b.bucket,
                b.cases,
                conf,
                pct(b.accuracy),
                bar(b.accuracy, 20)
            );
        }

        let _ = writeln!(
            o,
            "\nauto-approval by threshold ({} of {} cases: no review rule holds them back)",
            self.eligible, self.cases
        );
        let _ = writeln!(
            o,
            "  {:<9} {:>13}  {:>8}  {:>7}",
            "threshold", "auto-approved", "accuracy", "spared"
        );
        for p in &self.curve {
            let mark = if p.accuracy >= self.required_accuracy && p.auto_approved >= self.min_cases
            {
                "✓"
            } else {
                " "
            };
            let _ = writeln!(
                o,
                "  {:<9.2} {:>13}  {:>8}  {:>7} {mark} {}",
                p.threshold,
                p.auto_approved,
                pct(p.accuracy),
                pct(p.spared),
                bar(p.spared, 20)
            );
        }

        let _ = writeln!(o);
        match &self.recommendation {
            Some(r) => {
                let _ = writeln!(
                    o,
                    "recommended threshold {:.2}: the lowest at which auto-approved items reach {}",
                    r.point.threshold,
                    pct(self.required_accuracy)
                );
                let _ = writeln!(o, "  {}", point_line(&r.point));
                if !r.wrong.is_empty() {
                    let _ = writeln!(
                        o,
                        "  the {} case(s) it would have got wrong:",
                        r.wrong.len()
                    );
                    for w in r.wrong.iter().take(WRONG_SHOWN) {
                        let people = match (&w.intent, &w.priority) {
                            (Some(i), Some(p)) => {
                                format!("{} {} / {}", w.decision.as_str(), sanitize(i), sanitize(p))
                            }
                            (Some(i), None) => format!("{} {}", w.decision.as_str(), sanitize(i)),
                            _ => w.decision.as_str().to_string(),
                        };
                        let _ = writeln!(
                            o,
                            "    {} {} {:.2}  AI {} / {}  →  people {}",
                            cell(&w.origin, 18),
                            cell(&format!("{}/{}", w.source, w.external_id), 24),
                            w.confidence,
                            sanitize(w.ai_intent.as_deref().unwrap_or("-")),
                            sanitize(w.ai_priority.as_deref().unwrap_or("-")),
                            people
                        );
                    }
                    if r.wrong.len() > WRONG_SHOWN {
                        let _ = writeln!(
                            o,
                            "    … {} more (--json or --html lists them all)",
                            r.wrong.len() - WRONG_SHOWN
                        );
                    }
                }
            }
            None => {
                let _ = writeln!(
                    o,
                    "no threshold reaches {} on at least {} auto-approved cases: keep auto-approval off",
                    pct(self.required_accuracy),
                    self.min_cases
                );
            }
        }
        let _ = writeln!(
            o,
            "at the policy's threshold {:.2}: {}",
            self.at_policy_threshold.threshold,
            point_line(&self.at_policy_threshold)
        );
        let _ = writeln!(o, "{}", self.verdict);
        // Padded columns leave spaces at the ends of lines.
        o.lines().map(|l| format!("{}\n", l.trim_end())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::bar;

    #[test]
    fn bars_fill_in_eighths() {
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██");
        assert_eq!(bar(0.53125, 4), "██▏");
        assert_eq!(bar(0.0, 4), "");
        assert_eq!(bar(7.0, 2), "██");
    }
}
