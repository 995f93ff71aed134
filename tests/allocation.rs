//! The execution path allocates nothing per sample, per particle or per training step: a
//! command whose work is nine times larger allocates as often (give or take a few allocations
//! of compilation, whose hash maps are seeded at random: far fewer than one per chunk of 64
//! samples), and a compiled objective called in a loop allocates nothing per call.
//!
//! The tests share one counting allocator, so they take turns.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The system allocator, counting allocations: on all threads, and on each thread (the test
/// harness allocates on its own threads while a test runs, reporting the tests before it).
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THIS_THREAD: Cell<usize> = const { Cell::new(0) };
}

fn on_this_thread() -> usize {
    THIS_THREAD.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        let _ = THIS_THREAD.try_with(|count| count.set(count.get() + 1));
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

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const CONE: &str = include_str!("../examples/cone.ppl");

/// The cone's definitions, without the example's commands.
fn definitions() -> &'static str {
    &CONE[..CONE.find("// The objectives and their gradients").expect("the example's commands")]
}

/// Compilation's allocations vary by a few from run to run; work allocating per chunk of
/// samples or per step would add thousands.
const NOISE: i64 = 64;

/// How many allocations running `commands` after the cone's definitions takes, all told.
fn allocations(commands: &str, threads: usize) -> i64 {
    let source = format!("{}{commands}", definitions());
    let analysis = ppl::check_source("cone.ppl", &source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let options = ppl::run::RunOptions { threads: Some(threads), ..Default::default() };
    // One thread runs everything on this one; two also on the pool's threads.
    let count = || if threads == 1 { on_this_thread() } else { ALLOCATIONS.load(Ordering::SeqCst) };
    let before = count();
    let mut session = ppl::run::Session::new(&analysis, options).expect("the program runs");
    let mut outputs = 0;
    session.run_commands(&mut |_| outputs += 1).expect("the commands run");
    drop(session);
    (count() - before) as i64
}

#[test]
fn estimates_allocate_nothing_per_sample() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for command in ["estimate", "grad"] {
        for objective in ["elbo(cone(), guide(mu, log_sigma), obs)", "iwelbo(cone(), guide(mu, log_sigma), obs, 5)"] {
            let small = allocations(&format!("print {command}({objective}, samples: 100000);"), 1);
            let large = allocations(&format!("print {command}({objective}, samples: 900000);"), 1);
            let more = large - small;
            assert!(more.abs() <= NOISE, "{command}({objective}): 800000 more samples allocated {more} more times");
        }
    }
}

#[test]
fn training_allocates_nothing_per_step() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let training = |steps: u64, particles: u64| {
        format!(
            "maximize elbo(cone(), guide(mu, log_sigma), obs), iwelbo(cone(), guide(mu_iw, log_sigma_iw), obs, 5)
                with {{ optimizer: adam(lr: 0.001), steps: {steps}, particles: {particles}, clip: 10.0 }};"
        )
    };
    let small = allocations(&training(1000, 64), 1);
    let large = allocations(&training(9000, 64), 1);
    let more = large - small;
    assert!(more.abs() <= NOISE, "8000 more steps allocated {more} more times");
    // Steps large enough to run on both threads.
    let small = allocations(&training(20, 8000), 2);
    let large = allocations(&training(90, 8000), 2);
    let more = large - small;
    assert!(more <= 70 + NOISE, "70 more steps on two threads allocated {more} more times");
}

#[test]
fn value_and_grad_allocates_nothing_per_call() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let program = ppl::compile(CONE).expect("the example checks");
    let mut objective = program.objective("iwelbo(cone(), guide(mu_iw, log_sigma_iw), obs, 5)").expect("compiles");
    let params = program.param_values();
    let mut gradient = vec![0.0; params.len()];
    // Warm up: the reverse program's tape reaches its size on the first calls.
    for stream in 0..10 {
        objective.value_and_grad(&params, 1, stream, &mut gradient).expect("finite");
    }
    let before = on_this_thread();
    for stream in 10..1010 {
        objective.value_and_grad(&params, 1, stream, &mut gradient).expect("finite");
    }
    let after = on_this_thread();
    assert_eq!(after - before, 0, "1000 calls allocated {} times", after - before);
}
