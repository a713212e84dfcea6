//! A tracing subscriber for the whole test process, at TRACE: every span and event is
//! formatted and searched for the test secrets as it arrives. Lines are not kept (a soak
//! test would otherwise measure the log's growth), only the distinct messages, so tests can
//! check that what they expect was logged.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use super::SECRETS;

/// At most this many distinct messages are remembered.
const MAX_MESSAGES: usize = 20_000;

/// The pool's own most recent log lines kept, with when they were logged, for a failing
/// test to show what the pool did just before.
const RECENT_LINES: usize = 4_000;

#[derive(Default)]
struct Capture {
    next_span: AtomicU64,
    lines: AtomicU64,
    leaks: Mutex<Vec<String>>,
    messages: Mutex<HashSet<String>>,
    recent: Mutex<VecDeque<(Instant, String)>>,
}

static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();

/// Installs the capturing subscriber as the process's global default (once).
pub fn capture_logs() {
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::default());
        tracing::subscriber::set_global_default(Ref(capture))
            .expect("no other global subscriber in the test binary");
        capture
    });
}

/// Whether some captured message contains `needle`.
pub fn logged(needle: &str) -> bool {
    CAPTURE.get().is_some_and(|c| {
        c.messages
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains(needle))
    })
}

/// The pool's log lines (target `pool_core`) logged since `since` that contain `needle`
/// (e.g. `pool=direct`), oldest first, each with its time since `since`; at most the last
/// few thousand of the process are kept.
pub fn recent_pool_lines(since: Instant, needle: &str) -> Vec<String> {
    CAPTURE.get().map_or_else(Vec::new, |c| {
        c.recent
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, line)| *at >= since && line.contains(needle))
            .map(|(at, line)| format!("+{:.3}s {line}", (*at - since).as_secs_f64()))
            .collect()
    })
}

/// Fails if any captured log line so far, or any of `texts` (errors, stats, reports,
/// `Debug` output), contains a test secret. Also checks that logs were captured at all.
#[track_caller]
pub fn assert_no_secrets(texts: &[&str]) {
    for text in texts {
        for secret in SECRETS {
            assert!(!text.contains(secret), "a password leaked into: {text}");
        }
    }
    let capture = CAPTURE.get().expect("capture_logs() was called");
    let leaks = capture.leaks.lock().unwrap();
    assert!(
        leaks.is_empty(),
        "a password leaked into the log: {leaks:#?}"
    );
    assert!(
        capture.lines.load(Ordering::Relaxed) > 0,
        "nothing was logged"
    );
}

struct Ref(&'static Capture);

impl Capture {
    fn line(&self, line: String, message: Option<String>) {
        // Ordering: a statistic only.
        self.lines.fetch_add(1, Ordering::Relaxed);
        if SECRETS.iter().any(|s| line.contains(s)) {
            self.leaks.lock().unwrap().push(line);
        }
        if let Some(message) = message {
            let mut messages = self.messages.lock().unwrap();
            if messages.len() < MAX_MESSAGES {
                messages.insert(message);
            }
        }
    }
}

#[derive(Default)]
struct Fields {
    text: String,
    message: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.text, " {}={value:?}", field.name());
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.text, " {}={value}", field.name());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.text, " {}={}", field.name(), super::error_text(value));
    }
}

impl Subscriber for Ref {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let meta = span.metadata();
        self.0.line(
            format!("span {} {}{}", meta.target(), meta.name(), fields.text),
            None,
        );
        // Ordering: ids need only be unique.
        Id::from_u64(self.0.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        self.0.line(format!("span record{}", fields.text), None);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let line = format!("{} {}{}", meta.level(), meta.target(), fields.text);
        let message = fields.message.map(|m| format!("{} {m}", meta.target()));
        if meta.target().starts_with("pool_core") {
            let mut recent = self.0.recent.lock().unwrap();
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            recent.push_back((Instant::now(), line.clone()));
        }
        self.0.line(line, message);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
