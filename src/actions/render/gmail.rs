//! Gmail: `users.drafts.create` with an RFC 2822 message built here (INTEGRATIONS.md §3):
//! CRLF line endings, RFC 2047 encoded non-ASCII headers, our own `Message-ID` (how an
//! ambiguous create is found again: the `lookup` step searches `rfc822msgid:`),
//! `In-Reply-To`/`References`/`threadId` when the inbound message's ids are known (Gmail
//! threads a draft only when all of them and the subject match), base64url `raw`.
//!
//! Any header value containing CR or LF is refused: request text is untrusted and a line
//! break there would let it write its own headers.
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use minijinja::value::Value;
use serde_json::json;

use crate::actions::config::GmailConfig;
use crate::actions::payload::{HttpRequest, Provider, Rendered};
use crate::actions::templates::Templates;
use crate::model::Request;

/// RFC 5322's hard line limit, without the CRLF.
const LINE_MAX: usize = 998;

pub fn render(
    cfg: &GmailConfig,
    t: &Templates,
    ctx: &Value,
    request: &Request,
    key: &str,
    tag: &str,
) -> Result<Rendered, String> {
    let body = t.render("actions.gmail.body", ctx)?;
    if body.trim().is_empty() {
        return Err("the Gmail draft has no body (the draft reply is empty): write one with the draft_reply field, or change policy.actions so this intent sends no email".into());
    }
    let to = request
        .raw
        .from
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or("the request has no sender (raw.from) to reply to")?;
    let to = mailbox("To (the request's sender)", to)?;
    let form = |name: &str| {
        request
            .raw
            .fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let parent = form(&cfg.message_id_field)
        .map(|id| message_id_header(&format!("raw.fields.{}", cfg.message_id_field), id))
        .transpose()?;
    let thread_id = form(&cfg.thread_id_field);
    let subject = if cfg.subject.trim().is_empty() {
        reply_subject(request.raw.subject.as_deref())
    } else {
        t.render("actions.gmail.subject", ctx)?.trim().to_string()
    };
    no_line_breaks("Subject", &subject)?;
    let message_id = format!("<{key}.{tag}@{}>", cfg.message_id_domain);
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .map_err(|e| format!("cannot format the Date header: {e}"))?;
    let mut headers: Vec<(&str, String)> = Vec::new();
    if !cfg.from.trim().is_empty() {
        headers.push(("From", mailbox("actions.gmail.from", &cfg.from)?));
    }
    headers.push(("To", to));
    headers.push(("Subject", encode_word(&subject)));
    headers.push(("Date", date));
    headers.push(("Message-ID", message_id.clone()));
    if let Some(p) = &parent {
        headers.push(("In-Reply-To", p.clone()));
        headers.push(("References", p.clone()));
    }
    headers.push(("X-Signoff-Key", key.to_string()));
    headers.push(("MIME-Version", "1.0".into()));
    headers.push(("Content-Type", "text/plain; charset=\"UTF-8\"".into()));
    let body = crlf(&body);
    let long_lines = body.split("\r\n").any(|l| l.len() > LINE_MAX);
    let (cte, body) = if long_lines {
        ("base64", wrap76(&STANDARD.encode(body.as_bytes())))
    } else {
        ("8bit", body)
    };
    headers.push(("Content-Transfer-Encoding", cte.into()));
    let mut msg = String::new();
    for (name, value) in &headers {
        let unfolded = value.replace("\r\n ", " ");
        no_line_breaks(name, &unfolded)?;
        if has_control(&unfolded) {
            return Err(format!(
                "refused: the {name} header value contains a control character; edit the request or the template"
            ));
        }
        msg.push_str(name);
        msg.push_str(": ");
        msg.push_str(value);
        msg.push_str("\r\n");
    }
    msg.push_str("\r\n");
    msg.push_str(&body);
    let raw = URL_SAFE.encode(msg.as_bytes());
    let mut message = json!({"raw": raw});
    // threadId without the parent's Message-ID would be ignored by Gmail: send both or neither.
    let threaded = parent.is_some() && thread_id.is_some();
    if let (true, Some(tid)) = (threaded, thread_id) {
        message["threadId"] = json!(tid);
    }
    let base = cfg.api_url.trim_end_matches('/');
    let user = &cfg.user;
    let q = format!("rfc822msgid:{message_id}");
    Ok(Rendered {
        provider: Provider::Gmail,
        key: key.into(),
        requests: vec![
            HttpRequest::post_json(
                "create",
                format!("{base}/gmail/v1/users/{user}/drafts"),
                json!({"message": message}),
            ),
            HttpRequest::get(
                "lookup",
                format!("{base}/gmail/v1/users/{user}/drafts?q={}", query_escape(&q)),
            ),
        ],
        meta: json!({
            "message_id": message_id,
            "thread_id": if threaded { thread_id } else { None },
            "threading": if threaded { "reply in thread" } else if parent.is_some() { "reply headers, no thread id: Gmail starts a new thread" } else { "new thread" },
        }),
    })
}

/// `Re: ` + the subject, unless it already is a reply.
pub fn reply_subject(subject: Option<&str>) -> String {
    let s = subject.map(str::trim).unwrap_or("");
    if s.is_empty() {
        "Re: your message".into()
    } else if s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:")) {
        s.to_string()
    } else {
        format!("Re: {s}")
    }
}

fn no_line_breaks(what: &str, v: &str) -> Result<(), String> {
    if v.contains(['\r', '\n', '\0']) {
        return Err(format!(
            "refused: the {what} header value contains a line break (header injection); edit the request or the template"
        ));
    }
    Ok(())
}

/// An inbound Message-ID as `<id>`: RFC 5322 allows only visible ASCII in it, so anything
/// else (a control character, a space, non-ASCII text) is refused rather than written into
/// `In-Reply-To` and `References`.
fn message_id_header(what: &str, id: &str) -> Result<String, String> {
    no_line_breaks(what, id)?;
    let inner = id
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(id);
    if inner.is_empty()
        || !inner
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
    {
        return Err(format!(
            "refused: {what} is not a Message-ID (visible ASCII like <abc@mail.example>): {:?}",
            crate::text::sanitize(id)
        ));
    }
    Ok(format!("<{inner}>"))
}

/// `Name <addr>` or `addr`, checked and with a non-ASCII name encoded.
pub fn mailbox(what: &str, s: &str) -> Result<String, String> {
    no_line_breaks(what, s)?;
    let s = s.trim();
    let (name, addr) = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => (
            s[..i].trim().trim_matches('"').trim(),
            &s[i + 1..s.len() - 1],
        ),
        _ => ("", s),
    };
    let addr = addr.trim();
    let valid = addr.split('@').count() == 2
        && addr.split('@').all(|p| !p.is_empty())
        && !addr.contains(|c: char| {
            c.is_whitespace() || c == '<' || c == '>' || c == ',' || c.is_control()
        });
    if !valid {
        return Err(format!("{what}: '{addr}' is not an email address"));
    }
    if name.is_empty() {
        return Ok(addr.to_string());
    }
    let name = if name.is_ascii() && !has_control(name) {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encode_word(name)
    };
    Ok(format!("{name} <{addr}>"))
}

/// A control character other than tab: never written into a header as it is.
fn has_control(s: &str) -> bool {
    s.contains(|c: char| c.is_control() && c != '\t')
}

/// RFC 2047 `=?UTF-8?B?…?=` for non-ASCII text (or text holding a control character),
/// folded into words of ≤ 75 characters.
pub fn encode_word(s: &str) -> String {
    if s.is_ascii() && !has_control(s) {
        return s.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        // 45 bytes of UTF-8 → 60 base64 characters + 12 of framing ≤ 75.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// Every line break as CRLF.
pub fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

fn wrap76(s: &str) -> String {
    s.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Percent-encodes a query value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_names_encoded() {
        assert_eq!(mailbox("To", "ada@example.com").unwrap(), "ada@example.com");
        assert_eq!(
            mailbox("To", "Ada L <ada@example.com>").unwrap(),
            "\"Ada L\" <ada@example.com>"
        );
        assert!(
            mailbox("To", "Zoë <zoe@example.com>")
                .unwrap()
                .starts_with("=?UTF-8?B?")
        );
        assert!(mailbox("To", "not an address").is_err());
        assert!(
            mailbox("To", "a@b.c\r\nBcc: x@y.z")
                .unwrap_err()
                .contains("header injection")
        );
    }

    #[test]
    fn control_characters_never_reach_a_header_as_they_are() {
        // Found by the fuzz targets: a Message-ID form field holding U+0001 went into
        // In-Reply-To and References verbatim.
        assert!(message_id_header("raw.fields.message_id", "¡\u{1}¡").is_err());
        assert!(message_id_header("raw.fields.message_id", "a b@c").is_err());
        assert!(message_id_header("raw.fields.message_id", "<>").is_err());
        assert_eq!(
            message_id_header("raw.fields.message_id", "abc@mail.example").unwrap(),
            "<abc@mail.example>"
        );
        assert_eq!(
            message_id_header("raw.fields.message_id", "<abc@mail.example>").unwrap(),
            "<abc@mail.example>"
        );
        // An ASCII subject or name with ESC or another control is encoded, not written raw.
        assert!(encode_word("Invoice \u{1b}[31mdue").starts_with("=?UTF-8?B?"));
        assert_eq!(encode_word("tab\tok"), "tab\tok");
        assert!(
            mailbox("To", "Ada\u{7} <ada@example.com>")
                .unwrap()
                .starts_with("=?UTF-8?B?")
        );
    }

    #[test]
    fn long_non_ascii_subjects_fold_into_short_words() {
        let w = encode_word(&"überprüfung ".repeat(10));
        for line in w.split("\r\n") {
            assert!(line.trim_start().len() <= 75, "{line}");
        }
        assert_eq!(reply_subject(Some("RE: x")), "RE: x");
        assert_eq!(reply_subject(Some("x")), "Re: x");
        // Subjects are not ASCII: the first three bytes may split a character.
        assert_eq!(reply_subject(Some("שלום")), "Re: שלום");
        assert_eq!(reply_subject(Some("日本")), "Re: 日本");
    }
}
