//! The checker of a `POST /chat/completions` body against the table of
//! [`crate::openai_schema`]: it refuses a body the way the real API does, one
//! error at a time, as `{message, param, code}` (the `invalid_request_error` of
//! OpenAI's shape, with OpenAI's wording: "Missing required parameter: 'model'.",
//! "Invalid type for 'n': expected an integer, but got a string instead.", …).

use serde_json::{Map, Value};

use super::openai_schema::{Field, REQUEST, Ty};

/// Why a body is refused, as OpenAI says it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl Invalid {
    fn new(message: String, param: &str, code: &'static str) -> Self {
        Self {
            message,
            param: Some(param.to_owned()),
            code: Some(code),
        }
    }
}

/// The first rule `body` breaks, checked in the service's order: unknown
/// parameters, then each parameter of [`REQUEST`], then the rules across them.
pub(crate) fn check_request(body: &Value) -> Result<(), Invalid> {
    let Some(obj) = body.as_object() else {
        return Err(Invalid {
            message: format!(
                "Invalid type for request body: expected an object, but got {} instead.",
                value_name(body)
            ),
            param: None,
            code: Some("invalid_type"),
        });
    };
    if let Some(unknown) = obj.keys().find(|k| !REQUEST.iter().any(|f| f.name == *k)) {
        return Err(Invalid {
            message: format!("Unrecognized request argument supplied: {unknown}"),
            param: None,
            code: None,
        });
    }
    check_fields(obj, REQUEST, "")?;
    let streaming = obj.get("stream").and_then(Value::as_bool) == Some(true);
    if !streaming && obj.get("stream_options").is_some_and(|v| !v.is_null()) {
        return Err(Invalid {
            message: "The 'stream_options' parameter is only allowed when 'stream' is enabled."
                .to_owned(),
            param: Some("stream_options".to_owned()),
            code: None,
        });
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn check_fields(obj: &Map<String, Value>, fields: &[Field], path: &str) -> Result<(), Invalid> {
    for f in fields {
        let here = join(path, f.name);
        match obj.get(f.name) {
            None if f.required => {
                return Err(Invalid::new(
                    format!("Missing required parameter: '{here}'."),
                    &here,
                    "missing_required_parameter",
                ));
            }
            None => {}
            Some(Value::Null) if !f.required || f.nullable => {}
            Some(v) => check(v, &f.ty, &here)?,
        }
    }
    Ok(())
}

/// "a string", "an integer", … as OpenAI names what it expected.
fn ty_name(ty: &Ty) -> String {
    match ty {
        Ty::Str | Ty::StrMax(_) | Ty::Enum(_) => "a string".into(),
        Ty::Int { .. } => "an integer".into(),
        Ty::Num { .. } => "a decimal".into(),
        Ty::Bool => "a boolean".into(),
        Ty::Obj(_) | Ty::Map(_) | Ty::AnyObj | Ty::Tagged { .. } => "an object".into(),
        Ty::Arr { .. } => "an array".into(),
        Ty::OneOf(alts) => {
            let names: Vec<String> = alts.iter().map(ty_name).collect();
            format!("one of {}", names.join(" or "))
        }
    }
}

fn value_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `v` has the JSON type `ty` wants (its limits aside).
fn fits(v: &Value, ty: &Ty) -> bool {
    match ty {
        Ty::Str | Ty::StrMax(_) | Ty::Enum(_) => v.is_string(),
        Ty::Int { .. } => v.is_i64() || v.is_u64(),
        Ty::Num { .. } => v.is_number(),
        Ty::Bool => v.is_boolean(),
        Ty::Obj(_) | Ty::Map(_) | Ty::AnyObj | Ty::Tagged { .. } => v.is_object(),
        Ty::Arr { .. } => v.is_array(),
        Ty::OneOf(alts) => alts.iter().any(|a| fits(v, a)),
    }
}

fn wrong_type(v: &Value, ty: &Ty, path: &str) -> Invalid {
    Invalid::new(
        format!(
            "Invalid type for '{path}': expected {}, but got {} instead.",
            ty_name(ty),
            value_name(v)
        ),
        path,
        "invalid_type",
    )
}

fn choices(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

fn check(v: &Value, ty: &Ty, path: &str) -> Result<(), Invalid> {
    if !fits(v, ty) {
        return Err(wrong_type(v, ty, path));
    }
    match ty {
        Ty::Str | Ty::Bool | Ty::AnyObj => Ok(()),
        Ty::StrMax(max) => {
            let len = v.as_str().map_or(0, |s| s.chars().count());
            if len > *max {
                return Err(Invalid::new(
                    format!(
                        "Invalid '{path}': string too long. Expected a string with maximum length {max}, but got a string with length {len} instead."
                    ),
                    path,
                    "string_above_max_length",
                ));
            }
            Ok(())
        }
        Ty::Enum(values) => {
            let s = v.as_str().unwrap_or("");
            if values.contains(&s) {
                Ok(())
            } else {
                Err(Invalid::new(
                    format!(
                        "Invalid value: '{s}'. Supported values are: {}.",
                        choices(values)
                    ),
                    path,
                    "invalid_value",
                ))
            }
        }
        Ty::Int { min, max } => {
            // A u64 past i64::MAX is above every maximum here.
            let n = v.as_i64().unwrap_or(i64::MAX);
            let (kind, bound, word) = if n < *min {
                (
                    "below minimum",
                    format!(">= {min}"),
                    "integer_below_min_value",
                )
            } else if n > *max || (v.as_i64().is_none() && *max < i64::MAX) {
                (
                    "above maximum",
                    format!("<= {max}"),
                    "integer_above_max_value",
                )
            } else {
                return Ok(());
            };
            Err(Invalid::new(
                format!(
                    "Invalid '{path}': integer {kind} value. Expected a value {bound}, but got {v} instead."
                ),
                path,
                word,
            ))
        }
        Ty::Num { min, max } => {
            let n = v.as_f64().unwrap_or(f64::NAN);
            let (kind, bound, word) = if n < *min {
                (
                    "below minimum",
                    format!(">= {min}"),
                    "decimal_below_min_value",
                )
            } else if n > *max {
                (
                    "above maximum",
                    format!("<= {max}"),
                    "decimal_above_max_value",
                )
            } else {
                return Ok(());
            };
            Err(Invalid::new(
                format!(
                    "Invalid '{path}': decimal {kind} value. Expected a value {bound}, but got {v} instead."
                ),
                path,
                word,
            ))
        }
        Ty::Obj(fields) => check_fields(v.as_object().expect("fits"), fields, path),
        Ty::Map(values) => {
            for (k, item) in v.as_object().expect("fits") {
                check(item, values, &join(path, k))?;
            }
            Ok(())
        }
        Ty::Arr { min, max, items } => {
            let list = v.as_array().expect("fits");
            let len = list.len();
            if len < *min {
                let message = if len == 0 {
                    format!(
                        "Invalid '{path}': empty array. Expected an array with minimum length {min}, but got an empty array instead."
                    )
                } else {
                    format!(
                        "Invalid '{path}': array too short. Expected an array with minimum length {min}, but got an array with length {len} instead."
                    )
                };
                let code = if len == 0 {
                    "empty_array"
                } else {
                    "array_below_min_length"
                };
                return Err(Invalid::new(message, path, code));
            }
            if len > *max {
                return Err(Invalid::new(
                    format!(
                        "Invalid '{path}': array too long. Expected an array with maximum length {max}, but got an array with length {len} instead."
                    ),
                    path,
                    "array_above_max_length",
                ));
            }
            for (i, item) in list.iter().enumerate() {
                check(item, items, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Ty::OneOf(alts) => {
            let alt = alts.iter().find(|a| fits(v, a)).expect("fits");
            check(v, alt, path)
        }
        Ty::Tagged { tag, variants } => {
            let obj = v.as_object().expect("fits");
            let here = join(path, tag);
            let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
            let fields = match obj.get(*tag) {
                None | Some(Value::Null) => {
                    return Err(Invalid::new(
                        format!("Missing required parameter: '{here}'."),
                        &here,
                        "missing_required_parameter",
                    ));
                }
                Some(Value::String(name)) => match variants.iter().find(|(n, _)| n == name) {
                    Some((_, fields)) => *fields,
                    None => {
                        return Err(Invalid::new(
                            format!(
                                "Invalid value: '{name}'. Supported values are: {}.",
                                choices(&names)
                            ),
                            &here,
                            "invalid_value",
                        ));
                    }
                },
                Some(other) => return Err(wrong_type(other, &Ty::Enum(&[]), &here)),
            };
            check_fields(obj, fields, path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(body: Value) -> Invalid {
        check_request(&body).expect_err("refused")
    }

    fn minimal() -> Value {
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut body = minimal();
        body[key] = value;
        body
    }

    #[test]
    fn a_minimal_request_passes_and_null_means_absent() {
        assert_eq!(check_request(&minimal()), Ok(()));
        assert_eq!(check_request(&with("temperature", Value::Null)), Ok(()));
    }

    #[test]
    fn errors_name_the_parameter_as_openai_does() {
        let e = refusal(json!({"messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(e.message, "Missing required parameter: 'model'.");
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = refusal(with("temperature", json!(3)));
        assert_eq!(
            e.message,
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead."
        );
        let e = refusal(with("max_tokens", json!(1.5)));
        assert_eq!(e.code, Some("invalid_type"));
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = refusal(with("frobnicate", json!(1)));
        assert_eq!(
            (e.message.as_str(), e.param),
            ("Unrecognized request argument supplied: frobnicate", None)
        );
    }

    #[test]
    fn messages_are_checked_by_role_down_to_their_parts() {
        let e = refusal(with("messages", json!([])));
        assert_eq!(e.code, Some("empty_array"));
        let e = refusal(with("messages", json!([{"role": "bot", "content": "x"}])));
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        assert!(e.message.contains("'developer', 'system'"), "{}", e.message);
        let e = refusal(with("messages", json!([{"role": "system"}])));
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
        let e = refusal(with(
            "messages",
            json!([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]),
        ));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
        let ok = with(
            "messages",
            json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
                   {"role": "assistant", "content": null, "tool_calls": []},
                   {"role": "function", "name": "f", "content": null}]),
        );
        assert_eq!(check_request(&ok), Ok(()));
    }

    #[test]
    fn stream_options_need_stream() {
        let e = refusal(with("stream_options", json!({"include_usage": true})));
        assert_eq!(e.param.as_deref(), Some("stream_options"));
        let mut ok = with("stream_options", json!({"include_usage": true}));
        ok["stream"] = json!(true);
        assert_eq!(check_request(&ok), Ok(()));
    }
}
