//! Files that travel with messages: which workspace files a message may
//! attach ([`Attachable`]), reading them once, bounded, into the bytes the
//! outbox keeps with the delivery ([`FileData`]), and fitting them to a
//! platform's upload limits ([`fit`]).
//!
//! A message names files by workspace-relative paths. Anything that can
//! write an inbox item can name a path, so the path is untrusted: it must
//! resolve (links followed) inside one of the configured attachable folders
//! (`[files] attachable`, default `reports/`) or the agent's own task logs,
//! and never to an agent's state (databases, leases, the status file). A path
//! that breaks those rules refuses the whole item; a file that is merely
//! missing or too big lets the message go out, saying which file stayed
//! behind and why.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use switchyard_routing::{AttachmentPath, Platform};

use crate::config::FilesSettings;

/// The most bytes of one file read for any platform (Telegram's 50 MB for a document).
pub const MAX_READ_BYTES: u64 = 50 * 1000 * 1000;
/// Discord: at most this many bytes of files in one message (the default upload limit, 10 MiB).
pub const DISCORD_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Telegram: the largest photo `sendPhoto` takes (10 MB); larger images go as documents.
pub const TELEGRAM_MAX_PHOTO_BYTES: u64 = 10 * 1000 * 1000;
/// Telegram: the largest document `sendDocument` takes (50 MB).
pub const TELEGRAM_MAX_DOCUMENT_BYTES: u64 = 50 * 1000 * 1000;

/// A path no message may attach. The item naming it is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "the attachment {path} resolves outside the workspace (through a link or otherwise): attach only files inside it"
    )]
    Outside { path: AttachmentPath },
    #[error(
        "the attachment {path} is an agent's own state (a database, lease, status file or another agent's files): these are never attachable"
    )]
    AgentState { path: AttachmentPath },
    #[error(
        "the attachment {path} is not in a folder messages may attach from ({folders}): write the file there, or add its folder to [files] attachable"
    )]
    NotAttachable {
        path: AttachmentPath,
        folders: String,
    },
}

/// A file read for a message: its bytes, kept with the delivery so that a
/// retry or a restart sends exactly these.
#[derive(Clone, PartialEq, Eq)]
pub struct FileData {
    pub path: AttachmentPath,
    /// The name the platforms show: the path's last component, made safe.
    pub name: String,
    pub content_type: String,
    pub bytes: Arc<[u8]>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
}

impl std::fmt::Debug for FileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileData")
            .field("path", &self.path)
            .field("content_type", &self.content_type)
            .field("size", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl FileData {
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    pub fn is_image(&self) -> bool {
        matches!(
            self.content_type.as_str(),
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        )
    }
}

/// What became of one named file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attached {
    Read(FileData),
    /// Not sent; the message says so (missing, not a file, too big, unreadable).
    LeftBehind {
        path: AttachmentPath,
        why: String,
    },
}

/// The folders a given agent may attach from, resolved against the workspace.
#[derive(Debug, Clone)]
pub struct Attachable {
    workspace: PathBuf,
    folders: Vec<String>,
    own_logs: String,
}

impl Attachable {
    pub fn new(workspace: &Path, settings: &FilesSettings, agent: &str) -> Attachable {
        Attachable {
            workspace: workspace.to_path_buf(),
            folders: settings.attachable.clone(),
            own_logs: format!("agents/{agent}/logs"),
        }
    }

    /// Read every named file (blocking: call it off the async threads).
    pub fn read_all(&self, paths: &[AttachmentPath]) -> Result<Vec<Attached>, Refused> {
        paths.iter().map(|p| self.read(p)).collect()
    }

    /// Check one path and read its file, at most [`MAX_READ_BYTES`].
    pub fn read(&self, path: &AttachmentPath) -> Result<Attached, Refused> {
        let left = |why: String| {
            Ok(Attached::LeftBehind {
                path: path.clone(),
                why,
            })
        };
        let text = path.as_str();
        let in_folder = |folder: &str, p: &str| p == folder || p.starts_with(&format!("{folder}/"));
        // The text first: a name inside agents/ (other than this agent's
        // logs) or the fleet's own files is refused however it resolves.
        if is_state(text) && !in_folder(&self.own_logs, text) {
            return Err(Refused::AgentState { path: path.clone() });
        }
        let Ok(root) = self.workspace.canonicalize() else {
            return left("the workspace cannot be read".into());
        };
        let joined = root.join(text);
        let real = match joined.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling link may point anywhere: it is missing here, but
                // only if what it names would be inside.
                return left(format!(
                    "not found in the workspace (at {})",
                    joined.display()
                ));
            }
            Err(e) => return left(format!("cannot be read ({e})")),
        };
        let Ok(rel) = real.strip_prefix(&root) else {
            return Err(Refused::Outside { path: path.clone() });
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if is_state(&rel) && !in_folder(&self.own_logs, &rel) {
            return Err(Refused::AgentState { path: path.clone() });
        }
        let allowed =
            self.folders.iter().any(|f| in_folder(f, &rel)) || in_folder(&self.own_logs, &rel);
        if !allowed {
            return Err(Refused::NotAttachable {
                path: path.clone(),
                folders: self
                    .folders
                    .iter()
                    .map(|f| format!("{f}/"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let meta = match std::fs::metadata(&real) {
            Ok(m) => m,
            Err(e) => return left(format!("cannot be read ({e})")),
        };
        if !meta.is_file() {
            return left("is not a regular file".into());
        }
        if meta.len() > MAX_READ_BYTES {
            return left(format!(
                "is {}, more than any platform takes ({})",
                human_size(meta.len()),
                human_size(MAX_READ_BYTES)
            ));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        let read = std::fs::File::open(&real)
            .and_then(|f| f.take(MAX_READ_BYTES + 1).read_to_end(&mut bytes));
        if let Err(e) = read {
            return left(format!("cannot be read ({e})"));
        }
        if bytes.len() as u64 > MAX_READ_BYTES {
            return left(format!(
                "grew past {} while it was read",
                human_size(MAX_READ_BYTES)
            ));
        }
        Ok(Attached::Read(file_data(path.clone(), bytes)))
    }
}

/// Whether a workspace-relative path names an agent's or the fleet's state.
fn is_state(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    rel == "agents"
        || rel.starts_with("agents/")
        || name == "status.json"
        || name.ends_with(".lease")
        || name.contains(".db")
        || name == "fleet.lock"
}

/// Bytes as a file to send: the safe name, the type from the extension, the digest.
pub fn file_data(path: AttachmentPath, bytes: Vec<u8>) -> FileData {
    let name = safe_name(path.file_name());
    let content_type = mime_guess::from_path(&name)
        .first_or_octet_stream()
        .essence_str()
        .to_string();
    let sha256 = hex_digest(&bytes);
    FileData {
        path,
        name,
        content_type,
        bytes: bytes.into(),
        sha256,
    }
}

pub fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file name both platforms show as written and Discord's
/// `attachment://NAME` can name: letters, digits, `.`, `-` and `_`.
pub fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    }
}

/// `12.3 MiB`, `512 KiB`, `42 bytes`.
pub fn human_size(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f >= KIB * KIB {
        format!("{:.1} MiB", f / KIB / KIB)
    } else if f >= KIB {
        format!("{:.0} KiB", f / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// Which files go out to a platform, and which stay behind because the
/// platform would refuse them. Decided before sending, so the message says
/// so instead of failing. Names are made unique within the message.
pub fn fit(platform: Platform, attached: &[Attached]) -> Vec<Attached> {
    let mut out = Vec::with_capacity(attached.len());
    let mut total = 0u64;
    let mut names: Vec<String> = Vec::new();
    for a in attached {
        let Attached::Read(file) = a else {
            out.push(a.clone());
            continue;
        };
        let size = file.size();
        let refusal = match platform {
            Platform::Discord if size > DISCORD_MAX_BYTES => Some(format!(
                "is {}, over Discord's upload limit of {}",
                human_size(size),
                human_size(DISCORD_MAX_BYTES)
            )),
            Platform::Discord if total + size > DISCORD_MAX_BYTES => Some(format!(
                "would take the message's files past Discord's {} per message",
                human_size(DISCORD_MAX_BYTES)
            )),
            Platform::Telegram if size > TELEGRAM_MAX_DOCUMENT_BYTES => Some(format!(
                "is {}, over Telegram's upload limit of {}",
                human_size(size),
                human_size(TELEGRAM_MAX_DOCUMENT_BYTES)
            )),
            _ => None,
        };
        if let Some(why) = refusal {
            out.push(Attached::LeftBehind {
                path: file.path.clone(),
                why,
            });
            continue;
        }
        total += size;
        let mut file = file.clone();
        // log.txt, log-2.txt, log-3.txt: the nth copy of a name, from the name itself.
        let (stem, ext) = match file.name.rsplit_once('.') {
            Some((stem, ext)) => (stem.to_string(), format!(".{ext}")),
            None => (file.name.clone(), String::new()),
        };
        let mut n = 1;
        while names.contains(&file.name) {
            n += 1;
            file.name = format!("{stem}-{n}{ext}");
        }
        names.push(file.name.clone());
        out.push(Attached::Read(file));
    }
    out
}

/// The line a message carries for a file that stayed behind.
pub fn left_behind_line(path: &AttachmentPath, why: &str) -> String {
    format!("📎 {path} was not attached: it {why}. It stays in the workspace at {path}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Attachable) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("reports")).unwrap();
        std::fs::create_dir_all(dir.path().join("agents/a/logs")).unwrap();
        std::fs::create_dir_all(dir.path().join("agents/b/logs")).unwrap();
        std::fs::write(dir.path().join("reports/weekly.md"), "# Weekly\n").unwrap();
        std::fs::write(dir.path().join("agents/a/logs/t-1.log"), "ok\n").unwrap();
        std::fs::write(dir.path().join("agents/b/logs/t-2.log"), "b's\n").unwrap();
        std::fs::write(dir.path().join("agents/a/state.db"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let a = Attachable::new(dir.path(), &FilesSettings::default(), "a");
        (dir, a)
    }

    fn p(s: &str) -> AttachmentPath {
        AttachmentPath::parse(s).unwrap()
    }

    #[test]
    fn a_report_is_read_with_its_type_and_digest() {
        let (_dir, a) = setup();
        let Attached::Read(f) = a.read(&p("reports/weekly.md")).unwrap() else {
            panic!("not read")
        };
        assert_eq!(&*f.bytes, b"# Weekly\n");
        assert_eq!(f.name, "weekly.md");
        assert_eq!(f.content_type, "text/markdown");
        assert_eq!(f.sha256, hex_digest(b"# Weekly\n"));
        assert!(matches!(
            a.read(&p("agents/a/logs/t-1.log")).unwrap(),
            Attached::Read(_)
        ));
    }

    #[test]
    fn state_other_agents_and_unlisted_folders_are_refused() {
        let (_dir, a) = setup();
        for path in ["agents/a/state.db", "agents/b/logs/t-2.log", "status.json"] {
            assert!(
                matches!(a.read(&p(path)), Err(Refused::AgentState { .. })),
                "{path}"
            );
        }
        assert!(matches!(
            a.read(&p("notes.txt")),
            Err(Refused::NotAttachable { .. })
        ));
    }

    #[test]
    fn a_link_out_of_the_workspace_or_into_state_is_refused() {
        let (dir, a) = setup();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            dir.path().join("reports/secret.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("agents/a/state.db"),
            dir.path().join("reports/db.txt"),
        )
        .unwrap();
        assert!(matches!(
            a.read(&p("reports/secret.txt")),
            Err(Refused::Outside { .. })
        ));
        assert!(matches!(
            a.read(&p("reports/db.txt")),
            Err(Refused::AgentState { .. })
        ));
    }

    #[test]
    fn a_missing_file_or_a_folder_stays_behind_with_the_reason() {
        let (_dir, a) = setup();
        let Attached::LeftBehind { why, .. } = a.read(&p("reports/nope.md")).unwrap() else {
            panic!()
        };
        assert!(why.contains("not found"), "{why}");
        let Attached::LeftBehind { why, .. } = a.read(&p("reports")).unwrap() else {
            panic!()
        };
        assert!(why.contains("not a regular file"), "{why}");
    }

    #[test]
    fn platform_limits_leave_big_files_behind_and_names_stay_unique() {
        let big = file_data(
            p("reports/big.bin"),
            vec![0; (DISCORD_MAX_BYTES + 1) as usize],
        );
        let a = file_data(p("reports/x/log.txt"), b"1".to_vec());
        let b = file_data(p("reports/y/log.txt"), b"2".to_vec());
        let files = [Attached::Read(big), Attached::Read(a), Attached::Read(b)];
        let discord = fit(Platform::Discord, &files);
        assert!(
            matches!(&discord[0], Attached::LeftBehind { why, .. } if why.contains("Discord's upload limit"))
        );
        let names: Vec<&str> = discord
            .iter()
            .filter_map(|f| match f {
                Attached::Read(f) => Some(f.name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["log.txt", "log-2.txt"]);
        assert!(matches!(
            fit(Platform::Telegram, &files)[0],
            Attached::Read(_)
        ));
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(
            safe_name("weekly review (final).md"),
            "weekly_review__final_.md"
        );
        assert_eq!(safe_name(".hidden"), "hidden");
        assert_eq!(safe_name("日本.txt"), "__.txt");
    }
}
