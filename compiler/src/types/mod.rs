//! Name resolution, type, shape and trace-type checking.

use crate::diagnostics::{Diagnostic, SourceMap};
use crate::syntax::ast::Program;

#[derive(Debug, Default)]
pub struct CheckedProgram {}

pub fn check(_programs: &[&Program], _library_files: usize, _sources: &SourceMap, _diagnostics: &mut Vec<Diagnostic>) -> CheckedProgram {
    CheckedProgram {}
}
