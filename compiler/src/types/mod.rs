//! Name resolution, type and shape checking, and trace types.
//!
//! The checker reads the parsed files (standard library first) and produces a
//! [`CheckedProgram`]: the type of every expression of every function *instance* (generic
//! functions are checked once per distinct argument types, at their call sites), the trace
//! type of every `gen` instance, and the resolved type of every global. It reports problems as
//! diagnostics and never stops at the first: an expression whose type cannot be known gets
//! [`Type::Unknown`], which agrees with everything, so each mistake is reported once.
//!
//! It must not evaluate programs (beyond integer constants for shapes) or lower them.

mod check;
pub mod ty;

use std::collections::HashMap;

pub(crate) use check::INITIALISERS;
pub use check::{builtin_names, check};
pub use ty::{Config, Dim, Family, FamilyKind, Field, Report, Type};

use crate::syntax::ast::ExprId;

/// Identifies a top-level item: `(file index, item index)` in the checked files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    pub file: usize,
    pub item: usize,
}

/// One checked body of a `gen` or `fn` definition for one list of argument types.
#[derive(Clone, Debug)]
pub struct Instance {
    pub item: ItemRef,
    pub args: Vec<Type>,
    /// Integer arguments known at compile time (they fix shapes inside the body).
    pub constant_args: Vec<Option<i64>>,
    pub ret: Type,
    /// For `gen` definitions: the trace type, one field per address.
    pub trace: Option<Vec<Field>>,
    /// The type of every expression of the body, for this instance.
    pub types: HashMap<ExprId, Type>,
    /// The instance each call of a `gen`/`fn` definition in the body resolved to.
    pub calls: HashMap<ExprId, usize>,
}

/// A top-level `param`, `data` or `let` with its checked type and, for integers, its value.
#[derive(Clone, Debug)]
pub struct Global {
    pub item: ItemRef,
    pub ty: Type,
    pub constant: Option<i64>,
}

/// What the checker learnt, for the stages after it.
#[derive(Clone, Debug, Default)]
pub struct CheckedProgram {
    pub instances: Vec<Instance>,
    pub globals: HashMap<String, Global>,
    /// The types of top-level expressions (global values, commands), per file.
    pub top_level_types: Vec<HashMap<ExprId, Type>>,
    /// The instances called by top-level expressions, per file.
    pub top_level_calls: Vec<HashMap<ExprId, usize>>,
}

impl CheckedProgram {
    fn record_top_level(&mut self, file: usize, types: HashMap<ExprId, Type>, calls: HashMap<ExprId, usize>) {
        if let Some(table) = self.top_level_types.get_mut(file) {
            table.extend(types);
        }
        if let Some(table) = self.top_level_calls.get_mut(file) {
            table.extend(calls);
        }
    }
}
