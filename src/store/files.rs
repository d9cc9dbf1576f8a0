//! The files kept with a delivery (`delivery_files`): written in the
//! transaction that records the delivery, read by the outbox when it sends.

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sqlx::AnyConnection;
use switchyard_routing::AttachmentPath;

use super::Store;
use crate::files::{Attached, FileData};

/// Store a delivery's files, in order, and count them on the delivery.
pub(super) async fn insert_files(
    tx: &mut AnyConnection,
    delivery_id: &str,
    files: &[Attached],
) -> anyhow::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    for (position, file) in files.iter().enumerate() {
        let (path, name, content_type, size, sha256, content, left_behind) = match file {
            Attached::Read(f) => (
                f.path.as_str(),
                f.name.as_str(),
                f.content_type.as_str(),
                f.size() as i64,
                f.sha256.as_str(),
                Some(B64.encode(&f.bytes)),
                None,
            ),
            Attached::LeftBehind { path, why } => (
                path.as_str(),
                path.file_name(),
                "",
                0,
                "",
                None,
                Some(why.as_str()),
            ),
        };
        sqlx::query(
            "INSERT INTO delivery_files (delivery_id, position, path, name, content_type, size, sha256, content, left_behind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(delivery_id)
        .bind(position as i64)
        .bind(path)
        .bind(name)
        .bind(content_type)
        .bind(size)
        .bind(sha256)
        .bind(content)
        .bind(left_behind)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("cannot store the file {path} of delivery {delivery_id}"))?;
    }
    sqlx::query("UPDATE deliveries SET files = $1 WHERE id = $2")
        .bind(files.len() as i64)
        .bind(delivery_id)
        .execute(&mut *tx)
        .await
        .context("cannot count a delivery's files")?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct FileRecord {
    path: String,
    name: String,
    content_type: String,
    sha256: String,
    content: Option<String>,
    left_behind: Option<String>,
}

impl Store {
    /// A delivery's files, in the message's order, with the bytes kept when
    /// it was recorded. A kept file whose bytes no longer match their digest
    /// is an error: a message never goes out with other bytes than recorded.
    pub async fn delivery_files(&self, delivery_id: &str) -> anyhow::Result<Vec<Attached>> {
        let rows: Vec<FileRecord> = sqlx::query_as(
            "SELECT path, name, content_type, sha256, content, left_behind FROM delivery_files \
             WHERE delivery_id = $1 ORDER BY position",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("cannot read the files of delivery {delivery_id}"))?;
        rows.into_iter()
            .map(|r| {
                let path = AttachmentPath::parse(&r.path).map_err(anyhow::Error::msg)?;
                match (r.content, r.left_behind) {
                    (Some(content), _) => {
                        let bytes = B64
                            .decode(content.as_bytes())
                            .with_context(|| format!("the kept bytes of {path} are not base64"))?;
                        anyhow::ensure!(
                            crate::files::hex_digest(&bytes) == r.sha256,
                            "the kept bytes of {path} do not match their SHA-256"
                        );
                        Ok(Attached::Read(FileData {
                            path,
                            name: r.name,
                            content_type: r.content_type,
                            bytes: bytes.into(),
                            sha256: r.sha256,
                        }))
                    }
                    (None, why) => Ok(Attached::LeftBehind {
                        path,
                        why: why.unwrap_or_else(|| "was not kept".into()),
                    }),
                }
            })
            .collect()
    }
}
