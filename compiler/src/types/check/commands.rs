//! Commands: `print` and `maximize`/`minimize` with their `wrt` lists and `with { … }` options.

use std::collections::HashMap;

use super::body::{Body, BodyKind};
use super::Checker;
use crate::diagnostics::{closest_name, Diagnostic, ErrorCode};
use crate::syntax::ast::{Expr, ItemKind, Optimize};
use crate::syntax::span::Span;
use crate::types::ty::{Config, Type};

/// The options of `maximize … with { … }` and the types they take.
const OPTIONS: &[(&str, OptionKind)] = &[
    ("optimizer", OptionKind::Optimizer),
    ("steps", OptionKind::Count),
    ("particles", OptionKind::Count),
    ("seed", OptionKind::Int),
    ("tolerance", OptionKind::Real),
    ("patience", OptionKind::Count),
    ("clip", OptionKind::Real),
    ("schedule", OptionKind::Str),
    ("on_nan", OptionKind::Str),
    ("diagnostics", OptionKind::Int),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum OptionKind {
    Optimizer,
    Count,
    Int,
    Real,
    Str,
}

impl<'a> Checker<'a> {
    pub(super) fn check_print(&mut self, file: usize, exprs: &'a [Expr]) {
        let mut body = Body::new(BodyKind::TopLevel);
        for expr in exprs {
            self.check_expr(&mut body, expr);
        }
        self.output.record_top_level(file, body.types, body.calls);
    }

    pub(super) fn check_optimize(&mut self, file: usize, optimize: &'a Optimize) {
        let mut body = Body::new(BodyKind::TopLevel);
        let verb = match optimize.direction {
            crate::syntax::ast::Direction::Maximize => "maximize",
            crate::syntax::ast::Direction::Minimize => "minimize",
        };
        let mut trained_by: HashMap<String, Span> = HashMap::new();
        for objective in &optimize.objectives {
            let ty = self.check_expr(&mut body, &objective.expr).ty;
            self.expect_estimate(&ty, objective.expr.span, verb);
            let Some(wrt) = &objective.wrt else { continue };
            for name in wrt {
                let is_param = matches!(self.lookup_definition(&name.name), Some((_, item)) if matches!(item.kind, ItemKind::Param(_)));
                if !is_param {
                    self.report(
                        Diagnostic::error(ErrorCode::InvalidWrt, format!("`{}` is not a `param`", name.name))
                            .with_primary(name.span, "only parameters can be trained")
                            .with_help("declare it with `param NAME: TYPE = initial value;`"),
                    );
                    continue;
                }
                if let Some(first) = trained_by.get(&name.name) {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::OverlappingWrt,
                            format!("`{}` is trained by two objectives", name.name),
                        )
                        .with_primary(name.span, "listed again here")
                        .with_secondary(*first, "first listed here")
                        .with_help("each parameter belongs to exactly one objective's `wrt` group"),
                    );
                } else {
                    trained_by.insert(name.name.clone(), name.span);
                }
            }
        }
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for option in &optimize.options {
            let name = option.name.name.as_str();
            let value = self.check_expr(&mut body, &option.value);
            if let Some(first) = seen.insert(name, option.name.span) {
                self.report(
                    Diagnostic::error(ErrorCode::InvalidOption, format!("option `{name}` is given twice"))
                        .with_primary(option.name.span, "given again here")
                        .with_secondary(first, "first given here"),
                );
                continue;
            }
            let Some((_, kind)) = OPTIONS.iter().find(|(known, _)| *known == name) else {
                let names: Vec<&str> = OPTIONS.iter().map(|(known, _)| *known).collect();
                let mut diagnostic = Diagnostic::error(ErrorCode::UnknownOption, format!("unknown option `{name}`"))
                    .with_primary(option.name.span, format!("`{verb}` has no such option"));
                diagnostic = match closest_name(name, names.iter().copied()) {
                    Some(close) => diagnostic.with_help(format!("did you mean `{close}`?")),
                    None => diagnostic.with_note(format!("the options are {}", names.join(", "))),
                };
                self.report(diagnostic);
                continue;
            };
            let (fits, wanted) = match kind {
                OptionKind::Optimizer => (
                    matches!(value.ty, Type::Config(Config::Optimizer(_)) | Type::Unknown),
                    "an optimizer such as `adam(lr: 0.001)`",
                ),
                OptionKind::Count => (
                    matches!(value.ty, Type::Int | Type::Unknown) && value.int.is_none_or(|n| n >= 1),
                    "a positive integer",
                ),
                OptionKind::Int => (matches!(value.ty, Type::Int | Type::Unknown), "an integer"),
                OptionKind::Real => (value.ty.fits(&Type::Real), "a number"),
                OptionKind::Str => (matches!(value.ty, Type::Str | Type::Unknown), "a string"),
            };
            if !fits {
                self.report(
                    Diagnostic::error(ErrorCode::InvalidOption, format!("option `{name}` must be {wanted}"))
                        .with_primary(
                            option.value.span,
                            match value.int {
                                Some(n) => format!("this is {n}"),
                                None => format!("this is {}", value.ty),
                            },
                        ),
                );
            }
        }
        self.output.record_top_level(file, body.types, body.calls);
    }
}
