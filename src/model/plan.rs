//! What a decision sets in motion for one item: the actions the policy names for it, less
//! those the item itself rules out (the AI said no CRM update is needed; there is no draft
//! reply to put in a Gmail draft). A ruled-out action is not an error: it is not queued,
//! and the preview and the receipt say why.
use super::{ActionKind, DecisionKind, FieldValues, Policy, Triage};

/// Why an action the policy names is not queued for this item.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// The AI set `crm_update_required` to false.
    CrmNotRequired,
    /// No draft reply: the AI wrote none and no reviewer has.
    NoDraft,
    /// The AI wrote a draft reply and a reviewer cleared it.
    DraftCleared,
}

impl Skip {
    /// One line saying what is not sent and why.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::CrmNotRequired => "no CRM update: the AI set crm_update_required to false",
            Skip::NoDraft => "no Gmail draft: the AI wrote none",
            Skip::DraftCleared => "no Gmail draft: the draft reply was cleared",
        }
    }

    /// Whether writing a draft reply (an edit) would queue the action after all.
    pub fn fixed_by_a_draft(self) -> bool {
        matches!(self, Skip::NoDraft | Skip::DraftCleared)
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// The actions a decision queues and those it leaves out, in the policy's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionPlan {
    pub queued: Vec<ActionKind>,
    pub skipped: Vec<(ActionKind, Skip)>,
}

/// Why this item does not get `action`, if it does not.
pub fn skip_reason(action: ActionKind, fields: &FieldValues, ai: &Triage) -> Option<Skip> {
    let blank = |s: Option<&str>| s.is_none_or(|s| s.trim().is_empty());
    match action {
        ActionKind::Crm if ai.crm_update_required == Some(false) => Some(Skip::CrmNotRequired),
        ActionKind::Gmail if blank(fields.draft_reply.as_deref()) => {
            Some(if blank(ai.draft_reply.as_deref()) {
                Skip::NoDraft
            } else {
                Skip::DraftCleared
            })
        }
        _ => None,
    }
}

impl Policy {
    /// The actions deciding `kind` on an item with these reviewed `fields` (and the AI's
    /// `ai` output) queues, and those it leaves out with why.
    pub fn plan_actions(
        &self,
        kind: &DecisionKind,
        fields: &FieldValues,
        ai: &Triage,
    ) -> ActionPlan {
        let mut plan = ActionPlan::default();
        for action in self.actions_of(kind, fields.intent.as_deref()) {
            match skip_reason(action, fields, ai) {
                Some(why) => plan.skipped.push((action, why)),
                None => plan.queued.push(action),
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triage(crm: Option<bool>, draft: Option<&str>) -> Triage {
        Triage {
            intent: Some("support_request".into()),
            crm_update_required: crm,
            draft_reply: draft.map(str::to_owned),
            ..Triage::default()
        }
    }

    #[test]
    fn an_item_rules_out_what_it_cannot_use() {
        let p = Policy::default();
        let approve = DecisionKind::Approve;
        let ai = triage(Some(true), Some("Hello"));
        let plan = p.plan_actions(&approve, &FieldValues::from_ai(&ai), &ai);
        assert_eq!(plan.queued, vec![ActionKind::Crm, ActionKind::Gmail]);
        assert!(plan.skipped.is_empty());

        let ai = triage(Some(false), None);
        let plan = p.plan_actions(&approve, &FieldValues::from_ai(&ai), &ai);
        assert!(plan.queued.is_empty());
        assert_eq!(
            plan.skipped,
            vec![
                (ActionKind::Crm, Skip::CrmNotRequired),
                (ActionKind::Gmail, Skip::NoDraft)
            ]
        );

        // Unknown (absent) crm_update_required keeps the CRM write; a cleared draft says so.
        let ai = triage(None, Some("Hello"));
        let mut fields = FieldValues::from_ai(&ai);
        fields.draft_reply = None;
        let plan = p.plan_actions(&approve, &fields, &ai);
        assert_eq!(plan.queued, vec![ActionKind::Crm]);
        assert_eq!(plan.skipped, vec![(ActionKind::Gmail, Skip::DraftCleared)]);
    }
}
