//! Item states and decision kinds (DESIGN.md "States").
use std::fmt;
use std::str::FromStr;

/// Where an item is in review.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    InReview,
    Approved,
    Rejected,
    Escalated,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Pending,
        State::InReview,
        State::Approved,
        State::Rejected,
        State::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InReview => "in_review",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Escalated => "escalated",
        }
    }

    /// Decided items are final: new payloads for them are conflicts, not revisions.
    pub fn is_decided(self) -> bool {
        matches!(self, State::Approved | State::Rejected | State::Escalated)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == norm || (norm == "review" && *st == State::InReview))
            .ok_or_else(|| {
                format!(
                    "unknown state '{s}'; expected one of: pending, in_review, approved, rejected, escalated"
                )
            })
    }
}

/// What a reviewer decided.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecisionKind {
    Approve,
    /// `reason` is a key of the policy's reject-reason taxonomy.
    Reject {
        reason: String,
    },
    /// `queue` is the name of one of the policy's escalation queues.
    Escalate {
        queue: String,
    },
}

impl DecisionKind {
    pub fn state(&self) -> State {
        match self {
            DecisionKind::Approve => State::Approved,
            DecisionKind::Reject { .. } => State::Rejected,
            DecisionKind::Escalate { .. } => State::Escalated,
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Reject { .. } => "reject",
            DecisionKind::Escalate { .. } => "escalate",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
        }
        assert_eq!("in-review".parse::<State>().unwrap(), State::InReview);
        let err = "done".parse::<State>().unwrap_err();
        assert!(err.contains("'done'") && err.contains("pending"), "{err}");
    }
}
