//! Brownian queries allocate nothing once the path exists: memory is flat in the number of
//! queries.

use revode_sde::BrownianPath;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Counts only the test thread's allocations: the harness's own thread may still be
    /// book-keeping (it allocates) after it has started the test.
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNT_HERE.try_with(|c| c.get()).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn queries_allocate_nothing() {
    let path = BrownianPath::new(0.0, 1.0, 8, 3, 1).unwrap();
    let mut out = vec![0.0; path.len()];
    let mut rng = revode_core::random::SplitMix64::new(2);
    COUNT_HERE.with(|c| c.set(true));
    let before = ALLOCS.load(Ordering::Relaxed);
    for i in 0..20_000 {
        let (a, b) = if i % 2 == 0 {
            (rng.uniform(), rng.uniform())
        } else {
            (i as f64 / 20_000.0, (i + 1) as f64 / 20_000.0)
        };
        path.increment(a, b, &mut out).unwrap();
    }
    let allocated = ALLOCS.load(Ordering::Relaxed) - before;
    COUNT_HERE.with(|c| c.set(false));
    assert_eq!(allocated, 0);
    // The counter is live: one allocation on this thread is seen.
    COUNT_HERE.with(|c| c.set(true));
    let v = std::hint::black_box(vec![1u8; 64]);
    COUNT_HERE.with(|c| c.set(false));
    assert!(ALLOCS.load(Ordering::Relaxed) - before >= 1, "{}", v.len());
}
