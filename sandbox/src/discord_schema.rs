//! The rules of Discord's message bodies as data: `MessageCreateRequest`, the edit
//! and the webhook execution with every object they reference (embeds, allowed
//! mentions, attachments, polls, message references), transcribed from Discord's
//! OpenAPI description, with the documentation's stricter limits where they differ
//! (content 2000, not 4000; an embed's footer text and author name required).
//! `tests/it/conformance.rs` holds this table against the spec file.

use serde_json::{Map, Value, json};

/// A value's expected type and limits. Every optional value may also be `null`.
pub(crate) enum Ty {
    Str {
        min: usize,
        max: usize,
    },
    Url {
        max: usize,
    },
    DateTime,
    Int {
        min: i64,
        max: i64,
    },
    Num {
        min: f64,
        max: f64,
    },
    Bool,
    Snowflake,
    Obj(&'static [Field]),
    Arr {
        min: usize,
        max: usize,
        items: &'static Ty,
    },
    /// Not checked beyond being present (components: their own large schema).
    Any,
}

pub(crate) struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}
const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}
const fn s(max: usize) -> Ty {
    Ty::Str { min: 0, max }
}
const fn s_between(min: usize, max: usize) -> Ty {
    Ty::Str { min, max }
}
const fn int(min: i64, max: i64) -> Ty {
    Ty::Int { min, max }
}
const ANY_INT: Ty = int(i64::MIN, i64::MAX);
const I32_NON_NEGATIVE: Ty = int(0, 2_147_483_647);
const URL: Ty = Ty::Url { max: 2048 };

pub(crate) const CONTENT_MAX: usize = 2000;

const MEDIA: &[Field] = &[
    opt("url", URL),
    opt("width", ANY_INT),
    opt("height", ANY_INT),
    opt("placeholder", s(64)),
    opt("placeholder_version", I32_NON_NEGATIVE),
    opt("is_animated", Ty::Bool),
    opt("description", s(4096)),
];
const AUTHOR: &[Field] = &[req("name", s(256)), opt("url", URL), opt("icon_url", URL)];
const FOOTER: &[Field] = &[req("text", s(2048)), opt("icon_url", URL)];
const PROVIDER: &[Field] = &[opt("name", s(256)), opt("url", URL)];
const EMBED_FIELD: &[Field] = &[
    req("name", s(256)),
    req("value", s(1024)),
    opt("inline", Ty::Bool),
];
const EMBED: &[Field] = &[
    opt("type", s(152_133)),
    opt("url", URL),
    opt("title", s(256)),
    opt("color", int(0, 16_777_215)),
    opt("timestamp", Ty::DateTime),
    opt("description", s(4096)),
    opt("author", Ty::Obj(AUTHOR)),
    opt("image", Ty::Obj(MEDIA)),
    opt("thumbnail", Ty::Obj(MEDIA)),
    opt("footer", Ty::Obj(FOOTER)),
    opt(
        "fields",
        Ty::Arr {
            min: 0,
            max: 25,
            items: &Ty::Obj(EMBED_FIELD),
        },
    ),
    opt("provider", Ty::Obj(PROVIDER)),
    opt("video", Ty::Obj(MEDIA)),
];
const ALLOWED_MENTIONS: &[Field] = &[
    opt(
        "parse",
        Ty::Arr {
            min: 0,
            max: 1521,
            items: &s(64),
        },
    ),
    opt(
        "users",
        Ty::Arr {
            min: 0,
            max: 100,
            items: &Ty::Snowflake,
        },
    ),
    opt(
        "roles",
        Ty::Arr {
            min: 0,
            max: 100,
            items: &Ty::Snowflake,
        },
    ),
    opt("replied_user", Ty::Bool),
];
const ATTACHMENT: &[Field] = &[
    req("id", Ty::Snowflake),
    opt("filename", s_between(1, 1024)),
    opt("description", s(1024)),
    opt(
        "duration_secs",
        Ty::Num {
            min: 0.0,
            max: 2_147_483_647.0,
        },
    ),
    opt("waveform", s(400)),
    opt("title", s(1024)),
    opt("is_spoiler", Ty::Bool),
    opt("is_remix", Ty::Bool),
];
const POLL_EMOJI: &[Field] = &[
    opt("id", Ty::Snowflake),
    opt("name", s(32)),
    opt("animated", Ty::Bool),
];
const POLL_MEDIA: &[Field] = &[
    opt("text", s_between(1, 300)),
    opt("emoji", Ty::Obj(POLL_EMOJI)),
];
const POLL_ANSWER: &[Field] = &[req("poll_media", Ty::Obj(POLL_MEDIA))];
const POLL: &[Field] = &[
    req("question", Ty::Obj(POLL_MEDIA)),
    req(
        "answers",
        Ty::Arr {
            min: 1,
            max: 10,
            items: &Ty::Obj(POLL_ANSWER),
        },
    ),
    opt("allow_multiselect", Ty::Bool),
    opt("layout_type", ANY_INT),
    opt("duration", int(1, 768)),
];
const CLIENT_THEME: &[Field] = &[
    req(
        "colors",
        Ty::Arr {
            min: 1,
            max: 5,
            items: &s(16),
        },
    ),
    req("gradient_angle", int(0, 360)),
    req("base_mix", int(0, 100)),
    opt("base_theme", ANY_INT),
];
const MESSAGE_REFERENCE: &[Field] = &[
    opt("guild_id", Ty::Snowflake),
    opt("channel_id", Ty::Snowflake),
    req("message_id", Ty::Snowflake),
    opt("fail_if_not_exists", Ty::Bool),
    opt("type", ANY_INT),
];

const EMBEDS: Ty = Ty::Arr {
    min: 0,
    max: 10,
    items: &Ty::Obj(EMBED),
};
const COMPONENTS: Ty = Ty::Arr {
    min: 0,
    max: 40,
    items: &Ty::Any,
};
const ATTACHMENTS: Ty = Ty::Arr {
    min: 0,
    max: 10,
    items: &Ty::Obj(ATTACHMENT),
};

/// `POST /channels/{id}/messages` (`nonce` is checked separately: an integer or a string).
pub(crate) const CREATE: &[Field] = &[
    opt("content", s(CONTENT_MAX)),
    opt("embeds", EMBEDS),
    opt("allowed_mentions", Ty::Obj(ALLOWED_MENTIONS)),
    opt(
        "sticker_ids",
        Ty::Arr {
            min: 0,
            max: 3,
            items: &Ty::Snowflake,
        },
    ),
    opt("components", COMPONENTS),
    opt("flags", ANY_INT),
    opt("attachments", ATTACHMENTS),
    opt("poll", Ty::Obj(POLL)),
    opt("shared_client_theme", Ty::Obj(CLIENT_THEME)),
    opt("message_reference", Ty::Obj(MESSAGE_REFERENCE)),
    opt("enforce_nonce", Ty::Bool),
    opt("tts", Ty::Bool),
];

/// `PATCH /channels/{id}/messages/{message_id}`.
pub(crate) const EDIT: &[Field] = &[
    opt("content", s(CONTENT_MAX)),
    opt("embeds", EMBEDS),
    opt("flags", ANY_INT),
    opt("allowed_mentions", Ty::Obj(ALLOWED_MENTIONS)),
    opt("components", COMPONENTS),
    opt("attachments", ATTACHMENTS),
];

/// `POST /webhooks/{id}/{token}`.
pub(crate) const WEBHOOK: &[Field] = &[
    opt("content", s(CONTENT_MAX)),
    opt("username", s_between(1, 80)),
    opt("avatar_url", URL),
    opt("tts", Ty::Bool),
    opt("embeds", EMBEDS),
    opt("allowed_mentions", Ty::Obj(ALLOWED_MENTIONS)),
    opt("components", COMPONENTS),
    opt("attachments", ATTACHMENTS),
    opt("flags", ANY_INT),
    opt("thread_name", s(100)),
    opt(
        "applied_tags",
        Ty::Arr {
            min: 0,
            max: 5,
            items: &Ty::Snowflake,
        },
    ),
    opt("poll", Ty::Obj(POLL)),
];

/// Validation errors in Discord's `errors` tree shape.
pub(crate) struct Errors {
    pub tree: Value,
    pub any: bool,
}

impl Errors {
    pub fn new() -> Self {
        Self {
            tree: Value::Object(Map::new()),
            any: false,
        }
    }

    pub fn add(&mut self, path: &[String], code: &str, message: &str) {
        let mut node = &mut self.tree;
        for key in path {
            node = node
                .as_object_mut()
                .expect("error tree nodes are objects")
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        let list = node
            .as_object_mut()
            .expect("error tree nodes are objects")
            .entry("_errors")
            .or_insert_with(|| json!([]));
        list.as_array_mut()
            .expect("_errors is an array")
            .push(json!({"code": code, "message": message}));
        self.any = true;
    }
}

/// Checks the fields of `obj` against `fields`; unknown keys are ignored, as Discord does.
pub(crate) fn check_object(
    obj: &Map<String, Value>,
    fields: &[Field],
    path: &mut Vec<String>,
    e: &mut Errors,
) {
    for field in fields {
        path.push(field.name.to_owned());
        match obj.get(field.name) {
            None | Some(Value::Null) => {
                if field.required {
                    e.add(path, "BASE_TYPE_REQUIRED", "This field is required");
                }
            }
            Some(value) => check(value, &field.ty, field.required, path, e),
        }
        path.pop();
    }
}

fn check(value: &Value, ty: &Ty, required: bool, path: &mut Vec<String>, e: &mut Errors) {
    match ty {
        Ty::Str { min, max } => match value.as_str() {
            None => e.add(path, "BASE_TYPE_STRING", "Must be a string."),
            Some(s) => {
                let len = s.chars().count();
                if required && s.trim().is_empty() {
                    e.add(path, "BASE_TYPE_REQUIRED", "This field is required");
                } else if *min > 0 && (len < *min || len > *max) {
                    e.add(
                        path,
                        "BASE_TYPE_BAD_LENGTH",
                        &format!("Must be between {min} and {max} in length."),
                    );
                } else if len > *max {
                    e.add(
                        path,
                        "BASE_TYPE_MAX_LENGTH",
                        &format!("Must be {max} or fewer in length."),
                    );
                }
            }
        },
        Ty::Url { max } => match value.as_str() {
            None => e.add(path, "BASE_TYPE_STRING", "Must be a string."),
            Some(s) if s.chars().count() > *max => {
                e.add(
                    path,
                    "BASE_TYPE_MAX_LENGTH",
                    &format!("Must be {max} or fewer in length."),
                );
            }
            Some(s) => {
                let scheme_ok = url::Url::parse(s)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "attachment"));
                if !scheme_ok {
                    e.add(path, "URL_TYPE_INVALID_URL", "Not a well formed URL.");
                }
            }
        },
        Ty::DateTime => {
            let parsed = value.as_str().map(chrono::DateTime::parse_from_rfc3339);
            if !matches!(parsed, Some(Ok(_))) {
                e.add(
                    path,
                    "DATE_TIME_TYPE_PARSE",
                    &format!("Could not parse {value}. Should be ISO8601."),
                );
            }
        }
        Ty::Int { min, max } => match value.as_i64() {
            None => e.add(
                path,
                "NUMBER_TYPE_COERCE",
                &format!("Value \"{value}\" is not int."),
            ),
            Some(v) if v < *min => {
                e.add(
                    path,
                    "NUMBER_TYPE_MIN",
                    &format!("int value should be greater than or equal to {min}."),
                );
            }
            Some(v) if v > *max => {
                e.add(
                    path,
                    "NUMBER_TYPE_MAX",
                    &format!("int value should be less than or equal to {max}."),
                );
            }
            Some(_) => {}
        },
        Ty::Num { min, max } => match value.as_f64() {
            None => e.add(
                path,
                "NUMBER_TYPE_COERCE",
                &format!("Value \"{value}\" is not a number."),
            ),
            Some(v) if v < *min || v > *max => {
                e.add(
                    path,
                    "NUMBER_TYPE_MAX",
                    &format!("Value should be between {min} and {max}."),
                );
            }
            Some(_) => {}
        },
        Ty::Bool => {
            if !value.is_boolean() {
                e.add(path, "BASE_TYPE_BOOLEAN", "Must be either true or false.");
            }
        }
        Ty::Snowflake => {
            let valid = match value {
                Value::String(s) => s.parse::<u64>().is_ok(),
                Value::Number(n) => n.is_u64(),
                _ => false,
            };
            if !valid {
                e.add(
                    path,
                    "NUMBER_TYPE_COERCE",
                    &format!("Value \"{value}\" is not snowflake."),
                );
            }
        }
        Ty::Obj(fields) => match value.as_object() {
            None => e.add(
                path,
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            ),
            Some(obj) => check_object(obj, fields, path, e),
        },
        Ty::Arr { min, max, items } => match value.as_array() {
            None => e.add(path, "BASE_TYPE_ARRAY", "Must be an array."),
            Some(list) => {
                if list.len() > *max {
                    e.add(
                        path,
                        "BASE_TYPE_MAX_LENGTH",
                        &format!("Must be {max} or fewer in length."),
                    );
                } else if list.len() < *min {
                    e.add(
                        path,
                        "BASE_TYPE_MIN_LENGTH",
                        &format!("Must be {min} or more in length."),
                    );
                }
                for (i, item) in list.iter().enumerate() {
                    path.push(i.to_string());
                    check(item, items, true, path, e);
                    path.pop();
                }
            }
        },
        Ty::Any => {}
    }
}

/// The characters an embed counts toward the 6000 a message may carry in all.
pub(crate) fn embed_size(embed: &Value) -> usize {
    let len = |v: Option<&Value>| v.and_then(Value::as_str).map_or(0, |s| s.chars().count());
    let mut total = len(embed.get("title")) + len(embed.get("description"));
    total += len(embed.get("footer").and_then(|f| f.get("text")));
    total += len(embed.get("author").and_then(|a| a.get("name")));
    if let Some(fields) = embed.get("fields").and_then(Value::as_array) {
        for f in fields {
            total += len(f.get("name")) + len(f.get("value"));
        }
    }
    total
}
