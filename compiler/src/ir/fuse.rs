//! Fusion: an outer product whose only use is to be added to a matrix becomes one
//! [`Op::AddOuter`], which forms the sum in one pass instead of writing the product and reading
//! it back (reverse mode accumulates every matrix parameter's gradient this way, example after
//! example). Each element is `acc + a·b` either way, so the bits do not change.
//!
//! This pass runs last, on differentiated functions: the passes that differentiate do not know
//! the fused operation.

use std::collections::HashMap;

use super::function::{BinaryOp, Block, Function, Op, Value};
use super::types::Type;

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
