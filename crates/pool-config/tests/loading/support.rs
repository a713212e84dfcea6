//! A throwaway configuration directory and an explicit environment per test, so tests never
//! touch process-global state.

use std::path::PathBuf;

use pool_config::{ConfigErrors, Finding, LintContext, Loader, Profile, Settings};
use tempfile::TempDir;

/// A configuration directory with the files a test writes.
pub(crate) struct Fixture {
    dir: TempDir,
}

impl Fixture {
    /// An empty configuration directory: only built-in defaults and the environment apply.
    pub(crate) fn empty() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    /// A directory holding `files` (name, contents).
    pub(crate) fn with(files: &[(&str, &str)]) -> Self {
        let fixture = Fixture::empty();
        for (name, contents) in files {
            fixture.write(name, contents);
        }
        fixture
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub(crate) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write a fixture file");
        path
    }

    /// The directory.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// A loader over this directory and exactly `env`.
    pub(crate) fn loader(&self, env: &[(&str, &str)]) -> Loader {
        Loader::new()
            .config_dir(self.path())
            .env(env.iter().copied())
    }

    /// Loads, failing the test with every error when loading fails.
    pub(crate) fn load(&self, env: &[(&str, &str)]) -> Settings {
        self.loader(env)
            .load()
            .unwrap_or_else(|errors| panic!("expected the configuration to load: {errors}"))
    }

    /// Loads, expecting errors, and returns their messages.
    pub(crate) fn errors(&self, env: &[(&str, &str)]) -> Vec<String> {
        errors_of(self.loader(env).load())
    }

    /// The lint findings of the profile loaded with `env`.
    pub(crate) fn findings(&self, env: &[(&str, &str)]) -> Vec<Finding> {
        self.load(env).lint(&LintContext::default())
    }
}

/// The messages of a load that must fail.
pub(crate) fn errors_of(result: Result<Settings, ConfigErrors>) -> Vec<String> {
    match result {
        Ok(settings) => panic!("expected errors, loaded {settings:?}"),
        Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
    }
}

/// The `config/` directory that ships with the repository.
pub(crate) fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// The connection variables staging and production require.
pub(crate) const CONNECTION: [(&str, &str); 4] = [
    ("DB_HOST", "db.internal"),
    ("DB_NAME", "orders"),
    ("DB_USERNAME", "app"),
    ("DB_PASSWORD", "pw"),
];

/// Loads the shipped configuration for `profile` with the connection variables set.
pub(crate) fn shipped_settings(profile: Profile) -> Settings {
    Loader::new()
        .config_dir(shipped())
        .profile(profile)
        .env(CONNECTION)
        .load()
        .unwrap_or_else(|errors| panic!("the shipped {profile} configuration must load: {errors}"))
}

/// Asserts that exactly one message contains every one of `parts`.
#[track_caller]
pub(crate) fn assert_one_error(errors: &[String], parts: &[&str]) {
    let matching: Vec<_> = errors
        .iter()
        .filter(|e| parts.iter().all(|p| e.contains(p)))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one error containing {parts:?} in {errors:#?}"
    );
}

/// A file of the crate (`README.md`) or, through `../../`, of the repository, as shipped.
pub(crate) fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
