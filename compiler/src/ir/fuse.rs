//! Fusion, three rewrites that save passes over matrices:
//! - an outer product whose only use is to be added to a matrix becomes one [`Op::AddOuter`],
//!   which forms the sum in one pass instead of writing the product and reading it back (reverse
//!   mode accumulates every matrix parameter's gradient this way, example after example). Each
//!   element is `acc + a·b` either way, so the bits do not change;
//! - [`batch_outer_products`] turns a loop's rank-one updates into one matrix product;
//! - [`fuse_transposes`] reads transposes in place in the products that use them.
//!
//! These passes run last, on differentiated functions: the passes that differentiate do not know
//! the fused operations.

use std::collections::HashMap;

use super::function::{BinaryOp, Block, Function, Inst, Op, Value};
use super::types::Type;
use ppl_runtime::Transposed;

/// Fuses the outer products of `function` into the additions that consume them, in place.
pub fn fuse_outer_products(function: &mut Function) {
    let mut uses = HashMap::new();
    super::count_uses(&function.body, &mut uses);
    let types = function.value_types.clone();
    fuse_block(&mut function.body, &uses, &types);
}

fn fuse_block(block: &mut Block, uses: &HashMap<Value, usize>, types: &[Type]) {
    let mut outer: HashMap<Value, (Value, Value)> = HashMap::new();
    let mut fused = Vec::new();
    for inst in &mut block.insts {
        for nested in inst.op.blocks_mut() {
            fuse_block(nested, uses, types);
        }
        match (&inst.op, inst.results.as_slice()) {
            (Op::Outer(a, b), [result]) if uses.get(result) == Some(&1) => {
                outer.insert(*result, (*a, *b));
            }
            (Op::Binary(BinaryOp::Add, x, y), [result])
                if matches!(types.get(result.0 as usize), Some(Type::Mat(..))) =>
            {
                let (acc, product) = match (outer.get(y), outer.get(x)) {
                    (Some(_), _) => (*x, *y),
                    (None, Some(_)) => (*y, *x),
                    (None, None) => continue,
                };
                if let Some((a, b)) = outer.remove(&product) {
                    inst.op = Op::AddOuter { acc, a, b };
                    fused.push(product);
                }
            }
            _ => {}
        }
    }
    block.insts.retain(|inst| !inst.results.first().is_some_and(|result| fused.contains(result)));
}

/// Batching: a loop of `n` iterations (from 0) that accumulates a carried matrix by one outer
/// product per iteration, `acc + a_i ⊗ b_i` (reverse mode summing a shared weight matrix's
/// gradient over a minibatch's rows), instead stores each `a_i` and `b_i` as row `i` of two
/// matrices and adds their product `Aᵀ B` after the loop: one matrix product (the `gemm`
/// kernel) for the whole batch instead of `n` rank-one updates. The sum is the same; its
/// rounding differs, as the product sums in its own order.
pub fn batch_outer_products(function: &mut Function) {
    let mut uses = HashMap::new();
    super::count_uses(&function.body, &mut uses);
    let mut constants = HashMap::new();
    super::int_constants(&function.body, &mut constants);
    let mut batcher = Batcher { types: std::mem::take(&mut function.value_types), uses, constants };
    batcher.block(&mut function.body);
    function.value_types = batcher.types;
}

struct Batcher {
    types: Vec<Type>,
    uses: HashMap<Value, usize>,
    constants: HashMap<Value, i64>,
}

impl Batcher {
    fn fresh(&mut self, ty: Type) -> Value {
        super::fresh_value(&mut self.types, ty)
    }

    fn ty(&self, value: Value) -> Option<Type> {
        self.types.get(value.0 as usize).copied()
    }

    fn block(&mut self, block: &mut Block) {
        let insts = std::mem::take(&mut block.insts);
        for mut inst in insts {
            for nested in inst.op.blocks_mut() {
                self.block(nested);
            }
            let after = self.batch_loop(&mut inst, &mut block.insts);
            block.insts.push(inst);
            block.insts.extend(after);
        }
    }

    /// Rewrites `inst` if it is such a loop: pushes what must come before it onto `before` and
    /// returns what must come after it.
    fn batch_loop(&mut self, inst: &mut Inst, before: &mut Vec<Inst>) -> Vec<Inst> {
        let span = inst.span;
        let Op::For { lo, hi, init, body } = &mut inst.op else { return Vec::new() };
        let (Some(0), Some(rows)) = (self.constants.get(lo).copied(), self.constants.get(hi).copied()) else {
            return Vec::new();
        };
        let Ok(rows) = u32::try_from(rows) else { return Vec::new() };
        if rows == 0 {
            return Vec::new();
        }
        let mut after = Vec::new();
        for k in 0..body.results.len() {
            let (param, yielded) = (body.params[k + 1], body.results[k]);
            let position = body.insts.iter().position(|inst| {
                inst.results.first() == Some(&yielded) && matches!(inst.op, Op::AddOuter { acc, .. } if acc == param)
            });
            let sole = self.uses.get(&param) == Some(&1) && self.uses.get(&yielded) == Some(&1);
            let (Some(position), true) = (position, sole) else { continue };
            let Op::AddOuter { a, b, .. } = body.insts[position].op else { continue };
            let (Some(Type::Vec(m)), Some(Type::Vec(n))) = (self.ty(a), self.ty(b)) else { continue };
            // Row i of `lefts` is a_i, of `rights` b_i: both start as zeros, data that no
            // iteration writes over (each writes its own copy, in place).
            let mut stacked = Vec::with_capacity(2);
            for width in [m, n] {
                let ty = Type::Mat(rows, width);
                let zeros = self.fresh(ty);
                let values = std::sync::Arc::new(vec![0.0; ty.elements()]);
                let tensor = super::Tensor { name: "zeros".into(), ty, values };
                before.push(Inst { results: vec![zeros], op: Op::Data(tensor), span });
                let carried = self.fresh(ty);
                let written = self.fresh(ty);
                let result = self.fresh(ty);
                init.push(zeros);
                body.params.push(carried);
                body.results.push(written);
                inst.results.push(result);
                stacked.push((carried, written, result));
            }
            let index = body.params[0];
            body.insts[position] =
                Inst { results: vec![stacked[0].1], op: Op::Insert { aggregate: stacked[0].0, index, value: a }, span };
            body.insts.insert(
                position + 1,
                Inst { results: vec![stacked[1].1], op: Op::Insert { aggregate: stacked[1].0, index, value: b }, span },
            );
            body.results[k] = param;
            // After the loop: acc + Aᵀ B, as the value the loop's result was.
            let accumulated = inst.results[k];
            let Some(acc_ty) = self.ty(accumulated) else { continue };
            let partial = self.fresh(acc_ty);
            inst.results[k] = partial;
            let transposed = self.fresh(Type::Mat(m, rows));
            let product = self.fresh(acc_ty);
            after.push(Inst { results: vec![transposed], op: Op::Transpose(stacked[0].2), span });
            after.push(Inst { results: vec![product], op: Op::MatMul(transposed, stacked[1].2), span });
            after.push(Inst { results: vec![accumulated], op: Op::Binary(BinaryOp::Add, partial, product), span });
        }
        after
    }
}

/// Transposes read in place: a matrix product of a transpose reads the matrix with its strides
/// swapped ([`Op::MatMulTransposed`]; a matrix–vector product is turned round instead), and the
/// transpose of a product read nowhere else is the product of the transposes in the other order.
/// Batched reverse mode transposes each weight matrix for its forward product (`X Wᵀ`) and its
/// gradient (`(Gᵀ X)ᵀ`); this forms neither. Transposes that nothing reads any more are left for
/// dead-code elimination. A product's kernel sums in the same order whichever way its operands
/// lie in memory.
pub fn fuse_transposes(function: &mut Function) {
    let mut fusion = TransposeFusion {
        types: &function.value_types,
        uses: HashMap::new(),
        sources: HashMap::new(),
        products: HashMap::new(),
    };
    super::count_uses(&function.body, &mut fusion.uses);
    fusion.block(&mut function.body);
}

struct TransposeFusion<'a> {
    types: &'a [Type],
    uses: HashMap<Value, usize>,
    /// The matrix each transpose was formed from.
    sources: HashMap<Value, Value>,
    /// The operands of each product of two matrices, as its operation reads them.
    products: HashMap<Value, (Value, Value, Transposed)>,
}

impl TransposeFusion<'_> {
    fn ty(&self, value: Value) -> Option<Type> {
        self.types.get(value.0 as usize).copied()
    }

    fn block(&mut self, block: &mut Block) {
        for inst in &mut block.insts {
            for nested in inst.op.blocks_mut() {
                self.block(nested);
            }
            let [result] = inst.results[..] else { continue };
            match inst.op {
                Op::Transpose(a) => match self.products.get(&a).copied() {
                    // (x·y)ᵀ = yᵀ·xᵀ, when nothing else reads x·y.
                    Some((x, y, transposed)) if self.uses.get(&a) == Some(&1) => {
                        inst.op = self.product(y, x, Transposed { a: !transposed.b, b: !transposed.a });
                    }
                    _ => {
                        self.sources.insert(result, a);
                    }
                },
                Op::MatMul(a, b) => inst.op = self.product(a, b, Transposed::default()),
                _ => {}
            }
            if let (Op::MatMul(a, b), Some(Type::Mat(..))) = (&inst.op, self.ty(result)) {
                self.products.insert(result, (*a, *b, Transposed::default()));
            }
            if let Op::MatMulTransposed { a, b, transposed, .. } = inst.op {
                self.products.insert(result, (a, b, transposed));
            }
        }
    }

    /// `a · b`, each read transposed as `transposed` says, with every transpose among the
    /// operands read in place.
    fn product(&self, a: Value, b: Value, transposed: Transposed) -> Op {
        let (a, flip_a) = self.untransposed(a);
        let (b, flip_b) = self.untransposed(b);
        let transposed = Transposed { a: transposed.a != flip_a, b: transposed.b != flip_b };
        match (self.ty(a), self.ty(b), transposed) {
            (_, _, Transposed { a: false, b: false }) => Op::MatMul(a, b),
            (Some(Type::Mat(..)), Some(Type::Mat(..)), transposed) => {
                Op::MatMulTransposed { a, b, transposed, precision: ppl_runtime::Precision::Double }
            }
            // Wᵀ·x = x·W and x·Wᵀ = W·x.
            _ => Op::MatMul(b, a),
        }
    }

    /// The matrix a value is a chain of transposes of, and whether their number is odd.
    fn untransposed(&self, mut value: Value) -> (Value, bool) {
        let mut flipped = false;
        while let Some(source) = self.sources.get(&value) {
            value = *source;
            flipped = !flipped;
        }
        (value, flipped)
    }
}
