//! Source text to syntax tree: tokens (logos), parser (chumsky), AST with spans, formatter.
//!
//! Nothing here knows about types or meaning; `types` checks what this module builds.

pub mod ast;
pub mod format;
pub mod parser;
pub mod sexp;
pub mod span;
pub mod token;
pub mod visit;

pub use parser::{parse, Parsed};
pub use span::Span;
