//! # Implementation details
//!
//! The server parameters every connection of a pool starts with (`statement_timeout` and
//! the session parameters), applied the cheapest way the path to the server allows:
//!
//! - Direct: startup options (`-c name=value` in the startup packet's `options`, escaped by
//!   sqlx), no extra round trip. sqlx's own startup parameters come after `options` and the
//!   server applies them last, so `application_name` goes into sqlx's own parameter, and
//!   `TimeZone` (sqlx sends `UTC`) and `extra_float_digits` are set after connect in one
//!   round trip. `DateStyle` and `client_encoding` are refused: sqlx reads dates and text in
//!   the ones it asks for.
//! - PgBouncer session mode: PgBouncer refuses startup options, so everything is set after
//!   connect, in one `SELECT set_config(..), ..` round trip (`application_name` too:
//!   PgBouncer passes a client's startup value on with `SET`, which `DISCARD ALL` undoes). PgBouncer resets the server
//!   session (`server_reset_query`) when a client disconnects, so each new connection sets
//!   them again, as it does here.
//! - PgBouncer transaction mode: consecutive transactions run on different server
//!   sessions; session parameters cannot apply and are refused, `statement_timeout` is left
//!   to the role or database (`ALTER ROLE .. SET`).
//!
//! Whatever was set after connect is set again after the pool's own reset (`DISCARD ALL`
//! resets it to the startup values; startup options survive it).

use std::time::Duration;

use pool_config::PgBouncerMode;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, PgConnection};

/// The parameters sqlx sets in the startup packet itself, after `options`: set after
/// connect instead.
const SET_AFTER_CONNECT: &[&str] = &["timezone", "extra_float_digits"];

/// The parameters sqlx depends on.
const REFUSED: &[&str] = &["datestyle", "client_encoding"];

/// How a connector sets up each new session.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    pub(crate) statement_timeout: Option<Duration>,
    /// In the order given; names as given.
    pub(crate) parameters: Vec<(String, String)>,
    pub(crate) pgbouncer: Option<PgBouncerMode>,
}

impl Session {
    /// Why these parameters cannot apply, naming the parameter, its value and what is
    /// accepted; `None` when they can.
    pub(crate) fn refusal(&self) -> Option<String> {
        for (name, value) in &self.parameters {
            let well_formed = name.chars().next().is_some_and(|c| !c.is_ascii_digit())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !well_formed {
                return Some(format!(
                    "session parameter `{name}` is not a server parameter name (letters, \
                     digits, `_` and `.`, not starting with a digit)"
                ));
            }
            if REFUSED.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                return Some(format!(
                    "session parameter `{name}` = `{value}` is refused: the driver depends \
                     on its own DateStyle and client_encoding"
                ));
            }
            if value.contains('\0') {
                return Some(format!(
                    "session parameter `{name}`: a value cannot contain a NUL character"
                ));
            }
        }
        if self.pgbouncer == Some(PgBouncerMode::Transaction)
            && let Some((name, value)) = self.parameters.first()
        {
            return Some(format!(
                "session parameter `{name}` = `{value}` cannot apply behind PgBouncer in \
                 transaction mode: each transaction may run on another server session. Set \
                 it on the role or database (ALTER ROLE .. SET), or use session mode"
            ));
        }
        None
    }

    /// Every parameter as `(name, value)`, `statement_timeout` first.
    fn all(&self) -> impl Iterator<Item = (&str, String)> {
        let timeout = self
            .statement_timeout
            .map(|t| ("statement_timeout", millis(t)));
        timeout.into_iter().chain(
            self.parameters
                .iter()
                .map(|(name, value)| (name.as_str(), value.clone())),
        )
    }

    /// What is set after connect, as `(name, value)`.
    fn after_connect(&self) -> Vec<(&str, String)> {
        match self.pgbouncer {
            Some(PgBouncerMode::Transaction) => Vec::new(),
            Some(PgBouncerMode::Session) => self.all().collect(),
            None => self.all().filter(|(name, _)| overridden(name)).collect(),
        }
    }

    /// `options` with what goes into the startup packet; `None` when nothing does.
    pub(crate) fn startup(&self, options: &PgConnectOptions) -> Option<PgConnectOptions> {
        let application_name = self
            .parameters
            .iter()
            .rfind(|(name, _)| name.eq_ignore_ascii_case("application_name"));
        let startup: Vec<(&str, String)> = match self.pgbouncer {
            Some(_) => Vec::new(),
            // `application_name` is a startup parameter of sqlx's own.
            None => self
                .all()
                .filter(|(name, _)| {
                    !overridden(name) && !name.eq_ignore_ascii_case("application_name")
                })
                .collect(),
        };
        if startup.is_empty() && application_name.is_none() {
            return None;
        }
        let mut options = options.clone();
        if let Some((_, name)) = application_name {
            options = options.application_name(name);
        }
        if !startup.is_empty() {
            options = options.options(startup);
        }
        Some(options)
    }

    /// Sets what cannot go into the startup packet, in one round trip; none without any.
    pub(crate) async fn apply(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let set = self.after_connect();
        if set.is_empty() {
            return Ok(());
        }
        let calls: Vec<String> = (0..set.len())
            .map(|i| format!("set_config(${}, ${}, false)", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!("SELECT {}", calls.join(", "));
        // Unnamed: nothing is left prepared on the server (or in a PgBouncer's session).
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for (name, value) in set {
            query = query.bind(name).bind(value);
        }
        query.execute(conn).await.map(drop)
    }
}

/// Whether sqlx's startup packet sets `name` after `options` (so it is set after connect).
fn overridden(name: &str) -> bool {
    SET_AFTER_CONNECT
        .iter()
        .any(|known| known.eq_ignore_ascii_case(name))
}

fn millis(timeout: Duration) -> String {
    format!("{}ms", timeout.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pairs: &[(&str, &str)], pgbouncer: Option<PgBouncerMode>) -> Session {
        Session {
            statement_timeout: Some(Duration::from_secs(30)),
            parameters: pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            pgbouncer,
        }
    }

    #[test]
    fn direct_servers_get_startup_options_escaped_except_what_the_driver_overrides() {
        let s = session(
            &[
                ("search_path", r#""odd schema", public"#),
                ("work_mem", "8MB"),
                ("TimeZone", "Europe/Paris"),
                ("application_name", r"a\b"),
            ],
            None,
        );
        let options = s.startup(&PgConnectOptions::new_without_pgpass()).unwrap();
        assert_eq!(
            options.get_options(),
            Some(
                r#"-c statement_timeout=30000ms -c search_path="odd\ schema",\ public -c work_mem=8MB"#
            )
        );
        assert_eq!(options.get_application_name(), Some(r"a\b"));
        assert_eq!(s.after_connect(), [("TimeZone", "Europe/Paris".to_owned())]);
        assert_eq!(s.refusal(), None);
    }

    #[test]
    fn pgbouncer_session_mode_sets_everything_after_connect_and_transaction_mode_refuses() {
        let s = session(&[("lock_timeout", "5s")], Some(PgBouncerMode::Session));
        assert!(s.startup(&PgConnectOptions::new_without_pgpass()).is_none());
        let named = session(&[("application_name", "x")], Some(PgBouncerMode::Session));
        assert_eq!(
            named.after_connect()[1],
            ("application_name", "x".to_owned())
        );
        assert_eq!(
            s.after_connect(),
            [
                ("statement_timeout", "30000ms".to_owned()),
                ("lock_timeout", "5s".to_owned())
            ]
        );
        let s = session(&[("lock_timeout", "5s")], Some(PgBouncerMode::Transaction));
        assert!(s.after_connect().is_empty());
        let refusal = s.refusal().unwrap();
        assert!(refusal.contains("lock_timeout") && refusal.contains("transaction mode"));
        assert_eq!(
            session(&[], Some(PgBouncerMode::Transaction)).refusal(),
            None
        );
    }

    #[test]
    fn parameters_the_driver_depends_on_and_malformed_names_are_refused() {
        for (name, part) in [
            ("DateStyle", "DateStyle"),
            ("client_encoding", "client_encoding"),
            ("work mem", "not a server parameter name"),
            ("", "not a server parameter name"),
        ] {
            let refusal = session(&[(name, "x")], None).refusal().unwrap();
            assert!(refusal.contains(part), "{refusal}");
        }
        assert!(session(&[("myapp.tenant", "7")], None).refusal().is_none());
    }
}
