//! The store on SQLite and on PostgreSQL: both backends' migrations build the
//! same tables, columns and indexes; agents sharing one PostgreSQL database
//! each get a schema of their own and cannot see each other's rows; the outbox
//! numbers rows without a twin when many writers record at once. The store's
//! behaviour tests run on both backends where they live (`delivery`,
//! `workers::store`, `github`, and `approvals` here).

mod approvals;

use std::collections::BTreeSet;

use chrono::Utc;
use switchyard::store::{Backend, Recorded, Store};
use switchyard_routing::Event;

use crate::common::{TestDb, fresh_database};
use crate::delivery::to;

/// An alert event with `id` as its id and title.
fn event(id: &str) -> Event {
    crate::delivery::event(id, "alert", id)
}

/// (table, column) of every table the migrations made, and the indexes' names.
async fn shape(store: &Store) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let (columns, indexes): (Vec<(String, String)>, Vec<(String,)>) = match store.backend() {
        Backend::Sqlite => (
            sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap(),
            sqlx::query_as(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap(),
        ),
        Backend::Postgres => (
            sqlx::query_as(
                "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap(),
            sqlx::query_as(
                "SELECT CAST(indexname AS TEXT) FROM pg_indexes \
                 WHERE schemaname = current_schema() AND indexname NOT LIKE '%_pkey'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap(),
        ),
    };
    (
        columns.into_iter().collect(),
        indexes.into_iter().map(|(n,)| n).collect(),
    )
}

/// (version, description) of every applied migration.
async fn migrations(store: &Store) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn both_backends_build_the_same_tables_columns_and_indexes() {
    let Some(pg) = TestDb::postgres().await else {
        return;
    };
    let lite = TestDb::sqlite();
    let (pg, lite) = (pg.open().await, lite.open().await);
    assert_eq!(pg.backend(), Backend::Postgres);
    assert_eq!(lite.backend(), Backend::Sqlite);
    let (pg_columns, pg_indexes) = shape(&pg).await;
    let (lite_columns, lite_indexes) = shape(&lite).await;
    assert!(
        lite_columns.len() > 50,
        "the query saw the tables: {lite_columns:?}"
    );
    assert_eq!(
        pg_columns
            .symmetric_difference(&lite_columns)
            .collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "columns only one backend has"
    );
    assert_eq!(
        pg_indexes
            .symmetric_difference(&lite_indexes)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "indexes only one backend has"
    );
    assert_eq!(migrations(&pg).await, migrations(&lite).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_sharing_one_database_each_have_their_own_schema() {
    let Some(url) = fresh_database().await else {
        return;
    };
    // Six agents start at once on a database none of them has seen.
    let opens: Vec<_> = ["a", "b", "c", "d", "e", "tech-lead"]
        .into_iter()
        .map(|agent| {
            let url = url.clone();
            tokio::spawn(async move { (agent, Store::open_agent(&url, agent).await) })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        let (agent, store) = o.await.unwrap();
        stores.push((agent, store.unwrap_or_else(|e| panic!("{agent}: {e:#}"))));
    }
    let (_, a) = &stores[0];
    let (_, lead) = &stores[5];
    a.record_event(&event("evt_only_a"), &[to("discord:alerts")], Utc::now())
        .await
        .unwrap();
    assert_eq!(a.deliveries_for_event("evt_only_a").await.unwrap().len(), 1);
    assert!(
        lead.deliveries_for_event("evt_only_a")
            .await
            .unwrap()
            .is_empty(),
        "another agent's schema does not show a's rows"
    );
    // The same event id in another agent's store is not a duplicate there.
    assert!(matches!(
        lead.record_event(&event("evt_only_a"), &[to("discord:alerts")], Utc::now())
            .await
            .unwrap(),
        Recorded::Inserted { .. }
    ));
    // Reopening finds the agent's own rows (the schema, not a fresh one).
    let again = Store::open_agent(&url, "a").await.unwrap();
    assert_eq!(
        again
            .deliveries_for_event("evt_only_a")
            .await
            .unwrap()
            .len(),
        1
    );
    let schemas: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(schema_name AS TEXT) FROM information_schema.schemata \
         WHERE schema_name LIKE 'agent_%' ORDER BY schema_name",
    )
    .fetch_all(a.pool())
    .await
    .unwrap();
    assert_eq!(
        schemas.into_iter().map(|(s,)| s).collect::<Vec<_>>(),
        [
            "agent_a",
            "agent_b",
            "agent_c",
            "agent_d",
            "agent_e",
            "agent_tech-lead"
        ]
    );
}

crate::on_both_backends!(concurrent_writers_number_the_outbox_without_twins);

async fn concurrent_writers_number_the_outbox_without_twins(db: TestDb) {
    let store = db.open().await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    store
                        .record_event(
                            &event(&format!("evt_{w}_{i}")),
                            &[to("discord:alerts")],
                            Utc::now(),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let seqs: Vec<(i64,)> = sqlx::query_as("SELECT seq FROM deliveries ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let seqs: Vec<i64> = seqs.into_iter().map(|(s,)| s).collect();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<i64>>(),
        "one number per row, no gap, no twin"
    );
}
