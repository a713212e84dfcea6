//! Loading configuration: precedence, environment variables, profiles, errors, lints and
//! redaction, all without a database.

mod bad_input;
mod environment;
mod lints;
mod precedence;
mod profiles;
mod redaction;
mod support;
