//! The files a message names: [`AttachmentPath`], a path relative to the
//! fleet's workspace whose shape is checked here, purely. Whether the file
//! exists, stays inside the workspace once links are followed, and lies in a
//! folder the configuration lets messages attach from is the agent's to check
//! (it reads the disk); this type only guarantees that nothing in the text
//! itself walks out (`..`, an absolute path, a drive letter).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most files one message may carry (Discord's limit per message).
pub const MAX_ATTACHMENTS: usize = 10;
/// The longest path accepted, in bytes.
pub const MAX_ATTACHMENT_PATH_BYTES: usize = 255;

/// A workspace-relative path such as `reports/weekly-review.md`: `/`-separated
/// components, none empty, `.` or `..`, no backslash or control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AttachmentPath(String);

impl AttachmentPath {
    /// Check a path's shape; the error says what is wrong and what to write.
    pub fn parse(text: &str) -> Result<AttachmentPath, String> {
        let shown = text.chars().take(80).collect::<String>();
        if text.is_empty() {
            return Err(
                "an attachment path is empty: name a file such as reports/weekly.md".into(),
            );
        }
        if text.len() > MAX_ATTACHMENT_PATH_BYTES {
            return Err(format!(
                "the attachment path {shown:?}… is longer than {MAX_ATTACHMENT_PATH_BYTES} bytes"
            ));
        }
        if text.chars().any(char::is_control) || text.contains('\\') {
            return Err(format!(
                "the attachment path {shown:?} contains a control character or a backslash: use `/` between folders"
            ));
        }
        if text.starts_with('/') || text.as_bytes().get(1) == Some(&b':') {
            return Err(format!(
                "the attachment path {shown:?} is absolute: write it relative to the workspace, such as reports/weekly.md"
            ));
        }
        if text
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!(
                "the attachment path {shown:?} has an empty, `.` or `..` component: name the file by its plain path inside the workspace"
            ));
        }
        Ok(AttachmentPath(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component: the name the file is shown under.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for AttachmentPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AttachmentPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        AttachmentPath::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Check a message's list of attachment paths: each path's shape, no path
/// twice, at most [`MAX_ATTACHMENTS`]. Problems are pushed, not returned
/// early, so a producer sees every one at once.
pub fn check_attachments(paths: &[String], problems: &mut Vec<String>) -> Vec<AttachmentPath> {
    if paths.len() > MAX_ATTACHMENTS {
        problems.push(format!(
            "{} attachments given; a message carries at most {MAX_ATTACHMENTS}",
            paths.len()
        ));
    }
    let mut out: Vec<AttachmentPath> = Vec::with_capacity(paths.len());
    for p in paths {
        match AttachmentPath::parse(p) {
            Ok(path) if out.contains(&path) => {
                problems.push(format!("the attachment {path} is named twice"));
            }
            Ok(path) => out.push(path),
            Err(e) => problems.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_are_taken() {
        let p = AttachmentPath::parse("reports/2026/weekly review.md").unwrap();
        assert_eq!(p.file_name(), "weekly review.md");
        assert_eq!(AttachmentPath::parse("a.png").unwrap().file_name(), "a.png");
    }

    #[test]
    fn paths_that_walk_out_are_refused_with_the_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("C:/x", "absolute"),
            ("../secrets", "`..`"),
            ("reports/../../x", "`..`"),
            ("reports//x", "empty"),
            ("./reports/x", "`.`"),
            ("reports\\x", "backslash"),
            ("reports/x\n", "control"),
        ] {
            let e = AttachmentPath::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(AttachmentPath::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn a_list_is_checked_whole() {
        let mut problems = Vec::new();
        let paths: Vec<String> = (0..11).map(|i| format!("reports/{i}.md")).collect();
        assert_eq!(check_attachments(&paths, &mut problems).len(), 11);
        assert!(problems[0].contains("at most 10"), "{problems:?}");
        let mut problems = Vec::new();
        let got = check_attachments(
            &["a.md".into(), "a.md".into(), "../b".into()],
            &mut problems,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn deserialising_checks_the_shape() {
        assert!(serde_json::from_str::<AttachmentPath>("\"../x\"").is_err());
        assert_eq!(
            serde_json::from_str::<AttachmentPath>("\"reports/x.md\"")
                .unwrap()
                .as_str(),
            "reports/x.md"
        );
    }
}
