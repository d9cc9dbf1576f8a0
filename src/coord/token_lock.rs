//! One process per bot token: an exclusive, non-blocking file lock per token,
//! `<workspace>/locks/token-<ENV_NAME>.lock`, held for the life of the process.
//!
//! The lock is keyed by the name of the environment variable that holds the
//! token (the name the configuration uses; `check-config` already rejects a
//! token named by two agents), so the token itself never reaches the disk.
//! The operating system drops the lock when the process dies, however it dies,
//! so there is nothing stale to clean up. The file holds the holder's pid and
//! host, only to name them in the error a second process gets.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::{CoordError, ProcessId};

/// Held while it lives; dropping it releases the token.
#[derive(Debug)]
pub struct TokenLock {
    _file: File,
    path: PathBuf,
}

impl TokenLock {
    /// Takes the run lock for the token in `$env_name`, or says who has it.
    pub fn acquire(workspace: &Path, env_name: &str) -> Result<TokenLock, CoordError> {
        if env_name.is_empty()
            || !env_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(CoordError::InvalidTokenEnv(env_name.to_string()));
        }
        let dir = workspace.join("locks");
        std::fs::create_dir_all(&dir).map_err(CoordError::io("create", &dir))?;
        let path = dir.join(format!("token-{env_name}.lock"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(CoordError::io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| {
                        Some(format!(
                            "process {} on {}",
                            v.get("pid")?.as_u64()?,
                            v.get("host")?.as_str()?
                        ))
                    });
                return Err(CoordError::TokenInUse {
                    env: env_name.to_string(),
                    holder,
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(CoordError::io("lock", &path)(e)),
        }
        let me = ProcessId::current();
        let note = serde_json::json!({ "pid": me.pid, "host": me.host, "since": Utc::now() });
        let written = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(note.to_string().as_bytes()))
            .and_then(|_| file.flush());
        if let Err(e) = written {
            // The lock itself is what matters; the note only improves the error message.
            tracing::warn!(path = %path.display(), error = %e, "could not record the token lock holder");
        }
        tracing::info!(env = env_name, path = %path.display(), "token run lock taken");
        Ok(TokenLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
