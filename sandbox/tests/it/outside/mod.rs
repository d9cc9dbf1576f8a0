//! Client libraries nobody here wrote, pointed at the sandbox: each test starts
//! a sandbox, runs one scripted session of a Python library from PyPI against
//! it (`sandbox/tests/outside/*.py`, versions pinned in `requirements.txt`), and
//! passes only when the script exits 0 (every answer accepted, every refusal the
//! platform's own) and the sandbox's state shows what the script did.
//!
//! The libraries live in a virtual environment of their own, made on first use
//! (`python3 -m venv` + `pip install -r requirements.txt`) at
//! `$SWITCHYARD_PYCLIENTS_VENV`, by default `~/.cache/switchyard-pyclients`, and
//! made again when `requirements.txt` changes. When it cannot be made (no
//! python3, PyPI unreachable), a test prints `SKIPPED` loudly and passes, unless
//! `SWITCHYARD_REQUIRE_PYCLIENTS=1` (set by `.ci/run`), where it fails.

mod discord_py;
mod openai_py;
mod telegram_py;
mod venv;

pub use venv::{run_script, run_session};

use std::time::Duration;

/// The venv holds exactly the pinned versions: a test passing against another
/// release of a library would claim what was never checked.
#[tokio::test]
async fn the_outside_clients_are_the_pinned_versions() {
    let Some(out) = run_script("versions.py", &[], Duration::from_secs(60)).await else {
        return;
    };
    let pinned = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outside/requirements.txt"),
    )
    .expect("requirements.txt is readable");
    let pinned: Vec<&str> = pinned
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let installed: Vec<&str> = out.lines().collect();
    assert_eq!(
        installed, pinned,
        "the venv's versions differ from the pins"
    );
    assert_eq!(
        pinned.len(),
        4,
        "python-telegram-bot, aiogram, discord.py, openai"
    );
}
