//! The `/` filter language: free text plus tokens — `p:high` (or `p:urgent,high`),
//! `c<0.6`, `c>=0.8`, `age>2h`, `age<30m`, `esc`, `hidden`, `intent:billing_question`.
use crate::queue::{Filter, Millis};

fn duration(s: &str) -> Result<Millis, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration; use 30m, 2h or 1d"))?;
    let ms = match unit {
        "s" => 1_000,
        "m" | "" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{s}': unit must be s, m, h or d")),
    };
    Ok(n.saturating_mul(ms))
}

fn number(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a confidence; use a number like 0.6"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("confidence {v} is outside 0..1"))
    }
}

/// Parses the filter line. Unknown `word:value` tokens are errors, so typos do not silently
/// turn into a text search.
pub fn parse(input: &str) -> Result<Filter, String> {
    let mut f = Filter::default();
    let mut text: Vec<&str> = Vec::new();
    for tok in input.split_whitespace() {
        let lower = tok.to_ascii_lowercase();
        if let Some(v) = lower
            .strip_prefix("p:")
            .or_else(|| lower.strip_prefix("priority:"))
        {
            f.priorities
                .extend(v.split(',').filter(|p| !p.is_empty()).map(str::to_string));
        } else if let Some(v) = lower
            .strip_prefix("intent:")
            .or_else(|| lower.strip_prefix("i:"))
        {
            f.intent = Some(v.to_string());
        } else if lower == "esc" || lower == "escalated" {
            f.escalation = true;
        } else if lower == "hidden" || lower == "hid" {
            f.hidden = true;
        } else if let Some(v) = lower
            .strip_prefix("c<=")
            .or_else(|| lower.strip_prefix("c<"))
        {
            f.conf_below = Some(number(v)?);
        } else if let Some(v) = lower
            .strip_prefix("c>=")
            .or_else(|| lower.strip_prefix("c>"))
        {
            f.conf_at_least = Some(number(v)?);
        } else if let Some(v) = lower.strip_prefix("age>") {
            f.older_than = Some(duration(v)?);
        } else if let Some(v) = lower.strip_prefix("age<") {
            f.newer_than = Some(duration(v)?);
        } else if let Some((k, _)) = tok.split_once(':').filter(|(k, v)| {
            !k.is_empty() && !v.is_empty() && k.chars().all(|c| c.is_ascii_alphabetic())
        }) && !tok.contains('@')
        {
            return Err(format!(
                "unknown filter '{k}:'; use p:, intent:, c<, c>=, age>, age<, esc, hidden or plain text"
            ));
        } else {
            text.push(tok);
        }
    }
    if !text.is_empty() {
        f.text = Some(text.join(" "));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_text() {
        let f = parse("p:high,urgent c<0.6 age>2h esc intent:billing refund  hidden").unwrap();
        assert_eq!(f.priorities, vec!["high", "urgent"]);
        assert_eq!(f.conf_below, Some(0.6));
        assert_eq!(f.older_than, Some(7_200_000));
        assert!(f.escalation && f.hidden);
        assert_eq!(f.intent.as_deref(), Some("billing"));
        assert_eq!(f.text.as_deref(), Some("refund"));
        assert_eq!(parse("").unwrap(), Filter::default());
        assert_eq!(parse("c>=0.8 age<30m").unwrap().newer_than, Some(1_800_000));
    }

    #[test]
    fn bad_tokens_say_what_to_write() {
        assert!(parse("c<2").unwrap_err().contains("outside 0..1"));
        assert!(parse("age>soon").unwrap_err().contains("duration"));
        assert!(parse("prio:high").unwrap_err().contains("unknown filter"));
        assert_eq!(
            parse("ana@example.com").unwrap().text.as_deref(),
            Some("ana@example.com")
        );
    }
}
