//! Request and answer bodies of `signoff serve`'s HTTP API that are not queue types
//! themselves. The queue types (`Claim`, `Decision`, `Page`, …) travel as they are.
use crate::model::{DecisionKind, EditableField};
use crate::queue::Decision;

/// A held claim, named by its fence (the item is in the path; the reviewer is whoever is
/// calling).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FenceBody {
    pub fence: i64,
}

/// One field edit under a claim.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct EditBody {
    pub fence: i64,
    pub field: EditableField,
    /// `null` clears the field.
    pub value: Option<String>,
}

/// A decision under a claim.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DecideBody {
    pub fence: i64,
    pub decision: Decision,
}

/// What a decision would send.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PreviewBody {
    pub kind: DecisionKind,
    #[serde(default)]
    pub note: Option<String>,
}

/// The digest of a preview the reviewer was shown.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DigestBody {
    pub digest: String,
}

/// An outcome after a decision.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OutcomeBody {
    pub value: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The actions kill switch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KillSwitch {
    pub paused: bool,
}

/// The queue's change token, as a decimal string (it does not fit a JSON number exactly).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ChangeToken {
    pub token: String,
}

/// Who the server takes the caller for.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Whoami {
    /// The name recorded on claims, edits and decisions.
    pub name: String,
    pub role: crate::config::Role,
    /// How the caller was identified: `unix` (peer credentials), `token` or `webhook`.
    pub via: String,
    /// The database the server serves.
    pub database: String,
}

/// An error answer: a stable `code`, a sentence for people, and for queue errors the
/// error's fields in `detail`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// One entry of an ingest that was not taken (or conflicted), as `signoff ingest` reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IngestProblem {
    /// The line (JSON Lines) or element (array) of the body, from 1.
    pub line: u64,
    pub reason: String,
}

/// The answer to `POST /v1/ingest`: the totals and each entry not taken.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IngestAnswer {
    pub ingested: u64,
    pub duplicates: u64,
    pub revised: u64,
    pub rejected: u64,
    pub conflicts: u64,
    /// The line `signoff ingest` prints ("ingested 9, duplicates 1, …").
    pub summary: String,
    pub problems: Vec<IngestProblem>,
}

/// A token to make.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    pub name: String,
    pub role: crate::config::Role,
    /// How long it lives: `90d`, `12h`, `30m`, `45s`; none means until revoked.
    #[serde(default)]
    pub expires: Option<String>,
}

/// A token just made: the only time the token itself is shown.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: String,
    pub record: crate::store::TokenRecord,
}
