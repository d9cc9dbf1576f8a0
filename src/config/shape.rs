//! Type errors in a configuration file, every one at once: when the file's
//! values do not fit [`RawConfig`]'s shape, each misfit is found by its key
//! path, said in plain words ("is the text \"high\"; expected a whole
//! number"), and taken out so the search goes on to the next.

use serde::Deserialize as _;
use serde_json::Value;

use super::ConfigProblem;
use super::raw::RawConfig;

/// The most misfits reported from one file (a file of another program
/// entirely would otherwise list every key).
const MAX_PROBLEMS: usize = 50;

/// Every value of `tree` that does not fit, with its path, and the raw
/// configuration the rest makes (misfits left out), if any does.
pub(super) fn misfits(
    mut tree: Value,
    unknown: &mut Vec<String>,
) -> (Vec<ConfigProblem>, Option<RawConfig>) {
    let mut problems = Vec::new();
    loop {
        let mut seen = Vec::new();
        let attempt = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            tree.clone(),
            &mut |path: serde_ignored::Path| seen.push(path.to_string()),
        ));
        match attempt {
            Ok(raw) => {
                unknown.extend(seen);
                return (problems, Some(raw));
            }
            Err(e) => {
                let path = e.path().to_string();
                problems.push(ConfigProblem {
                    key: path.clone(),
                    message: plain(&e.inner().to_string()),
                });
                if problems.len() >= MAX_PROBLEMS || !remove(&mut tree, e.path()) {
                    return (problems, None);
                }
            }
        }
    }
}

/// Take the value at `path` out of the tree (`false`: nothing there to take).
fn remove(tree: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut at = tree;
    for s in parents {
        let next = match (s, at) {
            (Segment::Map { key }, Value::Object(m)) => m.get_mut(key),
            (Segment::Seq { index }, Value::Array(a)) => a.get_mut(*index),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return false,
        }
    }
    match (last, at) {
        (Segment::Map { key }, Value::Object(m)) => m.remove(key).is_some(),
        (Segment::Seq { index }, Value::Array(a)) if *index < a.len() => {
            // A list item that does not fit: the list is the misfit, so the
            // item is replaced by nothing rather than shifting the others.
            a.remove(*index);
            true
        }
        _ => false,
    }
}

/// serde's "invalid type: string \"high\", expected u8" in plain words.
fn plain(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message
            .replace("invalid value: ", "")
            .replace("missing field", "is missing the key");
    };
    let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    format!(
        "is {}; expected {}",
        found_words(found),
        expected_words(expected)
    )
}

fn found_words(found: &str) -> String {
    if let Some(s) = found.strip_prefix("string ") {
        format!("the text {s}")
    } else if let Some(n) = found
        .strip_prefix("integer ")
        .or_else(|| found.strip_prefix("floating point "))
    {
        format!("the number {}", n.trim_matches('`'))
    } else if let Some(b) = found.strip_prefix("boolean ") {
        b.trim_matches('`').to_string()
    } else {
        match found {
            "sequence" => "a list".into(),
            "map" => "a table".into(),
            "unit value" | "null" => "empty".into(),
            other => other.into(),
        }
    }
}

fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    match e {
        "u8" => "a whole number from 0 to 255".into(),
        "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" => "text in quotes".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list, like [\"a\", \"b\"]".into(),
        _ if e.starts_with("struct ") || e == "a map" => {
            "a table (a [section] or { key = value })".into()
        }
        _ if e.starts_with("a sequence") => "a list".into(),
        other => other.into(),
    }
}

/// A key path as the validators write it: `agents[0].name`, not serde_ignored's `agents.0.name`.
pub(super) fn key_path(dotted: &str) -> String {
    let mut out = String::new();
    for part in dotted.split('.') {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The layered configuration as a JSON tree, for [`misfits`] to walk.
pub(super) fn tree_of(layered: config::Config) -> Option<Value> {
    Value::deserialize(layered).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(toml_text: &str) -> Vec<(String, String)> {
        let layered = config::Config::builder()
            .add_source(config::File::from_str(toml_text, config::FileFormat::Toml))
            .build()
            .unwrap();
        let (problems, _) = misfits(tree_of(layered).unwrap(), &mut Vec::new());
        problems.into_iter().map(|p| (p.key, p.message)).collect()
    }

    #[test]
    fn key_paths_use_brackets_for_list_items() {
        assert_eq!(key_path("agents.0.bogus"), "agents[0].bogus");
        assert_eq!(key_path("fleet.bogus"), "fleet.bogus");
        assert_eq!(key_path("routes.12.match.x"), "routes[12].match.x");
    }

    #[test]
    fn every_type_error_is_found_with_its_path_in_plain_words() {
        let got = problems_of(
            "[policy]\napproval_threshold = \"high\"\n[delivery]\nmax_attempts = \"many\"\n\
             [[agents]]\nname = 5\ndiscord_token_env = \"X\"\n",
        );
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "agents[0].name",
                "delivery.max_attempts",
                "policy.approval_threshold"
            ],
            "{got:?}"
        );
        let threshold = &got[2].1;
        assert_eq!(threshold, "is the text \"high\"; expected a whole number");
        assert!(
            got[0]
                .1
                .contains("is the number 5; expected text in quotes"),
            "{got:?}"
        );
    }
}
