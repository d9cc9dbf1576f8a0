//! switchyard-routing: the pure core of the fleet's message flow.
//!
//! It owns the vocabulary every other part speaks (events, categories,
//! severities, destinations) and the decisions made over it: which rule sends
//! an event where, whether a mute or a digest window holds it, whether a
//! repeat is suppressed. Nothing here performs I/O or reads a clock: time is
//! always passed in, so every decision is deterministic and testable.

pub mod attachment;
pub mod destination;
pub mod digest;
pub mod event;
pub mod mute;
pub mod plan;
pub mod repeat;
pub mod rules;

pub use attachment::{AttachmentPath, MAX_ATTACHMENTS, check_attachments};
pub use destination::{Destination, DestinationError, Platform};
pub use digest::{HeldSummary, TITLES_PAGE_CHARS, title_pages};
pub use event::{
    Category, Event, EventDraft, EventError, EventId, MAX_BODY_CHARS, MAX_TITLE_CHARS, Severity,
};
pub use mute::{MAX_MUTE, Mute, MuteError, MuteId, MuteRequest, MuteTarget, holding_mute};
pub use plan::{Hold, Planned, plan};
pub use repeat::{RepeatLimiter, RepeatVerdict};
pub use rules::{
    Decision, Matcher, RouteInput, Router, RuleError, RuleProblem, RuleRef, RuleSpec, Target,
    UNMATCHED,
};
