//! The rules of a `POST /chat/completions` body as data: every parameter of
//! `CreateChatCompletionRequest` with its type, range and choices, the message
//! variants by `role` and their content parts, transcribed from OpenAI's OpenAPI
//! description (`openai-extract-chat-completions.json`). The checker that
//! applies it is [`crate::openai_check`]; `tests/it/openai_conformance.rs`
//! holds this table against the spec file.
//!
//! Where the service is stricter than the description, the service wins:
//! `max_tokens` and `max_completion_tokens` are at least 1, a top-level
//! parameter the description does not name is "Unrecognized request argument
//! supplied", and `stream_options` needs `stream: true`. Every optional
//! parameter may also be `null` (the service treats it as absent).

/// A value's expected type and limits.
pub(crate) enum Ty {
    Str,
    StrMax(usize),
    /// A string among these.
    Enum(&'static [&'static str]),
    Int {
        min: i64,
        max: i64,
    },
    Num {
        min: f64,
        max: f64,
    },
    Bool,
    /// An object with these fields (others are let through, as nested
    /// objects are by the service).
    Obj(&'static [Field]),
    /// An object whose values all have this type.
    Map(&'static Ty),
    /// Any object (a JSON Schema, function parameters).
    AnyObj,
    Arr {
        min: usize,
        max: usize,
        items: &'static Ty,
    },
    /// One of these, chosen by the JSON type of the value.
    OneOf(&'static [Ty]),
    /// An object whose `tag` field names the variant that gives its other fields.
    Tagged {
        tag: &'static str,
        variants: &'static [(&'static str, &'static [Field])],
    },
}

pub(crate) struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// A required field that may be `null` (optional ones always may).
    pub nullable: bool,
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        nullable: true,
    }
}
const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
        nullable: false,
    }
}
const fn req_nullable(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
        nullable: true,
    }
}
const fn arr(min: usize, max: usize, items: &'static Ty) -> Ty {
    Ty::Arr { min, max, items }
}
const ANY_INT: Ty = Ty::Int {
    min: i64::MIN,
    max: i64::MAX,
};
/// The service refuses 0 tokens, though the description gives no minimum.
const TOKENS: Ty = Ty::Int {
    min: 1,
    max: i64::MAX,
};
const PENALTY: Ty = Ty::Num {
    min: -2.0,
    max: 2.0,
};

const CACHE_BREAKPOINT: &[Field] = &[req("mode", Ty::Enum(&["explicit"]))];
const TEXT_PART: &[Field] = &[
    req("text", Ty::Str),
    opt("prompt_cache_breakpoint", Ty::Obj(CACHE_BREAKPOINT)),
];
const IMAGE_URL: &[Field] = &[
    req("url", Ty::Str),
    opt("detail", Ty::Enum(&["auto", "low", "high"])),
];
const INPUT_AUDIO: &[Field] = &[
    req("data", Ty::Str),
    req("format", Ty::Enum(&["wav", "mp3"])),
];
const FILE: &[Field] = &[
    opt("filename", Ty::Str),
    opt("file_data", Ty::Str),
    opt("file_id", Ty::Str),
];
const TEXT_ONLY: Ty = Ty::Tagged {
    tag: "type",
    variants: &[("text", TEXT_PART)],
};
const USER_PART: Ty = Ty::Tagged {
    tag: "type",
    variants: &[
        ("text", TEXT_PART),
        (
            "image_url",
            &[
                req("image_url", Ty::Obj(IMAGE_URL)),
                opt("prompt_cache_breakpoint", Ty::Obj(CACHE_BREAKPOINT)),
            ],
        ),
        (
            "input_audio",
            &[
                req("input_audio", Ty::Obj(INPUT_AUDIO)),
                opt("prompt_cache_breakpoint", Ty::Obj(CACHE_BREAKPOINT)),
            ],
        ),
        (
            "file",
            &[
                req("file", Ty::Obj(FILE)),
                opt("prompt_cache_breakpoint", Ty::Obj(CACHE_BREAKPOINT)),
            ],
        ),
    ],
};
const ASSISTANT_PART: Ty = Ty::Tagged {
    tag: "type",
    variants: &[("text", TEXT_PART), ("refusal", &[req("refusal", Ty::Str)])],
};
const TEXT_CONTENT: Ty = Ty::OneOf(&[Ty::Str, arr(1, usize::MAX, &TEXT_ONLY)]);
const FUNCTION_CALL: &[Field] = &[req("name", Ty::Str), req("arguments", Ty::Str)];
const TOOL_CALL: Ty = Ty::Tagged {
    tag: "type",
    variants: &[
        (
            "function",
            &[req("id", Ty::Str), req("function", Ty::Obj(FUNCTION_CALL))],
        ),
        (
            "custom",
            &[
                req("id", Ty::Str),
                req(
                    "custom",
                    Ty::Obj(&[req("name", Ty::Str), req("input", Ty::Str)]),
                ),
            ],
        ),
    ],
};

/// `ChatCompletionRequestMessage`: the variants by `role`.
const MESSAGE: Ty = Ty::Tagged {
    tag: "role",
    variants: &[
        (
            "developer",
            &[req("content", TEXT_CONTENT), opt("name", Ty::Str)],
        ),
        (
            "system",
            &[req("content", TEXT_CONTENT), opt("name", Ty::Str)],
        ),
        (
            "user",
            &[
                req(
                    "content",
                    Ty::OneOf(&[Ty::Str, arr(1, usize::MAX, &USER_PART)]),
                ),
                opt("name", Ty::Str),
            ],
        ),
        (
            "assistant",
            &[
                opt(
                    "content",
                    Ty::OneOf(&[Ty::Str, arr(1, usize::MAX, &ASSISTANT_PART)]),
                ),
                opt("refusal", Ty::Str),
                opt("name", Ty::Str),
                opt("audio", Ty::Obj(&[req("id", Ty::Str)])),
                opt("tool_calls", arr(0, usize::MAX, &TOOL_CALL)),
                opt("function_call", Ty::Obj(FUNCTION_CALL)),
            ],
        ),
        (
            "tool",
            &[req("content", TEXT_CONTENT), req("tool_call_id", Ty::Str)],
        ),
        (
            "function",
            &[req_nullable("content", Ty::Str), req("name", Ty::Str)],
        ),
    ],
};

const FUNCTION: &[Field] = &[
    req("name", Ty::Str),
    opt("description", Ty::Str),
    opt("parameters", Ty::AnyObj),
    opt("strict", Ty::Bool),
];
const TOOL: Ty = Ty::Tagged {
    tag: "type",
    variants: &[
        ("function", &[req("function", Ty::Obj(FUNCTION))]),
        (
            "custom",
            &[req(
                "custom",
                Ty::Obj(&[
                    req("name", Ty::Str),
                    opt("description", Ty::Str),
                    opt("format", Ty::AnyObj),
                ]),
            )],
        ),
    ],
};
const NAMED: &[Field] = &[req("name", Ty::Str)];
const TOOL_CHOICE: Ty = Ty::OneOf(&[
    Ty::Enum(&["none", "auto", "required"]),
    Ty::Tagged {
        tag: "type",
        variants: &[
            (
                "allowed_tools",
                &[req(
                    "allowed_tools",
                    Ty::Obj(&[
                        req("mode", Ty::Enum(&["auto", "required"])),
                        req("tools", arr(0, usize::MAX, &Ty::AnyObj)),
                    ]),
                )],
            ),
            ("function", &[req("function", Ty::Obj(NAMED))]),
            ("custom", &[req("custom", Ty::Obj(NAMED))]),
        ],
    },
]);
const RESPONSE_FORMAT: Ty = Ty::Tagged {
    tag: "type",
    variants: &[
        ("text", &[]),
        (
            "json_schema",
            &[req(
                "json_schema",
                Ty::Obj(&[
                    req("name", Ty::Str),
                    opt("description", Ty::Str),
                    opt("schema", Ty::AnyObj),
                    opt("strict", Ty::Bool),
                ]),
            )],
        ),
        ("json_object", &[]),
    ],
};
const WEB_SEARCH: &[Field] = &[
    opt(
        "user_location",
        Ty::Obj(&[
            req("type", Ty::Enum(&["approximate"])),
            req(
                "approximate",
                Ty::Obj(&[
                    opt("country", Ty::Str),
                    opt("region", Ty::Str),
                    opt("city", Ty::Str),
                    opt("timezone", Ty::Str),
                ]),
            ),
        ]),
    ),
    opt("search_context_size", Ty::Enum(&["low", "medium", "high"])),
];
const AUDIO: &[Field] = &[
    req(
        "voice",
        Ty::OneOf(&[Ty::Str, Ty::Obj(&[req("id", Ty::Str)])]),
    ),
    req(
        "format",
        Ty::Enum(&["wav", "aac", "mp3", "flac", "opus", "pcm16"]),
    ),
];

/// `CreateChatCompletionRequest` with the properties of the schemas it extends
/// (`CreateModelResponseProperties`, `ModelResponseProperties`).
pub(crate) const REQUEST: &[Field] = &[
    req("model", Ty::Str),
    req("messages", arr(1, usize::MAX, &MESSAGE)),
    opt("metadata", Ty::Map(&Ty::StrMax(512))),
    opt("top_logprobs", Ty::Int { min: 0, max: 20 }),
    opt("temperature", Ty::Num { min: 0.0, max: 2.0 }),
    opt("top_p", Ty::Num { min: 0.0, max: 1.0 }),
    opt("user", Ty::Str),
    opt("safety_identifier", Ty::StrMax(64)),
    opt("prompt_cache_key", Ty::Str),
    opt("prompt_cache_retention", Ty::Enum(&["in_memory", "24h"])),
    opt(
        "prompt_cache_options",
        Ty::Obj(&[
            opt("ttl", Ty::Enum(&["30m"])),
            opt("mode", Ty::Enum(&["implicit", "explicit"])),
        ]),
    ),
    opt(
        "service_tier",
        Ty::Enum(&["auto", "default", "flex", "scale", "priority", "fast"]),
    ),
    opt(
        "modalities",
        arr(0, usize::MAX, &Ty::Enum(&["text", "audio"])),
    ),
    opt("verbosity", Ty::Enum(&["low", "medium", "high"])),
    opt(
        "reasoning_effort",
        Ty::Enum(&["none", "minimal", "low", "medium", "high", "xhigh", "max"]),
    ),
    opt("max_completion_tokens", TOKENS),
    opt("frequency_penalty", PENALTY),
    opt("presence_penalty", PENALTY),
    opt("web_search_options", Ty::Obj(WEB_SEARCH)),
    opt("response_format", RESPONSE_FORMAT),
    opt("audio", Ty::Obj(AUDIO)),
    opt("store", Ty::Bool),
    opt(
        "moderation",
        Ty::Obj(&[req("model", Ty::Str), opt("policy", Ty::AnyObj)]),
    ),
    opt("stream", Ty::Bool),
    opt("stop", Ty::OneOf(&[Ty::Str, arr(1, 4, &Ty::Str)])),
    opt("logit_bias", Ty::Map(&ANY_INT)),
    opt("logprobs", Ty::Bool),
    opt("max_tokens", TOKENS),
    opt("n", Ty::Int { min: 1, max: 128 }),
    opt(
        "prediction",
        Ty::Obj(&[
            req("type", Ty::Enum(&["content"])),
            req("content", TEXT_CONTENT),
        ]),
    ),
    opt("seed", ANY_INT),
    opt(
        "stream_options",
        Ty::Obj(&[
            opt("include_usage", Ty::Bool),
            opt("include_obfuscation", Ty::Bool),
        ]),
    ),
    opt("tools", arr(0, usize::MAX, &TOOL)),
    opt("tool_choice", TOOL_CHOICE),
    opt("parallel_tool_calls", Ty::Bool),
    opt(
        "function_call",
        Ty::OneOf(&[Ty::Enum(&["none", "auto"]), Ty::Obj(NAMED)]),
    ),
    opt("functions", arr(1, 128, &Ty::Obj(FUNCTION))),
];
