//! Calls: argument binding (positional and named), user functions (instantiated per argument
//! types), distributions (from the table), the inference forms (`sim`, `density`, `marginal`,
//! `normalize`, `select`, `sir`, `posterior`), reports (`estimate`, `grad`, `sample`),
//! optimizers and the numeric built-ins.

use super::body::Body;
use super::expr::{arithmetic, join_names, Checked, Mismatch};
use super::Checker;
use crate::diagnostics::{closest_name, Diagnostic, ErrorCode};
use crate::distributions::{self, ParamKind, Support};
use crate::syntax::ast::{Arg, BinaryOp, Expr, ExprKind, Ident, ItemKind};
use crate::syntax::span::Span;
use crate::types::ty::{Config, Dim, Family, FamilyKind, Field, Report, Type};

/// Elementwise functions of one argument.
const ELEMENTWISE: &[&str] = &[
    "exp", "log", "log1p", "expm1", "sqrt", "abs", "sin", "cos", "tan", "tanh", "sigmoid", "softplus", "logit",
    "lgamma", "digamma", "floor",
];
/// Elementwise functions of two arguments, with scalar broadcasting.
const ELEMENTWISE_BINARY: &[&str] = &["min", "max", "pow"];
/// Reductions and other vector functions.
const VECTOR_FUNCTIONS: &[&str] =
    &["sum", "mean", "logsumexp", "softmax", "dot", "len", "zeros", "ones", "fill", "detach"];
/// The forms of programmable inference and the commands' reports.
const INFERENCE_FORMS: &[&str] = &[
    "sim",
    "density",
    "marginal",
    "select",
    "sir",
    "posterior",
    "normalize",
    "estimate",
    "grad",
    "sample",
    "image",
    "load",
    "factor",
    "mean_over",
    "sum_over",
];
/// Random initial values of a `param`, or random values of a `data` item (only as the whole value
/// of its declaration): `uniform_init(b)` is U(−b, b) in every element, `normal_init(sd)`
/// N(0, sd²), `glorot_init()` Glorot and Bengio's U(±√(6 / (rows + columns))) for a matrix.
pub(crate) const INITIALISERS: &[&str] = &["uniform_init", "normal_init", "glorot_init"];
/// Conversions between scalar types.
const CONVERSIONS: &[&str] = &["int"];
/// Optimizers and their optional settings (`lr` is required by all).
const OPTIMIZERS: &[(&str, &[&str])] = &[
    ("sgd", &["momentum", "nesterov"]),
    ("adam", &["beta1", "beta2", "eps"]),
    ("adamw", &["beta1", "beta2", "eps", "weight_decay"]),
    ("rmsprop", &["alpha", "eps", "momentum"]),
    ("adagrad", &["eps"]),
];

/// Every built-in callable name, for suggestions and completion.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    ELEMENTWISE
        .iter()
        .chain(ELEMENTWISE_BINARY)
        .chain(VECTOR_FUNCTIONS)
        .chain(INFERENCE_FORMS)
        .chain(CONVERSIONS)
        .chain(INITIALISERS)
        .copied()
        .chain(OPTIMIZERS.iter().map(|(name, _)| *name))
}

/// A parameter of a callee: its name and whether it must be given.
#[derive(Clone, Copy)]
pub(super) struct Param<'p> {
    name: &'p str,
    required: bool,
}

pub(super) fn required(name: &str) -> Param<'_> {
    Param { name, required: true }
}

pub(super) fn optional(name: &str) -> Param<'_> {
    Param { name, required: false }
}

impl<'a> Checker<'a> {
    pub(super) fn check_call(
        &mut self,
        body: &mut Body,
        callee: &'a Ident,
        args: &'a [Arg],
        call: &'a Expr,
    ) -> Checked {
        let name = callee.name.as_str();
        if let Some((at, item)) = self.lookup_definition(name) {
            return match &item.kind {
                ItemKind::Gen(def) | ItemKind::Fn(def) => {
                    let params: Vec<Param<'_>> = def.params.iter().map(|p| required(&p.name.name)).collect();
                    let Some(slots) = self.bind_args(callee, &params, args, call.span) else {
                        return self.check_args_for_errors(body, args);
                    };
                    let mut types = Vec::with_capacity(slots.len());
                    let mut constants = Vec::with_capacity(slots.len());
                    for (param, slot) in def.params.iter().zip(slots) {
                        let value = slot.map_or(Checked::of(Type::Unknown), |arg| self.check_expr(body, arg));
                        let ty = match &param.ty {
                            Some(annotation) => {
                                let declared = self.resolve_annotation(annotation);
                                if let Some(arg) = slot {
                                    self.expect_fits(&value.ty, &declared, arg.span, Some(annotation.span));
                                }
                                declared
                            }
                            None => value.ty,
                        };
                        constants.push(if ty == Type::Int { value.int } else { None });
                        types.push(ty);
                    }
                    let Some(index) = self.instantiate(at, types, constants, Some((name.to_string(), call.span)))
                    else {
                        return Checked::of(Type::Unknown);
                    };
                    body.calls.insert(call.id, index);
                    let instance = self.instance(index);
                    match &instance.trace {
                        Some(trace) => Checked::of(Type::Family(Box::new(Family {
                            name: name.to_string(),
                            trace: trace.clone(),
                            ret: instance.ret.clone(),
                            kind: FamilyKind::Gen,
                        }))),
                        None => Checked::of(instance.ret.clone()),
                    }
                }
                _ => {
                    self.report(
                        Diagnostic::error(ErrorCode::UnknownFunction, format!("`{name}` is not a function"))
                            .with_primary(callee.span, "called here")
                            .with_secondary(item.span, format!("`{name}` is defined here as a value")),
                    );
                    self.check_args_for_errors(body, args)
                }
            };
        }
        if let Some(distribution) = distributions::lookup(name) {
            return self.check_distribution(body, callee, distribution, args, call.span);
        }
        if let Some((_, settings)) = OPTIMIZERS.iter().find(|(optimizer, _)| *optimizer == name) {
            // Training reads the optimizer from the command's text; it is no value to compute.
            if body.optimizer_option != Some(call.id) {
                self.report(
                    Diagnostic::error(
                        ErrorCode::Unsupported,
                        format!("`{name}` outside a `maximize`'s options is not supported by the compiler yet"),
                    )
                    .with_primary(call.span, "an optimizer is only read as `with { optimizer: … }`")
                    .with_help(format!("write it in the command: `maximize … with {{ optimizer: {name}(…) }}`")),
                );
            }
            let mut params = vec![required("lr")];
            params.extend(settings.iter().map(|setting| optional(setting)));
            if let Some(slots) = self.bind_args(callee, &params, args, call.span) {
                for (param, slot) in params.iter().zip(slots) {
                    let Some(arg) = slot else { continue };
                    let value = self.check_expr(body, arg).ty;
                    let expected = if param.name == "nesterov" { Type::Bool } else { Type::Real };
                    self.expect_fits(&value, &expected, arg.span, None);
                }
            }
            return Checked::of(Type::Config(Config::Optimizer(name.to_string())));
        }
        match name {
            "sim" | "density" | "marginal" | "select" | "sir" | "posterior" | "normalize" => {
                self.check_inference_form(body, callee, args, call)
            }
            "estimate" | "grad" => {
                let params = [required("objective"), optional("samples")];
                let Some(slots) = self.bind_args(callee, &params, args, call.span) else {
                    return self.check_args_for_errors(body, args);
                };
                if let Some(objective) = slots[0] {
                    let value = self.check_expr(body, objective).ty;
                    self.expect_estimate(&value, objective.span, name, name == "grad");
                }
                if let Some(samples) = slots[1] {
                    self.expect_positive_count(body, samples, "`samples`");
                }
                Checked::of(Type::Report(if name == "estimate" { Report::Estimate } else { Report::Grad }))
            }
            "sample" => {
                let params = [required("family"), optional("n")];
                let Some(slots) = self.bind_args(callee, &params, args, call.span) else {
                    return self.check_args_for_errors(body, args);
                };
                let family = slots[0].and_then(|family| self.expect_family(body, family));
                let count = match slots[1] {
                    Some(n) => self
                        .expect_positive_count(body, n, "the number of samples")
                        .map_or(Dim::Unknown, |n| Dim::Known(n as u64)),
                    None => Dim::Known(1),
                };
                let trace = family.map_or(Type::Unknown, |family| Type::Record(family.trace));
                Checked::of(Type::Array(Box::new(trace), count))
            }
            "int" => {
                let Some(slots) = self.bind_args(callee, &[required("x")], args, call.span) else {
                    return self.check_args_for_errors(body, args);
                };
                if let Some(x) = slots[0] {
                    let ty = self.check_expr(body, x).ty;
                    if !matches!(ty, Type::Real | Type::Int | Type::Unknown) {
                        self.report(
                            Diagnostic::error(ErrorCode::TypeMismatch, format!("`int` of {ty}"))
                                .with_primary(x.span, format!("this is {ty}, not a real or an int"))
                                .with_help("`int(x)` converts one number; index a vector's elements one at a time"),
                        );
                    }
                }
                Checked::of(Type::Int)
            }
            "factor" => {
                let Some(slots) = self.bind_args(callee, &[required("log_weight")], args, call.span) else {
                    return self.check_args_for_errors(body, args);
                };
                if let Some(weight) = slots[0] {
                    let ty = self.check_expr(body, weight).ty;
                    self.expect_fits(&ty, &Type::Real, weight.span, None);
                }
                if !body.traces_choices() {
                    let place = if body.in_expectation() { "inside `E { … }`" } else { "outside a `gen` body" };
                    self.report(
                        Diagnostic::error(ErrorCode::MisplacedFactor, format!("`factor` {place}"))
                            .with_primary(call.span, "a factor adds to the log density of a `gen` function's trace")
                            .with_help("call `factor(…)` in the body of the `gen` function whose density it weights"),
                    );
                }
                Checked::of(Type::unit())
            }
            "mean_over" | "sum_over" => self.check_over_rows(body, callee, args, call),
            // A whole `print` expression is checked by `check_image`: here it is inside another.
            "image" => {
                self.report(
                    Diagnostic::error(ErrorCode::InvalidImage, "`image` outside a `print`")
                        .with_primary(call.span, "a picture is a result to show, not a value to compute with")
                        .with_help(
                            "make it a whole expression of a `print`: `print image(\"digits\", pixels, width: 28);`",
                        ),
                );
                self.check_args_for_errors(body, args)
            }
            name if INITIALISERS.contains(&name) => {
                self.report(
                    Diagnostic::error(
                        ErrorCode::MisplacedInitialiser,
                        format!("`{name}` outside a `param`'s or `data` item's declaration"),
                    )
                    .with_primary(call.span, "a random initialiser is the whole value of a `param` or `data` item")
                    .with_help(format!(
                        "declare a parameter or data with it: `param w: mat[m, n] = {name}(…);`, `data z: vec[n] = {name}(…);`"
                    )),
                );
                self.check_args_for_errors(body, args);
                Checked::of(Type::Unknown)
            }
            "load" => {
                self.report(
                    Diagnostic::error(ErrorCode::MissingAnnotation, "`load` needs a type annotation")
                        .with_primary(call.span, "the type of the loaded data is not known")
                        .with_help(
                            "load data in a `data` item with its type: `data xs: mat[100, 2] = load(\"xs.csv\");`",
                        ),
                );
                self.check_args_for_errors(body, args)
            }
            _ if ELEMENTWISE.contains(&name)
                || ELEMENTWISE_BINARY.contains(&name)
                || VECTOR_FUNCTIONS.contains(&name) =>
            {
                self.check_numeric_builtin(body, callee, args, call.span)
            }
            _ => {
                let locals = body.local_names();
                let known: Vec<&str> = builtin_names().chain(distributions::names()).collect();
                let suggestion = self.suggest(name, &locals, &known);
                let mut diagnostic =
                    Diagnostic::error(ErrorCode::UnknownFunction, format!("cannot find function `{name}`"))
                        .with_primary(callee.span, "not a function, distribution or built-in");
                if let Some(close) = suggestion {
                    diagnostic = diagnostic.with_help(format!("a function with a similar name exists: `{close}`"));
                }
                self.report(diagnostic);
                self.check_args_for_errors(body, args)
            }
        }
    }

    /// Checks arguments of a call that could not be resolved, for the errors inside them.
    pub(super) fn check_args_for_errors(&mut self, body: &mut Body, args: &'a [Arg]) -> Checked {
        for arg in args {
            self.check_expr(body, &arg.value);
        }
        Checked::of(Type::Unknown)
    }

    /// Matches arguments to parameters: positional ones in order, then named ones by name.
    /// Reports and returns `None` if they do not match.
    pub(super) fn bind_args(
        &mut self,
        callee: &Ident,
        params: &[Param<'_>],
        args: &'a [Arg],
        call_span: Span,
    ) -> Option<Vec<Option<&'a Expr>>> {
        let mut slots: Vec<Option<&'a Expr>> = vec![None; params.len()];
        let mut ok = true;
        let mut positional = 0;
        for arg in args {
            match &arg.name {
                None => {
                    if positional >= params.len() {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::WrongArgumentCount,
                                format!(
                                    "`{}` takes {} argument{}, but more were given",
                                    callee.name,
                                    params.len(),
                                    plural(params.len())
                                ),
                            )
                            .with_primary(arg.value.span, "unexpected argument")
                            .with_secondary(callee.span, format!("`{}` takes ({})", callee.name, param_list(params))),
                        );
                        ok = false;
                        break;
                    }
                    slots[positional] = Some(&arg.value);
                    positional += 1;
                }
                Some(name) => match params.iter().position(|param| param.name == name.name) {
                    Some(index) if slots[index].is_some() => {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::BadNamedArgument,
                                format!("argument `{}` is given twice", name.name),
                            )
                            .with_primary(name.span, "given again here"),
                        );
                        ok = false;
                    }
                    Some(index) => slots[index] = Some(&arg.value),
                    None => {
                        let names: Vec<&str> = params.iter().map(|param| param.name).collect();
                        let mut diagnostic = Diagnostic::error(
                            ErrorCode::BadNamedArgument,
                            format!("`{}` has no parameter named `{}`", callee.name, name.name),
                        )
                        .with_primary(name.span, "unknown parameter");
                        diagnostic = match closest_name(&name.name, names.iter().copied()) {
                            Some(close) => diagnostic.with_help(format!("did you mean `{close}`?")),
                            None => diagnostic.with_note(format!("`{}` takes ({})", callee.name, param_list(params))),
                        };
                        self.report(diagnostic);
                        ok = false;
                    }
                },
            }
        }
        let missing: Vec<&str> = params
            .iter()
            .zip(&slots)
            .filter(|(param, slot)| param.required && slot.is_none())
            .map(|(param, _)| param.name)
            .collect();
        if ok && !missing.is_empty() {
            self.report(
                Diagnostic::error(
                    ErrorCode::WrongArgumentCount,
                    format!("`{}` is missing argument{} {}", callee.name, plural(missing.len()), join_names(&missing)),
                )
                .with_primary(call_span, format!("`{}` takes ({})", callee.name, param_list(params))),
            );
            ok = false;
        }
        ok.then_some(slots)
    }

    fn check_distribution(
        &mut self,
        body: &mut Body,
        callee: &'a Ident,
        distribution: &'static distributions::Distribution,
        args: &'a [Arg],
        span: Span,
    ) -> Checked {
        let params: Vec<Param<'_>> = distribution.params.iter().map(|(name, _)| required(name)).collect();
        let Some(slots) = self.bind_args(callee, &params, args, span) else {
            return self.check_args_for_errors(body, args);
        };
        // Scalar parameters given vectors make a vector of independent draws; all vector
        // arguments must then have one length.
        let mut length: Option<(Dim, Span)> = None;
        // A generic argument where a real goes could be a vector: the draw's type is unknown.
        let mut maybe_vectorised = false;
        for ((name, kind), slot) in distribution.params.iter().zip(slots) {
            let Some(arg) = slot else { continue };
            let ty = self.check_expr(body, arg).ty;
            let dim = match (kind, &ty) {
                (ParamKind::Real, Type::Unknown) => {
                    maybe_vectorised = true;
                    continue;
                }
                (_, Type::Unknown) => continue,
                (ParamKind::Real, Type::Real | Type::Int) => continue,
                (_, Type::Vec(n)) => *n,
                (ParamKind::Real, other) => {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::TypeMismatch,
                            format!("`{}`'s `{name}` must be real, found {other}", distribution.name),
                        )
                        .with_primary(arg.span, format!("this is {other}")),
                    );
                    continue;
                }
                (ParamKind::Matrix, Type::Mat(rows, columns)) => {
                    if !rows.agrees(*columns) {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::ShapeMismatch,
                                format!("`{}`'s `{name}` must be a square matrix, found {ty}", distribution.name),
                            )
                            .with_primary(arg.span, format!("this is {ty}")),
                        );
                    }
                    *rows
                }
                (ParamKind::Vector | ParamKind::Matrix, other) => {
                    let wanted = if *kind == ParamKind::Vector { "a vector" } else { "a square matrix" };
                    self.report(
                        Diagnostic::error(
                            ErrorCode::TypeMismatch,
                            format!("`{}`'s `{name}` must be {wanted}, found {other}", distribution.name),
                        )
                        .with_primary(arg.span, format!("this is {other}")),
                    );
                    continue;
                }
            };
            match length {
                Some((first, first_span)) if !first.agrees(dim) => self.report(
                    Diagnostic::error(
                        ErrorCode::ShapeMismatch,
                        format!("`{}`'s arguments have different lengths", distribution.name),
                    )
                    .with_primary(arg.span, format!("this is vec[{dim}]"))
                    .with_secondary(first_span, format!("this is vec[{first}]")),
                ),
                Some(_) => {}
                None => length = Some((dim, arg.span)),
            }
        }
        let vectorised = length.map(|(dim, _)| dim);
        let value = match (distribution.support, vectorised) {
            (Support::RealVector, dim) => Type::Vec(dim.unwrap_or(Dim::Unknown)),
            (Support::Int, _) if distribution.name == "categorical" => Type::Int,
            (Support::Real | Support::Int | Support::Bool, None) if maybe_vectorised => Type::Unknown,
            (Support::Real, None) => Type::Real,
            (Support::Int, None) => Type::Int,
            (Support::Bool, None) => Type::Bool,
            (Support::Real, Some(dim)) => Type::Vec(dim),
            (Support::Int, Some(dim)) => Type::Array(Box::new(Type::Int), dim),
            (Support::Bool, Some(dim)) => Type::Array(Box::new(Type::Bool), dim),
        };
        Checked::of(Type::Dist { name: distribution.name, value: Box::new(value) })
    }

    fn check_numeric_builtin(&mut self, body: &mut Body, callee: &'a Ident, args: &'a [Arg], span: Span) -> Checked {
        let name = callee.name.as_str();
        let params: Vec<Param<'_>> = match name {
            "dot" | "min" | "max" | "pow" => vec![required("a"), required("b")],
            "zeros" | "ones" => vec![required("n"), optional("m")],
            "fill" => vec![required("n"), required("value")],
            _ => vec![required("x")],
        };
        let Some(slots) = self.bind_args(callee, &params, args, span) else {
            return self.check_args_for_errors(body, args);
        };
        let slots: Vec<&'a Expr> = slots.into_iter().flatten().collect();
        if matches!(name, "zeros" | "ones" | "fill") {
            let rows = self.expect_constant_length(body, slots[0], name);
            let dim = |value: Option<i64>| value.map_or(Dim::Unknown, |n| Dim::Known(n.max(0) as u64));
            return Checked::of(match (name, slots.get(1)) {
                ("fill", Some(value)) => {
                    let ty = self.check_expr(body, value).ty;
                    self.expect_fits(&ty, &Type::Real, value.span, None);
                    Type::Vec(dim(rows))
                }
                (_, Some(columns)) => {
                    let columns = self.expect_constant_length(body, columns, name);
                    Type::Mat(dim(rows), dim(columns))
                }
                _ => Type::Vec(dim(rows)),
            });
        }
        let values: Vec<Checked> = slots.iter().map(|arg| self.check_expr(body, arg)).collect();
        let first = &values[0].ty;
        let bad_argument = |checker: &mut Self, ty: &Type, arg_span: Span, wanted: &str| {
            checker.report(
                Diagnostic::error(ErrorCode::TypeMismatch, format!("`{name}` expects {wanted}, found {ty}"))
                    .with_primary(arg_span, format!("this is {ty}")),
            );
            Checked::of(Type::Unknown)
        };
        match name {
            "detach" => values[0].clone(),
            _ if ELEMENTWISE.contains(&name) => match first {
                Type::Real | Type::Int => Checked::of(Type::Real),
                Type::Vec(_) | Type::Mat(..) | Type::Unknown => Checked::of(first.clone()),
                Type::Est(value) if name == "exp" && value.is_scalar() => Checked::of(first.clone()),
                Type::Est(_) if name == "exp" => bad_argument(self, first, slots[0].span, "an estimate of a real"),
                other => bad_argument(self, other, slots[0].span, "a real, vector or matrix"),
            },
            _ if ELEMENTWISE_BINARY.contains(&name) => {
                let op = if name == "pow" { BinaryOp::Pow } else { BinaryOp::Mul };
                match arithmetic(op, &values[0], &values[1]) {
                    Ok(checked) if !matches!(checked.ty, Type::Est(_)) => {
                        Checked::of(if checked.ty == Type::Int && name == "pow" { Type::Real } else { checked.ty })
                    }
                    Err(Mismatch::Shapes) => {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::ShapeMismatch,
                                format!("`{name}` of {} and {}", values[0].ty, values[1].ty),
                            )
                            .with_primary(slots[1].span, format!("this is {}", values[1].ty))
                            .with_secondary(slots[0].span, format!("this is {}", values[0].ty)),
                        );
                        Checked::of(Type::Unknown)
                    }
                    _ => bad_argument(self, &values[1].ty, span, "reals, vectors or matrices"),
                }
            }
            "sum" | "mean" => match first {
                Type::Vec(_) | Type::Mat(..) | Type::Unknown => Checked::of(Type::Real),
                other => bad_argument(self, other, slots[0].span, "a vector or matrix"),
            },
            "logsumexp" => match first {
                Type::Vec(_) | Type::Unknown => Checked::of(Type::Real),
                other => bad_argument(self, other, slots[0].span, "a vector"),
            },
            "softmax" => match first {
                Type::Vec(_) | Type::Unknown => Checked::of(first.clone()),
                other => bad_argument(self, other, slots[0].span, "a vector"),
            },
            "len" => match first {
                Type::Vec(n) | Type::Array(_, n) | Type::Mat(n, _) => {
                    Checked { ty: Type::Int, int: if let Dim::Known(n) = n { i64::try_from(*n).ok() } else { None } }
                }
                Type::Unknown => Checked::of(Type::Int),
                other => bad_argument(self, other, slots[0].span, "a vector"),
            },
            "dot" => match (first, &values[1].ty) {
                (Type::Vec(a), Type::Vec(b)) if !a.agrees(*b) => {
                    self.report(
                        Diagnostic::error(ErrorCode::ShapeMismatch, format!("`dot` of vec[{a}] and vec[{b}]"))
                            .with_primary(slots[1].span, format!("this is vec[{b}]"))
                            .with_secondary(slots[0].span, format!("this is vec[{a}]")),
                    );
                    Checked::of(Type::Real)
                }
                (Type::Vec(_) | Type::Unknown, Type::Vec(_) | Type::Unknown) => Checked::of(Type::Real),
                (Type::Vec(_) | Type::Unknown, other) => bad_argument(self, other, slots[1].span, "a vector"),
                (other, _) => bad_argument(self, other, slots[0].span, "a vector"),
            },
            _ => Checked::of(Type::Unknown),
        }
    }

    fn check_inference_form(&mut self, body: &mut Body, callee: &'a Ident, args: &'a [Arg], call: &'a Expr) -> Checked {
        let name = callee.name.as_str();
        if name == "select" {
            let mut addresses = Vec::with_capacity(args.len());
            for arg in args {
                match (&arg.name, &arg.value.kind) {
                    (None, ExprKind::Name(address)) => addresses.push(address.clone()),
                    _ => self.report(
                        Diagnostic::error(ErrorCode::UnknownSelectAddress, "`select` takes address names")
                            .with_primary(arg.value.span, "not an address name")
                            .with_help("write the addresses to keep: `select(x, y)`"),
                    ),
                }
            }
            return Checked::of(Type::Config(Config::Selection(addresses)));
        }
        if name == "sim" && !body.in_expectation() {
            self.outside_expectation(name, call.span);
        }
        let params: &[Param<'_>] = match name {
            "sim" => &[required("family")],
            "density" => &[required("family"), required("trace")],
            "marginal" => &[required("family"), required("selection"), required("algorithm")],
            "sir" => &[required("particles"), optional("proposal")],
            "posterior" => &[required("model"), required("observations")],
            _ => &[required("posterior"), required("algorithm")],
        };
        let Some(slots) = self.bind_args(callee, params, args, call.span) else {
            return self.check_args_for_errors(body, args);
        };
        let slots: Vec<&'a Expr> = slots.into_iter().flatten().collect();
        match name {
            "sim" => {
                let trace =
                    self.expect_family(body, slots[0]).map_or(Type::Unknown, |family| Type::Record(family.trace));
                Checked::of(Type::Tuple(vec![trace, Type::Real]))
            }
            "density" => {
                let first = self.check_expr(body, slots[0]).ty;
                // The log density of a distribution at a value is exact and deterministic:
                // usable anywhere, such as in a `factor`.
                if let Type::Dist { name: distribution, value } = &first {
                    let given = self.check_expr(body, slots[1]).ty;
                    let elementwise = match (&**value, &given) {
                        (Type::Real, Type::Vec(_)) => true,
                        (Type::Bool | Type::Int, Type::Array(element, _)) => element == value,
                        _ => false,
                    };
                    if !(given.fits(value) || elementwise) {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::TypeMismatch,
                                format!("`{distribution}` draws {value}, not {given}"),
                            )
                            .with_primary(slots[1].span, format!("this is {given}"))
                            .with_secondary(slots[0].span, format!("this draws {value}")),
                        );
                    }
                    return Checked::of(Type::Real);
                }
                if !body.in_expectation() {
                    self.outside_expectation(name, call.span);
                }
                let family = self.family_of(first, slots[0].span);
                let trace = self.check_expr(body, slots[1]).ty;
                match (family, &trace) {
                    (Some(family), Type::Record(fields)) => {
                        self.compare_trace(&family, fields, slots[1].span, slots[0].span, "the trace");
                    }
                    (_, Type::Unknown) | (None, _) => {}
                    (Some(_), other) => self.report(
                        Diagnostic::error(ErrorCode::TypeMismatch, format!("`density` needs a trace, found {other}"))
                            .with_primary(slots[1].span, format!("this is {other}")),
                    ),
                }
                Checked::of(Type::Real)
            }
            "sir" => {
                self.expect_positive_count(body, slots[0], "the number of particles");
                let count = self.check_expr(body, slots[0]);
                // The particles are unrolled: their number must be known when compiling.
                if count.ty == Type::Int && count.int.is_none() {
                    self.unsupported(
                        body,
                        Diagnostic::error(
                            ErrorCode::Unsupported,
                            "`sir` with a number of particles that is not a constant is not supported by the compiler yet",
                        )
                        .with_primary(slots[0].span, "not known when compiling")
                        .with_help(
                            "give the number as a literal, an integer constant (`let n = 5;`), or an argument that every call gives as one",
                        ),
                    );
                }
                let particles = count.int.and_then(|n| u64::try_from(n).ok());
                let proposal = slots.get(1).and_then(|proposal| self.expect_family(body, proposal)).map(Box::new);
                Checked::of(Type::Config(Config::Sir { particles, proposal }))
            }
            "posterior" => {
                let Some(model) = self.expect_family(body, slots[0]) else {
                    self.check_expr(body, slots[1]);
                    return Checked::of(Type::Unknown);
                };
                let observations = self.check_expr(body, slots[1]).ty;
                let Type::Record(observed) = observations else {
                    if observations != Type::Unknown {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::TypeMismatch,
                                format!("observations must be a record, found {observations}"),
                            )
                            .with_primary(slots[1].span, format!("this is {observations}")),
                        );
                    }
                    return Checked::of(Type::Unknown);
                };
                let extra: Vec<&str> = observed
                    .iter()
                    .filter(|f| !model.trace.iter().any(|m| m.name == f.name))
                    .map(|f| f.name.as_str())
                    .collect();
                if !extra.is_empty() {
                    self.report_extra(&model, &extra, slots[1].span, slots[0].span);
                }
                let latent: Vec<Field> =
                    model.trace.iter().filter(|m| !observed.iter().any(|f| f.name == m.name)).cloned().collect();
                Checked::of(Type::Config(Config::Posterior(Box::new(Family {
                    name: model.name.clone(),
                    trace: latent,
                    ret: model.ret.clone(),
                    kind: FamilyKind::Gen,
                }))))
            }
            "marginal" => {
                let family = self.expect_family(body, slots[0]);
                let selection = self.check_expr(body, slots[1]).ty;
                let algorithm = self.check_expr(body, slots[2]).ty;
                self.expect_algorithm(&algorithm, slots[2].span);
                let Some(family) = family else { return Checked::of(Type::Unknown) };
                let selected = match selection {
                    Type::Config(Config::Selection(names)) => names,
                    Type::Unknown => return Checked::of(Type::Unknown),
                    other => {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::TypeMismatch,
                                format!("`marginal` needs `select(…)`, found {other}"),
                            )
                            .with_primary(slots[1].span, format!("this is {other}")),
                        );
                        return Checked::of(Type::Unknown);
                    }
                };
                let selection_spans: Vec<Span> = match &slots[1].kind {
                    ExprKind::Call { args, .. } => args.iter().map(|arg| arg.value.span).collect(),
                    _ => Vec::new(),
                };
                let mut kept = Vec::with_capacity(selected.len());
                for (i, address) in selected.iter().enumerate() {
                    match family.trace.iter().find(|f| f.name == *address) {
                        Some(field) => kept.push(field.clone()),
                        None => {
                            let names: Vec<&str> = family.trace.iter().map(|f| f.name.as_str()).collect();
                            let span = selection_spans.get(i).copied().unwrap_or(slots[1].span);
                            let mut diagnostic = Diagnostic::error(
                                ErrorCode::UnknownSelectAddress,
                                format!("`{}` has no address `{address}`", family.name),
                            )
                            .with_primary(span, "not an address of the family")
                            .with_secondary(slots[0].span, format!("its addresses are {}", join_names(&names)));
                            if let Some(close) = closest_name(address, names.iter().copied()) {
                                diagnostic = diagnostic.with_help(format!("did you mean `{close}`?"));
                            }
                            self.report(diagnostic);
                        }
                    }
                }
                // Without a proposal, the auxiliary addresses are drawn by rerunning the `gen`
                // body with the selected ones fixed, which a built family has no body for.
                if let (
                    Type::Config(Config::Sir { proposal: None, .. }),
                    FamilyKind::Marginal | FamilyKind::Normalize,
                ) = (&algorithm, family.kind)
                {
                    self.unsupported(
                        body,
                        Diagnostic::error(
                            ErrorCode::Unsupported,
                            "`marginal` of a family that is not a `gen` application, without a proposal, is not supported by the compiler yet",
                        )
                        .with_primary(slots[0].span, format!("this is built by {}", family.kind.form()))
                        .with_secondary(slots[2].span, "this algorithm has no proposal")
                        .with_help(
                            "give `sir` a family over the auxiliary addresses to propose from (`sir(n, R)`), or take the marginal of the `gen` application itself",
                        ),
                    );
                }
                if let Type::Config(Config::Sir { proposal: Some(proposal), .. }) = &algorithm {
                    let auxiliary: Vec<Field> =
                        family.trace.iter().filter(|f| !selected.contains(&f.name)).cloned().collect();
                    let target = Family {
                        name: format!("the auxiliary choices of `{}`", family.name),
                        trace: auxiliary,
                        ret: Type::unit(),
                        kind: FamilyKind::Gen,
                    };
                    self.compare_trace(&target, &proposal.trace, slots[2].span, slots[0].span, "the proposal's trace");
                }
                Checked::of(Type::Family(Box::new(Family {
                    name: format!("marginal({})", family.name),
                    trace: kept,
                    ret: Type::unit(),
                    kind: FamilyKind::Marginal,
                })))
            }
            _ => {
                let posterior = self.check_expr(body, slots[0]).ty;
                let algorithm = self.check_expr(body, slots[1]).ty;
                self.expect_algorithm(&algorithm, slots[1].span);
                let latent = match posterior {
                    Type::Config(Config::Posterior(latent)) => latent,
                    Type::Unknown => return Checked::of(Type::Unknown),
                    other => {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::TypeMismatch,
                                format!("`normalize` needs `posterior(model, observations)`, found {other}"),
                            )
                            .with_primary(slots[0].span, format!("this is {other}")),
                        );
                        return Checked::of(Type::Unknown);
                    }
                };
                if let Type::Config(Config::Sir { proposal: Some(proposal), .. }) = &algorithm {
                    let target = Family {
                        name: format!("the posterior of `{}`", latent.name),
                        trace: latent.trace.clone(),
                        ret: Type::unit(),
                        kind: FamilyKind::Gen,
                    };
                    self.compare_trace(&target, &proposal.trace, slots[1].span, slots[0].span, "the proposal's trace");
                }
                if let Type::Config(Config::Sir { proposal: None, .. }) = &algorithm {
                    // `proposal: None` is also an unknown proposal (a generic argument checked
                    // without a call): wait for an instance a command runs.
                    self.unsupported(
                        body,
                        Diagnostic::error(
                            ErrorCode::Unsupported,
                            "`normalize` without a proposal is not supported by the compiler yet",
                        )
                        .with_primary(slots[1].span, "this algorithm has no proposal")
                        .with_help(format!(
                            "give `sir` a family over the latent addresses of `{}` to propose from: `sir(n, guide(…))`",
                            latent.name
                        )),
                    );
                }
                Checked::of(Type::Family(Box::new(Family {
                    name: format!("normalize({})", latent.name),
                    trace: latent.trace.clone(),
                    ret: latent.ret.clone(),
                    kind: FamilyKind::Normalize,
                })))
            }
        }
    }

    /// Checks that `actual` holds exactly the addresses of `family`'s trace, with fitting types.
    fn compare_trace(&mut self, family: &Family, actual: &[Field], actual_span: Span, family_span: Span, what: &str) {
        // An enumerated choice in a plate is summed out where the trace lacks it.
        let missing: Vec<&Field> = family
            .trace
            .iter()
            .filter(|m| !m.optional && !m.enumerated && !actual.iter().any(|f| f.name == m.name))
            .collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|f| f.name.as_str()).collect();
            let example = missing.iter().map(|f| format!("{}: …", f.name)).collect::<Vec<_>>().join(", ");
            self.report(
                Diagnostic::error(
                    ErrorCode::MissingAddress,
                    format!(
                        "{what} lacks address{} {} of `{}`",
                        if names.len() == 1 { "" } else { "es" },
                        join_names(&names),
                        family.name
                    ),
                )
                .with_primary(actual_span, format!("{what} has no {}", join_names(&names)))
                .with_secondary(family_span, format!("`{}` samples {}", family.name, join_names(&names)))
                .with_help(format!("add `{example}` to the observations, or sample it in the variational family")),
            );
        }
        let extra: Vec<&str> =
            actual.iter().filter(|f| !family.trace.iter().any(|m| m.name == f.name)).map(|f| f.name.as_str()).collect();
        if !extra.is_empty() {
            self.report_extra(family, &extra, actual_span, family_span);
        }
        for field in actual {
            let Some(expected) = family.trace.iter().find(|m| m.name == field.name) else { continue };
            if !field.ty.observes(&expected.ty) {
                self.report(
                    Diagnostic::error(
                        ErrorCode::TypeMismatch,
                        format!(
                            "address `{}` of `{}` is {}, but {what} gives {}",
                            field.name, family.name, expected.ty, field.ty
                        ),
                    )
                    .with_primary(actual_span, format!("`{}` is {} here", field.name, field.ty))
                    .with_secondary(
                        family_span,
                        format!("`{}` samples {} at `{}`", family.name, expected.ty, field.name),
                    ),
                );
            }
            if let (Some(given), Some(support)) = (field.support, expected.support) {
                if !support.contains(given) {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::OutsideSupport,
                            format!(
                                "`{}` samples `{}` from {}, but {what} drew it from {}",
                                family.name,
                                field.name,
                                support.describe(),
                                given.describe()
                            ),
                        )
                        .with_primary(
                            actual_span,
                            format!("`{}` may lie outside {} here", field.name, support.describe()),
                        )
                        .with_secondary(family_span, format!("its log density is -inf outside {}", support.describe()))
                        .with_help(format!(
                            "draw `{}` from a distribution on {}: {}",
                            field.name,
                            support.describe(),
                            support.guide_suggestion()
                        )),
                    );
                }
            }
        }
    }

    fn report_extra(&mut self, family: &Family, extra: &[&str], actual_span: Span, family_span: Span) {
        let names: Vec<&str> = family.trace.iter().map(|f| f.name.as_str()).collect();
        let mut diagnostic = Diagnostic::error(
            ErrorCode::ExtraAddress,
            format!(
                "`{}` has no address{} {}",
                family.name,
                if extra.len() == 1 { "" } else { "es" },
                join_names(extra)
            ),
        )
        .with_primary(
            actual_span,
            format!(
                "{} {} not sampled by `{}`",
                join_names(extra),
                if extra.len() == 1 { "is" } else { "are" },
                family.name
            ),
        )
        .with_secondary(family_span, format!("its addresses are {}", join_names(&names)));
        if let [one] = extra {
            if let Some(close) = closest_name(one, names.iter().copied()) {
                diagnostic = diagnostic.with_help(format!("did you mean `{close}`?"));
            }
        }
        self.report(diagnostic);
    }

    pub(super) fn expect_family(&mut self, body: &mut Body, expr: &'a Expr) -> Option<Family> {
        let ty = self.check_expr(body, expr).ty;
        self.family_of(ty, expr.span)
    }

    /// The family a value of type `ty` (at `span`) is; an error if it is none.
    fn family_of(&mut self, ty: Type, span: Span) -> Option<Family> {
        match ty {
            Type::Family(family) => Some(*family),
            Type::Unknown => None,
            other => {
                self.report(
                    Diagnostic::error(
                        ErrorCode::NotAGenerativeFunction,
                        format!("expected a generative function, found {other}"),
                    )
                    .with_primary(span, format!("this is {other}"))
                    .with_help("apply a `gen` function to its arguments, e.g. `guide(mu, log_sigma)`"),
                );
                None
            }
        }
    }

    /// E0400: `sim` or `density` of a family outside `E { … }`.
    fn outside_expectation(&mut self, name: &str, span: Span) {
        self.report(
            Diagnostic::error(ErrorCode::OutsideExpectation, format!("`{name}` outside an expectation"))
                .with_primary(span, format!("`{name}` is only meaningful inside `E {{ … }}`"))
                .with_help("objectives are written as `E { let (x, log_q) = sim(q); … }`"),
        );
    }

    fn expect_algorithm(&mut self, ty: &Type, span: Span) {
        if !matches!(ty, Type::Config(Config::Sir { .. }) | Type::Unknown) {
            self.report(
                Diagnostic::error(
                    ErrorCode::TypeMismatch,
                    format!("expected an inference algorithm such as `sir(n)`, found {ty}"),
                )
                .with_primary(span, format!("this is {ty}")),
            );
        }
    }

    /// Reports `ty` unless it is an estimate, and for gradients and training (`of_real`) an
    /// estimate of a real: a vector has no direction to climb.
    pub(super) fn expect_estimate(&mut self, ty: &Type, span: Span, context: &str, of_real: bool) {
        if let Type::Est(value) = ty {
            if of_real && !value.is_scalar() {
                self.report(
                    Diagnostic::error(
                        ErrorCode::NotAnEstimate,
                        format!("`{context}` needs an estimate of a real, found {ty}"),
                    )
                    .with_primary(span, format!("this is {ty}"))
                    .with_help(
                        "an objective is a real: estimate one element or the `sum` of the vector inside `E { … }`",
                    ),
                );
            }
            return;
        }
        if !matches!(ty, Type::Unknown) {
            self.report(
                Diagnostic::error(ErrorCode::NotAnEstimate, format!("`{context}` needs an estimate, found {ty}"))
                    .with_primary(span, format!("this is {ty}, not `est`"))
                    .with_help("an estimate is an `E { … }` block or a function returning one, such as `elbo(model, guide, obs)`"),
            );
        }
    }

    /// A length of `zeros`, `ones` or `fill`, which fixes the shape of the result: an `int` whose
    /// value is not known when compiling is unsupported (reported if a command reaches it).
    fn expect_constant_length(&mut self, body: &mut Body, expr: &'a Expr, name: &str) -> Option<i64> {
        let value = self.expect_int(body, expr, "a length");
        if value.is_none() && body.types.get(&expr.id) == Some(&Type::Int) {
            self.unsupported(
                body,
                Diagnostic::error(
                    ErrorCode::Unsupported,
                    format!("`{name}` of a length that is not a constant is not supported by the compiler yet"),
                )
                .with_primary(expr.span, "not known when compiling")
                .with_help("give the length as a literal, an integer constant (`let n = 5;`), or an argument that every call gives as one"),
            );
        }
        value
    }

    pub(super) fn expect_positive_count(&mut self, body: &mut Body, expr: &'a Expr, what: &str) -> Option<i64> {
        let value = self.expect_int(body, expr, what);
        if let Some(n) = value.filter(|n| *n < 1) {
            self.report(
                Diagnostic::error(ErrorCode::InvalidOption, format!("{what} must be at least 1, found {n}"))
                    .with_primary(expr.span, "not a positive count"),
            );
        }
        value
    }

    /// `mean_over(rows, f)` and `sum_over(rows, f)`, with an optional `batch: B`: the mean (sum)
    /// over the rows of a matrix (or the elements of a vector) of the estimate `f(row)`, where
    /// `f` names a `fn` of one argument returning an estimate. The function is instantiated for
    /// the row's type and recorded as a call of the argument naming it.
    fn check_over_rows(&mut self, body: &mut Body, callee: &'a Ident, args: &'a [Arg], call: &'a Expr) -> Checked {
        let name = callee.name.as_str();
        let params = [required("rows"), required("f"), optional("batch")];
        let Some(slots) = self.bind_args(callee, &params, args, call.span) else {
            return self.check_args_for_errors(body, args);
        };
        let (Some(rows), Some(function)) = (slots[0], slots[1]) else { return Checked::of(Type::real_estimate()) };
        let rows_ty = self.check_expr(body, rows).ty;
        let (count, row) = match rows_ty {
            Type::Mat(m, n) => (m, Type::Vec(n)),
            Type::Vec(n) => (n, Type::Real),
            Type::Array(element, n) => (n, *element),
            Type::Unknown => (Dim::Unknown, Type::Unknown),
            other => {
                self.report(
                    Diagnostic::error(
                        ErrorCode::TypeMismatch,
                        format!("`{name}` needs a matrix or vector of rows, found {other}"),
                    )
                    .with_primary(rows.span, format!("this is {other}"))
                    .with_help("give the data set as a `mat[n, d]` (one example per row) or a `vec[n]`"),
                );
                (Dim::Unknown, Type::Unknown)
            }
        };
        let needs_function = |checker: &mut Self, found: String| {
            checker.report(
                Diagnostic::error(
                    ErrorCode::TypeMismatch,
                    format!("`{name}` needs the name of a `fn` of one row, found {found}"),
                )
                .with_primary(function.span, "not a function of one argument")
                .with_help(format!("define `fn per_row(x: {row}) {{ E {{ … }} }}` and write `{name}(…, per_row)`")),
            );
            Checked::of(Type::real_estimate())
        };
        let ExprKind::Name(function_name) = &function.kind else {
            return needs_function(self, "an expression".into());
        };
        let definition = self.lookup_definition(function_name);
        let Some((at, ItemKind::Fn(def))) = definition.map(|(at, item)| (at, &item.kind)) else {
            return needs_function(self, format!("`{function_name}`"));
        };
        if def.params.len() != 1 {
            return needs_function(self, format!("`{function_name}` of {} arguments", def.params.len()));
        }
        if let Some(annotation) = &def.params[0].ty {
            let declared = self.resolve_annotation(annotation);
            self.expect_fits(&row, &declared, rows.span, Some(annotation.span));
        }
        let Some(index) = self.instantiate(at, vec![row], vec![None], Some((function_name.clone(), function.span)))
        else {
            return Checked::of(Type::real_estimate());
        };
        body.calls.insert(function.id, index);
        let returned = self.instance(index).ret.clone();
        if !matches!(returned, Type::Est(_) | Type::Unknown) {
            self.report(
                Diagnostic::error(
                    ErrorCode::NotAnEstimate,
                    format!("`{function_name}` returns {returned}, not an estimate"),
                )
                .with_primary(function.span, format!("`{name}` averages the estimate this returns for each row"))
                .with_help("return an objective such as `elbo(…)`, or an `E { … }`"),
            );
        }
        if let Some(batch) = slots[2] {
            let value = self.check_expr(body, batch);
            let fits = match (value.int, count) {
                (Some(size), Dim::Known(rows)) => size >= 1 && size as u64 <= rows,
                (Some(size), Dim::Unknown) => size >= 1,
                (None, _) => false,
            };
            if !fits {
                let rows = match count {
                    Dim::Known(rows) => format!("from 1 to {rows}, the number of rows"),
                    Dim::Unknown => "at least 1".to_string(),
                };
                self.report(
                    Diagnostic::error(ErrorCode::NotConstant, "a minibatch size must be a constant number of rows")
                        .with_primary(batch.span, format!("this must be an `int` constant {rows}")),
                );
            }
        }
        Checked::of(if matches!(returned, Type::Est(_)) { returned } else { Type::real_estimate() })
    }

    /// `param w: T = uniform_init(bound)` (or another initialiser; also `data`): the arguments
    /// are reals, and the value has the declared type, which must be given (a matrix, for
    /// `glorot_init`; for `data`, a real, vector or matrix).
    pub(super) fn check_initialiser(
        &mut self,
        body: &mut Body,
        call: &'a Expr,
        annotation: Option<&Type>,
        data: bool,
    ) -> Checked {
        let ExprKind::Call { callee, args } = &call.kind else { return self.check_expr(body, call) };
        let params: &[Param<'_>] = match callee.name.as_str() {
            "uniform_init" => &[required("bound")],
            "normal_init" => &[required("sd")],
            _ => &[],
        };
        if let Some(slots) = self.bind_args(callee, params, args, call.span) {
            for arg in slots.into_iter().flatten() {
                let ty = self.check_expr(body, arg).ty;
                self.expect_fits(&ty, &Type::Real, arg.span, None);
            }
        }
        let Some(annotation) = annotation else {
            self.report(
                Diagnostic::error(
                    ErrorCode::MissingAnnotation,
                    format!("`{}` needs the {}'s type", callee.name, if data { "data item" } else { "parameter" }),
                )
                .with_primary(call.span, "the shape to fill is not known")
                .with_help(format!(
                    "write the type: `{} w: mat[200, 784] = {}(…);`",
                    if data { "data" } else { "param" },
                    callee.name
                )),
            );
            return Checked::of(Type::Unknown);
        };
        if data && !matches!(annotation, Type::Real | Type::Vec(_) | Type::Mat(..) | Type::Unknown) {
            self.report(
                Diagnostic::error(
                    ErrorCode::TypeMismatch,
                    format!("`{}` fills reals, not a {annotation}", callee.name),
                )
                .with_primary(call.span, "a random initialiser draws real numbers")
                .with_help("declare the data `real`, `vec[n]` or `mat[m, n]`"),
            );
        }
        if callee.name == "glorot_init" && !matches!(annotation, Type::Mat(..) | Type::Unknown) {
            self.report(
                Diagnostic::error(ErrorCode::TypeMismatch, format!("`glorot_init` fills a matrix, not a {annotation}"))
                    .with_primary(call.span, "Glorot's bound depends on a matrix's rows and columns")
                    .with_help("give a bias or a vector `uniform_init(bound)` or `normal_init(sd)`"),
            );
        }
        body.types.insert(call.id, annotation.clone());
        Checked::of(annotation.clone())
    }

    /// `data x: T = load("file")`: the path is a string and the data has the declared type.
    pub(super) fn check_load(&mut self, body: &mut Body, call: &'a Expr, annotation: Option<&Type>) -> Checked {
        let ExprKind::Call { callee, args } = &call.kind else { return self.check_expr(body, call) };
        let Some(annotation) = annotation else { return self.check_expr(body, call) };
        if let Some(slots) = self.bind_args(callee, &[required("path")], args, call.span) {
            if let Some(path) = slots[0] {
                let ty = self.check_expr(body, path).ty;
                self.expect_fits(&ty, &Type::Str, path.span, None);
            }
        }
        body.types.insert(call.id, annotation.clone());
        Checked::of(annotation.clone())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn param_list(params: &[Param<'_>]) -> String {
    params
        .iter()
        .map(|param| if param.required { param.name.to_string() } else { format!("{}?", param.name) })
        .collect::<Vec<_>>()
        .join(", ")
}
