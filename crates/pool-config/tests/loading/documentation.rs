//! What the documentation says about behaviour, checked against the behaviour: the README,
//! the `PoolSettings` docs and the shipped `config/default.toml` are read as shipped.

use std::path::PathBuf;

use pool_config::Profile;

use crate::support::{Fixture, read};

/// The comment lines (`#`, `///`, `//`) right above the first line of `text` that starts
/// with `line_start` (after indentation), plus that line: how a setting is documented where
/// it is defined.
fn documented(text: &str, line_start: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(line_start))
        .unwrap_or_else(|| panic!("no line starts with {line_start:?}"));
    let mut first = at;
    while first > 0 && lines[first - 1].trim_start().starts_with(['#', '/']) {
        first -= 1;
    }
    lines[first..=at].join("\n")
}

/// The README table row of `key`.
fn readme_row(key: &str) -> String {
    let readme = read("README.md");
    let prefix = format!("| `{key}` |");
    readme
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("README has no row for {key}"))
        .to_owned()
}

#[test]
fn lifetime_jitter_is_documented_as_taken_off_the_lifetime() {
    // The pool retires a connection at max_lifetime minus a random share of the jitter.
    let docs = [
        ("README.md", readme_row("lifetime_jitter")),
        (
            "src/pool_settings.rs",
            documented(&read("src/pool_settings.rs"), "lifetime_jitter:"),
        ),
        (
            "config/default.toml",
            documented(&read("../../config/default.toml"), "lifetime_jitter ="),
        ),
    ];
    for (file, text) in docs {
        let lower = text.to_lowercase();
        assert!(lower.contains("taken off"), "{file}: {text}");
        assert!(
            !lower.contains("added") && !lower.contains("extra age"),
            "{file}: {text}"
        );
    }
}

#[test]
fn development_sizes_without_a_profile_are_a_deliberate_difference() {
    let settings = Fixture::empty().load(&[]);
    assert_eq!(settings.profile(), Profile::Development);
    let pool = settings.pool("default").unwrap();
    assert_eq!((pool.max_connections, pool.min_connections), (10, 2));

    let readme = read("../../README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Deliberate differences"))
        .expect("the root README has a \"Deliberate differences\" section");
    let entry = section
        .split("\n- ")
        .find(|entry| entry.contains("no profile"))
        .unwrap_or_else(|| panic!("no entry about running with no profile in:\n{section}"));
    assert!(
        entry.contains("10 / 2") && entry.contains("20 / 5"),
        "the entry names both sizes: {entry}"
    );
}

/// Where the generated settings table starts and ends in the README.
const TABLE_START: &str = "<!-- settings table: generated from PoolSettings::SETTINGS -->\n";
const TABLE_END: &str = "<!-- end of settings table -->";

#[test]
fn the_readme_settings_table_is_generated_from_the_definitions() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = read("README.md");
    let start = readme
        .find(TABLE_START)
        .expect("the README marks its settings table")
        + TABLE_START.len();
    let end = readme[start..]
        .find(TABLE_END)
        .expect("the table's end marker")
        + start;
    let expected = pool_config::PoolSettings::reference_table();
    if readme[start..end] == expected {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).expect("write the README");
        return;
    }
    panic!(
        "the settings table in {} is out of date; regenerate it with\n  \
         UPDATE_README=1 cargo nextest run -p pool-config --test loading \
         the_readme_settings_table_is_generated\nor paste:\n{expected}",
        path.display()
    );
}
