//! The pool's LISTEN connection across a server restart: it reconnects and listens on every
//! channel again, without the service re-subscribing.

use std::time::Duration;

use pool_testkit::RestartMode;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{TestResult, assert_no_secrets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_reconnects_after_a_restart_and_keeps_its_channels() -> TestResult {
    let mut f = Fixture::start("listen-restart").await?;
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    let pool = crate::support::pool("listen", &f.settings);

    let mut listener = pool.listener().await?;
    listener.listen("jobs").await?;
    listener.listen("audit").await?;
    // The service's LISTEN loop: a failed recv() (server away) is logged and retried.
    let (heard, mut hearing) = mpsc::unbounded_channel();
    let errors = tokio::spawn(async move {
        let mut errors = Vec::new();
        loop {
            match listener.recv().await {
                Ok(note) => {
                    let sent = (note.channel().to_owned(), note.payload().to_owned());
                    if heard.send(sent).is_err() {
                        return errors;
                    }
                }
                Err(error) => {
                    errors.push(error.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });

    let notify = |channel: &'static str, payload: String| {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&pool)
                .await
        }
    };
    notify("jobs", "before".into()).await?;
    let before = tokio::time::timeout(Duration::from_secs(10), hearing.recv()).await?;
    assert_eq!(before, Some(("jobs".into(), "before".into())));

    f.server.restart(RestartMode::Fast).await?;
    let back = Instant::now();

    // Notifications sent before the listener is back are lost, as with any LISTEN: keep
    // sending until one is heard on each channel, without a new listen().
    for channel in ["jobs", "audit"] {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut attempt = 0;
        let heard_one = loop {
            attempt += 1;
            let _ = notify(channel, format!("after {attempt}")).await;
            if let Ok(Some((on, payload))) =
                tokio::time::timeout(Duration::from_millis(300), hearing.recv()).await
                && on == channel
            {
                break Some(payload);
            }
            if Instant::now() >= deadline {
                break None;
            }
        };
        assert!(
            heard_one.is_some_and(|p| p.starts_with("after")),
            "`{channel}` is heard again after the restart, without a new listen()"
        );
    }
    eprintln!(
        "listener: both channels heard again {:?} after the server was back",
        back.elapsed()
    );

    drop(hearing);
    notify("jobs", "ends the loop".into()).await?;
    let errors = tokio::time::timeout(Duration::from_secs(10), errors).await??;
    eprintln!("listener: recv() errors while the server was away: {errors:?}");
    let stats = pool.stats();
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{stats:?} {close:?} {errors:?}")]);
    Ok(())
}
