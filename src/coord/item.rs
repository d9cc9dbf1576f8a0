//! What an inbox item is: the `kind` vocabulary, inference of the kind from
//! the shape where a producer left it out (the seeds' task files and event
//! payloads work as written), and clear errors for bytes that are not an item.
//!
//! Events parse as [`switchyard_routing::EventDraft`] (validated later by the
//! routing crate); the other kinds keep their JSON until their typed handlers
//! exist.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_routing::EventDraft;

/// The kinds of item an inbox accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Event,
    Task,
    ApprovalRequest,
    ApprovalDecision,
    Chat,
}

impl ItemKind {
    pub const ALL: [ItemKind; 5] = [
        ItemKind::Event,
        ItemKind::Task,
        ItemKind::ApprovalRequest,
        ItemKind::ApprovalDecision,
        ItemKind::Chat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Event => "event",
            ItemKind::Task => "task",
            ItemKind::ApprovalRequest => "approval_request",
            ItemKind::ApprovalDecision => "approval_decision",
            ItemKind::Chat => "chat",
        }
    }

    pub fn parse(text: &str) -> Option<ItemKind> {
        ItemKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One parsed inbox item.
#[derive(Debug, Clone, PartialEq)]
pub enum InboxItem {
    Event(Box<EventDraft>),
    Task(Value),
    ApprovalRequest(Value),
    ApprovalDecision(Value),
    Chat(Value),
}

impl InboxItem {
    pub fn kind(&self) -> ItemKind {
        match self {
            InboxItem::Event(_) => ItemKind::Event,
            InboxItem::Task(_) => ItemKind::Task,
            InboxItem::ApprovalRequest(_) => ItemKind::ApprovalRequest,
            InboxItem::ApprovalDecision(_) => ItemKind::ApprovalDecision,
            InboxItem::Chat(_) => ItemKind::Chat,
        }
    }
}

/// Why some bytes are not an inbox item. Each says what was wrong and what
/// to do; [`ItemError::to_reason`] is what goes into `failed/<id>.result.json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error(
        "the file is not UTF-8 text (invalid byte at offset {offset}); write the item as UTF-8 JSON"
    )]
    NotUtf8 { offset: usize },
    #[error("the file is empty; write one JSON object")]
    Empty,
    #[error(
        "the file is not JSON (line {line}, column {column}: {message}); write one JSON object"
    )]
    NotJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "the item is a JSON {found}, not an object; write one JSON object such as {{\"kind\": \"event\", ...}}"
    )]
    NotAnObject { found: &'static str },
    #[error(
        "`kind` must be a string, found a JSON {found}; use one of {}",
        kinds_list()
    )]
    KindNotString { found: &'static str },
    #[error("unknown kind {kind:?}; use one of {}", kinds_list())]
    UnknownKind { kind: String },
    #[error(
        "cannot tell what this item is: it has no `kind`, no `steps` array (a task) and no `event_type` or `category` (an event); add \"kind\": one of {}",
        kinds_list()
    )]
    UnknownShape,
    #[error("the {kind} has the wrong shape: {message}")]
    BadShape { kind: &'static str, message: String },
}

fn kinds_list() -> String {
    ItemKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl ItemError {
    /// A short machine-readable code for the result file and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ItemError::NotUtf8 { .. } => "not_utf8",
            ItemError::Empty => "empty",
            ItemError::NotJson { .. } => "not_json",
            ItemError::NotAnObject { .. } => "not_an_object",
            ItemError::KindNotString { .. } => "kind_not_string",
            ItemError::UnknownKind { .. } => "unknown_kind",
            ItemError::UnknownShape => "unknown_shape",
            ItemError::BadShape { .. } => "bad_shape",
        }
    }

    /// The `reason` object written beside a failed item.
    pub fn to_reason(&self) -> Value {
        serde_json::json!({ "error": self.code(), "message": self.to_string() })
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses the bytes of an inbox file.
pub fn parse_item(bytes: &[u8]) -> Result<InboxItem, ItemError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| ItemError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(ItemError::Empty);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| ItemError::NotJson {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(ItemError::NotAnObject {
            found: json_type(&value),
        });
    };
    let kind = item_kind(&map)?;
    let value = Value::Object(map);
    Ok(match kind {
        ItemKind::Event => {
            let draft = serde_json::from_value(value).map_err(|e| ItemError::BadShape {
                kind: "event",
                message: e.to_string(),
            })?;
            InboxItem::Event(Box::new(draft))
        }
        ItemKind::Task => InboxItem::Task(value),
        ItemKind::ApprovalRequest => InboxItem::ApprovalRequest(value),
        ItemKind::ApprovalDecision => InboxItem::ApprovalDecision(value),
        ItemKind::Chat => InboxItem::Chat(value),
    })
}

fn item_kind(map: &Map<String, Value>) -> Result<ItemKind, ItemError> {
    match map.get("kind") {
        Some(Value::String(kind)) => ItemKind::parse(kind).ok_or_else(|| ItemError::UnknownKind {
            kind: kind.chars().take(64).collect(),
        }),
        Some(Value::Null) | None => {
            if matches!(map.get("steps"), Some(Value::Array(_))) {
                Ok(ItemKind::Task)
            } else if map.contains_key("event_type") || map.contains_key("category") {
                Ok(ItemKind::Event)
            } else {
                Err(ItemError::UnknownShape)
            }
        }
        Some(other) => Err(ItemError::KindNotString {
            found: json_type(other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_kinds_parse() {
        for (text, kind) in [
            (
                r#"{"kind":"event","title":"t","category":"alert"}"#,
                ItemKind::Event,
            ),
            (r#"{"kind":"task","id":"tsk_1"}"#, ItemKind::Task),
            (
                r#"{"kind":"approval_request","id":"apr_1","summary":"s"}"#,
                ItemKind::ApprovalRequest,
            ),
            (
                r#"{"kind":"approval_decision","id":"apr_1","decision":"approved"}"#,
                ItemKind::ApprovalDecision,
            ),
            (r#"{"kind":"chat","text":"hi"}"#, ItemKind::Chat),
        ] {
            assert_eq!(parse_item(text.as_bytes()).unwrap().kind(), kind, "{text}");
        }
    }

    #[test]
    fn kind_is_inferred_from_the_shape() {
        // The seed 004 minimal task, as written there.
        let task = br#"{"id":"tsk_example","title":"Example Task","priority":"low","risk":"low","skills":["bash"],
            "steps":[{"skill":"bash","args":["-c","echo 'Hello from delegation'"]}]}"#;
        assert_eq!(parse_item(task).unwrap().kind(), ItemKind::Task);
        // The seed 000 payload: event_type but no category.
        let event = br#"{"event_id":"evt_20261121_101500_001","event_type":"ops.invoice_autoclaw","source":"worker:opsclaw"}"#;
        match parse_item(event).unwrap() {
            InboxItem::Event(d) => {
                assert_eq!(d.event_type.as_deref(), Some("ops.invoice_autoclaw"))
            }
            other => panic!("expected an event, got {other:?}"),
        }
        assert_eq!(
            parse_item(br#"{"category":"alert"}"#).unwrap().kind(),
            ItemKind::Event
        );
        // `steps` that is not an array does not make a task.
        assert_eq!(
            parse_item(br#"{"steps":"x"}"#),
            Err(ItemError::UnknownShape)
        );
    }

    #[test]
    fn bad_bytes_are_named() {
        assert_eq!(
            parse_item(b"\xff\xfe\x00garbage"),
            Err(ItemError::NotUtf8 { offset: 0 })
        );
        assert_eq!(parse_item(b"  \n"), Err(ItemError::Empty));
        assert!(matches!(
            parse_item(b"{\"a\": "),
            Err(ItemError::NotJson { line: 1, .. })
        ));
        assert!(matches!(
            parse_item(b"hello"),
            Err(ItemError::NotJson { .. })
        ));
        assert_eq!(
            parse_item(b"[1,2]"),
            Err(ItemError::NotAnObject { found: "array" })
        );
        assert_eq!(
            parse_item(b"\"s\""),
            Err(ItemError::NotAnObject { found: "string" })
        );
        assert_eq!(
            parse_item(br#"{"kind":"telepathy"}"#),
            Err(ItemError::UnknownKind {
                kind: "telepathy".into()
            })
        );
        assert_eq!(
            parse_item(br#"{"kind":7}"#),
            Err(ItemError::KindNotString { found: "number" })
        );
        assert!(matches!(
            parse_item(br#"{"kind":"event","title":42}"#),
            Err(ItemError::BadShape { kind: "event", .. })
        ));
        let reason = parse_item(b"[]").unwrap_err().to_reason();
        assert_eq!(reason["error"], "not_an_object");
        assert!(
            reason["message"]
                .as_str()
                .unwrap()
                .contains("not an object")
        );
    }

    #[test]
    fn a_byte_order_mark_is_tolerated() {
        assert_eq!(
            parse_item(b"\xEF\xBB\xBF{\"kind\":\"chat\"}")
                .unwrap()
                .kind(),
            ItemKind::Chat
        );
    }
}
