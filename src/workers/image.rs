//! The worker image, built locally without a registry: `worker/Dockerfile`
//! (`FROM scratch`) plus a static busybox and its applet symlinks, sent to
//! the engine's build endpoint as an in-memory tar context.
//!
//! The image carries a label with a fingerprint of its recipe, so an image
//! already built from the same recipe is reused and a changed one rebuilt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use tracing::info;

use crate::tasks::runtime::WorkerError;

/// The tag skills use by default.
pub const WORKER_IMAGE: &str = "switchyard-worker:latest";
/// Where Debian's `busybox-static` package installs the static binary.
pub const BUSYBOX_PATH: &str = "/bin/busybox";
/// Overrides [`BUSYBOX_PATH`] (another distribution, another location).
pub const BUSYBOX_ENV: &str = "SWITCHYARD_BUSYBOX";
pub const RECIPE_LABEL: &str = "switchyard.worker.recipe";

const DOCKERFILE: &str = include_str!("../../worker/Dockerfile");

/// The applets a worker step can call by name.
pub const APPLETS: &[&str] = &[
    "sh",
    "ash",
    "echo",
    "cat",
    "sleep",
    "env",
    "ls",
    "head",
    "tail",
    "dd",
    "yes",
    "true",
    "false",
    "printf",
    "test",
    "[",
    "mkdir",
    "rm",
    "touch",
    "wc",
    "tr",
    "seq",
    "grep",
    "sed",
    "awk",
    "cut",
    "sort",
    "uniq",
    "date",
    "id",
    "nc",
    "ps",
    "kill",
    "tee",
    "xargs",
    "find",
    "basename",
    "dirname",
    "expr",
    "md5sum",
    "sha256sum",
    "stat",
];

/// What [`ensure_worker_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    /// An image from the same recipe was already there.
    Present,
    Built,
}

fn busybox_path() -> PathBuf {
    std::env::var_os(BUSYBOX_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BUSYBOX_PATH))
}

/// FNV-1a: a stable fingerprint (std's hasher may change between releases).
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The build context: the Dockerfile and `rootfs/` with busybox, applet symlinks and `/tmp`.
pub fn build_context(busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let file = |tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, data)
    };
    file(&mut tar, "Dockerfile", 0o644, DOCKERFILE.as_bytes())?;
    for (dir, mode) in [
        ("rootfs/", 0o755),
        ("rootfs/bin/", 0o755),
        ("rootfs/tmp/", 0o1777),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, dir, std::io::empty())?;
    }
    file(&mut tar, "rootfs/bin/busybox", 0o755, busybox)?;
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_link(&mut h, format!("rootfs/bin/{applet}"), "busybox")?;
    }
    tar.into_inner()
}

/// Make sure `tag` is an image built from this recipe; build it if not.
pub async fn ensure_worker_image(docker: &Docker, tag: &str) -> Result<ImageStatus, WorkerError> {
    let path = busybox_path();
    let busybox = read_busybox(&path)?;
    let recipe = fingerprint(&[
        DOCKERFILE.as_bytes(),
        &busybox,
        APPLETS.join(",").as_bytes(),
    ]);

    match docker.inspect_image(tag).await {
        Ok(image) => {
            let label = image
                .config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(RECIPE_LABEL).cloned());
            if label.as_deref() == Some(recipe.as_str()) {
                return Ok(ImageStatus::Present);
            }
        }
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => {
            return Err(WorkerError::Engine {
                operation: "inspect image",
                message: e.to_string(),
            });
        }
    }

    let context = build_context(&busybox).map_err(|source| WorkerError::Io {
        context: "building the worker image context".into(),
        source,
    })?;
    let labels = HashMap::from([(RECIPE_LABEL, recipe.as_str())]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .labels(&labels)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| WorkerError::Engine {
            operation: "build the worker image",
            message: e.to_string(),
        })?;
        if let Some(line) = info
            .stream
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            tracing::debug!(line, "worker image build");
        }
    }
    info!(tag, recipe, "built the worker image");
    Ok(ImageStatus::Built)
}

fn read_busybox(path: &Path) -> Result<Vec<u8>, WorkerError> {
    std::fs::read(path).map_err(|source| WorkerError::Io {
        context: format!(
            "reading the static busybox at {} (install Debian's busybox-static package, or set {BUSYBOX_ENV} to a static busybox)",
            path.display()
        ),
        source,
    })
}
