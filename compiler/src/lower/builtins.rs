//! Built-in functions: elementwise maths, reductions, vector constructors, `detach`, and
//! `exp` of an estimate.

use std::rc::Rc;

use super::value::{Env, Estimate, Val};
use super::{internal, unsupported, FunctionLowerer, Lowered};
use std::sync::Arc;

use crate::data::Data;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::ir::{BinaryOp, Op, ReduceOp, Tensor, Type, UnaryOp, Value};
use crate::syntax::ast::{Arg, Expr};

/// Elementwise functions that are one IR operation.
const UNARY: &[(&str, UnaryOp)] = &[
    ("exp", UnaryOp::Exp),
    ("log", UnaryOp::Log),
    ("log1p", UnaryOp::Log1p),
    ("expm1", UnaryOp::Expm1),
    ("sqrt", UnaryOp::Sqrt),
    ("abs", UnaryOp::Abs),
    ("sin", UnaryOp::Sin),
    ("cos", UnaryOp::Cos),
    ("tan", UnaryOp::Tan),
    ("tanh", UnaryOp::Tanh),
    ("sigmoid", UnaryOp::Sigmoid),
    ("softplus", UnaryOp::Softplus),
    ("lgamma", UnaryOp::Lgamma),
    ("digamma", UnaryOp::Digamma),
    ("floor", UnaryOp::Floor),
];

const BINARY: &[(&str, BinaryOp)] = &[("min", BinaryOp::Min), ("max", BinaryOp::Max), ("pow", BinaryOp::Pow)];

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    /// `load(path)`: the file read as the declared type, its vectors and matrices as tensors.
    /// A relative path is relative to the directory of the program's file.
    fn load(&mut self, env: &mut Env<'a>, expr: &'a Expr, args: &'a [Arg]) -> Lowered<Val<'a>> {
        let path = match args.first().map(|arg| self.expr(env, &arg.value)).transpose()? {
            Some(Val::Str(path)) => path,
            _ => return Err(internal(Some(expr.span), "`load` of a non-string")),
        };
        let declared = env.ty(expr).ok_or_else(|| internal(Some(expr.span), "`load` without a type"))?;
        let sources = &self.program.analysis.sources;
        let base = sources.locate(expr.span).map(|(file, _)| file.name.as_str()).filter(|name| !name.starts_with('<'));
        let resolved = match base.and_then(|name| std::path::Path::new(name).parent()) {
            Some(directory) => directory.join(&path),
            None => std::path::PathBuf::from(&path),
        };
        let data = crate::load::read(&resolved, declared).map_err(|error| {
            let diagnostic = Diagnostic::error(ErrorCode::LoadFailed, error.message)
                .with_primary(expr.span, format!("loading `{}`", resolved.display()));
            match error.note {
                Some(note) => diagnostic.with_note(note),
                None => diagnostic,
            }
        })?;
        self.data_val(data, &path)
    }

    /// A host value in this function: scalars as constants, vectors and matrices as tensors.
    pub(super) fn data_val(&mut self, data: Data, name: &str) -> Lowered<Val<'a>> {
        let tensor =
            |ty: Type, values: Vec<f64>| Op::Data(Tensor { name: Arc::from(name), ty, values: Arc::new(values) });
        let too_large = || {
            unsupported(self.span.unwrap_or_default(), "a vector or matrix of more than 4,294,967,295 rows or columns")
        };
        Ok(match data {
            Data::Real(x) => Val::Ir(self.builder.real(x)?),
            Data::Int(n) => Val::Ir(self.builder.int(n)?),
            Data::Bool(b) => Val::Ir(self.builder.boolean(b)?),
            Data::Vec(values) => {
                let n = u32::try_from(values.len()).map_err(|_| too_large())?;
                Val::Ir(self.builder.push1(tensor(Type::Vec(n), values))?)
            }
            Data::Mat { rows, cols, data } => {
                let (rows, cols) = (u32::try_from(rows), u32::try_from(cols));
                let (Ok(rows), Ok(cols)) = (rows, cols) else { return Err(too_large()) };
                Val::Ir(self.builder.push1(tensor(Type::Mat(rows, cols), data))?)
            }
            Data::Record(fields) => Val::Record(
                fields
                    .into_iter()
                    .map(|(field, value)| {
                        let name = format!("{name}.{field}");
                        Ok((field, self.data_val(value, &name)?))
                    })
                    .collect::<Lowered<_>>()?,
            ),
        })
    }

    pub(super) fn builtin(
        &mut self,
        env: &mut Env<'a>,
        expr: &'a Expr,
        name: &str,
        args: &'a [Arg],
    ) -> Lowered<Val<'a>> {
        if let Some(value) = self.inference_form(env, expr, name, args)? {
            return Ok(value);
        }
        if name == "load" {
            return self.load(env, expr, args);
        }
        if name == "mean_over" || name == "sum_over" {
            return self.over_rows_call(env, expr, name, args);
        }
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.expr(env, &arg.value)?);
        }
        self.builder.set_span(Some(expr.span));
        self.span = Some(expr.span);
        if let ("detach", [value]) = (name, values.as_slice()) {
            return self.detach(value.clone());
        }
        if name == "exp" {
            if let [Val::Est(inner)] = values.as_slice() {
                return Ok(Val::Est(Rc::new(Estimate::Exp(inner.clone()))));
            }
        }
        if let Some((_, op)) = UNARY.iter().find(|(n, _)| *n == name) {
            let x = self.real_argument(&values, 0, expr)?;
            return Ok(Val::Ir(self.builder.unary(*op, x)?));
        }
        if let Some((_, op)) = BINARY.iter().find(|(n, _)| *n == name) {
            let (a, b) = (self.real_argument(&values, 0, expr)?, self.real_argument(&values, 1, expr)?);
            return Ok(Val::Ir(self.builder.binary(*op, a, b)?));
        }
        let result_type = env.ty(expr).and_then(super::ir_type);
        let b = &mut self.builder;
        let value = match name {
            // Towards zero, as Rust's `as` and Cranelift's saturating conversion agree to:
            // beyond the range of `int` the largest or smallest `int`, NaN 0.
            "int" => {
                let value = values.first().cloned().ok_or_else(|| internal(Some(expr.span), "missing argument"))?;
                let value = self.scalar(value, expr.span)?;
                match self.builder.ty(value) {
                    Some(Type::Int) => value,
                    _ => self.builder.unary(UnaryOp::ToInt, value)?,
                }
            }
            "logit" => {
                let x = self.real_argument(&values, 0, expr)?;
                let b = &mut self.builder;
                (|| {
                    let log_x = b.unary(UnaryOp::Log, x)?;
                    let negated = b.unary(UnaryOp::Neg, x)?;
                    let log_complement = b.unary(UnaryOp::Log1p, negated)?;
                    b.sub(log_x, log_complement)
                })()?
            }
            "sum" | "logsumexp" => {
                let x = self.real_argument(&values, 0, expr)?;
                let op = if name == "sum" { ReduceOp::Sum } else { ReduceOp::LogSumExp };
                self.builder.push1(Op::Reduce(op, x))?
            }
            "mean" => {
                let x = self.real_argument(&values, 0, expr)?;
                let count = self.element_count(x)?;
                let b = &mut self.builder;
                (|| {
                    let total = b.push1(Op::Reduce(ReduceOp::Sum, x))?;
                    let count = b.real(count as f64)?;
                    b.div(total, count)
                })()?
            }
            "softmax" => {
                let x = self.real_argument(&values, 0, expr)?;
                let b = &mut self.builder;
                (|| {
                    let normaliser = b.push1(Op::Reduce(ReduceOp::LogSumExp, x))?;
                    let shifted = b.sub(x, normaliser)?;
                    b.unary(UnaryOp::Exp, shifted)
                })()?
            }
            "dot" => {
                let (x, y) = (self.real_argument(&values, 0, expr)?, self.real_argument(&values, 1, expr)?);
                self.builder.push1(Op::MatMul(x, y))?
            }
            "len" => {
                let x = self.real_argument(&values, 0, expr)?;
                let count = match self.builder.ty(x) {
                    Some(Type::Vec(n)) | Some(Type::Mat(n, _)) => n,
                    _ => return Err(internal(Some(expr.span), "`len` of a non-vector")),
                };
                self.builder.int(i64::from(count))?
            }
            "zeros" | "ones" | "fill" => {
                let ty = result_type.ok_or_else(|| {
                    unsupported(
                        expr.span,
                        "a vector or matrix whose size is not a constant, or more than 16,777,216 elements,",
                    )
                })?;
                match name {
                    "zeros" => b.filled(ty, 0.0)?,
                    "ones" => b.filled(ty, 1.0)?,
                    _ => {
                        let fill = self.real_argument(&values, 1, expr)?;
                        let Type::Vec(n) = ty else { return Err(internal(Some(expr.span), "`fill` type")) };
                        self.builder.push1(Op::Build(vec![fill; n as usize]))?
                    }
                }
            }
            _ => return Err(unsupported(expr.span, &format!("`{name}`"))),
        };
        Ok(Val::Ir(value))
    }

    /// Argument `index` as a real (ints converted), vector or matrix.
    fn real_argument(&mut self, values: &[Val<'a>], index: usize, expr: &Expr) -> Lowered<Value> {
        let value = values.get(index).cloned().ok_or_else(|| internal(Some(expr.span), "missing argument"))?;
        let value = self.scalar(value, expr.span)?;
        self.converted_to_real(value)
    }

    fn element_count(&self, value: Value) -> Lowered<u32> {
        match self.builder.ty(value) {
            Some(Type::Vec(n)) => Ok(n),
            Some(Type::Mat(m, n)) => Ok(m * n),
            _ => Err(internal(self.span, "a reduction of a non-vector")),
        }
    }
}
