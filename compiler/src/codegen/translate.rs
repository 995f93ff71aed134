//! IR to Cranelift IR, one function at a time.
//!
//! Reals, ints and bools are Cranelift values (`f64`, `i64`, `i8`); vectors and matrices live
//! in slots of the frame's scratch memory and random streams in its stream slots, one slot
//! per IR value (see [`Layout`]), so copying a value is copying its slot. `if` and `for`
//! become blocks whose parameters carry the scalars; carried vectors and streams are copied
//! into their loop parameters' slots at the end of each iteration. Anything that can fail (a
//! check, an index, integer overflow, a sampler's domain, the tape) branches to one exit that
//! returns 1; the caller then reruns that sample in the interpreter for the exact diagnostic.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir::{self as cl, condcodes::FloatCC, condcodes::IntCC, types, AbiParam, InstBuilder, MemFlags};
use cranelift_frontend::FunctionBuilder as ClifBuilder;
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};

use super::shims;
use super::Layout;
use crate::ir::verify::IrError;
use crate::ir::{
    BinaryOp, Block, CompareOp, Constant, Function, Inst, Kernel, Noise, Op, ReduceOp, Sampler, Type, UnaryOp, Value,
};

/// Vectors up to this many words are copied and combined elementwise by inline code; longer
/// ones by a call.
const INLINE_WORDS: i64 = 16;

fn error<T>(message: impl Into<String>) -> Result<T, IrError> {
    Err(IrError { message: message.into() })
}

/// The signature of each shim: parameter and return types.
fn shim_signature(name: &str) -> (Vec<cl::Type>, Vec<cl::Type>) {
    use types::{F64, I64};
    match name {
        "ppl_real_unary" => (vec![I64, F64], vec![F64]),
        "ppl_real_binary" => (vec![I64, F64, F64], vec![F64]),
        "ppl_vec_unary" | "ppl_vec_sign" => (vec![I64, I64, I64, I64], vec![]),
        "ppl_vec_binary" | "ppl_vec_arith" => (vec![I64, I64, I64, I64, I64, I64, I64], vec![]),
        "ppl_copy" | "ppl_round_to_single" | "ppl_widen" => (vec![I64, I64, I64], vec![]),
        "ppl_sum" | "ppl_logsumexp" | "ppl_minimum" | "ppl_maximum" => (vec![I64, I64], vec![F64]),
        "ppl_matmul" => (vec![I64, I64, I64, I64, I64, I64, I64], vec![F64]),
        "ppl_matmul_transposed" => (vec![I64, I64, I64, I64, I64, I64, I64, I64, I64], vec![]),
        "ppl_transpose" => (vec![I64, I64, I64, I64], vec![]),
        "ppl_outer" | "ppl_add_outer" | "ppl_place" => (vec![I64, I64, I64, I64, I64], vec![]),
        "ppl_rng_copy" => (vec![I64, I64], vec![]),
        "ppl_draw" => (vec![I64, I64, I64], vec![F64]),
        "ppl_split" => (vec![I64, I64, I64], vec![]),
        "ppl_stream_after" => (vec![I64, I64, I64], vec![]),
        "ppl_sample" => (vec![I64, I64, I64, F64, I64, I64, I64], vec![I64]),
        "ppl_gamma_sample_dshape" => (vec![F64, F64], vec![F64]),
        "ppl_softplus_sigmoid" => (vec![F64, I64], vec![F64]),
        "ppl_vec_softplus_sigmoid" | "ppl_vec_softplus_sigmoid_single" => (vec![I64, I64, I64, I64], vec![]),
        "ppl_vec_softplus" | "ppl_vec_floor" => (vec![I64, I64, I64], vec![]),
        "ppl_int_arith" => (vec![I64, I64, I64, I64], vec![I64]),
        "ppl_subsample" => (vec![I64, I64, I64, I64, I64], vec![I64]),
        "ppl_tape_push" => (vec![I64, I64, I64], vec![]),
        _ => (vec![I64, I64, I64], vec![I64]),
    }
}

pub struct Translator<'f, 'b> {
    pub source: &'f Function,
    pub b: ClifBuilder<'b>,
    pub module: &'f mut JITModule,
    pub layout: &'f Layout,
    pub funcs: HashMap<&'static str, cl::FuncRef>,
    pub scalars: HashMap<Value, cl::Value>,
    /// Vectors read where they lie rather than copied to their slots: rows of run-time data
    /// (a minibatch's images), which nothing writes, and their detached copies. Each address is
    /// computed where the value is defined, which dominates every read of it.
    pub views: HashMap<Value, cl::Value>,
    /// The operands whose f32 copy (`Layout::round_shared_operands`) a product has made.
    pub rounded_so_far: HashSet<Value>,
    pub slots: cl::Value,
    /// Where the slots of the results are (see `Layout::results_len`).
    pub results: cl::Value,
    /// The caller's flat parameters (see `Place::Param`).
    pub params: cl::Value,
    /// The same rounded to f32, or null (see `FlatParams::rounded`).
    pub rounded: cl::Value,
    /// The flag that leaves a narrowable result in f32, or 0 (see `Frame::narrow`).
    pub narrow: cl::Value,
    pub rngs: cl::Value,
    pub tape: cl::Value,
    pub failed: cl::Value,
    pub exit_error: cl::Block,
}

fn clif_type(ty: Type) -> Option<cl::Type> {
    match ty {
        Type::Real => Some(types::F64),
        Type::Int => Some(types::I64),
        Type::Bool => Some(types::I8),
        _ => None,
    }
}

/// How many words a value of type `ty` holds.
fn len(ty: Type) -> i64 {
    ty.elements() as i64
}

impl Translator<'_, '_> {
    pub(super) fn ty(&self, value: Value) -> Result<Type, IrError> {
        self.source.ty(value).ok_or(IrError { message: format!("{value} has no type") })
    }

    fn scalar(&self, value: Value) -> Result<cl::Value, IrError> {
        self.scalars.get(&value).copied().ok_or(IrError { message: format!("{value} is not a scalar in scope") })
    }

    pub(super) fn iconst(&mut self, n: i64) -> cl::Value {
        self.b.ins().iconst(types::I64, n)
    }

    /// The address of a value's slot (vectors and matrices) or stream slot.
    pub(super) fn address(&mut self, value: Value) -> Result<cl::Value, IrError> {
        if let Some(index) = self.layout.rng.get(&value) {
            let offset = (*index * std::mem::size_of::<ppl_runtime::Rng>()) as i64;
            return Ok(self.b.ins().iadd_imm(self.rngs, offset));
        }
        if let Some(data) = self.layout.data.get(&value) {
            // The layout holds the buffer, and the compiled function holds the layout.
            return Ok(self.iconst(data.as_ptr() as i64));
        }
        if let Some(view) = self.views.get(&value) {
            return Ok(*view);
        }
        match self.layout.slot.get(&value).copied() {
            Some(offset) => Ok(self.slot_address(offset)),
            None => error(format!("{value} has no slot")),
        }
    }

    /// The address of `value` rounded to f32 for a single-precision product, or null for the
    /// product to round it itself: a parameter's rounded copy, or the copy the first of the
    /// products sharing `value` makes here (`Layout::round_shared_operands`), if `product` is
    /// one of them: a product in a loop may run any number of times, so never reads it.
    fn rounded_operand(&mut self, value: Value, product: Value) -> Result<cl::Value, IrError> {
        let shared = self.layout.rounded.get(&value).filter(|_| self.layout.top_level_products.contains(&product));
        let Some(offset) = shared.copied() else { return Ok(self.rounded_address(value)) };
        let copy = self.slot_address(offset);
        if self.rounded_so_far.insert(value) {
            let (source, len) = (self.address(value)?, self.iconst(len(self.ty(value)?)));
            self.call("ppl_round_to_single", &[source, copy, len])?;
        }
        Ok(copy)
    }

    /// Where the caller's rounded copy of `value` is, if it is a parameter read in place, else
    /// null (as it is when the caller keeps no rounded copies).
    fn rounded_address(&mut self, value: Value) -> cl::Value {
        let mut params = self.source.body.params.iter().zip(&self.layout.params);
        let offset = params.find_map(|(param, place)| match place {
            super::Place::Param(offset) if *param == value => Some(*offset),
            _ => None,
        });
        let null = self.iconst(0);
        let Some(offset) = offset else { return null };
        let address = self.b.ins().iadd_imm(self.rounded, (offset * std::mem::size_of::<f32>()) as i64);
        self.b.ins().select(self.rounded, address, null)
    }

    /// The address of the slot at `offset`: among the results, or the other slots.
    pub fn slot_address(&mut self, offset: usize) -> cl::Value {
        match offset < self.layout.results_len {
            true => self.b.ins().iadd_imm(self.results, (offset * 8) as i64),
            false => self.b.ins().iadd_imm(self.slots, (offset * 8) as i64),
        }
    }

    /// Whether `result`, read from (or equal to) the run-time data `source` or a view of it, can
    /// be read where it lies: nothing writes data, and a function's result must be in its place.
    fn may_view(&self, source: Value, result: Value) -> bool {
        (self.layout.data.contains_key(&source) || self.views.contains_key(&source))
            && !self.source.body.results.contains(&result)
    }

    pub(super) fn call(&mut self, name: &'static str, args: &[cl::Value]) -> Result<Vec<cl::Value>, IrError> {
        let func = match self.funcs.get(name) {
            Some(func) => *func,
            None => {
                let (params, returns) = shim_signature(name);
                let mut signature = self.module.make_signature();
                signature.params.extend(params.into_iter().map(AbiParam::new));
                signature.returns.extend(returns.into_iter().map(AbiParam::new));
                let id = self
                    .module
                    .declare_function(name, Linkage::Import, &signature)
                    .map_err(|e| IrError { message: e.to_string() })?;
                let func = self.module.declare_func_in_func(id, self.b.func);
                self.funcs.insert(name, func);
                func
            }
        };
        let call = self.b.ins().call(func, args);
        Ok(self.b.inst_results(call).to_vec())
    }

    /// Copies `len` words from `src` to `dst`: inline for short vectors, a call otherwise.
    fn copy_words(&mut self, dst: cl::Value, src: cl::Value, len: i64) -> Result<(), IrError> {
        if len <= INLINE_WORDS {
            // Load everything first: the ranges may overlap.
            let words: Vec<cl::Value> =
                (0..len).map(|k| self.b.ins().load(types::F64, MemFlags::trusted(), src, (k * 8) as i32)).collect();
            for (k, word) in words.into_iter().enumerate() {
                self.b.ins().store(MemFlags::trusted(), word, dst, (k * 8) as i32);
            }
            return Ok(());
        }
        let n = self.iconst(len);
        self.call("ppl_copy", &[dst, src, n])?;
        Ok(())
    }

    fn call1(&mut self, name: &'static str, args: &[cl::Value]) -> Result<cl::Value, IrError> {
        self.call(name, args)?.first().copied().ok_or(IrError { message: format!("{name} returns nothing") })
    }

    /// Continues only if `ok` (an `i8`) is true; otherwise leaves through the error exit.
    fn guard(&mut self, ok: cl::Value) {
        let next = self.b.create_block();
        self.b.ins().brif(ok, next, &[], self.exit_error, &[]);
        self.b.switch_to_block(next);
    }

    /// Copies a vector or stream into the place of `target` (nothing for scalars, nor when
    /// both share one place).
    fn copy_into(&mut self, source: Value, target: Value) -> Result<(), IrError> {
        if self.layout.same_place(source, target) {
            return Ok(());
        }
        let ty = self.ty(source)?;
        match ty {
            Type::Rng => {
                let (dst, src) = (self.address(target)?, self.address(source)?);
                self.call("ppl_rng_copy", &[dst, src])?;
            }
            Type::Vec(_) | Type::Mat(..) => {
                let (dst, src) = (self.address(target)?, self.address(source)?);
                self.copy_words(dst, src, len(ty))?;
            }
            _ => {}
        }
        Ok(())
    }

    pub fn block(&mut self, block: &Block) -> Result<(), IrError> {
        let top_level = std::ptr::eq(block, &self.source.body);
        let mut rest = &block.insts[..];
        while let Some(inst) = rest.first() {
            let index = block.insts.len() - rest.len();
            if let Some(tiled) = self.layout.tiled.get(&index).filter(|_| top_level) {
                let len = tiled.len;
                self.tiled_run(&rest[..len], tiled)?;
                rest = &rest[len..];
                continue;
            }
            // Consecutive scalar saves (or restores) cross to the tape in one call.
            let run = super::tape_run(self.source, rest);
            if run > 1 {
                self.tape_run(&rest[..run], matches!(inst.op, Op::Save(_)))?;
                rest = &rest[run..];
            } else {
                self.inst(inst)?;
                rest = &rest[1..];
            }
        }
        Ok(())
    }

    /// A run of scalar saves: the values gathered in the layout's run buffer, then pushed at
    /// once; or a run of scalar restores: popped at once, the last pushed restored first.
    fn tape_run(&mut self, insts: &[Inst], saving: bool) -> Result<(), IrError> {
        let buffer = self.b.ins().iadd_imm(self.slots, (self.layout.tape_run * 8) as i64);
        let n = self.iconst(insts.len() as i64);
        if saving {
            for (k, inst) in insts.iter().enumerate() {
                let Op::Save(value) = inst.op else { return error("a save run holds a restore") };
                let (ty, scalar) = (self.ty(value)?, self.scalar(value)?);
                let address = self.b.ins().iadd_imm(buffer, (k * 8) as i64);
                self.store_scalar(ty, scalar, address);
            }
            self.call("ppl_tape_push", &[self.tape, buffer, n])?;
            return Ok(());
        }
        let status = self.call1("ppl_tape_pop", &[self.tape, buffer, n])?;
        let ok = self.b.ins().icmp_imm(IntCC::Equal, status, 0);
        self.guard(ok);
        for (k, inst) in insts.iter().enumerate() {
            let (Op::Restore(ty), Some(result)) = (&inst.op, inst.results.first()) else {
                return error("a restore run holds a save");
            };
            let address = self.b.ins().iadd_imm(buffer, ((insts.len() - 1 - k) * 8) as i64);
            let value = self.load_scalar(*ty, address);
            self.scalars.insert(*result, value);
        }
        Ok(())
    }

    fn inst(&mut self, inst: &Inst) -> Result<(), IrError> {
        let result = inst.results.first().copied();
        match &inst.op {
            Op::If { cond, then, otherwise } => return self.branch(inst, *cond, then, otherwise),
            Op::For { lo, hi, init, body } => return self.repeat(inst, *lo, *hi, init, body),
            Op::Expect { .. } | Op::Branch { .. } => return error("an expectation must be expanded before compiling"),
            _ => {}
        }
        let Some(result) = result else { return self.effect(&inst.op) };
        let ty = self.ty(result)?;
        let value: Option<cl::Value> = match &inst.op {
            Op::Const(Constant::Real(x)) => Some(self.b.ins().f64const(*x)),
            Op::Const(Constant::Int(n)) => Some(self.iconst(*n)),
            Op::Const(Constant::Bool(b)) => Some(self.b.ins().iconst(types::I8, i64::from(*b))),
            // Read where it lives (see `address`).
            Op::Data(_) => None,
            Op::Unary(op, a) => self.unary(*op, *a, result, ty)?,
            Op::Binary(op, a, b) => self.binary(*op, *a, *b, result, ty)?,
            Op::Compare(op, a, b) => Some(self.compare(*op, *a, *b)?),
            Op::Select { cond, if_true, if_false } => {
                let cond = self.scalar(*cond)?;
                if clif_type(ty).is_some() {
                    let (t, f) = (self.scalar(*if_true)?, self.scalar(*if_false)?);
                    Some(self.b.ins().select(cond, t, f))
                } else {
                    let (t, f) = (self.address(*if_true)?, self.address(*if_false)?);
                    let source = self.b.ins().select(cond, t, f);
                    let dst = self.address(result)?;
                    if ty == Type::Rng {
                        self.call("ppl_rng_copy", &[dst, source])?;
                    } else {
                        self.copy_words(dst, source, len(ty))?;
                    }
                    None
                }
            }
            Op::Build(parts) => {
                let dst = self.address(result)?;
                for (k, part) in parts.iter().enumerate() {
                    match self.ty(*part)? {
                        Type::Real => {
                            let x = self.scalar(*part)?;
                            self.b.ins().store(MemFlags::trusted(), x, dst, (k * 8) as i32);
                        }
                        row_type => {
                            let row = self.address(*part)?;
                            let n = len(row_type);
                            let at = self.b.ins().iadd_imm(dst, k as i64 * n * 8);
                            self.copy_words(at, row, n)?;
                        }
                    }
                }
                None
            }
            Op::Extract { aggregate, index } => {
                let aggregate_type = self.ty(*aggregate)?;
                let (rows, width) = match aggregate_type {
                    Type::Vec(n) => (i64::from(n), 1),
                    Type::Mat(m, n) => (i64::from(m), i64::from(n)),
                    other => return error(format!("extract from {other}")),
                };
                let index = self.scalar(*index)?;
                let in_bounds = self.b.ins().icmp_imm(IntCC::UnsignedLessThan, index, rows);
                self.guard(in_bounds);
                let base = self.address(*aggregate)?;
                let offset = self.b.ins().imul_imm(index, width * 8);
                let at = self.b.ins().iadd(base, offset);
                // An element of a vector is a scalar; a row of a matrix is a vector, even of one.
                if matches!(aggregate_type, Type::Vec(_)) {
                    Some(self.b.ins().load(types::F64, MemFlags::trusted(), at, 0))
                } else if self.may_view(*aggregate, result) {
                    self.views.insert(result, at);
                    None
                } else {
                    let dst = self.address(result)?;
                    self.copy_words(dst, at, width)?;
                    None
                }
            }
            Op::Insert { aggregate, index, value } => {
                let (rows, width) = match ty {
                    Type::Vec(n) => (i64::from(n), 1),
                    Type::Mat(m, n) => (i64::from(m), i64::from(n)),
                    other => return error(format!("insert into {other}")),
                };
                let index = self.scalar(*index)?;
                let in_bounds = self.b.ins().icmp_imm(IntCC::UnsignedLessThan, index, rows);
                self.guard(in_bounds);
                self.copy_into(*aggregate, result)?;
                let base = self.address(result)?;
                let offset = self.b.ins().imul_imm(index, width * 8);
                let at = self.b.ins().iadd(base, offset);
                if matches!(ty, Type::Vec(_)) {
                    let x = self.scalar(*value)?;
                    self.b.ins().store(MemFlags::trusted(), x, at, 0);
                } else {
                    let row = self.address(*value)?;
                    self.copy_words(at, row, width)?;
                }
                None
            }
            Op::Reduce(op, a) => {
                let src = self.address(*a)?;
                let n = self.iconst(len(self.ty(*a)?));
                let name = match op {
                    ReduceOp::Sum => "ppl_sum",
                    ReduceOp::LogSumExp => "ppl_logsumexp",
                    ReduceOp::Min => "ppl_minimum",
                    ReduceOp::Max => "ppl_maximum",
                };
                Some(self.call1(name, &[src, n])?)
            }
            Op::MatMul(a, b) => {
                let (ta, tb) = (self.ty(*a)?, self.ty(*b)?);
                let (kind, m, n, p) = match (ta, tb) {
                    (Type::Vec(n), Type::Vec(_)) => (0, 1, i64::from(n), 1),
                    (Type::Mat(m, n), Type::Vec(_)) => (1, i64::from(m), i64::from(n), 1),
                    (Type::Vec(n), Type::Mat(_, p)) => (2, 1, i64::from(n), i64::from(p)),
                    (Type::Mat(m, n), Type::Mat(_, p)) => (3, i64::from(m), i64::from(n), i64::from(p)),
                    (a, b) => return error(format!("product of {a} and {b}")),
                };
                let dst = if kind == 0 { self.iconst(0) } else { self.address(result)? };
                let (pa, pb) = (self.address(*a)?, self.address(*b)?);
                let args = [self.iconst(kind), dst, pa, pb, self.iconst(m), self.iconst(n), self.iconst(p)];
                let product = self.call1("ppl_matmul", &args)?;
                (kind == 0).then_some(product)
            }
            Op::MatMulTransposed { a, b, transposed, precision } => {
                let (Type::Mat(r, c), Type::Mat(s, t)) = (self.ty(*a)?, self.ty(*b)?) else {
                    return error("a transposed product of non-matrices");
                };
                let (m, n) = if transposed.a { (c, r) } else { (r, c) };
                let p = if transposed.b { s } else { t };
                let single = *precision == ppl_runtime::Precision::Single;
                let flags = i64::from(transposed.a) | i64::from(transposed.b) << 1 | i64::from(single) << 2;
                let (dst, pa, pb) = (self.address(result)?, self.address(*a)?, self.address(*b)?);
                let dims = [i64::from(m), i64::from(n), i64::from(p)].map(|d| self.iconst(d));
                let (a_rounded, b_rounded) = match single {
                    true => (self.rounded_operand(*a, result)?, self.rounded_operand(*b, result)?),
                    false => (self.iconst(0), self.iconst(0)),
                };
                let narrow = i64::from(single && self.layout.narrow_products.contains(&result)) << 3;
                let mut flags = self.iconst(flags | narrow);
                if single && self.layout.narrowable.contains(&result) {
                    flags = self.b.ins().bor(flags, self.narrow);
                }
                let args = [flags, dst, pa, pb, dims[0], dims[1], dims[2], a_rounded, b_rounded];
                self.call("ppl_matmul_transposed", &args)?;
                None
            }
            Op::Transpose(a) => {
                let Type::Mat(rows, cols) = self.ty(*a)? else { return error("transpose of a non-matrix") };
                let (dst, src) = (self.address(result)?, self.address(*a)?);
                let args = [dst, src, self.iconst(i64::from(rows)), self.iconst(i64::from(cols))];
                self.call("ppl_transpose", &args)?;
                None
            }
            Op::Slice { aggregate, start, .. } => {
                let width = match self.ty(*aggregate)? {
                    Type::Mat(_, n) => i64::from(n),
                    _ => 1,
                };
                let source = self.address(*aggregate)?;
                let from = self.b.ins().iadd_imm(source, i64::from(*start) * width * 8);
                let dst = self.address(result)?;
                self.copy_words(dst, from, len(ty))?;
                None
            }
            Op::Place { value, start, .. } => {
                let width = match ty {
                    Type::Mat(_, n) => i64::from(n),
                    _ => 1,
                };
                let (dst, source) = (self.address(result)?, self.address(*value)?);
                let offset = self.iconst(i64::from(*start) * width);
                let (part, total) = (self.iconst(len(self.ty(*value)?)), self.iconst(len(ty)));
                self.call("ppl_place", &[dst, source, offset, part, total])?;
                None
            }
            Op::Outer(a, b) => {
                let (Type::Vec(m), Type::Vec(n)) = (self.ty(*a)?, self.ty(*b)?) else {
                    return error("outer product of non-vectors");
                };
                let (dst, pa, pb) = (self.address(result)?, self.address(*a)?, self.address(*b)?);
                let args = [dst, pa, self.iconst(i64::from(m)), pb, self.iconst(i64::from(n))];
                self.call("ppl_outer", &args)?;
                None
            }
            Op::AddOuter { acc, a, b } => {
                let (Type::Vec(m), Type::Vec(n)) = (self.ty(*a)?, self.ty(*b)?) else {
                    return error("outer product of non-vectors");
                };
                self.copy_into(*acc, result)?;
                let (dst, pa, pb) = (self.address(result)?, self.address(*a)?, self.address(*b)?);
                let args = [dst, pa, self.iconst(i64::from(m)), pb, self.iconst(i64::from(n))];
                self.call("ppl_add_outer", &args)?;
                None
            }
            Op::WithTangent { value, .. } => {
                if clif_type(ty).is_some() {
                    Some(self.scalar(*value)?)
                } else {
                    self.copy_into(*value, result)?;
                    None
                }
            }
            Op::Draw { noise, rng } => {
                let (src, dst) = (self.address(*rng)?, self.address(inst.results[1])?);
                let kind = self.iconst(if *noise == Noise::Uniform { 0 } else { 1 });
                Some(self.call1("ppl_draw", &[kind, src, dst])?)
            }
            Op::Split { rng } => {
                let (src, left, right) = (self.address(*rng)?, self.address(result)?, self.address(inst.results[1])?);
                self.call("ppl_split", &[src, left, right])?;
                None
            }
            Op::StreamAfter { rng, offset } => {
                let (src, dst) = (self.address(*rng)?, self.address(result)?);
                let offset = self.scalar(*offset)?;
                self.call("ppl_stream_after", &[src, dst, offset])?;
                None
            }
            Op::Sample { sampler: Sampler::Subsample { population, size }, rng, .. } => {
                let (src, dst) = (self.address(*rng)?, self.address(inst.results[1])?);
                let rows = self.address(result)?;
                let (population, size) = (self.iconst(i64::from(*population)), self.iconst(i64::from(*size)));
                let status = self.call1("ppl_subsample", &[src, dst, rows, population, size])?;
                let ok = self.b.ins().icmp_imm(IntCC::Equal, status, 0);
                self.guard(ok);
                None
            }
            Op::Sample { sampler, args, rng } => {
                let (src, dst) = (self.address(*rng)?, self.address(inst.results[1])?);
                let (kind, arg, weights, count) = match sampler {
                    Sampler::Gamma | Sampler::Poisson | Sampler::Geometric => {
                        let kind = match sampler {
                            Sampler::Gamma => 0,
                            Sampler::Poisson => 1,
                            _ => 2,
                        };
                        let arg = self.scalar(args[0])?;
                        (kind, arg, self.iconst(0), self.iconst(0))
                    }
                    Sampler::Categorical => {
                        let weights = self.address(args[0])?;
                        let count = self.iconst(len(self.ty(args[0])?));
                        (3, self.b.ins().f64const(0.0), weights, count)
                    }
                    Sampler::Subsample { .. } => return error("a subsample is a vector"),
                    Sampler::Binomial => {
                        let trials = self.scalar(args[0])?;
                        let p =
                            self.scalar(args.get(1).copied().ok_or(IrError { message: "binomial without p".into() })?)?;
                        (4, p, self.iconst(0), trials)
                    }
                };
                let out = self.b.ins().iadd_imm(self.failed, super::WORD_AFTER_FAILED);
                let kind = self.iconst(kind);
                let status = self.call1("ppl_sample", &[kind, src, dst, arg, weights, count, out])?;
                let ok = self.b.ins().icmp_imm(IntCC::Equal, status, 0);
                self.guard(ok);
                let bits = self.b.ins().load(types::I64, MemFlags::trusted(), out, 0);
                Some(if *sampler == Sampler::Gamma {
                    self.b.ins().bitcast(types::F64, MemFlags::new(), bits)
                } else {
                    bits
                })
            }
            Op::Kernel(kernel @ (Kernel::SoftplusSigmoid | Kernel::SoftplusSigmoidSingle), args) => {
                let (&[x], &[_, sigmoid]) = (args.as_slice(), inst.results.as_slice()) else {
                    return error("softplus_sigmoid takes one value and gives two");
                };
                if let Type::Vec(_) | Type::Mat(..) = ty {
                    let (softplus_dst, sigmoid_dst) = (self.address(result)?, self.address(sigmoid)?);
                    let (src, n) = (self.address(x)?, self.iconst(len(ty)));
                    self.vector_softplus_sigmoid(*kernel, [softplus_dst, sigmoid_dst], src, n)?;
                    None
                } else {
                    let x = self.scalar(x)?;
                    let scratch = self.b.ins().iadd_imm(self.failed, super::WORD_AFTER_FAILED);
                    let softplus = self.call1("ppl_softplus_sigmoid", &[x, scratch])?;
                    let sigmoid_value = self.b.ins().load(types::F64, MemFlags::trusted(), scratch, 0);
                    self.scalars.insert(sigmoid, sigmoid_value);
                    Some(softplus)
                }
            }
            Op::Kernel(Kernel::GammaSampleDShape, args) => {
                let (x, shape) = (self.scalar(args[0])?, self.scalar(args[1])?);
                Some(self.call1("ppl_gamma_sample_dshape", &[x, shape])?)
            }
            Op::Restore(ty) => match clif_type(*ty) {
                Some(_) => {
                    let scratch = self.b.ins().iadd_imm(self.failed, super::WORD_AFTER_FAILED);
                    let one = self.iconst(1);
                    let status = self.call1("ppl_tape_pop", &[self.tape, scratch, one])?;
                    let ok = self.b.ins().icmp_imm(IntCC::Equal, status, 0);
                    self.guard(ok);
                    Some(self.load_scalar(*ty, scratch))
                }
                None => {
                    let dst = self.address(result)?;
                    let n = self.iconst(len(*ty));
                    let status = self.call1("ppl_tape_pop", &[self.tape, dst, n])?;
                    let ok = self.b.ins().icmp_imm(IntCC::Equal, status, 0);
                    self.guard(ok);
                    None
                }
            },
            op => return error(format!("cannot compile {op:?}")),
        };
        if let Some(value) = value {
            self.scalars.insert(result, value);
        }
        Ok(())
    }

    /// A scalar of type `ty` stored (as 8 bytes) at `address`.
    pub fn load_scalar(&mut self, ty: Type, address: cl::Value) -> cl::Value {
        let bits = self.b.ins().load(types::I64, MemFlags::trusted(), address, 0);
        match ty {
            Type::Real => self.b.ins().bitcast(types::F64, MemFlags::new(), bits),
            Type::Bool => self.b.ins().ireduce(types::I8, bits),
            _ => bits,
        }
    }

    /// Stores a scalar of type `ty` as 8 bytes at `address`.
    pub fn store_scalar(&mut self, ty: Type, value: cl::Value, address: cl::Value) {
        let bits = match ty {
            Type::Real => self.b.ins().bitcast(types::I64, MemFlags::new(), value),
            Type::Bool => self.b.ins().uextend(types::I64, value),
            _ => value,
        };
        self.b.ins().store(MemFlags::trusted(), bits, address, 0);
    }

    fn effect(&mut self, op: &Op) -> Result<(), IrError> {
        match op {
            Op::Check { cond, .. } => {
                let ok = self.scalar(*cond)?;
                self.guard(ok);
            }
            Op::Save(value) => {
                let ty = self.ty(*value)?;
                if clif_type(ty).is_some() {
                    let scalar = self.scalar(*value)?;
                    let scratch = self.b.ins().iadd_imm(self.failed, super::WORD_AFTER_FAILED);
                    self.store_scalar(ty, scalar, scratch);
                    let one = self.iconst(1);
                    self.call("ppl_tape_push", &[self.tape, scratch, one])?;
                } else {
                    let src = self.address(*value)?;
                    let n = self.iconst(len(ty));
                    self.call("ppl_tape_push", &[self.tape, src, n])?;
                }
            }
            op => return error(format!("{op:?} has no results")),
        }
        Ok(())
    }

    fn unary(&mut self, op: UnaryOp, a: Value, result: Value, ty: Type) -> Result<Option<cl::Value>, IrError> {
        let operand_type = self.ty(a)?;
        if let Type::Vec(_) | Type::Mat(..) = ty {
            let (dst, src) = (self.address(result)?, self.address(a)?);
            let n = len(ty);
            match op {
                // Exact: the bits themselves, copied, or read where they lie.
                UnaryOp::Detach if self.may_view(a, result) => {
                    self.views.insert(result, src);
                }
                UnaryOp::Detach => self.copy_words(dst, src, n)?,
                // Exact: the sign bit flipped or cleared, inline for short vectors (as for
                // scalars), by a loop the compiler vectorises for long ones.
                UnaryOp::Neg | UnaryOp::Abs if n <= INLINE_WORDS => {
                    for k in 0..n {
                        let offset = (k * 8) as i32;
                        let x = self.b.ins().load(types::F64, MemFlags::trusted(), src, offset);
                        let y = if op == UnaryOp::Neg { self.b.ins().fneg(x) } else { self.b.ins().fabs(x) };
                        self.b.ins().store(MemFlags::trusted(), y, dst, offset);
                    }
                }
                _ => {
                    let n = self.iconst(n);
                    self.vector_unary(op, dst, src, n)?;
                }
            }
            return Ok(None);
        }
        let x = self.scalar(a)?;
        Ok(Some(match (op, operand_type) {
            (UnaryOp::Not, _) => self.b.ins().bxor_imm(x, 1),
            (UnaryOp::ToReal, _) => self.b.ins().fcvt_from_sint(types::F64, x),
            (UnaryOp::ToInt, _) => self.b.ins().fcvt_to_sint_sat(types::I64, x),
            (UnaryOp::Neg, Type::Int) => {
                let (code, zero) = (self.iconst(3), self.iconst(0));
                let value = self.call1("ppl_int_arith", &[code, x, zero, self.failed])?;
                self.check_overflow();
                value
            }
            (UnaryOp::Neg, _) => self.b.ins().fneg(x),
            (UnaryOp::Abs, _) => self.b.ins().fabs(x),
            (UnaryOp::Sqrt, _) => self.b.ins().sqrt(x),
            (UnaryOp::Detach, _) => x,
            (op, _) => {
                let address = shims::unary_address(op).ok_or(IrError { message: format!("{op:?} of a real") })?;
                let address = self.iconst(address);
                self.call1("ppl_real_unary", &[address, x])?
            }
        }))
    }

    /// `dst = op(src)` over `n` (a run-time count) elements, by the shim that computes `op`.
    pub(super) fn vector_unary(
        &mut self,
        op: UnaryOp,
        dst: cl::Value,
        src: cl::Value,
        n: cl::Value,
    ) -> Result<(), IrError> {
        match op {
            UnaryOp::Neg | UnaryOp::Abs => {
                let code = self.iconst(i64::from(op == UnaryOp::Abs));
                self.call("ppl_vec_sign", &[code, dst, src, n])?;
            }
            UnaryOp::Softplus => {
                self.call("ppl_vec_softplus", &[dst, src, n])?;
            }
            UnaryOp::Floor => {
                self.call("ppl_vec_floor", &[dst, src, n])?;
            }
            _ => {
                let address = shims::unary_address(op).ok_or(IrError { message: format!("{op:?} of a vector") })?;
                let address = self.iconst(address);
                self.call("ppl_vec_unary", &[address, dst, src, n])?;
            }
        }
        Ok(())
    }

    /// `[softplus, sigmoid]` of `src` over `n` (a run-time count) elements, by the shim of the
    /// kernel's precision.
    pub(super) fn vector_softplus_sigmoid(
        &mut self,
        kernel: Kernel,
        [softplus, sigmoid]: [cl::Value; 2],
        src: cl::Value,
        n: cl::Value,
    ) -> Result<(), IrError> {
        let shim = match kernel {
            Kernel::SoftplusSigmoidSingle => "ppl_vec_softplus_sigmoid_single",
            _ => "ppl_vec_softplus_sigmoid",
        };
        self.call(shim, &[softplus, sigmoid, src, n])?;
        Ok(())
    }

    /// `dst = a op b` over `n` (a run-time count) elements, each operand a pointer and a stride
    /// ([`Translator::operand_pointer`]), by the shim that computes `op`.
    pub(super) fn vector_binary(
        &mut self,
        op: BinaryOp,
        dst: cl::Value,
        (pa, sa): (cl::Value, cl::Value),
        (pb, sb): (cl::Value, cl::Value),
        n: cl::Value,
    ) -> Result<(), IrError> {
        if let Some(code) = shims::arith_code(op) {
            let code = self.iconst(code);
            self.call("ppl_vec_arith", &[code, dst, pa, sa, pb, sb, n])?;
            return Ok(());
        }
        let address = shims::binary_address(op).ok_or(IrError { message: format!("{op:?} of vectors") })?;
        let address = self.iconst(address);
        self.call("ppl_vec_binary", &[address, dst, pa, sa, pb, sb, n])?;
        Ok(())
    }

    fn check_overflow(&mut self) {
        let flag = self.b.ins().load(types::I64, MemFlags::trusted(), self.failed, 0);
        let ok = self.b.ins().icmp_imm(IntCC::Equal, flag, 0);
        self.guard(ok);
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        a: Value,
        b: Value,
        result: Value,
        ty: Type,
    ) -> Result<Option<cl::Value>, IrError> {
        let (ta, tb) = (self.ty(a)?, self.ty(b)?);
        let exact = matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div);
        if let (Type::Vec(_) | Type::Mat(..), true) = (ty, exact && len(ty) <= INLINE_WORDS) {
            // IEEE arithmetic is exact, so inline code gives the shim's bits.
            let dst = self.address(result)?;
            let element = |t: &mut Self, value: Value, ty: Type, k: i64| -> Result<cl::Value, IrError> {
                Ok(match ty {
                    Type::Vec(_) | Type::Mat(..) => {
                        let address = t.address(value)?;
                        t.b.ins().load(types::F64, MemFlags::trusted(), address, (k * 8) as i32)
                    }
                    Type::Int => {
                        let x = t.scalar(value)?;
                        t.b.ins().fcvt_from_sint(types::F64, x)
                    }
                    _ => t.scalar(value)?,
                })
            };
            for k in 0..len(ty) {
                let (x, y) = (element(self, a, ta, k)?, element(self, b, tb, k)?);
                let z = match op {
                    BinaryOp::Add => self.b.ins().fadd(x, y),
                    BinaryOp::Sub => self.b.ins().fsub(x, y),
                    BinaryOp::Mul => self.b.ins().fmul(x, y),
                    _ => self.b.ins().fdiv(x, y),
                };
                self.b.ins().store(MemFlags::trusted(), z, dst, (k * 8) as i32);
            }
            return Ok(None);
        }
        if let Type::Vec(_) | Type::Mat(..) = ty {
            let dst = self.address(result)?;
            let (a, b) = (self.operand_pointer(a, ta)?, self.operand_pointer(b, tb)?);
            let n = self.iconst(len(ty));
            self.vector_binary(op, dst, a, b, n)?;
            return Ok(None);
        }
        let (x, y) = (self.scalar(a)?, self.scalar(b)?);
        if ty == Type::Bool {
            return Ok(Some(match op {
                BinaryOp::And => self.b.ins().band(x, y),
                _ => self.b.ins().bor(x, y),
            }));
        }
        if ty == Type::Int {
            return Ok(Some(match op {
                BinaryOp::Min => self.b.ins().smin(x, y),
                BinaryOp::Max => self.b.ins().smax(x, y),
                _ => {
                    let code = match op {
                        BinaryOp::Add => 0,
                        BinaryOp::Sub => 1,
                        _ => 2,
                    };
                    let code = self.iconst(code);
                    let value = self.call1("ppl_int_arith", &[code, x, y, self.failed])?;
                    self.check_overflow();
                    value
                }
            }));
        }
        // Reals (an int operand is converted, as the interpreter does).
        let x = if ta == Type::Int { self.b.ins().fcvt_from_sint(types::F64, x) } else { x };
        let y = if tb == Type::Int { self.b.ins().fcvt_from_sint(types::F64, y) } else { y };
        Ok(Some(match op {
            BinaryOp::Add => self.b.ins().fadd(x, y),
            BinaryOp::Sub => self.b.ins().fsub(x, y),
            BinaryOp::Mul => self.b.ins().fmul(x, y),
            BinaryOp::Div => self.b.ins().fdiv(x, y),
            op => {
                let address = shims::binary_address(op).ok_or(IrError { message: format!("{op:?} of reals") })?;
                let address = self.iconst(address);
                self.call1("ppl_real_binary", &[address, x, y])?
            }
        }))
    }

    /// A pointer to an operand's elements and its stride: a vector's slot, or a scalar spilled
    /// to the frame's scratch word (stride 0).
    pub(super) fn operand_pointer(&mut self, value: Value, ty: Type) -> Result<(cl::Value, cl::Value), IrError> {
        match ty {
            Type::Vec(_) | Type::Mat(..) => Ok((self.address(value)?, self.iconst(1))),
            _ => {
                let x = self.scalar(value)?;
                let x = if ty == Type::Int { self.b.ins().fcvt_from_sint(types::F64, x) } else { x };
                let slot =
                    self.b.create_sized_stack_slot(cl::StackSlotData::new(cl::StackSlotKind::ExplicitSlot, 8, 3));
                self.b.ins().stack_store(x, slot, 0);
                let pointer = self.b.ins().stack_addr(types::I64, slot, 0);
                Ok((pointer, self.iconst(0)))
            }
        }
    }

    fn compare(&mut self, op: CompareOp, a: Value, b: Value) -> Result<cl::Value, IrError> {
        let (x, y) = (self.scalar(a)?, self.scalar(b)?);
        Ok(if self.ty(a)? == Type::Real {
            let cc = match op {
                CompareOp::Eq => FloatCC::Equal,
                CompareOp::Ne => FloatCC::NotEqual,
                CompareOp::Lt => FloatCC::LessThan,
                CompareOp::Le => FloatCC::LessThanOrEqual,
                CompareOp::Gt => FloatCC::GreaterThan,
                CompareOp::Ge => FloatCC::GreaterThanOrEqual,
            };
            self.b.ins().fcmp(cc, x, y)
        } else {
            let cc = match op {
                CompareOp::Eq => IntCC::Equal,
                CompareOp::Ne => IntCC::NotEqual,
                CompareOp::Lt => IntCC::SignedLessThan,
                CompareOp::Le => IntCC::SignedLessThanOrEqual,
                CompareOp::Gt => IntCC::SignedGreaterThan,
                CompareOp::Ge => IntCC::SignedGreaterThanOrEqual,
            };
            self.b.ins().icmp(cc, x, y)
        })
    }

    /// The Cranelift types of the scalar values among `values`.
    fn scalar_types(&self, values: &[Value]) -> Result<Vec<(usize, cl::Type)>, IrError> {
        let mut types = Vec::new();
        for (k, value) in values.iter().enumerate() {
            if let Some(ty) = clif_type(self.ty(*value)?) {
                types.push((k, ty));
            }
        }
        Ok(types)
    }

    fn branch(&mut self, inst: &Inst, cond: Value, then: &Block, otherwise: &Block) -> Result<(), IrError> {
        let cond = self.scalar(cond)?;
        let (then_block, else_block, merge) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        let scalar_results = self.scalar_types(&inst.results)?;
        for (_, ty) in &scalar_results {
            self.b.append_block_param(merge, *ty);
        }
        self.b.ins().brif(cond, then_block, &[], else_block, &[]);
        for (block, body) in [(then_block, then), (else_block, otherwise)] {
            self.b.switch_to_block(block);
            self.block(body)?;
            let mut args = Vec::with_capacity(scalar_results.len());
            for (k, (yielded, target)) in body.results.iter().zip(&inst.results).enumerate() {
                if scalar_results.iter().any(|(position, _)| *position == k) {
                    args.push(cl::BlockArg::Value(self.scalar(*yielded)?));
                } else {
                    self.copy_into(*yielded, *target)?;
                }
            }
            self.b.ins().jump(merge, &args);
        }
        self.b.switch_to_block(merge);
        let params = self.b.block_params(merge).to_vec();
        for ((k, _), param) in scalar_results.iter().zip(params) {
            self.scalars.insert(inst.results[*k], param);
        }
        Ok(())
    }

    fn repeat(&mut self, inst: &Inst, lo: Value, hi: Value, init: &[Value], body: &Block) -> Result<(), IrError> {
        let (lo, hi) = (self.scalar(lo)?, self.scalar(hi)?);
        let carried = &body.params[1..];
        let scalar_carried = self.scalar_types(carried)?;
        let (header, body_block, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.append_block_param(header, types::I64);
        for (_, ty) in &scalar_carried {
            self.b.append_block_param(header, *ty);
        }
        let mut args = vec![cl::BlockArg::Value(lo)];
        for (k, (start, param)) in init.iter().zip(carried).enumerate() {
            if scalar_carried.iter().any(|(position, _)| *position == k) {
                args.push(cl::BlockArg::Value(self.scalar(*start)?));
            } else {
                self.copy_into(*start, *param)?;
            }
        }
        self.b.ins().jump(header, &args);
        self.b.switch_to_block(header);
        let header_params = self.b.block_params(header).to_vec();
        let index = header_params[0];
        for ((k, _), param) in scalar_carried.iter().zip(&header_params[1..]) {
            self.scalars.insert(carried[*k], *param);
        }
        let running = self.b.ins().icmp(IntCC::SignedLessThan, index, hi);
        self.b.ins().brif(running, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        self.scalars.insert(body.params[0], index);
        self.block(body)?;
        // Vectors and streams go through their staging slots, so that a body yielding its
        // parameters in another order reads each before it is overwritten. One the body
        // updated in place (a stream advanced by its draws) is already where it belongs.
        let mut next = Vec::with_capacity(scalar_carried.len() + 1);
        next.push(cl::BlockArg::Value(self.b.ins().iadd_imm(index, 1)));
        let in_place = |k: usize| self.layout.same_place(body.results[k], carried[k]);
        for (k, (yielded, param)) in body.results.iter().zip(carried).enumerate() {
            if scalar_carried.iter().any(|(position, _)| *position == k) {
                next.push(cl::BlockArg::Value(self.scalar(*yielded)?));
            } else if !in_place(k) {
                let staging =
                    self.layout.staging.get(param).copied().ok_or(IrError { message: "no staging slot".into() })?;
                self.copy_to_staging(*yielded, staging)?;
            }
        }
        for (k, param) in carried.iter().enumerate() {
            if !scalar_carried.iter().any(|(position, _)| *position == k) && !in_place(k) {
                let staging =
                    self.layout.staging.get(param).copied().ok_or(IrError { message: "no staging slot".into() })?;
                self.copy_from_staging(staging, *param)?;
            }
        }
        self.b.ins().jump(header, &next);
        self.b.switch_to_block(exit);
        for (k, (param, result)) in carried.iter().zip(&inst.results).enumerate() {
            match scalar_carried.iter().position(|(position, _)| *position == k) {
                Some(position) => {
                    self.scalars.insert(*result, header_params[1 + position]);
                }
                None => self.copy_into(*param, *result)?,
            }
        }
        Ok(())
    }

    fn staging_address(&mut self, staging: super::Place) -> cl::Value {
        match staging {
            super::Place::Slot(offset) => self.slot_address(offset),
            super::Place::Param(offset) => self.b.ins().iadd_imm(self.params, (offset * 8) as i64),
            super::Place::Rng(index) => {
                self.b.ins().iadd_imm(self.rngs, (index * std::mem::size_of::<ppl_runtime::Rng>()) as i64)
            }
        }
    }

    fn copy_to_staging(&mut self, source: Value, staging: super::Place) -> Result<(), IrError> {
        let ty = self.ty(source)?;
        let (dst, src) = (self.staging_address(staging), self.address(source)?);
        self.copy_raw(ty, dst, src)
    }

    fn copy_from_staging(&mut self, staging: super::Place, target: Value) -> Result<(), IrError> {
        let ty = self.ty(target)?;
        let (dst, src) = (self.address(target)?, self.staging_address(staging));
        self.copy_raw(ty, dst, src)
    }

    /// Copies a value into memory at `dst` (its slot's contents, or its stream).
    pub fn copy_value_to(&mut self, value: Value, ty: Type, dst: cl::Value) -> Result<(), IrError> {
        let src = self.address(value)?;
        self.copy_raw(ty, dst, src)
    }

    fn copy_raw(&mut self, ty: Type, dst: cl::Value, src: cl::Value) -> Result<(), IrError> {
        if ty == Type::Rng {
            self.call("ppl_rng_copy", &[dst, src])?;
        } else {
            self.copy_words(dst, src, len(ty))?;
        }
        Ok(())
    }
}
