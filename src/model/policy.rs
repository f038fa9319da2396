//! Review policy: what is allowed, what forces review, what each decision sets in motion.
//! Comes from config, never from code (DESIGN.md "Policy").
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An outbound action an approval can trigger.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// monday.com item write.
    Crm,
    /// Slack alert.
    Slack,
    /// Gmail draft.
    Gmail,
}

impl ActionKind {
    pub const ALL: [ActionKind; 3] = [ActionKind::Crm, ActionKind::Slack, ActionKind::Gmail];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Crm => "crm",
            ActionKind::Slack => "slack",
            ActionKind::Gmail => "gmail",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One entry of the reject-reason taxonomy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectReason {
    pub key: String,
    pub label: String,
}

/// A named queue items can be escalated to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationQueue {
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// Actions queued when an item is escalated here (e.g. a Slack alert).
    #[serde(default)]
    pub actions: Vec<ActionKind>,
}

/// One value of the outcome list (what happened after a decision).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeKind {
    pub key: String,
    pub label: String,
    /// The reviewer must say why (e.g. "lost").
    #[serde(default)]
    pub needs_reason: bool,
}

/// Rules that force human review even where auto-approval is on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewRules {
    /// Intents that always need a person.
    pub intents: Vec<String>,
    /// Priorities that always need a person.
    pub priorities: Vec<String>,
    /// Any item whose AI output carries an escalation reason.
    pub escalation_reason: bool,
    /// Any item whose AI output says `human_review_required: true`.
    pub ai_requests_review: bool,
    /// Any item with a validation flag.
    pub flagged: bool,
}

impl Default for ReviewRules {
    fn default() -> Self {
        ReviewRules {
            intents: vec!["complaint".into(), "billing_question".into()],
            priorities: vec!["urgent".into()],
            escalation_reason: true,
            ai_requests_review: true,
            flagged: true,
        }
    }
}

/// The review policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Intents the AI may assign.
    pub intents: Vec<String>,
    /// Priorities, most urgent first: the queue is ordered by this list, then by age.
    /// A priority is matched without regard to ASCII case ("Medium" is read as "medium").
    pub priorities: Vec<String>,
    /// Other names models use for a priority, each read as the priority it names
    /// (`normal = "medium"`); matched without regard to ASCII case, like the priorities.
    /// The value as sent is kept and shown beside the one it was read as.
    pub priority_aliases: BTreeMap<String, String>,
    /// Below this confidence an item always needs review. Missing confidence always does.
    pub confidence_threshold: f64,
    /// Auto-approval above the threshold where no review rule applies. Off by default.
    pub auto_approve: bool,
    pub review: ReviewRules,
    /// How long a claim lasts without a heartbeat.
    pub lease_seconds: u64,
    /// How long after a decision it can be taken back, before its actions leave the outbox.
    pub undo_seconds: u64,
    pub reject_reasons: Vec<RejectReason>,
    pub escalation_queues: Vec<EscalationQueue>,
    /// Actions an approval triggers, per intent. Intents not listed trigger none.
    pub actions: BTreeMap<String, Vec<ActionKind>>,
    /// Actions that never leave without a person's approval, even under auto-approval.
    pub never_auto_send: Vec<ActionKind>,
    /// Share (0..1) of items that would not need review but are sent to review anyway, marked "sample".
    pub sample_rate: f64,
    /// Service level per priority, in minutes from receipt to decision.
    pub sla_minutes: BTreeMap<String, u64>,
    /// What can be recorded after the fact (`O` in the console, `signoff outcome`).
    pub outcomes: Vec<OutcomeKind>,
    /// An hour whose ingest volume exceeds this many times the baseline (the median
    /// hourly volume of the previous 7 days) raises a volume alert.
    pub volume_alert_factor: f64,
    /// ... and at least this many requests (quiet queues do not alert on 3 vs 1).
    pub volume_alert_min: u64,
}

impl Default for Policy {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let reasons = [
            ("wrong_intent", "Wrong intent"),
            ("inaccurate_summary", "Summary is inaccurate"),
            ("bad_draft", "Draft reply is wrong or off-tone"),
            ("missing_info", "Needs information we don't have"),
            ("duplicate", "Duplicate of another request"),
            ("spam", "Spam or abuse"),
            ("policy", "Against policy"),
            ("other", "Other (see note)"),
        ];
        let queues = [
            ("legal", "Legal", &[ActionKind::Slack][..]),
            ("billing", "Billing team", &[ActionKind::Slack][..]),
            ("security", "Security", &[ActionKind::Slack][..]),
            ("management", "Management", &[][..]),
        ];
        use ActionKind::*;
        let actions: [(&str, &[ActionKind]); 7] = [
            ("sales_lead", &[Crm, Slack, Gmail]),
            ("support_request", &[Crm, Gmail]),
            ("billing_question", &[Crm, Gmail]),
            ("complaint", &[Crm, Slack, Gmail]),
            ("partnership", &[Crm, Slack]),
            ("job_application", &[Gmail]),
            ("other", &[Crm]),
        ];
        Policy {
            intents: s(&[
                "sales_lead",
                "support_request",
                "billing_question",
                "complaint",
                "partnership",
                "job_application",
                "spam",
                "other",
            ]),
            priorities: s(&["urgent", "high", "medium", "low"]),
            priority_aliases: [("normal", "medium")]
                .iter()
                .map(|(a, p)| (a.to_string(), p.to_string()))
                .collect(),
            confidence_threshold: 0.75,
            auto_approve: false,
            review: ReviewRules::default(),
            lease_seconds: 300,
            undo_seconds: 30,
            reject_reasons: reasons
                .iter()
                .map(|(k, l)| RejectReason {
                    key: k.to_string(),
                    label: l.to_string(),
                })
                .collect(),
            escalation_queues: queues
                .iter()
                .map(|(n, l, a)| EscalationQueue {
                    name: n.to_string(),
                    label: l.to_string(),
                    actions: a.to_vec(),
                })
                .collect(),
            actions: actions
                .iter()
                .map(|(i, a)| (i.to_string(), a.to_vec()))
                .collect(),
            never_auto_send: vec![Gmail],
            sample_rate: 0.05,
            sla_minutes: [("urgent", 15), ("high", 60), ("medium", 240), ("low", 1440)]
                .iter()
                .map(|(p, m)| (p.to_string(), *m))
                .collect(),
            outcomes: [
                ("qualified", "Qualified", false),
                ("disqualified", "Disqualified", true),
                ("reply_received", "Reply received", false),
                ("meeting_booked", "Meeting booked", false),
                ("won", "Won", false),
                ("lost", "Lost", true),
                ("wrong_intent", "Intent was wrong", true),
                ("no_response", "No response", false),
            ]
            .iter()
            .map(|(k, l, r)| OutcomeKind {
                key: k.to_string(),
                label: l.to_string(),
                needs_reason: *r,
            })
            .collect(),
            volume_alert_factor: 3.0,
            volume_alert_min: 20,
        }
    }
}

/// The version of the rules that derive stored columns from a request under a policy
/// (how priorities are read, what is flagged): a new version makes stores re-check.
const RULES_VERSION: u32 = 1;

/// A policy problem found at load, with the key it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyError {
    /// Dotted key, e.g. `policy.review.intents`.
    pub key: String,
    pub message: String,
}

impl Policy {
    /// The allowed priority a value is read as: a priority or an alias of one, matched
    /// without regard to ASCII case or surrounding whitespace. `None`: not a priority
    /// this policy knows.
    pub fn read_priority(&self, value: &str) -> Option<&str> {
        let v = value.trim();
        let allowed = |name: &str| {
            self.priorities
                .iter()
                .find(|p| p.eq_ignore_ascii_case(name))
                .map(String::as_str)
        };
        allowed(v).or_else(|| {
            self.priority_aliases
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(v))
                .and_then(|(_, target)| allowed(target))
        })
    }

    /// The priority as read where the policy knows it, else the value as it is.
    pub fn priority_as_read<'a>(&'a self, value: &'a str) -> &'a str {
        self.read_priority(value).unwrap_or(value)
    }

    /// Queue order of a priority: the index in `priorities` of the priority it is read as.
    /// Unknown or missing priorities sort first: an item whose priority cannot be trusted
    /// gets a person's eyes soonest.
    pub fn priority_rank(&self, priority: Option<&str>) -> i64 {
        priority
            .and_then(|p| self.read_priority(p))
            .and_then(|p| self.priorities.iter().position(|x| x == p))
            .map_or(0, |i| i as i64)
    }

    /// What the derived columns of stored items depend on (allowed values, aliases, and
    /// the version of the rules that read them), as JSON: a store keeps it beside the
    /// items so a later re-check knows what their columns were computed under.
    pub fn validation_rules(&self) -> serde_json::Value {
        serde_json::json!({
            "version": RULES_VERSION,
            "intents": self.intents,
            "priorities": self.priorities,
            "priority_aliases": self.priority_aliases,
        })
    }

    /// A policy with these [`Policy::validation_rules`] (the rest at its defaults), if
    /// they are of this build's version.
    pub fn with_validation_rules(rules: &serde_json::Value) -> Option<Policy> {
        #[derive(Deserialize)]
        struct Rules {
            version: u32,
            intents: Vec<String>,
            priorities: Vec<String>,
            priority_aliases: BTreeMap<String, String>,
        }
        let r = Rules::deserialize(rules).ok()?;
        (r.version == RULES_VERSION).then(|| Policy {
            intents: r.intents,
            priorities: r.priorities,
            priority_aliases: r.priority_aliases,
            ..Policy::default()
        })
    }

    /// A short digest of [`Policy::validation_rules`]: a store re-checks its open items
    /// when the digest it recorded differs.
    pub fn validation_digest(&self) -> String {
        let digest = Sha256::digest(self.validation_rules().to_string().as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn reject_reason(&self, key: &str) -> Option<&RejectReason> {
        self.reject_reasons.iter().find(|r| r.key == key)
    }

    pub fn escalation_queue(&self, name: &str) -> Option<&EscalationQueue> {
        self.escalation_queues.iter().find(|q| q.name == name)
    }

    /// Actions a decision sets in motion: an approval's by intent, an escalation's by
    /// queue, none for a rejection.
    pub fn actions_of(&self, kind: &super::DecisionKind, intent: Option<&str>) -> Vec<ActionKind> {
        use super::DecisionKind;
        match kind {
            DecisionKind::Approve => self.actions_for(intent.unwrap_or_default()).to_vec(),
            DecisionKind::Escalate { queue } => self
                .escalation_queue(queue)
                .map(|q| q.actions.clone())
                .unwrap_or_default(),
            DecisionKind::Reject { .. } => Vec::new(),
        }
    }

    /// Actions an approval of this intent triggers.
    pub fn actions_for(&self, intent: &str) -> &[ActionKind] {
        self.actions.get(intent).map_or(&[], Vec::as_slice)
    }

    pub fn outcome(&self, key: &str) -> Option<&OutcomeKind> {
        self.outcomes.iter().find(|o| o.key == key)
    }

    /// The SLA of the priority a value is read as.
    pub fn sla_minutes_for(&self, priority: Option<&str>) -> Option<u64> {
        priority
            .and_then(|p| self.read_priority(p))
            .and_then(|p| self.sla_minutes.get(p).copied())
    }

    /// A short, stable fingerprint of the policy, recorded in the audit log with each ingest.
    pub fn version(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Drops built-in defaults that name intents or priorities this policy no longer has:
    /// a user who replaces `priorities` did not write the default SLA of a priority they
    /// removed, and should not get an error about it. `user_set(key)` (a key below
    /// `policy`, e.g. `sla_minutes.medium`) says whether the user's config set a value;
    /// those are kept and checked.
    pub fn drop_stale_defaults(&mut self, user_set: impl Fn(&str) -> bool) {
        let priorities = self.priorities.clone();
        let intents = self.intents.clone();
        let is_priority = |p: &str| priorities.iter().any(|x| x == p);
        self.sla_minutes
            .retain(|p, _| is_priority(p) || user_set(&format!("sla_minutes.{p}")));
        self.actions
            .retain(|i, _| intents.contains(i) || user_set(&format!("actions.{i}")));
        self.priority_aliases.retain(|alias, target| {
            let fits = !priorities.iter().any(|p| p.eq_ignore_ascii_case(alias))
                && priorities.iter().any(|p| p.eq_ignore_ascii_case(target));
            fits || user_set(&format!("priority_aliases.{alias}"))
        });
        if !user_set("review.intents") {
            self.review.intents.retain(|i| intents.contains(i));
        }
        if !user_set("review.priorities") {
            self.review.priorities.retain(|p| is_priority(p));
        }
    }

    /// Checks the policy for contradictions; every problem names its key and what is allowed.
    pub fn check(&self) -> Vec<PolicyError> {
        let mut errs = Vec::new();
        let mut err = |key: &str, message: String| {
            errs.push(PolicyError {
                key: format!("policy.{key}"),
                message,
            })
        };
        if self.intents.is_empty() {
            err("intents", "must list at least one intent".into());
        }
        if self.priorities.is_empty() {
            err("priorities", "must list at least one priority".into());
        }
        if let Some(d) = first_duplicate(self.intents.iter().map(String::as_str)) {
            err("intents", format!("'{d}' is listed twice"));
        }
        // Priorities are read without regard to case, so "High" and "high" are one.
        let lower = |list: Vec<&String>| -> Vec<String> {
            list.into_iter().map(|p| p.to_ascii_lowercase()).collect()
        };
        let priorities = lower(self.priorities.iter().collect());
        if let Some(d) = first_duplicate(priorities.iter().map(String::as_str)) {
            err(
                "priorities",
                format!("'{d}' is listed twice (priorities are read without regard to case)"),
            );
        }
        let aliases = lower(self.priority_aliases.keys().collect());
        if let Some(d) = first_duplicate(aliases.iter().map(String::as_str)) {
            err(
                &format!("priority_aliases.{d}"),
                format!("'{d}' is listed twice (aliases are read without regard to case)"),
            );
        }
        for (alias, target) in &self.priority_aliases {
            if self
                .priorities
                .iter()
                .any(|p| p.eq_ignore_ascii_case(alias))
            {
                err(
                    &format!("priority_aliases.{alias}"),
                    format!("'{alias}' is a priority itself; an alias must be another name"),
                );
            } else if !self
                .priorities
                .iter()
                .any(|p| p.eq_ignore_ascii_case(target))
            {
                err(
                    &format!("priority_aliases.{alias}"),
                    format!(
                        "'{target}' is not an allowed priority; allowed: {}",
                        self.priorities.join(", ")
                    ),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.confidence_threshold) {
            err(
                "confidence_threshold",
                format!(
                    "{} is outside 0..1; use a number like 0.75",
                    self.confidence_threshold
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.sample_rate) {
            err(
                "sample_rate",
                format!(
                    "{} is outside 0..1; use a share like 0.05",
                    self.sample_rate
                ),
            );
        }
        if self.lease_seconds < 10 {
            err(
                "lease_seconds",
                format!("{} is too short; use at least 10", self.lease_seconds),
            );
        }
        let allowed = |list: &[String]| list.join(", ");
        for i in &self.review.intents {
            if !self.intents.contains(i) {
                err(
                    "review.intents",
                    format!(
                        "'{i}' is not an allowed intent; allowed: {}",
                        allowed(&self.intents)
                    ),
                );
            }
        }
        for p in &self.review.priorities {
            if !self.priorities.contains(p) {
                err(
                    "review.priorities",
                    format!(
                        "'{p}' is not an allowed priority; allowed: {}",
                        allowed(&self.priorities)
                    ),
                );
            }
        }
        for i in self.actions.keys() {
            if !self.intents.contains(i) {
                err(
                    &format!("actions.{i}"),
                    format!(
                        "'{i}' is not an allowed intent; allowed: {}",
                        allowed(&self.intents)
                    ),
                );
            }
        }
        for p in self.sla_minutes.keys() {
            if !self.priorities.contains(p) {
                err(
                    &format!("sla_minutes.{p}"),
                    format!(
                        "'{p}' is not an allowed priority; allowed: {}",
                        allowed(&self.priorities)
                    ),
                );
            }
        }
        if self.reject_reasons.is_empty() {
            err("reject_reasons", "must list at least one reason".into());
        }
        if self.reject_reasons.len() > 9 {
            err(
                "reject_reasons",
                format!(
                    "{} reasons listed; at most 9 (they are picked with the keys 1-9)",
                    self.reject_reasons.len()
                ),
            );
        }
        if let Some(d) = first_duplicate(self.reject_reasons.iter().map(|r| r.key.as_str())) {
            err("reject_reasons", format!("key '{d}' is listed twice"));
        }
        if let Some(d) = first_duplicate(self.outcomes.iter().map(|o| o.key.as_str())) {
            err("outcomes", format!("key '{d}' is listed twice"));
        }
        if self.volume_alert_factor <= 1.0 {
            err(
                "volume_alert_factor",
                format!(
                    "{} would alert on ordinary hours; use a factor above 1, like 3",
                    self.volume_alert_factor
                ),
            );
        }
        if let Some(d) = first_duplicate(self.escalation_queues.iter().map(|q| q.name.as_str())) {
            err("escalation_queues", format!("queue '{d}' is listed twice"));
        }
        errs
    }
}

fn first_duplicate<'a>(items: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().find(|i| !seen.insert(*i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_consistent() {
        assert_eq!(Policy::default().check(), vec![]);
    }

    #[test]
    fn contradictions_name_their_key() {
        let mut p = Policy::default();
        p.review.intents.push("refund".into());
        p.confidence_threshold = 1.5;
        let errs = p.check();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].key, "policy.confidence_threshold");
        assert_eq!(errs[1].key, "policy.review.intents");
        assert!(
            errs[1]
                .message
                .contains("'refund' is not an allowed intent")
        );
    }

    #[test]
    fn priorities_are_read_in_any_case_and_through_aliases() {
        let p = Policy::default();
        assert_eq!(p.priorities, ["urgent", "high", "medium", "low"]);
        assert_eq!(p.read_priority("medium"), Some("medium"));
        assert_eq!(p.read_priority(" Medium "), Some("medium"));
        assert_eq!(p.read_priority("Normal"), Some("medium"));
        assert_eq!(p.read_priority("NORMAL"), Some("medium"));
        assert_eq!(p.read_priority("asap"), None);
        assert_eq!(p.priority_as_read("asap"), "asap");
        assert_eq!(p.priority_rank(Some("normal")), 2);
        assert_eq!(p.sla_minutes_for(Some("Normal")), Some(240));
        assert_eq!(p.sla_minutes_for(Some("HIGH")), Some(60));
    }

    #[test]
    fn aliases_must_name_a_priority_and_not_be_one() {
        let mut p = Policy::default();
        p.priority_aliases.insert("High".into(), "urgent".into());
        p.priority_aliases.insert("soon".into(), "asap".into());
        let errs = p.check();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "policy.priority_aliases.High",
                "policy.priority_aliases.soon"
            ]
        );
        assert!(errs[0].message.contains("is a priority itself"), "{errs:?}");
        assert!(
            errs[1]
                .message
                .contains("'asap' is not an allowed priority"),
            "{errs:?}"
        );
        let mut p = Policy::default();
        p.priorities.push("Low".into());
        assert!(p.check()[0].message.contains("listed twice"));
    }

    #[test]
    fn defaults_left_behind_by_the_users_lists_are_dropped_unless_they_set_them() {
        let mut p = Policy {
            priorities: vec!["p1".into(), "p2".into()],
            intents: vec!["other".into()],
            ..Policy::default()
        };
        p.sla_minutes.insert("p1".into(), 5);
        p.drop_stale_defaults(|k| k == "sla_minutes.p1" || k == "actions.complaint");
        assert_eq!(p.sla_minutes.keys().collect::<Vec<_>>(), ["p1"]);
        assert_eq!(
            p.actions.keys().collect::<Vec<_>>(),
            ["complaint", "other"],
            "a key the user set stays, to be reported"
        );
        assert!(p.priority_aliases.is_empty());
        assert!(p.review.intents.is_empty() && p.review.priorities.is_empty());
        assert_eq!(
            p.check().iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["policy.actions.complaint"]
        );
    }

    #[test]
    fn the_validation_rules_round_trip_and_digest() {
        let p = Policy::default();
        let back = Policy::with_validation_rules(&p.validation_rules()).unwrap();
        assert_eq!(back.validation_digest(), p.validation_digest());
        let mut q = Policy {
            lease_seconds: 60,
            ..Policy::default()
        };
        assert_eq!(
            q.validation_digest(),
            p.validation_digest(),
            "leases are not rules"
        );
        q.priority_aliases.insert("asap".into(), "urgent".into());
        assert_ne!(q.validation_digest(), p.validation_digest());
    }

    #[test]
    fn unknown_priorities_rank_first() {
        let p = Policy::default();
        assert_eq!(p.priority_rank(Some("low")), 3);
        assert_eq!(p.priority_rank(Some("whenever")), 0);
        assert_eq!(p.priority_rank(None), 0);
    }
}
