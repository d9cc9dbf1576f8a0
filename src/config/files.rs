//! `[files]`: which workspace folders messages may attach files from, and
//! the bounds on files users send to an agent.

use serde::Deserialize;

use super::validator::Validator;

/// The folders attachable when `[files] attachable` is not set.
pub const DEFAULT_ATTACHABLE: &[&str] = &["reports"];

/// `[files]` as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawFiles {
    pub attachable: Option<Vec<String>>,
    pub incoming_max_bytes: Option<u64>,
    pub incoming_timeout: Option<String>,
}

/// `[files]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesSettings {
    /// Workspace-relative folders a message may attach files from. An agent
    /// may also attach its own task logs (`agents/<name>/logs`); no message
    /// may attach any other agent's files or the fleet's state.
    pub attachable: Vec<String>,
    /// The largest file a user may send an agent that the agent downloads.
    pub incoming_max_bytes: u64,
    /// How long one download of a user's file may take.
    pub incoming_timeout: std::time::Duration,
}

impl Default for FilesSettings {
    fn default() -> Self {
        FilesSettings {
            attachable: DEFAULT_ATTACHABLE.iter().map(|s| s.to_string()).collect(),
            incoming_max_bytes: 1024 * 1024,
            incoming_timeout: std::time::Duration::from_secs(20),
        }
    }
}

pub(super) fn files(v: &mut Validator, raw: RawFiles) -> FilesSettings {
    let d = FilesSettings::default();
    let mut attachable = Vec::new();
    for (i, folder) in raw
        .attachable
        .unwrap_or(d.attachable)
        .into_iter()
        .enumerate()
    {
        let key = format!("files.attachable[{i}]");
        let trimmed = folder.trim_end_matches('/').to_string();
        match switchyard_routing::AttachmentPath::parse(&trimmed) {
            Err(e) => v.problem(&key, e.replace("attachment path", "folder")),
            Ok(_) if trimmed == "agents" || trimmed.starts_with("agents/") => v.problem(
                &key,
                "agents/ holds the agents' own state (databases, leases, logs): it is never attachable; write reports into a folder of their own such as reports/",
            ),
            Ok(_) => attachable.push(trimmed),
        }
    }
    let incoming_max_bytes = raw.incoming_max_bytes.unwrap_or(d.incoming_max_bytes);
    if incoming_max_bytes == 0 || incoming_max_bytes > 20 * 1024 * 1024 {
        v.problem(
            "files.incoming_max_bytes",
            "must be between 1 and 20971520 (20 MiB, the most Telegram lets a bot download)",
        );
    }
    FilesSettings {
        attachable,
        incoming_max_bytes: incoming_max_bytes.clamp(1, 20 * 1024 * 1024),
        incoming_timeout: v.duration("files.incoming_timeout", raw.incoming_timeout, "20s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_escaping_folders_are_refused() {
        let mut v = Validator::default();
        let s = files(
            &mut v,
            RawFiles {
                attachable: Some(vec![
                    "reports/".into(),
                    "agents/a/logs".into(),
                    "../etc".into(),
                    "/tmp".into(),
                ]),
                ..RawFiles::default()
            },
        );
        assert_eq!(s.attachable, vec!["reports".to_string()]);
        let keys: Vec<&str> = v.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "files.attachable[1]",
                "files.attachable[2]",
                "files.attachable[3]"
            ]
        );
        assert!(v.problems[0].message.contains("never attachable"));
    }

    #[test]
    fn the_default_is_reports() {
        let mut v = Validator::default();
        assert_eq!(files(&mut v, RawFiles::default()), FilesSettings::default());
        assert!(v.problems.is_empty());
    }
}
