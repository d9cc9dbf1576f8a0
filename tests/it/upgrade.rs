//! Upgrades: a database made by the release before typed holds (kept as
//! `tests/fixtures/state-before-typed-holds.db`: two messages held by the mute
//! `mute_fixture`, one held by the digest window of `briefing`, written as
//! `digest:briefing` in `mute_id` the way that release did) opens with
//! today's code, its applied migrations are untouched, and what it held is
//! still released, by the same typed holds new messages get.

use std::path::PathBuf;

use chrono::Utc;
use switchyard::store::Store;
use switchyard_routing::{Category, Hold};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state-before-typed-holds.db")
}

/// (version, description, checksum) of every applied migration.
async fn applied(store: &Store) -> Vec<(i64, String, Vec<u8>)> {
    sqlx::query_as("SELECT version, description, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(store.pool())
        .await
        .expect("read _sqlx_migrations")
}

#[tokio::test]
async fn a_database_of_the_previous_release_opens_and_releases_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    std::fs::copy(fixture(), &db).expect("copy the fixture");
    let url = format!("sqlite://{}", db.display());

    // What the old release recorded, read without migrating: a second copy
    // opened read-only through sqlx alone.
    let before: Vec<(i64, String, Vec<u8>)> = {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(opts.read_only(true))
            .await
            .expect("open the fixture");
        let rows = sqlx::query_as(
            "SELECT version, description, checksum FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    };
    assert_eq!(
        before.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5],
        "the fixture is the release before typed holds"
    );

    let store = Store::open(&url).await.expect("the old database opens");
    let after = applied(&store).await;
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "applied migrations are untouched (same versions, names and checksums)"
    );
    assert!(
        after.iter().any(|r| r.1 == "typed holds"),
        "the typed-holds migration ran: {:?}",
        after.iter().map(|r| &r.1).collect::<Vec<_>>()
    );

    let mute = Hold::Mute("mute_fixture".parse().unwrap());
    let digest = Hold::Digest(Category::Briefing);
    let mut holds = store.holds().await.unwrap();
    holds.sort();
    let mut expected = vec![mute.clone(), digest.clone()];
    expected.sort();
    assert_eq!(
        holds, expected,
        "both kinds of hold survive the upgrade, typed"
    );
    assert_eq!(store.held_for_mute("mute_fixture").await.unwrap().len(), 2);

    let now = Utc::now();
    let muted = store.release_held(&mute, now).await.unwrap();
    assert_eq!(muted.len(), 2, "the mute's two messages are released");
    assert!(muted.iter().all(|(d, _)| d.to_string() == "discord:system"));
    let digested = store.release_held(&digest, now).await.unwrap();
    assert_eq!(digested.len(), 1, "the digest window's message is released");
    assert_eq!(digested[0].1.event_id.as_str(), "evt_fixture_digest_1");
    assert!(
        store.holds().await.unwrap().is_empty(),
        "nothing is left held"
    );
    assert!(
        store.release_held(&mute, now).await.unwrap().is_empty(),
        "a second release finds nothing"
    );
}
