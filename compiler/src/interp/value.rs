//! Values at run time and the elementwise, indexing and product operations on them.

use ppl_runtime::Rng;

use super::{fail, ErrorKind, InterpError};

#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeValue {
    Real(f64),
    Int(i64),
    Bool(bool),
    Vec(Vec<f64>),
    /// Row-major.
    Mat {
        rows: usize,
        cols: usize,
        data: Vec<f64>,
    },
    Rng(Box<Rng>),
}

impl RuntimeValue {
    /// A real, vector or matrix of type `ty` from its reals (row-major).
    pub fn from_reals(ty: crate::ir::Type, data: &[f64]) -> RuntimeValue {
        match ty {
            crate::ir::Type::Vec(_) => RuntimeValue::Vec(data.to_vec()),
            crate::ir::Type::Mat(rows, cols) => {
                RuntimeValue::Mat { rows: rows as usize, cols: cols as usize, data: data.to_vec() }
            }
            _ => RuntimeValue::Real(data.first().copied().unwrap_or(f64::NAN)),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RuntimeValue::Real(_) => "real",
            RuntimeValue::Int(_) => "int",
            RuntimeValue::Bool(_) => "bool",
            RuntimeValue::Vec(_) => "vector",
            RuntimeValue::Mat { .. } => "matrix",
            RuntimeValue::Rng(_) => "stream",
        }
    }

    pub fn as_bool(&self) -> Result<bool, InterpError> {
        match self {
            RuntimeValue::Bool(b) => Ok(*b),
            other => fail(format!("expected a bool, found a {}", other.kind()), None),
        }
    }

    pub fn as_int(&self) -> Result<i64, InterpError> {
        match self {
            RuntimeValue::Int(n) => Ok(*n),
            other => fail(format!("expected an int, found a {}", other.kind()), None),
        }
    }

    /// A real, or an int converted to one.
    pub fn as_real(&self) -> Result<f64, InterpError> {
        match self {
            RuntimeValue::Real(x) => Ok(*x),
            RuntimeValue::Int(n) => Ok(*n as f64),
            other => fail(format!("expected a real, found a {}", other.kind()), None),
        }
    }

    pub fn as_rng(&self) -> Result<&Rng, InterpError> {
        match self {
            RuntimeValue::Rng(rng) => Ok(rng),
            other => fail(format!("expected a stream, found a {}", other.kind()), None),
        }
    }

    pub fn has_nan(&self) -> bool {
        match self {
            RuntimeValue::Real(x) => x.is_nan(),
            RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data.iter().any(|x| x.is_nan()),
            _ => false,
        }
    }

    /// The elements of a vector or matrix (row-major).
    pub fn elements(&self) -> Result<&[f64], InterpError> {
        match self {
            RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => Ok(data),
            other => fail(format!("expected a vector or matrix, found a {}", other.kind()), None),
        }
    }

    /// Applies `f` to a real or to every element of a vector or matrix.
    pub fn map(&self, f: fn(f64) -> f64) -> Result<RuntimeValue, InterpError> {
        Ok(match self {
            RuntimeValue::Real(x) => RuntimeValue::Real(f(*x)),
            RuntimeValue::Int(n) => RuntimeValue::Real(f(*n as f64)),
            RuntimeValue::Vec(data) => RuntimeValue::Vec(data.iter().map(|x| f(*x)).collect()),
            RuntimeValue::Mat { rows, cols, data } => {
                RuntimeValue::Mat { rows: *rows, cols: *cols, data: data.iter().map(|x| f(*x)).collect() }
            }
            other => return fail(format!("arithmetic on a {}", other.kind()), None),
        })
    }

    /// Element `index` of a vector, or row `index` of a matrix.
    pub fn extract(&self, index: i64) -> Result<RuntimeValue, InterpError> {
        match self {
            RuntimeValue::Vec(data) => extract_from(data, None, index),
            RuntimeValue::Mat { rows, cols, data } => extract_from(data, Some((*rows, *cols)), index),
            other => fail(format!("cannot index a {}", other.kind()), None),
        }
    }

    /// A vector from reals, or a matrix from equally long vectors (its rows).
    pub fn build(parts: &[&RuntimeValue]) -> Result<RuntimeValue, InterpError> {
        match parts.first() {
            Some(RuntimeValue::Vec(first)) => {
                let cols = first.len();
                let mut data = Vec::with_capacity(cols * parts.len());
                for part in parts {
                    match part {
                        RuntimeValue::Vec(row) if row.len() == cols => data.extend_from_slice(row),
                        _ => return fail("matrix rows of different lengths", None),
                    }
                }
                Ok(RuntimeValue::Mat { rows: parts.len(), cols, data })
            }
            _ => parts.iter().map(|part| part.as_real()).collect::<Result<_, _>>().map(RuntimeValue::Vec),
        }
    }
}

/// `f` elementwise over two operands of one shape, or a scalar and a vector or matrix.
pub fn broadcast(f: fn(f64, f64) -> f64, a: &RuntimeValue, b: &RuntimeValue) -> Result<RuntimeValue, InterpError> {
    use RuntimeValue::{Mat, Vec as Vector};
    let zip = |x: &[f64], y: &[f64]| -> Vec<f64> { x.iter().zip(y).map(|(p, q)| f(*p, *q)).collect() };
    Ok(match (a, b) {
        (Vector(x), Vector(y)) if x.len() == y.len() => Vector(zip(x, y)),
        (Mat { rows, cols, data: x }, Mat { rows: r, cols: c, data: y }) if rows == r && cols == c => {
            Mat { rows: *rows, cols: *cols, data: zip(x, y) }
        }
        (Vector(_) | Mat { .. }, scalar) => {
            let s = scalar.as_real()?;
            a.map_with(|x| f(x, s))?
        }
        (scalar, Vector(_) | Mat { .. }) => {
            let s = scalar.as_real()?;
            b.map_with(|y| f(s, y))?
        }
        _ => RuntimeValue::Real(f(a.as_real()?, b.as_real()?)),
    })
}

impl RuntimeValue {
    fn map_with(&self, f: impl Fn(f64) -> f64) -> Result<RuntimeValue, InterpError> {
        match self {
            RuntimeValue::Vec(data) => Ok(RuntimeValue::Vec(data.iter().map(|x| f(*x)).collect())),
            RuntimeValue::Mat { rows, cols, data } => {
                Ok(RuntimeValue::Mat { rows: *rows, cols: *cols, data: data.iter().map(|x| f(*x)).collect() })
            }
            other => fail(format!("elementwise operation on a {}", other.kind()), None),
        }
    }
}

/// Matrix–vector, vector–matrix, matrix–matrix products and the inner product, summing in
/// index order (the order compiled code must use too).
pub fn matmul(a: &RuntimeValue, b: &RuntimeValue) -> Result<RuntimeValue, InterpError> {
    use RuntimeValue::{Mat, Vec as Vector};
    let product = |x: &[f64], y: &[f64], m: usize, n: usize, p: usize| {
        let mut out = vec![0.0; m * p];
        ppl_runtime::matmul(x, y, &mut out, m, n, p);
        out
    };
    match (a, b) {
        (Vector(x), Vector(y)) if x.len() == y.len() => {
            Ok(RuntimeValue::Real(product(x, y, 1, x.len(), 1).first().copied().unwrap_or(0.0)))
        }
        (Mat { rows, cols, data }, Vector(v)) if *cols == v.len() => Ok(Vector(product(data, v, *rows, *cols, 1))),
        (Vector(v), Mat { rows, cols, data }) if *rows == v.len() => Ok(Vector(product(v, data, 1, *rows, *cols))),
        (Mat { rows: m, cols: n, data: x }, Mat { rows: k, cols: p, data: y }) if n == k => {
            Ok(Mat { rows: *m, cols: *p, data: product(x, y, *m, *n, *p) })
        }
        _ => fail(format!("product of a {} and a {} of mismatched shapes", a.kind(), b.kind()), None),
    }
}

/// Element `index` of a vector (`shape` is `None`), or row `index` of a row-major matrix of
/// `shape = (rows, cols)`, held in `data`: what `extract` reads, from a value or in place from a
/// data tensor.
pub fn extract_from(data: &[f64], shape: Option<(usize, usize)>, index: i64) -> Result<RuntimeValue, InterpError> {
    match shape {
        None => match usize::try_from(index).ok().and_then(|i| data.get(i)) {
            Some(x) => Ok(RuntimeValue::Real(*x)),
            None => out_of_bounds(index, data.len()),
        },
        Some((rows, cols)) => match usize::try_from(index).ok().filter(|i| *i < rows) {
            Some(i) => match data.get(i * cols..(i + 1) * cols) {
                Some(row) => Ok(RuntimeValue::Vec(row.to_vec())),
                None => out_of_bounds(index, data.len() / cols.max(1)),
            },
            None => out_of_bounds(index, rows),
        },
    }
}

/// `len` elements of a vector (`cols` is `None`) or rows of a matrix from `start`, held in `data`.
pub fn slice_from(data: &[f64], cols: Option<usize>, start: usize, len: usize) -> Result<RuntimeValue, InterpError> {
    let width = cols.unwrap_or(1);
    match (data.get(start * width..(start + len) * width).map(<[f64]>::to_vec), cols) {
        (Some(part), None) => Ok(RuntimeValue::Vec(part)),
        (Some(part), Some(cols)) => Ok(RuntimeValue::Mat { rows: len, cols, data: part }),
        (None, _) => fail(format!("elements {start}..{} of {}", start + len, data.len() / width.max(1)), None),
    }
}

/// The product of two matrices, either read transposed.
pub fn matmul_transposed(
    a: &RuntimeValue,
    b: &RuntimeValue,
    transposed: ppl_runtime::Transposed,
    precision: ppl_runtime::Precision,
) -> Result<RuntimeValue, InterpError> {
    let (RuntimeValue::Mat { rows: r, cols: c, data: x }, RuntimeValue::Mat { rows: s, cols: t, data: y }) = (a, b)
    else {
        return fail(format!("a transposed product of a {} and a {}", a.kind(), b.kind()), None);
    };
    let (m, n) = if transposed.a { (*c, *r) } else { (*r, *c) };
    let (k, p) = if transposed.b { (*t, *s) } else { (*s, *t) };
    if n != k {
        return fail("a transposed product of matrices of mismatched shapes".to_string(), None);
    }
    let mut out = vec![0.0; m * p];
    match precision {
        ppl_runtime::Precision::Double => ppl_runtime::matmul_transposed(x, y, &mut out, m, n, p, transposed),
        ppl_runtime::Precision::Single => ppl_runtime::matmul_single(x, y, &mut out, m, n, p, transposed),
    }
    Ok(RuntimeValue::Mat { rows: m, cols: p, data: out })
}

impl RuntimeValue {
    /// `len` elements of a vector (rows of a matrix) from `start`.
    pub fn slice(&self, start: usize, len: usize) -> Result<RuntimeValue, InterpError> {
        match self {
            RuntimeValue::Vec(data) => slice_from(data, None, start, len),
            RuntimeValue::Mat { cols, data, .. } => slice_from(data, Some(*cols), start, len),
            other => fail(format!("a slice of a {}", other.kind()), None),
        }
    }

    /// Zeros of `total` elements (rows), with this vector (matrix) from `start`.
    pub fn placed(&self, start: usize, total: usize) -> Result<RuntimeValue, InterpError> {
        let (width, data) = match self {
            RuntimeValue::Vec(data) => (1, data),
            RuntimeValue::Mat { cols, data, .. } => (*cols, data),
            other => return fail(format!("a {} placed in zeros", other.kind()), None),
        };
        let mut out = vec![0.0; total * width];
        match out.get_mut(start * width..start * width + data.len()) {
            Some(part) => part.copy_from_slice(data),
            None => return fail(format!("{} elements placed at {start} of {total}", data.len()), None),
        }
        Ok(match self {
            RuntimeValue::Vec(_) => RuntimeValue::Vec(out),
            _ => RuntimeValue::Mat { rows: total, cols: width, data: out },
        })
    }

    /// A copy of a vector with element `index` replaced, or of a matrix with row `index` replaced.
    pub fn insert(&self, index: i64, value: &RuntimeValue) -> Result<RuntimeValue, InterpError> {
        let out_of_bounds = |len: usize| out_of_bounds(index, len);
        match (self, value) {
            (RuntimeValue::Vec(data), _) => match usize::try_from(index).ok().filter(|i| *i < data.len()) {
                Some(i) => {
                    let mut data = data.clone();
                    data[i] = value.as_real()?;
                    Ok(RuntimeValue::Vec(data))
                }
                None => out_of_bounds(data.len()),
            },
            (RuntimeValue::Mat { rows, cols, data }, RuntimeValue::Vec(row)) if row.len() == *cols => {
                match usize::try_from(index).ok().filter(|i| i < rows) {
                    Some(i) => {
                        let mut data = data.clone();
                        data[i * cols..(i + 1) * cols].copy_from_slice(row);
                        Ok(RuntimeValue::Mat { rows: *rows, cols: *cols, data })
                    }
                    None => out_of_bounds(*rows),
                }
            }
            (other, value) => fail(format!("cannot insert a {} into a {}", value.kind(), other.kind()), None),
        }
    }
}

pub fn transpose(a: &RuntimeValue) -> Result<RuntimeValue, InterpError> {
    match a {
        RuntimeValue::Mat { rows, cols, data } => {
            let data = (0..*cols).flat_map(|j| (0..*rows).map(move |i| data[i * cols + j])).collect();
            Ok(RuntimeValue::Mat { rows: *cols, cols: *rows, data })
        }
        other => fail(format!("transpose of a {}", other.kind()), None),
    }
}

pub fn outer(a: &RuntimeValue, b: &RuntimeValue) -> Result<RuntimeValue, InterpError> {
    match (a, b) {
        (RuntimeValue::Vec(x), RuntimeValue::Vec(y)) => {
            let mut data = vec![0.0; x.len() * y.len()];
            ppl_runtime::outer(&mut data, x, y);
            Ok(RuntimeValue::Mat { rows: x.len(), cols: y.len(), data })
        }
        _ => fail(format!("outer product of a {} and a {}", a.kind(), b.kind()), None),
    }
}

impl std::fmt::Display for RuntimeValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |f: &mut std::fmt::Formatter<'_>, data: &[f64]| {
            f.write_str("[")?;
            for (i, x) in data.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str("]")
        };
        match self {
            RuntimeValue::Real(x) => write!(f, "{x}"),
            RuntimeValue::Int(n) => write!(f, "{n}"),
            RuntimeValue::Bool(b) => write!(f, "{b}"),
            RuntimeValue::Vec(data) => list(f, data),
            RuntimeValue::Mat { cols, data, .. } => {
                f.write_str("[")?;
                for (i, row) in data.chunks(*cols.max(&1)).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    list(f, row)?;
                }
                f.write_str("]")
            }
            RuntimeValue::Rng(_) => f.write_str("<stream>"),
        }
    }
}

fn out_of_bounds<T>(index: i64, len: usize) -> Result<T, InterpError> {
    Err(InterpError {
        kind: ErrorKind::OutOfBounds,
        message: format!("index {index} is out of bounds for length {len}"),
        span: None,
    })
}
