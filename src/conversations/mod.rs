//! Conversations (DESIGN 4.7): an agent with a responder answers when it is
//! spoken to. The platform shells hand addressed messages to
//! [`Conversations`] (the neutral handler); a turn is recorded before
//! anything is called, answered at most once by the configured responder
//! (a [`Responder`] that streams, or a hand-off to another inbox answered
//! by a `reply` item), and shown through the platform's [`ChatPort`].
//!
//! Rooms: [`turn`] (the data), [`context`] (what the responder reads),
//! [`stream`] (typing, first text, paced edits, pages), [`guard`] (the
//! bot-pair limit), [`service`] (the handler), [`ports`] (the two ports),
//! [`stats`] (metrics), [`incoming`] (files people attach), [`records`]
//! (how turns are kept in the agent's database). No adapter is imported here.

pub mod context;
pub mod guard;
pub mod incoming;
pub mod ports;
pub mod records;
pub mod service;
pub mod stats;
pub mod stream;
pub mod turn;

pub use ports::{
    BoxFuture, ChatPort, PortError, Prompt, PromptMessage, Responder, ResponderError, Role,
};
pub use service::{
    Accepted, Answerer, Conversations, Handoff, INTERRUPTED, ReplyRefused, day_start,
};
pub use stats::ConversationStats;
pub use turn::{
    Author, ConversationId, Exchange, FileSource, IncomingFile, Place, Turn, TurnId, TurnRequest,
    TurnState, Usage,
};
