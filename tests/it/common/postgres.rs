//! A real PostgreSQL server for the tests, and a fresh database per test.
//!
//! The server is `$SWITCHYARD_TEST_POSTGRES_URL` when set (`.ci/run` starts a
//! throwaway cluster and sets it); otherwise the first test that needs one
//! starts a cluster of this test process with `scripts/postgres-cluster`
//! (Debian's `postgresql`), removed by a watchdog when the process ends. When
//! neither is possible the test prints `SKIPPED` loudly and passes, unless
//! `SWITCHYARD_REQUIRE_POSTGRES=1`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sqlx::Connection;
use switchyard::store::Store;

/// The server's URL (its `postgres` database), or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
            return Ok(url);
        }
        start_cluster()
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres-cluster")
}

fn start_cluster() -> Result<String, String> {
    start_cluster_in(
        &std::env::temp_dir().join(format!("switchyard-test-pg-{}", std::process::id())),
    )
}

/// Starts a cluster in `dir`, stopped and removed once this process is gone.
fn start_cluster_in(dir: &Path) -> Result<String, String> {
    let script = script();
    let out = Command::new(&script)
        .arg("start")
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/postgres-cluster start failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // The server outlives this process unless stopped: a watchdog stops it
    // (and removes its directory) once the test process is gone.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; exec {script} stop {dir}",
        pid = std::process::id(),
        script = script.display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(watchdog)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A PostgreSQL cluster of one test's own, for a test that stops and
/// restarts the server under running agents (the shared test server must
/// stay up for the others). Removed when dropped, or by a watchdog when the
/// test process ends first.
pub struct OwnCluster {
    dir: PathBuf,
    pub url: String,
}

impl OwnCluster {
    /// `None` after saying loudly why there is none (a failure under
    /// `SWITCHYARD_REQUIRE_POSTGRES=1`).
    pub fn start() -> Option<OwnCluster> {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-test-own-pg-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        match start_cluster_in(&dir) {
            Ok(url) => Some(OwnCluster { dir, url }),
            Err(why) => {
                eprintln!(
                    "\n!!!!!!!! SKIPPED: no PostgreSQL cluster of the test's own: {why} !!!!!!!!\n"
                );
                assert!(
                    std::env::var("SWITCHYARD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "SWITCHYARD_REQUIRE_POSTGRES=1 but no PostgreSQL cluster could be started: {why}"
                );
                None
            }
        }
    }

    /// Stops the server (fast shutdown), keeping its data.
    pub fn halt(&self) {
        self.script("halt");
    }

    /// Starts the halted server again, on the same port.
    pub fn resume(&self) {
        self.script("start");
    }

    fn script(&self, cmd: &str) {
        let out = Command::new(script())
            .arg(cmd)
            .arg(&self.dir)
            .output()
            .expect("run scripts/postgres-cluster");
        assert!(
            out.status.success(),
            "scripts/postgres-cluster {cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).output();
    }
}

/// A fresh, empty database on the test server, as a URL; `None` after saying
/// loudly why there is no server (a failure under `SWITCHYARD_REQUIRE_POSTGRES=1`).
pub async fn fresh_database() -> Option<String> {
    let base = match tokio::task::spawn_blocking(server).await.expect("no panic") {
        Ok(url) => url.clone(),
        Err(why) => {
            eprintln!(
                "\n********************************************************************\n\
                 SKIPPED: no PostgreSQL server for this test: {why}\n\
                 ********************************************************************\n"
            );
            assert!(
                std::env::var("SWITCHYARD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "SWITCHYARD_REQUIRE_POSTGRES=1 but there is no PostgreSQL server: {why}"
            );
            return None;
        }
    };
    let name = format!("sy_{}_{:016x}", std::process::id(), rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    conn.close().await.ok();
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("the server URL names a database");
    Some(format!("{prefix}/{name}"))
}

/// Where a store test keeps its database: a SQLite file in a temporary
/// directory, or a fresh database on the PostgreSQL test server.
pub struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        TestDb {
            url: format!("sqlite://{}/agents/a/state.db", dir.path().display()),
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> Option<TestDb> {
        Some(TestDb {
            url: fresh_database().await?,
            _dir: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store of agent `a`, opened as an agent opens its own.
    pub async fn open(&self) -> Store {
        Store::open_agent(&self.url, "a")
            .await
            .expect("open the test store")
    }
}

/// Runs each named `async fn NAME(db: TestDb)` twice, as the tests
/// `NAME::sqlite` and `NAME::postgres`, so that neither backend drifts.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::TestDb::sqlite()).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::common::TestDb::postgres().await {
                        super::$name(db).await
                    }
                }
            }
        )*
    };
}
