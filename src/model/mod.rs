//! The domain: requests as ingested, the AI triage fields, review policy, validation and
//! item states. Knows no screen and does no I/O.
mod fields;
mod plan;
mod policy;
mod request;
mod state;
mod validate;

pub use fields::{EditableField, FieldValues};
pub use plan::{ActionPlan, Skip, skip_reason};
pub use policy::{ActionKind, EscalationQueue, OutcomeKind, Policy, RejectReason, ReviewRules};
pub(crate) use request::json_type as json_type_name;
pub use request::{Confidence, IngestError, Raw, Request, Triage};
pub use state::{DecisionKind, State};
pub use validate::{Flag, check_fields, review_reasons, validate};
