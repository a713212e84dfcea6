//! The layout pool-core's maintainers rely on: the pool's counts are written only by the state
//! (`src/inner/state.rs`), and the modules depend one way (no import cycle), both file by file
//! and between the crate's top-level modules.
//!
//! Reads the source, so a change that breaks either rule fails here with the file and line (or
//! the cycle) to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The file that owns the counts.
const STATE: &str = "inner/state.rs";

/// The state's counts and collections, and the counters beside them.
const COUNTS: &[&str] = &[
    "idle",
    "total",
    "in_use",
    "connecting",
    "closing",
    "consecutive_failures",
    "last_connect_error",
    "counters",
    "checkouts",
    "waiters",
    "acquired",
    "waited",
    "created",
    "connect_failures",
    "acquire_timeouts",
    "closed",
];

/// Methods that change a collection or a counter in place.
const MUTATORS: &[&str] = &[
    "push",
    "push_back",
    "push_front",
    "pop",
    "pop_back",
    "pop_front",
    "drain",
    "remove",
    "clear",
    "insert",
    "add",
    "take",
    "replace",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, by its path relative to `src/` with `/` separators.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under src");
                let rel = rel.to_string_lossy().replace('\\', "/");
                out.insert(
                    rel,
                    std::fs::read_to_string(&path).expect("source is readable"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &src(), &mut out);
    out
}

/// The code of a line, without its comment (good enough for this crate's sources: no `//`
/// inside string literals on lines that matter here).
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// Where `text` writes `.field`: an assignment (`=`, `+=`, `-=`, …, not `==`) or an in-place
/// mutator call.
fn writes(text: &str, field: &str) -> bool {
    let needle = format!(".{field}");
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        rest = after;
        if after.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let after = after.trim_start();
        let assigns = ["+=", "-=", "*=", "/=", "|=", "&="]
            .iter()
            .any(|op| after.starts_with(op))
            || (after.starts_with('=') && !after.starts_with("=="));
        let mutates = after.strip_prefix('.').is_some_and(|call| {
            MUTATORS
                .iter()
                .any(|m| call.starts_with(m) && call[m.len()..].starts_with('('))
        });
        if assigns || mutates {
            return true;
        }
    }
    false
}

fn count_writes_outside_state(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    for (file, text) in files {
        if file == STATE {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let line = code(line);
            for field in COUNTS {
                // `st.` / `state.` / `self.state.` and friends: any receiver of the state.
                if writes(line, field) && !line.contains("live.") {
                    found.push(format!(
                        "src/{file}:{}: writes `{field}`: {}",
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

/// The module a file defines: `inner/state.rs` → `inner::state`, `inner/mod.rs` → `inner`.
fn module_of(file: &str) -> String {
    let path = file.trim_end_matches(".rs").trim_end_matches("/mod");
    path.replace('/', "::")
}

/// The modules each file refers to by path (`crate::…`, `super::…`, `self::…`), resolved to
/// the longest module that exists; `mod` declarations are containment, not use.
fn dependencies(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files
        .keys()
        .filter(|f| f.as_str() != "lib.rs")
        .map(|f| module_of(f))
        .collect();
    let mut graph = BTreeMap::new();
    for (file, text) in files {
        if file == "lib.rs" {
            continue;
        }
        let this = module_of(file);
        let parent = this.rsplit_once("::").map(|(p, _)| p.to_owned());
        let mut deps = BTreeSet::new();
        // Unit tests may reach anywhere: the rule is about the product's code. Comments and
        // `mod` declarations (containment, not use) are left out.
        let product = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
        let code: String = product
            .lines()
            .map(code)
            .filter(|l| {
                let l = l.trim_start();
                !(l.starts_with("mod ") || l.starts_with("pub(crate) mod "))
            })
            .collect::<Vec<_>>()
            .join("\n");
        for (prefix, base) in [
            ("crate::", Some(String::new())),
            ("super::", parent.clone()),
            ("self::", Some(this.clone())),
        ] {
            let Some(base) = base else { continue };
            let resolve = |segments: &[&str]| -> Option<String> {
                (1..=segments.len()).rev().find_map(|n| {
                    let name = segments[..n].join("::");
                    let full = if base.is_empty() {
                        name
                    } else {
                        format!("{base}::{name}")
                    };
                    modules.contains(&full).then_some(full)
                })
            };
            for (at, _) in code.match_indices(prefix) {
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let tail = &code[at + prefix.len()..];
                let len = tail
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(tail.len());
                let segments: Vec<&str> =
                    tail[..len].split("::").filter(|s| !s.is_empty()).collect();
                // A `use x::{a, b::C}` group: each member names a path of its own.
                let members: Vec<&str> = tail[len..]
                    .strip_prefix('{')
                    .and_then(|g| g.split('}').next())
                    .map(|g| {
                        g.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                let mut targets: Vec<String> = members
                    .iter()
                    .filter_map(|member| {
                        let mut path = segments.clone();
                        path.extend(member.split("::"));
                        resolve(&path).or_else(|| resolve(&segments))
                    })
                    .collect();
                if members.is_empty() {
                    targets.extend(resolve(&segments));
                }
                if targets.is_empty() && prefix == "super::" && !base.is_empty() {
                    // `super::Inner`: an item of the parent module itself.
                    targets.push(base.clone());
                }
                deps.extend(targets.into_iter().filter(|t| *t != this));
            }
        }
        graph.insert(this, deps);
    }
    graph
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The same graph between top-level modules (`inner::state` counts as `inner`).
fn top_level(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_owned();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in graph {
        let entry = out.entry(top(from)).or_default();
        entry.extend(tos.iter().map(|t| top(t)).filter(|t| *t != top(from)));
    }
    out
}

#[test]
fn only_the_state_writes_the_pools_counts() {
    let files = sources();
    assert!(files.contains_key(STATE), "the state lives in src/{STATE}");
    let found = count_writes_outside_state(&files);
    assert!(
        found.is_empty(),
        "only src/{STATE} may change the pool's counts; add a named transition there \
         instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn modules_depend_one_way() {
    let graph = dependencies(&sources());
    assert!(
        graph.get("pool").is_some_and(|deps| deps.contains("inner")),
        "the scan sees `Pool` use the machinery (else it reads nothing): {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "pool-core's modules import each other in a circle: {}",
            cycle.join(" → ")
        );
    }
    if let Some(cycle) = find_cycle(&top_level(&graph)) {
        panic!(
            "pool-core's top-level modules import each other in a circle: {}",
            cycle.join(" → ")
        );
    }
}

#[test]
fn the_checks_catch_what_they_look_for() {
    assert!(writes("        st.connecting -= 1;", "connecting"));
    assert!(writes("self.state.total = 0;", "total"));
    assert!(writes("st.idle.push_back(live);", "idle"));
    assert!(writes("st.counters.closed.add(reason);", "closed"));
    assert!(!writes("if st.total == 0 {", "total"));
    assert!(!writes("let n = st.total_count;", "total"));

    let mut files = BTreeMap::new();
    files.insert("a.rs".to_owned(), "use crate::b::B;\n".to_owned());
    files.insert("b.rs".to_owned(), "use crate::{a::A, c};\n".to_owned());
    files.insert("c.rs".to_owned(), "// use crate::a;\n".to_owned());
    let graph = dependencies(&files);
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()])
    );
    files.insert("b.rs".to_owned(), "use crate::c;\n".to_owned());
    assert_eq!(find_cycle(&dependencies(&files)), None);
}
