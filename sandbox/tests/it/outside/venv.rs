//! The outside clients' virtual environment, and running one script in it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The folder of the scripts and their `requirements.txt`.
fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outside")
}

fn venv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHYARD_PYCLIENTS_VENV") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache/switchyard-pyclients")
}

/// A stamp of the requirements a venv was made from: it is remade when they change.
fn requirements() -> String {
    std::fs::read_to_string(scripts_dir().join("requirements.txt"))
        .expect("sandbox/tests/outside/requirements.txt is readable")
}

/// Makes (or reuses) the venv; `Err` says why it could not be made.
fn make_venv() -> Result<PathBuf, String> {
    let dir = venv_dir();
    let python = dir.join("bin/python");
    let stamp = dir.join("switchyard-requirements.txt");
    let wanted = requirements();
    std::fs::create_dir_all(dir.parent().unwrap_or(Path::new("/")))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Tests run in parallel and so may other test processes: one maker at a time.
    let lock_path = dir.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if python.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    let step = |what: &str, cmd: &mut Command| -> Result<(), String> {
        let out = cmd
            .output()
            .map_err(|e| format!("{what}: could not start: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    step(
        "python3 -m venv",
        Command::new("python3").arg("-m").arg("venv").arg(&dir),
    )?;
    step(
        "pip install -r sandbox/tests/outside/requirements.txt",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(scripts_dir().join("requirements.txt")),
    )?;
    std::fs::write(&stamp, &wanted)
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}

/// The venv's python, or `None` after saying loudly why the test cannot run.
fn python() -> Option<PathBuf> {
    static MADE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match MADE.get_or_init(make_venv) {
        Ok(python) => Some(python.clone()),
        Err(why) => {
            eprintln!(
                "\n********************************************************************\n\
                 SKIPPED: the outside clients' venv could not be made: {why}\n\
                 ********************************************************************\n"
            );
            assert!(
                std::env::var("SWITCHYARD_REQUIRE_PYCLIENTS").as_deref() != Ok("1"),
                "SWITCHYARD_REQUIRE_PYCLIENTS=1 but the outside clients cannot run: {why}"
            );
            None
        }
    }
}

/// Runs `sandbox/tests/outside/SCRIPT` with `env` and returns its stdout; panics
/// with the script's output when it fails or runs longer than `limit`. `None`:
/// the venv could not be made (said loudly, see the module's doc).
pub async fn run_script(script: &str, env: &[(&str, String)], limit: Duration) -> Option<String> {
    let python = tokio::task::spawn_blocking(python)
        .await
        .expect("the venv maker does not panic")?;
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(scripts_dir().join(script))
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{script} ran longer than {limit:?}"))
        .unwrap_or_else(|e| panic!("{script} could not start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    Some(stdout)
}

/// Runs `sandbox/tests/outside/SCRIPT` as a conversation: every stdout line is
/// handed to `on_line` as it comes, and what `on_line` returns is written back to
/// the script's stdin as one line (so a script can print `NEED …`, wait for the
/// test to play a user, and go on when it reads the answer). Returns the whole
/// stdout; panics like [`run_script`] when the script fails or overruns `limit`.
pub async fn run_session(
    script: &str,
    env: &[(&str, String)],
    limit: Duration,
    mut on_line: impl FnMut(&str) -> Option<String>,
) -> Option<String> {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let python = tokio::task::spawn_blocking(python)
        .await
        .expect("the venv maker does not panic")?;
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(scripts_dir().join(script))
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{script} could not start: {e}"));
    let mut stdin = child.stdin.take().expect("piped");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut stderr = child.stderr.take().expect("piped");
    // Read stderr alongside, so that a chatty script never blocks on a full pipe.
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut stdout = String::new();
    let talk = async {
        while let Some(line) = lines.next_line().await.expect("stdout is readable") {
            stdout.push_str(&line);
            stdout.push('\n');
            if let Some(answer) = on_line(&line) {
                // The script may have ended already; its exit status tells.
                let _ = stdin.write_all(format!("{answer}\n").as_bytes()).await;
                let _ = stdin.flush().await;
            }
        }
        child.wait().await
    };
    let status = tokio::time::timeout(limit, talk).await;
    let stderr = match &status {
        Ok(_) => stderr_task.await.unwrap_or_default(),
        Err(_) => String::from("(still running)"),
    };
    let status = status
        .unwrap_or_else(|_| {
            panic!(
                "{script} ran longer than {limit:?}:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            )
        })
        .unwrap_or_else(|e| panic!("{script} could not be waited for: {e}"));
    assert!(
        status.success(),
        "{script} failed ({status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    Some(stdout)
}
