//! Files uploaded to the stand-ins: Discord's message attachments
//! (`files[n]` parts) and Telegram's documents and photos, kept in memory
//! (oldest dropped past a bound) and served back the way the platforms' CDNs
//! do, at `/attachments/{channel}/{id}/{name}` (Discord) and
//! `/telegram/file/bot<token>/{file_path}` (Telegram), so a test or the web
//! view can compare the bytes that arrived with the bytes sent.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;

/// Bytes kept across all uploads before the oldest are dropped.
const MAX_KEPT_BYTES: usize = 512 * 1024 * 1024;

/// One uploaded file.
#[derive(Clone, Debug)]
pub(crate) struct StoredFile {
    pub content_type: String,
    pub bytes: Arc<[u8]>,
    /// Served only after this long (a slow CDN, played).
    pub delay_ms: u64,
}

/// Uploaded files by key (Discord: `{channel}/{id}`; Telegram: the file path).
#[derive(Default)]
pub(crate) struct FileStore {
    files: HashMap<String, StoredFile>,
    order: VecDeque<String>,
    kept: usize,
}

impl FileStore {
    pub(crate) fn put(&mut self, key: String, file: StoredFile) {
        self.kept += file.bytes.len();
        if let Some(old) = self.files.insert(key.clone(), file) {
            self.kept -= old.bytes.len();
        } else {
            self.order.push_back(key);
        }
        while self.kept > MAX_KEPT_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(f) = self.files.remove(&oldest) {
                self.kept -= f.bytes.len();
            }
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<StoredFile> {
        self.files.get(key).cloned()
    }
}

/// A file's bytes, with its type, as a CDN answers.
pub(crate) fn file_response(file: Option<StoredFile>) -> Response {
    match file {
        Some(f) => {
            let mut r = axum::body::Bytes::from(f.bytes.to_vec()).into_response();
            if let Ok(v) = HeaderValue::from_str(&f.content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r
        }
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

/// `GET /attachments/{channel}/{id}/{name}`: a Discord attachment.
pub(crate) async fn discord_attachment(
    State(shared): State<Arc<Shared>>,
    Path((channel, id, _name)): Path<(u64, u64, String)>,
) -> Response {
    let file = shared.lock().discord.files.get(&format!("{channel}/{id}"));
    if let Some(delay) = file.as_ref().map(|f| f.delay_ms).filter(|d| *d > 0) {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    file_response(file)
}

/// `GET /_sandbox/telegram/files/{file_id}`: a Telegram upload, for the web view.
pub(crate) async fn telegram_file(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
) -> Response {
    let file = shared.lock().telegram.files.get(&file_id);
    file_response(file)
}

/// The type a file name suggests, for parts that gave none.
pub(crate) fn guess_type(name: &str) -> String {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("txt" | "log") => "text/plain",
        Some("md") => "text/markdown",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
    .to_owned()
}

/// Whether the bytes are an image Telegram can make a photo of (by their magic).
pub(crate) fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_files_go_past_the_bound() {
        let mut store = FileStore::default();
        let big = |n: u8| StoredFile {
            content_type: "application/octet-stream".into(),
            bytes: vec![n; MAX_KEPT_BYTES / 2].into(),
            delay_ms: 0,
        };
        store.put("a".into(), big(1));
        store.put("b".into(), big(2));
        store.put("c".into(), big(3));
        assert!(store.get("a").is_none());
        assert_eq!(store.get("c").unwrap().bytes[0], 3);
    }

    #[test]
    fn images_are_told_by_their_bytes() {
        assert_eq!(image_kind(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(image_kind(b"# not an image"), None);
    }
}
