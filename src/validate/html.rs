//! The HTML report of `signoff validate --html FILE`: one self-contained page (inline CSS,
//! no script), every value from the history file HTML-escaped.
use std::fmt::Write as _;

use super::Report;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Controls and bidi overrides are shown, never obeyed.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {
                let _ = write!(o, "&#x{:04x};", 0x2400 + c as u32);
            }
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                let _ = write!(o, "⟨U+{:04X}⟩", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn pct(x: f64) -> String {
    format!("{:.1}&nbsp;%", x * 100.0)
}

fn bar(share: f64) -> String {
    format!(
        "<span class=bar style=\"width:{:.1}%\"></span>",
        share.clamp(0.0, 1.0) * 100.0
    )
}

/// The whole page.
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\
<title>signoff validate {input}</title>\n<style>\
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}}\
table{{border-collapse:collapse;margin:.5em 0 1.5em}}\
td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}\
.bar{{display:inline-block;height:.8em;background:#4a7}}\
.cell{{width:12em;text-align:left}}\
.pass{{color:#070;font-weight:bold}}.fail{{color:#b00;font-weight:bold}}\
.diag{{background:#efe}}</style></head><body>\n",
        input = escape(&r.input)
    );
    let _ = writeln!(
        o,
        "<h1>Validation of {}</h1>\n<p>{} cases · SHA-256 <code>{}</code> · policy <code>{}</code> · threshold {:.2} · auto-approve {} · required accuracy {} on at least {} cases</p>",
        escape(&r.input),
        r.cases,
        r.input_sha256,
        r.policy_version,
        r.confidence_threshold,
        if r.auto_approve { "on" } else { "off" },
        pct(r.required_accuracy),
        r.min_cases
    );
    let _ = writeln!(
        o,
        "<p class={}>{}</p>",
        if r.passed { "pass" } else { "fail" },
        escape(&r.verdict)
    );

    let _ = writeln!(
        o,
        "<h2>Accuracy per field</h2>\n<table><tr><th>field<th>accuracy<th class=cell><th>matched<th>cases<th>mean similarity</tr>"
    );
    for f in &r.fields {
        let _ = writeln!(
            o,
            "<tr><td>{}<td>{}<td class=cell>{}<td>{}<td>{}<td>{}</tr>",
            escape(&f.field),
            pct(f.accuracy),
            bar(f.accuracy),
            f.matched,
            f.cases,
            f.mean_similarity
                .map_or_else(String::new, |m| format!("{m:.2}"))
        );
    }
    let _ = writeln!(
        o,
        "</table>\n<p>Free text matches at a word similarity (Dice) of {:.2} or more. Approved as proposed: {}; escalated by people: {}.</p>",
        r.similarity_match,
        pct(r.agreement),
        pct(r.escalation_rate)
    );

    let c = &r.intents;
    if !c.labels.is_empty() {
        let _ = write!(
            o,
            "<h2>Intent confusion</h2>\n<p>Rows: what people said; columns: what the AI said.</p>\n<table><tr><th>"
        );
        for l in &c.labels {
            let _ = write!(o, "<th>{}", escape(l));
        }
        let _ = writeln!(o, "</tr>");
        for (i, row) in c.counts.iter().enumerate() {
            let _ = write!(o, "<tr><th>{}", escape(&c.labels[i]));
            for (j, n) in row.iter().enumerate() {
                let class = if i == j { " class=diag" } else { "" };
                let _ = write!(o, "<td{class}>{n}");
            }
            let _ = writeln!(o, "</tr>");
        }
        let _ = writeln!(o, "</table>");
    }

    let _ = writeln!(
        o,
        "<h2>Reliability</h2>\n<p>Approved as proposed, by the AI's confidence: is 0.9 right 90&nbsp;% of the time?</p>\n<table><tr><th>bucket<th>cases<th>mean confidence<th>right<th class=cell></tr>"
    );
    for b in &r.calibration {
        let _ = writeln!(
            o,
            "<tr><td>{}<td>{}<td>{}<td>{}<td class=cell>{}</tr>",
            escape(&b.bucket),
            b.cases,
            b.mean_confidence
                .map_or_else(|| "-".to_string(), |m| format!("{m:.2}")),
            pct(b.accuracy),
            bar(b.accuracy)
        );
    }
    let _ = writeln!(
        o,
        "</table>\n<h2>Auto-approval by threshold</h2>\n<p>{} of {} cases have no review rule holding them back.</p>\n<table><tr><th>threshold<th>auto-approved<th>agree<th>accuracy<th>spared<th class=cell></tr>",
        r.eligible, r.cases
    );
    for p in &r.curve {
        let _ = writeln!(
            o,
            "<tr><td>{:.2}<td>{}<td>{}<td>{}<td>{}<td class=cell>{}</tr>",
            p.threshold,
            p.auto_approved,
            p.correct,
            pct(p.accuracy),
            pct(p.spared),
            bar(p.spared)
        );
    }
    let _ = writeln!(o, "</table>");
    match &r.recommendation {
        Some(rec) => {
            let p = &rec.point;
            let _ = writeln!(
                o,
                "<h2>Recommended threshold: {:.2}</h2>\n<p>The lowest threshold at which auto-approved items reach {}: {} auto-approved ({} of all cases spared review), {} agree ({}).</p>",
                p.threshold,
                pct(r.required_accuracy),
                p.auto_approved,
                pct(p.spared),
                p.correct,
                pct(p.accuracy)
            );
            if !rec.wrong.is_empty() {
                let _ = writeln!(
                    o,
                    "<h3>The {} case(s) it would have got wrong</h3>\n<table><tr><th>where<th>source<th>external id<th>confidence<th>AI intent<th>AI priority<th>decision<th>intent<th>priority</tr>",
                    rec.wrong.len()
                );
                let opt = |s: &Option<String>| escape(s.as_deref().unwrap_or("-"));
                for w in &rec.wrong {
                    let _ = writeln!(
                        o,
                        "<tr><td>{}<td>{}<td>{}<td>{:.2}<td>{}<td>{}<td>{}<td>{}<td>{}</tr>",
                        escape(&w.origin),
                        escape(&w.source),
                        escape(&w.external_id),
                        w.confidence,
                        opt(&w.ai_intent),
                        opt(&w.ai_priority),
                        w.decision.as_str(),
                        opt(&w.intent),
                        opt(&w.priority)
                    );
                }
                let _ = writeln!(o, "</table>");
            }
        }
        None => {
            let _ = writeln!(
                o,
                "<h2>No threshold recommended</h2>\n<p>No threshold reaches {} on at least {} auto-approved cases: keep auto-approval off.</p>",
                pct(r.required_accuracy),
                r.min_cases
            );
        }
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_controls_are_escaped() {
        assert_eq!(
            escape("<b onclick=\"x\">&'"),
            "&lt;b onclick=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(escape("a\u{1b}[31m"), "a&#x241b;[31m");
        assert_eq!(escape("x\u{202e}y"), "x⟨U+202E⟩y");
    }
}
