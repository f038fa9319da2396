//! The triage fields a reviewer can change, and the effective values after edits.
use std::str::FromStr;

use super::{Policy, Triage};

/// A field of the AI triage that a reviewer may edit.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EditableField {
    Summary,
    Intent,
    Priority,
    RecommendedNextStep,
    EscalationReason,
    DraftReply,
}

impl EditableField {
    pub const ALL: [EditableField; 6] = [
        EditableField::Summary,
        EditableField::Intent,
        EditableField::Priority,
        EditableField::RecommendedNextStep,
        EditableField::EscalationReason,
        EditableField::DraftReply,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EditableField::Summary => "summary",
            EditableField::Intent => "intent",
            EditableField::Priority => "priority",
            EditableField::RecommendedNextStep => "recommended_next_step",
            EditableField::EscalationReason => "escalation_reason",
            EditableField::DraftReply => "draft_reply",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EditableField::Summary => "Summary",
            EditableField::Intent => "Intent",
            EditableField::Priority => "Priority",
            EditableField::RecommendedNextStep => "Next step",
            EditableField::EscalationReason => "Escalation",
            EditableField::DraftReply => "Draft reply",
        }
    }

    /// The AI's value of this field.
    pub fn ai_value(self, ai: &Triage) -> Option<&str> {
        match self {
            EditableField::Summary => ai.summary.as_deref(),
            EditableField::Intent => ai.intent.as_deref(),
            EditableField::Priority => ai.priority.as_deref(),
            EditableField::RecommendedNextStep => ai.recommended_next_step.as_deref(),
            EditableField::EscalationReason => ai.escalation_reason.as_deref(),
            EditableField::DraftReply => ai.draft_reply.as_deref(),
        }
    }

    /// The AI's value of this field as the policy reads it: a priority sent in another
    /// case or as an alias is the allowed priority it names; anything else as sent.
    pub fn read_value<'a>(self, ai: &'a Triage, policy: &'a Policy) -> Option<&'a str> {
        let v = self.ai_value(ai)?;
        Some(match self {
            EditableField::Priority => policy.priority_as_read(v),
            _ => v,
        })
    }
}

impl FromStr for EditableField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        let norm = match norm.as_str() {
            "next_step" => "recommended_next_step",
            "draft" | "reply" => "draft_reply",
            "escalation" => "escalation_reason",
            other => other,
        };
        EditableField::ALL
            .into_iter()
            .find(|f| f.as_str() == norm)
            .ok_or_else(|| {
                format!(
                    "'{s}' is not an editable field; editable: {}",
                    EditableField::ALL.map(|f| f.as_str()).join(", ")
                )
            })
    }
}

/// Effective field values: the AI's proposal with the reviewer's edits on top.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct FieldValues {
    pub summary: Option<String>,
    pub intent: Option<String>,
    pub priority: Option<String>,
    pub recommended_next_step: Option<String>,
    pub escalation_reason: Option<String>,
    pub draft_reply: Option<String>,
}

impl FieldValues {
    pub fn from_ai(ai: &Triage) -> FieldValues {
        let mut v = FieldValues::default();
        for f in EditableField::ALL {
            v.set(f, f.ai_value(ai).map(str::to_owned));
        }
        v
    }

    /// The AI's values as the policy reads them (see [`EditableField::read_value`]): what
    /// a reviewer reviews and what actions are rendered from.
    pub fn read_from_ai(ai: &Triage, policy: &Policy) -> FieldValues {
        let mut v = FieldValues::default();
        for f in EditableField::ALL {
            v.set(f, f.read_value(ai, policy).map(str::to_owned));
        }
        v
    }

    pub fn get(&self, f: EditableField) -> Option<&str> {
        match f {
            EditableField::Summary => self.summary.as_deref(),
            EditableField::Intent => self.intent.as_deref(),
            EditableField::Priority => self.priority.as_deref(),
            EditableField::RecommendedNextStep => self.recommended_next_step.as_deref(),
            EditableField::EscalationReason => self.escalation_reason.as_deref(),
            EditableField::DraftReply => self.draft_reply.as_deref(),
        }
    }

    /// Sets a field; an empty string clears it.
    pub fn set(&mut self, f: EditableField, value: Option<String>) {
        let value = value.filter(|v| !v.is_empty());
        let slot = match f {
            EditableField::Summary => &mut self.summary,
            EditableField::Intent => &mut self.intent,
            EditableField::Priority => &mut self.priority,
            EditableField::RecommendedNextStep => &mut self.recommended_next_step,
            EditableField::EscalationReason => &mut self.escalation_reason,
            EditableField::DraftReply => &mut self.draft_reply,
        };
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_parse_with_aliases() {
        assert_eq!("next-step".parse(), Ok(EditableField::RecommendedNextStep));
        assert_eq!("draft_reply".parse(), Ok(EditableField::DraftReply));
        let err = "confidence".parse::<EditableField>().unwrap_err();
        assert!(err.contains("not an editable field"), "{err}");
    }
}
