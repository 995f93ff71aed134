//! Written types (`real`, `vec[n]`, `{x: real}`, …) to checked types. Dimensions are integer
//! literals or names of integer constants (`let n = 3;`).

use super::Checker;
use crate::diagnostics::{closest_name, Diagnostic, ErrorCode};
use crate::syntax::ast::{Dim as DimExpr, TypeAlias, TypeExpr, TypeExprKind};
use crate::syntax::span::Span;
use crate::types::ty::{Dim, Field, Type};
use crate::types::ItemRef;

const TYPE_NAMES: &[&str] = &["real", "int", "bool", "est", "vec", "mat"];

impl<'a> Checker<'a> {
    /// Records a `type` alias; one of the same name as a built-in type, or as another alias
    /// (unless that is the standard library's, which a user alias replaces), is an error.
    pub(super) fn collect_alias(&mut self, at: ItemRef, alias: &'a TypeAlias) {
        let name = alias.name.name.as_str();
        if TYPE_NAMES.contains(&name) {
            self.report(
                Diagnostic::error(ErrorCode::DuplicateDefinition, format!("`{name}` is a built-in type"))
                    .with_primary(alias.name.span, "cannot be redefined")
                    .with_help("give the alias another name"),
            );
            return;
        }
        match self.aliases.get(name) {
            Some((previous, _)) if previous.file < self.library_files && at.file >= self.library_files => {
                self.aliases.insert(name, (at, alias));
            }
            Some((_, previous)) => {
                let previous_span = previous.name.span;
                self.report(
                    Diagnostic::error(
                        ErrorCode::DuplicateDefinition,
                        format!("type `{name}` is defined more than once"),
                    )
                    .with_primary(alias.name.span, "redefined here")
                    .with_secondary(previous_span, "first defined here")
                    .with_help("rename one of the aliases"),
                );
            }
            None => {
                self.aliases.insert(name, (at, alias));
            }
        }
    }

    /// The type an alias stands for, resolved on first use; `None` if there is no such alias.
    /// An alias whose type refers back to it is reported (at the use that closes the cycle,
    /// `span`) and stands for an unknown type.
    pub(super) fn resolve_alias(&mut self, name: &str, span: Span) -> Option<Type> {
        let (_, alias) = *self.aliases.get(name)?;
        let key = alias.name.name.as_str();
        match self.alias_types.get(key) {
            Some(Some(ty)) => return Some(ty.clone()),
            Some(None) => {
                self.report(
                    Diagnostic::error(ErrorCode::Recursion, format!("type `{name}` is defined in terms of itself"))
                        .with_primary(span, "used in its own definition")
                        .with_secondary(alias.name.span, format!("`{name}` is defined here"))
                        .with_note("a type has a fixed, finite shape, so an alias cannot contain itself"),
                );
                return Some(Type::Unknown);
            }
            None => {}
        }
        if !self.enter_definition(alias.name.span) {
            return Some(Type::Unknown);
        }
        self.alias_types.insert(key, None);
        let ty = self.resolve_annotation(&alias.ty);
        self.definition_depth -= 1;
        self.alias_types.insert(key, Some(ty.clone()));
        Some(ty)
    }

    pub(super) fn resolve_annotation(&mut self, annotation: &TypeExpr) -> Type {
        let ty = self.resolve_annotation_kind(annotation);
        // Aliases can double a type at each step (`type B = {l: A, r: A};`), as `let`s can values.
        if ty.size_exceeds(super::expr::MAX_TYPE_SIZE) {
            self.report_limit(
                Diagnostic::error(ErrorCode::TypeTooLarge, "this type is too large")
                    .with_primary(annotation.span, format!("it has more than {} parts", super::expr::MAX_TYPE_SIZE))
                    .with_help("types that double at each step grow exponentially; use vectors for repeated data"),
            );
            return Type::Unknown;
        }
        ty
    }

    fn resolve_annotation_kind(&mut self, annotation: &TypeExpr) -> Type {
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
                    if let Some(ty) = self.resolve_alias(other, name.span) {
                        return ty;
                    }
                    let mut diagnostic = Diagnostic::error(ErrorCode::UnknownType, format!("unknown type `{other}`"))
                        .with_primary(name.span, "not a type");
                    let mut known: Vec<&str> = TYPE_NAMES.to_vec();
                    known.extend(self.aliases.keys().copied());
                    diagnostic = match closest_name(other, known) {
                        Some(close) => diagnostic.with_help(format!("did you mean `{close}`?")),
                        None => diagnostic
                            .with_note("the types are real, int, bool, vec[n], mat[m, n], tuples, records, est and the names `type` gives them"),
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
