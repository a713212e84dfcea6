//! # Implementation details
//!
//! Deferred histogram recording. A pool's observer runs on the pool's hot path; the
//! OpenTelemetry SDK's bound histogram takes a mutex and searches the buckets on every
//! record. Instead, each thread appends its samples to a ring of its own (a few plain stores,
//! no read-modify-write, no lock) and a drain moves them into the histograms:
//!
//! - at every collection (the instruments' callbacks drain first, and the SDK runs every
//!   callback before it reads any histogram), so an export never misses a recorded sample;
//! - on a background thread, woken when a ring is a quarter full, so rings rarely fill;
//! - when an observer is dropped, before its histograms are released.
//!
//! A ring that is full anyway (the drain fell behind) makes the caller record directly, as
//! without deferral: no sample is ever dropped. Each ring has one writer, its thread, and one
//! reader at a time, whoever holds the drain lock; a thread's ring outlives the thread until it
//! has been drained.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::thread::{self, Thread};
use std::time::Duration;

use opentelemetry::metrics::BoundHistogram;

/// Samples a thread's ring holds (32 KiB).
const CAPACITY: usize = 4096;
/// The fill at which the writer wakes the drain thread.
const WAKE_AT: usize = CAPACITY / 4;
/// Bits of a sample that hold the duration, in nanoseconds (up to 4.8 hours); the bits above
/// name the histogram. A longer duration is recorded directly.
const NANOS_BITS: u32 = 44;
const NANOS_MAX: u64 = (1 << NANOS_BITS) - 1;
/// Histograms that can be registered at once (the bits left above the duration).
const MAX_TARGETS: usize = 1 << (64 - NANOS_BITS);

/// Keeps a value on its own cache lines, so the writer's and the reader's indexes do not
/// share one.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// One thread's samples: written by that thread only, read under the drain lock only.
#[derive(Debug)]
struct Ring {
    slots: Box<[AtomicU64]>,
    /// Next sample to read; written by the reader.
    head: Padded<AtomicUsize>,
    /// Next slot to write; written by the writer.
    tail: Padded<AtomicUsize>,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            slots: (0..CAPACITY).map(|_| AtomicU64::new(0)).collect(),
            head: Padded::default(),
            tail: Padded::default(),
        }
    }

    /// Appends `sample`; false when the ring is full. Called by the owning thread only.
    fn push(&self, sample: u64) -> bool {
        // Ordering: only this thread writes `tail`. Acquire on `head` pairs with the reader's
        // release: its reads of the slots it freed happened before we overwrite them.
        let tail = self.tail.0.load(Ordering::Relaxed);
        let used = tail.wrapping_sub(self.head.0.load(Ordering::Acquire));
        if used >= CAPACITY {
            registry().wake_drain();
            return false;
        }
        self.slots[tail % CAPACITY].store(sample, Ordering::Relaxed);
        // Ordering: release publishes the slot to the reader's acquire of `tail`.
        self.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        if used == WAKE_AT {
            registry().wake_drain();
        }
        true
    }

    /// Hands every sample written so far to `record` and frees their slots. Callers hold the
    /// drain lock (one reader at a time).
    fn drain(&self, mut record: impl FnMut(u64)) {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        let mut at = head;
        while at != tail {
            record(self.slots[at % CAPACITY].load(Ordering::Relaxed));
            at = at.wrapping_add(1);
        }
        self.head.0.store(tail, Ordering::Release);
    }

    fn is_empty(&self) -> bool {
        self.head.0.load(Ordering::Acquire) == self.tail.0.load(Ordering::Acquire)
    }
}

/// Every ring and every histogram samples can name.
#[derive(Debug, Default)]
struct Registry {
    rings: Mutex<Vec<Arc<Ring>>>,
    /// Histograms by index; `None` where an observer released its own.
    targets: RwLock<Vec<Option<BoundHistogram<f64>>>>,
    /// One reader of the rings at a time.
    drain_lock: Mutex<()>,
    /// The background drain thread, once started (`None` if it could not be spawned).
    drainer: OnceLock<Option<Thread>>,
    /// Set by a writer that woke the drainer, cleared by the drainer: one wake per drain.
    wake_pending: AtomicBool,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// A poisoned lock still guards consistent data here: every critical section is a push,
/// a swap or a read that cannot stop halfway through an invariant.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    static RING: OnceCell<Arc<Ring>> = const { OnceCell::new() };
}

impl Registry {
    fn new_ring(&self) -> Arc<Ring> {
        let ring = Arc::new(Ring::new());
        lock(&self.rings).push(Arc::clone(&ring));
        self.drainer.get_or_init(|| {
            thread::Builder::new()
                .name("servio-metrics-drain".into())
                .spawn(|| {
                    loop {
                        thread::park();
                        registry().wake_pending.store(false, Ordering::Relaxed);
                        drain();
                    }
                })
                .map(|handle| handle.thread().clone())
                .ok()
        });
        ring
    }

    fn wake_drain(&self) {
        // Ordering: a hint only; a lost wake is made up by the next quarter or a collection.
        if !self.wake_pending.swap(true, Ordering::Relaxed)
            && let Some(Some(drainer)) = self.drainer.get()
        {
            drainer.unpark();
        }
    }
}

/// Moves every pending sample into its histogram.
pub(crate) fn drain() {
    let registry = registry();
    let _one_reader = lock(&registry.drain_lock);
    let rings: Vec<Arc<Ring>> = lock(&registry.rings).clone();
    {
        let targets = registry
            .targets
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for ring in &rings {
            ring.drain(|sample| {
                let index = (sample >> NANOS_BITS) as usize;
                if let Some(Some(histogram)) = targets.get(index) {
                    histogram.record(Duration::from_nanos(sample & NANOS_MAX).as_secs_f64());
                }
            });
        }
    }
    drop(rings);
    // Rings of threads that have exited, now drained, are forgotten.
    lock(&registry.rings).retain(|ring| Arc::strong_count(ring) > 1 || !ring.is_empty());
}

/// A histogram whose records are deferred: see the module documentation.
#[derive(Debug)]
pub(crate) struct DeferredHistogram {
    index: usize,
    /// The index in a sample's top bits; `None` past the limit of histograms registered at
    /// once (this one then records directly).
    tag: Option<u64>,
    direct: BoundHistogram<f64>,
}

impl DeferredHistogram {
    /// Registers `histogram` as a target of deferred samples. Past the limit of histograms
    /// registered at once, this one records directly.
    pub(crate) fn new(histogram: BoundHistogram<f64>) -> DeferredHistogram {
        let mut targets = registry()
            .targets
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let index = match targets.iter().position(Option::is_none) {
            Some(free) => {
                targets[free] = Some(histogram.clone());
                free
            }
            None => {
                targets.push(Some(histogram.clone()));
                targets.len() - 1
            }
        };
        DeferredHistogram {
            index,
            tag: (index < MAX_TARGETS).then_some((index as u64) << NANOS_BITS),
            direct: histogram,
        }
    }

    /// Records `d`: into this thread's ring, or directly when that is not possible.
    pub(crate) fn record(&self, d: Duration) {
        let deferred = self.tag.is_some_and(|tag| {
            let nanos = d
                .as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos()));
            nanos <= NANOS_MAX
                && RING
                    .try_with(|ring| ring.get_or_init(|| registry().new_ring()).push(tag | nanos))
                    .unwrap_or(false)
        });
        if !deferred {
            self.direct.record(d.as_secs_f64());
        }
    }
}

impl Drop for DeferredHistogram {
    fn drop(&mut self) {
        // Whatever is pending for it lands before its slot can name another histogram.
        drain();
        let mut targets = registry()
            .targets
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = targets.get_mut(self.index) {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_order_refuses_when_full_and_frees_what_was_drained() {
        let ring = Ring::new();
        for i in 0..CAPACITY as u64 {
            assert!(ring.push(i));
        }
        assert!(!ring.push(u64::MAX), "full: the caller records directly");
        let mut seen = Vec::new();
        ring.drain(|s| seen.push(s));
        assert_eq!(seen, (0..CAPACITY as u64).collect::<Vec<_>>());
        assert!(ring.is_empty());
        // Wrapped around: the freed slots take new samples, still in order.
        for i in 0..10 {
            assert!(ring.push(1000 + i));
        }
        seen.clear();
        ring.drain(|s| seen.push(s));
        assert_eq!(seen, (1000..1010).collect::<Vec<_>>());
    }
}
