//! Loading configuration: precedence, environment variables, profiles, errors, lints and
//! redaction, all without a database.

mod bad_input;
mod documentation;
mod environment;
mod every_key;
mod lints;
mod multi_host;
mod precedence;
mod profiles;
mod redaction;
mod session;
mod support;
