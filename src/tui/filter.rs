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

/// Tokens a filter word may start as, for completion.
const KEYS: [&str; 8] = [
    "p:", "intent:", "c<", "c>=", "age>", "age<", "esc", "hidden",
];

/// Completes one filter word from the policy: `intent:bill` → `intent:billing_question`,
/// `p:hi` → `p:high`, `p:urgent,h` → `p:urgent,high`, `int` → `intent:`. Returns the word
/// as far as it is unambiguous and, when several remain, the choices.
pub fn complete(word: &str, policy: &crate::model::Policy) -> (String, Vec<String>) {
    let (prefix, partial, values): (String, &str, Vec<String>) =
        if let Some((k, v)) = word.split_once(':') {
            let values = match k.to_ascii_lowercase().as_str() {
                "intent" | "i" => policy.intents.clone(),
                "p" | "priority" => policy.priorities.clone(),
                _ => Vec::new(),
            };
            // A list (`p:urgent,hi`) completes its last value.
            let (done, last) = match v.rfind(',') {
                Some(i) => (&v[..=i], &v[i + 1..]),
                None => ("", v),
            };
            (format!("{k}:{done}"), last, values)
        } else {
            (
                String::new(),
                word,
                KEYS.iter().map(|k| k.to_string()).collect(),
            )
        };
    let lower = partial.to_lowercase();
    let matching: Vec<String> = values
        .into_iter()
        .filter(|v| v.to_lowercase().starts_with(&lower))
        .collect();
    match matching.as_slice() {
        [] => (word.to_string(), Vec::new()),
        [one] => {
            let end = if one.ends_with([':', '<', '>', '=']) {
                ""
            } else {
                " "
            };
            (format!("{prefix}{one}{end}"), Vec::new())
        }
        many => {
            let mut common = many[0].clone();
            for m in &many[1..] {
                let n = common
                    .chars()
                    .zip(m.chars())
                    .take_while(|(a, b)| a == b)
                    .count();
                common = common.chars().take(n).collect();
            }
            let common = if common.chars().count() >= partial.chars().count() {
                common
            } else {
                partial.to_string()
            };
            (format!("{prefix}{common}"), many.to_vec())
        }
    }
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
    fn words_complete_from_the_policy() {
        let p = crate::model::Policy::default();
        assert_eq!(
            complete("intent:bill", &p).0,
            "intent:billing_question ".to_string()
        );
        assert_eq!(complete("p:urg", &p).0, "p:urgent ");
        assert_eq!(complete("p:urgent,hi", &p).0, "p:urgent,high ");
        assert_eq!(complete("int", &p).0, "intent:");
        let (w, options) = complete("age", &p);
        assert_eq!((w.as_str(), options.len()), ("age", 2));
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
