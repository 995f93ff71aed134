//! The one execution path of every command: a compiled function called many times, each call
//! on its own random stream, at parameters laid out once in a flat buffer.
//!
//! A [`Kernel`] is the function with its native code (JIT back end) or without (the reference
//! interpreter); both are called the same way. A [`Worker`] owns the memory one thread needs to
//! call a kernel (slots, tape, stream state), reused across calls, commands' samples and
//! training steps: native calls allocate nothing, and read the parameters where they lie. An
//! [`Executor`] splits `count` calls into chunks of [`CHUNK`] consecutive indices, runs a round of
//! chunks on the worker threads (or on the caller's thread), and hands the chunks' summaries back
//! in chunk order, so results are the same bits whatever the number of threads. A round run on
//! the caller's thread lends the idle pool to its large matrix products
//! (`ppl_runtime::linalg::lend_threads`), which keep their bits on any number of threads.
//!
//! This module must not know what the results of a call mean: statistics, gradients and traces
//! are the callers'.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ppl_runtime::Rng;
use rayon::prelude::*;

use crate::codegen::{Compiled, FlatParams, Scratch};
use crate::interp::{self, InterpError, RuntimeValue};
use crate::ir::{Function, Type};

/// Calls per chunk: the unit of work handed to a thread, and of the fixed order in which
/// summaries are combined.
pub const CHUNK: u64 = 64;

/// At most this many reals of chunk summaries are held per round (a round has at least two
/// chunks per thread).
const ROUND_MEMORY: usize = 1 << 20;

/// A round has at most this many chunks per thread: enough that the threads rarely wait for
/// each other at the end of a round, few enough to combine often.
const MOST_CHUNKS_PER_THREAD: usize = 256;

/// A function to call many times: natively compiled, or run by the interpreter.
pub struct Kernel {
    function: Function,
    native: Option<Compiled>,
    /// The leading parameters' types: the program's parameters, before the stream.
    param_types: Vec<Type>,
    /// Whether an int parameter follows the stream: which part of its minibatch a call
    /// computes (`lower::Program::lower_estimate_part`).
    takes_part: bool,
    /// Found once, for the interpreter's calls.
    data_in_place: interp::DataInPlace,
    /// Where the results a caller may take in f32 are among the results flattened
    /// (`ir::precision::narrowable_results`, [`Kernel::call_part_into`]).
    narrowable: Vec<Range<usize>>,
    /// Which of the program's parameters a call reads only rounded to f32 (see
    /// [`Kernel::reads_only_rounded`]).
    read_rounded: Vec<bool>,
}

/// The memory one thread uses to call a kernel.
pub struct Worker {
    memory: Memory,
    /// The results flattened, where the memory does not hold them so (see [`Kernel::reals`]).
    reals: Vec<f64>,
    /// The run of an executor whose parameters are loaded (see [`Executor::run`]).
    generation: u64,
}

enum Memory {
    Native(Scratch),
    /// The interpreter's arguments (the parameters, then the stream) and last results.
    Interpreted {
        args: Vec<RuntimeValue>,
        results: Vec<RuntimeValue>,
    },
}

impl Kernel {
    /// `function` takes the program's parameters followed by one stream, and perhaps the part
    /// to compute; `native` is its code.
    pub fn new(function: Function, native: Option<Compiled>) -> Kernel {
        let types: Vec<Type> = function.body.params.iter().filter_map(|param| function.ty(*param)).collect();
        let param_types: Vec<Type> = types.iter().copied().take_while(|ty| *ty != Type::Rng).collect();
        let takes_part = types.get(param_types.len() + 1) == Some(&Type::Int);
        let data_in_place = interp::DataInPlace::of(&function);
        let mut narrowable = Vec::new();
        let mut offset = 0;
        for (result, narrow) in function.body.results.iter().zip(crate::ir::precision::narrowable_results(&function)) {
            let len = function.ty(*result).map_or(1, Type::elements);
            if narrow {
                narrowable.push(offset..offset + len);
            }
            offset += len;
        }
        // The interpreter reads every parameter's f64 values.
        let read_rounded = match native {
            Some(_) => crate::ir::precision::params_read_rounded(&function),
            None => Vec::new(),
        };
        Kernel { function, native, param_types, takes_part, data_in_place, narrowable, read_rounded }
    }

    /// Whether a call reads the program's parameter `index` only through its values rounded to
    /// f32 ([`FlatParams::rounded`], when given): natively compiled code whose single-precision
    /// products alone read it. Its f64 values may then lag behind the rounded ones.
    pub fn reads_only_rounded(&self, index: usize) -> bool {
        index < self.param_types.len() && self.read_rounded.get(index).copied().unwrap_or(false)
    }

    /// Where the results that [`Kernel::call_part_into`] may leave in f32 are, among the
    /// results flattened.
    pub fn narrowable(&self) -> &[Range<usize>] {
        &self.narrowable
    }

    pub fn worker(&self) -> Worker {
        let memory = match &self.native {
            Some(native) => Memory::Native(native.scratch()),
            None => Memory::Interpreted { args: Vec::new(), results: Vec::new() },
        };
        Worker { memory, reals: Vec::new(), generation: u64::MAX }
    }

    /// Prepares the worker for calls at the flat parameters `flat`: the interpreter takes them
    /// as run-time values, once; native code reads them where they lie, at each call.
    pub fn load_params(&self, worker: &mut Worker, flat: &[f64]) {
        if let Memory::Interpreted { args, .. } = &mut worker.memory {
            *args = self.args(flat, 0, 0, 0);
        }
    }

    /// One call at the flat parameters `params` (those of the worker's last
    /// [`Kernel::load_params`]) on the stream `Rng::new(seed, stream)`; false if it failed (see
    /// [`Kernel::explain`]).
    pub fn call<'p>(&self, worker: &mut Worker, params: impl Into<FlatParams<'p>>, seed: u64, stream: u64) -> bool {
        self.call_with(worker, params.into(), seed, stream, 0, None)
    }

    /// [`Kernel::call`] computing part `part` of its estimate (if the kernel takes one).
    pub fn call_part<'p>(
        &self,
        worker: &mut Worker,
        params: impl Into<FlatParams<'p>>,
        seed: u64,
        stream: u64,
        part: u32,
    ) -> bool {
        self.call_with(worker, params.into(), seed, stream, part, None)
    }

    /// [`Kernel::call_part`] with the results, flattened, written into `results` rather than
    /// the worker's memory (native code writes them there directly); false also unless every
    /// result is a real, vector or matrix and `results` holds exactly them. With `narrow`, the
    /// [`Kernel::narrowable`] results are left there in f32, two to a word at the start of their
    /// place (`ppl_runtime::narrow_view`), as the products summed them: f32 numbers, which the
    /// interpreter's results are too, so both back ends leave the same bits.
    pub fn call_part_into<'p>(
        &self,
        worker: &mut Worker,
        params: impl Into<FlatParams<'p>>,
        (seed, stream, part): (u64, u64, u32),
        results: &mut [f64],
        narrow: bool,
    ) -> bool {
        self.call_with(worker, params.into(), seed, stream, part, Some((results, narrow)))
    }

    fn call_with(
        &self,
        worker: &mut Worker,
        params: FlatParams,
        seed: u64,
        stream: u64,
        part: u32,
        into: Option<(&mut [f64], bool)>,
    ) -> bool {
        match (&mut worker.memory, &self.native) {
            (Memory::Native(scratch), Some(native)) => {
                native.set_rng(scratch, self.param_types.len(), seed, stream);
                if self.takes_part {
                    native.set_int(scratch, self.param_types.len() + 1, i64::from(part));
                }
                match into {
                    Some((results, true)) => return native.call_into_narrowing(scratch, params, results),
                    Some((results, false)) => return native.call_into(scratch, params, results),
                    None => {}
                }
                let ok = native.call(scratch, params);
                if ok && native.real_results(scratch).is_none() {
                    worker.reals.clear();
                    for index in 0..self.function.body.results.len() {
                        worker.reals.extend_from_slice(native.result_slice(scratch, index));
                    }
                }
                ok
            }
            (Memory::Interpreted { args, results }, _) => {
                if let Some(arg) = args.get_mut(self.param_types.len()) {
                    *arg = RuntimeValue::Rng(Box::new(Rng::new(seed, stream)));
                }
                if let (true, Some(arg)) = (self.takes_part, args.get_mut(self.param_types.len() + 1)) {
                    *arg = RuntimeValue::Int(i64::from(part));
                }
                let Ok(values) = interp::run_with(&self.function, &self.data_in_place, args.clone()) else {
                    return false;
                };
                *results = values;
                worker.reals.clear();
                let mut all_reals = true;
                for value in results.iter() {
                    match value {
                        RuntimeValue::Real(x) => worker.reals.push(*x),
                        RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => {
                            worker.reals.extend_from_slice(data)
                        }
                        _ => all_reals = false,
                    }
                }
                match into {
                    Some((into, narrow)) if all_reals && into.len() == worker.reals.len() => {
                        into.copy_from_slice(&worker.reals);
                        for range in self.narrowable.iter().filter(|_| narrow) {
                            let (wide, len) = (&worker.reals[range.clone()], range.len());
                            let narrowed = ppl_runtime::narrow_view_mut(&mut into[range.clone()], len);
                            narrowed.iter_mut().zip(wide).for_each(|(narrow, wide)| *narrow = *wide as f32);
                        }
                        true
                    }
                    Some(_) => false,
                    None => true,
                }
            }
            (Memory::Native(_), None) => false,
        }
    }

    /// Every result of the last successful call, flattened in order (matrices row-major), if
    /// all are reals, vectors and matrices.
    pub fn reals<'w>(&self, worker: &'w Worker) -> &'w [f64] {
        match (&worker.memory, &self.native) {
            (Memory::Native(scratch), Some(native)) => native.real_results(scratch).unwrap_or(&worker.reals),
            _ => &worker.reals,
        }
    }

    /// Every result of the last successful call, as run-time values.
    pub fn results(&self, worker: &Worker) -> Vec<RuntimeValue> {
        match (&worker.memory, &self.native) {
            (Memory::Native(scratch), Some(native)) => native.results(scratch).unwrap_or_default(),
            (Memory::Interpreted { results, .. }, _) => results.clone(),
            (Memory::Native(_), None) => Vec::new(),
        }
    }

    /// Why the call at `flat` on the stream `(seed, stream)` fails (or, `watching_nan`, where its
    /// first NaN comes from): the interpreter reruns it and reports the instruction. `None` if it
    /// does not fail after all.
    pub fn explain(&self, flat: &[f64], seed: u64, stream: u64, watching_nan: bool) -> Option<InterpError> {
        self.explain_part(flat, seed, stream, 0, watching_nan)
    }

    /// [`Kernel::explain`] for the call computing part `part`.
    pub fn explain_part(
        &self,
        flat: &[f64],
        seed: u64,
        stream: u64,
        part: u32,
        watching_nan: bool,
    ) -> Option<InterpError> {
        let run = if watching_nan { interp::run_watching_nan } else { interp::run };
        run(&self.function, self.args(flat, seed, stream, part)).err()
    }

    /// The interpreter's arguments: the flat parameters, the stream and the part, if taken.
    fn args(&self, flat: &[f64], seed: u64, stream: u64, part: u32) -> Vec<RuntimeValue> {
        let mut args = runtime_args(&self.param_types, flat);
        args.push(RuntimeValue::Rng(Box::new(Rng::new(seed, stream))));
        if self.takes_part {
            args.push(RuntimeValue::Int(i64::from(part)));
        }
        args
    }
}

/// The flat parameters as the interpreter's leading arguments.
fn runtime_args(types: &[Type], flat: &[f64]) -> Vec<RuntimeValue> {
    let mut rest = flat;
    let mut args = Vec::with_capacity(types.len() + 1);
    for ty in types {
        let (data, after) = rest.split_at(ty.elements().min(rest.len()));
        rest = after;
        args.push(RuntimeValue::from_reals(*ty, data));
    }
    args
}

/// A worker on cache lines of its own: its fields (the tape's length, the lock) change with
/// every call, and the workers of different threads sit side by side. Made by its first call:
/// a step of one costly call (a batched step of particles) uses one worker, and the others' memory (tens of
/// megabytes for a network's gradient) is never taken.
#[repr(align(128))]
struct Own(Mutex<Option<Worker>>);

/// A kernel with one worker per thread.
pub struct Executor {
    kernel: Kernel,
    workers: Vec<Own>,
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The number of the last run: a worker loads the parameters at its first call of a run.
    runs: AtomicU64,
}

impl Executor {
    /// Workers for every thread of `pool` (or for the caller's thread alone).
    pub fn new(kernel: Kernel, pool: Option<Arc<rayon::ThreadPool>>) -> Executor {
        let threads = pool.as_ref().map_or(1, |pool| pool.current_num_threads()).max(1);
        let workers = (0..threads).map(|_| Own(Mutex::new(None))).collect();
        Executor { kernel, workers, pool, runs: AtomicU64::new(0) }
    }

    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// The chunk summaries of one round: at least two chunks per thread, each summary from
    /// `summary()`, within [`ROUND_MEMORY`] for summaries of `reals` reals each.
    pub fn round<S>(&self, reals: usize, summary: impl Fn() -> S) -> Vec<S> {
        let threads = self.threads();
        let chunks = if threads == 1 {
            1
        } else {
            (ROUND_MEMORY / reals.max(1)).clamp(2 * threads, MOST_CHUNKS_PER_THREAD * threads)
        };
        (0..chunks).map(|_| summary()).collect()
    }

    /// Runs calls `0..count` at the flat parameters `params` (which each worker copies into its
    /// memory at its first call of the run): each chunk of `chunk` consecutive indices (usually
    /// [`CHUNK`]) is summarised by `work(kernel, worker, indices, summary)` into a summary of
    /// `round` (cleared by the caller's `work`), and the summaries are handed to `combine` in
    /// chunk order, until it returns false. With `parallel` (and more than one thread) the
    /// chunks of a round run on the worker threads.
    #[allow(clippy::too_many_arguments)]
    pub fn run<S: Send>(
        &self,
        params: &[f64],
        count: u64,
        chunk: u64,
        parallel: bool,
        round: &mut [S],
        work: impl Fn(&Kernel, &mut Worker, Range<u64>, &mut S) + Sync,
        mut combine: impl FnMut(&mut S) -> bool,
    ) {
        let generation = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let size = chunk.max(1);
        let chunks = count.div_ceil(size);
        let per_round = round.len().max(1) as u64;
        let mut first = 0;
        while first < chunks {
            let n = (chunks - first).min(per_round) as usize;
            let indices = |chunk: u64| chunk * size..((chunk + 1) * size).min(count);
            let one = |chunk: u64, summary: &mut S, worker: &mut Option<Worker>| {
                let worker = worker.get_or_insert_with(|| self.kernel.worker());
                if worker.generation != generation {
                    self.kernel.load_params(worker, params);
                    worker.generation = generation;
                }
                work(&self.kernel, worker, indices(chunk), summary);
            };
            match &self.pool {
                Some(pool) if parallel && n > 1 && self.threads() > 1 => pool.install(|| {
                    round[..n].par_iter_mut().enumerate().for_each(|(i, summary)| {
                        let thread = rayon::current_thread_index().unwrap_or(0) % self.workers.len();
                        one(first + i as u64, summary, &mut lock(&self.workers[thread].0));
                    })
                }),
                _ => {
                    let mut alone = || {
                        let mut worker = lock(&self.workers[0].0);
                        for (i, summary) in round[..n].iter_mut().enumerate() {
                            one(first + i as u64, summary, &mut worker);
                        }
                    };
                    // The pool's threads are idle meanwhile: large matrix products use them.
                    match &self.pool {
                        Some(pool) if self.threads() > 1 => ppl_runtime::linalg::lend_threads(pool, alone),
                        _ => alone(),
                    }
                }
            }
            for summary in &mut round[..n] {
                if !combine(summary) {
                    return;
                }
            }
            first += n as u64;
        }
    }
}

/// A worker's lock; a worker whose holder panicked is still usable (its memory is rewritten
/// before every call).
fn lock(worker: &Mutex<Option<Worker>>) -> MutexGuard<'_, Option<Worker>> {
    match worker.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
