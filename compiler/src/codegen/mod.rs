//! The Cranelift back end: IR functions compiled to native code that computes exactly what
//! the reference interpreter computes, bit for bit.
//!
//! **ABI.** A compiled function is `extern "C" fn(frame: *mut Frame) -> i32`. The frame
//! points at the caller's [`Scratch`]: one `f64` slot range per vector or matrix value and
//! per scalar parameter and result, one stream slot per random-stream value, the tape of
//! reverse mode, an overflow flag and a scratch word. It also points at the caller's flat
//! parameters (the function's leading reals, vectors and matrices), which the code reads where
//! they lie (and at their rounded copy, if the caller keeps one, which single-precision products
//! read: [`FlatParams`]), and at the results' slots, which are the scratch's first or the caller's own
//! memory ([`Compiled::call_into`]): a network's weights and gradient are not copied per call.
//! The caller writes the other arguments into their places, calls, and reads the results from
//! theirs; 0 means success, 1 a failure (a
//! check, a bound, an overflow, a sampler's domain), which the caller reproduces with the
//! interpreter to report it exactly. Shapes are static, so a [`Scratch`] is sized once and
//! reused: a call allocates nothing (the tape keeps its capacity).
//!
//! Operations that are exact in IEEE arithmetic are emitted inline; the others call the same
//! Rust functions the interpreter uses (`shims.rs`). Runs of elementwise operations over large
//! matrices call them a few rows at a time (`tiles.rs`).

mod shims;
mod tiles;
mod translate;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cranelift_codegen::ir::{types, AbiParam, InstBuilder};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder as ClifBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use ppl_runtime::Rng;

use crate::interp::RuntimeValue;
use crate::ir::verify::IrError;
use crate::ir::{Block, Function, Type, UnaryOp, Value};

/// Where a value lives in the scratch memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// An offset in `f64` words into the slots.
    Slot(usize),
    /// An index into the stream slots.
    Rng(usize),
    /// An offset in `f64` words into the caller's flat parameters (see [`Compiled::call`]).
    Param(usize),
}

/// The flat parameters a compiled function reads where they lie ([`Compiled::call`]).
#[derive(Clone, Copy, Debug)]
pub struct FlatParams<'a> {
    /// The leading reals, vectors and matrices of the function, in order.
    pub values: &'a [f64],
    /// The same values rounded to f32 ([`ppl_runtime::round_to_single`]), if the caller keeps
    /// them: single-precision products of parameters then read these instead of rounding a
    /// network's weights in every product of every call, with the same bits.
    pub rounded: Option<&'a [f32]>,
}

impl<'a> From<&'a [f64]> for FlatParams<'a> {
    fn from(values: &'a [f64]) -> FlatParams<'a> {
        FlatParams { values, rounded: None }
    }
}

impl<'a> From<&'a Vec<f64>> for FlatParams<'a> {
    fn from(values: &'a Vec<f64>) -> FlatParams<'a> {
        FlatParams { values, rounded: None }
    }
}

/// The memory layout of one compiled function.
#[derive(Debug, Default)]
pub struct Layout {
    slot: HashMap<Value, usize>,
    rng: HashMap<Value, usize>,
    /// Run-time data, read where it lives: no slot, no copy.
    data: HashMap<Value, Arc<Vec<f64>>>,
    /// A second place for each loop-carried vector or stream, for the end of an iteration.
    staging: HashMap<Value, Place>,
    params: Vec<Place>,
    results: Vec<Place>,
    /// Where a run of consecutive scalar saves (or restores) gathers its values, to cross to
    /// the tape in one call: as many words as the longest run.
    tape_run: usize,
    /// The slot offset of an f32 copy of each value that two or more of the top level's
    /// single-precision products read (see `Layout::round_shared_operands`).
    rounded: HashMap<Value, usize>,
    /// The results of those products of the top level, which alone read the copies.
    top_level_products: HashSet<Value>,
    /// The results a caller may take in f32 (`ir::precision::narrowable_results`).
    narrowable: HashSet<Value>,
    /// The top level's runs of elementwise instructions computed tile by tile (`tiles.rs`), by
    /// the index of their first instruction.
    tiled: HashMap<usize, tiles::TiledRun>,
    /// The single-precision products that leave their results in f32 for a tiled run to widen.
    narrow_products: HashSet<Value>,
    slots_len: usize,
    rngs_len: usize,
    /// The length of the flat parameters the function reads in place.
    params_len: usize,
    /// The slots before this offset hold the results, and are wherever the caller puts them.
    results_len: usize,
}

impl Layout {
    fn of(function: &Function) -> Layout {
        let mut layout = Layout::default();
        // The results first, one after another, so that a caller can read them as one slice
        // (see `consecutive_reals`).
        for result in &function.body.results {
            let place = layout.fresh(function.ty(*result).unwrap_or(Type::Real));
            layout.results.push(place);
        }
        layout.results_len = layout.slots_len;
        let narrowable = crate::ir::precision::narrowable_results(function);
        let results = function.body.results.iter().zip(narrowable);
        layout.narrowable = results.filter_map(|(result, narrowable)| narrowable.then_some(*result)).collect();
        layout.find_data(&function.body);
        // Only the values the body defines: passes leave the types of the values they removed.
        // Those the top level computes share slots (see `share_top_level_slots`).
        let top_level: std::collections::HashSet<Value> =
            function.body.insts.iter().flat_map(|inst| inst.results.iter().copied()).collect();
        // The leading reals, vectors and matrices are read where the caller keeps them.
        let in_place = function
            .body
            .params
            .iter()
            .take_while(|param| matches!(function.ty(**param), Some(Type::Real | Type::Vec(_) | Type::Mat(..))));
        let in_place: std::collections::HashSet<Value> = in_place.copied().collect();
        let mut defined = crate::ir::defined_in(&function.body);
        defined.retain(|value| !in_place.contains(value));
        defined.sort();
        for value in defined {
            let shared = top_level.contains(&value) && matches!(function.ty(value), Some(Type::Vec(_) | Type::Mat(..)));
            if layout.data.contains_key(&value) || shared {
                continue;
            }
            let Some(ty) = function.ty(value) else { continue };
            match ty {
                Type::Vec(_) | Type::Mat(..) => {
                    layout.slot.insert(value, layout.slots_len);
                    layout.slots_len += ty.elements();
                }
                Type::Rng => {
                    layout.rng.insert(value, layout.rngs_len);
                    layout.rngs_len += 1;
                }
                _ => {}
            }
        }
        layout.find_tiled_runs(function);
        layout.share_top_level_slots(function);
        layout.share_streams(function);
        layout.accumulate_in_place(function, &function.body);
        layout.stage_loops(function, &function.body);
        layout.tape_run = layout.slots_len;
        layout.slots_len += longest_tape_run(function, &function.body);
        layout.round_shared_operands(function);
        for param in function.body.params.clone() {
            let place = match in_place.contains(&param) {
                true => {
                    let offset = layout.params_len;
                    layout.params_len += function.ty(param).map_or(1, Type::elements);
                    Place::Param(offset)
                }
                false => layout.place_of(function, param),
            };
            layout.params.push(place);
        }
        layout
    }

    /// Room for an f32 copy of each matrix that two or more single-precision products of the
    /// top level read (a minibatch's images, read by the first layer and by its weights'
    /// gradient; a layer's error, by the gradients of the layer's input and of its weights): the
    /// first of them rounds it there and the others read that copy, rather than each rounding
    /// it again. The top level runs straight through, so the first product in order is the
    /// first to run. Parameters have copies of their own (`FlatParams::rounded`), and run-time
    /// data is left alone: its copy would cost as much memory as the data.
    fn round_shared_operands(&mut self, function: &Function) {
        let mut reads: HashMap<Value, usize> = HashMap::new();
        for inst in &function.body.insts {
            if let crate::ir::Op::MatMulTransposed { a, b, precision: ppl_runtime::Precision::Single, .. } = inst.op {
                for operand in if a == b { vec![a] } else { vec![a, b] } {
                    *reads.entry(operand).or_default() += 1;
                }
                self.top_level_products.extend(inst.results.first());
            }
        }
        let mut shared: Vec<Value> =
            reads.into_iter().filter(|(_, reads)| *reads >= 2).map(|(value, _)| value).collect();
        shared.sort();
        for value in shared {
            if function.body.params.contains(&value) || self.data.contains_key(&value) {
                continue;
            }
            let Some(ty @ Type::Mat(..)) = function.ty(value) else { continue };
            self.rounded.insert(value, self.slots_len);
            // Two f32 values to a slot.
            self.slots_len += ty.elements().div_ceil(2);
        }
    }

    /// Slots for the vectors and matrices the function's top level computes, a slot shared by
    /// values whose lives do not overlap: a batched network's gradient computes dozens of
    /// `B × n` matrices, each read by the next few instructions. A value lives from the
    /// instruction that computes it to the last that reads it (in its blocks too; the function's
    /// results to the end), and takes a free slot of its size or a new one; an instruction's
    /// results never take the slots of its own operands. Values of nested blocks keep slots of
    /// their own, and those only a tiled run reads live in its tile buffers (`tiles.rs`).
    ///
    /// A result is computed where the caller reads it, so that it is not copied there at the
    /// end: a gradient's result is as large as the network. Its place is its own for good
    /// (a result lives to the end); a value returned twice is copied to its second place.
    fn share_top_level_slots(&mut self, function: &Function) {
        let mut in_place: HashMap<Value, usize> = HashMap::new();
        for (result, place) in function.body.results.iter().zip(&self.results) {
            if let Place::Slot(offset) = place {
                in_place.entry(*result).or_insert(*offset);
            }
        }
        let insts = &function.body.insts;
        let mut last_read: HashMap<Value, usize> = HashMap::new();
        for (index, inst) in insts.iter().enumerate() {
            for value in crate::ir::reads(inst) {
                last_read.insert(value, index);
            }
        }
        for value in &function.body.results {
            last_read.insert(*value, usize::MAX);
        }
        // A result left in f32 is laid out unlike the f64 matrices of its run, so none of those
        // may take its slot while the run, tile after tile, still reads it.
        for (start, run) in &self.tiled {
            for value in run.narrow.keys() {
                last_read.insert(*value, start + run.len - 1);
            }
        }
        let may_be_view: HashSet<Value> = insts
            .iter()
            .filter(|inst| matches!(inst.op, crate::ir::Op::Unary(UnaryOp::Detach, _) | crate::ir::Op::Extract { .. }))
            .flat_map(|inst| inst.results.iter().copied())
            .collect();
        let mut free: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut ending: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for (index, inst) in insts.iter().enumerate() {
            for (k, result) in inst.results.iter().enumerate() {
                let Some(ty @ (Type::Vec(_) | Type::Mat(..))) = function.ty(*result) else { continue };
                if self.data.contains_key(result) || self.is_tile_local(result) {
                    continue;
                }
                let size = ty.elements();
                let slot = match (in_place.get(result), self.place_taken_over(inst, k, index, &last_read, &may_be_view))
                {
                    (Some(offset), _) => *offset,
                    (None, Some(slot)) => {
                        // The value whose place this is ends here: its slot is not freed.
                        if let Some(ended) = ending.get_mut(&index) {
                            ended.retain(|(_, ended)| *ended != slot);
                        }
                        slot
                    }
                    (None, None) => free.get_mut(&size).and_then(Vec::pop).unwrap_or_else(|| {
                        self.slots_len += size;
                        self.slots_len - size
                    }),
                };
                self.slot.insert(*result, slot);
                let last = last_read.get(result).copied().unwrap_or(index);
                if last != usize::MAX {
                    ending.entry(last).or_default().push((size, slot));
                }
            }
            for (size, slot) in ending.remove(&index).unwrap_or_default() {
                free.entry(size).or_default().push(slot);
            }
        }
    }

    /// The slot that result `k` of the top-level `inst` (at `index`) may be computed in without
    /// a copy: an accumulation `acc + a ⊗ b` (a bias added to each row of a batch) over its
    /// `acc` when nothing reads `acc` afterwards and `acc` is in its slot (compiled code may read
    /// a detached or extracted value where the run-time data lie, leaving its slot unwritten:
    /// `may_be_view`); a loop's result where the loop left it, in the
    /// slot of the vector it carries (the loop runs once, and nothing reads that slot after it).
    fn place_taken_over(
        &self,
        inst: &crate::ir::Inst,
        k: usize,
        index: usize,
        last_read: &HashMap<Value, usize>,
        may_be_view: &HashSet<Value>,
    ) -> Option<usize> {
        match &inst.op {
            crate::ir::Op::AddOuter { acc, .. }
                if last_read.get(acc) == Some(&index)
                    && !self.narrow_products.contains(acc)
                    && !may_be_view.contains(acc) =>
            {
                self.slot.get(acc).copied()
            }
            crate::ir::Op::For { body, .. } => body.params.get(k + 1).and_then(|param| self.slot.get(param)).copied(),
            _ => None,
        }
    }

    fn find_data(&mut self, block: &Block) {
        for inst in &block.insts {
            if let (crate::ir::Op::Data(tensor), [result]) = (&inst.op, inst.results.as_slice()) {
                self.data.insert(*result, tensor.values.clone());
            }
            for nested in inst.op.blocks() {
                self.find_data(nested);
            }
        }
    }

    /// Whether two vector or stream values live in the same place (a stream advanced in place,
    /// see `share_streams`), so that copying one to the other changes nothing.
    fn same_place(&self, a: Value, b: Value) -> bool {
        let same =
            |places: &HashMap<Value, usize>| matches!((places.get(&a), places.get(&b)), (Some(x), Some(y)) if x == y);
        same(&self.slot) || same(&self.rng)
    }

    /// The place of a value: its own for vectors and streams, a new word for a scalar.
    fn place_of(&mut self, function: &Function, value: Value) -> Place {
        if let Some(slot) = self.slot.get(&value) {
            return Place::Slot(*slot);
        }
        if let Some(index) = self.rng.get(&value) {
            return Place::Rng(*index);
        }
        self.fresh(function.ty(value).unwrap_or(Type::Real))
    }

    fn fresh(&mut self, ty: Type) -> Place {
        if ty == Type::Rng {
            self.rngs_len += 1;
            Place::Rng(self.rngs_len - 1)
        } else {
            self.slots_len += ty.elements();
            Place::Slot(self.slots_len - ty.elements())
        }
    }

    /// Lets a draw advance its stream in place when nothing else reads the stream it draws
    /// from: the drawn-from and the advanced stream share a slot; likewise a loop carrying a
    /// stream nothing else reads (its start, loop parameter and result share one). Only within
    /// one block, since a stream from an enclosing block is read again by every iteration or
    /// branch.
    fn share_streams(&mut self, function: &Function) {
        fn share(block: &Block, uses: &HashMap<Value, usize>, rng: &mut HashMap<Value, usize>) {
            let local: std::collections::HashSet<Value> =
                block.params.iter().chain(block.insts.iter().flat_map(|inst| inst.results.iter())).copied().collect();
            let sole_use = |value: &Value| local.contains(value) && uses.get(value) == Some(&1);
            for inst in &block.insts {
                // A loop that alone reads a stream advances it in place, iteration after
                // iteration, and leaves it there.
                if let crate::ir::Op::For { init, body, .. } = &inst.op {
                    for ((start, param), result) in init.iter().zip(body.params.iter().skip(1)).zip(&inst.results) {
                        if let (Some(index), true) = (rng.get(start).copied(), sole_use(start)) {
                            rng.insert(*param, index);
                            rng.insert(*result, index);
                        }
                    }
                }
                let (crate::ir::Op::Draw { rng: source, .. }
                | crate::ir::Op::Sample { rng: source, .. }
                | crate::ir::Op::Split { rng: source }) = &inst.op
                else {
                    for nested in inst.op.blocks() {
                        share(nested, uses, rng);
                    }
                    continue;
                };
                let advanced = match &inst.op {
                    crate::ir::Op::Split { .. } => inst.results.first(),
                    _ => inst.results.get(1),
                };
                if let (Some(advanced), true) = (advanced, sole_use(source)) {
                    if let Some(index) = rng.get(source).copied() {
                        rng.insert(*advanced, index);
                    }
                }
            }
        }
        let mut uses = HashMap::new();
        crate::ir::count_uses(&function.body, &mut uses);
        share(&function.body, &uses, &mut self.rng);
    }

    /// Lets a loop update a carried vector in place when its body yields `param ∘ x` (an
    /// elementwise `+ − × ÷`, or `param + a ⊗ b`, as an adjoint accumulates a gradient), or
    /// `param` with one element or row replaced (as a comprehension fills its vector), or a chain
    /// of such updates (a trace entry written twice in one iteration), and reads the parameter
    /// and each link of the chain nowhere else: each result is written over the parameter, each
    /// element read before it is written, and no copy through the staging slot is needed at the
    /// end of the iteration.
    fn accumulate_in_place(&mut self, function: &Function, block: &Block) {
        for inst in &block.insts {
            for nested in inst.op.blocks() {
                self.accumulate_in_place(function, nested);
            }
            let crate::ir::Op::For { body, .. } = &inst.op else { continue };
            let mut uses: HashMap<Value, usize> = HashMap::new();
            crate::ir::count_uses(body, &mut uses);
            let defining: HashMap<Value, &crate::ir::Op> =
                body.insts.iter().filter_map(|inst| inst.results.first().map(|result| (*result, &inst.op))).collect();
            for (param, yielded) in body.params.iter().skip(1).zip(&body.results) {
                if !matches!(function.ty(*param), Some(Type::Vec(_) | Type::Mat(..))) {
                    continue;
                }
                let Some(chain) = update_chain(*param, *yielded, &defining, &uses, function) else { continue };
                if let (Some(&1), Some(slot)) = (uses.get(param), self.slot.get(param).copied()) {
                    for link in chain {
                        self.slot.insert(link, slot);
                    }
                }
            }
        }
    }

    fn stage_loops(&mut self, function: &Function, block: &Block) {
        for inst in &block.insts {
            if let crate::ir::Op::For { body, .. } = &inst.op {
                for param in body.params.iter().skip(1) {
                    if let Some(ty @ (Type::Vec(_) | Type::Mat(..) | Type::Rng)) = function.ty(*param) {
                        let place = self.fresh(ty);
                        self.staging.insert(*param, place);
                    }
                }
            }
            for nested in inst.op.blocks() {
                self.stage_loops(function, nested);
            }
        }
    }
}

/// The values from `yielded` back to `param` when each is an in-place update of the one before
/// (see `accumulate_in_place`) used by nothing but the next; `None` if there is no such chain.
fn update_chain(
    param: Value,
    yielded: Value,
    defining: &HashMap<Value, &crate::ir::Op>,
    uses: &HashMap<Value, usize>,
    function: &Function,
) -> Option<Vec<Value>> {
    use crate::ir::{BinaryOp, Op};
    let same_shape = |value: Value| function.ty(value) == function.ty(param);
    let continues = |value: Value| value == param || (same_shape(value) && defining.contains_key(&value));
    let mut chain = Vec::new();
    let mut current = yielded;
    while current != param {
        if uses.get(&current) != Some(&1) || chain.len() > defining.len() {
            return None;
        }
        let previous = match defining.get(&current)? {
            Op::Binary(BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div, a, b) => {
                [*a, *b].into_iter().find(|operand| continues(*operand))?
            }
            Op::AddOuter { acc, .. } => *acc,
            // A row or element written over the vector or matrix: no other is read.
            Op::Insert { aggregate, value, .. } if aggregate != value => *aggregate,
            _ => return None,
        };
        chain.push(current);
        current = previous;
    }
    (!chain.is_empty()).then_some(chain)
}

/// How many instructions from the first of `insts` on save scalars to the tape, or restore
/// them from it (0 if the first does neither): reverse programs save and restore in runs, which
/// cross to the tape in one call (`translate.rs`).
fn tape_run(function: &Function, insts: &[crate::ir::Inst]) -> usize {
    let kind = |op: &crate::ir::Op| match op {
        crate::ir::Op::Save(value) => {
            matches!(function.ty(*value), Some(Type::Real | Type::Int | Type::Bool)).then_some(true)
        }
        crate::ir::Op::Restore(ty) => matches!(ty, Type::Real | Type::Int | Type::Bool).then_some(false),
        _ => None,
    };
    let Some(first) = insts.first().and_then(|inst| kind(&inst.op)) else { return 0 };
    insts.iter().take_while(|inst| kind(&inst.op) == Some(first)).count()
}

/// The number of instructions in the longest run of scalar saves, or of scalar restores.
fn longest_tape_run(function: &Function, block: &Block) -> usize {
    let mut longest = 0;
    let mut k = 0;
    while let Some(inst) = block.insts.get(k) {
        let run = tape_run(function, &block.insts[k..]);
        longest = longest.max(run);
        for nested in inst.op.blocks() {
            longest = longest.max(longest_tape_run(function, nested));
        }
        k += run.max(1);
    }
    longest
}

/// What compiled code reads and writes, at the offsets below.
#[repr(C)]
struct Frame {
    slots: *mut f64,
    /// Where the first `Layout::results_len` slots are.
    results: *mut f64,
    params: *const f64,
    /// The parameters rounded to f32, or null (see [`FlatParams::rounded`]).
    rounded: *const f32,
    rngs: *mut Rng,
    tape: *mut Vec<f64>,
    /// 8 (a product's flag for a result in f32) if the caller takes the narrowable results in
    /// f32, else 0 (see [`Compiled::call_into_narrowing`]).
    narrow: i64,
    failed: i64,
    word: i64,
}

/// Where compiled code finds the frame's fields: taken from the struct, never written by hand.
const SLOTS_AT: i32 = std::mem::offset_of!(Frame, slots) as i32;
const PARAMS_AT: i32 = std::mem::offset_of!(Frame, params) as i32;
const RESULTS_AT: i32 = std::mem::offset_of!(Frame, results) as i32;
const ROUNDED_AT: i32 = std::mem::offset_of!(Frame, rounded) as i32;
const RNGS_AT: i32 = std::mem::offset_of!(Frame, rngs) as i32;
const TAPE_AT: i32 = std::mem::offset_of!(Frame, tape) as i32;
const NARROW_AT: i32 = std::mem::offset_of!(Frame, narrow) as i32;
const FAILED_AT: i64 = std::mem::offset_of!(Frame, failed) as i64;
/// The scratch word, relative to the failure flag (which `translate.rs` holds the address of).
const WORD_AFTER_FAILED: i64 = (std::mem::offset_of!(Frame, word) - std::mem::offset_of!(Frame, failed)) as i64;

/// The memory one thread needs to call a compiled function; reuse it across calls. It belongs
/// to the function that made it ([`Compiled::scratch`]): others refuse it.
pub struct Scratch {
    slots: Vec<f64>,
    rngs: Vec<Rng>,
    tape: Vec<f64>,
    /// The [`Compiled::id`] of its function.
    owner: u64,
}

/// Numbers compiled functions, so that each knows its own scratch memory.
static COMPILED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The code memory of compiled functions, freed when the last function using it goes.
struct Code(Option<JITModule>);

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(module) = self.0.take() {
            // SAFETY: `Code` is dropped with the last `Compiled` that holds its functions, so
            // none of them can run again.
            unsafe { module.free_memory() };
        }
    }
}

// SAFETY: the module is only read to free its memory on drop; the finalized functions it
// holds are plain machine code that any thread may call.
unsafe impl Send for Code {}
// SAFETY: as above.
unsafe impl Sync for Code {}

/// A compiled IR function.
pub struct Compiled {
    entry: extern "C" fn(*mut Frame) -> i32,
    layout: Layout,
    param_types: Vec<Type>,
    result_types: Vec<Type>,
    /// The slots of all results, when they are reals, vectors and matrices laid out one after
    /// another (as `Layout::of` places them).
    real_results: Option<std::ops::Range<usize>>,
    /// Unique among the functions of this process: the owner of its scratch memory.
    id: u64,
    _code: Arc<Code>,
    /// The Cranelift IR, for `--emit clif`.
    pub clif: String,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compiled")
    }
}

fn isa() -> Result<cranelift_codegen::isa::OwnedTargetIsa, IrError> {
    let fail = |e: &dyn std::fmt::Display| IrError { message: format!("cannot set up code generation: {e}") };
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(|e| fail(&e))?;
    flags.set("use_colocated_libcalls", "false").map_err(|e| fail(&e))?;
    flags.set("is_pic", "false").map_err(|e| fail(&e))?;
    let builder = cranelift_native::builder().map_err(|e| fail(&e))?;
    builder.finish(settings::Flags::new(flags)).map_err(|e| fail(&e))
}

/// Compiles `function` to native code, after checking it with the IR verifier: the code is
/// only as sound as the function's types and shapes, which size its memory.
pub fn compile(function: &Function) -> Result<Compiled, IrError> {
    crate::ir::verify::verify(function)?;
    let mut builder = JITBuilder::with_isa(isa()?, default_libcall_names());
    for (name, pointer) in shims::symbols() {
        builder.symbol(name, pointer);
    }
    let mut module = JITModule::new(builder);
    let layout = Layout::of(function);
    let mut context = module.make_context();
    context.func.signature.params.push(AbiParam::new(types::I64));
    context.func.signature.returns.push(AbiParam::new(types::I32));
    let mut builder_context = FunctionBuilderContext::new();
    {
        let mut b = ClifBuilder::new(&mut context.func, &mut builder_context);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let frame = b.block_params(entry)[0];
        let flags = cranelift_codegen::ir::MemFlags::trusted();
        let slots = b.ins().load(types::I64, flags, frame, SLOTS_AT);
        let params = b.ins().load(types::I64, flags, frame, PARAMS_AT);
        let results = b.ins().load(types::I64, flags, frame, RESULTS_AT);
        let rounded = b.ins().load(types::I64, flags, frame, ROUNDED_AT);
        let rngs = b.ins().load(types::I64, flags, frame, RNGS_AT);
        let tape = b.ins().load(types::I64, flags, frame, TAPE_AT);
        let narrow = b.ins().load(types::I64, flags, frame, NARROW_AT);
        let failed = b.ins().iadd_imm(frame, FAILED_AT);
        let exit_error = b.create_block();
        let mut translator = translate::Translator {
            source: function,
            b,
            module: &mut module,
            layout: &layout,
            funcs: HashMap::new(),
            scalars: HashMap::new(),
            views: HashMap::new(),
            rounded_so_far: HashSet::new(),
            slots,
            results,
            params,
            rounded,
            rngs,
            tape,
            narrow,
            failed,
            exit_error,
        };
        for (param, place) in function.body.params.iter().zip(&layout.params) {
            let ty = function.ty(*param).unwrap_or(Type::Real);
            match (place, ty) {
                (Place::Slot(offset), Type::Real | Type::Int | Type::Bool) => {
                    let address = translator.slot_address(*offset);
                    let value = translator.load_scalar(ty, address);
                    translator.scalars.insert(*param, value);
                }
                (Place::Param(offset), Type::Real) => {
                    let address = translator.b.ins().iadd_imm(params, (*offset * 8) as i64);
                    let value = translator.load_scalar(ty, address);
                    translator.scalars.insert(*param, value);
                }
                // Nothing writes a parameter: its vector is read where it lies, as data is.
                (Place::Param(offset), _) => {
                    let address = translator.b.ins().iadd_imm(params, (*offset * 8) as i64);
                    translator.views.insert(*param, address);
                }
                _ => {}
            }
        }
        translator.block(&function.body)?;
        for (result, place) in function.body.results.iter().zip(&layout.results) {
            let ty = function.ty(*result).unwrap_or(Type::Real);
            translator.write_result(*result, ty, *place)?;
        }
        let zero = translator.b.ins().iconst(types::I32, 0);
        translator.b.ins().return_(&[zero]);
        translator.b.switch_to_block(exit_error);
        let one = translator.b.ins().iconst(types::I32, 1);
        translator.b.ins().return_(&[one]);
        translator.b.seal_all_blocks();
        translator.b.finalize();
    }
    let clif = context.func.display().to_string();
    let fail = |e: &dyn std::fmt::Display| IrError { message: format!("code generation failed: {e}") };
    let id = module.declare_function(&function.name, Linkage::Export, &context.func.signature).map_err(|e| fail(&e))?;
    module.define_function(id, &mut context).map_err(|e| fail(&e))?;
    module.clear_context(&mut context);
    module.finalize_definitions().map_err(|e| fail(&e))?;
    let pointer = module.get_finalized_function(id);
    // SAFETY: the function was just compiled with the signature `fn(*mut Frame) -> i32` under
    // the platform's C calling convention, and its code lives as long as `_code`.
    let entry = unsafe { std::mem::transmute::<*const u8, extern "C" fn(*mut Frame) -> i32>(pointer) };
    let result_types: Vec<Type> = function.body.results.iter().filter_map(|r| function.ty(*r)).collect();
    Ok(Compiled {
        entry,
        param_types: function.body.params.iter().filter_map(|p| function.ty(*p)).collect(),
        real_results: consecutive_reals(&layout.results, &result_types),
        id: COMPILED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        result_types,
        layout,
        _code: Arc::new(Code(Some(module))),
        clif,
    })
}

/// The slot range that results in `places` of `types` fill, if they are all reals, vectors or
/// matrices, each right after the one before.
fn consecutive_reals(places: &[Place], types: &[Type]) -> Option<std::ops::Range<usize>> {
    let mut range: Option<std::ops::Range<usize>> = None;
    for (place, ty) in places.iter().zip(types) {
        let (Place::Slot(offset), Type::Real | Type::Vec(_) | Type::Mat(..)) = (place, ty) else { return None };
        range = match range {
            None => Some(*offset..offset + ty.elements()),
            Some(range) if range.end == *offset => Some(range.start..offset + ty.elements()),
            Some(_) => return None,
        };
    }
    range
}

impl translate::Translator<'_, '_> {
    fn write_result(&mut self, result: Value, ty: Type, place: Place) -> Result<(), IrError> {
        match (place, ty) {
            (Place::Slot(offset), Type::Real | Type::Int | Type::Bool) => {
                let value =
                    self.scalars.get(&result).copied().ok_or(IrError { message: format!("{result} unknown") })?;
                let address = self.slot_address(offset);
                self.store_scalar(ty, value, address);
                Ok(())
            }
            // Computed in its place (see `share_top_level_slots`).
            (Place::Slot(offset), _) if self.layout.slot.get(&result) == Some(&offset) => Ok(()),
            (Place::Slot(offset), _) => {
                let dst = self.slot_address(offset);
                self.copy_value_to(result, ty, dst)
            }
            (Place::Rng(index), _) => {
                let dst = self.b.ins().iadd_imm(self.rngs, (index * std::mem::size_of::<Rng>()) as i64);
                self.copy_value_to(result, ty, dst)
            }
            (Place::Param(_), _) => Err(IrError { message: format!("result {result} placed among the parameters") }),
        }
    }
}

impl Compiled {
    /// Memory for calling this function (one per thread).
    pub fn scratch(&self) -> Scratch {
        // Each thread has its own scratch: keep them off each other's cache lines.
        let slots = ppl_runtime::memory::zeros_apart(self.layout.slots_len);
        let rngs = ppl_runtime::memory::filled_apart(Rng::new(0, 0), self.layout.rngs_len);
        Scratch { slots, rngs, tape: Vec::new(), owner: self.id }
    }

    /// Sets the stream parameter at position `param` to `Rng::new(seed, stream)`, in place.
    pub fn set_rng(&self, scratch: &mut Scratch, param: usize, seed: u64, stream: u64) {
        if let Some(Place::Rng(index)) = self.layout.params.get(param) {
            if let Some(slot) = scratch.rngs.get_mut(*index) {
                slot.restart(seed, stream);
            }
        }
    }

    /// Sets the int parameter at position `param` to `value`.
    pub fn set_int(&self, scratch: &mut Scratch, param: usize, value: i64) {
        if let Some(Place::Slot(offset)) = self.layout.params.get(param) {
            if let Some(slot) = scratch.slots.get_mut(*offset) {
                *slot = f64::from_bits(value as u64);
            }
        }
    }

    /// Calls the function on the flat real parameters `params` (the function's leading reals,
    /// vectors and matrices, in order, read in place) and the other arguments already in
    /// `scratch`; false if it failed, or if `params` is too short (or its rounded copy is not
    /// as long as its values).
    pub fn call<'p>(&self, scratch: &mut Scratch, params: impl Into<FlatParams<'p>>) -> bool {
        self.call_with(scratch, params.into(), None, false)
    }

    /// [`Compiled::call`] with the results written into `results`, flattened (matrices
    /// row-major), instead of the slots: the caller's memory, copied into nothing. False (and
    /// nothing called) unless every result is a real, vector or matrix and `results` holds
    /// exactly them.
    pub fn call_into<'p>(&self, scratch: &mut Scratch, params: impl Into<FlatParams<'p>>, results: &mut [f64]) -> bool {
        self.real_results.as_ref().is_some_and(|range| range.start == 0 && range.end == results.len())
            && self.call_with(scratch, params.into(), Some(results), false)
    }

    /// [`Compiled::call_into`], with each result that a single-precision product computes and
    /// nothing else reads (`ir::precision::narrowable_results`: a network's weight gradients)
    /// left in f32 as the product summed it, two to a word at the start of its place
    /// (`ppl_runtime::narrow_view`), rather than widened.
    pub fn call_into_narrowing<'p>(
        &self,
        scratch: &mut Scratch,
        params: impl Into<FlatParams<'p>>,
        results: &mut [f64],
    ) -> bool {
        self.real_results.as_ref().is_some_and(|range| range.start == 0 && range.end == results.len())
            && self.call_with(scratch, params.into(), Some(results), true)
    }

    fn call_with(&self, scratch: &mut Scratch, params: FlatParams, results: Option<&mut [f64]>, narrow: bool) -> bool {
        // Compiled code writes wherever its layout says, and reads as many parameters as it
        // has: only memory sized for it.
        let fits = |results: &[f64]| results.len() >= self.layout.results_len;
        let rounded_fits = params.rounded.is_none_or(|rounded| rounded.len() == params.values.len());
        if scratch.owner != self.id
            || params.values.len() < self.layout.params_len
            || !rounded_fits
            || !results.as_deref().is_none_or(fits)
        {
            return false;
        }
        scratch.tape.clear();
        let slots = scratch.slots.as_mut_ptr();
        let mut frame = Frame {
            slots,
            results: results.map_or(slots, |results| results.as_mut_ptr()),
            params: params.values.as_ptr(),
            rounded: params.rounded.map_or(std::ptr::null(), <[f32]>::as_ptr),
            rngs: scratch.rngs.as_mut_ptr(),
            tape: &mut scratch.tape,
            narrow: if narrow { 8 } else { 0 },
            failed: 0,
            word: 0,
        };
        (self.entry)(&mut frame) == 0
    }

    /// Result `index` (a real, vector or matrix) as the slots that hold it, without copying;
    /// empty for a result of another type.
    pub fn result_slice<'s>(&self, scratch: &'s Scratch, index: usize) -> &'s [f64] {
        match (self.layout.results.get(index), self.result_types.get(index)) {
            (Some(Place::Slot(offset)), Some(ty @ (Type::Real | Type::Vec(_) | Type::Mat(..)))) => {
                scratch.slots.get(*offset..offset + ty.elements()).unwrap_or(&[])
            }
            _ => &[],
        }
    }

    /// Every result of the last call, flattened (matrices row-major), if all are reals, vectors
    /// and matrices: a view of the slots, without copying.
    pub fn real_results<'s>(&self, scratch: &'s Scratch) -> Option<&'s [f64]> {
        scratch.slots.get(self.real_results.clone()?)
    }

    /// Every result of the last call, as run-time values.
    pub fn results(&self, scratch: &Scratch) -> Option<Vec<RuntimeValue>> {
        self.layout.results.iter().zip(&self.result_types).map(|(place, ty)| read(scratch, *place, *ty)).collect()
    }

    /// Runs the function; `None` if it failed (rerun it in the interpreter to learn why).
    pub fn run(&self, scratch: &mut Scratch, args: &[RuntimeValue]) -> Option<Vec<RuntimeValue>> {
        if args.len() != self.param_types.len() {
            return None;
        }
        let mut params = Vec::with_capacity(self.layout.params_len);
        for ((arg, place), ty) in args.iter().zip(&self.layout.params).zip(&self.param_types) {
            match (place, arg) {
                (Place::Param(_), RuntimeValue::Real(x)) => params.push(*x),
                (Place::Param(_), RuntimeValue::Int(n)) if *ty == Type::Real => params.push(*n as f64),
                (Place::Param(_), RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. }) => {
                    params.extend_from_slice(data)
                }
                (Place::Param(_), _) => return None,
                _ => write(scratch, *place, *ty, arg)?,
            }
        }
        if !self.call(scratch, &params[..]) {
            return None;
        }
        self.results(scratch)
    }
}

fn write(scratch: &mut Scratch, place: Place, ty: Type, value: &RuntimeValue) -> Option<()> {
    match (place, value) {
        (Place::Rng(index), RuntimeValue::Rng(rng)) => *scratch.rngs.get_mut(index)? = (**rng).clone(),
        (Place::Slot(offset), value) => {
            let bits = match (ty, value) {
                (Type::Real, RuntimeValue::Real(x)) => *x,
                (Type::Real, RuntimeValue::Int(n)) => *n as f64,
                (Type::Int, RuntimeValue::Int(n)) => f64::from_bits(*n as u64),
                (Type::Bool, RuntimeValue::Bool(b)) => f64::from_bits(u64::from(*b)),
                (_, RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. }) => {
                    scratch.slots.get_mut(offset..offset + data.len())?.copy_from_slice(data);
                    return Some(());
                }
                _ => return None,
            };
            *scratch.slots.get_mut(offset)? = bits;
        }
        _ => return None,
    }
    Some(())
}

fn read(scratch: &Scratch, place: Place, ty: Type) -> Option<RuntimeValue> {
    Some(match (place, ty) {
        (Place::Rng(index), _) => RuntimeValue::Rng(Box::new(scratch.rngs.get(index)?.clone())),
        (Place::Slot(offset), Type::Real) => RuntimeValue::Real(*scratch.slots.get(offset)?),
        (Place::Slot(offset), Type::Int) => RuntimeValue::Int(scratch.slots.get(offset)?.to_bits() as i64),
        (Place::Slot(offset), Type::Bool) => RuntimeValue::Bool(scratch.slots.get(offset)?.to_bits() != 0),
        (Place::Slot(offset), Type::Vec(n)) => {
            RuntimeValue::Vec(scratch.slots.get(offset..offset + n as usize)?.to_vec())
        }
        (Place::Slot(offset), Type::Mat(m, n)) => RuntimeValue::Mat {
            rows: m as usize,
            cols: n as usize,
            data: scratch.slots.get(offset..offset + m as usize * n as usize)?.to_vec(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Op;

    /// A bias added to each row of a batch is added over the batch's product, which nothing
    /// reads afterwards, and a top-level loop's results are left where the loop carried them:
    /// neither copies a `B × n` matrix.
    #[test]
    fn accumulations_and_loop_results_take_over_the_places_they_replace() {
        let source = "data rows: mat[6, 3] = [[1.0, 2.0, 0.5], [0.1, 0.2, 0.3], [3.0, 1.0, 2.0], \
             [0.5, 0.5, 0.5], [1.5, 2.5, 0.5], [2.0, 0.0, 1.0]];\n\
             param w: mat[5, 3] = uniform_init(0.5);\nparam c: vec[5] = uniform_init(0.5);\n\
             fn row(x: vec[3]) { E { z ~ normal(0.0, 1.0); sum(tanh(w @ x + c)) * z } }\n\
             print grad(mean_over(rows, row, batch: 4));\n";
        let analysis = crate::check_source("t.ppl", source);
        assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(crate::diagnostics::ColorChoice::Never));
        let session = crate::run::Session::new(&analysis, crate::run::RunOptions::default()).expect("a session");
        let objectives = session.compile_objectives().expect("compiles");
        let function = &objectives[0].1.reverse;
        let layout = Layout::of(function);
        let insts = &function.body.insts;
        let read_after = |value: Value, index: usize| {
            function.body.results.contains(&value)
                || insts[index + 1..].iter().any(|inst| crate::ir::reads(inst).contains(&value))
        };
        let (mut accumulations, mut loop_results) = (0, 0);
        for (index, inst) in insts.iter().enumerate() {
            match &inst.op {
                Op::AddOuter { acc, .. } if layout.slot.contains_key(acc) && !read_after(*acc, index) => {
                    assert_eq!(layout.slot.get(&inst.results[0]), layout.slot.get(acc), "{function}");
                    accumulations += 1;
                }
                Op::For { body, .. } => {
                    for (result, param) in inst.results.iter().zip(&body.params[1..]) {
                        let carried = matches!(function.ty(*result), Some(Type::Vec(_) | Type::Mat(..)));
                        if carried && !function.body.results.contains(result) {
                            assert!(layout.same_place(*result, *param), "{result} of\n{function}");
                            loop_results += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        assert!(accumulations > 0 && loop_results > 0, "{accumulations}, {loop_results} in\n{function}");
    }

    /// An accumulation over a detached data matrix, which compiled code reads where the data lie
    /// (a view: its slot is never written), computes in a place of its own rather than over
    /// that unwritten slot: in a run of its own and in a tiled run.
    #[test]
    fn an_accumulation_over_a_view_of_data_adds_to_the_data() {
        use crate::ir::{BinaryOp, FunctionBuilder, Tensor, UnaryOp};
        for rows in [4_u32, 64] {
            let (mut b, params) = FunctionBuilder::new("acc", &[Type::Vec(rows), Type::Vec(300)]);
            let values: Vec<f64> = (0..rows * 300).map(|k| f64::from(k % 17) * 0.5).collect();
            let tensor = Tensor { name: "m".into(), ty: Type::Mat(rows, 300), values: std::sync::Arc::new(values) };
            let data = b.push1(Op::Data(tensor)).expect("data");
            let detached = b.unary(UnaryOp::Detach, data).expect("detach");
            let sum = b.push1(Op::AddOuter { acc: detached, a: params[0], b: params[1] }).expect("add_outer");
            let two = b.real(2.0).expect("two");
            let doubled = b.binary(BinaryOp::Mul, sum, two).expect("mul");
            let function = b.finish(vec![doubled]).expect("finish");
            let args = vec![
                RuntimeValue::Vec((0..rows).map(|k| f64::from(k) + 1.0).collect()),
                RuntimeValue::Vec((0..300).map(|k| f64::from(k) * 0.25).collect()),
            ];
            let expected = crate::interp::run(&function, args.clone()).expect("the interpreter runs it");
            let compiled = compile(&function).expect("compiles to native code");
            let actual = compiled.run(&mut compiled.scratch(), &args).expect("the compiled function runs it");
            assert!(format!("{expected:?}") == format!("{actual:?}"), "{rows} rows: the compiled result differs");
        }
    }

    /// A decoder's Bernoulli likelihood over a minibatch of 64 rows of 300 pixels, with a hidden
    /// layer of 300, its ELBO's gradient: runs of elementwise operations over `64 × 300` matrices
    /// (a bias added to each row, an activation, softplus and sigmoid, the adjoint's products),
    /// three rows to a tile, the last tile one row.
    fn likelihood_of_a_minibatch() -> String {
        let pixel = |i: usize, j: usize| if (i * 7 + j * 13) % 5 < 2 { "1.0" } else { "0.0" };
        let rows: Vec<String> =
            (0..70).map(|i| format!("[{}]", (0..300).map(|j| pixel(i, j)).collect::<Vec<_>>().join(", "))).collect();
        format!(
            "data rows: mat[70, 300] = [{}];\n\
             param v: mat[300, 4] = uniform_init(0.5);\n\
             param b: vec[300] = uniform_init(0.5);\n\
             param w: mat[300, 300] = uniform_init(0.05);\n\
             param c: vec[300] = uniform_init(0.5);\n\
             param e: mat[4, 300] = uniform_init(0.05);\n\
             gen decoder() {{ z ~ mv_normal_diag(zeros(4), ones(4)); \
             x ~ bernoulli_logit(w @ leaky_relu(v @ z + b) + c); }}\n\
             gen encoder(x: vec[300]) {{ z ~ mv_normal_diag(e @ x, ones(4)); }}\n\
             fn row(x: vec[300]) {{ elbo(decoder(), encoder(x), {{ x: x }}) }}\n\
             print grad(mean_over(rows, row, batch: 64));\n",
            rows.join(", ")
        )
    }

    /// The run computes in tile buffers what only it reads, and gives the interpreter's bits:
    /// in f64 and with products in f32, on several streams. In f32, products leave results
    /// that runs alone read in f32: widened into a bias's sum, or into a tile buffer.
    #[test]
    fn elementwise_runs_compute_tile_by_tile_with_the_interpreters_bits() {
        let source = likelihood_of_a_minibatch();
        let analysis = crate::check_source("t.ppl", &source);
        assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(crate::diagnostics::ColorChoice::Never));
        for precision in [ppl_runtime::Precision::Double, ppl_runtime::Precision::Single] {
            let options = crate::run::RunOptions { precision: Some(precision), ..crate::run::RunOptions::default() };
            let session = crate::run::Session::new(&analysis, options).expect("a session");
            let params: Vec<RuntimeValue> = session.params().map(|(_, value)| value.clone()).collect();
            let objectives = session.compile_objectives().expect("compiles");
            let function = &objectives[0].1.reverse;
            let layout = Layout::of(function);
            let tiled = layout.tiled.values().find(|run| (run.rows, run.cols) == (64, 300));
            let Some(tiled) = tiled else { panic!("no tiled run over 64 × 300 matrices in\n{function}") };
            assert_eq!(tiled.tile_rows, 3);
            assert!(tiled.local.len() >= 3, "{tiled:?} in\n{function}");
            assert!(tiled.local.keys().all(|value| !layout.slot.contains_key(value)), "{tiled:?}");
            if precision == ppl_runtime::Precision::Single {
                let narrow: Vec<&Option<usize>> = layout.tiled.values().flat_map(|run| run.narrow.values()).collect();
                assert!(narrow.iter().any(|buffer| buffer.is_none()), "{narrow:?} in\n{function}");
                assert!(narrow.iter().any(|buffer| buffer.is_some()), "{narrow:?} in\n{function}");
                // No f64 matrix of the run is written over an f32 one it has yet to read.
                for (start, run) in &layout.tiled {
                    let results = function.body.insts[*start..start + run.len].iter().flat_map(|inst| &inst.results);
                    for result in results {
                        let shares = |narrow: &Value| layout.slot.get(narrow) == layout.slot.get(result);
                        assert!(!run.narrow.keys().any(shares), "{result} over an f32 input in\n{function}");
                    }
                }
            }
            let softplus = function.body.insts.iter().position(|inst| matches!(inst.op, Op::Kernel(..)));
            let in_run = |start: &usize| softplus.is_some_and(|k| (*start..*start + tiled.len).contains(&k));
            assert!(layout.tiled.keys().any(in_run), "the likelihood's softplus is not tiled in\n{function}");
            let compiled = compile(function).expect("compiles to native code");
            let mut scratch = compiled.scratch();
            for stream in 0..3 {
                let mut args = params.clone();
                args.push(RuntimeValue::Rng(Box::new(Rng::new(11, stream))));
                let expected = crate::interp::run(function, args.clone()).expect("the interpreter runs it");
                let actual = compiled.run(&mut scratch, &args).expect("the compiled function runs it");
                let bits = |values: &[RuntimeValue]| -> Vec<u64> {
                    let reals = |value: &RuntimeValue| match value {
                        RuntimeValue::Real(x) => vec![*x],
                        other => other.elements().map(<[f64]>::to_vec).unwrap_or_default(),
                    };
                    values.iter().flat_map(reals).map(f64::to_bits).collect()
                };
                assert_eq!(bits(&expected), bits(&actual), "{precision:?}, stream {stream}");
            }
        }
    }
}
