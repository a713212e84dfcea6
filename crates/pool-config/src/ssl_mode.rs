//! TLS negotiation mode, as libpq names it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How the connection negotiates TLS (libpq's `sslmode`).
///
/// Written in TOML and `DATABASE_URL` as `disable`, `prefer`, `require`, `verify-ca` or
/// `verify-full`. What each checks here:
///
/// | mode | encrypted | certificate chain checked | host name checked |
/// |---|---|---|---|
/// | `disable` | never | – | – |
/// | `prefer` | if the server offers TLS (an attacker can say it does not) | no | no |
/// | `require` | always | no (yes with `ssl_root_cert`: then as `verify-ca`) | no |
/// | `verify-ca` | always | yes | no |
/// | `verify-full` | always | yes | yes |
///
/// Trusted roots: the Mozilla root program's certificates compiled into the binary
/// (`webpki-roots`), plus those of `ssl_root_cert` when it is set. The operating system's
/// store is not read, so the same binary trusts the same roots everywhere. Because public
/// roots are trusted too, `verify-ca` accepts any certificate a public authority issued, to
/// anyone: only `verify-full` (or `verify-ca` against a private authority) identifies the
/// server. Below `verify-ca`, an on-path attacker can pose as the server and, if it asks
/// for a cleartext password, read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it, else plain text; the certificate is not checked.
    /// The libpq default.
    #[default]
    Prefer,
    /// Require TLS, without checking the server certificate, unless a root certificate is
    /// given: then the chain is checked as with `verify-ca` (libpq's rule).
    Require,
    /// Require TLS and a certificate chain to a trusted root; the host name is not checked.
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

    /// Whether the mode checks the server certificate's chain (`verify-ca`, `verify-full`).
    pub const fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

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
