//! Linearisation: splitting a forward-mode program into its primal part and its linear part
//! (Radul et al., "You Only Linearize Once", POPL 2023).
//!
//! In the program `jvp` produces, every value is either *primal* (computed from primal
//! values only) or *linear* (a linear function of the input tangents, given the primal
//! values). Which is which follows from data flow: the tangent inputs are linear, so is
//! every result of an instruction with a linear operand, and a branch or loop result is
//! linear where a branch yields, or an iteration carries, a linear value. Primal operands of
//! linear instructions are the *residuals*: what the linear part needs from the primal one.
//! Where a linear instruction has a primal operand in an additive position (`jvp`'s
//! materialised zeros), that operand is a structural zero.

use std::collections::HashSet;

use crate::ir::{Block, Function, Op, Value};

/// Which values of a forward-mode function are linear, and which primal values the linear
/// part reads.
#[derive(Debug, Default)]
pub struct Linearization {
    pub linear: HashSet<Value>,
    pub residuals: HashSet<Value>,
}

impl Linearization {
    pub fn is_linear(&self, value: Value) -> bool {
        self.linear.contains(&value)
    }
}

/// Classifies the values of `function`, whose linear inputs are `tangents`.
pub fn linearize(function: &Function, tangents: &[Value]) -> Linearization {
    let mut split = Linearization { linear: tangents.iter().copied().collect(), residuals: HashSet::new() };
    split.classify(&function.body);
    split.collect_residuals(&function.body);
    split
}

impl Linearization {
    fn classify(&mut self, block: &Block) {
        for inst in &block.insts {
            match &inst.op {
                Op::If { then, otherwise, .. } => {
                    self.classify(then);
                    self.classify(otherwise);
                    for (k, result) in inst.results.iter().enumerate() {
                        let yields_linear = [then, otherwise]
                            .iter()
                            .any(|branch| branch.results.get(k).is_some_and(|value| self.is_linear(*value)));
                        if yields_linear {
                            self.linear.insert(*result);
                        }
                    }
                }
                Op::For { init, body, .. } => {
                    // A carried value is linear if it starts or becomes linear: iterate to a
                    // fixed point (each pass can only add linear values).
                    for (k, value) in init.iter().enumerate() {
                        if self.is_linear(*value) {
                            if let Some(param) = body.params.get(k + 1) {
                                self.linear.insert(*param);
                            }
                        }
                    }
                    loop {
                        self.classify(body);
                        let mut changed = false;
                        for (k, result) in body.results.iter().enumerate() {
                            if self.is_linear(*result) {
                                if let Some(param) = body.params.get(k + 1) {
                                    changed |= self.linear.insert(*param);
                                }
                            }
                        }
                        if !changed {
                            break;
                        }
                    }
                    for (k, result) in inst.results.iter().enumerate() {
                        if body.params.get(k + 1).is_some_and(|param| self.is_linear(*param)) {
                            self.linear.insert(*result);
                        }
                    }
                }
                op => {
                    if op.operands().iter().any(|operand| self.is_linear(*operand)) {
                        self.linear.extend(inst.results.iter().copied());
                    }
                }
            }
        }
    }

    /// Whether an instruction belongs to the linear part.
    pub fn is_linear_inst(&self, inst: &crate::ir::Inst) -> bool {
        inst.results.iter().any(|result| self.is_linear(*result))
    }

    /// Collects the residuals of the code that is transposed: the top-level block and the
    /// blocks of linear branches and loops. Linear instructions inside a branch or loop with no
    /// linear result are dead (nothing they compute leaves it), so they need no residuals.
    fn collect_residuals(&mut self, block: &Block) {
        for inst in &block.insts {
            if !self.is_linear_inst(inst) {
                continue;
            }
            for nested in inst.op.blocks() {
                self.collect_residuals(nested);
            }
            // The linear part of a branch needs its condition, of a loop its bounds; other
            // linear instructions need their primal operands.
            let needed = match &inst.op {
                Op::If { cond, .. } => vec![*cond],
                Op::For { lo, hi, .. } => vec![*lo, *hi],
                op => op.operands(),
            };
            for value in needed {
                if !self.is_linear(value) {
                    self.residuals.insert(value);
                }
            }
        }
    }
}
