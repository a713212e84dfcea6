//! Text and JSON renderings of loaded profiles. Secrets are `***` in every form: the
//! values come from [`PoolSettings::display_value`] and `Serialize`, which mask them.
//!
//! [`PoolSettings::display_value`]: pool_config::PoolSettings::display_value

use std::fmt::Write;

use pool_config::{PoolSettings, Settings, Source};
use serde_json::{Value, json};

use super::ProfileReport;

/// What a value looks like where it is shown: `(not set)` for a required setting nobody gave.
pub(super) fn shown_value(settings: &Settings, pool: &str, key: &str) -> String {
    if settings.source_of(pool, key) == Some(&Source::Unset) {
        return "(not set)".to_owned();
    }
    let Some(settings) = settings.pool(pool) else {
        return String::new();
    };
    let value = settings.display_value(key).unwrap_or_default();
    match settings.not_in_effect(key) {
        Some(reason) => format!("{value} ({reason})"),
        None => value,
    }
}

/// Each setting of `pool` as (key, value as shown, source as shown), in documentation order,
/// then each free server parameter (`session.<name>`).
pub(super) fn rows(settings: &Settings, pool: &str) -> Vec<(String, String, String)> {
    let keys = settings
        .pool(pool)
        .map(PoolSettings::shown_keys)
        .unwrap_or_default();
    keys.into_iter()
        .map(|key| {
            let source = settings
                .source_of(pool, &key)
                .map(ToString::to_string)
                .unwrap_or_default();
            let value = shown_value(settings, pool, &key);
            (key, value, source)
        })
        .collect()
}

/// The name a report goes by: its profile, or `profile` when it could not be chosen.
pub(super) fn title(report: &ProfileReport) -> String {
    report
        .profile
        .map_or_else(|| "profile".to_owned(), |p| p.to_string())
}

/// The widest value the text layout aligns; wider ones run past the column.
const MAX_VALUE_WIDTH: usize = 40;

/// Every pool's settings with their sources, then errors and findings.
pub(super) fn text(reports: &[ProfileReport]) -> String {
    let mut out = String::new();
    for report in reports {
        if let Some(settings) = &report.settings {
            let _ = writeln!(out, "profile {}", settings.profile());
            let files: Vec<_> = settings
                .files()
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            let files = if files.is_empty() {
                "none".to_owned()
            } else {
                files.join(", ")
            };
            let _ = writeln!(out, "files: {files}");
            for name in settings.pool_names() {
                let _ = writeln!(out, "\npool {name}");
                // A value with a note (not in effect, and why) runs past the column.
                let rows = rows(settings, name);
                let key_width = rows.iter().map(|(key, ..)| key.len()).max().unwrap_or(0);
                let width = rows
                    .iter()
                    .map(|(_, value, _)| value.chars().count())
                    .filter(|width| *width <= MAX_VALUE_WIDTH)
                    .max()
                    .unwrap_or(0);
                for (key, value, source) in rows {
                    let _ = writeln!(out, "  {key:<key_width$}  {value:<width$}  {source}");
                }
            }
        }
        list(&mut out, report);
        out.push('\n');
    }
    out
}

fn list(out: &mut String, report: &ProfileReport) {
    if !report.errors.is_empty() {
        let _ = writeln!(out, "\nerrors ({}):", report.errors.len());
        for error in report.errors.errors() {
            let _ = writeln!(out, "  - {error}");
        }
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out, "\nfindings ({}):", report.findings.len());
        for finding in &report.findings {
            let _ = writeln!(out, "  - {finding}");
        }
    }
}

/// The verdict of `--check` per profile, with what made it.
pub(super) fn check_text(reports: &[ProfileReport], deny_warnings: bool) -> String {
    let mut out = String::new();
    for report in reports {
        let name = title(report);
        let warnings = report.warnings();
        if !report.errors.is_empty() {
            let count = report.errors.len();
            let _ = writeln!(out, "{name}: invalid, {count} error{}", plural(count));
        } else if deny_warnings && warnings > 0 {
            let _ = writeln!(
                out,
                "{name}: {warnings} warning{} (denied by --deny-warnings)",
                plural(warnings)
            );
        } else {
            let pools: Vec<_> = report
                .settings
                .iter()
                .flat_map(Settings::pool_names)
                .collect();
            let _ = writeln!(
                out,
                "{name}: valid (pools: {}; {warnings} warning{})",
                pools.join(", "),
                plural(warnings)
            );
        }
        for error in report.errors.errors() {
            let _ = writeln!(out, "  - error: {error}");
        }
        for finding in &report.findings {
            let _ = writeln!(out, "  - {finding}");
        }
    }
    out
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// One JSON document: an object for one profile, `{"profiles": [...]}` for several.
pub(super) fn json(reports: &[ProfileReport], check: bool) -> String {
    let mut profiles: Vec<Value> = reports.iter().map(|r| profile_json(r, check)).collect();
    let document = if profiles.len() == 1 {
        profiles.remove(0)
    } else {
        json!({ "profiles": profiles })
    };
    let mut out = serde_json::to_string_pretty(&document).unwrap_or_default();
    out.push('\n');
    out
}

fn profile_json(report: &ProfileReport, check: bool) -> Value {
    let errors: Vec<String> = report
        .errors
        .errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut object = json!({
        "profile": report.profile,
        "valid": report.errors.is_empty(),
        "errors": errors,
        "findings": report.findings,
    });
    if let (Some(settings), false) = (&report.settings, check) {
        object["files"] = json!(settings.files());
        object["pools"] = settings
            .pools()
            .map(|(name, pool)| {
                let typed = serde_json::to_value(pool).unwrap_or_default();
                let values: Vec<Value> = pool
                    .shown_keys()
                    .iter()
                    .map(|key| {
                        let key = key.as_str();
                        let source = settings.source_of(name, key);
                        let typed = match key.strip_prefix("session.") {
                            Some(parameter) => typed["session"][parameter].clone(),
                            None => typed[key].clone(),
                        };
                        json!({
                            "key": key,
                            "value": if source == Some(&Source::Unset) { Value::Null } else { typed },
                            "source": source.map(ToString::to_string),
                            "origin": source,
                            "in_effect": pool.not_in_effect(key).is_none(),
                            "not_in_effect": pool.not_in_effect(key),
                        })
                    })
                    .collect();
                json!({ "name": name, "settings": values })
            })
            .collect();
    }
    object
}
