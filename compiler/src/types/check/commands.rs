//! Commands: `print` and `maximize`/`minimize` with their `wrt` lists and `with { … }` options.

use std::collections::HashMap;

use super::body::{Body, BodyKind};
use super::calls::{optional, required};
use super::Checker;
use crate::diagnostics::{closest_name, Diagnostic, ErrorCode};
use crate::syntax::ast::{Arg, Expr, ExprKind, Ident, ItemKind, Optimize};
use crate::syntax::span::Span;
use crate::types::ty::{Config, Dim, Report, Type};

/// An image's name has at most this many characters (it is a file's name, with `.png`).
const MAX_IMAGE_NAME: usize = 100;

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
    ("on_nan", OptionKind::OneOf(&["stop", "skip"])),
    ("diagnostics", OptionKind::Int),
    ("precision", OptionKind::OneOf(&["f32", "f64"])),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum OptionKind {
    Optimizer,
    Count,
    Int,
    Real,
    Str,
    /// One of these strings.
    OneOf(&'static [&'static str]),
}

impl<'a> Checker<'a> {
    pub(super) fn check_print(&mut self, file: usize, exprs: &'a [Expr]) {
        let mut body = Body::new(BodyKind::TopLevel);
        for expr in exprs {
            match &expr.kind {
                // `image(…)` only stands as a whole expression of a `print` (elsewhere: E0505).
                ExprKind::Call { callee, args }
                    if callee.name == "image" && self.lookup_definition("image").is_none() =>
                {
                    self.check_image(&mut body, file, callee, args, expr);
                }
                _ => {
                    let ty = self.check_expr(&mut body, expr).ty;
                    self.expect_printable(&ty, expr.span);
                }
            }
        }
        self.output.record_top_level(file, body.types, body.calls);
    }

    /// `print` shows data, traces and the results of `estimate`, `grad`, `sample` and `image`;
    /// an estimate, a distribution or a family is not a value to show but one to run.
    fn expect_printable(&mut self, ty: &Type, span: Span) {
        let help = match ty {
            Type::Est(_) => "`print estimate(e, samples: 1000)` computes its mean and standard error",
            Type::Dist { .. } => "draw from it in `E { … }`, or print its log density: `density(d, x)`",
            Type::Family(_) => "`print sample(f, 10)` draws traces from it",
            Type::Config(_) => "it is an argument of `marginal`, `posterior` or `normalize`",
            _ => return,
        };
        self.report(
            Diagnostic::error(ErrorCode::TypeMismatch, format!("cannot print {ty}: `print` shows values"))
                .with_primary(span, format!("this is {ty}"))
                .with_help(help),
        );
    }

    /// `image(name, pixels, width: W, columns: C)`: `name` a string literal that can be a file's
    /// stem (unique in the file), `pixels` a `vec[n]` (one image) or a `mat[k, n]` (one per
    /// row), `W` an `int` constant dividing `n`, `C` a positive `int` constant.
    fn check_image(&mut self, body: &mut Body, file: usize, callee: &'a Ident, args: &'a [Arg], call: &'a Expr) {
        body.types.insert(call.id, Type::Report(Report::Image));
        let params = [required("name"), required("pixels"), required("width"), optional("columns")];
        let Some(slots) = self.bind_args(callee, &params, args, call.span) else {
            self.check_args_for_errors(body, args);
            return;
        };
        if let Some(name) = slots[0] {
            self.check_expr(body, name);
            self.check_image_name(file, name);
        }
        let pixels = slots[1].map(|pixels| (pixels, self.check_expr(body, pixels).ty));
        let per_image = match &pixels {
            Some((_, Type::Vec(n) | Type::Mat(_, n))) => *n,
            Some((expr, ty)) if !ty.is_unknown() => {
                self.report(
                    Diagnostic::error(
                        ErrorCode::TypeMismatch,
                        format!("an image's pixels must be a `vec[n]` or a `mat[k, n]`, found {ty}"),
                    )
                    .with_primary(expr.span, format!("this is {ty}"))
                    .with_help(
                        "one image is a `vec[n]` of values from 0 (black) to 1 (white), several the rows of a matrix",
                    ),
                );
                Dim::Unknown
            }
            _ => Dim::Unknown,
        };
        if let Some((expr, Type::Vec(Dim::Known(0)) | Type::Mat(Dim::Known(0), _) | Type::Mat(_, Dim::Known(0)))) =
            &pixels
        {
            self.report(
                Diagnostic::error(ErrorCode::ShapeMismatch, "an image needs at least one image of at least one pixel")
                    .with_primary(expr.span, "this has no elements"),
            );
        }
        let mut constant = |checker: &mut Self, expr: &'a Expr, what: &str| {
            let value = checker.expect_positive_count(body, expr, what);
            if value.is_none() && matches!(body.types.get(&expr.id), Some(Type::Int)) {
                checker.report(
                    Diagnostic::error(ErrorCode::NotConstant, format!("{what} must be a constant"))
                        .with_primary(expr.span, "not known before the program runs")
                        .with_help("write an `int` literal, or the name of an `int` constant (`let side = 28;`)"),
                );
            }
            value.filter(|n| *n >= 1)
        };
        let width = slots[2].and_then(|width| Some((width, constant(self, width, "an image's `width`")?)));
        if let Some(columns) = slots[3] {
            constant(self, columns, "the number of `columns`");
        }
        if let (Some((width_expr, width)), Dim::Known(n), Some((pixels, _))) = (width, per_image, &pixels) {
            if n > 0 && n % width as u64 != 0 {
                self.report(
                    Diagnostic::error(
                        ErrorCode::ShapeMismatch,
                        format!("an image of {n} pixels cannot be {width} pixels wide"),
                    )
                    .with_primary(width_expr.span, format!("{width} does not divide {n}"))
                    .with_secondary(pixels.span, format!("each image here has {n} pixels"))
                    .with_help(format!("give a width that divides {n}: the image's height is {n} / width")),
                );
            }
        }
    }

    /// An image's name is a string literal of letters, digits, `-` and `_` (the stem of the
    /// file `--out DIR` writes), and no other `image` of the file has it.
    fn check_image_name(&mut self, file: usize, name: &'a Expr) {
        let ExprKind::Str(text) = &name.kind else {
            self.report(
                Diagnostic::error(ErrorCode::InvalidImage, "an image's name must be a string literal")
                    .with_primary(name.span, "not a string literal")
                    .with_help("name the picture as its file will be named, without `.png`: `image(\"samples\", …)`"),
            );
            return;
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let problem = if text.is_empty() {
            Some("the name is empty".to_string())
        } else if text.chars().count() > MAX_IMAGE_NAME {
            Some(format!("longer than {MAX_IMAGE_NAME} characters"))
        } else {
            text.chars().find(|c| !allowed(*c)).map(|c| format!("{c:?} is not a letter, digit, `-` or `_`"))
        };
        if let Some(problem) = problem {
            self.report(
                Diagnostic::error(ErrorCode::InvalidImage, format!("{text:?} cannot name an image's file"))
                    .with_primary(name.span, problem)
                    .with_help("`--out DIR` writes `DIR/NAME.png`: name it with letters, digits, `-` and `_`"),
            );
            return;
        }
        let key = (file, text.clone());
        match self.image_names.get(&key) {
            Some(first) => {
                let first = *first;
                self.report(
                    Diagnostic::error(ErrorCode::InvalidImage, format!("two images are named {text:?}"))
                        .with_primary(name.span, "named again here")
                        .with_secondary(first, "first named here")
                        .with_help("each picture is written to its own file: give each `image` its own name"),
                );
            }
            None => {
                self.image_names.insert(key, name.span);
            }
        }
    }

    /// Whether a name in `wrt [...]` names a `param` or, with dots, a part of a record
    /// parameter (`net.w1`); reports it if not.
    fn check_wrt_name(&mut self, name: &crate::syntax::ast::Ident) -> bool {
        let mut path = name.name.split('.');
        let head = path.next().unwrap_or_default();
        let is_param =
            matches!(self.lookup_definition(head), Some((_, item)) if matches!(item.kind, ItemKind::Param(_)));
        if !is_param {
            self.report(
                Diagnostic::error(ErrorCode::InvalidWrt, format!("`{head}` is not a `param`"))
                    .with_primary(name.span, "only parameters can be trained")
                    .with_help("declare it with `param NAME: TYPE = initial value;`"),
            );
            return false;
        }
        let mut ty = self.global(head).map_or(Type::Unknown, |(ty, _)| ty);
        let mut reached = head.to_string();
        for field in path {
            let next = match &ty {
                Type::Record(fields) => fields.iter().find(|f| f.name == field).map(|f| f.ty.clone()),
                Type::Unknown => Some(Type::Unknown),
                _ => None,
            };
            let Some(next) = next else {
                let mut diagnostic =
                    Diagnostic::error(ErrorCode::InvalidWrt, format!("`{reached}` has no part `{field}`"))
                        .with_primary(name.span, format!("`{reached}` is {ty}"));
                if let Type::Record(fields) = &ty {
                    if let Some(close) = closest_name(field, fields.iter().map(|f| f.name.as_str())) {
                        diagnostic = diagnostic.with_help(format!("did you mean `{reached}.{close}`?"));
                    }
                }
                self.report(diagnostic);
                return false;
            };
            ty = next;
            reached = format!("{reached}.{field}");
        }
        true
    }

    pub(super) fn check_optimize(&mut self, file: usize, optimize: &'a Optimize) {
        let mut body = Body::new(BodyKind::TopLevel);
        let verb = match optimize.direction {
            crate::syntax::ast::Direction::Maximize => "maximize",
            crate::syntax::ast::Direction::Minimize => "minimize",
        };
        let mut trained_by: Vec<(String, Span)> = Vec::new();
        for objective in &optimize.objectives {
            let ty = self.check_expr(&mut body, &objective.expr).ty;
            self.expect_estimate(&ty, objective.expr.span, verb, true);
            let Some(wrt) = &objective.wrt else { continue };
            for name in wrt {
                if !self.check_wrt_name(name) {
                    continue;
                }
                let overlapping = |other: &str| {
                    let (short, long) = if other.len() <= name.name.len() {
                        (other, name.name.as_str())
                    } else {
                        (name.name.as_str(), other)
                    };
                    long == short || long.strip_prefix(short).is_some_and(|rest| rest.starts_with('.'))
                };
                if let Some((first_name, first)) = trained_by.iter().find(|(other, _)| overlapping(other)) {
                    let message = if *first_name == name.name {
                        format!("`{}` is trained by two objectives", name.name)
                    } else {
                        format!("`{}` and `{first_name}` share parameters", name.name)
                    };
                    self.report(
                        Diagnostic::error(ErrorCode::OverlappingWrt, message)
                            .with_primary(name.span, "listed again here")
                            .with_secondary(*first, "first listed here")
                            .with_help("each parameter belongs to exactly one objective's `wrt` group"),
                    );
                } else {
                    trained_by.push((name.name.clone(), name.span));
                }
            }
        }
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for option in &optimize.options {
            let name = option.name.name.as_str();
            // An optimizer given for another option is that option's error (E0500, E0501).
            body.optimizer_option = Some(option.value.id);
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
                    "an optimizer such as `adam(lr: 0.001)`".to_string(),
                ),
                OptionKind::Count => (
                    matches!(value.ty, Type::Int | Type::Unknown) && value.int.is_none_or(|n| n >= 1),
                    "a positive integer".to_string(),
                ),
                OptionKind::Int => (matches!(value.ty, Type::Int | Type::Unknown), "an integer".to_string()),
                OptionKind::Real => (value.ty.fits(&Type::Real), "a number".to_string()),
                OptionKind::Str => (matches!(value.ty, Type::Str | Type::Unknown), "a string".to_string()),
                OptionKind::OneOf(choices) => {
                    let fits = match &option.value.kind {
                        ExprKind::Str(text) => choices.contains(&text.as_str()),
                        _ => matches!(value.ty, Type::Str | Type::Unknown),
                    };
                    let quoted: Vec<String> = choices.iter().map(|choice| format!("\"{choice}\"")).collect();
                    (fits, quoted.join(" or "))
                }
            };
            if !fits {
                let found = match (&option.value.kind, value.int) {
                    (ExprKind::Str(text), _) => format!("this is \"{text}\""),
                    (_, Some(n)) => format!("this is {n}"),
                    _ => format!("this is {}", value.ty),
                };
                self.report(
                    Diagnostic::error(ErrorCode::InvalidOption, format!("option `{name}` must be {wanted}"))
                        .with_primary(option.value.span, found),
                );
            }
        }
        self.output.record_top_level(file, body.types, body.calls);
    }
}
