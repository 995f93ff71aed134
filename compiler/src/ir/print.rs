//! The textual form of the IR, shown by `ppl run --emit ir` and by failing tests.
//!
//! ```text
//! fn square(%0: real, %1: rng) -> (real, rng) {
//!     %2: real, %3: rng = draw normal %1
//!     %4: real = add %0, %2
//!     %5: real = mul %4, %4
//!     return %5, %3
//! }
//! ```

use std::fmt::{self, Write};

use super::function::{Block, Constant, Function, Kernel, Op, Value};

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let params: Vec<String> = self.body.params.iter().map(|v| self.typed(*v)).collect();
        let results: Vec<String> = self.body.results.iter().map(|v| self.type_name(*v)).collect();
        let _ = writeln!(out, "fn {}({}) -> ({}) {{", self.name, params.join(", "), results.join(", "));
        self.write_insts(&mut out, &self.body, 1);
        let _ = writeln!(out, "    return {}", join(&self.body.results));
        out.push('}');
        f.write_str(&out)
    }
}

impl Function {
    fn type_name(&self, value: Value) -> String {
        self.ty(value).map_or_else(|| "?".to_string(), |ty| ty.to_string())
    }

    fn typed(&self, value: Value) -> String {
        format!("{value}: {}", self.type_name(value))
    }

    fn write_insts(&self, out: &mut String, block: &Block, depth: usize) {
        let indent = "    ".repeat(depth);
        for inst in &block.insts {
            let results: Vec<String> = inst.results.iter().map(|v| self.typed(*v)).collect();
            let lhs = if results.is_empty() { String::new() } else { format!("{} = ", results.join(", ")) };
            let _ = write!(out, "{indent}{lhs}");
            match &inst.op {
                Op::If { cond, then, otherwise } => {
                    let _ = writeln!(out, "if {cond} {{");
                    self.write_nested(out, then, depth);
                    let _ = writeln!(out, "{indent}}} else {{");
                    self.write_nested(out, otherwise, depth);
                    let _ = writeln!(out, "{indent}}}");
                }
                Op::For { lo, hi, init, body } => {
                    let params: Vec<String> = body.params.iter().map(|v| self.typed(*v)).collect();
                    let _ = writeln!(out, "for {lo}..{hi} init({}) |{}| {{", join(init), params.join(", "));
                    self.write_nested(out, body, depth);
                    let _ = writeln!(out, "{indent}}}");
                }
                Op::Expect { rng, body } => {
                    let _ = writeln!(out, "expect {rng} |{}| {{", self.typed_params(body));
                    self.write_nested(out, body, depth);
                    let _ = writeln!(out, "{indent}}}");
                }
                op => {
                    let _ = writeln!(out, "{}", describe(op));
                }
            }
        }
    }

    fn typed_params(&self, block: &Block) -> String {
        block.params.iter().map(|v| self.typed(*v)).collect::<Vec<_>>().join(", ")
    }

    fn write_nested(&self, out: &mut String, block: &Block, depth: usize) {
        self.write_insts(out, block, depth + 1);
        let _ = writeln!(out, "{}yield {}", "    ".repeat(depth + 1), join(&block.results));
    }
}

fn join(values: &[Value]) -> String {
    values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn lower_name(debug: impl fmt::Debug) -> String {
    let name = format!("{debug:?}");
    let mut out = String::with_capacity(name.len() + 2);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn describe(op: &Op) -> String {
    match op {
        Op::Const(Constant::Real(value)) => format!("const {value:?}"),
        Op::Const(Constant::Int(value)) => format!("const {value}"),
        Op::Const(Constant::Bool(value)) => format!("const {value}"),
        Op::Data(tensor) => format!("data {}", tensor.name),
        Op::Unary(unary, value) => format!("{} {value}", lower_name(unary)),
        Op::Binary(binary, a, b) => format!("{} {a}, {b}", lower_name(binary)),
        Op::Compare(compare, a, b) => format!("cmp_{} {a}, {b}", lower_name(compare)),
        Op::Select { cond, if_true, if_false } => format!("select {cond}, {if_true}, {if_false}"),
        Op::Draw { noise, rng } => format!("draw {} {rng}", lower_name(noise)),
        Op::Split { rng } => format!("split {rng}"),
        Op::StreamAfter { rng, offset } => format!("stream_after {rng} {offset}"),
        Op::Build(parts) => format!("build [{}]", join(parts)),
        Op::Extract { aggregate, index } => format!("extract {aggregate}[{index}]"),
        Op::Reduce(reduce, value) => format!("{} {value}", lower_name(reduce)),
        Op::MatMul(a, b) => format!("matmul {a}, {b}"),
        Op::Insert { aggregate, index, value } => format!("insert {aggregate}[{index}], {value}"),
        Op::Transpose(a) => format!("transpose {a}"),
        Op::Outer(a, b) => format!("outer {a}, {b}"),
        Op::Slice { aggregate, start, len } => {
            format!("slice {aggregate}[{start}..{}]", u64::from(*start) + u64::from(*len))
        }
        Op::Place { value, start, total } => format!("place {value} at {start} of {total}"),
        Op::AddOuter { acc, a, b } => format!("add_outer {acc}, {a}, {b}"),
        Op::MatMulTransposed { a, b, transposed, precision } => {
            let mark = |t: bool| if t { "ᵀ" } else { "" };
            let name = match precision {
                ppl_runtime::Precision::Double => "matmul",
                ppl_runtime::Precision::Single => "matmul.f32",
            };
            format!("{name} {a}{}, {b}{}", mark(transposed.a), mark(transposed.b))
        }
        Op::WithTangent { value, tangent_of } => format!("with_tangent {value}, {tangent_of}"),
        Op::Sample { sampler: super::Sampler::Subsample { population, size }, rng, .. } => {
            format!("sample subsample {size} of {population} {rng}")
        }
        Op::Sample { sampler, args, rng } => format!("sample {} [{}] {rng}", lower_name(sampler), join(args)),
        Op::Kernel(Kernel::SoftplusSigmoidSingle, args) => format!("softplus_sigmoid.f32 {}", join(args)),
        Op::Kernel(kernel, args) => format!("{} {}", lower_name(kernel), join(args)),
        Op::Check { cond, culprit, message } => format!("check {cond}, {culprit} {message:?}"),
        Op::Save(value) => format!("save {value}"),
        Op::Restore(ty) => format!("restore {ty}"),
        Op::Branch { rule, args, rng } => format!("branch {} [{}] {rng}", lower_name(rule), join(args)),
        Op::If { .. } | Op::For { .. } | Op::Expect { .. } => String::new(),
    }
}
