//! Written types (`real`, `vec[n]`, `{x: real}`, …) to checked types. Dimensions are integer
//! literals or names of integer constants (`let n = 3;`).

use super::Checker;
use crate::diagnostics::{closest_name, Diagnostic, ErrorCode};
use crate::syntax::ast::{Dim as DimExpr, TypeExpr, TypeExprKind};
use crate::types::ty::{Dim, Field, Type};

const TYPE_NAMES: &[&str] = &["real", "int", "bool", "est", "vec", "mat"];

impl Checker<'_> {
    pub(super) fn resolve_annotation(&mut self, annotation: &TypeExpr) -> Type {
        match &annotation.kind {
            TypeExprKind::Named(name) => match name.name.as_str() {
                "real" => Type::Real,
                "int" => Type::Int,
                "bool" => Type::Bool,
                "est" => Type::real_estimate(),
                "vec" | "mat" => {
                    let example = if name.name == "vec" { "vec[3]" } else { "mat[2, 3]" };
                    self.report(
                        Diagnostic::error(ErrorCode::UnknownType, format!("`{}` needs its dimensions", name.name))
                            .with_primary(name.span, "dimensions missing")
                            .with_help(format!("write e.g. `{example}`")),
                    );
                    Type::Unknown
                }
                other => {
                    let mut diagnostic = Diagnostic::error(ErrorCode::UnknownType, format!("unknown type `{other}`"))
                        .with_primary(name.span, "not a type");
                    diagnostic = match closest_name(other, TYPE_NAMES.iter().copied()) {
                        Some(close) => diagnostic.with_help(format!("did you mean `{close}`?")),
                        None => diagnostic
                            .with_note("the types are real, int, bool, vec[n], mat[m, n], tuples, records and est"),
                    };
                    self.report(diagnostic);
                    Type::Unknown
                }
            },
            TypeExprKind::Vec(n) => Type::Vec(self.resolve_dim(n)),
            TypeExprKind::Mat(m, n) => Type::Mat(self.resolve_dim(m), self.resolve_dim(n)),
            TypeExprKind::Array(element, n) => {
                let length = self.resolve_dim(n);
                match self.resolve_annotation(element) {
                    element @ (Type::Int | Type::Bool | Type::Unknown) => Type::Array(Box::new(element), length),
                    other => {
                        let help = match other {
                            Type::Real => format!("a vector of reals is written `vec[{length}]`"),
                            _ => "arrays hold `int`s or `bool`s: `[int; n]`, `[bool; n]`".to_string(),
                        };
                        self.report(
                            Diagnostic::error(ErrorCode::UnknownType, format!("`[{other}; {length}]` is not a type"))
                                .with_primary(element.span, "not an `int` or a `bool`")
                                .with_help(help),
                        );
                        Type::Unknown
                    }
                }
            }
            TypeExprKind::Tuple(parts) => Type::Tuple(parts.iter().map(|part| self.resolve_annotation(part)).collect()),
            TypeExprKind::Record(fields) => {
                let mut resolved: Vec<Field> = Vec::with_capacity(fields.len());
                for (name, ty) in fields {
                    let ty = self.resolve_annotation(ty);
                    if resolved.iter().any(|f| f.name == name.name) {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::DuplicateParameter,
                                format!("field `{}` is declared twice", name.name),
                            )
                            .with_primary(name.span, "repeated field"),
                        );
                        continue;
                    }
                    resolved.push(Field::new(name.name.clone(), ty));
                }
                Type::Record(resolved)
            }
        }
    }

    fn resolve_dim(&mut self, dim: &DimExpr) -> Dim {
        match dim {
            DimExpr::Literal(n, _) => Dim::Known(*n),
            DimExpr::Name(name) => match self.global(&name.name) {
                Some((Type::Int, Some(value))) if value >= 0 => Dim::Known(value as u64),
                Some((Type::Unknown, _)) => Dim::Unknown,
                found => {
                    let why = match found {
                        Some((ty, _)) => format!("`{}` is {ty}, not an integer constant", name.name),
                        None => format!("`{}` is not a top-level constant", name.name),
                    };
                    self.report(
                        Diagnostic::error(
                            ErrorCode::NotConstant,
                            format!("dimension `{}` is not a compile-time constant", name.name),
                        )
                        .with_primary(name.span, why)
                        .with_help(format!("define it at top level: `let {} = 3;`", name.name)),
                    );
                    Dim::Unknown
                }
            },
        }
    }
}
