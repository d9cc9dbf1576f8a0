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
    Reply,
}

impl ItemKind {
    pub const ALL: [ItemKind; 6] = [
        ItemKind::Event,
        ItemKind::Task,
        ItemKind::ApprovalRequest,
        ItemKind::ApprovalDecision,
        ItemKind::Chat,
        ItemKind::Reply,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Event => "event",
            ItemKind::Task => "task",
            ItemKind::ApprovalRequest => "approval_request",
            ItemKind::ApprovalDecision => "approval_decision",
            ItemKind::Chat => "chat",
            ItemKind::Reply => "reply",
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
    Reply(Value),
}

impl InboxItem {
    pub fn kind(&self) -> ItemKind {
        match self {
            InboxItem::Event(_) => ItemKind::Event,
            InboxItem::Task(_) => ItemKind::Task,
            InboxItem::ApprovalRequest(_) => ItemKind::ApprovalRequest,
            InboxItem::ApprovalDecision(_) => ItemKind::ApprovalDecision,
            InboxItem::Chat(_) => ItemKind::Chat,
            InboxItem::Reply(_) => ItemKind::Reply,
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
    #[error(
        "the key `{key}` appears twice in one object (line {line}, column {column}); each key may appear once: remove one so that nobody has to guess which counts"
    )]
    DuplicateKey {
        key: String,
        line: usize,
        column: usize,
    },
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
            ItemError::DuplicateKey { .. } => "duplicate_key",
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

/// JSON without ambiguity: an object that names a key twice is refused (the
/// usual parsers keep the last, so `"category":"chat","category":"alert"`
/// would be read as whichever the reader happens to prefer).
mod strict {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    use super::ItemError;

    const DUPLICATE: &str = "duplicate key ";

    pub(super) fn parse(text: &str) -> Result<Value, ItemError> {
        serde_json::from_str::<Strict>(text)
            .map(|s| s.0)
            .map_err(|e| {
                let message = e.to_string();
                match message.strip_prefix(DUPLICATE) {
                    Some(rest) if e.is_data() => ItemError::DuplicateKey {
                        key: rest.split(" at line ").next().unwrap_or(rest).to_string(),
                        line: e.line(),
                        column: e.column(),
                    },
                    _ => ItemError::NotJson {
                        line: e.line(),
                        column: e.column(),
                        message,
                    },
                }
            })
    }

    struct Strict(Value);

    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor).map(Strict)
        }
    }

    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Strict(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let Strict(v) = map.next_value()?;
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format!("{DUPLICATE}{key}")));
                }
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
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
    let value = strict::parse(text)?;
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
        ItemKind::Reply => InboxItem::Reply(value),
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
    fn a_key_named_twice_is_refused_at_any_depth() {
        for text in [
            r#"{"category":"chat","title":"t","category":"alert"}"#,
            r#"{"kind":"event","title":"t","category":"alert","metrics":{"a":1,"a":2}}"#,
            r#"{"kind":"task","id":"t","steps":[{"skill":"sh","skill":"git","args":[]}]}"#,
        ] {
            match parse_item(text.as_bytes()) {
                Err(ItemError::DuplicateKey { key, line: 1, .. }) => {
                    assert!(["category", "a", "skill"].contains(&key.as_str()), "{key}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let e = parse_item(br#"{"category":"chat","category":"alert"}"#).unwrap_err();
        assert_eq!(e.code(), "duplicate_key");
        assert!(e.to_string().contains("`category` appears twice"), "{e}");
        // The same key in two different objects is fine.
        assert!(parse_item(br#"{"category":"chat","title":"t","metrics":{"category":1}}"#).is_ok());
    }

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
