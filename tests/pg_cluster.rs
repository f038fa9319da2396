//! The test PostgreSQL cluster itself: it starts, a client connects to a fresh database,
//! and each test gets a database of its own.
#[path = "support/pg.rs"]
mod pg;

#[tokio::test]
async fn a_fresh_database_answers_select_version() {
    let Some(db) = pg::database() else { return };
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    let conn = tokio::spawn(conn);
    let row = client.query_one("SELECT version()", &[]).await.unwrap();
    let version: String = row.get(0);
    assert!(version.starts_with("PostgreSQL "), "{version}");
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db.name);
    drop(client);
    conn.await.unwrap().unwrap();
}

#[tokio::test]
async fn every_database_is_new_and_empty() {
    let (Some(a), Some(b)) = (pg::database(), pg::database()) else {
        return;
    };
    assert_ne!(a.name, b.name);
    let (client, conn) = tokio_postgres::connect(&b.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let n: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    drop(client);
    conn.await.unwrap().unwrap();
}
