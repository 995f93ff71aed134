//! IR types: every shape is static.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Real,
    Int,
    Bool,
    Vec(u32),
    Mat(u32, u32),
    /// A random stream; consumed by each draw, which returns its successor.
    Rng,
}

impl Type {
    /// How many reals a value of this type holds (one for a scalar).
    pub fn elements(self) -> usize {
        match self {
            Type::Vec(n) => n as usize,
            Type::Mat(rows, cols) => rows as usize * cols as usize,
            _ => 1,
        }
    }

    /// A matrix's `(rows, columns)`; `None` for any other type.
    pub fn shape(self) -> Option<(usize, usize)> {
        match self {
            Type::Mat(rows, cols) => Some((rows as usize, cols as usize)),
            _ => None,
        }
    }

    /// Whether values of this type carry tangents (reals, vectors and matrices of reals).
    pub fn is_differentiable(self) -> bool {
        matches!(self, Type::Real | Type::Vec(_) | Type::Mat(..))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Real => f.write_str("real"),
            Type::Int => f.write_str("int"),
            Type::Bool => f.write_str("bool"),
            Type::Vec(n) => write!(f, "vec[{n}]"),
            Type::Mat(m, n) => write!(f, "mat[{m}, {n}]"),
            Type::Rng => f.write_str("rng"),
        }
    }
}
