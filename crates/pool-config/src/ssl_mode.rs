//! TLS negotiation mode, as libpq names it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How the connection negotiates TLS (libpq's `sslmode`).
///
/// Written in TOML and `DATABASE_URL` as `disable`, `prefer`, `require`, `verify-ca` or
/// `verify-full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it, else plain text. The libpq default.
    #[default]
    Prefer,
    /// Require TLS, without checking the server certificate.
    Require,
    /// Require TLS and a certificate signed by a trusted authority.
    VerifyCa,
    /// Require TLS, a trusted certificate, and a host name that matches it.
    VerifyFull,
}

impl SslMode {
    /// Every mode, in increasing strictness.
    pub const ALL: [SslMode; 5] = [
        SslMode::Disable,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The mode's name as written in TOML and `DATABASE_URL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;

    /// Parses a mode name; the error says what is accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SslMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| "one of disable, prefer, require, verify-ca, verify-full".to_owned())
    }
}
