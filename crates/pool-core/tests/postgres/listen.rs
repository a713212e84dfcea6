//! LISTEN / NOTIFY with a listener built from the pool's settings. (After a server restart:
//! `tests/faults/listen.rs`.)

use std::time::Duration;

use pool_testkit::TestDatabase;

use crate::{app_name, backends, build, settings_for};

#[tokio::test]
async fn the_listener_hears_notifications_without_taking_a_slot_from_the_pool() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 2;
    let pool = build("listen", &settings);
    let mut admin = db.admin_connection().await.unwrap();

    let mut listener = pool.listener().await.unwrap();
    listener.listen("jobs").await.unwrap();
    // The pool at its maximum: every slot checked out.
    let mut first = pool.acquire().await.unwrap();
    let _second = pool.acquire().await.unwrap();
    assert_eq!(pool.stats().total, 2);
    assert_eq!(
        backends(&mut admin, &app_name(&db)).await,
        3,
        "max_connections + the listener's own, under the pool's application_name"
    );

    sqlx::query("SELECT pg_notify('jobs', 'job 1')")
        .execute(&mut *first)
        .await
        .unwrap();
    let note = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("the notification arrives")
        .unwrap();
    assert_eq!((note.channel(), note.payload()), ("jobs", "job 1"));
    assert_eq!(pool.stats().total, 2, "the pool's count is its own");
}
