//! The roles every test server has, with known passwords, so tests can log in and
//! wrong-password tests are real (authentication over TCP is scram-sha-256).

/// A superuser, for server-side checks and fault controls (and `TestDatabase` setup).
pub const SUPERUSER: &str = "servio_admin";
/// [`SUPERUSER`]'s password.
pub const SUPERUSER_PASSWORD: &str = "servio-admin-test-password";
/// The application role: owns each test database, and is what pools log in as.
pub const APP_USER: &str = "servio_app";
/// [`APP_USER`]'s password.
pub const APP_PASSWORD: &str = "servio-app-test-password";

/// Quotes a literal for SQL (single quotes doubled).
pub(crate) fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Quotes an identifier for SQL (double quotes doubled).
pub(crate) fn sql_identifier(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_the_quote_character() {
        assert_eq!(sql_literal("it's"), "'it''s'");
        assert_eq!(sql_identifier("a\"b"), "\"a\"\"b\"");
    }
}
