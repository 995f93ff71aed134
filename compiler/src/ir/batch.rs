//! Batching (JAX's `vmap`): a loop whose iterations are independent examples — the rows of a
//! minibatch — becomes one program over all of them.
//!
//! `mean_over(data, f, batch: B)` lowers to a loop of `B` iterations, each reading its row,
//! splitting off its own random stream and adding its example's estimate to a sum. Run as it
//! stands, each iteration multiplies every shared weight matrix by one row's vector: `B`
//! matrix–vector products, each reading the whole matrix. This pass splits such a loop in two:
//!
//! - a *gathering* loop keeps what must run row by row — reading the row, splitting the row's
//!   stream, drawing its noise, anything with integers or its own control flow — and stacks each
//!   value the rest reads: a vector as a row of a matrix, a real as an element of a vector (a
//!   vector the row computes elementwise from its rows' vectors and shared values, and that only
//!   the rest reads, is computed on their stacks instead: one pass, not one and a copy per row);
//! - the rest runs once, on the stacks: a shared matrix times each row's vector becomes one
//!   matrix–matrix product (the `gemm` kernel), elementwise operations run on the stacks, a
//!   row's sum is a product with ones, and the loop's sums are sums over the batch. A check of
//!   every row's value (`sigma > 0`) checks the smallest (or largest) of them all.
//!
//! Differentiation then runs on the batched program, so reverse mode accumulates each shared
//! weight's gradient over the batch by matrix products too.
//!
//! Every row draws exactly the numbers it draws in the loop, and elementwise arithmetic gives
//! the same bits; only the summation order of products and row sums may differ. The pass
//! applies to loops with constant bounds whose carried values are streams, sums of reals, stacks
//! the iterations write element by element (a comprehension, an IWELBO's particle weights) or
//! left unchanged, and whose per-row values are reals and vectors; any other loop is left as it
//! is.
//! It runs on the expanded program, before differentiation, and must not change which numbers
//! are drawn, nor batch what does not fit [`MAX_BATCHED_ELEMENTS`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::function::{BinaryOp, Block, CompareOp, Function, Inst, Op, ReduceOp, Tensor, UnaryOp, Value};
use super::types::Type;
use crate::syntax::span::Span;

/// The most reals one batched value may hold (8 MB): a minibatch of 1,024 images of 784 pixels
/// fits; the 10,000 images of a test set run row by row rather than stack 63 MB per value.
pub const MAX_BATCHED_ELEMENTS: usize = 1 << 20;

/// Batches every loop of `function` that the pass applies to (see the module's comment), in
/// place; whether it batched any.
pub fn batch_loops(function: &mut Function) -> bool {
    let mut constants = HashMap::new();
    super::int_constants(&function.body, &mut constants);
    let types = std::mem::take(&mut function.value_types);
    let mut pass = Batching { types, constants, renamed: HashMap::new(), batched: false };
    pass.block(&mut function.body);
    function.value_types = pass.types;
    pass.batched
}

struct Batching {
    types: Vec<Type>,
    constants: HashMap<Value, i64>,
    /// Values that now stand for others: a loop's result that the loop left unchanged is its
    /// initial value.
    renamed: HashMap<Value, Value>,
    /// Whether some loop was batched.
    batched: bool,
}

impl Batching {
    fn fresh(&mut self, ty: Type) -> Value {
        super::fresh_value(&mut self.types, ty)
    }

    fn ty(&self, value: Value) -> Option<Type> {
        self.types.get(value.0 as usize).copied()
    }

    /// Batches the loops of `block`, innermost first. Each instruction reads through the
    /// renamings made so far, so that an enclosing loop sees what its body now computes.
    fn block(&mut self, block: &mut Block) {
        for mut inst in std::mem::take(&mut block.insts) {
            rename_inst(&mut inst, &self.renamed);
            for nested in inst.op.blocks_mut() {
                self.block(nested);
            }
            match self.batch_loop(&inst) {
                // The loop's unchanged carried values are now their initial ones, also in the
                // code taken out of its body.
                Some(batched) => {
                    self.batched = true;
                    block.insts.extend(batched.into_iter().map(|mut inst| {
                        rename_inst(&mut inst, &self.renamed);
                        inst
                    }));
                }
                None => block.insts.push(inst),
            }
        }
        block.results.iter_mut().for_each(|value| resolve(value, &self.renamed));
    }

    /// The instructions that replace `inst`, if it is a loop the pass applies to.
    fn batch_loop(&mut self, inst: &Inst) -> Option<Vec<Inst>> {
        let Op::For { lo, hi, init, body } = &inst.op else { return None };
        let (first, end) = (*self.constants.get(lo)?, *self.constants.get(hi)?);
        let rows = u32::try_from(end.checked_sub(first)?).ok().filter(|rows| *rows >= 2)?;
        let carried = carried(body, &self.types, &self.constants, first)?;
        let mut reads = HashMap::new();
        super::count_uses(body, &mut reads);
        let read_once = reads.into_iter().filter(|(_, count)| *count == 1).map(|(value, _)| value).collect();
        let mut batch = LoopBatch::new(self, rows, inst.span, read_once);
        batch.kind.insert(body.params[0], Kind::Gathered);
        for (k, how) in carried.iter().enumerate() {
            if let Carried::Stream = how {
                batch.kind.insert(body.params[k + 1], Kind::Gathered);
            }
        }
        // The updates of sums and stacks, which the batched code replaces.
        let summed: HashSet<usize> = carried
            .iter()
            .filter_map(|how| match how {
                Carried::Sum { add, .. } => Some(*add),
                Carried::Stacked { insert, .. } => Some(*insert),
                _ => None,
            })
            .collect();
        let (mut invariant, mut gathered) = (Vec::new(), Vec::new());
        for (position, inst) in body.insts.iter().enumerate() {
            if summed.contains(&position) {
                continue;
            }
            match batch.place(inst)? {
                Placed::Invariant => invariant.push(inst.clone()),
                Placed::Gathered => gathered.push(inst.clone()),
                Placed::Batched => {}
            }
        }
        let (mut sums, mut stacks) = (Vec::new(), Vec::new());
        for (k, how) in carried.iter().enumerate() {
            match how {
                Carried::Sum { term, .. } => {
                    let terms = batch.lift(*term, Type::Real)?;
                    let total = batch.emit(Op::Reduce(ReduceOp::Sum, terms), Type::Real);
                    let add = Op::Binary(BinaryOp::Add, init[k], total);
                    sums.push(Inst { results: vec![inst.results[k]], op: add, span: inst.span });
                }
                Carried::Stacked { value, .. } => {
                    // Every element (row) is written: the stack is as long as the loop.
                    let ty = batch.ty(*value)?;
                    if batch.batched_type(ty) != batch.ty(inst.results[k]) {
                        return None;
                    }
                    stacks.push((inst.results[k], batch.lift(*value, ty)?));
                }
                Carried::Unchanged | Carried::Stream => {}
            }
        }
        let gathering = batch.gathering_loop(inst, &carried, gathered)?;
        let mut out = invariant;
        out.append(&mut batch.constants);
        out.push(gathering);
        out.append(&mut batch.code);
        out.append(&mut sums);
        for (k, how) in carried.iter().enumerate() {
            if let Carried::Unchanged = how {
                self.renamed.insert(body.params[k + 1], init[k]);
                self.renamed.insert(inst.results[k], init[k]);
            }
        }
        self.renamed.extend(stacks);
        Some(out)
    }
}

/// How each of a loop's carried values changes from one iteration to the next, if the pass
/// applies; the loop starts at `first`.
fn carried(body: &Block, types: &[Type], constants: &HashMap<Value, i64>, first: i64) -> Option<Vec<Carried>> {
    let mut uses = HashMap::new();
    super::count_uses(body, &mut uses);
    let once = |value: &Value| uses.get(value) == Some(&1);
    let defined: HashMap<Value, usize> = body
        .insts
        .iter()
        .enumerate()
        .flat_map(|(position, inst)| inst.results.iter().map(move |result| (*result, position)))
        .collect();
    // Whether `index` is the iteration's number counted from 0: the loop's index less `first`.
    let iteration = body.params.first().copied();
    let counts_rows = |index: Value| match defined.get(&index).map(|position| &body.insts[*position].op) {
        _ if Some(index) == iteration => first == 0,
        Some(Op::Binary(BinaryOp::Sub, i, start)) => Some(*i) == iteration && constants.get(start) == Some(&first),
        _ => false,
    };
    body.results
        .iter()
        .zip(body.params.get(1..)?)
        .map(|(yielded, param)| match types.get(param.0 as usize)? {
            _ if yielded == param => Some(Carried::Unchanged),
            Type::Rng => Some(Carried::Stream),
            Type::Real if once(param) && once(yielded) => {
                let add = *defined.get(yielded)?;
                match body.insts[add].op {
                    Op::Binary(BinaryOp::Add, a, b) if a == *param && b != *param => {
                        Some(Carried::Sum { add, term: b })
                    }
                    Op::Binary(BinaryOp::Add, a, b) if b == *param && a != *param => {
                        Some(Carried::Sum { add, term: a })
                    }
                    _ => None,
                }
            }
            Type::Vec(_) | Type::Mat(..) if once(param) && once(yielded) => {
                let insert = *defined.get(yielded)?;
                match body.insts[insert].op {
                    Op::Insert { aggregate, index, value }
                        if aggregate == *param && value != *param && counts_rows(index) =>
                    {
                        Some(Carried::Stacked { insert, value })
                    }
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

/// A loop-carried value the pass knows how to batch.
enum Carried {
    /// Yielded as it came in: its value is its initial one throughout.
    Unchanged,
    /// A random stream, which the gathering loop carries from row to row as the loop did.
    Stream,
    /// `carried + term`, read nowhere else: the initial value plus the batch's sum of `term`.
    Sum { add: usize, term: Value },
    /// `carried` with element (row) `i` replaced by `value` in iteration `i`, read nowhere else:
    /// the stack of `value` (a comprehension, or an IWELBO's weights of its particles).
    Stacked { insert: usize, value: Value },
}

/// Where an instruction of the loop's body runs.
enum Placed {
    /// Reads nothing that differs between rows: runs once, before the gathering loop.
    Invariant,
    /// Runs row by row in the gathering loop.
    Gathered,
    /// Replaced by instructions over the whole batch (already emitted).
    Batched,
}

/// What differs between rows, by the value it is.
#[derive(Clone, Copy)]
enum Kind {
    /// One value per row, computed in the gathering loop.
    Gathered,
    /// One value per row, computed for all rows at once by the batched code (in `batched`).
    Batched,
    /// A bound that every row's value meets — the smallest (`Least`) or largest of them all —
    /// or whether they all pass a check; `whole` is its value, computed once.
    Whole { whole: Value, bound: Bound },
}

#[derive(Clone, Copy, PartialEq)]
enum Bound {
    /// The smallest value of every row's: checked from below (`> k`, `>= k`).
    Least,
    /// The largest: checked from above.
    Greatest,
    /// A condition that holds for every row; `culprit` is the row value it bounds (as `whole`
    /// of that value).
    Holds { row: Value, culprit: Value },
}

/// The batching of one loop: which values differ by row, and the code over the whole batch.
struct LoopBatch<'a> {
    pass: &'a mut Batching,
    rows: u32,
    span: Option<Span>,
    kind: HashMap<Value, Kind>,
    /// The batched counterpart of each per-row value that the batched code reads: a `vec[rows]`
    /// for a real, a `mat[rows, n]` for a `vec[n]`.
    batched: HashMap<Value, Value>,
    /// Values of the gathering loop that the batched code reads, with their stacks.
    stacked: Vec<(Value, Value)>,
    /// The loop body's values read exactly once.
    read_once: HashSet<Value>,
    /// Gathered vectors computed elementwise from other rows' vectors and shared values, and
    /// read once: by the batched code, which computes them from their operands' stacks
    /// instead of stacking them (see `row_values`).
    elementwise: HashMap<Value, Op>,
    /// Constant tensors (ones, the stacks' empty starts), defined before everything else.
    constants: Vec<Inst>,
    /// The code over the whole batch, in order.
    code: Vec<Inst>,
    ones: HashMap<u32, Value>,
}

impl<'a> LoopBatch<'a> {
    fn new(pass: &'a mut Batching, rows: u32, span: Option<Span>, read_once: HashSet<Value>) -> Self {
        LoopBatch {
            pass,
            rows,
            span,
            kind: HashMap::new(),
            batched: HashMap::new(),
            stacked: Vec::new(),
            read_once,
            elementwise: HashMap::new(),
            constants: Vec::new(),
            code: Vec::new(),
            ones: HashMap::new(),
        }
    }

    fn ty(&self, value: Value) -> Option<Type> {
        self.pass.ty(value)
    }

    /// The type of a value's stack over the batch, if it has one that fits.
    fn batched_type(&self, ty: Type) -> Option<Type> {
        let batched = match ty {
            Type::Real => Type::Vec(self.rows),
            Type::Vec(n) => Type::Mat(self.rows, n),
            _ => return None,
        };
        (batched.elements() <= MAX_BATCHED_ELEMENTS).then_some(batched)
    }

    fn emit(&mut self, op: Op, ty: Type) -> Value {
        let result = self.pass.fresh(ty);
        self.code.push(Inst { results: vec![result], op, span: self.span });
        result
    }

    /// Decides where `inst` runs; emits its batched form if it is batched. `None` if the loop
    /// cannot be batched.
    fn place(&mut self, inst: &Inst) -> Option<Placed> {
        if matches!(inst.op, Op::Save(_) | Op::Restore(_) | Op::Expect { .. } | Op::Branch { .. }) {
            return None;
        }
        let varying: Vec<Kind> = super::reads(inst).iter().filter_map(|value| self.kind.get(value).copied()).collect();
        if varying.is_empty() {
            return Some(Placed::Invariant);
        }
        let gatherable = varying.iter().all(|kind| matches!(kind, Kind::Gathered));
        // Row by row, only a matrix product is worth stacking its operands for: what reads only
        // gathered values (a row's data, its noise) costs the same there, and the checks of
        // data (that each pixel is 0 or 1) stay per row.
        if gatherable && !matches!(inst.op, Op::MatMul(..)) {
            return Some(self.gather(inst));
        }
        let start = self.code.len();
        match self.batch_inst(inst) {
            Some(()) => Some(Placed::Batched),
            None if gatherable => {
                self.code.truncate(start);
                Some(self.gather(inst))
            }
            None => None,
        }
    }

    fn gather(&mut self, inst: &Inst) -> Placed {
        for result in &inst.results {
            self.kind.insert(*result, Kind::Gathered);
        }
        if let [result] = inst.results[..] {
            if self.read_once.contains(&result) && self.computable_from_stacks(&inst.op, result) {
                self.elementwise.insert(result, inst.op.clone());
            }
        }
        Placed::Gathered
    }

    /// Whether `op`, computing the vector `result` row by row, is elementwise on vectors of
    /// rows (of its type) and shared numbers or vectors: the batched code then computes it as
    /// well from their stacks, one pass over the batch.
    fn computable_from_stacks(&self, op: &Op, result: Value) -> bool {
        let Some(ty @ Type::Vec(_)) = self.ty(result) else { return false };
        let fits = |value: &Value| match (self.ty(*value), self.kind.get(value)) {
            (Some(own), Some(Kind::Gathered)) => own == ty,
            (Some(own), None) => own == ty || matches!(own, Type::Real | Type::Int),
            _ => false,
        };
        match op {
            Op::Unary(unary, a) => !matches!(unary, UnaryOp::Not | UnaryOp::ToReal | UnaryOp::ToInt) && fits(a),
            Op::Binary(binary, a, b) => !matches!(binary, BinaryOp::And | BinaryOp::Or) && fits(a) && fits(b),
            _ => false,
        }
    }

    /// Emits the batched form of `inst`; `None` if there is none.
    fn batch_inst(&mut self, inst: &Inst) -> Option<()> {
        if let Op::Check { cond, culprit, message } = &inst.op {
            return self.check(inst, *cond, *culprit, message);
        }
        let [result] = inst.results[..] else { return None };
        let ty = self.ty(result)?;
        let batched = match &inst.op {
            op @ (Op::Unary(..) | Op::Binary(..)) => self.elementwise_op(op, ty)?,
            Op::WithTangent { value, tangent_of } => {
                let (value, tangent_of) = (self.lift(*value, ty)?, self.lift(*tangent_of, ty)?);
                self.emit(Op::WithTangent { value, tangent_of }, self.batched_type(ty)?)
            }
            Op::Select { cond, if_true, if_false } if !self.kind.contains_key(cond) => {
                let (if_true, if_false) = (self.lift(*if_true, ty)?, self.lift(*if_false, ty)?);
                self.emit(Op::Select { cond: *cond, if_true, if_false }, self.batched_type(ty)?)
            }
            Op::MatMul(a, b) => self.matmul(*a, *b, ty)?,
            Op::Reduce(ReduceOp::Sum, a) => {
                let Type::Vec(n) = self.ty(*a)? else { return None };
                let a = self.row_values(*a)?;
                let ones = self.ones(n);
                self.emit(Op::MatMul(a, ones), self.batched_type(Type::Real)?)
            }
            Op::Reduce(op @ (ReduceOp::Min | ReduceOp::Max), a) => {
                let a = self.row_values(*a)?;
                let whole = self.emit(Op::Reduce(*op, a), Type::Real);
                let bound = if *op == ReduceOp::Min { Bound::Least } else { Bound::Greatest };
                self.kind.insert(result, Kind::Whole { whole, bound });
                return Some(());
            }
            Op::Compare(op, a, b) => return self.compare(*op, *a, *b, result),
            Op::Build(parts) if ty == Type::Vec(parts.len() as u32) => {
                let columns = parts.iter().map(|part| self.lift(*part, Type::Real)).collect::<Option<Vec<_>>>()?;
                let by_column = self.emit(Op::Build(columns), Type::Mat(parts.len() as u32, self.rows));
                self.emit(Op::Transpose(by_column), self.batched_type(ty)?)
            }
            Op::Extract { aggregate, index } if !self.kind.contains_key(index) => {
                let Type::Vec(n) = self.ty(*aggregate)? else { return None };
                let by_row = self.row_values(*aggregate)?;
                let by_column = self.emit(Op::Transpose(by_row), Type::Mat(n, self.rows));
                self.emit(Op::Extract { aggregate: by_column, index: *index }, self.batched_type(ty)?)
            }
            Op::Slice { aggregate, start, len } => {
                let Type::Vec(n) = self.ty(*aggregate)? else { return None };
                let by_row = self.row_values(*aggregate)?;
                let by_column = self.emit(Op::Transpose(by_row), Type::Mat(n, self.rows));
                let sliced =
                    self.emit(Op::Slice { aggregate: by_column, start: *start, len: *len }, Type::Mat(*len, self.rows));
                self.emit(Op::Transpose(sliced), self.batched_type(ty)?)
            }
            Op::Place { value, start, total } => {
                let Type::Vec(n) = self.ty(*value)? else { return None };
                let by_row = self.row_values(*value)?;
                let by_column = self.emit(Op::Transpose(by_row), Type::Mat(n, self.rows));
                let placed = self
                    .emit(Op::Place { value: by_column, start: *start, total: *total }, Type::Mat(*total, self.rows));
                self.emit(Op::Transpose(placed), self.batched_type(ty)?)
            }
            _ => return None,
        };
        self.kind.insert(result, Kind::Batched);
        self.batched.insert(result, batched);
        Some(())
    }

    /// The batched form of an elementwise operation whose per-row result has type `ty`.
    fn elementwise_op(&mut self, op: &Op, ty: Type) -> Option<Value> {
        Some(match op {
            Op::Unary(op, a) if !matches!(op, UnaryOp::Not | UnaryOp::ToReal | UnaryOp::ToInt) => {
                let a = self.lift(*a, ty)?;
                self.emit(Op::Unary(*op, a), self.batched_type(ty)?)
            }
            Op::Binary(op, a, b) if !matches!(op, BinaryOp::And | BinaryOp::Or) => {
                let (a, b) = (self.operand(*a, ty)?, self.operand(*b, ty)?);
                self.emit(Op::Binary(*op, a, b), self.batched_type(ty)?)
            }
            _ => return None,
        })
    }

    /// A check of every row's value: of the bound that all of them meet.
    fn check(&mut self, inst: &Inst, cond: Value, culprit: Value, message: &str) -> Option<()> {
        let Some(Kind::Whole { whole: holds, bound: Bound::Holds { row, culprit: whole } }) =
            self.kind.get(&cond).copied()
        else {
            return None;
        };
        let culprit = match self.kind.get(&culprit).copied() {
            None => culprit,
            Some(Kind::Whole { whole, bound: Bound::Least | Bound::Greatest }) => whole,
            Some(_) if culprit == row => whole,
            Some(_) => return None,
        };
        self.code.push(Inst {
            results: Vec::new(),
            op: Op::Check { cond: holds, culprit, message: message.to_string() },
            span: inst.span,
        });
        Some(())
    }

    /// A product with a per-row vector: of a shared matrix with every row's vector at once.
    fn matmul(&mut self, a: Value, b: Value, ty: Type) -> Option<Value> {
        let out = self.batched_type(ty)?;
        let (a_rows, b_rows) = (self.kind.contains_key(&a), self.kind.contains_key(&b));
        Some(match (self.ty(a)?, self.ty(b)?, a_rows, b_rows) {
            // (W x_r)ᵀ for every row r: X Wᵀ.
            (Type::Mat(m, n), Type::Vec(_), false, true) => {
                let transposed = self.emit(Op::Transpose(a), Type::Mat(n, m));
                let b = self.row_values(b)?;
                self.emit(Op::MatMul(b, transposed), out)
            }
            (Type::Vec(_), Type::Mat(..), true, false) | (Type::Vec(_), Type::Vec(_), true, false) => {
                let a = self.row_values(a)?;
                self.emit(Op::MatMul(a, b), out)
            }
            (Type::Vec(_), Type::Vec(_), false, true) => {
                let b = self.row_values(b)?;
                self.emit(Op::MatMul(b, a), out)
            }
            (Type::Vec(n), Type::Vec(_), true, true) => {
                let (a, b) = (self.row_values(a)?, self.row_values(b)?);
                let products = self.emit(Op::Binary(BinaryOp::Mul, a, b), self.batched_type(Type::Vec(n))?);
                let ones = self.ones(n);
                self.emit(Op::MatMul(products, ones), out)
            }
            _ => return None,
        })
    }

    /// A comparison of every row's value with a bound shared by all rows, as a check states it:
    /// whether the smallest (largest) of them all is above (below) the bound.
    fn compare(&mut self, op: CompareOp, a: Value, b: Value, result: Value) -> Option<()> {
        let (row, bound, op) = match (self.kind.contains_key(&a), self.kind.contains_key(&b)) {
            (true, false) => (a, b, op),
            (false, true) => (b, a, mirrored(op)),
            _ => return None,
        };
        let from_below = match op {
            CompareOp::Gt | CompareOp::Ge => true,
            CompareOp::Lt | CompareOp::Le => false,
            CompareOp::Eq | CompareOp::Ne => return None,
        };
        let whole = match self.kind.get(&row).copied()? {
            Kind::Whole { whole, bound: Bound::Least } if from_below => whole,
            Kind::Whole { whole, bound: Bound::Greatest } if !from_below => whole,
            Kind::Whole { .. } => return None,
            Kind::Gathered | Kind::Batched if self.ty(row)? == Type::Real => {
                // A check decides, it is not differentiated: the extreme of the values, detached
                // (a scale computed from the parameters has a tangent; the extreme has none).
                let values = self.row_values(row)?;
                let values = self.emit(Op::Unary(UnaryOp::Detach, values), self.batched_type(Type::Real)?);
                let extreme = if from_below { ReduceOp::Min } else { ReduceOp::Max };
                self.emit(Op::Reduce(extreme, values), Type::Real)
            }
            Kind::Gathered | Kind::Batched => return None,
        };
        let holds = self.emit(Op::Compare(op, whole, bound), Type::Bool);
        self.kind.insert(result, Kind::Whole { whole: holds, bound: Bound::Holds { row, culprit: whole } });
        Some(())
    }

    /// An operand of an elementwise operation whose per-row result has type `ty`: a shared
    /// scalar as it is (operations broadcast it), anything else as a stack.
    fn operand(&mut self, value: Value, ty: Type) -> Option<Value> {
        match self.ty(value)? {
            Type::Real | Type::Int if !self.kind.contains_key(&value) => Some(value),
            _ => self.lift(value, ty),
        }
    }

    /// `value` as a stack of type `batched_type(ty)`: its per-row values, or a shared value
    /// repeated for every row.
    fn lift(&mut self, value: Value, ty: Type) -> Option<Value> {
        let own = self.ty(value)?;
        let per_row = self.kind.contains_key(&value);
        match (own, ty, per_row) {
            (own, ty, true) if own == ty => self.row_values(value),
            // A per-row real repeated along a vector: r ⊗ 1.
            (Type::Real, Type::Vec(n), true) => {
                let values = self.row_values(value)?;
                let ones = self.ones(n);
                Some(self.emit(Op::Outer(values, ones), self.batched_type(ty)?))
            }
            (Type::Vec(n), Type::Vec(m), false) if n == m => {
                let ones = self.ones(self.rows);
                Some(self.emit(Op::Outer(ones, value), self.batched_type(ty)?))
            }
            (Type::Real, Type::Real, false) => {
                Some(self.emit(Op::Build(vec![value; self.rows as usize]), self.batched_type(ty)?))
            }
            (Type::Real, Type::Vec(n), false) => {
                let row = self.emit(Op::Build(vec![value; n as usize]), Type::Vec(n));
                self.lift(row, ty)
            }
            _ => None,
        }
    }

    /// The stack of a per-row value: its batched form, or (for a value computed in the
    /// gathering loop) the stack that loop fills, or its elementwise operation on the stacks of
    /// its operands.
    fn row_values(&mut self, value: Value) -> Option<Value> {
        if let Some(batched) = self.batched.get(&value) {
            return Some(*batched);
        }
        if !matches!(self.kind.get(&value), Some(Kind::Gathered)) {
            return None;
        }
        // Computed from its operands' stacks rather than stacked row by row: a row's `1 - 2x`
        // of its pixels costs one pass over the batch, not a pass and a copy per row (and the
        // gathering loop, where nothing else reads it, no longer computes it).
        if let Some(op) = self.elementwise.remove(&value) {
            let batched = self.elementwise_op(&op, self.ty(value)?)?;
            self.batched.insert(value, batched);
            return Some(batched);
        }
        let stack = self.pass.fresh(self.batched_type(self.ty(value)?)?);
        self.stacked.push((value, stack));
        self.batched.insert(value, stack);
        Some(stack)
    }

    /// A vector of `n` ones, held once per loop.
    fn ones(&mut self, n: u32) -> Value {
        if let Some(ones) = self.ones.get(&n) {
            return *ones;
        }
        let ty = Type::Vec(n);
        let tensor = Tensor { name: "ones".into(), ty, values: Arc::new(vec![1.0; n as usize]) };
        let ones = self.pass.fresh(ty);
        self.constants.push(Inst { results: vec![ones], op: Op::Data(tensor), span: self.span });
        self.ones.insert(n, ones);
        ones
    }

    /// The loop that runs the gathered instructions row by row, carrying the streams as the
    /// original loop did and filling a stack for each value the batched code reads.
    fn gathering_loop(&mut self, original: &Inst, carried: &[Carried], mut insts: Vec<Inst>) -> Option<Inst> {
        let Op::For { lo, hi, init, body } = &original.op else { return None };
        let index = body.params[0];
        let first = *self.pass.constants.get(lo)?;
        let span = original.span;
        let row = if first == 0 {
            index
        } else {
            let row = self.pass.fresh(Type::Int);
            insts.push(Inst { results: vec![row], op: Op::Binary(BinaryOp::Sub, index, *lo), span });
            row
        };
        let (mut new_init, mut params, mut yields, mut results) = (Vec::new(), vec![index], Vec::new(), Vec::new());
        for (k, how) in carried.iter().enumerate() {
            if let Carried::Stream = how {
                if !matches!(self.kind.get(&body.results[k]), Some(Kind::Gathered)) {
                    return None;
                }
                new_init.push(init[k]);
                params.push(body.params[k + 1]);
                yields.push(body.results[k]);
                results.push(original.results[k]);
            }
        }
        for (value, stack) in self.stacked.clone() {
            let ty = self.ty(stack)?;
            let empty = self.pass.fresh(ty);
            let tensor = Tensor { name: "zeros".into(), ty, values: Arc::new(vec![0.0; ty.elements()]) };
            self.constants.push(Inst { results: vec![empty], op: Op::Data(tensor), span });
            let (param, written) = (self.pass.fresh(ty), self.pass.fresh(ty));
            insts.push(Inst { results: vec![written], op: Op::Insert { aggregate: param, index: row, value }, span });
            new_init.push(empty);
            params.push(param);
            yields.push(written);
            results.push(stack);
        }
        let body = Block { params, insts, results: yields };
        Some(Inst { results, op: Op::For { lo: *lo, hi: *hi, init: new_init, body }, span })
    }
}

fn mirrored(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        other => other,
    }
}

/// Replaces every read of a renamed value in `inst` and its blocks.
fn rename_inst(inst: &mut Inst, renamed: &HashMap<Value, Value>) {
    if renamed.is_empty() {
        return;
    }
    inst.op.operands_mut().into_iter().for_each(|value| resolve(value, renamed));
    for nested in inst.op.blocks_mut() {
        nested.results.iter_mut().for_each(|value| resolve(value, renamed));
        for inner in &mut nested.insts {
            rename_inst(inner, renamed);
        }
    }
}

/// The value `value` now stands for, following chains of renamings.
fn resolve(value: &mut Value, renamed: &HashMap<Value, Value>) {
    while let Some(next) = renamed.get(value) {
        *value = *next;
    }
}
