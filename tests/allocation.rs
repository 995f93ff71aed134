//! A compiled objective called in a loop allocates nothing per call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn value_and_grad_allocates_nothing_per_call() {
    let source = include_str!("../examples/cone.ppl");
    let program = ppl::compile(source).expect("the example checks");
    let mut objective = program.objective("iwelbo(cone(), guide(mu_iw, log_sigma_iw), obs, 5)").expect("compiles");
    let params = program.initial_params();
    let mut gradient = vec![0.0; params.len()];
    // Warm up: the reverse program's tape reaches its size on the first calls.
    for stream in 0..10 {
        objective.value_and_grad(&params, 1, stream, &mut gradient).expect("finite");
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for stream in 10..1010 {
        objective.value_and_grad(&params, 1, stream, &mut gradient).expect("finite");
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "1000 calls allocated {} times", after - before);
}
